"""The case and what hangs off it, as the domain sees them (policy.md §3-§8)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal[
    "first_contact", "investigation", "plan", "approval", "customer_reply", "carry_out",
    "survey", "follow_up", "closed", "needs_attention",
]
Step = Literal[
    "first_contact", "investigation", "plan", "approval", "customer_reply", "carry_out",
    "survey", "follow_up",
]
Category = Literal["product_quality", "service", "price", "other"]
Severity = Literal["critical", "major", "general"]
Channel = Literal["email", "phone", "hotline_400", "walk_in", "social_media", "online_form", "letter"]
# What the customer wrote in; we answer in zh, zh-Hant or en (``language.REPLY_LANGUAGES``),
# other languages in the brand's fallback. ``other``: none of these.
Language = Literal["zh", "zh-Hant", "en", "de", "fr", "es", "it", "nl", "pt", "ru", "ja", "ko", "other"]
CompensationKind = Literal["money", "free_service", "product", "loan_car", "coupon", "buy_back", "vehicle_replacement"]
RootCause = Literal["product", "service", "communication"]
Responsibility = Literal["employee", "management", "system", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Customer(_Model):
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class VehicleRef(_Model):
    vin: str | None = None
    model: str | None = None
    plate: str | None = None


class Evidence(_Model):
    """One piece of what a classification weighed: the customer's own words and what they count for."""

    kind: str  # "safety:<hazard>", "threat:<kind>", "demand", "category:<category>", "discounted:<why>"
    phrase: str  # in the customer's language, as written
    weight: float = 1.0


SafetyReview = Literal["confirmed", "dismissed"]


class Classification(_Model):
    category: Category
    severity: Severity
    safety: bool
    media_or_regulator: bool
    repeat_of: str | None = None
    reasons: list[str] = Field(default_factory=list)  # the phrases that decided
    # Recall first (policy §4): a safety risk that is possible but not certain makes the case
    # critical with this flag, until the brand CR center confirms or dismisses it.
    possible_safety: bool = False
    safety_review: SafetyReview | None = None
    confidence: float | None = None  # of the category, 0-1; low ones go to the review queue
    evidence: list[Evidence] = Field(default_factory=list)
    category_reviewed: bool = False  # staff set or confirmed the category: it leaves the review queue


class Milestone(_Model):
    name: str
    cycle: int = 1
    due_at: datetime
    met_at: datetime | None = None
    breached: bool = False
    warned_at: datetime | None = None
    escalations: int = 0
    original_due_at: datetime | None = None  # before an extension the customer agreed to

    @property
    def open(self) -> bool:
        return self.met_at is None


class CompensationItem(_Model):
    kind: CompensationKind
    value: Decimal = Field(ge=0)
    description: str = ""


class Plan(_Model):
    revision: int
    measures: str
    compensation: list[CompensationItem] = Field(default_factory=list)
    follow_up: str = ""
    submitted_by: str
    submitted_at: datetime

    @property
    def total(self) -> Decimal:
        return sum((c.value for c in self.compensation), Decimal(0))


class Approval(_Model):
    plan_revision: int
    level: int
    role: str
    approver: str
    decision: Literal["approve", "reject"] | None = None
    comment: str = ""
    decided_at: datetime | None = None


class Extension(_Model):
    """A deadline extension asked of the customer (policy.md §5: only with their consent)."""

    id: int
    milestone: str
    cycle: int
    reason: str
    until: datetime
    requested_by: str
    requested_at: datetime
    answer: Literal["accept", "decline"] | None = None
    answered_at: datetime | None = None


class Investigation(_Model):
    findings: str
    root_cause: RootCause
    responsibility: Responsibility
    preliminary_feedback: str
    departments_involved: int = 1
    recorded_by: str
    recorded_at: datetime


class Survey(_Model):
    sent_at: datetime | None = None
    reminded_at: datetime | None = None
    score: int | None = None
    grade: str | None = None
    comment: str = ""
    answered_at: datetime | None = None
    unrated: bool = False
    opinion: bool = False  # a high score with a comment: a customer opinion for the monthly report


Measure = Literal["verbal_warning", "written_warning", "fine", "suspension", "demotion", "dismissal", "training",
                  "process_change", "system_change"]


class Accountability(_Model):
    """The responsibility found after closure and the measure taken (policy.md §9): a task for
    the dealer's general manager, due 15 days after it was recorded for an employee's
    responsibility and 30 for management or system (policy numbers, dealer-overridable)."""

    responsibility: Literal["employee", "management", "system"]
    measure: Measure
    fine: Decimal = Field(default=Decimal(0), ge=0)
    person: str | None = None  # the employee's staff id or role, never a customer's data
    note: str = ""
    assignee: str  # the dealer GM (or the brand CR center for a case without a dealer)
    recorded_by: str
    recorded_at: datetime
    due_at: datetime
    done_at: datetime | None = None
    done_by: str | None = None
    done_note: str = ""

    @property
    def open(self) -> bool:
        return self.done_at is None


class StepTimer(_Model):
    """The human step the case waits on now, and where its deadline clock stands."""

    step: Step
    key: str  # identifies this wait: the task and its links hang off it
    opened_at: datetime
    assignee: str
    entered_ref: str | None = None  # the state machine's entry of this step (idempotent re-entry)
    warned_at: datetime | None = None
    escalations: int = 0
    reminded_at: datetime | None = None
    handed_over_at: datetime | None = None  # customer_reply: the CS head was asked to confirm by phone


class Case(_Model):
    case_no: str
    brand: str
    dealer: str | None  # None while in the brand's triage queue
    region: str | None = None
    channel: Channel
    level: Literal["I", "II"] = "I"
    phase: Phase
    cycle: int = 1  # 2+ once a poor survey re-opened the case as a follow-up
    received_at: datetime
    entered_at: datetime | None = None  # staff entered it (a call, a letter): when they did; None for mail
    subject: str
    description: str
    language: Language
    customer: Customer
    vehicle: VehicleRef | None = None
    classification: Classification
    milestones: list[Milestone] = Field(default_factory=list)
    assignee: str | None = None
    escalation_level: int = 0
    investigation: Investigation | None = None
    plan: Plan | None = None
    approvals: list[Approval] = Field(default_factory=list)
    customer_decision: Literal["accept", "decline"] | None = None
    survey: Survey | None = None
    raw_mail_key: str | None = None
    reporter: str | None = None  # who registered or forwarded it, when not the customer
    closed_at: datetime | None = None
    attention_reason: str | None = None
    critical_alerted_at: datetime | None = None
    extensions: list[Extension] = Field(default_factory=list)
    calendar_warning: str | None = None  # a deadline fell in a year whose holidays are only estimated
    step_seq: int = 0
    step_timer: StepTimer | None = None
    last_recorded: str | None = None  # the task key whose decision was last applied
    follow_ups: int = 0
    accountability: Accountability | None = None  # recorded after closure (policy.md §9)
    execution: str | None = None  # the state machine execution that drives the case (None: named case_no)
    attention_step: str | None = None  # where the workflow stood when the case was parked
    version: int = 0

    def milestone(self, name: str, cycle: int | None = None) -> Milestone | None:
        cycle = self.cycle if cycle is None else cycle
        for m in self.milestones:
            if m.name == name and m.cycle == cycle:
                return m
        return None

    @property
    def is_closed(self) -> bool:
        """Closed for the customer: the plan was carried out (the survey may still be pending)."""
        return self.closed_at is not None and self.phase in ("closed", "survey")

    @property
    def on_time(self) -> bool:
        return not any(m.breached for m in self.milestones)

    def pending_approvals(self) -> list[Approval]:
        rev = self.plan.revision if self.plan else 0
        return [a for a in self.approvals if a.plan_revision == rev and a.decision is None]


class TimelineEvent(_Model):
    case_no: str
    at: datetime
    type: str
    actor: str
    summary: str
    data: dict[str, object] = Field(default_factory=dict)


class MailMessage(_Model):
    """A mail in or out of a case."""

    case_no: str | None
    direction: Literal["in", "out"]
    message_id: str
    at: datetime
    sender: str
    recipients: list[str]
    subject: str
    text: str
    html: str | None = None
    kind: str = ""  # acknowledgement, step, warning, escalation, ...
    event: str | None = None  # the case event it announces: one mail per recipient and event
    links: list[dict[str, str]] = Field(default_factory=list)
    task_key: str | None = None  # ours: the waiting step it carries a link for (a reply to it may decide)


class HumanTask(_Model):
    """A human step the state machine waits on. The task token never leaves the server."""

    case_no: str
    step: Step
    key: str  # step + cycle (+ approval level): unique per wait
    token: str
    status: Literal["open", "decided"] = "open"
    opened_at: datetime
    assignee: str
    decision: dict[str, object] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    version: int = 0


class Link(_Model):
    """A link in a mail. Stored under a hash of its id: the id itself is only in the mail."""

    link_hash: str
    case_no: str
    step: Literal[
        "status", "first_contact", "investigation", "plan", "approval", "customer_reply",
        "carry_out", "survey", "extension_consent", "follow_up",
    ]
    task_key: str | None
    recipient: str
    created_at: datetime
    expires_at: datetime
    form_secret: str
    used_at: datetime | None = None
    used_by: str | None = None
