"""Daily (EventBridge Scheduler): mail the dealer GM of every accountability measure past its
deadline and not marked done (policy.md §9, ``shared/complaints/accountability.py``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.complaints.accountability import AccountabilityService
from shared.runtime.observability import logger, metrics, tracer
from shared.runtime.settings import settings
from shared.runtime.wiring import services


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    brand = str(event.get("brand") or settings().brand_id)
    reminded = AccountabilityService(services().lifecycle, settings().public_base_url).remind_overdue(brand)
    metrics.add_metric(name="AccountabilityOverdue", unit="Count", value=len(reminded))
    logger.info("accountability reminders", extra={"brand": brand, "reminded": reminded})
    return {"brand": brand, "reminded": reminded}
