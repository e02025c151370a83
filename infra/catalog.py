"""The one catalog of Lambda functions and state machines.

Both the CDK stack (``infra/stack.py``) and the local runtime (``infra/local``) build
their functions and ASL substitutions from this list, so that what runs on a laptop
is what deploys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPFUNCTIONS_DIR = ROOT / "stepfunctions"


@dataclass(frozen=True)
class Schedule:
    """When EventBridge Scheduler invokes a function (AWS only; the local runtime ignores it)."""

    expression: str  # "cron(0 8 1 * ? *)", "rate(15 minutes)", ...
    timezone: str = "UTC"  # the zone cron fields are read in, e.g. "Asia/Shanghai"
    payload: str = "{}"  # the event the function receives, as JSON text


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # logical name; the Lambda is "<stack>-<name>"
    handler: str  # import path of the handler callable
    description: str
    memory_mb: int = 512
    timeout_s: int = 30
    substitution: str | None = None  # the ${Placeholder} the ASL uses for this function's ARN
    needs_table: bool = True
    needs_raw_bucket_read: bool = False
    needs_raw_bucket_write: bool = False
    sends_mail: bool = False
    starts_executions: bool = False
    sends_task_results: bool = False
    http_routes: tuple[str, ...] = ()
    schedule: Schedule | None = None  # invoked on this schedule (asynchronously) in AWS
    reserved_concurrency: int | None = None  # AWS: at most this many at once, and always this many available


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        name="intake_email",
        handler="functions.intake_email.handler.handler",
        description="SES receipt (S3 action) -> parse, thread or register, acknowledge, start the lifecycle",
        timeout_s=60,
        memory_mb=1024,
        needs_raw_bucket_read=True,
        needs_raw_bucket_write=True,
        sends_mail=True,
        starts_executions=True,
        reserved_concurrency=10,  # a mail flood queues (Lambda retries async events) instead of starving the rest
    ),
    FunctionSpec(
        name="workflow",
        handler="functions.workflow.handler.handler",
        description="The lifecycle's own steps: triage, deadline timers, approvals, close, survey result",
        substitution="WorkflowFunctionArn",
        sends_mail=True,
    ),
    FunctionSpec(
        name="human_task",
        handler="functions.human_task.handler.handler",
        description="Opens (or re-arms) a human step: keeps the task token server side, mails the link",
        substitution="HumanTaskFunctionArn",
        sends_mail=True,
        sends_task_results=True,
    ),
    FunctionSpec(
        name="link_actions",
        handler="functions.link_actions.handler.handler",
        description="GET shows a link page, POST decides a human step (HTTP API)",
        sends_mail=True,
        sends_task_results=True,
        http_routes=("GET /a/{link_id}", "POST /a/{link_id}", "HEAD /a/{link_id}"),
    ),
    FunctionSpec(
        name="staff_api",
        handler="functions.staff_api.handler.handler",
        description="Staff API and console, scoped to their tenant (HTTP API; JWT, the console a session cookie): "
                    "cases, corrections, dealer assignment, accountability, case library, held mail, manual intake",
        # Releasing held mail and manual intake register cases as intake does: read raw mail,
        # store attachments and originals, acknowledge, start the lifecycle.
        needs_raw_bucket_read=True,
        needs_raw_bucket_write=True,
        sends_mail=True,
        starts_executions=True,
        http_routes=("GET /api/cases", "GET /api/cases/{case_no}", "POST /api/cases/{case_no}/classification",
                     "POST /api/cases/{case_no}/dealer", "POST /api/cases/{case_no}/resume",
                     "POST /api/cases/{case_no}/messages/{note_id}/promote", "GET /api/held",
                     "POST /api/held/{held_id}/release",
                     "GET /api/intake", "POST /api/intake",
                     "POST /api/cases/{case_no}/accountability", "POST /api/cases/{case_no}/accountability/done",
                     "GET /api/accountability", "GET /api/library",
                     # The console (no authorizer: the handler checks its session cookie, console.py).
                     "GET /console", "GET /console/sign-in", "POST /console/sign-in", "GET /console/callback",
                     "POST /console/sign-out", "GET /console/cases", "GET /console/export",
                     "GET /console/cases/{case_no}", "POST /console/cases/{case_no}/classification",
                     "POST /console/cases/{case_no}/dealer", "POST /console/cases/{case_no}/resume",
                     "POST /console/cases/{case_no}/notes/{note_id}/promote",
                     "POST /console/cases/{case_no}/accountability",
                     "POST /console/cases/{case_no}/accountability/done", "GET /console/intake",
                     "POST /console/intake", "GET /console/accountability", "GET /console/library",
                     "GET /console/reports", "GET /console/reports/{period}"),
    ),
    FunctionSpec(
        name="accountability_reminders",
        handler="functions.accountability_reminders.handler.handler",
        description="Daily: mail the dealer GM of every overdue accountability measure (policy.md §9)",
        timeout_s=120,
        sends_mail=True,
        schedule=Schedule("cron(0 9 * * ? *)", timezone="Asia/Shanghai"),
        reserved_concurrency=1,  # one run at a time (a retried run sends nothing twice: one reminder a day)
    ),
    FunctionSpec(
        name="reconciler",
        handler="functions.reconciler.handler.handler",
        description="Every 15 minutes: re-drive received mail no intake attempt finished, re-send mail "
                    "the mail service refused (docs/reliability.md)",
        timeout_s=300,  # a run handles at most COMPLAINTS_RECONCILE_BATCH mails per day, and as many sends
        # Re-driving a mail is the intake's work: read raw mail, store attachments, acknowledge, start.
        needs_raw_bucket_read=True,
        needs_raw_bucket_write=True,
        sends_mail=True,
        starts_executions=True,
        schedule=Schedule("rate(15 minutes)"),
        reserved_concurrency=1,  # one run at a time: two would meet on the same mails
    ),
    FunctionSpec(
        name="reports",
        handler="functions.reports.handler.handler",
        description="KPI reports (policy.md §10): mailed on the 1st for last month to the brand, each region and "
                    "each dealer; on demand for staff (HTTP API, JWT, scoped); KPI rebuild by hand",
        memory_mb=1024,
        timeout_s=300,  # the monthly run renders and mails one report per dealer, region and the brand
        sends_mail=True,
        http_routes=("GET /api/reports/{period}",),
        # 08:00 on the 1st in the demo brand's zone; the run reports the month before in the brand's own zone.
        schedule=Schedule("cron(0 8 1 * ? *)", timezone="Asia/Shanghai", payload='{"action": "monthly"}'),
    ),
)

STATE_MACHINES: dict[str, Path] = {
    "complaint_lifecycle": STEPFUNCTIONS_DIR / "complaint_lifecycle.asl.json",
}


def function(name: str) -> FunctionSpec:
    for spec in FUNCTIONS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def substitutions(arn_of: dict[str, str]) -> dict[str, str]:
    """ASL ${Placeholders} -> values, given each function's ARN by logical name."""
    return {spec.substitution: arn_of[spec.name] for spec in FUNCTIONS if spec.substitution}
