"""What each human step asks for: one model per step, the same for a browser form and
a JSON body (docs/api.md documents them)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import InvalidInputError
from .models import CompensationItem, Responsibility, RootCause
from .policy import Policy


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class FirstContactForm(_Form):
    method: Literal["phone", "in_person", "video"] = "phone"
    notes: str = Field(min_length=2, max_length=4000)
    dealer: str | None = None  # required while the case is in the brand's triage queue


class FollowUpForm(_Form):
    method: Literal["phone", "in_person", "video"] = "phone"
    notes: str = Field(min_length=2, max_length=4000)


class InvestigationForm(_Form):
    findings: str = Field(min_length=2, max_length=8000)
    root_cause: RootCause
    responsibility: Responsibility
    preliminary_feedback: str = Field(min_length=2, max_length=4000)
    departments_involved: int = Field(default=1, ge=1, le=20)


class PlanForm(_Form):
    measures: str = Field(min_length=2, max_length=8000)
    compensation: list[CompensationItem] = Field(default_factory=list, max_length=10)
    follow_up: str = Field(default="", max_length=4000)

    @property
    def total(self) -> Decimal:
        return sum((c.value for c in self.compensation), Decimal(0))

    @field_validator("compensation")
    @classmethod
    def _within_the_policy(cls, items: list[CompensationItem], info: ValidationInfo) -> list[CompensationItem]:
        for item in items:
            if int(item.value.as_tuple().exponent) < -2:  # finite: the item refuses NaN and Infinity
                raise ValueError("a value has at most two decimals (fen)")
        # The brand's maximum, when the caller knows the policy (``parse_form``).
        policy = (info.context or {}).get("policy")
        total = sum((c.value for c in items), Decimal(0))
        if isinstance(policy, Policy) and total > policy.approval.max_compensation:
            raise ValueError(f"the compensation totals more than the policy's maximum of "
                             f"¥{policy.approval.max_compensation:,.2f}")
        return items


class ApprovalForm(_Form):
    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _reason_for_rejection(self) -> ApprovalForm:
        if self.decision == "reject" and len(self.comment) < 2:
            raise ValueError("a rejection needs a comment for the person revising the plan")
        return self


class CustomerReplyForm(_Form):
    decision: Literal["accept", "decline"]
    reason: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _reason_for_decline(self) -> CustomerReplyForm:
        if self.decision == "decline" and len(self.reason) < 2:
            raise ValueError("please tell us what is missing from the plan")
        return self


class CarryOutForm(_Form):
    notes: str = Field(min_length=2, max_length=4000)


class SurveyForm(_Form):
    score: int | None = Field(default=None, ge=0, le=100)
    grade: str | None = None
    comment: str = Field(default="", max_length=4000)

    @field_validator("score", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @model_validator(mode="after")
    def _score_or_grade(self) -> SurveyForm:
        if self.score is None and not self.grade:
            raise ValueError("give a score from 0 to 100 or choose a grade")
        return self


class ExtensionRequestForm(_Form):
    """Staff ask the customer for more time on the step's deadline (from the step page)."""

    reason: str = Field(min_length=5, max_length=2000)
    until: datetime  # local date and time at the dealer (a browser's datetime-local), or ISO with an offset


class ExtensionConsentForm(_Form):
    decision: Literal["accept", "decline"]


FORMS: dict[str, type[_Form]] = {
    "first_contact": FirstContactForm,
    "follow_up": FollowUpForm,
    "investigation": InvestigationForm,
    "plan": PlanForm,
    "approval": ApprovalForm,
    "customer_reply": CustomerReplyForm,
    "carry_out": CarryOutForm,
    "survey": SurveyForm,
    "extension_consent": ExtensionConsentForm,
}


def parse_form(step: str, data: dict[str, Any], policy: Policy | None = None) -> _Form:
    """Validate a step's fields, from JSON or from a flat browser form, within the case's
    ``policy`` (a plan's compensation maximum).

    A browser form sends compensation as ``comp_kind_N``/``comp_value_N``/``comp_desc_N``
    rows; blank rows are ignored.
    """
    data = dict(data)
    if step == "plan" and "compensation" not in data:
        rows = []
        for n in range(1, 11):
            kind, value = data.get(f"comp_kind_{n}"), data.get(f"comp_value_{n}")
            if kind and value not in (None, ""):
                rows.append({"kind": kind, "value": value, "description": data.get(f"comp_desc_{n}", "")})
        data["compensation"] = rows
    try:
        return FORMS[step].model_validate(data, context={"policy": policy})
    except ValidationError as exc:
        fields = {".".join(str(p) for p in e["loc"]) or "form": e["msg"].removeprefix("Value error, ")
                  for e in exc.errors()}
        raise InvalidInputError("the form is incomplete", fields) from exc
