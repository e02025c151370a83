"""Whole complaint lifecycles on the local runtime: what one case costs in state
transitions, Lambda invocations, mails and DynamoDB requests, and how fast the laptop
runs them.

    python -m benchmarks.lifecycles --cases 100 [--concurrency N] [--scenario happy|escalation] [--json PATH]

One ``LocalRuntime`` on the warp clock; personas answer every mail's link
(``infra.local.personas``). Cases are registered by delivering the sample complaint
mails (those labelled ``new_case``), cycled, each copy with a Message-ID of its own.
At most ``--concurrency`` cases are in flight at once: the next mail is delivered when
an execution ends (the run is CPU-bound in one process: more in flight is not faster).
Counts come from the runtime itself: execution histories (state transitions),
``runtime.invocations`` (Lambda calls), the outbox (mails), and a meter on moto's
DynamoDB request handlers (requests and estimated capacity units), which also lets one
DynamoDB request at a time into moto (its backend has no lock). A cost estimate at AWS
list prices follows the table. Figures and method: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import boto3

from benchmarks import function_output, function_output_option
from infra import catalog
from infra.local.http import recipients_of
from infra.local.outbox import SentMail
from infra.local.personas import Decide, Personas, happy_path
from infra.local.runtime import LocalConfig, LocalInvocationError, LocalRuntime, state_machine_arn

Scenario = Literal["happy", "escalation"]
SCENARIOS: tuple[Scenario, ...] = ("happy", "escalation")
EMAILS = catalog.ROOT / "tests" / "data" / "emails"
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai (as the workflow tests)
DEFAULT_CONCURRENCY = 10
STALL_S = 60.0
POLL_S = 0.5  # a DescribeExecution costs ~3 ms of CPU in moto: 10 in flight polled at 2 Hz is ~5% of a core


# ----- sample mails -------------------------------------------------------------------------------
def new_case_samples() -> list[str]:
    """The sample mails labelled ``new_case`` that exist as files, in file order."""
    labels = json.loads((EMAILS / "labels.json").read_text("utf-8"))
    return sorted(str(x["file"]) for x in labels if x["disposition"] == "new_case" and x.get("file"))


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?<([^>]*)>", re.IGNORECASE | re.MULTILINE)


def with_message_id(raw: bytes, n: int) -> bytes:
    """The mail with its top-level Message-ID made unique (``<local.bench-n@domain>``);
    a Message-ID in an attached message is left alone."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    m = _MESSAGE_ID.search(raw, 0, end)
    if m is None:
        return b"Message-ID: <bench-%d@benchmark.example>\r\n" % n + raw
    local, at, domain = m.group(1).rpartition(b"@")
    new = (local + b".bench-%d" % n + at + domain) if at else (m.group(1) + b".bench-%d" % n)
    return raw[: m.start(1)] + new + raw[m.end(1):]


# ----- personas -----------------------------------------------------------------------------------
def _is_escalation(sent: SentMail) -> bool:
    return "Escalated" in sent.mail.subject or "超时升级" in sent.mail.subject


def escalation_path() -> dict[str, Decide]:
    """The happy path, except that nobody answers first contact until the second
    escalation: the CS head's warning and the service manager's escalation pass, the
    general manager acts (for brand-triage cases, where every dealer rung falls back
    to the brand CR center, the CR center acts on the second escalation)."""
    decide = happy_path()
    answer = decide["first_contact"]  # its fields include the dealer that a brand-triage case must be given
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def first_contact(sent: SentMail) -> dict[str, Any] | None:
        if not _is_escalation(sent):
            return None
        with lock:
            seen[sent.mail.case_no or ""] += 1
            rung = seen[sent.mail.case_no or ""]
        if rung < 2:
            return None
        return {**(answer(sent) or {}), "notes": "The general manager called the customer himself."}

    decide["first_contact"] = first_contact
    return decide


# ----- DynamoDB meter -----------------------------------------------------------------------------
WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
READ_OPS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")
_HANDLER_METHODS = {"PutItem": "put_item", "UpdateItem": "update_item", "DeleteItem": "delete_item",
                    "TransactWriteItems": "transact_write_items", "BatchWriteItem": "batch_write_item",
                    "GetItem": "get_item", "Query": "query", "Scan": "scan", "BatchGetItem": "batch_get_item",
                    "TransactGetItems": "transact_get_items"}


@dataclass
class DynamoCounts:
    """DynamoDB requests as moto received them, with capacity units estimated by the
    on-demand rules: a write is 1 WRU per started KB of the item (2 in a transaction)
    plus the same again for each global secondary index that holds the item; a read is
    1 RRU per started 4 KB when strongly consistent, half that when eventually
    consistent (a GetItem costs at least that, even when it finds nothing)."""

    requests: Counter[str] = field(default_factory=Counter)
    item_writes: int = 0  # items written (each item of a transaction counts)
    wru: float = 0.0
    rru: float = 0.0

    @property
    def write_requests(self) -> int:
        return sum(self.requests[op] for op in WRITE_OPS)

    @property
    def read_requests(self) -> int:
        return sum(self.requests[op] for op in READ_OPS)


def _item_size(item: dict[str, Any] | None) -> int:
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    return sum(bytesize(k) + DynamoType(v).size() for k, v in (item or {}).items())


class DynamoMeter:
    """Wraps moto's ``DynamoHandler`` methods (one per API operation) while active.

    With ``serialize``, it also lets one DynamoDB request at a time into moto: moto's
    DynamoDB backend has no lock, and a Query (which walks every item of the table)
    or a TransactWriteItems (which deep-copies the table) running while another
    thread writes fails with ``RuntimeError: dictionary changed size during
    iteration``. See docs/benchmarks.md."""

    def __init__(self, serialize: bool = True) -> None:
        self.counts = DynamoCounts()
        self.serialize = serialize
        self._lock = threading.Lock()
        self._moto_lock = threading.RLock()

    @contextmanager
    def active(self) -> Iterator[DynamoMeter]:
        from moto.dynamodb.responses import DynamoHandler

        originals = {name: getattr(DynamoHandler, name) for name in (*_HANDLER_METHODS.values(), "call_action")}
        for op, name in _HANDLER_METHODS.items():
            setattr(DynamoHandler, name, self._wrap(op, originals[name]))
        if self.serialize:
            call_action = originals["call_action"]
            lock = self._moto_lock

            def serialized(handler: Any) -> Any:
                with lock:
                    return call_action(handler)

            DynamoHandler.call_action = serialized  # type: ignore[method-assign]
        try:
            yield self
        finally:
            for name, original in originals.items():
                setattr(DynamoHandler, name, original)

    def _wrap(self, op: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        meter = self

        def metered(handler: Any) -> Any:
            result = None
            try:
                result = original(handler)
                return result
            finally:
                try:
                    meter._record(op, handler, getattr(result, "result", None))
                except Exception:  # noqa: BLE001 - a meter must never break the request it measures
                    with meter._lock:
                        meter.counts.requests[f"{op} (not sized)"] += 1

        return metered

    # Writes are sized from the item after the request (the request's item for a Put).
    def _stored(self, handler: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            item = handler.dynamodb_backend.get_item(table, key)
        except Exception:  # noqa: BLE001 - an item that is not there (a failed condition, a delete)
            return None
        return dict(item.to_json()["Attributes"]) if item is not None else None

    def _write_units(self, handler: Any, table: str, item: dict[str, Any] | None, factor: int) -> float:
        size = _item_size(item)
        units = max(1, math.ceil(size / 1024)) * factor
        if item:
            try:
                indexes = handler.dynamodb_backend.get_table(table).global_indexes
            except Exception:  # noqa: BLE001
                indexes = []
            for index in indexes:
                if all(k in item for k in index.schema_key_attrs):
                    units += max(1, math.ceil(size / 1024))
        return float(units)

    def _record(self, op: str, handler: Any, result: Any) -> None:
        body: dict[str, Any] = handler.body if isinstance(handler.body, dict) else {}
        table = str(body.get("TableName", ""))
        wru = rru = 0.0
        writes = 0
        if op == "PutItem":
            writes, wru = 1, self._write_units(handler, table, body.get("Item"), 1)
        elif op in ("UpdateItem", "DeleteItem"):
            after = (result or {}).get("Attributes") if op == "UpdateItem" else None
            item = after or self._stored(handler, table, body.get("Key", {})) or body.get("Key")
            writes, wru = 1, self._write_units(handler, table, item, 1)
        elif op == "TransactWriteItems":
            for entry in body.get("TransactItems", []):
                kind, spec = next(iter(entry.items()))
                name = str(spec.get("TableName", ""))
                if kind == "Put":
                    item = spec.get("Item")
                else:
                    item = self._stored(handler, name, spec.get("Key", {})) or spec.get("Key")
                writes += kind != "ConditionCheck"
                wru += self._write_units(handler, name, item, 2)
        elif op == "BatchWriteItem":
            for name, requests in body.get("RequestItems", {}).items():
                for request in requests:
                    put = request.get("PutRequest")
                    writes += 1
                    wru += self._write_units(handler, name, put["Item"] if put else None, 1)
        elif op == "GetItem":
            factor = 1.0 if body.get("ConsistentRead") else 0.5
            size = _item_size((result or {}).get("Item"))
            rru = max(1, math.ceil(size / 4096)) * factor
        elif op in ("Query", "Scan"):
            factor = 1.0 if body.get("ConsistentRead") and not body.get("IndexName") else 0.5
            size = sum(_item_size(i) for i in (result or {}).get("Items", []))
            rru = max(1, math.ceil(size / 4096)) * factor
        elif op in ("BatchGetItem", "TransactGetItems"):
            rru = 1.0  # not used by this code base; counted as requests only
        with self._lock:
            c = self.counts
            c.requests[op] += 1
            c.item_writes += writes
            c.wru += wru
            c.rru += rru


# ----- the run ------------------------------------------------------------------------------------
@dataclass
class CaseResult:
    case_no: str
    sample: str
    status: str
    transitions: int  # *StateEntered events of the execution history
    lambda_tasks: int  # Lambda invocations the state machine made (LambdaFunctionScheduled / TaskScheduled)
    clicks: int  # links the personas submitted (each a GET and a POST of link_actions)
    mails: int  # mails in the outbox for this case
    virtual_hours: float  # received -> last mail of the case, on the virtual clock
    wall_seconds: float  # delivered -> seen ended, on the wall clock
    ended_after_s: float  # seen ended, wall seconds after the first delivery


@dataclass
class BenchmarkResult:
    scenario: str
    cases: int
    concurrency: int
    wall_seconds: float
    cpu_seconds: float  # this process, all threads: less sensitive than wall time to other load on the machine
    load_average: tuple[float, float]  # 1-minute load average when the run started and when it ended
    machine: str
    statuses: dict[str, int]
    virtual_start: str
    virtual_end: str
    virtual_days: float
    lambda_calls: dict[str, int]
    lambda_errors: dict[str, int]
    lambda_handler_seconds: float
    mails_total: int
    mails_without_case: int
    dynamodb_requests: dict[str, int]
    dynamodb_item_writes: int
    dynamodb_wru: float
    dynamodb_rru: float
    per_case: list[CaseResult]
    dynamodb_serialized: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return self.statuses.get("SUCCEEDED", 0)

    @property
    def other(self) -> int:
        return self.cases - self.succeeded

    def per_case_mean(self, name: str) -> float:
        values = [getattr(c, name) for c in self.per_case]
        return statistics.fmean(values) if values else 0.0

    def per_case_range(self, name: str) -> tuple[int, int]:
        values = [int(getattr(c, name)) for c in self.per_case]
        return (min(values), max(values)) if values else (0, 0)

    @property
    def lambda_per_case(self) -> float:
        return sum(self.lambda_calls.values()) / max(1, self.cases)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkResult:
        """A result written with ``--json``, read back (to render it again)."""
        known = {f for f in cls.__dataclass_fields__}
        fields = {k: v for k, v in data.items() if k in known}
        fields["per_case"] = [CaseResult(**c) for c in data.get("per_case", [])]
        fields["load_average"] = tuple(data.get("load_average", (0.0, 0.0)))
        return cls(**fields)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = {
            "wall_seconds_per_case": self.wall_seconds / max(1, self.cases),
            "succeeded": self.succeeded, "other": self.other,
            "per_case": {
                "state_transitions": self.per_case_mean("transitions"),
                "lambda_invocations": self.lambda_per_case,
                "lambda_invocations_by_function": {k: v / self.cases for k, v in sorted(self.lambda_calls.items())},
                "mails_sent": self.mails_total / max(1, self.cases),
                "dynamodb_item_writes": self.dynamodb_item_writes / max(1, self.cases),
                "dynamodb_write_requests": sum(self.dynamodb_requests.get(op, 0) for op in WRITE_OPS) / self.cases,
                "dynamodb_read_requests": sum(self.dynamodb_requests.get(op, 0) for op in READ_OPS) / self.cases,
                "dynamodb_wru_estimated": self.dynamodb_wru / max(1, self.cases),
                "dynamodb_rru_estimated": self.dynamodb_rru / max(1, self.cases),
            },
        }
        return d


def _deliver(runtime: LocalRuntime, raw: bytes, notes: list[str], attempts: int = 3) -> dict[str, Any]:
    """SES invokes the intake asynchronously and Lambda retries a failed event (same
    SES message id, so the intake resumes instead of registering twice)."""
    ses_message_id = uuid.uuid4().hex
    for attempt in range(1, attempts + 1):
        try:
            answer: dict[str, Any] = runtime.deliver(raw, recipients_of(raw), ses_message_id=ses_message_id)
            return answer
        except LocalInvocationError as exc:
            notes.append(f"intake attempt {attempt} failed: {str(exc)[:200]}")
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


@dataclass
class _Flight:
    """Cases in flight and ended, with the moments the benchmark saw them."""

    started: float = field(default_factory=time.perf_counter)
    sample: dict[str, str] = field(default_factory=dict)
    received: dict[str, datetime] = field(default_factory=dict)
    delivered_s: dict[str, float] = field(default_factory=dict)
    ended_s: dict[str, float] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    statuses: dict[str, str] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def delivered(self, case_no: str, sample: str, received: datetime) -> None:
        self.sample[case_no], self.received[case_no] = sample, received
        self.delivered_s[case_no] = self.elapsed()
        self.running.add(case_no)

    def ended(self, case_no: str, status: str) -> None:
        self.running.discard(case_no)
        self.statuses[case_no] = status
        self.ended_s[case_no] = self.elapsed()


def _drive(runtime: LocalRuntime, mails: deque[tuple[str, bytes]], concurrency: int, timeout_s: float,
           notes: list[str], progress: Callable[[str], None] | None) -> _Flight:
    """Deliver the mails, at most ``concurrency`` executions running, until all have ended."""
    total = len(mails)
    flight = _Flight()
    # One client for the polling (``runtime.execution`` builds a boto3 client per call).
    sfn = boto3.client("stepfunctions", region_name=runtime.region)
    executions = state_machine_arn(runtime.region).replace(":stateMachine:", ":execution:") + ":"
    deadline = time.monotonic() + timeout_s
    last_calls, last_change = -1, time.monotonic()
    while mails or flight.running:
        while mails and len(flight.running) < concurrency:
            name, raw = mails.popleft()
            received = runtime.clock.now()
            answer = _deliver(runtime, raw, notes)
            if answer.get("disposition") != "new_case" or not answer.get("case_no"):
                raise RuntimeError(f"{name}: the intake answered {answer}, not a new case")
            flight.delivered(str(answer["case_no"]), name, received)
        time.sleep(POLL_S)
        for case_no in sorted(flight.running):
            status = str(sfn.describe_execution(executionArn=executions + case_no)["status"])
            if status != "RUNNING":
                flight.ended(case_no, status)
                if progress is not None:
                    progress(f"{len(flight.statuses):>4}/{total} {case_no} {status}")
        calls = sum(runtime.invocations.calls.values())
        if calls != last_calls:
            last_calls, last_change = calls, time.monotonic()
        stalled = time.monotonic() - last_change > STALL_S
        if stalled or time.monotonic() > deadline:
            why = (f"no Lambda invocation for {STALL_S:.0f} s (the warp clock stands at "
                   f"{runtime.clock.now():%Y-%m-%d %H:%M}, idle={runtime.clock.idle()})" if stalled
                   else f"{timeout_s:.0f} s")
            notes.append(f"stopped waiting after {why}: {len(flight.running)} executions still running, "
                         f"{len(mails)} mails not delivered")
            for case_no in sorted(flight.running):
                flight.ended(case_no, "STILL_RUNNING")
            break
    return flight


def _count_history(runtime: LocalRuntime, case_no: str) -> tuple[int, int]:
    events = runtime.history(case_no)
    transitions = sum(1 for e in events if str(e.get("type", "")).endswith("StateEntered"))
    tasks = sum(1 for e in events if e.get("type") in ("LambdaFunctionScheduled", "TaskScheduled"))
    return transitions, tasks


def _machine() -> str:
    return (f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def run_benchmark(cases: int = 100, concurrency: int = DEFAULT_CONCURRENCY, scenario: Scenario = "happy",
                  samples: Sequence[str] | None = None, timeout_s: float = 3600.0,
                  progress: Callable[[str], None] | None = None, serialize_dynamodb: bool = True) -> BenchmarkResult:
    """Run ``cases`` lifecycles on one warp-clock runtime, ``concurrency`` in flight at once."""
    if cases < 1 or concurrency < 1:
        raise ValueError("cases and concurrency must be at least 1")
    names = list(samples or new_case_samples())
    mails: deque[tuple[str, bytes]] = deque(
        (names[i % len(names)], with_message_id((EMAILS / names[i % len(names)]).read_bytes(), i + 1))
        for i in range(cases))
    meter = DynamoMeter(serialize=serialize_dynamodb)
    runtime = LocalRuntime(LocalConfig(clock="warp", start=START))
    notes: list[str] = []
    with meter.active():
        runtime.start()
        try:
            people = Personas(runtime, happy_path() if scenario == "happy" else escalation_path())
            dynamo = meter.counts
            before = Counter(dynamo.requests), dynamo.item_writes, dynamo.wru, dynamo.rru  # after seeding the tenant
            virtual_start, cpu_start, load_start = runtime.clock.now(), time.process_time(), os.getloadavg()[0]
            flight = _drive(runtime, mails, concurrency, timeout_s, notes, progress)
            wall, cpu = flight.elapsed(), time.process_time() - cpu_start
            load_end, virtual_end = os.getloadavg()[0], runtime.clock.now()

            clicks = Counter(c.case_no for c in people.clicks)
            per_case: list[CaseResult] = []
            for case_no, status in sorted(flight.statuses.items()):
                transitions, tasks = _count_history(runtime, case_no)
                sent = runtime.outbox.for_case(case_no)
                received = flight.received[case_no]
                last = max((m.sent_at for m in sent), default=received)
                per_case.append(CaseResult(
                    case_no, flight.sample[case_no], status, transitions, tasks, clicks[case_no], len(sent),
                    (last - received).total_seconds() / 3600, flight.ended_s[case_no] - flight.delivered_s[case_no],
                    flight.ended_s[case_no]))
            refused = [c for c in people.clicks if c.status != 200 and c.outcome != "decided"]
            if refused:
                notes.append(f"{len(refused)} persona clicks were refused: {refused[:3]}")
            all_mails = runtime.outbox.all()
            return BenchmarkResult(
                scenario=scenario, cases=cases, concurrency=concurrency, wall_seconds=wall, cpu_seconds=cpu,
                load_average=(load_start, load_end), machine=_machine(),
                statuses=dict(Counter(flight.statuses.values())),
                virtual_start=virtual_start.isoformat(), virtual_end=virtual_end.isoformat(),
                virtual_days=(virtual_end - virtual_start).total_seconds() / 86400,
                lambda_calls=dict(sorted(runtime.invocations.calls.items())),  # the tenant seed invokes none
                lambda_errors=dict(sorted(runtime.invocations.errors.items())),
                lambda_handler_seconds=runtime.invocations.seconds,
                mails_total=len(all_mails), mails_without_case=sum(1 for m in all_mails if not m.mail.case_no),
                dynamodb_requests=dict(sorted((dynamo.requests - before[0]).items())),
                dynamodb_item_writes=dynamo.item_writes - before[1],
                dynamodb_wru=dynamo.wru - before[2], dynamodb_rru=dynamo.rru - before[3],
                per_case=per_case, dynamodb_serialized=serialize_dynamodb, notes=notes)
        finally:
            runtime.stop()


# ----- output -------------------------------------------------------------------------------------
def _short_function(name: str) -> str:
    return name.removeprefix("complaints-local-")


def _pace(result: BenchmarkResult) -> str | None:
    """Wall seconds per case in the first and in the last quarter of the cases to end
    (shown when a quarter holds at least two batches): moto's cost per request grows
    with what it stores, so later cases run slower."""
    ends = sorted(c.ended_after_s for c in result.per_case)
    q = len(ends) // 4
    if q < 2 * result.concurrency:
        return None
    first, last = ends[q - 1] / q, (ends[-1] - ends[-q - 1]) / q
    return f"{first:.2f} s per case over the first {q} cases to end, {last:.2f} s over the last {q}"


def render(result: BenchmarkResult) -> str:
    n = max(1, result.cases)
    statuses = ", ".join(f"{v} {k}" for k, v in sorted(result.statuses.items()))
    calls = max(1, sum(result.lambda_calls.values()))
    lines = [
        f"Lifecycles on the local runtime: scenario {result.scenario}, {result.cases} cases, warp clock",
        f"  in flight           at most {result.concurrency} (the next mail is delivered when an execution ends)",
        f"  machine             {result.machine}",
        f"  wall time           {result.wall_seconds:8.1f} s total, {result.wall_seconds / n:.2f} s per case "
        f"(1-min load average {result.load_average[0]:.1f} at the start, {result.load_average[1]:.1f} at the end)",
        f"  CPU time            {result.cpu_seconds:8.1f} s total, {result.cpu_seconds / n:.2f} s per case "
        "(this process, all threads)",
    ]
    pace = _pace(result)
    if pace:
        lines.append(f"  pace                {pace}")
    lines += [
        f"  executions          {result.succeeded} SUCCEEDED, {result.other} other ({statuses})",
        f"  virtual time        {result.virtual_start[:16]} -> {result.virtual_end[:16]} UTC "
        f"({result.virtual_days:.1f} days)",
        f"  Lambda errors       {sum(result.lambda_errors.values())} "
        f"{dict((_short_function(k), v) for k, v in result.lambda_errors.items()) or ''}".rstrip(),
        f"  handler time        {result.lambda_handler_seconds:.1f} s summed over invocations, "
        f"{result.lambda_handler_seconds / calls * 1000:.0f} ms each (wall time in-process on moto; "
        "nested and concurrent calls overlap)",
        "  DynamoDB            " + ("requests enter moto one at a time (its backend has no lock)"
                                    if result.dynamodb_serialized else "requests enter moto concurrently (no lock)"),
        "",
        f"  {'per case':<38}{'mean':>8}{'min':>7}{'max':>7}",
    ]

    def row(label: str, mean: float, rng: tuple[int, int] | None = None) -> None:
        lo, hi = (f"{rng[0]:>7}", f"{rng[1]:>7}") if rng else ("", "")
        lines.append(f"  {label:<38}{mean:>8.2f}{lo}{hi}")

    row("state transitions (*StateEntered)", result.per_case_mean("transitions"), result.per_case_range("transitions"))
    row("Lambda invocations", result.lambda_per_case)
    for function, count in result.lambda_calls.items():
        row(f"  {_short_function(function)}", count / n)
    row("  tasks of the state machine", result.per_case_mean("lambda_tasks"), result.per_case_range("lambda_tasks"))
    row("  persona clicks (a GET and a POST)", result.per_case_mean("clicks"), result.per_case_range("clicks"))
    row("mails sent", result.mails_total / n, result.per_case_range("mails"))
    row("DynamoDB write requests", sum(result.dynamodb_requests.get(op, 0) for op in WRITE_OPS) / n)
    row("DynamoDB items written", result.dynamodb_item_writes / n)
    row("DynamoDB WRU (estimated)", result.dynamodb_wru / n)
    row("DynamoDB read requests", sum(result.dynamodb_requests.get(op, 0) for op in READ_OPS) / n)
    row("DynamoDB RRU (estimated)", result.dynamodb_rru / n)
    if result.per_case:
        hours = [c.virtual_hours for c in result.per_case]
        row("virtual hours, received -> last mail", statistics.fmean(hours),
            (math.floor(min(hours)), math.ceil(max(hours))))
    lines.append("  DynamoDB requests by operation, per case: " + ", ".join(
        f"{op} {v / n:.2f}" for op, v in result.dynamodb_requests.items()))
    if result.mails_without_case:
        lines.append(f"  mails without a case number: {result.mails_without_case}")
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


# ----- what a case would cost on AWS ---------------------------------------------------------------
PRICE_BASIS = "AWS list prices, us-east-1 (N. Virginia), no free tier, as published in 2025"
STEP_FUNCTIONS_PER_TRANSITION = 0.025 / 1000  # Standard workflows
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000166667  # x86
SES_PER_MAIL = 0.10 / 1000  # outbound; receiving is the same per mail (plus $0.09 per 1,000 256-KB chunks)
HTTP_API_PER_REQUEST = 1.00 / 1_000_000  # API Gateway HTTP API, first 300 M a month
DYNAMODB_PER_WRU = 1.25 / 1_000_000  # on-demand, list price until 31 Oct 2024
DYNAMODB_PER_RRU = 0.25 / 1_000_000
DYNAMODB_PER_WRU_SINCE_NOV_2024 = 0.625 / 1_000_000  # on-demand prices halved on 1 Nov 2024
DYNAMODB_PER_RRU_SINCE_NOV_2024 = 0.125 / 1_000_000
ASSUMED_LAMBDA_MS = 100.0


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float  # per case
    unit: str
    unit_price: float  # USD
    price: str  # the list price as written on the pricing page
    basis: str  # where the quantity comes from

    @property
    def per_case(self) -> float:
        return self.quantity * self.unit_price


def aws_costs(result: BenchmarkResult, lambda_ms: float = ASSUMED_LAMBDA_MS) -> list[CostLine]:
    """What one case of this run would cost on AWS, from the measured counts and the
    prices above; Lambda GB-seconds from the catalog's memory sizes and ``lambda_ms``."""
    n = max(1, result.cases)
    memory = {f"complaints-local-{spec.name}": spec.memory_mb for spec in catalog.FUNCTIONS}
    gb_seconds = sum(calls * memory.get(name, 128) / 1024 * lambda_ms / 1000
                     for name, calls in result.lambda_calls.items()) / n
    clicks = result.per_case_mean("clicks")
    return [
        CostLine("Step Functions Standard, state transitions", result.per_case_mean("transitions"), "transition",
                 STEP_FUNCTIONS_PER_TRANSITION, "$0.025 per 1,000", "measured"),
        CostLine("Lambda requests", result.lambda_per_case, "request", LAMBDA_PER_REQUEST, "$0.20 per 1M", "measured"),
        CostLine(f"Lambda duration at {lambda_ms:.0f} ms per invocation", gb_seconds, "GB-s",
                 LAMBDA_PER_GB_SECOND, "$0.0000166667 per GB-s", "assumed duration x catalog memory"),
        CostLine("SES mails sent", result.mails_total / n, "mail", SES_PER_MAIL, "$0.10 per 1,000", "measured"),
        CostLine("SES mail received (the complaint)", 1.0, "mail", SES_PER_MAIL, "$0.10 per 1,000", "measured"),
        CostLine("API Gateway HTTP API (link GET + POST)", 2 * clicks, "request", HTTP_API_PER_REQUEST,
                 "$1.00 per 1M", "measured"),
        CostLine("DynamoDB on-demand writes", result.dynamodb_wru / n, "WRU", DYNAMODB_PER_WRU, "$1.25 per 1M",
                 "estimated from measured requests and item sizes"),
        CostLine("DynamoDB on-demand reads", result.dynamodb_rru / n, "RRU", DYNAMODB_PER_RRU, "$0.25 per 1M",
                 "estimated from measured requests and item sizes"),
    ]


def render_costs(result: BenchmarkResult, lambda_ms: float = ASSUMED_LAMBDA_MS) -> str:
    lines = aws_costs(result, lambda_ms)
    total = sum(c.per_case for c in lines)
    dynamo_then = sum(c.per_case for c in lines if c.item.startswith("DynamoDB"))
    dynamo_now = (result.dynamodb_wru * DYNAMODB_PER_WRU_SINCE_NOV_2024
                  + result.dynamodb_rru * DYNAMODB_PER_RRU_SINCE_NOV_2024) / max(1, result.cases)
    out = [f"What a case would cost on AWS: {PRICE_BASIS}; scenario {result.scenario}",
           f"  {'':<44}{'per case':>9}  {'':<11}{'list price':<24}{'USD per 1,000 cases':>20}"]
    for c in lines:
        out.append(f"  {c.item:<44}{c.quantity:>9.2f}  {c.unit:<11}{c.price:<24}{c.per_case * 1000:>20.4f}")
    out.append(f"  {'total':<44}{'':>9}  {'':<11}{'':<24}{total * 1000:>20.4f}")
    out.append(f"  DynamoDB at the on-demand prices since 1 Nov 2024 ($0.625 / $0.125 per 1M): "
               f"{dynamo_now * 1000:.4f} instead of {dynamo_then * 1000:.4f}, total {(total - dynamo_then + dynamo_now) * 1000:.4f}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lifecycles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"executions in flight at once (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--scenario", choices=SCENARIOS, default="happy")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="give up waiting after this many seconds (default 3600; a stall of 60 s ends it sooner)")
    parser.add_argument("--progress", action="store_true", help="print each execution as it ends")
    parser.add_argument("--lambda-ms", type=float, default=ASSUMED_LAMBDA_MS,
                        help=f"assumed Lambda duration for the cost estimate (default {ASSUMED_LAMBDA_MS:.0f} ms)")
    parser.add_argument("--no-dynamodb-lock", action="store_true",
                        help="let concurrent DynamoDB requests into moto (reproduces its race, see docs/benchmarks.md)")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="run nothing: print the tables of a result written earlier with --json")
    function_output_option(parser)
    args = parser.parse_args(argv)
    if args.render:
        saved = BenchmarkResult.from_dict(json.loads(args.render.read_text("utf-8")))
        print(render(saved))
        print()
        print(render_costs(saved, args.lambda_ms))
        return 0
    with function_output(args.function_output):
        result = run_benchmark(args.cases, args.concurrency, args.scenario, timeout_s=args.timeout,
                               progress=(lambda line: print(line, file=sys.stderr, flush=True)) if args.progress else None,
                               serialize_dynamodb=not args.no_dynamodb_lock)
    print(render(result))
    print()
    print(render_costs(result, args.lambda_ms))
    if args.json:
        data = result.as_dict()
        data["aws_costs"] = {"basis": PRICE_BASIS, "lambda_ms": args.lambda_ms,
                             "lines": [{**asdict(c), "usd_per_case": c.per_case} for c in aws_costs(result, args.lambda_ms)]}
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(f"  written to {args.json}")
    return 0 if result.other == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
