"""Load and soak on the local runtime: complaint mail over SMTP, and lifecycles in flight,
with or without injected faults; then a count that nothing was lost or duplicated.

    python -m benchmarks.load [--mails 1000] [--senders 50] [--lifecycles 200] [--faults 0.05] [--seed 1]
                              [--json PATH]

**Intake under load.** ``--mails`` complaint mails, each from a customer of its own and
addressed in turn to the five demo dealers' complaint addresses (``synthetic_mail``), go to
the local SMTP server from ``--senders`` concurrent senders, a connection per mail. A ``4xx``
answer is sent again after a pause, as a mail server would. The SMTP server does what SES
does: raw mail to S3, then the intake function (the same SES message id on its retries, as
Lambda retries an event). StartExecution goes to a one-state machine, as in
``benchmarks.intake``: the lifecycles are the second part's. Measured per mail: the SMTP
transaction at the sender (queueing behind the other senders included) and the intake at the
server (raw mail stored + intake function). Checked: exactly one case per mail, at the
dealer it was addressed to, acknowledged; every raw mail in the bucket has a finished inbound
record; nothing is left unaccounted for or unsent.

**Lifecycles in flight.** ``--lifecycles`` mails are delivered at once on the **warp** clock;
personas answer every mail (``happy_path``). Every execution must end: SUCCEEDED (the case
is closed) or FAILED after ``NeedsAttention`` (the case shows ``needs_attention``).

**Soak** (``--faults RATE``): both parts run with ``soak_plan(RATE)`` active: each fault point
(DynamoDB throttles, server errors and lost optimistic locks; S3 read failures; Step
Functions throttles; Lambda throttles and service errors, and timeouts of the intake; SES
refusals) fails that share of its calls. The reconciler runs as its schedule would: in
part 1 once the sending is over and the clock has moved past its grace period, in part 2
every few seconds; then until it has nothing left. Figures: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import boto3

from benchmarks import function_output, function_output_option
from benchmarks.lifecycles import START, _machine
from infra.local import faults
from infra.local.faults import FaultPlan, FaultRule
from infra.local.personas import Personas, happy_path
from infra.local.runtime import LocalConfig, LocalRuntime, state_machine_arn
from infra.local.smtp import start_smtp

DEALERS = ("SH001", "BJ002", "GZ003", "CD004", "HZ005")
PASS_MACHINE = {"StartAt": "Started", "States": {"Started": {"Type": "Pass", "End": True}}}
SMTP_RETRIES = 10  # a sender tries a mail this many more times after a 4xx
SMTP_RETRY_PAUSE_S = 0.5
STALL_S = 90.0
RECONCILE_EVERY_S = 5.0
POLL_S = 2.0

# What customers write about (zh and en), one of each per mail in turn.
COMPLAINTS = (
    ("刹车异响", "我的车刹车有异响，去店里两次了还没修好，请尽快处理。"),
    ("空调不制冷", "新车空调不制冷，4S店说要等配件，已经等了两周。"),
    ("保养收费不合理", "这次保养多收了我三百元，工单上的项目我没有同意过。"),
    ("Engine warning light", "The engine warning light came on again a week after the last repair at your dealer."),
    ("Rattle from the dashboard", "There is a rattle from the dashboard since I bought the car. Please fix it."),
    ("销售承诺未兑现", "买车时销售承诺送两次免费保养，现在不认账了。"),
    ("Paint damage after service", "My car came back from the service with a long scratch on the door."),
    ("变速箱顿挫", "变速箱换挡顿挫明显，低速时尤其严重，希望给个说法。"),
)


def synthetic_mail(run: str, n: int, dealer: str) -> tuple[str, str, bytes]:
    """Mail ``n`` of a run: (customer address, dealer address, raw MIME)."""
    customer = f"customer.{run}.{n:05d}@load.example"
    to = f"{dealer.lower()}@complaints.aurora-motors.example"
    subject, text = COMPLAINTS[n % len(COMPLAINTS)]
    headers = (f"From: Customer {n} <{customer}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
               f"Date: {format_datetime(START)}\r\nMessage-ID: <load-{run}-{n}@load.example>\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
    body = f"{text}\r\n\r\n联系电话 / phone: 139{n:08d}\r\n"
    return customer, to, (headers + "\r\n" + body).encode("utf-8")


def soak_plan(rate: float, seed: int) -> FaultPlan:
    """Every fault point at ``rate``. Lambda timeouts only for the intake: a workflow task
    that times out is not retried by the state machine and parks its case (tests show that
    path on its own); the intake's is retried by Lambda and the reconciler."""
    rules = [
        FaultRule("dynamodb", "throttle", rate=rate),
        FaultRule("dynamodb", "error", rate=rate),
        FaultRule("dynamodb", "conflict", rate=rate),
        FaultRule("s3", "error", operation="GetObject", rate=rate),
        FaultRule("sfn", "throttle", rate=rate),
        FaultRule("lambda", "throttle", operation="Invoke", rate=rate),
        FaultRule("lambda", "error", operation="Invoke", rate=rate),
        FaultRule("lambda", "timeout", function="intake_email", rate=rate),
        FaultRule("ses", "throttle", rate=rate),
        FaultRule("ses", "rejected", rate=rate),
    ]
    return FaultPlan(rules, seed)


def _percentile(values: Sequence[float], p: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[round(p * (len(ordered) - 1))], 1) if ordered else None


@dataclass
class Reconciled:
    runs: int = 0
    failed_runs: int = 0  # the reconciler's own invocation failed (faults apply to it too)
    redriven: Counter[str] = field(default_factory=Counter)
    held: int = 0
    mails_resent: int = 0

    def add(self, report: dict[str, Any]) -> None:
        self.runs += 1
        self.redriven.update(report.get("redriven", {}))
        self.held += int(report.get("held", 0))
        self.mails_resent += int(report.get("mails_resent", 0))


def _reconcile(runtime: LocalRuntime, seen: Reconciled) -> dict[str, Any] | None:
    """One run of the reconciler Lambda, as its schedule invokes it."""
    try:
        report: dict[str, Any] = runtime.invoke("reconciler", {})
    except Exception:  # noqa: BLE001 - a failed run is the schedule's to repeat (LocalInvocationError, throttles)
        seen.failed_runs += 1
        return None
    seen.add(report)
    return report


def _settle(runtime: LocalRuntime, seen: Reconciled, advance: Callable[[], object], rounds: int = 30) -> None:
    """Run the reconciler until a run leaves nothing for the next."""
    for _ in range(rounds):
        advance()
        report = _reconcile(runtime, seen)
        if report is not None and not any(report[k] for k in ("in_flight", "failed", "mails_pending", "more")):
            return


# ----- part 1: intake over SMTP ---------------------------------------------------------------------
@dataclass
class IntakeLoad:
    mails: int
    senders: int
    seconds: float
    cases: int
    lost: int  # mails with no case
    duplicated: int  # cases beyond one per mail
    misrouted: int
    unacknowledged: int
    smtp_retries: int
    smtp_failures: int  # mails the sender gave up on
    held: dict[str, int]  # held records by disposition (duplicates of a mail sent again after a 451)
    raw_mails: int
    raw_unfinished: int  # raw mails in the bucket whose inbound record is not done
    unaccounted: int  # received mails listed whose inbound record is not done
    pending_mails: int
    executions: int
    smtp_ms: list[float] = field(default_factory=list, repr=False)
    intake_ms: list[float] = field(default_factory=list, repr=False)
    intake_errors: int = 0  # server-side deliveries that failed (and were retried)
    reconciled: Reconciled = field(default_factory=Reconciled)
    faults: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.cases == self.mails and not (self.lost or self.duplicated or self.misrouted
                                                   or self.unacknowledged or self.smtp_failures or self.raw_unfinished
                                                   or self.unaccounted or self.pending_mails)
                and self.executions == self.cases)

    def summary(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k not in ("smtp_ms", "intake_ms", "reconciled")},
                "mails_per_second": round(self.mails / self.seconds, 1) if self.seconds else None,
                "smtp_ms_p50": _percentile(self.smtp_ms, 0.5), "smtp_ms_p95": _percentile(self.smtp_ms, 0.95),
                "intake_ms_p50": _percentile(self.intake_ms, 0.5), "intake_ms_p95": _percentile(self.intake_ms, 0.95),
                "reconciled": {**asdict(self.reconciled), "redriven": dict(self.reconciled.redriven)},
                "ok": self.ok}


def run_intake_load(mails: int, senders: int, plan: FaultPlan | None = None,
                    progress: Callable[[str], None] | None = None) -> IntakeLoad:
    from shared.adapters.aws import StepFunctionsWorkflow
    from shared.runtime import wiring
    from shared.runtime.settings import settings

    run = uuid.uuid4().hex[:6]
    runtime = LocalRuntime(LocalConfig(clock="manual", start=START)).start()
    smtp = start_smtp(runtime, "127.0.0.1", 0)  # a port the system gives: no race with another run
    port = int(smtp.port)
    try:
        region = runtime.region
        role = boto3.client("iam", region_name=region).create_role(
            RoleName="load-intake", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        sfn = boto3.client("stepfunctions", region_name=region)
        machine = sfn.create_state_machine(name="load-intake-started", roleArn=role,
                                           definition=json.dumps(PASS_MACHINE))["stateMachineArn"]
        wiring.configure(workflow=StepFunctionsWorkflow(machine, region))

        intake_ms: list[float] = []
        intake_errors = [0]
        lock = threading.Lock()
        deliver = runtime.deliver

        def timed_deliver(*args: Any, **kwargs: Any) -> dict[str, Any]:
            began = time.perf_counter()
            try:
                return deliver(*args, **kwargs)
            except Exception:
                with lock:
                    intake_errors[0] += 1
                raise
            finally:
                with lock:
                    intake_ms.append(1000 * (time.perf_counter() - began))
        runtime.deliver = timed_deliver  # type: ignore[method-assign]  # the SMTP server's way in, timed

        batch = [synthetic_mail(run, n, DEALERS[n % len(DEALERS)]) for n in range(mails)]
        smtp_ms: list[float] = []
        retries = Counter[str]()

        def send(item: tuple[str, str, bytes]) -> bool:
            customer, to, raw = item
            began = time.perf_counter()
            for attempt in range(SMTP_RETRIES + 1):
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=900) as client:
                        client.sendmail(customer, [to], raw)
                    with lock:
                        smtp_ms.append(1000 * (time.perf_counter() - began))
                    return True
                except smtplib.SMTPResponseException as exc:
                    if not 400 <= exc.smtp_code < 500 or attempt == SMTP_RETRIES:
                        return False
                    with lock:
                        retries["4xx"] += 1
                    time.sleep(SMTP_RETRY_PAUSE_S)
            return False

        if plan is not None:
            faults.activate(plan)
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=senders) as pool:
            sent = list(pool.map(send, batch))
        seconds = time.perf_counter() - began
        if progress:
            progress(f"intake: {sum(sent)}/{mails} mails accepted over SMTP in {seconds:.1f} s")
        reconciled = Reconciled()

        def past_grace() -> None:
            runtime.clock.advance(timedelta(minutes=settings().reconcile_grace_minutes + 1).total_seconds())
        _settle(runtime, reconciled, past_grace)
        injected = plan.summary() if plan is not None else {}
        faults.deactivate()
        return _count_intake(runtime, batch, sent, seconds, senders, smtp_ms, intake_ms, intake_errors[0],
                             retries["4xx"], reconciled, injected, machine)
    finally:
        faults.deactivate()
        smtp.stop()
        runtime.stop()


def _count_intake(runtime: LocalRuntime, batch: list[tuple[str, str, bytes]], sent: list[bool], seconds: float,
                  senders: int, smtp_ms: list[float], intake_ms: list[float], intake_errors: int, retries: int,
                  reconciled: Reconciled, injected: dict[str, Any], machine: str) -> IntakeLoad:
    from shared.runtime.settings import settings
    from shared.runtime.wiring import services

    store = services().store
    cases = store.list_cases("aurora", limit=10 * len(batch) + 100)
    by_customer = Counter(c.customer.email for c in cases)
    expected = {customer: to.split("@")[0].upper() for customer, to, _ in batch}
    dealer_of = {c.customer.email: c.dealer for c in cases}
    acknowledged = {m.mail.case_no for m in runtime.outbox.all()
                    if m.mail.headers.get("Auto-Submitted") == "auto-replied"}
    s3 = boto3.client("s3", region_name=runtime.region)
    raw_keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings().raw_bucket, Prefix=settings().raw_prefix) for o in page.get("Contents", [])]
    unfinished = 0
    for key in raw_keys:
        record = store.inbound_record(key.removeprefix(settings().raw_prefix))
        unfinished += record is None or record.status != "done"
    now = runtime.clock.now()
    listed = [m for d in range(3) for m in store.received_on((now - timedelta(days=d)).date(), limit=10**6)]
    unaccounted = 0  # listed, and no finished inbound record
    for mail in listed:
        record = store.inbound_record(mail.ses_message_id)
        unaccounted += record is None or record.status != "done"
    sfn = boto3.client("stepfunctions", region_name=runtime.region)
    executions = 0
    for case in cases:
        arn = machine.replace(":stateMachine:", ":execution:") + f":{case.case_no}"
        try:
            sfn.describe_execution(executionArn=arn)
            executions += 1
        except sfn.exceptions.ExecutionDoesNotExist:
            pass
    held = Counter(h.disposition for h in store.list_held("aurora", limit=10**6))
    return IntakeLoad(
        mails=len(batch), senders=senders, seconds=seconds, cases=len(cases),
        lost=sum(1 for customer in expected if by_customer[customer] == 0),
        duplicated=sum(n - 1 for n in by_customer.values() if n > 1) + sum(
            n for customer, n in by_customer.items() if customer not in expected),
        misrouted=sum(1 for customer, dealer in expected.items() if by_customer[customer]
                      and dealer_of[customer] != dealer),
        unacknowledged=sum(1 for c in cases if c.case_no not in acknowledged),
        smtp_retries=retries, smtp_failures=sent.count(False), held=dict(held), raw_mails=len(raw_keys),
        raw_unfinished=unfinished, unaccounted=unaccounted, pending_mails=len(store.pending_mails(limit=10**6)),
        executions=executions, smtp_ms=smtp_ms, intake_ms=intake_ms, intake_errors=intake_errors,
        reconciled=reconciled, faults=injected)


# ----- part 2: lifecycles in flight ----------------------------------------------------------------
@dataclass
class LifecycleLoad:
    lifecycles: int
    seconds: float
    cases: int
    closed: int
    needs_attention: int
    other: dict[str, int]  # cases in any other phase, or executions that did not end
    lost: int  # delivered mails that became no case
    duplicated: int
    attention_unalerted: int  # needs_attention cases whose brand CR center got no mail
    pending_mails: int
    virtual_days: float
    delivery_retries: int
    reconciled: Reconciled = field(default_factory=Reconciled)
    faults: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.cases == self.lifecycles and self.closed + self.needs_attention == self.cases
                and not (self.other or self.lost or self.duplicated or self.attention_unalerted or self.pending_mails))

    def summary(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "reconciled"},
                "reconciled": {**asdict(self.reconciled), "redriven": dict(self.reconciled.redriven)}, "ok": self.ok}


def run_lifecycle_load(lifecycles: int, plan: FaultPlan | None = None, timeout_s: float = 3600.0,
                       progress: Callable[[str], None] | None = None) -> LifecycleLoad:
    from shared.runtime.wiring import services

    run = uuid.uuid4().hex[:6]
    runtime = LocalRuntime(LocalConfig(clock="warp", start=START)).start()
    try:
        Personas(runtime, happy_path())
        batch = [synthetic_mail(run, n, DEALERS[n % len(DEALERS)]) for n in range(lifecycles)]
        if plan is not None:
            faults.activate(plan)
        began, virtual_start = time.perf_counter(), runtime.clock.now()
        retries = [0]
        lock = threading.Lock()

        def deliver(item: tuple[str, str, bytes]) -> None:
            """SES: the same message id on Lambda's retries; the reconciler has it after that."""
            customer, to, raw = item
            ses_id = uuid.uuid4().hex
            for _ in range(3):
                try:
                    runtime.deliver(raw, [to], customer, ses_message_id=ses_id)
                    return
                except Exception:  # noqa: BLE001 - retried as Lambda retries an event
                    with lock:
                        retries[0] += 1

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(deliver, batch))
        if progress:
            progress(f"lifecycles: {lifecycles} mails delivered in {time.perf_counter() - began:.1f} s")
        reconciled = Reconciled()
        notes = _wait_for_ends(runtime, {c for c, _, _ in batch}, reconciled, timeout_s, progress)
        _settle(runtime, reconciled, lambda: runtime.clock.settle(10))
        seconds = time.perf_counter() - began
        injected = plan.summary() if plan is not None else {}
        faults.deactivate()
        runtime.clock.settle(30)

        store = services().store
        cases = [c for c in store.list_cases("aurora", limit=10 * lifecycles + 100)]
        customers = Counter(c.customer.email for c in cases)
        expected = {c for c, _, _ in batch}
        phases = Counter(c.phase for c in cases)
        sfn = boto3.client("stepfunctions", region_name=runtime.region)
        executions = state_machine_arn(runtime.region).replace(":stateMachine:", ":execution:") + ":"
        statuses = Counter(_status(sfn, executions + c.case_no) for c in cases)
        cr_alerted = {m.mail.case_no for m in runtime.outbox.all() if _attention_mail(m.mail.subject)}
        other = {f"phase {p}": n for p, n in phases.items() if p not in ("closed", "needs_attention")}
        other.update({f"execution {s}": n for s, n in statuses.items() if s not in ("SUCCEEDED", "FAILED")})
        return LifecycleLoad(
            lifecycles=lifecycles, seconds=seconds, cases=len(cases), closed=phases["closed"],
            needs_attention=phases["needs_attention"], other=other,
            lost=sum(1 for c in expected if customers[c] == 0),
            duplicated=sum(n - 1 for n in customers.values() if n > 1),
            attention_unalerted=sum(1 for c in cases if c.phase == "needs_attention" and c.case_no not in cr_alerted),
            pending_mails=len(store.pending_mails(limit=10**6)),
            virtual_days=(runtime.clock.now() - virtual_start).total_seconds() / 86400,
            delivery_retries=retries[0], reconciled=reconciled, faults=injected, notes=notes)
    finally:
        faults.deactivate()
        runtime.stop()


def _status(sfn: Any, execution_arn: str) -> str:
    try:
        return str(sfn.describe_execution(executionArn=execution_arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return "NOT_STARTED"


def _attention_mail(subject: str) -> bool:
    """The brand CR center's mail about a parked case (templates/mail/needs_attention.txt)."""
    return "案件需人工处理" in subject or "Case needs attention" in subject


def _wait_for_ends(runtime: LocalRuntime, customers: set[str], reconciled: Reconciled, timeout_s: float,
                   progress: Callable[[str], None] | None) -> list[str]:
    """Until every customer's case has an execution that ended; the reconciler runs meanwhile."""
    from shared.runtime.wiring import services

    sfn = boto3.client("stepfunctions", region_name=runtime.region)
    executions = state_machine_arn(runtime.region).replace(":stateMachine:", ":execution:") + ":"
    ended: dict[str, str] = {}
    known: dict[str, str] = {}  # case number -> customer, once the case is seen
    deadline, last_calls, last_change, last_reconcile = time.monotonic() + timeout_s, -1, time.monotonic(), 0.0
    while True:
        time.sleep(POLL_S)  # polling costs the system CPU: list the cases until all are known, then ask the rest
        if set(known.values()) != customers:
            known = {c.case_no: c.customer.email or "" for c in
                     services().store.list_cases("aurora", limit=10 * len(customers) + 100)}
        for case_no in sorted(set(known) - set(ended)):
            status = _status(sfn, executions + case_no)
            if status not in ("RUNNING", "NOT_STARTED"):  # not started yet: the reconciler resumes it
                ended[case_no] = status
        if progress:
            progress(f"lifecycles: {len(ended)}/{len(customers)} ended, virtual {runtime.clock.now():%Y-%m-%d %H:%M}")
        if len(ended) >= len(customers) and set(known.values()) >= customers:
            return []
        if time.monotonic() - last_reconcile > RECONCILE_EVERY_S:
            _reconcile(runtime, reconciled)
            last_reconcile = time.monotonic()
        calls = sum(n for f, n in runtime.invocations.calls.items() if not f.endswith("-reconciler"))
        if calls != last_calls:
            last_calls, last_change = calls, time.monotonic()
        if time.monotonic() - last_change > STALL_S or time.monotonic() > deadline:
            return [f"stopped waiting: {len(ended)} of {len(customers)} executions ended "
                    f"(virtual clock {runtime.clock.now():%Y-%m-%d %H:%M}, idle={runtime.clock.idle()})"]


# ----- the report -------------------------------------------------------------------------------------
def render(intake: IntakeLoad | None, lifecycles: LifecycleLoad | None, rate: float | None,
           load_average: tuple[float, float] | None = None) -> str:
    lines = [f"Load on the local runtime{f', with {rate:.0%} injected faults' if rate else ''}",
             f"  machine             {_machine()}"]
    if load_average:
        lines.append(f"  1-min load average  {load_average[0]:.1f} at the start, {load_average[1]:.1f} at the end "
                     "(the machine is shared)")
    if intake is not None:
        s = intake.summary()
        lines += [
            "",
            f"Intake: {intake.mails} mails over SMTP from {intake.senders} concurrent senders, manual clock",
            f"  result              {'OK' if intake.ok else 'FAILED'}: {intake.cases} cases for {intake.mails} mails, "
            f"{intake.lost} lost, {intake.duplicated} duplicated, {intake.misrouted} at another dealer, "
            f"{intake.unacknowledged} unacknowledged",
            f"  wall time           {intake.seconds:.1f} s to accept every mail ({s['mails_per_second']} mails/s)",
            f"  SMTP transaction    p50 {s['smtp_ms_p50']} ms, p95 {s['smtp_ms_p95']} ms (at the sender, queueing "
            "included)",
            f"  intake              p50 {s['intake_ms_p50']} ms, p95 {s['intake_ms_p95']} ms (raw mail stored + intake "
            f"function; {intake.intake_errors} failed attempts)",
            f"  SMTP 4xx resent     {intake.smtp_retries} (gave up: {intake.smtp_failures}); held afterwards: "
            f"{intake.held or 'none'}",
            f"  raw mails           {intake.raw_mails} in the bucket, {intake.raw_unfinished} without a finished "
            f"inbound record; {intake.unaccounted} unaccounted; {intake.pending_mails} mails unsent",
            f"  executions          {intake.executions} started for {intake.cases} cases",
            f"  reconciler          {intake.reconciled.runs} runs ({intake.reconciled.failed_runs} failed), "
            f"re-drove {dict(intake.reconciled.redriven) or 0}, held {intake.reconciled.held}, "
            f"re-sent {intake.reconciled.mails_resent} mails",
        ]
        lines += _fault_lines(intake.faults)
    if lifecycles is not None:
        lc = lifecycles
        lines += [
            "",
            f"Lifecycles: {lc.lifecycles} delivered at once, warp clock, personas answer every mail",
            f"  result              {'OK' if lc.ok else 'FAILED'}: {lc.cases} cases, {lc.closed} closed, "
            f"{lc.needs_attention} needs_attention, other {lc.other or 'none'}; {lc.lost} lost, {lc.duplicated} "
            f"duplicated",
            f"  wall time           {lc.seconds:.1f} s ({lc.seconds / max(1, lc.lifecycles):.2f} s per lifecycle), "
            f"{lc.virtual_days:.1f} virtual days",
            f"  needs_attention     {lc.attention_unalerted} without the brand CR center's mail; "
            f"{lc.pending_mails} mails unsent at the end",
            f"  deliveries retried  {lc.delivery_retries}",
            f"  reconciler          {lc.reconciled.runs} runs ({lc.reconciled.failed_runs} failed), "
            f"re-drove {dict(lc.reconciled.redriven) or 0}, held {lc.reconciled.held}, "
            f"re-sent {lc.reconciled.mails_resent} mails",
        ]
        lines += _fault_lines(lc.faults)
        lines += [f"  note: {n}" for n in lc.notes]
    return "\n".join(lines)


def _fault_lines(summary: dict[str, Any]) -> list[str]:
    if not summary:
        return []
    by_kind: Counter[str] = Counter()
    for key, n in summary["injected"].items():
        service, _operation, kind, _ = key.split(" ")
        by_kind[f"{service} {kind}"] += n
    calls = sum(summary["calls"].values())
    return [f"  faults injected     {summary['total_injected']} of {calls} calls at fault points: "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--lifecycles", type=int, default=200)
    parser.add_argument("--faults", type=float, default=None, metavar="RATE", help="soak: inject faults at RATE")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--progress", action="store_true")
    function_output_option(parser)
    args = parser.parse_args(argv)
    progress = (lambda line: print(line, file=sys.stderr, flush=True)) if args.progress else None
    intake = lifecycles = None
    load_start = os.getloadavg()[0]
    with function_output(args.function_output):
        if args.mails:
            plan = soak_plan(args.faults, args.seed) if args.faults else None
            intake = run_intake_load(args.mails, args.senders, plan, progress)
            if progress:
                progress(render(intake, None, args.faults))
        if args.lifecycles:
            plan = soak_plan(args.faults, args.seed + 1) if args.faults else None
            lifecycles = run_lifecycle_load(args.lifecycles, plan, progress=progress)
    load_average = (load_start, os.getloadavg()[0])
    print(render(intake, lifecycles, args.faults, load_average))
    if args.json:
        data = {"faults": args.faults, "seed": args.seed, "machine": _machine(), "load_average": load_average,
                "intake": intake.summary() if intake else None,
                "lifecycles": lifecycles.summary() if lifecycles else None}
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    return 0 if all(part is None or part.ok for part in (intake, lifecycles)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
