"""A human step begins (or its deadline timer re-arms it): keep the task token server
side and, the first time, mail the assignee their link."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.complaints.lifecycle import running_as
from shared.runtime.observability import logger, tracer
from shared.runtime.wiring import services


@logger.inject_lambda_context(log_event=False)  # the event holds the task token: never log it
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(case_no=event["case_no"], step=event["step"])
    with running_as(event.get("execution")):
        services().lifecycle.open_task(event["case_no"], event["step"], event["token"])
    return {}
