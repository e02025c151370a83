"""The lifecycle's own steps, called by the state machine with an ``action``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.complaints.errors import InvalidInputError
from shared.complaints.lifecycle import Lifecycle, running_as
from shared.runtime.observability import logger, metrics, tracer
from shared.runtime.wiring import services

ACTIONS: dict[str, Callable[[Lifecycle, dict[str, Any]], dict[str, Any]]] = {
    "triage": lambda lc, e: lc.triage(e["case_no"]),
    "enter": lambda lc, e: lc.enter(e["case_no"], e["step"], e.get("entered")),
    "timer": lambda lc, e: lc.timer(e["case_no"], e["step"]),
    "record": lambda lc, e: lc.record(e["case_no"], e["step"], e["decision"]["task_key"]),
    "close": lambda lc, e: lc.close(e["case_no"]),
    "survey_unrated": lambda lc, e: lc.survey_unrated(e["case_no"]),
    "needs_attention": lambda lc, e: lc.needs_attention(
        e["case_no"], str((e.get("error") or {}).get("Error", "Unknown")), str((e.get("error") or {}).get("Cause", ""))),
}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = ACTIONS.get(str(event.get("action")))
    if action is None:
        raise InvalidInputError(f"unknown workflow action {event.get('action')!r}")
    logger.append_keys(case_no=event.get("case_no"), action=event.get("action"), step=event.get("step"))
    with running_as(event.get("execution")):
        result = action(services().lifecycle, event)
    # What the stack's alarms watch (infra/constructs/operations.py): namespace Complaints, no extra dimensions.
    if event.get("action") == "needs_attention":
        metrics.add_metric(name="NeedsAttention", unit="Count", value=1)
    for milestone in result.get("breached", []):
        metrics.add_metric(name="DeadlineBreached", unit="Count", value=1)
        logger.info("deadline breached", extra={"milestone": milestone})
    return result
