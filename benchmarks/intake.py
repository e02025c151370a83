"""Intake throughput on the local runtime, next to its floor.

    python -m benchmarks.intake [--mails 200] [--concurrency 8] [--json PATH]

Intake: each mail is staged in S3 first (SES's S3 action, not timed), then the intake
function is invoked with its SES event through moto's Lambda, as SES would; timed from
the invocation to its answer, one mail after another, then ``--concurrency`` at once.
The mails are the samples labelled ``new_case`` (the heaviest path: parse, classify,
route, repeat check, number, register, store attachments, acknowledge, start), each copy
with its own Message-ID; a pass over the samples is a quarter of virtual time after the
last, so that copies are not repeat complaints of each other, and the acknowledgement
allowance is lifted, so that every copy is acknowledged as a new customer's would be.
StartExecution goes to a one-state (Pass) machine: the lifecycle's own steps are
``benchmarks.lifecycles``' business, not the intake function's.

Floor: what no intake can avoid per mail: parse the MIME (``parse_mail``) and make one
conditional put (the claim on the SES message id), on the same runtime, same mails, same
concurrency. Intake and floor alternate pass by pass, so that other work on the machine
slows both alike and their ratio holds.

DynamoDB requests go into moto one at a time (``DynamoMeter``: moto's backend has no
lock), in both runs; the meter also counts them, and this module times moto's Query
handler, whose cost grows with the table (moto walks and sorts every item of the table
for each Query).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from benchmarks import function_output, function_output_option
from benchmarks.lifecycles import EMAILS, START, DynamoMeter, new_case_samples, with_message_id
from infra.local.http import recipients_of
from infra.local.runtime import LocalConfig, LocalRuntime, ses_event

DEFAULT_MAILS = 200
DEFAULT_CONCURRENCY = 8
TARGET_RATIO = 3.0
PASS_MACHINE = {"StartAt": "Started", "States": {"Started": {"Type": "Pass", "End": True}}}


@dataclass
class Phase:
    """One timed run: ``mails`` in ``seconds`` with ``concurrency`` in flight."""

    name: str
    concurrency: int
    mails: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    dynamodb: dict[str, int] = field(default_factory=dict)
    query_seconds: float = 0.0
    dispositions: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.mails / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.latencies_ms)
        return {
            "phase": self.name, "concurrency": self.concurrency, "mails": self.mails,
            "seconds": round(self.seconds, 3), "mails_per_second": round(self.per_second, 1),
            "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
            "latency_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
            "dynamodb_requests_per_mail": {op: round(n / self.mails, 1) for op, n in sorted(self.dynamodb.items())},
            "moto_query_ms_per_mail": round(1000 * self.query_seconds / self.mails, 1),
            "dispositions": self.dispositions,
        }


@dataclass
class Result:
    mails: int
    concurrency: int
    phases: list[Phase]

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def ratio(self, mode: str) -> float:
        """How many times slower intake is than its floor."""
        return self.phase(f"floor {mode}").per_second / self.phase(f"intake {mode}").per_second

    def ratio_without_query_walk(self, mode: str) -> float:
        """The ratio had moto's Query found a partition's items as DynamoDB does, instead of
        walking and sorting the whole table: intake's time less the time in moto's Query."""
        intake = self.phase(f"intake {mode}")
        return self.phase(f"floor {mode}").per_second * (intake.seconds - intake.query_seconds) / intake.mails

    def as_dict(self) -> dict[str, Any]:
        return {"mails": self.mails, "concurrency": self.concurrency, "target_ratio": TARGET_RATIO,
                "ratio_sequential": round(self.ratio("sequential"), 2),
                "ratio_concurrent": round(self.ratio("concurrent"), 2),
                "ratio_sequential_without_query_walk": round(self.ratio_without_query_walk("sequential"), 2),
                "phases": [p.summary() for p in self.phases]}


@contextmanager
def timed_queries() -> Iterator[list[float]]:
    """Seconds spent in moto's Query handler while active (one element, updated in place)."""
    from moto.dynamodb.responses import DynamoHandler

    spent = [0.0]
    lock = threading.Lock()
    original = DynamoHandler.query

    def query(handler: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(handler)
        finally:
            with lock:
                spent[0] += time.perf_counter() - began
    DynamoHandler.query = query  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        DynamoHandler.query = original  # type: ignore[method-assign]


def _mails(count: int, first: int = 0) -> list[tuple[str, bytes]]:
    """``count`` sample copies, numbered from ``first``: their Message-IDs are unique."""
    names = new_case_samples()
    return [(f"bench-{n:05d}", with_message_id((EMAILS / names[n % len(names)]).read_bytes(), n))
            for n in range(first, first + count)]


class _Timing:
    """One phase being measured, pass by pass."""

    def __init__(self, name: str, concurrency: int, one: Callable[[str, bytes], str]) -> None:
        self.phase = Phase(name, concurrency, 0, 0.0)
        self.one = one
        self.dispositions: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()

    def run(self, mails: Sequence[tuple[str, bytes]], pool: ThreadPoolExecutor, meter: DynamoMeter,
            query_seconds: list[float]) -> None:
        requests_before, queries_before = Counter(meter.counts.requests), query_seconds[0]

        def timed(mail: tuple[str, bytes]) -> None:
            began = time.perf_counter()
            outcome = self.one(*mail)
            with self.lock:
                self.phase.latencies_ms.append(1000 * (time.perf_counter() - began))
                self.dispositions[outcome] += 1

        began = time.perf_counter()
        list(pool.map(timed, mails))
        self.phase.seconds += time.perf_counter() - began
        self.phase.mails += len(mails)
        self.phase.query_seconds += query_seconds[0] - queries_before
        self.requests.update(meter.counts.requests)
        self.requests.subtract(requests_before)

    def result(self) -> Phase:
        self.phase.dispositions = dict(self.dispositions)
        self.phase.dynamodb = {op: n for op, n in self.requests.items() if n}
        return self.phase


def _measure(mode: str, mails: Sequence[tuple[str, bytes]], concurrency: int, intake: Callable[[str, bytes], str],
             floor: Callable[[str, bytes], str], meter: DynamoMeter, next_pass: Callable[[], None]) -> list[Phase]:
    """Intake and floor, alternating pass by pass (a pass is one copy of every sample), so
    that both see the same machine: other work on it slows both alike."""
    size = len(new_case_samples())
    timings = [_Timing(f"intake {mode}", concurrency, intake), _Timing(f"floor {mode}", concurrency, floor)]
    with timed_queries() as query_seconds, ThreadPoolExecutor(max_workers=concurrency) as pool:
        for start in range(0, len(mails), size):
            if start:
                next_pass()
            for timing in timings:
                timing.run(mails[start : start + size], pool, meter, query_seconds)
    return [t.result() for t in timings]


def run_benchmark(mails: int = DEFAULT_MAILS, concurrency: int = DEFAULT_CONCURRENCY) -> Result:
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.exceptions import PutError
    from pynamodb.models import Model

    from shared.adapters.aws import StepFunctionsWorkflow
    from shared.complaints.mail import parse_mail
    from shared.runtime import wiring
    from shared.runtime.settings import settings

    runtime = LocalRuntime(LocalConfig(clock="manual", start=START)).start()
    try:
        region = runtime.region
        role = boto3.client("iam", region_name=region).create_role(
            RoleName="benchmark-intake", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = boto3.client("stepfunctions", region_name=region).create_state_machine(
            name="benchmark-intake-started", roleArn=role, definition=json.dumps(PASS_MACHINE))["stateMachineArn"]
        wiring.configure(workflow=StepFunctionsWorkflow(machine, region))
        # Lift the acknowledgement and new-case allowances (brand policy): every copy is answered
        # and registered like a new customer's.
        tenant = json.loads(runtime.config.tenant_file.read_text("utf-8"))
        brand_policy = tenant["brand"].setdefault("policy", None) or {}
        tenant["brand"]["policy"] = {**brand_policy, "intake": {
            **brand_policy.get("intake", {}), "acknowledgements_per_sender_per_day": sys.maxsize,
            "new_cases_per_sender": sys.maxsize}}
        wiring.case_store().put_tenant(tenant, [])

        class Claim(Model):
            """The floor's conditional put, in a table of its own: moto's Query walks the
            whole table, and the floor's items must not slow intake's queries down."""

            class Meta:
                table_name = f"{settings().table_name}-floor"
                region = settings().region
                billing_mode = "PAY_PER_REQUEST"

            pk = UnicodeAttribute(hash_key=True)
            sk = UnicodeAttribute(range_key=True)
            status = UnicodeAttribute(null=True)

        Claim.create_table(wait=True)
        s3 = boto3.client("s3", region_name=region)
        runs = {"sequential": _mails(mails), "concurrent": _mails(mails, first=mails)}
        for mode, batch in runs.items():  # what SES's S3 action did before the function runs
            for ses_id, raw in batch:
                s3.put_object(Bucket=settings().raw_bucket, Key=f"{settings().raw_prefix}{mode}-{ses_id}", Body=raw)

        def intake(mode: str) -> Callable[[str, bytes], str]:
            def one(ses_id: str, raw: bytes) -> str:
                event = ses_event(f"{mode}-{ses_id}", recipients_of(raw), None, {}, runtime.clock.now(), region)
                return str(runtime.invoke("intake_email", event)["disposition"])
            return one

        def floor(mode: str) -> Callable[[str, bytes], str]:
            def one(ses_id: str, raw: bytes) -> str:
                parse_mail(raw, received_at=runtime.clock.now())
                try:
                    Claim(f"INBOUND#{mode}-{ses_id}", "#INBOUND", status="processing").save(
                        condition=Claim.pk.does_not_exist())
                except PutError:
                    return "duplicate"
                return "claimed"
            return one

        def next_quarter() -> None:
            runtime.clock.advance(timedelta(days=91).total_seconds())

        phases = []
        with DynamoMeter(serialize=True).active() as meter:
            for mode, workers in (("sequential", 1), ("concurrent", concurrency)):
                phases += _measure(mode, runs[mode], workers, intake(mode), floor(mode), meter, next_quarter)
        return Result(mails, concurrency, phases)
    finally:
        runtime.stop()


def report(result: Result) -> str:
    rows = [f"{'phase':<22}{'mails/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'DynamoDB req/mail':>19}{'moto Query ms/mail':>20}"]
    for phase in result.phases:
        s = phase.summary()
        rows.append(f"{phase.name:<22}{s['mails_per_second']:>9}{s['latency_ms_p50']:>9}{s['latency_ms_p95']:>9}"
                    f"{sum(phase.dynamodb.values()) / phase.mails:>19.1f}{s['moto_query_ms_per_mail']:>20}")
    intake_requests = result.phase("intake sequential").summary()["dynamodb_requests_per_mail"]
    rows += ["", "intake DynamoDB requests per mail: " + ", ".join(f"{op} {n}" for op, n in intake_requests.items()),
             "intake dispositions: " + "; ".join(f"{p.name} {p.dispositions}" for p in result.phases
                                                 if p.name.startswith("intake")),
             f"ratio floor/intake: sequential {result.ratio('sequential'):.1f}x, "
             f"concurrent ({result.concurrency}) {result.ratio('concurrent'):.1f}x (target: within {TARGET_RATIO:g}x)",
             f"ratio without moto's whole-table Query walk: sequential "
             f"{result.ratio_without_query_walk('sequential'):.1f}x"]
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=DEFAULT_MAILS)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    function_output_option(parser)
    args = parser.parse_args(argv)
    with function_output(args.function_output):
        result = run_benchmark(args.mails, args.concurrency)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
