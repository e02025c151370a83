"""Accountability after closure (policy.md §9): the responsibility found is recorded with a
measure and a fine; the dealer's general manager carries the measure out by a deadline of
the policy (15 days for an employee's responsibility, 30 for management or system, dealer-
overridable) and marks it done in the console. A dealer's own schedule (category ×
responsibility → measure, fine) is the proposal the form starts from. Overdue measures are
listed in the console and reminded daily (``functions/accountability_reminders``).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import InvalidTransitionError
from .kpis import BRAND, dealer_scope, region_scope
from .lifecycle import Ctx, Lifecycle
from .models import Accountability, Case, Measure, Responsibility
from .notifications import MailLinks
from .policy import AccountabilityRule
from .ports import AccountabilityTask
from .tenant import Staff, Tenant
from .views import Viewer

MEASURES: dict[str, tuple[str, str]] = {
    "verbal_warning": ("口头警告", "verbal warning"), "written_warning": ("书面警告", "written warning"),
    "fine": ("罚款", "fine"), "suspension": ("停职", "suspension"), "demotion": ("降职", "demotion"),
    "dismissal": ("辞退", "dismissal"), "training": ("培训", "training"), "process_change": ("流程整改", "process change"),
    "system_change": ("制度整改", "change of the rules"),
}
RESPONSIBILITIES: dict[str, tuple[str, str]] = {
    "employee": ("员工责任", "employee"), "management": ("管理责任", "management"), "system": ("制度责任", "system"),
    "none": ("无责任", "none"),
}


def label(names: dict[str, tuple[str, str]], key: str | None, language: str) -> str:
    zh, en = names.get(key or "", (key or "", key or ""))
    return zh if language.startswith("zh") else en


class AccountabilityForm(BaseModel):
    """What staff record: the responsibility found and, unless none, the measure taken."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    responsibility: Responsibility
    measure: Measure | None = None
    fine: Decimal = Field(default=Decimal(0), ge=0, le=Decimal(1_000_000), decimal_places=2)
    person: str | None = Field(default=None, max_length=100)  # a staff id or role
    note: str = Field(default="", max_length=1000)

    @field_validator("measure", "person", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("fine", mode="before")
    @classmethod
    def _blank_is_zero(cls, value: object) -> object:
        return 0 if isinstance(value, str) and not value.strip() else value

    @field_validator("person")
    @classmethod
    def _staff_not_customer(cls, value: str | None) -> str | None:
        if value and "@" in value:
            raise ValueError("a staff id or role, not an e-mail address")
        return value

    @model_validator(mode="after")
    def _measure_fits(self) -> AccountabilityForm:
        if self.responsibility == "none":
            if self.measure is not None or self.fine:
                raise ValueError("no measure and no fine when nobody is responsible")
        elif self.measure is None:
            raise ValueError("a measure is needed when responsibility was found")
        elif self.measure == "fine" and not self.fine:
            raise ValueError("a fine needs its amount")
        return self


class DoneForm(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: str = Field(default="", max_length=1000)


def may_act(member: Staff, case: Case) -> bool:
    """The dealer's general manager, or the brand's customer-relations center."""
    return member.role == "brand_cr" or (member.role == "general_manager" and member.dealer == case.dealer)


def after_closure(case: Case) -> bool:
    return case.closed_at is not None and case.phase in ("closed", "survey")


def proposal(tenant: Tenant, case: Case) -> AccountabilityRule | None:
    """The dealer's schedule's line for the responsibility the investigation found."""
    found = case.investigation.responsibility if case.investigation else None
    if found in (None, "none"):
        return None
    return tenant.policy_for(case.dealer).accountability.proposal(case.classification.category, found or "")


class AccountabilityService:
    def __init__(self, lifecycle: Lifecycle, console_url: str) -> None:
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.clock = lifecycle.clock
        self._console_url = console_url.rstrip("/")

    def case_url(self, case_no: str) -> str:
        return f"{self._console_url}/console/cases/{case_no}#accountability"

    def record(self, case_no: str, form: AccountabilityForm, by: Staff) -> Case:
        """Record what was found; a measure becomes a task for the dealer's GM, mailed to them."""
        now = self.clock.now()

        def change(ctx: Ctx) -> None:
            case = ctx.case
            if not after_closure(case):
                raise InvalidTransitionError(f"{case_no} is not closed: accountability comes after closure")
            current = case.accountability
            if current is not None and current.done_at is not None:
                raise InvalidTransitionError(f"{case_no}: the measure was carried out already")
            if form.responsibility == "none":
                if current is not None:
                    raise InvalidTransitionError(f"{case_no}: a measure is on record; carry it out or correct it")
                return
            assert form.measure is not None  # the form's own rule
            days = ctx.policy.accountability.due_days[form.responsibility]
            case.accountability = Accountability(
                responsibility=form.responsibility, measure=form.measure, fine=form.fine,
                person=form.person, note=form.note, assignee=ctx.tenant.staff_with_role("general_manager",
                                                                                          case.dealer).email,
                recorded_by=by.email, recorded_at=now, due_at=now + timedelta(days=days))
        ctx = self.lifecycle.mutate(case_no, change)
        acc = ctx.case.accountability
        if acc is None:
            self.lifecycle.event(ctx.case, "accountability_recorded", by.email,
                                 "Accountability: no responsibility found", responsibility="none", note=form.note)
            return ctx.case
        self.store.put_accountability_task(_task(ctx.case, acc))
        due = self.lifecycle.notifier.local_time(ctx.tenant, ctx.case, acc.due_at)
        self.lifecycle.event(ctx.case, "accountability_recorded", by.email,
                             f"Accountability: {acc.responsibility} responsibility, {acc.measure}"
                             f"{f', fine ¥{acc.fine:,.2f}' if acc.fine else ''}; due {due}",
                             responsibility=acc.responsibility, measure=acc.measure, fine=str(acc.fine),
                             person=acc.person or "", due_at=acc.due_at.isoformat(), assignee=acc.assignee)
        self._mail(ctx, "accountability_task", acc.assignee, due=due)
        return ctx.case

    def done(self, case_no: str, by: Staff, form: DoneForm) -> Case:
        now = self.clock.now()
        marked: list[bool] = []

        def change(ctx: Ctx) -> None:
            marked.clear()
            acc = ctx.case.accountability
            if acc is None:
                raise InvalidTransitionError(f"{case_no}: no measure on record")
            if acc.done_at is None:  # a second click changes nothing
                ctx.case.accountability = acc.model_copy(update={"done_at": now, "done_by": by.email,
                                                                 "done_note": form.note})
                marked.append(True)
        ctx = self.lifecycle.mutate(case_no, change)
        acc = ctx.case.accountability
        assert acc is not None and acc.done_at is not None
        self.store.put_accountability_task(_task(ctx.case, acc))
        if marked:
            late = " (after its deadline)" if now > acc.due_at else ""
            self.lifecycle.event(ctx.case, "accountability_done", by.email,
                                 f"Accountability measure carried out: {acc.measure}{late}", note=form.note)
        return ctx.case

    def tasks(self, viewer: Viewer, *, overdue_only: bool = False, open_only: bool = True) -> list[AccountabilityTask]:
        """The viewer's tasks, earliest due first: the brand's list for brand staff, else each region
        the viewer sees whole and each other dealer of theirs from its own partition (never the brand's
        list filtered)."""
        due_before = self.clock.now() if overdue_only else None
        if viewer.dealers is None:
            scopes = [BRAND]
        else:
            tenant = self.store.get_tenant(viewer.brand)
            scopes = []
            for region in sorted({d.region for d in tenant.dealers}):
                codes = {d.code for d in tenant.dealers if d.region == region}
                if codes <= viewer.dealers:
                    scopes.append(region_scope(region))
                else:
                    scopes.extend(dealer_scope(region, code) for code in sorted(codes & viewer.dealers))
        found = [t for scope in scopes for t in self.store.accountability_tasks(
            viewer.brand, due_before=due_before, open_only=open_only, scope=scope)]
        return sorted((t for t in found if viewer.sees_dealer(t.dealer)), key=lambda t: (t.due_at, t.case_no))

    def remind_overdue(self, brand_id: str) -> list[str]:
        """Mail each overdue measure's assignee, once a day (a retried run sends nothing twice)."""
        now = self.clock.now()
        tenant = self.store.get_tenant(brand_id)
        day = tenant.calendar_for(None).local(now).strftime("%Y%m%d")
        reminded = []
        for task in self.store.accountability_tasks(brand_id, due_before=now):
            if self.store.count_hit(f"accountability#{brand_id}#{task.case_no}", day,
                                    int((now + timedelta(days=2)).timestamp())) > 1:
                continue
            ctx = self.lifecycle.load(task.case_no)
            acc = ctx.case.accountability
            if acc is None or acc.done_at is not None:
                continue  # carried out since the index was read
            due = self.lifecycle.notifier.local_time(ctx.tenant, ctx.case, acc.due_at)
            self._mail(ctx, "accountability_overdue", acc.assignee, due=due)
            self.lifecycle.event(ctx.case, "accountability_reminded", "system",
                                 f"Accountability measure overdue since {due}: {acc.assignee} reminded")
            reminded.append(task.case_no)
        return reminded

    def _mail(self, ctx: Ctx, kind: str, to: str, **context: Any) -> None:
        person, acc = ctx.tenant.staff_member(to), ctx.case.accountability
        if person is None or acc is None:
            return
        recipient = self.lifecycle.staff_recipient(ctx, person)
        self.lifecycle.notifier.send(
            tenant=ctx.tenant, case=ctx.case, kind=kind, to=recipient,
            links=MailLinks().add("accountability", self.case_url(ctx.case.case_no)), accountability=acc,
            measure=label(MEASURES, acc.measure, recipient.language),
            responsibility=label(RESPONSIBILITIES, acc.responsibility, recipient.language), **context)


def _task(case: Case, acc: Accountability) -> AccountabilityTask:
    return AccountabilityTask(brand=case.brand, case_no=case.case_no, dealer=case.dealer, region=case.region,
                              responsibility=acc.responsibility, measure=acc.measure, fine=str(acc.fine),
                              assignee=acc.assignee, recorded_at=acc.recorded_at, due_at=acc.due_at,
                              done_at=acc.done_at)
