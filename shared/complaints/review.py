"""The brand CR center's review of what the classifier was unsure of (policy.md §4).

Two kinds of case wait for a person: a **possible safety risk** (recall first: the case is
critical and alerted at once, then the CR center confirms or dismisses the risk in one action)
and a **low-confidence category** (below the policy's ``classification.review_below_confidence``,
until staff set or confirm the category). Whether a case waits is a pure function of the case and
the brand's policy (``review_entry``); the store keeps one index entry per waiting case, written
with every case write, so the queue is read with one Query and never by reading cases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .clock import iso, parse_iso
from .models import Case, Category, Classification, Severity
from .policy import Policy

ReviewReason = Literal["possible_safety", "low_confidence"]
SafetyDecision = Literal["confirm", "dismiss"]
QUEUE_LIMIT = 200  # rows the console and the API show; the oldest first


@dataclass(frozen=True)
class ReviewEntry:
    """A case in the review queue, as its index entry keeps it: what a row shows, without the case."""

    brand: str
    case_no: str
    received_at: datetime
    dealer: str | None
    reasons: tuple[str, ...]  # ReviewReason values
    category: str
    severity: str
    confidence: float | None
    evidence: tuple[str, ...]  # the customer's words that decided, as written
    subject: str

    @property
    def key(self) -> str:
        """Sorts by receipt: the oldest first."""
        return f"{iso(self.received_at)}#{self.case_no}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "received_at": iso(self.received_at), "reasons": list(self.reasons),
                "evidence": list(self.evidence)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReviewEntry:
        return cls(**{**data, "received_at": parse_iso(str(data["received_at"])),
                      "reasons": tuple(data.get("reasons") or ()), "evidence": tuple(data.get("evidence") or ())})


def awaits_safety_review(cls: Classification) -> bool:
    return cls.possible_safety and cls.safety_review is None


def category_unsure(cls: Classification, policy: Policy) -> bool:
    return (cls.confidence is not None and cls.confidence < policy.classification.review_below_confidence
            and not cls.category_reviewed)


EVIDENCE_SHOWN = 6  # phrases per row: enough to decide, short enough for a phone


def safety_evidence(cls: Classification) -> list[str]:
    """The customer's words that made the safety risk possible (the alert mail and the case page show them)."""
    return list(dict.fromkeys(e.phrase.strip() for e in cls.evidence
                              if e.kind.startswith("safety") and e.phrase.strip()))[:EVIDENCE_SHOWN]


def review_entry(case: Case, policy: Policy) -> ReviewEntry | None:
    """The case's entry in the review queue, or None: open cases only (a closed case has been
    handled by people from start to end)."""
    if case.closed_at is not None or case.phase in ("closed", "survey"):
        return None
    cls = case.classification
    reasons: list[str] = []
    if awaits_safety_review(cls):
        reasons.append("possible_safety")
    if category_unsure(cls, policy):
        reasons.append("low_confidence")
    if not reasons:
        return None
    # The safety evidence first when the risk waits, then the rest, each phrase once.
    ordered = sorted(cls.evidence, key=lambda e: (not (awaits_safety_review(cls) and e.kind.startswith("safety")),
                                                  -e.weight))
    phrases = list(dict.fromkeys(e.phrase.strip() for e in ordered if e.phrase.strip()))
    if not phrases:
        phrases = cls.reasons[:EVIDENCE_SHOWN]  # a classifier without evidence: its reasons
    return ReviewEntry(case.brand, case.case_no, case.received_at, case.dealer, tuple(reasons), cls.category,
                       cls.severity, cls.confidence, tuple(phrases[:EVIDENCE_SHOWN]), case.subject[:200])


def severity_without_safety(cls: Classification, repeat: bool) -> Severity:
    """The severity once a possible safety risk is dismissed (policy.md §4): critical only while a
    media/regulator/lawsuit threat remains, major for a demand (refund, replacement, compensation)
    or a repeat complaint, else general."""
    if cls.media_or_regulator:
        return "critical"
    if repeat or any(e.kind == "demand" for e in cls.evidence):
        return "major"
    return "general"


class SafetyReviewForm(BaseModel):
    """The CR center's decision on a possible safety risk."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    decision: SafetyDecision
    note: str = Field(default="", max_length=500)


class CategoryReviewForm(BaseModel):
    """A category set or confirmed from the review queue."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    category: Category
    note: str = Field(default="", max_length=500)
