"""SES receipt rule (S3 action, then this Lambda): the raw mail is already in S3."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import SESEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.complaints.clock import parse_iso
from shared.complaints.intake import InboundMail, SesVerdicts
from shared.runtime.observability import logger, mask, metrics, tracer
from shared.runtime.settings import settings
from shared.runtime.wiring import services


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=SESEvent)
def handler(event: SESEvent, context: LambdaContext) -> dict[str, Any]:
    results = []
    for record in event.records:
        mail, receipt = record.ses.mail, record.ses.receipt
        inbound = InboundMail(
            ses_message_id=mail.message_id,
            raw_key=f"{settings().raw_prefix}{mail.message_id}",
            recipients=list(receipt.recipients),
            verdicts=SesVerdicts(spam=receipt.spam_verdict.status, virus=receipt.virus_verdict.status,
                                 spf=receipt.spf_verdict.status, dkim=receipt.dkim_verdict.status,
                                 dmarc=receipt.dmarc_verdict.status),
            envelope_from=mail.source,
            received_at=parse_iso(mail.timestamp),
        )
        result = services().intake.receive(inbound)
        logger.info("mail received", extra={"disposition": result.disposition, "case_no": result.case_no,
                                              "held_id": result.held_id,
                                              "sender": mask(mail.source)})
        metrics.add_metric(name=f"Intake_{result.disposition}", unit="Count", value=1)
        results.append(result.as_dict())
    return results[0] if len(results) == 1 else {"results": results}
