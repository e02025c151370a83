"""On a schedule: re-drive received mail that no intake attempt finished, re-send mail
the mail service refused (``shared/complaints/reconcile.py``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.runtime.observability import logger, metrics, tracer
from shared.runtime.wiring import reconciler


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconciler().run()
    # What the stack's alarms can watch: mail re-driven, held after failing, still refused.
    metrics.add_metric(name="MailRedriven", unit="Count", value=sum(report.redriven.values()))
    metrics.add_metric(name="MailHeldAfterFailures", unit="Count", value=report.held)
    metrics.add_metric(name="MailPending", unit="Count", value=report.mails_pending)
    logger.info("reconciled", extra=report.as_dict())
    return report.as_dict()
