"""KPIs of policy.md §10, kept up to date as cases change, so that a report never reads every case.

A case's **facts** (``case_facts``, a pure function of the case document and the brand's time
zone) are what it adds to the KPIs:

- **counts** by calendar month (in the brand's time zone) and metric, added to every **scope**
  the case belongs to: the brand, its region, its dealer. Volume figures count in the month of
  receipt, outcome figures (closed, on time, compensation, survey, accountability) in the month
  of closure, each milestone in the month it was due;
- at most one **opinion** (a rated survey with a high score and a comment: the comment only, with
  personal data removed), listed in the month of closure;
- at most one **open** entry: an open case's next deadline, for "open cases at risk of breach"
  (time-dependent, so it is an entry sorted by that deadline, not a count).

The store applies the difference between a case's previous and new facts whenever it writes the
case (``changes``): counts with atomic ``ADD``s on one aggregate item per month and scope, entries
with puts and deletes. The previous facts are those of the previous document, which the store's
conditional write returns (DynamoDB: ``ReturnValues=ALL_OLD``, no read). Before writing a case the
store records it as a **member** of each month it newly contributes to: a crash between the case
write and the aggregate writes is repaired by ``rebuild_month``, which recomputes that month from
its members (docs/decisions.md, "KPI aggregates").

A quarter or a year is the sum of its months. ``KpiTables`` keeps the same tables in memory: the
fake store's aggregates, and a recomputation from cases (tests, the benchmark).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from .clock import iso, parse_iso
from .errors import CaseNotFoundError
from .library import anonymize, known_identifiers
from .models import Case
from .tenant import Tenant

# What the facts are computed by. A store that finds a previous document written under another
# version cannot know what was applied for it: change this only with a rebuild of every month.
KPI_VERSION = 1

BRAND = "brand"
OPINION_CHARS = 500  # an opinion as the report quotes it
MONEY = frozenset({"compensation", "fines"})  # metrics in yuan; all others are counts

Counts = dict[str, Decimal]  # metric -> value

# A dealer's counts of a month are kept in two parts, so that what a brand or region report reads of the
# dealers it ranks does not depend on how varied their complaints are: the **summary** (every figure of
# ``Figures``: volume, outcome, survey histogram, compensation, responsibility — what a dealer's row in a
# ranking shows) and the **detail** (composition by category, severity, channel and root cause,
# milestones, issue tags — what only the dealer's own report shows). The brand's and the regions' counts,
# few and read by their own reports, are one part (the summary): a case write updates four items, not six.
Part = Literal["summary", "detail"]
PARTS: tuple[Part, ...] = ("summary", "detail")
DETAIL_PREFIXES = ("category:", "severity:", "channel:", "root_cause:", "milestone:", "milestone_on_time:", "issue:")


def has_detail(scope: str) -> bool:
    """Whether the scope's counts are kept in two parts (a dealer's) or in one."""
    return scope.startswith("dealer#")


def part_of(metric: str, scope: str) -> Part:
    """The part of a scope's counts a metric is kept in."""
    return "detail" if has_detail(scope) and metric.startswith(DETAIL_PREFIXES) else "summary"


# ----- scopes and months ---------------------------------------------------------------------------
def region_scope(region: str) -> str:
    return f"region#{region}"


def dealer_scope(region: str | None, dealer: str) -> str:
    return f"dealer#{region or '-'}#{dealer}"


def scopes_of(region: str | None, dealer: str | None) -> tuple[str, ...]:
    """Brand, region, dealer: the aggregates a case counts in (a case in the triage queue: the brand only)."""
    found = [BRAND]
    if region:
        found.append(region_scope(region))
    if dealer:
        found.append(dealer_scope(region, dealer))
    return tuple(found)


def in_scope(scope: str, region: str | None, dealer: str | None) -> bool:
    """Whether an entry of ``region`` and ``dealer`` belongs to the scope (a scope key)."""
    kind, _, rest = scope.partition("#")
    if kind == "region":
        return region == rest
    if kind == "dealer":
        return dealer_scope(region, dealer or "") == scope
    return True


def scope_place(scope: str) -> tuple[str | None, str | None]:
    """(region, dealer) of a scope key: (None, None) for the brand, (r, None) for a region."""
    kind, _, rest = scope.partition("#")
    if kind == "region":
        return rest, None
    if kind == "dealer":
        region, _, dealer = rest.partition("#")
        return (None if region == "-" else region), dealer
    return None, None


def entry_prefix(scope: str) -> str:
    """The key prefix of a scope's entries (opinions): ``<region>#<dealer>#<case_no>`` keys."""
    if scope == BRAND:
        return ""
    kind, _, rest = scope.partition("#")
    return f"{rest}#" if kind in ("region", "dealer") else f"{scope}#"


def entry_key(region: str | None, dealer: str | None, case_no: str) -> str:
    return f"{region or '-'}#{dealer or '-'}#{case_no}"


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def month_of(at: datetime, timezone: str) -> str:
    """``YYYY-MM`` of a moment in the brand's time zone."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(_zone(timezone)).strftime("%Y-%m")


# ----- facts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpinionEntry:
    """A customer opinion (policy.md §8: a score of at least ``opinion_from`` with a comment) for the
    monthly report: the comment with personal data removed, never who wrote it."""

    month: str  # of the case's closure
    case_no: str
    region: str | None
    dealer: str | None
    score: int
    comment: str

    @property
    def key(self) -> str:
        return entry_key(self.region, self.dealer, self.case_no)


@dataclass(frozen=True)
class OpenEntry:
    """An open case's next deadline: the earliest milestone not met yet."""

    case_no: str
    region: str | None
    dealer: str | None
    severity: str
    milestone: str
    due_at: datetime

    @property
    def key(self) -> str:
        """Sorts by deadline: the cases at risk are one key range."""
        return f"{iso(self.due_at)}#{self.case_no}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "due_at": iso(self.due_at)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpenEntry:
        return cls(**{**data, "due_at": parse_iso(str(data["due_at"]))})


@dataclass(frozen=True)
class CaseFacts:
    case_no: str
    scopes: tuple[str, ...]
    counts: dict[str, Counts]  # month -> metric -> value
    opinion: OpinionEntry | None = None
    open: OpenEntry | None = None
    risk: dict[str, Counts] = field(default_factory=dict)  # bucket month -> risk metric -> 1 (see ``risk_buckets``)


# ----- what is at risk at the end of a month, without reading it ---------------------------------------
# A report of a month that has ended shows what was at risk when it ended: open cases overdue or due
# within ``kpis.at_risk_within`` of the month's end, and accountability measures overdue then. Those are
# sets that change with time alone, so they are counted by **bucket**: an open entry counts once in the
# first month at whose end it is at risk, once in the first at whose end it is overdue; an open measure
# in the month of its deadline. The figure at the end of month M is the sum of the buckets up to M (the
# entries still open: one Query of a partition of one item per month, whatever the number of cases).
RISK_METRICS = ("at_risk", "overdue", "tasks_overdue")


def month_start(month: str, timezone: str) -> datetime:
    """The first instant of ``YYYY-MM`` in the brand's time zone (the end of the month before)."""
    year, number = int(month[:4]), int(month[5:7])
    return datetime(year, number, 1, tzinfo=_zone(timezone)).astimezone(UTC)


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12}-{number % 12 + 1:02d}"


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - (number == 1)}-{(number - 2) % 12 + 1:02d}"


def risk_buckets(entry: OpenEntry, tenant: Tenant) -> dict[str, Counts]:
    """The buckets of an open case's next deadline: ``overdue`` in the month the deadline falls in (it
    has passed at that month's end), ``at_risk`` in the first month whose end plus the dealer's
    ``at_risk_within`` (its working calendar) passes the deadline."""
    tz = tenant.brand.timezone
    within = tenant.policy_for(entry.dealer).kpis.at_risk_within
    calendar = tenant.calendar_for(entry.dealer)
    overdue = month_of(entry.due_at, tz)
    at_risk = overdue
    for _ in range(24):  # a window of up to two years
        if entry.due_at >= calendar.add(month_start(at_risk, tz), within):
            break
        at_risk = previous_month(at_risk)
    buckets: dict[str, Counts] = defaultdict(dict)
    buckets[at_risk]["at_risk"] = Decimal(1)
    buckets[overdue]["overdue"] = Decimal(1)
    return dict(buckets)


def issue_tags(case: Case) -> list[str]:
    """What the complaint is about, in a bounded vocabulary (each tag is an aggregate's attribute):
    the hazards and threats classification found, a demand for compensation, the category with
    the root cause found, the vehicle model with the category."""
    cls = case.classification
    tags: list[str] = []
    for reason in cls.reasons:
        for prefix, tag in (("safety (", "hazard"), ("media_or_regulator (", "threat")):
            if reason.startswith(prefix):
                tags.append(f"{tag}:{reason[len(prefix):].partition(')')[0]}")
        if reason.startswith("compensation: "):
            tags.append("demand:compensation")
    if case.investigation:
        tags.append(f"cause:{cls.category}/{case.investigation.root_cause}")
    model = (case.vehicle.model or "").strip() if case.vehicle else ""
    if model:
        tags.append(f"model:{_token(model)}/{cls.category}")
    return list(dict.fromkeys(tags))


def _token(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in text)[:40]


def survey_state(case: Case) -> str:
    """``rated`` (a score given after the latest closure), ``unrated`` (closed without an answer
    after the reminder) or ``pending`` (sent or about to be)."""
    s = case.survey
    if s is not None and s.score is not None and (
            s.answered_at is None or case.closed_at is None or s.answered_at >= case.closed_at):
        return "rated"
    if s is not None and s.unrated:
        return "unrated"
    return "pending"


def accepted_compensation(case: Case) -> Decimal:
    """What the customer accepted and the dealer carried out: the last plan's total."""
    if case.plan is None or case.customer_decision != "accept":
        return Decimal(0)
    return case.plan.total


def case_facts(case: Case, tenant: Tenant) -> CaseFacts:
    """What one case adds to the KPIs (see the module's docstring)."""
    tz = tenant.brand.timezone
    counts: dict[str, Counts] = defaultdict(lambda: defaultdict(Decimal))

    def add(at: datetime, metric: str, value: Decimal | int = 1) -> None:
        counts[month_of(at, tz)][metric] += Decimal(value)

    cls, received = case.classification, case.received_at
    for metric in ("received", f"category:{cls.category}", f"severity:{cls.severity}", f"channel:{case.channel}"):
        add(received, metric)
    if cls.repeat_of:
        add(received, "repeat")
    if case.investigation:
        add(received, f"root_cause:{case.investigation.root_cause}")
    if any(reason.startswith("corrected by ") for reason in cls.reasons):
        add(received, "corrected")
    for tag in issue_tags(case):
        add(received, f"issue:{tag}")
    for m in case.milestones:
        if m.met_at is not None or m.breached:  # settled: met (on time or late), or overdue
            add(m.due_at, f"milestone:{m.name}")
            if m.met_at is not None and not m.breached:
                add(m.due_at, f"milestone_on_time:{m.name}")

    opinion: OpinionEntry | None = None
    if case.closed_at is not None:
        closed = case.closed_at
        add(closed, "closed")
        if case.on_time:
            add(closed, "on_time")
        paid = accepted_compensation(case)
        if paid > 0:
            add(closed, "compensation", paid)
            add(closed, "compensated")
        state = survey_state(case)
        if state == "rated" and case.survey is not None and case.survey.score is not None:
            add(closed, f"score:{case.survey.score}")  # a histogram: the thresholds stay policy, read at report time
            if case.survey.opinion and case.survey.comment.strip():
                add(closed, "opinion")
                comment = anonymize(case.survey.comment, known_identifiers(case, tenant)).strip()
                opinion = OpinionEntry(month_of(closed, tz), case.case_no, case.region, case.dealer,
                                       case.survey.score, comment[:OPINION_CHARS])
        else:
            add(closed, "unrated" if state == "unrated" else "survey_pending")
        if case.accountability is not None:
            add(closed, f"responsibility:{case.accountability.responsibility}")
            if case.accountability.fine > 0:
                add(closed, "fines", case.accountability.fine)

    open_entry: OpenEntry | None = None
    if case.closed_at is None and case.phase not in ("closed", "survey"):
        waiting = [m for m in case.milestones if m.met_at is None]
        if waiting:
            nxt = min(waiting, key=lambda m: m.due_at)
            open_entry = OpenEntry(case.case_no, case.region, case.dealer, cls.severity, nxt.name, nxt.due_at)
    risk: dict[str, Counts] = risk_buckets(open_entry, tenant) if open_entry is not None else {}
    task = case.accountability
    if task is not None and task.done_at is None:
        bucket = risk.setdefault(month_of(task.due_at, tz), {})
        bucket["tasks_overdue"] = Decimal(1)
    return CaseFacts(case.case_no, scopes_of(case.region, case.dealer),
                     {month: dict(values) for month, values in counts.items()}, opinion, open_entry, risk)


# ----- changes ------------------------------------------------------------------------------------
@dataclass
class KpiChanges:
    """What a store writes for one case write: members first (before the case), then the rest."""

    brand: str
    case_no: str
    members: list[str] = field(default_factory=list)  # months the case newly contributes to
    deltas: dict[tuple[str, str], Counts] = field(default_factory=dict)  # (month, scope) -> metric -> delta
    put_opinions: list[OpinionEntry] = field(default_factory=list)
    delete_opinions: list[OpinionEntry] = field(default_factory=list)
    put_open: list[OpenEntry] = field(default_factory=list)
    delete_open: list[OpenEntry] = field(default_factory=list)
    risk: dict[tuple[str, str], Counts] = field(default_factory=dict)  # (bucket month, scope) -> metric -> delta

    @property
    def empty(self) -> bool:
        return not (self.members or self.deltas or self.put_opinions or self.delete_opinions or self.put_open
                    or self.delete_open or self.risk)


def _deltas(old: CaseFacts | None, new: CaseFacts | None, kind: str) -> dict[tuple[str, str], Counts]:
    """(month, scope) -> metric -> new minus old, of the facts' ``counts`` or ``risk``, zeros left out."""
    sums: dict[tuple[str, str], Counts] = defaultdict(lambda: defaultdict(Decimal))
    for facts, sign in ((old, -1), (new, 1)):
        if facts is None:
            continue
        by_month: dict[str, Counts] = getattr(facts, kind)
        for month, values in by_month.items():
            for scope in facts.scopes:
                for metric, value in values.items():
                    sums[(month, scope)][metric] += sign * value
    found = {key: {m: v for m, v in values.items() if v != 0} for key, values in sums.items()}
    return {key: values for key, values in found.items() if values}


def changes(brand: str, old: CaseFacts | None, new: CaseFacts | None) -> KpiChanges:
    """From ``old`` facts (None: nothing applied yet) to ``new`` (None: remove the case's facts)."""
    either = new or old
    out = KpiChanges(brand, either.case_no if either else "")
    out.deltas = _deltas(old, new, "counts")
    out.risk = _deltas(old, new, "risk")
    old_months = set(old.counts) if old else set()
    out.members = sorted(set(new.counts) - old_months) if new else []
    before, after = (old.opinion if old else None), (new.opinion if new else None)
    if before != after:
        if before is not None and (after is None or (before.month, before.key) != (after.month, after.key)):
            out.delete_opinions.append(before)
        if after is not None:
            out.put_opinions.append(after)
    was, now = (old.open if old else None), (new.open if new else None)
    if was != now:
        if was is not None and (now is None or was.key != now.key):
            out.delete_open.append(was)
        if now is not None:
            out.put_open.append(now)
    return out


def case_changes(old: Case | None, new: Case, tenant: Tenant) -> KpiChanges:
    """The changes for writing ``new`` over ``old`` (None: a new case)."""
    return changes(new.brand, case_facts(old, tenant) if old is not None else None, case_facts(new, tenant))


# ----- the tables, read and written ----------------------------------------------------------------
class KpiReader(Protocol):
    """What reports read: the store's aggregates, or a ``KpiTables`` recomputed from cases."""

    def kpi_counts(self, brand_id: str, month: str, prefix: str = "", part: Part = "summary") -> dict[str, Counts]:
        """One part (``part_of``) of the month's aggregates whose scope starts with ``prefix`` ("" =
        every scope); a metric that is not there is 0 (a count that went back to 0 is left out)."""
        ...

    def kpi_opinions(self, brand_id: str, month: str, prefix: str = "",
                     limit: int | None = None) -> list[OpinionEntry]: ...

    def kpi_open(self, brand_id: str, due_before: datetime | None = None,
                 limit: int | None = None, scope: str = BRAND) -> list[OpenEntry]:
        """Open cases of the scope (a scope key) whose next deadline is before ``due_before`` (None:
        all), earliest first, at most ``limit``."""
        ...

    def kpi_risk(self, brand_id: str, month: str) -> dict[str, Counts]:
        """What was at risk at the end of ``month`` and is still open, by scope: the sums of the risk
        buckets up to that month (``RISK_METRICS``)."""
        ...


class KpiTables:
    """The KPI tables in memory, with the store's contract: the fake store's aggregates, and
    a recomputation from cases (``recompute``)."""

    def __init__(self) -> None:
        self._kpi_counts: dict[tuple[str, str, str], Counts] = defaultdict(lambda: defaultdict(Decimal))
        self._kpi_members: set[tuple[str, str, str]] = set()
        self._kpi_opinions: dict[tuple[str, str, str], OpinionEntry] = {}
        self._kpi_open: dict[tuple[str, str], OpenEntry] = {}
        self._kpi_risk: dict[tuple[str, str, str], Counts] = defaultdict(lambda: defaultdict(Decimal))
        self._kpi_mailed: set[tuple[str, str, str]] = set()

    def kpi_record_members(self, changes: KpiChanges) -> None:
        for month in changes.members:
            self._kpi_members.add((changes.brand, month, changes.case_no))

    def kpi_apply(self, changes: KpiChanges) -> None:
        """Everything but the members (those are recorded before the case is written)."""
        for (month, scope), values in changes.deltas.items():
            counts = self._kpi_counts[(changes.brand, month, scope)]
            for metric, value in values.items():
                counts[metric] += value
        for o in changes.delete_opinions:
            self._kpi_opinions.pop((changes.brand, o.month, o.key), None)
        for o in changes.put_opinions:
            self._kpi_opinions[(changes.brand, o.month, o.key)] = o
        for e in changes.delete_open:
            self._kpi_open.pop((changes.brand, e.key), None)
        for e in changes.put_open:
            self._kpi_open[(changes.brand, e.key)] = e
        for (month, scope), values in changes.risk.items():
            bucket = self._kpi_risk[(changes.brand, month, scope)]
            for metric, value in values.items():
                bucket[metric] += value

    def kpi_counts(self, brand_id: str, month: str, prefix: str = "", part: Part = "summary") -> dict[str, Counts]:
        found = {scope: {k: v for k, v in values.items() if v and part_of(k, scope) == part}
                 for (b, m, scope), values in sorted(self._kpi_counts.items())
                 if b == brand_id and m == month and scope.startswith(prefix)}
        return {scope: values for scope, values in found.items() if values}

    def kpi_opinions(self, brand_id: str, month: str, prefix: str = "",
                     limit: int | None = None) -> list[OpinionEntry]:
        found = [o for (b, m, key), o in sorted(self._kpi_opinions.items())
                 if b == brand_id and m == month and key.startswith(prefix)]
        return found[:limit] if limit is not None else found

    def kpi_open(self, brand_id: str, due_before: datetime | None = None,
                 limit: int | None = None, scope: str = BRAND) -> list[OpenEntry]:
        found = [e for (b, _), e in sorted(self._kpi_open.items())
                 if b == brand_id and (due_before is None or e.due_at < due_before) and in_scope(scope, e.region, e.dealer)]
        return found[:limit] if limit is not None else found

    def kpi_risk_buckets(self, brand_id: str) -> dict[tuple[str, str], Counts]:
        return {(m, scope): {k: v for k, v in values.items() if v}
                for (b, m, scope), values in sorted(self._kpi_risk.items()) if b == brand_id and any(values.values())}

    def kpi_risk(self, brand_id: str, month: str) -> dict[str, Counts]:
        return sum_risk((scope, values) for (b, m, scope), values in sorted(self._kpi_risk.items())
                        if b == brand_id and m <= month)

    def kpi_compact_risk(self, brand_id: str, before: str) -> int:
        removed = 0
        for (b, m, _), bucket in self._kpi_risk.items():
            if b == brand_id and m < before:
                for metric in [k for k, v in bucket.items() if v == 0]:
                    del bucket[metric]
                    removed += 1
        return removed

    def kpi_members(self, brand_id: str, month: str) -> list[str]:
        return sorted(no for b, m, no in self._kpi_members if b == brand_id and m == month)

    def kpi_adjust(self, brand_id: str, month: str, scope: str, delta: Counts) -> None:
        counts = self._kpi_counts[(brand_id, month, scope)]
        for metric, value in delta.items():
            counts[metric] += value

    def report_mailed(self, brand_id: str, month: str, scope: str) -> bool:
        return (brand_id, month, scope) in self._kpi_mailed

    def mark_report_mailed(self, brand_id: str, month: str, scope: str, at: datetime) -> None:
        self._kpi_mailed.add((brand_id, month, scope))


def sum_risk(buckets: Iterable[tuple[str, Counts]]) -> dict[str, Counts]:
    """Bucket counts by scope, summed; scopes with nothing at risk left out."""
    total: dict[str, Counts] = defaultdict(lambda: defaultdict(Decimal))
    for scope, values in buckets:
        for metric, value in values.items():
            total[scope][metric] += value
    return {scope: {m: v for m, v in values.items() if v} for scope, values in total.items() if any(values.values())}


def all_counts(reader: KpiReader, brand_id: str, month: str, prefix: str = "") -> dict[str, Counts]:
    """Both parts of the month's aggregates, by scope (repairs and checks: a report reads what it shows)."""
    found: dict[str, Counts] = defaultdict(dict)
    for part in PARTS:
        for scope, values in reader.kpi_counts(brand_id, month, prefix, part).items():
            found[scope].update(values)
    return dict(found)


def recompute(cases: Iterable[Case], tenant: Tenant) -> KpiTables:
    """The KPI tables computed afresh from cases: what the aggregates must equal."""
    tables = KpiTables()
    for case in cases:
        changed = changes(case.brand, None, case_facts(case, tenant))
        tables.kpi_record_members(changed)
        tables.kpi_apply(changed)
    return tables


# ----- repair ----------------------------------------------------------------------------------------
class KpiRepairStore(KpiReader, Protocol):
    def get_tenant(self, brand_id: str) -> Tenant: ...
    def get_case(self, case_no: str) -> Case: ...
    def kpi_members(self, brand_id: str, month: str) -> list[str]: ...
    def kpi_adjust(self, brand_id: str, month: str, scope: str, delta: Counts) -> None: ...
    def kpi_apply(self, changes: KpiChanges) -> None: ...
    def kpi_risk_buckets(self, brand_id: str) -> dict[tuple[str, str], Counts]:
        """(bucket month, scope) -> risk metric -> count, as stored."""
        ...


@dataclass
class RebuildResult:
    month: str
    cases: int  # members read
    corrected: dict[str, Counts]  # scope -> metric -> what was added to make it right
    opinions_put: int
    opinions_deleted: int

    @property
    def consistent(self) -> bool:
        return not self.corrected and not self.opinions_put and not self.opinions_deleted


def rebuild_month(store: KpiRepairStore, brand_id: str, month: str) -> RebuildResult:
    """Recompute one month's aggregates and opinions from the cases that ever contributed to it
    (its members), and correct what differs. The correction is added (``ADD``), not written over,
    so that a case saved meanwhile keeps its own delta; run it when that month is quiet."""
    tenant = store.get_tenant(brand_id)
    numbers = store.kpi_members(brand_id, month)
    expected = KpiTables()
    for number in numbers:
        try:
            case = store.get_case(number)
        except CaseNotFoundError:
            continue  # a member recorded by a write that never happened
        facts = case_facts(case, tenant)
        if month in facts.counts or (facts.opinion and facts.opinion.month == month):
            expected.kpi_apply(changes(brand_id, None, facts))
    want, have = all_counts(expected, brand_id, month), all_counts(store, brand_id, month)
    corrected: dict[str, Counts] = {}
    for scope in sorted(set(want) | set(have)):
        w, h = want.get(scope, {}), have.get(scope, {})
        delta = {m: w.get(m, Decimal(0)) - h.get(m, Decimal(0)) for m in set(w) | set(h)}
        delta = {m: v for m, v in sorted(delta.items()) if v != 0}
        if delta:
            store.kpi_adjust(brand_id, month, scope, delta)
            corrected[scope] = delta
    wanted = {o.key: o for o in expected.kpi_opinions(brand_id, month)}
    stored = {o.key: o for o in store.kpi_opinions(brand_id, month)}
    fix = KpiChanges(brand_id, "")
    fix.put_opinions = [o for key, o in wanted.items() if stored.get(key) != o]
    fix.delete_opinions = [o for key, o in stored.items() if key not in wanted]
    store.kpi_apply(fix)
    return RebuildResult(month, len(numbers), corrected, len(fix.put_opinions), len(fix.delete_opinions))


def rebuild_open(store: KpiRepairStore, cases: Iterable[Case], tenant: Tenant) -> tuple[int, int]:
    """Make the open entries and the risk buckets those of ``cases`` (every case that may be open or
    have an open accountability measure: the caller reads them, e.g. by receipt date). Returns
    (entries written, entries removed); the buckets are corrected by ``ADD``."""
    brand_id = tenant.brand.id
    facts = [case_facts(c, tenant) for c in cases]
    wanted = {e.key: e for f in facts if (e := f.open) is not None}
    stored = {e.key: e for e in store.kpi_open(brand_id)}
    fix = KpiChanges(brand_id, "")
    fix.put_open = [e for key, e in wanted.items() if stored.get(key) != e]
    fix.delete_open = [e for key, e in stored.items() if key not in wanted]
    expected = KpiTables()
    for f in facts:
        expected.kpi_apply(changes(brand_id, None, f))
    want, have = expected.kpi_risk_buckets(brand_id), store.kpi_risk_buckets(brand_id)
    for key in sorted(set(want) | set(have)):
        w, h = want.get(key, {}), have.get(key, {})
        delta = {m: w.get(m, Decimal(0)) - h.get(m, Decimal(0)) for m in set(w) | set(h)}
        if any(delta.values()):
            fix.risk[key] = {m: v for m, v in delta.items() if v}
    store.kpi_apply(fix)
    return len(fix.put_open), len(fix.delete_open)


# ----- serialisation (the entries as stored) ------------------------------------------------------------
def opinion_json(o: OpinionEntry) -> str:
    return json.dumps(asdict(o), ensure_ascii=False)


def opinion_from_json(text: str) -> OpinionEntry:
    return OpinionEntry(**json.loads(text))


def open_json(e: OpenEntry) -> str:
    return json.dumps(e.as_json(), ensure_ascii=False)


def open_from_json(text: str) -> OpenEntry:
    return OpenEntry.from_json(json.loads(text))
