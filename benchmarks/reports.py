"""The monthly brand report from the KPI aggregates, next to the same report recomputed from the
cases, on the local runtime (moto DynamoDB): seconds and DynamoDB read units of each, for a brand
with many cases.

    python -m benchmarks.reports --cases 100000 --dealers 200 [--also 10000] [--json PATH]

For each size, a fresh ``LocalRuntime`` gets a tenant with ``--dealers`` dealers in five regions and
that many cases over the 12 months of 2026 (closed on time or late, rated, unrated, survey pending,
opinions, repeats, compensation, accountability, corrections, still open at every step), written
through the store in bulk (``DynamoCaseStore.bulk_import``: batch writes of the cases, then one ADD
per month and scope for their aggregates). Then, as of 08:00 on 1 January 2027 in Shanghai (when the
schedule mails December's reports):

- **from aggregates**: ``build_report`` + ``render_html`` for the brand and December 2026, as the
  ``reports`` function makes it;
- **recomputed from cases**: the brand's cases read through the ``by_brand`` index (a month at a
  time), their KPIs recomputed (``kpis.recompute``), then the same report;

and the two reports must be identical (their JSON). Read units are counted by the lifecycle
benchmark's meter on moto's DynamoDB handlers (``benchmarks.lifecycles.DynamoMeter``: DynamoDB's
on-demand rules applied to the item sizes moto returns; moto itself reports no capacity).

moto walks and sorts the whole table for every page of an index Query, where DynamoDB reads one
index partition; the benchmark lets index Queries walk the table unsorted (``--moto-as-is`` turns
that off), so that the seconds of the recomputation are moto's walk, not its sort. moto's table
lives in the benchmark's own heap: once written, it is frozen out of the garbage collector
(``gc.freeze``), which would otherwise walk it on every full collection. The read units depend on
neither. Figures and method: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from benchmarks import function_output, function_output_option
from benchmarks.lifecycles import DynamoMeter
from infra.local.runtime import DEMO_TENANT, LocalConfig, LocalRuntime
from shared.complaints import kpis
from shared.complaints.models import (
    Accountability,
    Case,
    Classification,
    CompensationItem,
    Customer,
    Investigation,
    Milestone,
    Plan,
    Survey,
    VehicleRef,
)
from shared.complaints.policy import Duration
from shared.complaints.ports import AccountabilityTask
from shared.complaints.reports import Period, Scope, build_report, render_html, render_json, scope_of
from shared.complaints.tenant import Tenant

REGIONS = ("east", "north", "south", "west", "central")
YEAR = 2026
NOW = datetime(2026, 12, 31, 16, 0, tzinfo=UTC) + timedelta(hours=8)  # 08:00 on 1 January 2027 in Shanghai
REPORTED = Period("month", YEAR, 12)
SHANGHAI = ZoneInfo("Asia/Shanghai")
HAZARDS = ("brakes", "steering", "airbag", "battery", "power_loss", "fire")
MODELS = ("Aurora S5", "Aurora X7", "Aurora E3", "Aurora GT")
COMMENTS = ("处理很及时，态度也很好。", "技师很专业，问题一次解决了，谢谢！", "Quick and friendly, thank you.",
            "王先生跟进得很细致，有事打13912345678也能找到人。", "代步车安排得很周到。", "沟通清楚，方案合理。")
DESCRIPTION = ("车辆在行驶过程中出现异常情况，到店检查后仍未彻底解决，希望尽快给出处理方案。" * 8)


# ----- the brand -------------------------------------------------------------------------------------
def tenant_doc(dealers: int) -> dict[str, Any]:
    """The demo brand with ``dealers`` dealers in five regions, each with its three roles."""
    doc: dict[str, Any] = json.loads(DEMO_TENANT.read_text("utf-8"))
    doc.pop("vehicles", None)
    doc.pop("about", None)
    doc["brand"]["staff"] = [{"email": "cr.center@aurora-motors.example", "name": "Brand CR Center", "role": "brand_cr"},
                             *({"email": f"{r}.region@aurora-motors.example", "name": f"Manager {r}",
                                "role": "regional_manager", "region": r} for r in REGIONS)]
    doc["dealers"] = [{
        "code": f"D{n:03d}", "name": f"Aurora Dealer {n:03d}", "name_zh": f"极光{n:03d}号4S店", "city": "City",
        "region": REGIONS[n % len(REGIONS)], "address": f"d{n:03d}@complaints.aurora-motors.example",
        "staff": [{"email": f"{role}.d{n:03d}@dealers.example", "name": f"{role} {n}", "role": role}
                  for role in ("cs_head", "service_manager", "general_manager")]} for n in range(1, dealers + 1)]
    return doc


# ----- the cases -------------------------------------------------------------------------------------
class Generator:
    """Plausible closed and open cases, as the lifecycle would leave them (not run through it: a
    lifecycle costs seconds on moto, docs/benchmarks.md)."""

    def __init__(self, tenant: Tenant, seed: int) -> None:
        self.tenant = tenant
        self.rng = random.Random(seed)
        self.cal = tenant.calendar_for(None)
        self.policy = tenant.policy_for(None)
        self._added: dict[tuple[datetime, str], datetime] = {}
        self._sequence: dict[str, int] = {}
        self.recent: list[str] = []
        self.accountability: list[AccountabilityTask] = []
        self.corrections: dict[str, int] = {}

    def add(self, at: datetime, duration: Duration) -> datetime:
        """The working calendar's ``add`` (0.5 ms), cached by the hour: it moves whole days and hours."""
        hour = at.replace(minute=0, second=0, microsecond=0)
        key = (hour, f"{duration.hours}/{duration.working_days}")
        if key not in self._added:
            self._added[key] = self.cal.add(hour, duration)
        return self._added[key] + (at - hour)

    def cases(self, count: int) -> Iterator[Case]:
        start = datetime(YEAR, 1, 1, tzinfo=SHANGHAI).astimezone(UTC)
        span = (datetime(YEAR + 1, 1, 1, tzinfo=SHANGHAI).astimezone(UTC) - start).total_seconds()
        dealers = self.tenant.dealers
        weights = [1 + (n % 7) for n in range(len(dealers))]  # some dealers see seven times the complaints of others
        for _ in range(count):
            received = start + timedelta(seconds=self.rng.random() * span)
            dealer = self.rng.choices(dealers, weights)[0]
            yield self.case(received, dealer.code, dealer.region)

    def case(self, received: datetime, dealer: str, region: str) -> Case:
        rng, d = self.rng, self.policy.deadlines
        month = received.astimezone(SHANGHAI).strftime("%Y%m")
        self._sequence[f"{dealer}{month}"] = seq = self._sequence.get(f"{dealer}{month}", 0) + 1
        no = f"AUR-{dealer}-{month}-{seq:05d}"
        severity = rng.choices(("general", "major", "critical"), (70, 25, 5))[0]
        category = rng.choices(("product_quality", "service", "price", "other"), (40, 35, 15, 10))[0]
        reasons = {"critical": [f"safety ({rng.choice(HAZARDS)}): 行驶中故障", "severity critical: safety risk"],
                   "major": ["compensation: 要求赔偿", "severity major: demands refund, replacement or compensation"],
                   "general": [f"category {category}: 异常"]}[severity]
        repeat_of = rng.choice(self.recent) if self.recent and rng.random() < 0.08 else None
        n = len(self._sequence) * 1000 + seq
        case = Case(case_no=no, brand=self.tenant.brand.id, dealer=dealer, region=region, phase="first_contact",
                    channel=rng.choices(("email", "phone", "hotline_400", "walk_in", "social_media", "online_form"),
                                        (55, 15, 15, 8, 5, 2))[0],
                    received_at=received, subject=f"投诉：{category} 问题", description=DESCRIPTION, language="zh",
                    customer=Customer(name="客户", email=f"customer{n}@mail.example", phone=f"139{n:08d}"),
                    vehicle=VehicleRef(vin=f"LAUR0{n:012d}", model=rng.choice(MODELS), plate=f"沪A{n % 100000:05d}"),
                    classification=Classification(category=category, severity=severity, safety=severity == "critical",
                                                  media_or_regulator=False, repeat_of=repeat_of, reasons=reasons))
        self.recent = [*self.recent[-499:], no]
        resolution = "solution" if severity == "general" else "result"
        case.milestones = [
            Milestone(name="acknowledgement", due_at=received + timedelta(hours=1), met_at=received + timedelta(seconds=3)),
            Milestone(name="first_contact", due_at=self.add(received, d.first_contact)),
            Milestone(name="preliminary_feedback", due_at=self.add(received, d.preliminary_feedback)),
            Milestone(name=resolution, due_at=self.add(received, getattr(d, resolution)))]
        # How far the case got by now: each step takes a while, now and then too long.
        at = received
        for m, typical in zip(case.milestones[1:], (timedelta(minutes=25), timedelta(hours=14), timedelta(days=2)),
                              strict=True):
            at = at + typical * rng.expovariate(1.0) * 1.3
            if at > NOW:
                m.breached = m.due_at < NOW
                case.phase = "investigation" if m.name != "first_contact" else "first_contact"
                return case
            m.met_at, m.breached = at, at > m.due_at
        case.investigation = Investigation(findings="到店检查确认", root_cause=rng.choice(("product", "service", "communication")),
                                           responsibility="none", preliminary_feedback="已告知客户",
                                           recorded_by="cs", recorded_at=case.milestones[2].met_at or at)
        value = rng.choices((0, 500, 800, 1200, 2000, 5000, 20000), (40, 15, 15, 12, 10, 6, 2))[0]
        case.plan = Plan(revision=1, measures="免费维修并赠送保养", submitted_by="cs", submitted_at=at,
                         compensation=[CompensationItem(kind="free_service", value=Decimal(value))] if value else [])
        closed = at + timedelta(days=1 + rng.random() * 4)
        if closed > NOW:
            case.phase, case.customer_decision = "carry_out", "accept"
            return case
        case.customer_decision, case.phase, case.closed_at = "accept", "closed", closed
        surveyed = self.add(closed, self.policy.survey.delay)
        if surveyed + timedelta(days=rng.random() * 14) > NOW:
            case.phase = "survey"
        elif rng.random() < 0.8:
            score = rng.choices((100, 95, 90, 85, 75, 72, 50), (25, 25, 20, 12, 8, 5, 5))[0]
            comment = rng.choice(COMMENTS) if score >= 80 and rng.random() < 0.4 else ""
            case.survey = Survey(score=score, comment=comment, answered_at=surveyed + timedelta(days=1),
                                 opinion=bool(comment))
        else:
            case.survey = Survey(unrated=True)
        if rng.random() < 0.03:
            self._accountable(case, closed)
        if rng.random() < 0.05:
            corrected_month = closed.astimezone(SHANGHAI).strftime("%Y%m")
            self.corrections[corrected_month] = self.corrections.get(corrected_month, 0) + 1
            case.classification.reasons.append("corrected by cr.center@aurora-motors.example: category")
        return case

    def _accountable(self, case: Case, closed: datetime) -> None:
        responsibility: Literal["employee", "management", "system"] = self.rng.choice(
            ("employee", "management", "system"))
        recorded = closed + timedelta(days=2)
        due = recorded + timedelta(days=self.policy.accountability.due_days[responsibility])
        done = recorded + timedelta(days=self.rng.random() * 40) if self.rng.random() < 0.7 else None
        done = done if done is not None and done < NOW else None
        case.accountability = Accountability(
            responsibility=responsibility, measure="fine" if responsibility == "employee" else "process_change",
            fine=Decimal(500 if responsibility == "employee" else 0), assignee=f"general_manager.{case.dealer}",
            recorded_by="cr.center@aurora-motors.example", recorded_at=recorded, due_at=due, done_at=done)
        self.accountability.append(AccountabilityTask(
            brand=case.brand, case_no=case.case_no, dealer=case.dealer, region=case.region,
            responsibility=responsibility, measure=case.accountability.measure, fine=str(case.accountability.fine),
            assignee=case.accountability.assignee, recorded_at=recorded, due_at=due, done_at=done))


# ----- moto --------------------------------------------------------------------------------------------
@contextmanager
def unsorted_index_walk() -> Iterator[None]:
    """moto walks and sorts every item of the table for each page of an index Query, then runs
    through every item of the index partition. Here a Query walks the table once, unsorted, for the
    items its key condition (hash key and range) selects, and its later pages reuse them (moto still
    sorts and pages what it found itself, so results and pages are the same). Only for reads: the
    candidates of a query are not refreshed by writes."""
    from moto.dynamodb.models.table import Table

    local = threading.local()
    candidates: dict[tuple[Any, ...], list[Any]] = {}
    query, all_items = Table.query, Table.all_items

    def walk(self: Any) -> Any:
        key = getattr(local, "key", None)
        if key is None or key[0] != id(self):
            return all_items(self)
        if key not in candidates:
            (attr, value), (range_attr, comparison, objs) = local.condition
            groups: list[Any] = list(self.items.values())
            candidates[key] = [
                i for group in groups for i in (group.values() if self.range_key_attr else [group])
                if (found := i.attrs.get(attr)) is not None and found == value
                and (comparison is None or ((r := i.attrs.get(range_attr)) is not None and r.compare(comparison, objs)))]
        return candidates[key]

    def indexed(self: Any, *args: Any, **kwargs: Any) -> Any:
        index = kwargs.get("index_name") if "index_name" in kwargs else (args[7] if len(args) > 7 else None)
        conditions = kwargs.get("hash_key_conditions") or []
        if index and len(conditions) == 1:
            schema = next(i.schema for i in self.all_indexes() if i.name == index)
            range_attr = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
            comparison, objs = (args[1], args[2]) if range_attr else (None, [])
            local.condition = (conditions[0], (range_attr, comparison, objs))
            local.key = (id(self), str(index), repr(conditions[0][1]), comparison, repr(objs))
        try:
            return query(self, *args, **kwargs)
        finally:
            local.key = None

    Table.all_items, Table.query = walk, indexed  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.all_items, Table.query = all_items, query  # type: ignore[method-assign]
        candidates.clear()


# ----- one size ----------------------------------------------------------------------------------------
@dataclass
class Measured:
    seconds: float
    rru: float
    requests: dict[str, int]
    parts: dict[str, float]  # read units by what was read (the partition, and the key range of the aggregates')


PARTS = {"AGG S#": "aggregates: summaries", "AGG D#": "aggregates: detail", "AGG O#": "opinions", "OPEN": "open cases", "ACCOUNTABILITY": "accountability", "ACCT": "accountability",
         "CORRECTIONS": "corrections", "BRAND": "cases (by_brand)", "RISK": "risk buckets"}


class PartsMeter(DynamoMeter):
    """The lifecycle benchmark's meter, with each request's read units put down to what it read."""

    def __init__(self) -> None:
        super().__init__(serialize=False)  # the runtime lets one request at a time into moto already
        self.parts: dict[str, float] = {}

    def _record(self, op: str, handler: Any, result: Any) -> None:
        before = self.counts.rru
        super()._record(op, handler, result)
        body: dict[str, Any] = handler.body if isinstance(handler.body, dict) else {}
        values = [str(v.get("S", "")) for v in (body.get("ExpressionAttributeValues") or {}).values()
                  if isinstance(v, dict)]
        key = next((v for v in values if "#" in v and v.split("#")[0].isupper()), op)
        kind = key.split("#")[0]
        if kind == "AGG":
            kind += " " + next((v[:2] for v in values if v[:2] in ("S#", "D#", "O#", "M#")), "")
        label = PARTS.get(kind, kind)
        self.parts[label] = self.parts.get(label, 0.0) + self.counts.rru - before


@dataclass
class SizeResult:
    cases: int
    dealers: int
    generate_seconds: float
    items_written: int
    from_aggregates: Measured
    recomputed: Measured
    dealer_report: Measured  # one dealer's December report, from aggregates
    counts_full: Measured  # the brand report again, once every count item holds every metric (``fill_counts``)
    full: Measured  # and once every risk bucket month holds every scope too (``fill_risk``)
    reports_identical: bool
    html_bytes: int
    cases_open_at_risk: int
    notes: list[str] = field(default_factory=list)


def measure(label: str, action: Any) -> tuple[Measured, Any]:
    meter = PartsMeter()
    with meter.active():
        start = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - start
    counts = meter.counts
    parts = {k: round(v, 1) for k, v in sorted(meter.parts.items(), key=lambda kv: -kv[1])}
    print(f"  {label:<28} {seconds:8.2f} s {counts.rru:10.1f} RRU  {dict(counts.requests)}  {parts}", flush=True)
    return Measured(round(seconds, 3), round(counts.rru, 1), dict(counts.requests), parts), result


def run_size(cases: int, dealers: int, seed: int = 2026, moto_as_is: bool = False) -> SizeResult:
    from shared.runtime import wiring

    print(f"\n{cases:,} cases across {dealers} dealers, 12 months of {YEAR}", flush=True)
    runtime = LocalRuntime(LocalConfig(clock="manual", start=NOW)).start()
    try:
        store = wiring.case_store()
        store.put_tenant(tenant_doc(dealers), [])
        tenant = store.get_tenant("aurora")
        generator = Generator(tenant, seed)
        started = time.perf_counter()
        last = [started]

        def progress(done: int) -> None:
            if done % 5000 == 0 or done == cases:
                now = time.perf_counter()
                print(f"  generated {done:>7,} cases  {now - started:7.1f} s  ({(now - last[0]):.1f} s for the last batch)",
                      flush=True)
                last[0] = now

        gc.disable()  # the table grows to hundreds of thousands of moto objects: no full collections meanwhile
        written = store.bulk_import(generator.cases(cases), on_progress=progress)
        for task in generator.accountability:
            store.put_accountability_task(task)
        for month, count in sorted(generator.corrections.items()):
            for _ in range(count):
                store.count_correction("aurora", month, ["category"])
        generate_seconds = time.perf_counter() - started
        # moto's table lives in this process (an AWS Lambda never holds it): leave it out of the
        # collector's work, or the measured seconds are mostly full collections walking it.
        gc.collect()
        gc.freeze()
        gc.enable()
        items = sum(len(group) for table in _tables() for group in table.items.values())
        print(f"  written in {generate_seconds:.1f} s: {written:,} cases, {len(generator.accountability):,} "
              f"accountability tasks, {items:,} items in the table", flush=True)

        with unsorted_index_walk() if not moto_as_is else _nothing():
            aggregated, report = measure("from aggregates", lambda: _report(store, store, tenant, Scope("brand")))
            dealer, _ = measure("dealer report (aggregates)",
                                lambda: _report(store, store, tenant, scope_of(tenant, dealer="D001")))

            def recompute() -> tuple[Any, str]:
                months = [f"{YEAR}-{m:02d}" for m in range(1, 13)]
                fresh = kpis.recompute((c for m in months for c in store.cases_received("aurora", *_bounds(m))), tenant)
                return _report(fresh, store, tenant, Scope("brand"))

            recomputed, again = measure("recomputed from cases", recompute)
        identical = render_json(report[0]) == render_json(again[0])
        print(f"  reports identical: {identical}", flush=True)
        added = fill_counts(store, tenant)
        print(f"  every count item filled: {added:,} numbers added", flush=True)
        counts_full, _ = measure("from aggregates, counts full", lambda: _report(store, store, tenant, Scope("brand")))
        added = fill_risk(store, tenant)
        print(f"  every risk bucket filled: {added:,} numbers added", flush=True)
        full, _ = measure("from aggregates, all full", lambda: _report(store, store, tenant, Scope("brand")))
        return SizeResult(cases, dealers, round(generate_seconds, 1), items, aggregated, recomputed, dealer,
                          counts_full, full, identical, len(report[1]),
                          report[0].at_risk_overdue + report[0].at_risk_due_soon)
    finally:
        runtime.stop()
        gc.unfreeze()
        gc.collect()


def _scopes(tenant: Tenant) -> list[str]:
    return [kpis.BRAND, *sorted({kpis.region_scope(d.region) for d in tenant.dealers}),
            *(kpis.dealer_scope(d.region, d.code) for d in tenant.dealers)]


def fill_counts(store: Any, tenant: Tenant) -> int:
    """The most the counts part of a brand report can read with this tenant, whatever the number of
    cases: every metric the generated cases produced in any scope and month, added to every scope of
    every month of the year where it is missing (each to its part, ``kpis.part_of``). The figures
    change; only the read units of the report made next are meant. Returns the numbers added."""
    brand = tenant.brand.id
    months = [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    added = 0
    stored = {m: kpis.all_counts(store, brand, m) for m in months}
    vocabulary = sorted({metric for by_scope in stored.values() for values in by_scope.values() for metric in values})
    for month in months:
        for scope in _scopes(tenant):
            missing = {metric: Decimal(1) for metric in vocabulary if metric not in stored[month].get(scope, {})}
            if missing:
                store.kpi_adjust(brand, month, scope, missing)
                added += len(missing)
    return added


def fill_risk(store: Any, tenant: Tenant) -> int:
    """Every risk metric of every scope in every bucket month up to December: each scope with a case
    still open from every month of the year (what the risk part reads grows with the months of such a
    backlog, not with the cases in it). Returns the numbers added."""
    brand = tenant.brand.id
    buckets = store.kpi_risk_buckets(brand, REPORTED.key)
    fill: dict[tuple[str, str], dict[str, Decimal]] = {}
    for month in sorted({m for m, _ in buckets} | {f"{YEAR}-{m:02d}" for m in range(1, 13)}):
        for scope in _scopes(tenant):
            missing = {metric: Decimal(1) for metric in kpis.RISK_METRICS if metric not in buckets.get((month, scope), {})}
            if missing:
                fill[(month, scope)] = missing
    store._kpi_add_risk(brand, fill)
    return sum(len(values) for values in fill.values())


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _tables() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from shared.runtime.settings import settings

    return [dynamodb_backends[DEFAULT_ACCOUNT_ID][settings().region].get_table(settings().table_name)]


def _bounds(month: str) -> tuple[datetime, datetime]:
    year, number = int(month[:4]), int(month[5:])
    start = datetime(year, number, 1, tzinfo=SHANGHAI)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=SHANGHAI)
    return start.astimezone(UTC), end.astimezone(UTC)


def _report(reader: Any, store: Any, tenant: Tenant, scope: Scope) -> tuple[Any, str]:
    report = build_report(reader, store, tenant, scope, REPORTED, NOW)
    return report, render_html(report)


# ----- the run -----------------------------------------------------------------------------------------
def render(results: list[SizeResult], load: tuple[float, float]) -> str:
    lines = [f"Monthly brand report ({REPORTED.key}), from the KPI aggregates and recomputed from the cases",
             f"  machine  {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}, "
             f"Python {platform.python_version()}; 1-min load average {load[0]:.1f} at the start, {load[1]:.1f} at the end",
             "", f"  {'cases':>9} {'dealers':>8} {'generate s':>11} | {'aggregates s':>12} {'RRU':>8} {'requests':>9} | "
             f"{'recomputed s':>12} {'RRU':>9} {'requests':>9} | {'dealer s':>8} {'RRU':>6} | same"]
    for r in results:
        lines.append(f"  {r.cases:>9,} {r.dealers:>8} {r.generate_seconds:>11.1f} | {r.from_aggregates.seconds:>12.2f} "
                     f"{r.from_aggregates.rru:>8.1f} {sum(r.from_aggregates.requests.values()):>9} | "
                     f"{r.recomputed.seconds:>12.2f} {r.recomputed.rru:>9.1f} {sum(r.recomputed.requests.values()):>9} | "
                     f"{r.dealer_report.seconds:>8.2f} {r.dealer_report.rru:>6.1f} | {r.reports_identical} | "
                     f"counts full {r.counts_full.rru:.1f} RRU, all full {r.full.rru:.1f} RRU")
    lines.append("")
    for r in results:
        lines.append(f"  {r.cases:,} cases: from aggregates, RRU by what was read {r.from_aggregates.parts}; "
                     f"counts full {r.counts_full.parts}; all full {r.full.parts}; "
                     f"recomputed {r.recomputed.parts}; {r.items_written:,} items in the table; "
                     f"HTML {r.html_bytes:,} bytes; {r.cases_open_at_risk:,} open cases at risk")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--dealers", type=int, default=200)
    parser.add_argument("--also", type=int, action="append", default=[], help="another size, same dealers")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--moto-as-is", action="store_true", help="leave moto's sorted walk of index queries")
    function_output_option(parser)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    with function_output(args.function_output):
        results = [run_size(n, args.dealers, args.seed, args.moto_as_is) for n in [*args.also, args.cases]]
    out = render(results, (load_start, os.getloadavg()[0]))
    print("\n" + out)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in results], f, indent=1)
    if not all(r.reports_identical for r in results):
        sys.exit("the report from the aggregates differs from the one recomputed from the cases")


if __name__ == "__main__":
    main()
