"""The brand's complaint policy as validated configuration (policy.md).

Every number lives in ``policy_defaults.json`` or in the tenant's own policy, never
here: this module only says what a policy must contain and how to read it.
A dealer may override any part of the brand's policy (deep merge).
"""

from __future__ import annotations

import json
from datetime import time
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .models import Category, Measure
from .rulebook import rulebook

Role = Literal["cs_head", "service_manager", "general_manager", "regional_manager", "brand_cr"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Strict):
    """Wall-clock hours, hours of the dealer's service (its opening hours, policy.md §5),
    or working days on the dealer's calendar: exactly one of them."""

    hours: float | None = None
    service_hours: float | None = None
    working_days: int | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Duration:
        if sum(x is not None for x in (self.hours, self.service_hours, self.working_days)) != 1:
            raise ValueError("a duration has exactly one of 'hours', 'service_hours' or 'working_days'")
        return self

    def describe(self, language: str) -> str:
        zh = language.startswith("zh")
        if self.working_days is not None:
            return f"{self.working_days} 个工作日" if zh else f"{self.working_days} working days"
        if self.service_hours is not None:
            h = f"{self.service_hours:g}"
            return f"{h} 个服务小时" if zh else f"{h} service hours"
        h = f"{self.hours:g}"
        return f"{h} 小时" if zh else f"{h} hours"


class ServiceHours(_Strict):
    """When a dealer's service is open (policy.md §5): hour deadlines count only these hours."""

    opens: time
    closes: time
    closed_weekdays: list[int] = Field(default_factory=list)  # ISO weekdays (1 = Monday) the store is shut
    public_holidays: Literal["open", "closed"]  # 4S stores mostly stay open; a dealer may close

    @model_validator(mode="after")
    def _opens_before_closing(self) -> ServiceHours:
        if self.opens >= self.closes:
            raise ValueError("service hours must open before they close")
        if any(d < 1 or d > 7 for d in self.closed_weekdays) or len(set(self.closed_weekdays)) >= 7:
            raise ValueError("closed_weekdays are ISO weekdays 1-7, and at least one day is open")
        return self


class Deadlines(_Strict):
    acknowledgement: Duration
    first_contact: Duration
    preliminary_feedback: Duration
    solution: Duration  # general complaints: solution proposed and confirmed
    result: Duration  # major and critical: investigation finished and result given
    joint_plan: Duration  # several departments involved
    carry_out: Duration  # plan carried out after the customer accepted it


class AuthorityRule(_Strict):
    up_to: Decimal | None  # None = no upper bound
    roles: list[Role]


class ApprovalPolicy(_Strict):
    remind_after: Duration
    escalate_after: Duration
    authority: list[AuthorityRule]
    top_level_kinds: list[str]  # compensation kinds that always need the last rule's roles
    # The most a plan may offer in all (¥): a value beyond it is a typo or an attack, never a plan.
    max_compensation: Decimal = Field(default=Decimal(10_000_000), gt=0)

    def roles_for(self, total: Decimal, kinds: set[str]) -> list[Role]:
        if kinds & set(self.top_level_kinds):
            return list(self.authority[-1].roles)
        for rule in self.authority:
            if rule.up_to is None or total <= rule.up_to:
                return list(rule.roles)
        return list(self.authority[-1].roles)


class CustomerReplyPolicy(_Strict):
    phone_confirm_after: Duration


class SurveyPolicy(_Strict):
    delay: Duration
    reminder_after: Duration
    close_after_reminder: Duration
    follow_up_below: int
    satisfied_from: int
    opinion_from: int
    max_follow_ups: int
    grades: dict[str, int]  # grade key -> score

    def score_of(self, grade: str) -> int:
        return self.grades[grade]


class AccountabilityRule(_Strict):
    """One line of a dealer's own schedule (policy.md §9): for complaints of this category
    (None: any) with this responsibility, the measure and fine proposed by default."""

    category: Category | None = None
    responsibility: Literal["employee", "management", "system"]
    measure: Measure
    fine: Decimal = Field(default=Decimal(0), ge=0)


class AccountabilityPolicy(_Strict):
    due_days: dict[Literal["employee", "management", "system"], int]  # calendar days after it is recorded
    schedule: list[AccountabilityRule] = Field(default_factory=list)

    def proposal(self, category: str, responsibility: str) -> AccountabilityRule | None:
        """The schedule's line for this category, else its line for any category."""
        lines = [r for r in self.schedule if r.responsibility == responsibility]
        return next((r for r in lines if r.category == category), None) or \
            next((r for r in lines if r.category is None), None)


class KpiPolicy(_Strict):
    """The report's yardsticks (policy.md §10)."""

    target_average: int  # the satisfaction average the brand aims at
    at_risk_within: Duration  # an open deadline this close, or already passed: the case is at risk of breach


class IntakePolicy(_Strict):
    acknowledgements_per_sender_per_day: int = Field(ge=1)  # more would feed a mail loop or a flood
    reopen_within_days: int = Field(ge=0)  # a reply to a closed case re-opens it; later: a new, linked case
    new_cases_per_sender: int = Field(ge=1)  # per window; past it a sender's mail joins their latest open case
    new_case_window_hours: int = Field(ge=1)
    max_subject_chars: int = Field(ge=80)  # stored subjects are cut here (the raw mail stays whole)
    max_recipients: int = Field(ge=1)  # stored recipient lists (envelope, To, Cc) are cut here
    max_text_bytes: int = Field(ge=1024)  # what is classified, routed and searched of a mail's text (UTF-8)
    refused_decision_replies_per_day: int = Field(ge=0)  # explanations of a refused decision by mail, per sender
    # A call entered after the fact runs its clocks from the call, but nobody is escalated
    # before staff had this long after entering it (policy.md §5).
    backdated_grace: Duration


class ClassificationPolicy(_Strict):
    """How far the brand trusts the classifier (policy.md §4)."""

    review_below_confidence: float = Field(ge=0, le=1)  # a category less sure than this goes to the review queue
    # The brand's overlay of the classification rules (docs/classification.md): terms added
    # to or removed from the shipped lexicons, weights replaced. Validated here, on load.
    rules: dict[str, Any] = Field(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _valid_rules(cls, overlay: dict[str, Any]) -> dict[str, Any]:
        rulebook(overlay)  # raises on an unknown key, a bad pattern or an out-of-range weight
        return overlay


class Policy(_Strict):
    deadlines: Deadlines
    service_hours: ServiceHours
    warning_fraction: float = Field(gt=0, lt=1)
    escalation_ladder: list[Role]
    reescalate_after: Duration
    progress_update_every: Duration
    approval: ApprovalPolicy
    customer_reply: CustomerReplyPolicy
    survey: SurveyPolicy
    repeat_window_days: int
    intake: IntakePolicy
    status_link_valid_days: int
    kpis: KpiPolicy
    accountability: AccountabilityPolicy
    classification: ClassificationPolicy


def default_policy_document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("policy_defaults.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_policy(*overrides: dict[str, Any] | None) -> Policy:
    """The defaults, then the brand's policy, then the dealer's overrides."""
    document = default_policy_document()
    for override in overrides:
        if override:
            document = deep_merge(document, override)
    return Policy.model_validate(document)
