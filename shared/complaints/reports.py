"""Reports people want to read (policy.md §10): the KPIs of a brand, a region or a dealer for a month,
a quarter or a year, as data (``build_report``), then as HTML with charts, CSV or JSON, and mailed
monthly to the brand CR center, each region's manager and each dealer's staff (``send_monthly``).

Every figure comes from the KPI aggregates (``kpis.py``): a report reads the counts of its own scope
(a dealer's in two parts) and the summaries of the dealers and regions it ranks, per month, never the
cases. Time-dependent figures (open cases at risk, overdue accountability tasks)
are as of the end of the period once it has ended — counted from the risk buckets, with the earliest
due listed — and as of the moment the report is made while it runs (read from the open entries).
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from .cells import decimal_text, money, write_csv
from .charts import BAD, BRAND, GOOD, Bar, Series, bar_chart, column_chart, line_chart
from .clock import iso
from .errors import InvalidInputError
from .kpis import BRAND as BRAND_SCOPE
from .kpis import (
    Counts,
    KpiReader,
    OpenEntry,
    OpinionEntry,
    Part,
    dealer_scope,
    entry_prefix,
    has_detail,
    in_scope,
    month_start,
    next_month,
    region_scope,
)
from .manual_intake import CHANNEL_NAMES
from .notifications import TEMPLATES, html_lang, localize
from .policy import Policy
from .ports import AccountabilityTask, Mailer, OutgoingMail
from .tenant import Staff, Tenant
from .views import Viewer

ScopeKind = Literal["brand", "region", "dealer"]
PeriodKind = Literal["month", "quarter", "year"]
TREND_MONTHS = 12
TOP_ISSUES = 10
OPINIONS_SHOWN = 12
AT_RISK_LISTED = 30
OVERDUE_TASKS_LISTED = 30
DEALER_ROLES = ("cs_head", "service_manager", "general_manager")

# ----- words --------------------------------------------------------------------------------------
LABELS: dict[str, tuple[str, str]] = {
    "category:product_quality": ("产品质量", "Product quality"), "category:service": ("服务", "Service"),
    "category:price": ("价格", "Price"), "category:other": ("其他", "Other"),
    "severity:critical": ("紧急", "Critical"), "severity:major": ("重大", "Major"), "severity:general": ("一般", "General"),
    "channel:email": ("邮件", "E-mail"),
    **{f"channel:{k}": (zh, en.capitalize()) for k, (zh, en) in CHANNEL_NAMES.items()},
    "root_cause:product": ("产品", "Product"), "root_cause:service": ("服务", "Service"),
    "root_cause:communication": ("沟通", "Communication"), "root_cause:open": ("调查中", "Not investigated yet"),
    "milestone:acknowledgement": ("受理回执", "Acknowledgement"), "milestone:first_contact": ("首次联系", "First contact"),
    "milestone:preliminary_feedback": ("初步反馈", "Preliminary feedback"),
    "milestone:solution": ("解决方案（一般）", "Solution (general)"), "milestone:result": ("调查结果（重大）", "Result (major)"),
    "milestone:joint_plan": ("联合方案", "Joint plan"),
    "responsibility:employee": ("员工责任", "Employee"), "responsibility:management": ("管理责任", "Management"),
    "responsibility:system": ("制度责任", "System"),
    "hazard:brakes": ("安全：制动", "Safety: brakes"), "hazard:steering": ("安全：转向", "Safety: steering"),
    "hazard:airbag": ("安全：气囊", "Safety: airbag"), "hazard:seatbelt": ("安全：安全带", "Safety: seat belt"),
    "hazard:wheels": ("安全：车轮", "Safety: wheels"), "hazard:fire": ("安全：起火冒烟", "Safety: fire or smoke"),
    "hazard:battery": ("安全：动力电池", "Safety: battery"), "hazard:power_loss": ("安全：动力中断", "Safety: loss of power"),
    "hazard:injury": ("安全：人身伤害", "Safety: injury"), "hazard:danger": ("安全：其他危险", "Safety: other danger"),
    "threat:media": ("媒体曝光", "Media exposure"), "threat:regulator": ("监管投诉", "Regulator"),
    "threat:lawsuit": ("诉讼", "Lawsuit"), "demand:compensation": ("要求退换/赔偿", "Demands refund or compensation"),
    "measure:verbal_warning": ("口头警告", "Verbal warning"), "measure:written_warning": ("书面警告", "Written warning"),
    "measure:fine": ("罚款", "Fine"), "measure:suspension": ("停职", "Suspension"), "measure:demotion": ("降职", "Demotion"),
    "measure:dismissal": ("解聘", "Dismissal"), "measure:training": ("培训", "Training"),
    "measure:process_change": ("流程整改", "Process change"), "measure:system_change": ("制度整改", "System change"),
    "field:corrected": ("更正次数", "Corrections"), "field:category": ("类别", "Category"),
    "field:severity": ("严重程度", "Severity"), "field:safety": ("安全风险", "Safety flag"),
    "field:media_or_regulator": ("媒体/监管", "Media/regulator flag"),
    "field:reviewed": ("复核确认次数", "Reviews (confirmed as classified)"),
    "field:safety_confirmed": ("安全隐患已确认", "Possible safety risks confirmed"),
    "field:safety_dismissed": ("安全隐患已排除", "Possible safety risks dismissed"),
    "field:category_confirmed": ("类别已确认", "Categories confirmed"),
}


def label(key: str, zh: bool) -> str:
    if key in LABELS:
        return LABELS[key][0 if zh else 1]
    kind, _, rest = key.partition(":")
    if kind == "cause":  # <category>/<root cause>
        category, _, cause = rest.partition("/")
        return f"{label('category:' + category, zh)} · {label('root_cause:' + cause, zh)}"
    if kind == "model":  # <model>/<category>
        model, _, category = rest.partition("/")
        return f"{model} · {label('category:' + category, zh)}"
    return rest or key


# ----- periods and scopes ----------------------------------------------------------------------------
YEARS = range(2000, 2101)


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    year: int
    number: int = 0  # the month (1-12) or the quarter (1-4)

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026-11`` (a month), ``2026-Q4`` (a quarter), ``2026`` (a year), of the years
        ``YEARS`` (a calendar beyond them has no cases and breaks date arithmetic)."""
        t = text.strip().upper()
        year, _, rest = t.partition("-")
        if t.isascii() and len(year) == 4 and year.isdigit() and int(year) in YEARS:
            if not rest and "-" not in t:
                return cls("year", int(year))
            if len(rest) == 2 and rest[0] == "Q" and rest[1] in "1234":
                return cls("quarter", int(year), int(rest[1]))
            if len(rest) in (1, 2) and rest.isdigit() and 1 <= int(rest) <= 12:
                return cls("month", int(year), int(rest))
        raise InvalidInputError(f"a period is YYYY-MM, YYYY-Qn or YYYY, of the years {YEARS.start}-{YEARS.stop - 1}",
                                {"period": text[:20]})

    @classmethod
    def month_before(cls, at: datetime, timezone: str) -> Period:
        """The calendar month before ``at`` in the brand's time zone (what the 1st's mail reports)."""
        local = at.astimezone(ZoneInfo(timezone))
        year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        return cls("month", year, month)

    @property
    def key(self) -> str:
        return {"month": f"{self.year}-{self.number:02d}", "quarter": f"{self.year}-Q{self.number}",
                "year": f"{self.year}"}[self.kind]

    @property
    def months(self) -> list[str]:
        first, count = {"month": (self.number, 1), "quarter": (3 * self.number - 2, 3), "year": (1, 12)}[self.kind]
        return [f"{self.year}-{m:02d}" for m in range(first, first + count)]

    def label(self, zh: bool) -> str:
        if self.kind == "month":
            return f"{self.year}年{self.number}月" if zh else datetime(self.year, self.number, 1).strftime("%B %Y")
        if self.kind == "quarter":
            return f"{self.year}年第{self.number}季度" if zh else f"Q{self.number} {self.year}"
        return f"{self.year}年" if zh else str(self.year)


def months_back(last: str, count: int) -> list[str]:
    """``count`` months ending with ``last`` (``YYYY-MM``), oldest first."""
    year, month = int(last[:4]), int(last[5:])
    found = []
    for _ in range(count):
        found.append(f"{year}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found[::-1]


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    region: str | None = None
    dealer: str | None = None

    @property
    def key(self) -> str:
        if self.kind == "dealer":
            return dealer_scope(self.region, self.dealer or "")
        if self.kind == "region":
            return region_scope(self.region or "")
        return BRAND_SCOPE


class ScopeNotFoundError(InvalidInputError):
    """No such dealer or region in the tenant."""


def scope_of(tenant: Tenant, *, region: str | None = None, dealer: str | None = None) -> Scope:
    if dealer:
        if not tenant.has_dealer(dealer):
            raise ScopeNotFoundError("no such dealer", {"dealer": dealer[:20]})
        return Scope("dealer", tenant.dealer(dealer).region, dealer)
    if region:
        if region not in {d.region for d in tenant.dealers}:
            raise ScopeNotFoundError("no such region", {"region": region[:20]})
        return Scope("region", region)
    return Scope("brand")


def default_scope(member: Staff, tenant: Tenant) -> Scope:
    """What a staff member's own report is: the brand, their region, their dealer."""
    if member.role == "brand_cr":
        return Scope("brand")
    if member.role == "regional_manager":
        return Scope("region", member.region)
    return scope_of(tenant, dealer=member.dealer or "")


class ReportForbiddenError(Exception):
    """The scope asked for is outside what the caller may see."""


def requested_scope(member: Staff, viewer: Viewer, tenant: Tenant, params: dict[str, str]) -> Scope:
    """The scope a request asks for (``dealer=``, ``region=``, ``scope=brand``), else the caller's
    own; ``ScopeNotFoundError`` for an unknown one, ``ReportForbiddenError`` outside the caller's."""
    if params.get("dealer") or params.get("region") or params.get("scope") == "brand":
        scope = scope_of(tenant, region=params.get("region"), dealer=params.get("dealer"))
    else:
        scope = default_scope(member, tenant)
    if not may_read(viewer, tenant, scope):
        raise ReportForbiddenError("this report is outside what you may see")
    return scope


def may_read(viewer: Viewer, tenant: Tenant, scope: Scope) -> bool:
    """The report's scope is within what the viewer may see (``views.Viewer``: brand staff the brand,
    a regional manager the dealers of the region, dealer staff their dealer)."""
    if viewer.brand != tenant.brand.id:
        return False
    if scope.kind == "brand":
        return viewer.whole_brand
    if scope.kind == "region":
        dealers = {d.code for d in tenant.dealers if d.region == scope.region}
        return bool(dealers) and all(viewer.sees_dealer(d) for d in dealers)
    return viewer.sees_dealer(scope.dealer)


def scope_name(tenant: Tenant, scope: Scope, zh: bool) -> str:
    if scope.kind == "dealer":
        d = tenant.dealer(scope.dealer)
        return (d.name_zh or d.name) if zh else d.name
    if scope.kind == "region":
        return f"{scope.region} 大区" if zh else f"Region {scope.region}"
    return (tenant.brand.name_zh or tenant.brand.name) if zh else tenant.brand.name


# ----- figures --------------------------------------------------------------------------------------
def _rate(part: Decimal | int, whole: Decimal | int) -> float | None:
    return None if not whole else float(Decimal(part) / Decimal(whole))


def add_counts(into: Counts, more: Counts) -> None:
    for metric, value in more.items():
        into[metric] = into.get(metric, Decimal(0)) + value


def scores(counts: Counts) -> dict[int, int]:
    return {int(m.removeprefix("score:")): int(v) for m, v in counts.items() if m.startswith("score:") and v}


@dataclass
class Figures:
    """Every figure of policy.md §10 for one scope and period. A rate without a denominator is
    None (not 0): no rated case means no satisfaction figure, never a zero."""

    received: int
    closed: int
    on_time: int
    on_time_rate: float | None
    rated: int
    unrated: int
    survey_pending: int
    response_rate: float | None  # rated / surveyed (rated + closed unrated after the reminder)
    satisfaction: float | None  # average score of rated cases
    satisfied: int  # rated with a score >= the policy's satisfied_from
    satisfaction_rate: float | None
    repeat: int
    repeat_rate: float | None
    compensation: Decimal  # accepted and carried out, on the cases closed
    compensated: int
    fines: Decimal
    opinions: int
    corrected: int

    @classmethod
    def of(cls, c: Counts, policy: Policy) -> Figures:
        def n(metric: str) -> int:
            return int(c.get(metric, 0))

        hist = scores(c)
        rated = sum(hist.values())
        satisfied = sum(count for score, count in hist.items() if score >= policy.survey.satisfied_from)
        total = sum(score * count for score, count in hist.items())
        surveyed = rated + n("unrated")
        return cls(
            received=n("received"), closed=n("closed"), on_time=n("on_time"), on_time_rate=_rate(n("on_time"), n("closed")),
            rated=rated, unrated=n("unrated"), survey_pending=n("survey_pending"), response_rate=_rate(rated, surveyed),
            satisfaction=(total / rated) if rated else None, satisfied=satisfied, satisfaction_rate=_rate(satisfied, rated),
            repeat=n("repeat"), repeat_rate=_rate(n("repeat"), n("received")),
            compensation=c.get("compensation", Decimal(0)), compensated=n("compensated"), fines=c.get("fines", Decimal(0)),
            opinions=n("opinion"), corrected=n("corrected"))


# ----- the report ---------------------------------------------------------------------------------------
@dataclass
class Row:
    key: str
    label: str
    value: float  # a count, or an amount of money


@dataclass
class MilestoneRow:
    key: str
    label: str
    settled: int
    on_time: int
    rate: float | None


@dataclass
class TrendPoint:
    month: str
    label: str
    received: int
    closed: int
    on_time_rate: float | None
    satisfaction: float | None
    rated: int


@dataclass
class PlaceRow:
    """A dealer (or region) in the ranking."""

    rank: int
    code: str
    name: str
    region: str | None
    figures: Figures
    at_risk: int = 0
    responsibility: dict[str, int] = field(default_factory=dict)


@dataclass
class AtRiskCase:
    case_no: str
    dealer: str | None
    severity: str
    milestone: str
    due: str  # local time
    overdue: bool


@dataclass
class OverdueTask:
    case_no: str
    dealer: str | None
    responsibility: str
    measure: str
    due: str
    days_overdue: int


@dataclass
class Opinion:
    case_no: str
    dealer: str
    score: int
    comment: str


@dataclass
class Report:
    brand: str
    brand_name: str
    language: str
    scope: Scope
    scope_name: str
    period: Period
    period_label: str
    generated_at: datetime
    generated_local: str
    target_average: int
    satisfied_from: int
    at_risk_within: str
    summary: Figures
    by_category: list[Row]
    by_severity: list[Row]
    by_channel: list[Row]
    by_root_cause: list[Row]
    milestones: list[MilestoneRow]
    trend: list[TrendPoint]
    regions: list[PlaceRow]
    dealers: list[PlaceRow]
    top_issues: list[Row]
    opinions: list[Opinion]
    at_risk_overdue: int
    at_risk_due_soon: int
    at_risk: list[AtRiskCase]  # the earliest due, at most AT_RISK_LISTED
    responsibility: list[Row]
    overdue_tasks: list[OverdueTask]  # the longest overdue, at most OVERDUE_TASKS_LISTED
    overdue_tasks_total: int
    at_risk_as_of: str  # local time: the end of a period that has ended, else when the report was made
    corrections: list[Row]  # the fields staff corrected (brand reports: the brand's own counters)

    @property
    def zh(self) -> bool:
        return self.language.startswith("zh")

    def as_json(self) -> dict[str, Any]:
        return _plain(asdict(self)) | {"scope": {**asdict(self.scope), "key": self.scope.key},
                                       "period": {**asdict(self.period), "key": self.period.key,
                                                  "months": self.period.months}}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float):
        return round(value, 4)
    return value


class ReportStore(Protocol):
    def accountability_tasks(self, brand_id: str, *, due_before: datetime | None = None,
                             open_only: bool = True, limit: int | None = None,
                             scope: str = BRAND_SCOPE) -> list[AccountabilityTask]: ...
    def correction_counts(self, brand_id: str, month: str) -> dict[str, int]: ...


class CachedReader:
    """A ``KpiReader`` that reads each month's aggregates, opinions and the open entries once and
    answers every scope from them: the monthly run makes every dealer's report from a few queries."""

    def __init__(self, reader: KpiReader) -> None:
        self._reader = reader
        self._counts: dict[tuple[str, str, Part], dict[str, Counts]] = {}
        self._opinions: dict[tuple[str, str], list[OpinionEntry]] = {}
        self._open: dict[str, list[OpenEntry]] = {}
        self._risk: dict[tuple[str, str], dict[str, Counts]] = {}

    def kpi_counts(self, brand_id: str, month: str, prefix: str = "", part: Part = "summary") -> dict[str, Counts]:
        if (brand_id, month, part) not in self._counts:
            self._counts[(brand_id, month, part)] = self._reader.kpi_counts(brand_id, month, "", part)
        return {s: c for s, c in self._counts[(brand_id, month, part)].items() if s.startswith(prefix)}

    def kpi_opinions(self, brand_id: str, month: str, prefix: str = "",
                     limit: int | None = None) -> list[OpinionEntry]:
        if (brand_id, month) not in self._opinions:
            self._opinions[(brand_id, month)] = self._reader.kpi_opinions(brand_id, month)
        found = [o for o in self._opinions[(brand_id, month)] if o.key.startswith(prefix)]
        return found[:limit] if limit is not None else found

    def kpi_open(self, brand_id: str, due_before: datetime | None = None,
                 limit: int | None = None, scope: str = BRAND_SCOPE) -> list[OpenEntry]:
        if brand_id not in self._open:
            self._open[brand_id] = self._reader.kpi_open(brand_id)
        found = [e for e in self._open[brand_id]
                 if (due_before is None or e.due_at < due_before) and in_scope(scope, e.region, e.dealer)]
        return found[:limit] if limit is not None else found

    def kpi_risk(self, brand_id: str, month: str) -> dict[str, Counts]:
        if (brand_id, month) not in self._risk:
            self._risk[(brand_id, month)] = self._reader.kpi_risk(brand_id, month)
        return self._risk[(brand_id, month)]


class CachedStore:
    """A ``ReportStore`` that reads the accountability index and the correction counters once for a run."""

    def __init__(self, store: ReportStore) -> None:
        self._store = store
        self._tasks: dict[tuple[str, datetime | None, bool], list[AccountabilityTask]] = {}
        self._corrections: dict[tuple[str, str], dict[str, int]] = {}

    def accountability_tasks(self, brand_id: str, *, due_before: datetime | None = None,
                             open_only: bool = True, limit: int | None = None,
                             scope: str = BRAND_SCOPE) -> list[AccountabilityTask]:
        key = (brand_id, due_before, open_only)
        if key not in self._tasks:  # read in full once: the run's dealer reports filter it
            self._tasks[key] = self._store.accountability_tasks(brand_id, due_before=due_before, open_only=open_only)
        found = [t for t in self._tasks[key] if in_scope(scope, t.region, t.dealer)]
        return found[:limit] if limit is not None else found

    def correction_counts(self, brand_id: str, month: str) -> dict[str, int]:
        if (brand_id, month) not in self._corrections:
            self._corrections[(brand_id, month)] = self._store.correction_counts(brand_id, month)
        return self._corrections[(brand_id, month)]


def _scope_counts(reader: KpiReader, brand: str, scope: Scope, month: str) -> dict[str, Counts]:
    """The month's summaries a report of ``scope`` needs: its own, its regions' and its dealers'."""
    if scope.kind == "brand":
        return reader.kpi_counts(brand, month)
    if scope.kind == "region":
        return {**reader.kpi_counts(brand, month, scope.key), **reader.kpi_counts(brand, month, f"dealer#{scope.region}#")}
    return reader.kpi_counts(brand, month, scope.key)


def build_report(reader: KpiReader, store: ReportStore, tenant: Tenant, scope: Scope, period: Period,
                 now: datetime, language: str | None = None) -> Report:
    """The report as data: every figure and list the HTML, CSV and JSON forms show."""
    brand = tenant.brand.id
    language = language or tenant.brand.languages[0]
    zh = language.startswith("zh")
    policy = tenant.policy_for(scope.dealer)
    tz = ZoneInfo(tenant.brand.timezone)

    def local(at: datetime) -> str:
        return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    months = period.months
    by_month: dict[str, dict[str, Counts]] = {m: _scope_counts(reader, brand, scope, m) for m in months}
    own: Counts = {}
    places: dict[str, Counts] = defaultdict(dict)
    for month, values in by_month.items():
        add_counts(own, values.get(scope.key, {}))
        if has_detail(scope.key):
            add_counts(own, reader.kpi_counts(brand, month, scope.key, "detail").get(scope.key, {}))
        for key, counts in values.items():
            if key.startswith(("dealer#", "region#")) and key != scope.key:
                add_counts(places[key], counts)

    def rows(prefix: str, keys: Iterable[str]) -> list[Row]:
        return [Row(k, label(f"{prefix}:{k}", zh), float(own.get(f"{prefix}:{k}", 0))) for k in keys]

    investigated = sum(int(v) for m, v in own.items() if m.startswith("root_cause:"))
    by_root_cause = [*rows("root_cause", ("product", "service", "communication")),
                     Row("open", label("root_cause:open", zh), float(int(own.get("received", 0)) - investigated))]
    milestone_names = ("acknowledgement", "first_contact", "preliminary_feedback", "solution", "result", "joint_plan")
    milestones = [MilestoneRow(name, label(f"milestone:{name}", zh), int(own.get(f"milestone:{name}", 0)),
                               int(own.get(f"milestone_on_time:{name}", 0)),
                               _rate(own.get(f"milestone_on_time:{name}", 0), own.get(f"milestone:{name}", 0)))
                  for name in milestone_names if own.get(f"milestone:{name}", 0)]

    trend = []
    for month in months_back(months[-1], TREND_MONTHS):
        counts = (by_month[month] if month in by_month else reader.kpi_counts(brand, month, scope.key)).get(scope.key, {})
        f = Figures.of(counts, policy)
        trend.append(TrendPoint(month, f"{int(month[5:])}月" if zh else datetime(2000, int(month[5:]), 1).strftime("%b"),
                                f.received, f.closed, f.on_time_rate, f.satisfaction, f.rated))

    at_risk = _at_risk(reader, store, tenant, scope, period, now)
    open_cases, at_risk_by_place = at_risk.cases, at_risk.by_place

    def place_name(key: str) -> tuple[str, str | None, str]:
        kind, _, rest = key.partition("#")
        if kind == "region":
            return rest, rest, (f"{rest} 大区" if zh else f"Region {rest}")
        region, _, code = rest.partition("#")
        name = code
        if tenant.has_dealer(code):
            d = tenant.dealer(code)
            name = (d.name_zh or d.name) if zh else d.name
        return code, (region if region != "-" else None), name

    def ranking(kind: str, members: Iterable[str]) -> list[PlaceRow]:
        found = []
        for key in members:
            code, region, name = place_name(key)
            counts = places.get(key, {})
            found.append(PlaceRow(0, code, name, region, Figures.of(counts, tenant.policy_for(code if kind == "dealer" else None)),
                                  at_risk_by_place.get(key, 0),
                                  {r: int(counts.get(f"responsibility:{r}", 0)) for r in ("employee", "management", "system")}))
        found.sort(key=lambda p: (p.figures.on_time_rate is None, -(p.figures.on_time_rate or 0),
                                  p.figures.satisfaction is None, -(p.figures.satisfaction or 0), -p.figures.received, p.code))
        for i, p in enumerate(found, start=1):
            p.rank = i
        return found

    dealers: list[PlaceRow] = []
    regions: list[PlaceRow] = []
    if scope.kind != "dealer":
        dealers = ranking("dealer", {*(dealer_scope(d.region, d.code) for d in tenant.dealers
                                       if scope.kind == "brand" or d.region == scope.region),
                                     *(k for k in places if k.startswith("dealer#"))})
    if scope.kind == "brand":
        regions = ranking("region", {*(region_scope(d.region) for d in tenant.dealers),
                                     *(k for k in places if k.startswith("region#"))})

    issues = sorted(((m.removeprefix("issue:"), int(v)) for m, v in own.items() if m.startswith("issue:") and v),
                    key=lambda kv: (-kv[1], kv[0]))[:TOP_ISSUES]

    opinions = _opinions(reader, tenant, scope, months, zh)
    corrections: list[Row] = []
    if scope.kind == "brand":
        fields: dict[str, int] = defaultdict(int)
        for month in months:
            for name, count in store.correction_counts(brand, month.replace("-", "")).items():
                fields[name] += count
        corrections = [Row(k, label(f"field:{k}", zh), float(v)) for k, v in sorted(fields.items(), key=lambda kv: -kv[1])]

    return Report(
        brand=brand, brand_name=(tenant.brand.name_zh or tenant.brand.name) if zh else tenant.brand.name,
        language=language, scope=scope, scope_name=scope_name(tenant, scope, zh), period=period,
        period_label=period.label(zh), generated_at=now, generated_local=local(now),
        target_average=policy.kpis.target_average, satisfied_from=policy.survey.satisfied_from,
        at_risk_within=policy.kpis.at_risk_within.describe(language),
        summary=Figures.of(own, policy),
        by_category=rows("category", ("product_quality", "service", "price", "other")),
        by_severity=rows("severity", ("critical", "major", "general")),
        by_channel=rows("channel", ("email", *CHANNEL_NAMES)), by_root_cause=by_root_cause,
        milestones=milestones, trend=trend, regions=regions, dealers=dealers,
        top_issues=[Row(k, label(k, zh), float(v)) for k, v in issues], opinions=opinions,
        at_risk_overdue=at_risk.overdue, at_risk_due_soon=at_risk.due_soon,
        at_risk=[AtRiskCase(e.case_no, e.dealer, e.severity, label(f"milestone:{e.milestone}", zh), local(e.due_at),
                            e.due_at <= at_risk.as_of) for e in open_cases[:AT_RISK_LISTED]],
        responsibility=rows("responsibility", ("employee", "management", "system")),
        overdue_tasks=[OverdueTask(t.case_no, t.dealer, label(f"responsibility:{t.responsibility}", zh),
                                   label(f"measure:{t.measure}", zh), local(t.due_at),
                                   max(0, (at_risk.as_of - t.due_at) // timedelta(days=1))) for t in at_risk.tasks],
        overdue_tasks_total=at_risk.tasks_total, at_risk_as_of=local(at_risk.as_of), corrections=corrections)


@dataclass
class AtRisk:
    """Open cases at risk and accountability measures overdue, as of ``as_of``."""

    as_of: datetime
    overdue: int
    due_soon: int
    cases: list[OpenEntry]  # the earliest due, at most AT_RISK_LISTED
    by_place: dict[str, int]  # scope key (dealer#…, region#…) -> cases at risk
    tasks: list[AccountabilityTask]  # the longest overdue, at most OVERDUE_TASKS_LISTED
    tasks_total: int


def _at_risk(reader: KpiReader, store: ReportStore, tenant: Tenant, scope: Scope, period: Period,
             now: datetime) -> AtRisk:
    """A period that has ended: what was at risk at its end and is still open, counted from the risk
    buckets (``kpis.risk_buckets``: no read per case) and listed from the earliest entries only. A period
    still running: as of now, from the entries themselves (the backlog at risk is read)."""
    brand, tz = tenant.brand.id, tenant.brand.timezone
    policy = tenant.policy_for(scope.dealer)
    last = period.months[-1]
    end = month_start(next_month(last), tz)
    ended = now >= end
    as_of = end if ended else now
    window_end = tenant.calendar_for(scope.dealer).add(as_of, policy.kpis.at_risk_within)
    # One entry per case (a stale duplicate of a concurrent write is ignored). The scope's own entries
    # (dealers and regions: their index); of a period that has ended, only those listed.
    latest: dict[str, OpenEntry] = {}
    for e in reader.kpi_open(brand, window_end, limit=AT_RISK_LISTED if ended else None, scope=scope.key):
        if e.case_no not in latest or e.due_at > latest[e.case_no].due_at:
            latest[e.case_no] = e
    cases = sorted(latest.values(), key=lambda e: (e.due_at, e.case_no))
    tasks = store.accountability_tasks(brand, due_before=as_of, limit=OVERDUE_TASKS_LISTED if ended else None,
                                       scope=scope.key)
    if ended:
        risk = reader.kpi_risk(brand, last)
        own = risk.get(scope.key, {})
        at_risk, overdue = int(own.get("at_risk", 0)), int(own.get("overdue", 0))
        return AtRisk(as_of, overdue, at_risk - overdue, cases[:AT_RISK_LISTED],
                      {key: int(values.get("at_risk", 0)) for key, values in risk.items()},
                      tasks[:OVERDUE_TASKS_LISTED], int(own.get("tasks_overdue", 0)))
    by_place: dict[str, int] = defaultdict(int)
    for e in cases:
        if e.dealer:
            by_place[dealer_scope(e.region, e.dealer)] += 1
        if e.region:
            by_place[region_scope(e.region)] += 1
    return AtRisk(as_of, sum(1 for e in cases if e.due_at <= as_of), sum(1 for e in cases if e.due_at > as_of),
                  cases[:AT_RISK_LISTED], dict(by_place), tasks[:OVERDUE_TASKS_LISTED], len(tasks))


def _opinions(reader: KpiReader, tenant: Tenant, scope: Scope, months: list[str], zh: bool) -> list[Opinion]:
    """A sample of the period's customer opinions, best scores first: per region for the brand (so
    that one region does not fill the list), else for the scope, a bounded read either way."""
    brand = tenant.brand.id
    prefixes = ([f"{r}#" for r in sorted({d.region for d in tenant.dealers})] if scope.kind == "brand"
                else [entry_prefix(scope.key)])
    per = max(1, math.ceil(OPINIONS_SHOWN / len(prefixes)))
    found: list[OpinionEntry] = []
    for month in reversed(months):
        for prefix in prefixes:
            found.extend(reader.kpi_opinions(brand, month, prefix, limit=per))
        if len(found) >= OPINIONS_SHOWN:
            break
    found.sort(key=lambda o: (-o.score, o.month, o.case_no))
    shown = []
    for o in found[:OPINIONS_SHOWN]:
        name = o.dealer or ""
        if tenant.has_dealer(o.dealer):
            d = tenant.dealer(o.dealer)
            name = (d.name_zh or d.name) if zh else d.name
        shown.append(Opinion(o.case_no, name, o.score, o.comment))
    return shown


# ----- forms: HTML, CSV, JSON ------------------------------------------------------------------------------
def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def render_html(report: Report) -> str:
    zh = report.zh
    s = report.summary
    charts = {
        "category": _volume_chart(report.by_category, "按类别" if zh else "By category"),
        "severity": _volume_chart(report.by_severity, "按严重程度" if zh else "By severity"),
        "channel": _volume_chart([r for r in report.by_channel if r.value], "按渠道" if zh else "By channel"),
        "root_cause": _volume_chart(report.by_root_cause, "按根本原因" if zh else "By root cause"),
        "milestones": bar_chart([Bar(m.label, m.rate or 0.0, f"{pct(m.rate)} ({m.on_time}/{m.settled})",
                                     GOOD if (m.rate or 0) >= 0.9 else BAD) for m in report.milestones],
                                title="各节点及时率" if zh else "On-time rate per milestone", max_value=1.0,
                                width=520, label_width=150),
        "trend": line_chart(
            [p.label for p in report.trend],
            [Series("满意度" if zh else "Satisfaction", [p.satisfaction for p in report.trend], BRAND,
                    [score(p.satisfaction) for p in report.trend]),
             Series("及时率 %" if zh else "On time %", [None if p.on_time_rate is None else p.on_time_rate * 100
                                                      for p in report.trend], GOOD,
                    [pct(p.on_time_rate).removesuffix("%") for p in report.trend])],
            title="满意度与及时率趋势" if zh else "Satisfaction and on-time trend", target=report.target_average,
            y_min=_floor_of([report.target_average, *(p.satisfaction for p in report.trend),
                             *((p.on_time_rate or 0) * 100 for p in report.trend if p.on_time_rate is not None)]),
            target_text=(f"目标 {report.target_average}" if zh else f"target {report.target_average}")),
        "volume_trend": column_chart([p.label for p in report.trend], [p.received for p in report.trend],
                                     title="每月受理量" if zh else "Complaints received per month"),
        "issues": _volume_chart(report.top_issues, "主要问题" if zh else "Top issues", width=560, label_width=200),
    }
    html = TEMPLATES.get_template("reports/report.html").render(
        r=report, s=s, zh=zh, html_lang=html_lang(report.language), charts=charts, pct=pct, score=score, money=money,
        below_target=s.satisfaction is not None and s.satisfaction < report.target_average)
    return localize(html, report.language)


def _floor_of(values: Iterable[float | None]) -> float:
    """A scale's floor: the lowest value less a margin, in tens (scores and rates bunch near the top)."""
    lowest = min((v for v in values if v is not None), default=0.0)
    return float(max(0, math.floor((lowest - 5) / 10) * 10))


def _volume_chart(rows: list[Row], title: str, width: int = 440, label_width: int = 128) -> Any:
    return bar_chart([Bar(r.label, r.value, f"{r.value:,.0f}") for r in rows], title=title, width=width,
                     label_width=label_width)


def render_csv(report: Report) -> str:
    """One figure per line: ``section,key,label,metric,value`` (UTF-8 with a BOM, for spreadsheets)."""
    lines: list[list[object]] = []
    add = lines.append
    for name, value in asdict(report.summary).items():
        add(["summary", report.scope.key, report.scope_name, name, value])
    for section, rows in (("category", report.by_category), ("severity", report.by_severity),
                          ("channel", report.by_channel), ("root_cause", report.by_root_cause),
                          ("top_issue", report.top_issues), ("responsibility", report.responsibility),
                          ("correction", report.corrections)):
        for r in rows:
            add([section, r.key, r.label, "count", r.value])
    for m in report.milestones:
        for metric in ("settled", "on_time", "rate"):
            add(["milestone", m.key, m.label, metric, getattr(m, metric)])
    for p in report.trend:
        for metric in ("received", "closed", "on_time_rate", "satisfaction", "rated"):
            add(["trend", p.month, p.label, metric, getattr(p, metric)])
    for section, places in (("region", report.regions), ("dealer", report.dealers)):
        for place in places:
            add([section, place.code, place.name, "rank", place.rank])
            for name, value in asdict(place.figures).items():
                add([section, place.code, place.name, name, value])
            add([section, place.code, place.name, "at_risk", place.at_risk])
    add(["at_risk", "", "", "overdue", report.at_risk_overdue])
    add(["at_risk", "", "", "due_soon", report.at_risk_due_soon])
    for c in report.at_risk:
        add(["at_risk_case", c.case_no, c.milestone, "due", c.due])
    add(["overdue_accountability", "", "", "total", report.overdue_tasks_total])
    for t in report.overdue_tasks:
        add(["overdue_accountability", t.case_no, t.measure, "days_overdue", t.days_overdue])
    for o in report.opinions:
        add(["opinion", o.case_no, o.dealer, str(o.score), o.comment])
    return write_csv(["section", "key", "label", "metric", "value"], lines, bom=True)


def render_json(report: Report) -> str:
    return json.dumps(report.as_json(), ensure_ascii=False, indent=1)


RENDERERS = {"html": (render_html, "text/html; charset=utf-8"), "csv": (render_csv, "text/csv; charset=utf-8"),
             "json": (render_json, "application/json")}


# ----- the monthly mail ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    scope: Scope
    recipients: list[str]


def deliveries(tenant: Tenant) -> list[Delivery]:
    """Who gets which report on the 1st: the brand CR center the brand's, each regional manager their
    region's, each dealer's staff their dealer's."""
    found = [Delivery(Scope("brand"), [s.email for s in tenant.brand.staff if s.role == "brand_cr"])]
    for region in sorted({d.region for d in tenant.dealers}):
        found.append(Delivery(Scope("region", region), [s.email for s in tenant.brand.staff
                                                         if s.role == "regional_manager" and s.region == region]))
    for d in tenant.dealers:
        found.append(Delivery(Scope("dealer", d.region, d.code), [s.email for s in d.staff if s.role in DEALER_ROLES]))
    return [d for d in found if d.recipients]


def report_mail(report: Report, tenant: Tenant, recipients: list[str], now: datetime) -> OutgoingMail:
    zh, s = report.zh, report.summary
    subject = (f"[{report.brand_name}] 投诉月报 {report.period_label} · {report.scope_name}" if zh
               else f"[{report.brand_name}] Complaints report {report.period_label} · {report.scope_name}")
    lines = [
        f"{report.scope_name} · {report.period_label}",
        "",
        f"{'受理' if zh else 'Received'}: {s.received}    {'结案' if zh else 'Closed'}: {s.closed}    "
        f"{'及时率' if zh else 'On time'}: {pct(s.on_time_rate)}",
        f"{'满意度' if zh else 'Satisfaction'}: {score(s.satisfaction)} ({'目标' if zh else 'target'} {report.target_average})"
        f"    {'满意率' if zh else 'Satisfied'}: {pct(s.satisfaction_rate)}    "
        f"{'回访率' if zh else 'Response rate'}: {pct(s.response_rate)}",
        f"{'重复投诉率' if zh else 'Repeat complaints'}: {pct(s.repeat_rate)}    "
        f"{'补偿总额' if zh else 'Compensation'}: {money(s.compensation)}",
        f"{'风险案件' if zh else 'Open cases at risk'}: {report.at_risk_overdue + report.at_risk_due_soon} "
        f"({'已超时' if zh else 'overdue'} {report.at_risk_overdue})",
        "",
        ("完整报告（含图表）见本邮件的 HTML 版本。" if zh else "The full report with its charts is the HTML part of this mail."),
    ]
    domain = tenant.brand.sender_address.partition("@")[2] or "localhost"
    return OutgoingMail(
        sender=tenant.brand.sender_address, sender_name=tenant.sender_name(report.language), to=recipients,
        subject=localize(subject, report.language), text=localize("\n".join(lines) + "\n", report.language),
        html=render_html(report), message_id=f"<{uuid.uuid4().hex}@{domain}>",
        headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All",
                 "X-Report": f"{report.period.key} {report.scope.key}"}, sent_at=now)


class MonthlyStore(ReportStore, Protocol):
    def report_mailed(self, brand_id: str, month: str, scope: str) -> bool: ...
    def mark_report_mailed(self, brand_id: str, month: str, scope: str, at: datetime) -> None: ...


@dataclass
class MonthlyResult:
    month: str
    sent: list[str] = field(default_factory=list)  # scope keys
    skipped: list[str] = field(default_factory=list)  # mailed already (a retried run)


def send_monthly(reader: KpiReader, store: MonthlyStore, mailer: Mailer, tenant: Tenant, period: Period,
                 now: datetime) -> MonthlyResult:
    """Mail the month's reports. A retried run skips what was mailed already (marked after sending:
    a crash in between sends that one report twice, never none)."""
    cached, cached_store = CachedReader(reader), CachedStore(store)
    result = MonthlyResult(period.key)
    for delivery in deliveries(tenant):
        key = delivery.scope.key
        if store.report_mailed(tenant.brand.id, period.key, key):
            result.skipped.append(key)
            continue
        report = build_report(cached, cached_store, tenant, delivery.scope, period, now)
        mailer.send(report_mail(report, tenant, delivery.recipients, now))
        store.mark_report_mailed(tenant.brand.id, period.key, key, now)
        result.sent.append(key)
    return result
