"""Whole complaint lifecycles on the local runtime: what one case costs in state
transitions, Lambda invocations, mails and DynamoDB requests, and how fast the laptop
runs them.

    python -m benchmarks.lifecycles --cases 100 [--concurrency N] [--scenario happy|escalation] [--json PATH]

One ``LocalRuntime`` on the warp clock; personas answer every mail's link
(``infra.local.personas``). Cases are registered by delivering the sample complaint
mails (those labelled ``new_case``), cycled, each copy with a Message-ID of its own.
At most ``--concurrency`` cases are in flight at once: the next mail is delivered when
an execution ends. Counts come from the runtime itself: execution histories (state
transitions), ``runtime.invocations`` (Lambda calls), the outbox (mails), and a meter
on moto's DynamoDB request handlers (requests and estimated capacity units).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import boto3

from infra import catalog
from infra.local.http import recipients_of
from infra.local.outbox import SentMail
from infra.local.personas import Decide, Personas, happy_path
from infra.local.runtime import LocalConfig, LocalRuntime, state_machine_arn

Scenario = Literal["happy", "escalation"]
SCENARIOS: tuple[Scenario, ...] = ("happy", "escalation")
EMAILS = catalog.ROOT / "tests" / "data" / "emails"
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai (as the workflow tests)
DEFAULT_CONCURRENCY = 10
POLL_S = 0.05


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
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def first_contact(sent: SentMail) -> dict[str, Any] | None:
        if not _is_escalation(sent):
            return None
        with lock:
            seen[sent.mail.case_no or ""] += 1
            rung = seen[sent.mail.case_no or ""]
        return {"notes": "The general manager called the customer himself."} if rung >= 2 else None

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
    """Wraps moto's ``DynamoHandler`` methods (one per API operation) while active."""

    def __init__(self) -> None:
        self.counts = DynamoCounts()
        self._lock = threading.Lock()

    @contextmanager
    def active(self) -> Iterator[DynamoMeter]:
        from moto.dynamodb.responses import DynamoHandler

        originals = {name: getattr(DynamoHandler, name) for name in _HANDLER_METHODS.values()}
        for op, name in _HANDLER_METHODS.items():
            setattr(DynamoHandler, name, self._wrap(op, originals[name]))
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


@dataclass
class BenchmarkResult:
    scenario: str
    cases: int
    concurrency: int
    wall_seconds: float
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


def _count_history(runtime: LocalRuntime, case_no: str) -> tuple[int, int]:
    events = runtime.history(case_no)
    transitions = sum(1 for e in events if str(e.get("type", "")).endswith("StateEntered"))
    tasks = sum(1 for e in events if e.get("type") in ("LambdaFunctionScheduled", "TaskScheduled"))
    return transitions, tasks


def _ended(sfn: Any, machine: str, in_flight: set[str]) -> dict[str, str]:
    """The executions among ``in_flight`` that are no longer running, with their status
    (one ListExecutions call per poll, a DescribeExecution only for those that ended)."""
    if not in_flight:
        return {}
    running: set[str] = set()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING"):
        running.update(e["name"] for e in page["executions"])
    prefix = machine.replace(":stateMachine:", ":execution:") + ":"
    return {no: str(sfn.describe_execution(executionArn=prefix + no)["status"]) for no in in_flight - running}


def run_benchmark(cases: int = 100, concurrency: int = DEFAULT_CONCURRENCY, scenario: Scenario = "happy",
                  samples: Sequence[str] | None = None, timeout_s: float = 900.0,
                  progress: Callable[[str], None] | None = None) -> BenchmarkResult:
    """Run ``cases`` lifecycles on one warp-clock runtime, ``concurrency`` in flight at once."""
    if cases < 1 or concurrency < 1:
        raise ValueError("cases and concurrency must be at least 1")
    names = list(samples or new_case_samples())
    mails: deque[tuple[str, bytes]] = deque(
        (names[i % len(names)], with_message_id((EMAILS / names[i % len(names)]).read_bytes(), i + 1))
        for i in range(cases))
    decide = happy_path() if scenario == "happy" else escalation_path()
    meter = DynamoMeter()
    runtime = LocalRuntime(LocalConfig(clock="warp", start=START))
    notes: list[str] = []
    with meter.active():
        runtime.start()
        try:
            people = Personas(runtime, decide)
            baseline = Counter(runtime.invocations.calls)  # nothing yet; seeding the tenant calls no Lambda
            dynamo_before = Counter(meter.counts.requests), meter.counts.item_writes, meter.counts.wru, meter.counts.rru
            virtual_start = runtime.clock.now()
            started = time.perf_counter()
            sample_of: dict[str, str] = {}
            received: dict[str, datetime] = {}
            in_flight: set[str] = set()
            statuses: dict[str, str] = {}
            # One client for the polling: ``runtime.execution`` builds a boto3 client per call.
            sfn = boto3.client("stepfunctions", region_name=runtime.region)
            machine = state_machine_arn(runtime.region)
            deadline = time.monotonic() + timeout_s
            while mails or in_flight:
                while mails and len(in_flight) < concurrency:
                    name, raw = mails.popleft()
                    received_at = runtime.clock.now()
                    answer = runtime.deliver(raw, recipients_of(raw))
                    if answer.get("disposition") != "new_case" or not answer.get("case_no"):
                        raise RuntimeError(f"{name}: the intake answered {answer}, not a new case")
                    case_no = str(answer["case_no"])
                    sample_of[case_no], received[case_no] = name, received_at
                    in_flight.add(case_no)
                time.sleep(POLL_S)
                for case_no, status in _ended(sfn, machine, in_flight).items():
                    in_flight.discard(case_no)
                    statuses[case_no] = status
                    if progress is not None:
                        progress(f"{len(statuses):>4}/{cases} {case_no} {status}")
                if time.monotonic() > deadline:
                    for case_no in in_flight:
                        statuses[case_no] = "STILL_RUNNING"
                    notes.append(f"stopped waiting after {timeout_s:.0f} s: {len(in_flight)} executions still running")
                    break
            wall = time.perf_counter() - started
            virtual_end = runtime.clock.now()
            per_case: list[CaseResult] = []
            clicks = Counter(c.case_no for c in people.clicks)
            for case_no, status in statuses.items():
                transitions, tasks = _count_history(runtime, case_no)
                sent = runtime.outbox.for_case(case_no)
                last = max((m.sent_at for m in sent), default=received[case_no])
                per_case.append(CaseResult(case_no, sample_of[case_no], status, transitions, tasks, clicks[case_no],
                                           len(sent), (last - received[case_no]).total_seconds() / 3600))
            per_case.sort(key=lambda c: c.case_no)
            calls = runtime.invocations.calls - baseline
            all_mails = runtime.outbox.all()
            requests = meter.counts.requests - dynamo_before[0]
            bad_clicks = [c for c in people.clicks if c.status != 200]
            if bad_clicks:
                notes.append(f"{len(bad_clicks)} persona clicks did not answer 200: {bad_clicks[:3]}")
            return BenchmarkResult(
                scenario=scenario, cases=cases, concurrency=concurrency, wall_seconds=wall,
                statuses=dict(Counter(statuses.values())),
                virtual_start=virtual_start.isoformat(), virtual_end=virtual_end.isoformat(),
                virtual_days=(virtual_end - virtual_start).total_seconds() / 86400,
                lambda_calls=dict(sorted(calls.items())), lambda_errors=dict(sorted(runtime.invocations.errors.items())),
                lambda_handler_seconds=runtime.invocations.seconds,
                mails_total=len(all_mails), mails_without_case=sum(1 for m in all_mails if not m.mail.case_no),
                dynamodb_requests=dict(sorted(requests.items())),
                dynamodb_item_writes=meter.counts.item_writes - dynamo_before[1],
                dynamodb_wru=meter.counts.wru - dynamo_before[2], dynamodb_rru=meter.counts.rru - dynamo_before[3],
                per_case=per_case, notes=notes)
        finally:
            runtime.stop()


# ----- output -------------------------------------------------------------------------------------
def _short_function(name: str) -> str:
    return name.removeprefix("complaints-local-")


def render(result: BenchmarkResult) -> str:
    n = max(1, result.cases)
    statuses = ", ".join(f"{v} {k}" for k, v in sorted(result.statuses.items()))
    lines = [
        f"Lifecycles on the local runtime: scenario {result.scenario}, {result.cases} cases, "
        f"at most {result.concurrency} in flight (the next mail is delivered when an execution ends), warp clock",
        f"  wall time           {result.wall_seconds:8.1f} s total, {result.wall_seconds / n:.2f} s per case",
        f"  executions          {result.succeeded} SUCCEEDED, {result.other} other ({statuses})",
        f"  virtual time        {result.virtual_start[:16]} -> {result.virtual_end[:16]} UTC "
        f"({result.virtual_days:.1f} days)",
        f"  Lambda errors       {sum(result.lambda_errors.values())} "
        f"{dict((_short_function(k), v) for k, v in result.lambda_errors.items()) or ''}".rstrip(),
        f"  handler CPU time    {result.lambda_handler_seconds:.1f} s in all "
        f"({result.lambda_handler_seconds / max(1, sum(result.lambda_calls.values())) * 1000:.1f} ms per invocation, "
        "in-process on moto)",
        "",
        f"  {'per case':<34}{'mean':>8}{'min':>7}{'max':>7}",
    ]

    def row(label: str, mean: float, rng: tuple[int, int] | None = None) -> None:
        lo, hi = (f"{rng[0]:>7}", f"{rng[1]:>7}") if rng else (f"{'':>7}", f"{'':>7}")
        lines.append(f"  {label:<34}{mean:>8.2f}{lo}{hi}")

    row("state transitions", result.per_case_mean("transitions"), result.per_case_range("transitions"))
    row("Lambda invocations (all)", result.lambda_per_case)
    for function, calls in result.lambda_calls.items():
        row(f"  {_short_function(function)}", calls / n)
    row("  of which by the state machine", result.per_case_mean("lambda_tasks"), result.per_case_range("lambda_tasks"))
    row("  persona clicks (GET+POST each)", result.per_case_mean("clicks"), result.per_case_range("clicks"))
    row("mails sent", result.mails_total / n, result.per_case_range("mails"))
    row("DynamoDB write requests", sum(result.dynamodb_requests.get(op, 0) for op in WRITE_OPS) / n)
    row("DynamoDB items written", result.dynamodb_item_writes / n)
    row("DynamoDB WRU (estimated)", result.dynamodb_wru / n)
    row("DynamoDB read requests", sum(result.dynamodb_requests.get(op, 0) for op in READ_OPS) / n)
    row("DynamoDB RRU (estimated)", result.dynamodb_rru / n)
    row("virtual hours, received -> last mail", result.per_case_mean("virtual_hours"),
        (math.floor(min(c.virtual_hours for c in result.per_case)), math.ceil(max(c.virtual_hours for c in result.per_case)))
        if result.per_case else None)
    lines.append("  DynamoDB requests by operation: " + ", ".join(
        f"{op} {v / n:.2f}" for op, v in result.dynamodb_requests.items()))
    if result.mails_without_case:
        lines.append(f"  mails without a case number: {result.mails_without_case}")
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lifecycles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"executions in flight at once (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--scenario", choices=SCENARIOS, default="happy")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up waiting after this many seconds")
    parser.add_argument("--progress", action="store_true", help="print each execution as it ends")
    args = parser.parse_args(argv)
    result = run_benchmark(args.cases, args.concurrency, args.scenario, timeout_s=args.timeout,
                           progress=(lambda line: print(line, file=sys.stderr, flush=True)) if args.progress else None)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        print(f"  written to {args.json}")
    return 0 if result.other == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
