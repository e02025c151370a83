"""What staff do to a case beside the lifecycle's steps: correct how it was classified, or
confirm what the classifier was unsure of (policy.md §4: recorded, and counted for the
reports), and give a case in the brand's triage queue its dealer (§2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .deadlines import resolution_name
from .errors import InvalidInputError, InvalidTransitionError
from .lifecycle import Ctx, Lifecycle
from .models import Case, Category, SafetyReview, Severity, TimelineEvent
from .review import (
    CategoryReviewForm,
    SafetyReviewForm,
    awaits_safety_review,
    category_unsure,
    severity_without_safety,
)


class ClassificationCorrection(BaseModel):
    """The fields staff change (the others stay) and why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    category: Category | None = None
    severity: Severity | None = None
    safety: bool | None = None
    media_or_regulator: bool | None = None
    reason: str = Field(min_length=1, max_length=500)


class DealerAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    dealer: str = Field(min_length=1, max_length=20)


def set_severity(ctx: Ctx, severity: Severity, at: datetime) -> None:
    """Change a case's severity; an open resolution milestone follows it (a general case is
    due a solution, a major or critical one a result, on other deadlines)."""
    case = ctx.case
    before = case.milestone(resolution_name(case))
    case.classification.severity = severity
    name = resolution_name(case)
    if before is not None and before.met_at is None and before.name != name:
        start = case.received_at if case.cycle == 1 else at
        before.name = name
        before.due_at = ctx.cal.add(start, getattr(ctx.policy.deadlines, name))


class Casework:
    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    def correct_classification(self, case_no: str, correction: ClassificationCorrection, by: str) -> Case:
        """Apply a correction by staff; the timeline records what changed, from what, and why.
        A correction that names the category settles it (the review queue lets go of it)."""
        wanted = correction.model_dump(exclude={"reason"}, exclude_none=True)
        return self._reclassify(case_no, by, correction.reason, lambda _: wanted,
                                review_category=correction.category is not None)

    def review_category(self, case_no: str, form: CategoryReviewForm, by: str) -> Case:
        """The category set or confirmed from the review queue: one action."""
        return self.correct_classification(
            case_no, ClassificationCorrection(category=form.category, reason=form.note or "review queue"), by)

    def review_safety(self, case_no: str, form: SafetyReviewForm, by: str) -> Case:
        """The brand CR center confirms or dismisses a possible safety risk (policy.md §4).
        Confirmed: it stays critical, as a safety risk. Dismissed: the severity is what the
        rest of the classification makes it, and the deadlines follow (``set_severity``)."""
        def decide(case: Case) -> dict[str, Any]:
            cls = case.classification
            if not awaits_safety_review(cls):
                raise InvalidTransitionError(f"{case_no} has no possible safety risk waiting for review")
            if form.decision == "confirm":
                return {"safety": True, "severity": "critical"}
            return {"safety": False, "severity": severity_without_safety(cls, cls.repeat_of is not None)}
        review: SafetyReview = "confirmed" if form.decision == "confirm" else "dismissed"
        return self._reclassify(case_no, by, form.note or f"safety risk {review}", decide, safety_review=review)

    def _reclassify(self, case_no: str, by: str, reason: str, decide: Callable[[Case], dict[str, Any]], *,
                    review_category: bool = False, safety_review: SafetyReview | None = None) -> Case:
        """The one path by which staff change a classification: the fields ``decide`` wants
        (those that differ), the review marks, the severity's deadlines, the timeline, the counts
        for the reports and, for a case that became critical, the alert."""
        now = self.lifecycle.clock.now()
        changes: dict[str, dict[str, Any]] = {}
        marks: list[str] = []  # reviews without a change of their own: safety_confirmed, category_confirmed, ...

        def corrected() -> bool:
            """A confirmation settles what the classifier left open: it corrects nothing."""
            return bool(changes) and safety_review != "confirmed"

        def change(ctx: Ctx) -> None:
            changes.clear()
            marks.clear()
            cls = ctx.case.classification
            wanted = {name: value for name, value in decide(ctx.case).items() if value != getattr(cls, name)}
            safety = wanted.get("safety", cls.safety) or wanted.get("media_or_regulator", cls.media_or_regulator)
            if safety and wanted.get("severity", cls.severity) != "critical":
                if "severity" in wanted:
                    raise InvalidInputError("a safety risk or a media/regulator threat is critical",
                                            {"severity": "must be critical while safety or media_or_regulator is set"})
                wanted["severity"] = "critical"  # policy.md §4: never below critical
            for name, value in wanted.items():
                changes[name] = {"from": getattr(cls, name), "to": value}
                if name == "severity":
                    set_severity(ctx, value, now)
                else:
                    setattr(cls, name, value)
            if safety_review is not None:
                cls.safety_review, cls.possible_safety = safety_review, False
                marks.append(f"safety_{safety_review}")
            if review_category and not cls.category_reviewed:
                # Counted as a confirmation only where the classifier was unsure (the queue's cases).
                if category_unsure(cls, ctx.tenant.policy_for(None)) and "category" not in changes:
                    marks.append("category_confirmed")
                cls.category_reviewed = True
            if corrected():
                cls.reasons.append(f"corrected by {by}: {reason}")
            elif marks:
                cls.reasons.append(f"{marks[0].replace('_', ' ')} by {by}: {reason}")

        ctx = self.lifecycle.mutate(case_no, change)
        if not changes and not marks:
            return ctx.case
        summary = ", ".join(f"{name} {c['from']} → {c['to']}" for name, c in changes.items())
        if safety_review is not None:
            kind, text = "safety_reviewed", f"Possible safety risk {safety_review}" + (f": {summary}" if summary else "")
        elif changes:
            kind, text = "classification_corrected", f"Classification corrected: {summary}"
        else:
            kind, text = "category_confirmed", f"Category confirmed: {ctx.case.classification.category}"
        self.lifecycle.store.add_event(TimelineEvent(
            case_no=case_no, at=now, type=kind, actor=by, summary=f"{text} ({reason[:200]})",
            data={"changes": changes, "reason": reason, "marks": marks}))
        month = ctx.tenant.calendar_for(None).local(now).strftime("%Y%m")
        if corrected():
            self.lifecycle.store.count_correction(ctx.case.brand, month, sorted(changes) + marks)
        else:
            self.lifecycle.store.count_correction(ctx.case.brand, month, marks, total="reviewed")
        self.lifecycle.store.note_corrected(ctx.case.brand, month, case_no)  # a labelled example (corrections.py)
        if ctx.case.classification.severity == "critical" and ctx.case.critical_alerted_at is None:
            self.lifecycle.alert_critical(ctx)
        return ctx.case

    def assign_dealer(self, case_no: str, dealer: str, by: str) -> Case:
        """A case from the brand's triage queue goes to a dealer; the first contact waiting on
        the brand CR center passes to that dealer's CS head, with their own link."""
        handed_over: list[bool] = []

        def change(ctx: Ctx) -> None:
            handed_over.clear()
            if not ctx.tenant.has_dealer(dealer):
                raise InvalidInputError("unknown dealer", {"dealer": "not a dealer of this brand"})
            if ctx.case.dealer is not None:
                raise InvalidTransitionError(f"{case_no} is already handled by {ctx.case.dealer}")
            ctx.case.dealer = dealer
            ctx.case.region = ctx.tenant.dealer(dealer).region
            timer = ctx.case.step_timer
            if timer is not None and timer.step == "first_contact":
                timer.assignee = ctx.tenant.staff_with_role("cs_head", dealer).email
                ctx.case.assignee = timer.assignee
                handed_over.append(True)
        ctx = self.lifecycle.mutate(case_no, change)
        self.lifecycle.event(ctx.case, "dealer_assigned", by, f"Assigned from the brand triage queue to {dealer}",
                             dealer=dealer)
        if handed_over:
            self.lifecycle.request_step(ctx, "first_contact")
        return ctx.case
