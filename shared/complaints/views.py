"""What staff see: who may read which cases (the ``Viewer`` every scoped read of the store
takes), the case as JSON (architecture.md, "Local interface"), how close each case is to
breaching its deadline, and the console's filtered list and its CSV export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from . import notes
from .cells import write_csv
from .clock import iso
from .deadlines import step_schedule, warning_at
from .models import Case, Category, Classification, Phase, Severity, TimelineEvent
from .policy import Role
from .tenant import TRIAGE, Staff, Tenant


@dataclass(frozen=True)
class Viewer:
    """Who reads, and the part of the tenant they may read (policy.md §1): brand staff the
    whole brand, a regional manager the dealers of the region, dealer staff their dealer.
    The store's scoped reads (``CaseStore.case_for``/``cases_for``) take one: the staff API
    has no other way to read a case."""

    brand: str
    email: str
    role: Role
    dealers: frozenset[str] | None  # None: the whole brand, its triage queue included

    @classmethod
    def of(cls, member: Staff, tenant: Tenant) -> Viewer:
        dealers: frozenset[str] | None
        if member.role == "brand_cr":
            dealers = None
        elif member.role == "regional_manager":
            dealers = frozenset(d.code for d in tenant.dealers if member.region and d.region == member.region)
        else:
            dealers = frozenset({member.dealer}) if member.dealer else frozenset()
        return cls(tenant.brand.id, member.email.lower(), member.role, dealers)

    @property
    def whole_brand(self) -> bool:
        return self.dealers is None

    def sees_dealer(self, dealer: str | None) -> bool:
        return self.dealers is None or (dealer is not None and dealer in self.dealers)

    def sees(self, case: Case) -> bool:
        return case.brand == self.brand and self.sees_dealer(case.dealer)

    def partitions(self, dealer: str | None = None) -> list[str] | None:
        """The dealer partitions a list reads (``TRIAGE`` is the brand's queue); None: the
        brand's own index. A dealer outside the scope reads nothing."""
        if self.dealers is None:
            return None if dealer is None else [dealer]
        if dealer is None:
            return sorted(self.dealers)
        return [dealer] if dealer in self.dealers else []


def classification_json(c: Classification) -> dict[str, Any]:
    """How a case was classified, as the staff API shows it (the case, a correction's answer)."""
    return {"category": c.category, "severity": c.severity, "safety": c.safety, "media_or_regulator": c.media_or_regulator,
            "possible_safety": c.possible_safety, "safety_review": c.safety_review, "confidence": c.confidence,
            "category_reviewed": c.category_reviewed, "classification_reasons": c.reasons,
            "evidence": [e.model_dump() for e in c.evidence]}


def case_document(case: Case, events: list[TimelineEvent]) -> dict[str, Any]:
    c = case.classification
    return {
        "case_no": case.case_no,
        "phase": case.phase,
        "dealer": case.dealer,
        "region": case.region,
        "channel": case.channel,
        "level": case.level,
        **classification_json(c),
        "repeat_of": c.repeat_of,
        "language": case.language,
        "subject": case.subject,
        "received_at": iso(case.received_at),
        "closed_at": iso(case.closed_at) if case.closed_at else None,
        "assignee": case.assignee,
        "escalation_level": case.escalation_level,
        "customer": {"email": case.customer.email, "name": case.customer.name, "phone": case.customer.phone},
        "vehicle": case.vehicle.model_dump() if case.vehicle else None,
        "reporter": case.reporter,
        "on_time": case.on_time,
        "milestones": [
            {"name": m.name, "cycle": m.cycle, "due_at": iso(m.due_at), "met_at": iso(m.met_at) if m.met_at else None,
             "breached": m.breached, "original_due_at": iso(m.original_due_at) if m.original_due_at else None,
             "extensions": [{"reason": e.reason, "until": iso(e.until), "answer": e.answer,
                             "requested_by": e.requested_by}
                            for e in case.extensions if e.milestone == m.name and e.cycle == m.cycle]}
            for m in case.milestones
        ],
        "calendar_warning": case.calendar_warning,
        "investigation": case.investigation.model_dump(mode="json") if case.investigation else None,
        "plan": case.plan.model_dump(mode="json") if case.plan else None,
        "approvals": [a.model_dump(mode="json") for a in case.approvals],
        "customer_decision": case.customer_decision,
        "timeline": [{"at": iso(e.at), "type": e.type, "actor": e.actor, "summary": e.summary,
                      **({"note_id": e.data.get("note_id")} if e.type == notes.NOTE_KIND else {})} for e in events],
        "survey": {"score": case.survey.score if case.survey else None,
                   "grade": case.survey.grade if case.survey else None,
                   "comment": case.survey.comment if case.survey else None,
                   "unrated": case.survey.unrated if case.survey else False,
                   "opinion": case.survey.opinion if case.survey else False},
        "accountability": case.accountability.model_dump(mode="json") if case.accountability else None,
        "attention_reason": case.attention_reason,
        "attention_step": case.attention_step,
        "execution": case.execution,
    }


# ----- deadline risk --------------------------------------------------------------------------------
SlaState = Literal["at_risk", "breached", "on_track", "customer", "none"]
SLA_ORDER: dict[str, int] = {"breached": 0, "at_risk": 1, "on_track": 2, "customer": 3, "none": 4}


@dataclass(frozen=True)
class Sla:
    """Where a case stands against its next deadline: ``at_risk`` once the policy's warning
    fraction of the time is used up, ``breached`` past it, ``customer`` while the case
    waits on the customer, ``none`` when no deadline runs (closed, parked)."""

    state: SlaState
    deadline: str | None = None  # the milestone (or step) the deadline belongs to
    due_at: datetime | None = None


_STAFF_STEPS_WITHOUT_MILESTONE = ("approval", "carry_out")


def sla(case: Case, tenant: Tenant, now: datetime) -> Sla:
    if case.phase in ("closed", "needs_attention", "survey"):
        return Sla("none")
    policy = tenant.policy_for(case.dealer)
    open_milestones = [m for m in case.milestones if m.cycle == case.cycle and m.met_at is None]
    timer = case.step_timer
    if open_milestones:
        m = min(open_milestones, key=lambda m: m.due_at)
        # A milestone runs from receipt, or (follow-ups) from the survey answer that re-opened the case.
        start = case.received_at if case.cycle == 1 else (
            case.survey.answered_at if case.survey and case.survey.answered_at else case.received_at)
        name, due = m.name, m.due_at
        warn_at: datetime | None = warning_at(start, due, policy, tenant.calendar_for(case.dealer))
        breached = m.breached or now >= due
    elif timer is not None and timer.step in _STAFF_STEPS_WITHOUT_MILESTONE:
        schedule = step_schedule(case, timer.step, timer.opened_at, policy, tenant.calendar_for(case.dealer))
        name, due, warn_at, breached = timer.step, schedule.due_at, schedule.warn_at, now >= schedule.due_at
    elif timer is not None:
        return Sla("customer", timer.step)
    else:
        return Sla("none")
    if breached:
        return Sla("breached", name, due)
    if warn_at is not None and now >= warn_at:
        return Sla("at_risk", name, due)
    return Sla("on_track", name, due)


# ----- the console's list ---------------------------------------------------------------------------
class CaseFilters(BaseModel):
    """The console's filters (query parameters); empty means any."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    dealer: str | None = None
    phase: Phase | Literal["open"] | None = None  # open: anything not closed
    category: Category | None = None
    severity: Severity | None = None
    sla: Literal["at_risk", "breached", "on_track", "customer", "none"] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


@dataclass(frozen=True)
class CaseRow:
    case: Case
    sla: Sla


def urgency(row: CaseRow) -> int:
    """A critical case overdue comes before any other overdue case, and overdue cases
    before those only at risk: the longest-overdue safety case is the first thing to do."""
    if row.sla.state == "breached":
        return 0 if row.case.classification.severity == "critical" else 1
    return 2 + SLA_ORDER[row.sla.state]


def case_rows(cases: list[Case], tenant: Tenant, filters: CaseFilters, now: datetime) -> list[CaseRow]:
    """The cases a scoped read returned, filtered: breached critical cases first, then the
    other breached ones, then those at risk (each nearest due first), on track, waiting
    on the customer, and the rest newest first."""
    rows = []
    for case in cases:
        if filters.phase == "open" and case.phase == "closed":
            continue
        if filters.category and case.classification.category != filters.category:
            continue
        if filters.severity and case.classification.severity != filters.severity:
            continue
        row = CaseRow(case, sla(case, tenant, now))
        if filters.sla and row.sla.state != filters.sla:
            continue
        rows.append(row)
    rows.sort(key=lambda r: -r.case.received_at.timestamp())
    rows.sort(key=lambda r: (urgency(r), r.sla.due_at.timestamp() if r.sla.due_at else 0))
    return rows


def store_phase(filters: CaseFilters) -> str | None:
    """The phase the store's query can narrow to (``open`` is filtered afterwards)."""
    return filters.phase if filters.phase and filters.phase != "open" else None


def store_dealer(filters: CaseFilters) -> str | None:
    return filters.dealer if filters.dealer else None


EXPORT_COLUMNS = ("case_no", "received_at", "dealer", "region", "channel", "level", "phase", "category", "severity",
                  "safety", "media_or_regulator", "deadline_state", "next_deadline", "next_due_at", "assignee",
                  "subject")


def export_csv(rows: list[CaseRow], tenant: Tenant) -> str:
    """The filtered list as CSV, for a spreadsheet. No customer contact data (name, e-mail,
    phone, vehicle): the case number leads back to them for whoever may see the case. The
    assignee is a member of staff or nobody: a case waiting on the customer is assigned to
    the customer's address, which stays out."""
    return write_csv(EXPORT_COLUMNS, (_export_row(row, tenant) for row in rows))


def _export_row(row: CaseRow, tenant: Tenant) -> list[object]:
    c = row.case
    return [c.case_no, iso(c.received_at), c.dealer or TRIAGE, c.region or "", c.channel, c.level, c.phase,
            c.classification.category, c.classification.severity, c.classification.safety,
            c.classification.media_or_regulator, row.sla.state, row.sla.deadline or "",
            iso(row.sla.due_at) if row.sla.due_at else "", staff_assignee(c, tenant), c.subject]


def staff_assignee(case: Case, tenant: Tenant) -> str:
    """Who of the staff holds the case now ("" when it waits on the customer or on nobody)."""
    return case.assignee if case.assignee and tenant.staff_member(case.assignee) else ""
