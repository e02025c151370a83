"""The complaint lifecycle: what each state of ``complaint_lifecycle.asl.json`` does.

The state machine owns the order of steps and the waiting; this service owns what a
step means: who is asked, what is recorded, which deadline runs, who is warned and
who is escalated to. Each method is one Lambda call, safe to retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from .clock import Clock, iso
from .deadlines import (
    StepSchedule,
    cycle_milestones,
    escalations_due,
    governing_milestone,
    joint_plan_milestone,
    meet,
    next_escalation_at,
    resolution_name,
    seconds_until,
    step_schedule,
)
from .errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    InvalidTransitionError,
    SupersededError,
    TransientError,
    plain_reason,
)
from .forms import (
    ApprovalForm,
    CarryOutForm,
    CustomerReplyForm,
    FirstContactForm,
    FollowUpForm,
    InvestigationForm,
    PlanForm,
    SurveyForm,
)
from .links import LinkService
from .models import (
    Approval,
    Case,
    Extension,
    HumanTask,
    Investigation,
    Milestone,
    Plan,
    Step,
    StepTimer,
    Survey,
    TimelineEvent,
)
from .notifications import MailLinks, Notifier, Recipient, role_name
from .policy import Policy, Role
from .ports import CaseStore, Workflow
from .tenant import Staff, Tenant

CUSTOMER_STEPS: frozenset[str] = frozenset({"customer_reply", "survey"})


@dataclass(frozen=True)
class Ctx:
    case: Case
    tenant: Tenant
    policy: Policy

    @property
    def cal(self):  # type: ignore[no-untyped-def]
        return self.tenant.calendar_for(self.case.dealer)


_EXECUTION: ContextVar[str | None] = ContextVar("complaints_execution", default=None)

# Where a new execution of a case may begin (the state machine's Start choice has one branch each).
RESUME_POINTS = ("first_contact", "investigation", "plan", "approval", "customer_reply", "carry_out",
                 "survey", "follow_up")


@contextmanager
def running_as(execution: str | None) -> Iterator[None]:
    """The state machine execution a handler runs for: a case driven by a newer execution
    (re-opened by a reply, resumed by staff) answers the older one with ``SupersededError``."""
    token = _EXECUTION.set(execution)
    try:
        yield
    finally:
        _EXECUTION.reset(token)


class Lifecycle:
    def __init__(self, store: CaseStore, workflow: Workflow, clock: Clock, links: LinkService,
                 notifier: Notifier) -> None:
        self.store = store
        self.workflow = workflow
        self.clock = clock
        self.links = links
        self.notifier = notifier

    # ----- helpers ------------------------------------------------------------------------
    def load(self, case_no: str) -> Ctx:
        case = self.store.get_case(case_no)
        running = _EXECUTION.get()
        if running is not None and running != (case.execution or case.case_no):
            raise SupersededError(f"{case_no} is driven by execution {case.execution}, not {running}")
        tenant = self.store.get_tenant(case.brand)
        return Ctx(case, tenant, tenant.policy_for(case.dealer))

    def event(self, case: Case, type_: str, actor: str, summary: str, **data: Any) -> None:
        self.store.add_event(TimelineEvent(case_no=case.case_no, at=self.clock.now(), type=type_,
                                           actor=actor, summary=summary, data=data))

    def mutate(self, case_no: str, change: Any) -> Ctx:
        """Read, change, conditionally write; on a lost race read again and redo."""
        for _ in range(5):
            ctx = self.load(case_no)
            change(ctx)
            try:
                saved = self.store.save_case(ctx.case)
                return Ctx(saved, ctx.tenant, ctx.tenant.policy_for(saved.dealer))
            except ConflictError:
                continue
        raise ConflictError(f"{case_no}: too much contention")

    def staff(self, ctx: Ctx, role: Role) -> Staff:
        return ctx.tenant.staff_with_role(role, ctx.case.dealer)

    def staff_recipient(self, ctx: Ctx, person: Staff) -> Recipient:
        return Recipient(person.email, person.name, ctx.tenant.brand.languages[0])

    def customer_recipient(self, ctx: Ctx) -> Recipient | None:
        c = ctx.case.customer
        if not c.email:
            return None
        return Recipient(c.email, c.name, ctx.tenant.brand.reply_language(ctx.case.language), customer=True)

    def status_link(self, ctx: Ctx) -> str:
        return self.links.issue(
            case_no=ctx.case.case_no, step="status", task_key=None, recipient=ctx.case.customer.email or "",
            expires_at=self.clock.now() + timedelta(days=ctx.policy.status_link_valid_days))

    def step_link(self, ctx: Ctx, step: str, recipient: str) -> str:
        assert ctx.case.step_timer is not None
        expires = self.clock.now() + timedelta(days=60)
        return self.links.issue(case_no=ctx.case.case_no, step=step, task_key=ctx.case.step_timer.key,
                                recipient=recipient, expires_at=expires)

    def assignee_of(self, ctx: Ctx, step: Step) -> str:
        case = ctx.case
        if step in CUSTOMER_STEPS:
            return case.customer.email or self.staff(ctx, "cs_head").email
        if step == "approval":
            pending = case.pending_approvals()
            if not pending:
                raise InvalidTransitionError(f"{case.case_no}: no approval pending")
            return pending[0].approver
        return self.staff(ctx, "cs_head").email

    def role_of(self, ctx: Ctx, email: str) -> Role:
        member = ctx.tenant.staff_member(email)
        return member.role if member else "cs_head"

    # ----- workflow: triage ----------------------------------------------------------------
    def triage(self, case_no: str) -> dict[str, Any]:
        """Critical cases: the dealer GM and the brand CR center are told at once."""
        ctx = self.load(case_no)
        if ctx.case.classification.severity == "critical" and ctx.case.critical_alerted_at is None:
            self.alert_critical(ctx)
        estimated = sorted({m.due_at.year for m in ctx.case.milestones if ctx.cal.is_estimated(m.due_at.year)})
        if estimated and ctx.case.calendar_warning is None:
            self.warn_estimated_calendar(ctx, estimated)
        return {"severity": ctx.case.classification.severity}

    def warn_estimated_calendar(self, ctx: Ctx, years: list[int]) -> None:
        """No official holiday schedule yet for a year a deadline falls in: the library's
        estimate is used (no make-up working days), and staff are told plainly."""
        warning = (f"Deadlines in {', '.join(map(str, years))} use an estimated {ctx.cal.country} holiday calendar "
                   "(no official schedule published yet): check them by hand.")

        def mark(c: Ctx) -> None:
            c.case.calendar_warning = warning
        self.mutate(ctx.case.case_no, mark)
        self.event(ctx.case, "calendar_estimated", "system", warning)
        person = self.staff(ctx, "brand_cr")
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="calendar_warning",
                           to=self.staff_recipient(ctx, person), warning=warning)

    def alert_critical(self, ctx: Ctx) -> None:
        people = {self.staff(ctx, "general_manager").email: self.staff(ctx, "general_manager"),
                  self.staff(ctx, "brand_cr").email: self.staff(ctx, "brand_cr")}
        for person in people.values():
            self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="critical_alert",
                               to=self.staff_recipient(ctx, person), event=f"critical_alert:{ctx.case.cycle}")

        def mark(c: Ctx) -> None:
            c.case.critical_alerted_at = self.clock.now()
        self.mutate(ctx.case.case_no, mark)
        self.event(ctx.case, "critical_alert", "system",
                   "Critical complaint: dealer GM and brand CR center notified",
                   to=sorted(people))

    # ----- workflow: entering a human step ------------------------------------------------------
    def enter(self, case_no: str, step: Step, entered_ref: str | None = None) -> dict[str, Any]:
        def change(ctx: Ctx) -> None:
            case = ctx.case
            if entered_ref and case.step_timer and case.step_timer.entered_ref == entered_ref:
                return  # a retry of the same entry
            if (case.step_timer and case.step_timer.step == step
                    and case.step_timer.entered_ref == _restarted_ref(_EXECUTION.get())):
                # A restarted execution waits again on the same step: same task, same links,
                # the deadline clock where it stood.
                case.step_timer.entered_ref = entered_ref
                return
            case.step_seq += 1
            case.phase = step
            case.escalation_level = 0
            case.step_timer = StepTimer(step=step, key=f"{step}-{case.step_seq}", opened_at=self.clock.now(),
                                        assignee=self.assignee_of(ctx, step), entered_ref=entered_ref)
            case.assignee = case.step_timer.assignee
        ctx = self.mutate(case_no, change)
        return {"seconds": self._next_timer_seconds(ctx)}

    def _next_timer_seconds(self, ctx: Ctx) -> int:
        timer = ctx.case.step_timer
        assert timer is not None
        sched = step_schedule(ctx.case, timer.step, timer.opened_at, ctx.policy, ctx.cal)
        now = self.clock.now()
        if timer.step == "survey":
            at = sched.expires_at if timer.reminded_at else sched.due_at
            assert at is not None
            return seconds_until(at, now)
        candidates = [next_escalation_at(sched, timer.escalations, ctx.policy, ctx.cal)]
        if sched.warn_at and not timer.warned_at and sched.warn_at > now:
            candidates.append(sched.warn_at)
        progress = self._progress_due_at(ctx)
        if progress is not None:
            candidates.append(max(progress, now))
        return seconds_until(min(candidates), now)

    def _progress_due_at(self, ctx: Ctx) -> datetime | None:
        """When the customer is owed a progress update: the policy's interval after the
        last mail we sent them (policy.md §5, 定期反馈处理进度). None on their own steps."""
        timer, email = ctx.case.step_timer, (ctx.case.customer.email or "").lower()
        if timer is None or timer.step in CUSTOMER_STEPS or not email:
            return None
        sent = [m.at for m in self.store.messages(ctx.case.case_no)
                if m.direction == "out" and email in [r.lower() for r in m.recipients]]
        return ctx.cal.add(max(sent, default=ctx.case.received_at), ctx.policy.progress_update_every)

    def _send_progress_update(self, ctx: Ctx) -> None:
        """The regular update (policy.md §5). It never promises a moment already past: when
        the next deadline was missed it says so, who handles the case now, and by when."""
        to = self.customer_recipient(ctx)
        if to is None:
            return
        seen = outlook(ctx, self.clock.now())
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="progress_update", to=to,
                           links=MailLinks().add("status", self.status_link(ctx)),
                           next_due=seen.milestone.due_at if seen.milestone else None, late=seen.late,
                           handler=role_name(seen.handler, to.language) if seen.handler else None,
                           new_due=seen.new_due)
        self.event(ctx.case, "progress_update", "system",
                   "Progress update sent to the customer" + (" (told it is late)" if seen.late else ""))

    # ----- human_task: open or re-arm the wait ------------------------------------------------------
    def open_task(self, case_no: str, step: Step, token: str) -> None:
        ctx = self.load(case_no)
        timer = ctx.case.step_timer
        if timer is None or timer.step != step:
            raise InvalidTransitionError(f"{case_no}: not waiting for {step}")
        task, created = self.store.arm_task(HumanTask(
            case_no=case_no, step=step, key=timer.key, token=token, opened_at=timer.opened_at,
            assignee=timer.assignee))
        if task.status == "decided":
            # The decision arrived while the deadline timer was running: hand it over now.
            self.workflow.succeed(token, {"task_key": task.key, "outcome": (task.decision or {}).get("outcome")})
            return
        if created:
            self.request_step(ctx, step)

    def request_step(self, ctx: Ctx, step: Step) -> None:
        """The mail that asks the assignee (staff or customer) to act, with their link."""
        case, timer = ctx.case, ctx.case.step_timer
        assert timer is not None
        sched = step_schedule(case, step, timer.opened_at, ctx.policy, ctx.cal)
        due = self.notifier.local_time(ctx.tenant, case, sched.due_at)
        if step in CUSTOMER_STEPS:
            to = self.customer_recipient(ctx)
            if to is None:  # no e-mail address: the CS head handles it with the customer by phone
                person = self.staff(ctx, "cs_head")
                links = MailLinks().add(step, self.step_link(ctx, step, person.email))
                self.notifier.send(tenant=ctx.tenant, case=case, kind="phone_confirm",
                                   to=self.staff_recipient(ctx, person), links=links, days="0")
                return
            links = MailLinks().add(step, self.step_link(ctx, step, to.email))
            kind = "plan_proposal" if step == "customer_reply" else "survey"
            self.notifier.send(tenant=ctx.tenant, case=case, kind=kind, to=to, links=links, reminder=False)
            self.event(case, "step_opened", "system", f"{step} sent to the customer", step=step)
            return
        member = ctx.tenant.staff_member(timer.assignee)
        if member is None:
            raise ConfigurationError(f"{timer.assignee} is not staff of the tenant")
        person = member
        links = MailLinks().add(step, self.step_link(ctx, step, person.email))
        to = self.staff_recipient(ctx, person)
        if step == "approval":
            pending = case.pending_approvals()
            levels = [a for a in case.approvals if case.plan and a.plan_revision == case.plan.revision]
            self.notifier.send(tenant=ctx.tenant, case=case, kind="approval_request", to=to, links=links,
                               due=due, total=_money(case.plan.total if case.plan else Decimal(0)),
                               level=pending[0].level, levels=len(levels))
        else:
            rejection = _last_rejection(case) if step == "plan" else None
            declined = (self._last_decline_reason(case) if step == "plan" and rejection is None else None)
            self.notifier.send(tenant=ctx.tenant, case=case, kind="step_request", to=to, links=links, step=step,
                               due=due, rejection=rejection, declined=declined, note=None)
        self.event(case, "step_opened", "system", f"{step} assigned to {person.name}", step=step,
                   assignee=person.email, due_at=iso(sched.due_at))

    def _last_decline_reason(self, case: Case) -> str | None:
        if case.customer_decision != "decline":
            return None
        for e in reversed(self.store.events(case.case_no)):
            if e.type == "customer_declined":
                return str(e.data.get("reason", ""))
        return None

    # ----- workflow: a deadline timer fired ---------------------------------------------------
    def timer(self, case_no: str, step: Step) -> dict[str, Any]:
        ctx = self.load(case_no)
        timer = ctx.case.step_timer
        if timer is None or timer.step != step:
            raise InvalidTransitionError(f"{case_no}: no timer for {step}")
        with self.notifier.deferred():  # warnings and escalations go out once the case is saved
            now = self.clock.now()
            sched = step_schedule(ctx.case, step, timer.opened_at, ctx.policy, ctx.cal)
            expired = False
            if step == "survey":
                if timer.reminded_at is None and now >= sched.due_at:
                    self._survey_reminder(ctx)
                    timer.reminded_at = now
                expired = sched.expires_at is not None and now >= sched.expires_at
            else:
                if sched.warn_at and timer.warned_at is None and sched.warn_at <= now < sched.due_at:
                    self._warn(ctx, sched.due_at)
                    timer.warned_at = now
                # Several rungs due at once (a parked case resumed, the clock jumped): one
                # escalation to the highest, not one mail per rung in the same second.
                rungs = escalations_due(sched, timer.escalations, now, ctx.policy, ctx.cal)
                if rungs:
                    self._escalate(ctx, sched, rungs)
                progress = self._progress_due_at(ctx)
                if progress is not None and now >= progress:
                    self._send_progress_update(ctx)
            new_timer = timer
            breached: list[str] = []

            def change(c: Ctx) -> None:
                breached.clear()
                c.case.step_timer = new_timer
                c.case.escalation_level = new_timer.escalations
                c.case.assignee = new_timer.assignee
                if step == "approval" and c.case.pending_approvals():
                    c.case.pending_approvals()[0].approver = new_timer.assignee
                milestone = governing_milestone(c.case, step)
                if milestone is not None and now >= milestone.due_at and milestone.met_at is None:
                    if not milestone.breached:
                        breached.append(milestone.name)
                    milestone.breached = True
                    milestone.escalations = new_timer.escalations
                if new_timer.warned_at and milestone is not None and milestone.warned_at is None:
                    milestone.warned_at = new_timer.warned_at
            ctx = self.mutate(case_no, change)
        return {"seconds": self._next_timer_seconds(ctx), "expired": expired, "breached": breached}

    def _warn(self, ctx: Ctx, due_at: datetime) -> None:
        timer = ctx.case.step_timer
        assert timer is not None
        person = ctx.tenant.staff_member(timer.assignee)
        if person is None:
            return
        links = MailLinks().add(timer.step, self.step_link(ctx, timer.step, person.email))
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="warning", to=self.staff_recipient(ctx, person),
                           links=links, step=timer.step, due=self.notifier.local_time(ctx.tenant, ctx.case, due_at),
                           event=f"warning:{timer.key}")
        self.event(ctx.case, "deadline_warning", "system", f"{timer.step} due soon: {person.name} reminded",
                   step=timer.step, due_at=iso(due_at))

    def _escalate(self, ctx: Ctx, sched: StepSchedule, rungs: int) -> None:
        """``rungs`` escalations are due: one mail, to whoever the last of them reaches."""
        timer = ctx.case.step_timer
        assert timer is not None
        step, ladder = timer.step, ctx.policy.escalation_ladder
        due = self.notifier.local_time(ctx.tenant, ctx.case, sched.due_at)
        if step == "customer_reply" and timer.handed_over_at is None:
            person = self.staff(ctx, "cs_head")
            links = MailLinks().add(step, self.step_link(ctx, step, person.email))
            self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="phone_confirm",
                               to=self.staff_recipient(ctx, person), links=links,
                               days=ctx.policy.customer_reply.phone_confirm_after.describe(ctx.tenant.brand.languages[0]))
            timer.handed_over_at = self.clock.now()
            timer.escalations += 1
            rungs -= 1
            self.event(ctx.case, "phone_confirmation_requested", "system",
                       f"No answer from the customer: {person.name} asked to confirm by phone", step=step)
            if rungs == 0:
                return
        if step == "approval":
            # The approval moves up the ladder; the late approver's link stops working.
            current = self.role_of(ctx, timer.assignee)
            up = ladder[min(ladder.index(current) + rungs, len(ladder) - 1)] if current in ladder else ladder[-1]
            person = self.staff(ctx, up)
            late = timer.assignee
            timer.assignee = person.email
            timer.escalations += rungs
            links = MailLinks().add(step, self.step_link(ctx, step, person.email))
            self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="escalation",
                               to=self.staff_recipient(ctx, person), links=links, step=step, due=due,
                               late_person=late, level=timer.escalations, passed=rungs)
            self.event(ctx.case, "approval_escalated", "system",
                       f"Approval not given in time by {late}: passed to {person.name}", step=step,
                       to=person.email, rungs=rungs)
            return
        timer.escalations += rungs
        role = handling_role(ctx, timer.escalations)
        level = timer.escalations - 1 if step == "customer_reply" else timer.escalations
        person = self.staff(ctx, role)
        links = MailLinks().add(step, self.step_link(ctx, step, person.email))
        # One overdue deadline reaches a person once, however often the ladder passes them
        # (the CR center is the brand's and the ladder's top; a resumed case re-enters the step).
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="escalation", to=self.staff_recipient(ctx, person),
                           links=links, step=step, due=due, late_person=timer.assignee, level=level, passed=rungs,
                           event=f"overdue:{step}:{ctx.case.cycle}:{iso(sched.due_at)}")
        together = f" ({rungs} levels at once)" if rungs > 1 else ""
        self.event(ctx.case, "deadline_breached", "system",
                   f"{step} overdue since {due}: escalated to {person.name} ({role}){together}", step=step,
                   to=person.email, level=level, rungs=rungs)

    def _survey_reminder(self, ctx: Ctx) -> None:
        to = self.customer_recipient(ctx)
        if to is None:
            return
        links = MailLinks().add("survey", self.step_link(ctx, "survey", to.email))
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="survey", to=to, links=links, reminder=True)
        self.event(ctx.case, "survey_reminder", "system", "Survey reminder sent")

    # ----- workflow: apply a decision ---------------------------------------------------------
    def record(self, case_no: str, step: Step, task_key: str) -> dict[str, Any]:
        """Apply the decision taken on a human step; returns where the case goes next."""
        task = self.store.get_task(case_no, task_key)
        if task is None or task.status != "decided" or task.decision is None:
            raise InvalidTransitionError(f"{case_no}: {task_key} has no decision")
        decision = task.decision
        raw_form = decision.get("form")
        form: dict[str, Any] = dict(raw_form) if isinstance(raw_form, dict) else {}
        actor = task.decided_by or "unknown"
        at = task.decided_at or self.clock.now()
        follow: list[Any] = []
        outcome: dict[str, str] = {}

        def change(ctx: Ctx) -> None:
            follow.clear()
            case = ctx.case
            if case.last_recorded == task_key:
                outcome["next"] = _next_after(case, step)
                return
            outcome["next"] = self._apply(ctx, step, form, actor, at, follow)
            case.last_recorded = task_key
        ctx = self.mutate(case_no, change)
        for action in follow:  # mails and timeline after the write succeeded, once
            action(ctx)
        self.event(ctx.case, f"{step}_recorded", actor, _summary(step, form) + _how(decision), step=step,
                   via=str(decision.get("via", "link")), ip=str(decision.get("ip", "")),
                   user_agent=str(decision.get("user_agent", "")))
        return {"next": outcome["next"]}

    def _apply(self, ctx: Ctx, step: Step, form: dict[str, Any], actor: str, at: datetime,
               follow: list[Any]) -> str:
        case, policy = ctx.case, ctx.policy
        if step in ("first_contact", "follow_up"):
            if step == "first_contact":
                f = FirstContactForm.model_validate(form)
                if case.dealer is None:
                    if not ctx.tenant.has_dealer(f.dealer):
                        raise InvalidInputError("a dealer must be assigned", {"dealer": "unknown dealer"})
                    case.dealer = f.dealer
                    case.region = ctx.tenant.dealer(f.dealer or "").region
                    follow.append(lambda c: self.event(c.case, "dealer_assigned", actor,
                                                       f"Assigned from the brand triage queue to {c.case.dealer}"))
            else:
                FollowUpForm.model_validate(form)
            meet(case, "first_contact", at)
            return "investigation"
        if step == "investigation":
            i = InvestigationForm.model_validate(form)
            case.investigation = Investigation(
                findings=i.findings, root_cause=i.root_cause, responsibility=i.responsibility,
                preliminary_feedback=i.preliminary_feedback, departments_involved=i.departments_involved,
                recorded_by=actor, recorded_at=at)
            meet(case, "preliminary_feedback", at)
            if i.departments_involved > 1 and case.milestone("joint_plan") is None:
                start = case.received_at if case.cycle == 1 else case.step_timer.opened_at if case.step_timer else at
                case.milestones.append(joint_plan_milestone(case, policy, ctx.cal, start))
            follow.append(self._send_preliminary_feedback)
            return "plan"
        if step == "plan":
            p = PlanForm.model_validate(form)
            revision = (case.plan.revision + 1) if case.plan else 1
            case.plan = Plan(revision=revision, measures=p.measures, compensation=p.compensation,
                             follow_up=p.follow_up, submitted_by=actor, submitted_at=at)
            roles = policy.approval.roles_for(p.total, {c.kind for c in p.compensation})
            for level, role in enumerate(roles, start=1):
                approver = ctx.tenant.staff_with_role(role, case.dealer)
                case.approvals.append(Approval(plan_revision=revision, level=level, role=role,
                                               approver=approver.email))
            return "approval"
        if step == "approval":
            a = ApprovalForm.model_validate(form)
            pending = case.pending_approvals()
            if not pending:
                raise InvalidTransitionError(f"{case.case_no}: no approval pending")
            current = pending[0]
            current.decision, current.comment, current.decided_at = a.decision, a.comment, at
            current.approver = actor
            if a.decision == "reject":
                for later in pending[1:]:
                    case.approvals.remove(later)
                return "plan"
            return "approval" if len(pending) > 1 else "customer_reply"
        if step == "customer_reply":
            r = CustomerReplyForm.model_validate(form)
            case.customer_decision = r.decision
            if r.decision == "decline":
                follow.append(lambda c: self.event(c.case, "customer_declined", actor,
                                                   "The customer declined the plan", reason=r.reason))
                return "plan"
            meet(case, "joint_plan", at)
            meet(case, resolution_name(case), at)
            return "carry_out"
        if step == "carry_out":
            CarryOutForm.model_validate(form)
            return "close"
        if step == "survey":
            s = SurveyForm.model_validate(form)
            score = s.score if s.score is not None else policy.survey.score_of(s.grade or "")
            opinion = score >= policy.survey.opinion_from and bool(s.comment)
            case.survey = (case.survey or Survey()).model_copy(update={
                "score": score, "grade": s.grade, "comment": s.comment, "answered_at": at, "opinion": opinion})
            if score < policy.survey.follow_up_below and case.follow_ups < policy.survey.max_follow_ups:
                self._reopen_follow_up(ctx, at)
                follow.append(lambda c: self.event(
                    c.case, "follow_up_opened", "system",
                    f"Survey score {score} is below {policy.survey.follow_up_below}: re-opened as a Level-II follow-up"))
                return "follow_up"
            case.phase = "closed"
            return "closed"
        raise InvalidTransitionError(f"unknown step {step}")

    def _reopen_follow_up(self, ctx: Ctx, at: datetime) -> None:
        case = ctx.case
        case.follow_ups += 1
        case.cycle += 1
        case.level = "II"
        case.phase = "follow_up"
        case.closed_at = None
        case.customer_decision = None
        case.milestones.extend(cycle_milestones(case, at, ctx.policy, ctx.cal))

    def _send_preliminary_feedback(self, ctx: Ctx) -> None:
        to = self.customer_recipient(ctx)
        if to is None:
            return
        resolution = ctx.case.milestone("joint_plan") or ctx.case.milestone(resolution_name(ctx.case))
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="preliminary_feedback", to=to,
                           links=MailLinks().add("status", self.status_link(ctx)),
                           resolution_due=resolution.due_at if resolution else None)

    # ----- extensions with the customer's consent (policy.md §5) ----------------------------------
    def request_extension(self, case_no: str, by: str, reason: str, until: datetime) -> Extension:
        """Staff ask for a later deadline on the step's milestone; the customer decides."""
        ctx = self.load(case_no)
        case, timer, now = ctx.case, ctx.case.step_timer, self.clock.now()
        milestone = governing_milestone(case, timer.step) if timer else None
        if milestone is None or milestone.met_at is not None:
            raise InvalidInputError("this step has no deadline to extend", {"until": "no deadline on this step"})
        if until.tzinfo is None:  # a browser's datetime-local: the dealer's wall clock
            until = until.replace(tzinfo=ZoneInfo(ctx.cal.timezone))
        until = until.astimezone(UTC)
        if now >= milestone.due_at:
            raise InvalidInputError("the deadline has passed", {"until": "ask before the deadline, not after"})
        if until <= milestone.due_at:
            raise InvalidInputError("the new deadline must be later", {"until": "must be after the current deadline"})
        if any(e.answer is None and e.milestone == milestone.name and e.cycle == milestone.cycle
               and now < e.until for e in case.extensions):
            raise InvalidInputError("already waiting for the customer's answer", {"until": "an earlier request is open"})
        customer = self.customer_recipient(ctx)
        if customer is None:
            raise InvalidInputError("the customer has no e-mail address", {"until": "agree with the customer by phone"})
        extension = Extension(id=len(case.extensions) + 1, milestone=milestone.name, cycle=milestone.cycle,
                              reason=reason, until=until, requested_by=by.lower(), requested_at=now)

        def add(c: Ctx) -> None:
            c.case.extensions.append(extension)
        ctx = self.mutate(case_no, add)
        link = self.links.issue(case_no=case_no, step="extension_consent", task_key=f"extension-{extension.id}",
                                recipient=customer.email, expires_at=milestone.due_at)
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="extension_request", to=customer,
                           links=MailLinks().add("extension_consent", link), extension=extension,
                           current_due=milestone.due_at)
        self.event(ctx.case, "extension_requested", by.lower(),
                   f"Asked the customer to move {milestone.name} to {self.notifier.local_time(ctx.tenant, ctx.case, until)}: {reason}")
        return extension

    def answer_extension(self, case_no: str, extension_id: int, decision: str, by: str) -> None:
        now = self.clock.now()
        applied: list[Extension] = []

        def answer(c: Ctx) -> None:
            applied.clear()
            ext = next((e for e in c.case.extensions if e.id == extension_id), None)
            if ext is None or ext.answer is not None:
                raise InvalidTransitionError(f"{case_no}: extension {extension_id} is not waiting for an answer")
            ext.answer, ext.answered_at = decision, now  # type: ignore[assignment]
            milestone = c.case.milestone(ext.milestone, ext.cycle)
            if decision == "accept" and milestone is not None and milestone.met_at is None:
                milestone.original_due_at = milestone.original_due_at or milestone.due_at
                milestone.due_at = ext.until
            applied.append(ext)
        ctx = self.mutate(case_no, answer)
        ext = applied[0]
        verb = "agreed to move" if decision == "accept" else "did not agree to move"
        self.event(ctx.case, f"extension_{decision}ed", by,
                   f"The customer {verb} {ext.milestone} to {self.notifier.local_time(ctx.tenant, ctx.case, ext.until)}")
        requester = ctx.tenant.staff_member(ext.requested_by)
        if requester is not None:
            self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="extension_answered",
                               to=self.staff_recipient(ctx, requester), extension=ext)

    # ----- a new execution: re-opened by the customer, resumed by staff ---------------------------
    def reopen_for_reply(self, case_no: str, at: datetime) -> str | None:
        """The customer wrote within the re-open window of a closed case: it re-opens as a
        Level-II follow-up driven by a new execution. The old one, if it still waits for the
        survey, is not stopped: it ends as ``Superseded`` at its next step (docs/decisions.md)."""
        reopened = False

        def change(ctx: Ctx) -> None:
            nonlocal reopened
            case = ctx.case
            reopened = case.is_closed
            if not reopened:
                return  # already re-opened (a retry) or no longer closed
            self._reopen_follow_up(ctx, at)
            case.step_timer = None
            case.execution = f"{case.case_no}.r{case.cycle}"
        ctx = self.mutate(case_no, change)
        if not reopened:
            return None
        self.event(ctx.case, "reopened", "customer",
                   "The customer wrote after closing: re-opened as a Level-II follow-up",
                   cycle=ctx.case.cycle, execution=ctx.case.execution)
        self._start_execution(ctx, "follow_up")
        return ctx.case.execution

    def resume(self, case_no: str, by: str) -> str:
        """Staff resume a case parked in ``needs_attention``: a new execution re-enters the
        step it stood in (its assignee is asked again)."""
        point = "first_contact"

        def change(ctx: Ctx) -> None:
            nonlocal point
            case = ctx.case
            if case.phase != "needs_attention":
                raise InvalidTransitionError(f"{case_no} is {case.phase}, not waiting for attention")
            point = case.attention_step if case.attention_step in RESUME_POINTS else "first_contact"
            case.execution = f"{case.case_no}.a{case.version + 1}"
            case.attention_reason = None
        ctx = self.mutate(case_no, change)
        self.event(ctx.case, "resumed", by, f"Resumed by {by}: the workflow re-enters {point}",
                   execution=ctx.case.execution, step=point)
        self._start_execution(ctx, point)
        assert ctx.case.execution is not None
        return ctx.case.execution

    def restart(self, case_no: str) -> str | None:
        """The execution that drove the case is gone (the local runtime keeps executions in
        memory only, and restarted): a new one continues where the case stands. A case that
        waited on a human step waits on the same task again — links already mailed still
        decide, with the token the new execution hands over. Returns the new execution's
        name, or None when nothing is left to run (finished, or parked for staff)."""
        found = _restart_point(self.load(case_no).case)
        if found is None:
            return None
        point, same_wait = found

        def change(ctx: Ctx) -> None:
            case = ctx.case
            case.execution = f"{case.case_no}.s{case.version + 1}"
            if same_wait and case.step_timer is not None:
                case.step_timer.entered_ref = _restarted_ref(case.execution)
        ctx = self.mutate(case_no, change)
        self._start_execution(ctx, point)
        assert ctx.case.execution is not None
        return ctx.case.execution

    def _start_execution(self, ctx: Ctx, point: str) -> None:
        name = ctx.case.execution or ctx.case.case_no
        try:
            self.workflow.start(name, {"case_no": ctx.case.case_no, "entry": point})
        except Exception as exc:
            self.needs_attention(ctx.case.case_no, type(exc).__name__, f"could not start execution {name}")
            raise TransientError(f"{ctx.case.case_no}: execution {name} not started") from exc

    # ----- workflow: close, survey, attention ---------------------------------------------------
    def _done_before(self, case_no: str, event_type: str, undone_by: tuple[str, ...]) -> bool:
        """A retried task whose state change was saved already: did the earlier attempt also
        finish its mail and timeline event (the event is written last)? Read only on retries."""
        last = next((e.type for e in reversed(self.store.events(case_no))
                     if e.type == event_type or e.type in undone_by), None)
        return last == event_type

    def close(self, case_no: str) -> dict[str, Any]:
        now = self.clock.now()

        first = True

        def change(ctx: Ctx) -> None:
            nonlocal first
            first = ctx.case.phase != "closed"
            if first:
                ctx.case.phase = "closed"
                ctx.case.closed_at = now
                ctx.case.step_timer = None
                ctx.case.assignee = None
        ctx = self.mutate(case_no, change)
        if first or not self._done_before(case_no, "closed", undone_by=("reopened", "follow_up_opened")):
            to = self.customer_recipient(ctx)
            if to is not None:
                self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="case_closed", to=to,
                                   links=MailLinks().add("status", self.status_link(ctx)))
            self.event(ctx.case, "closed", "system", "Plan carried out; case closed")
        survey_at = ctx.cal.add(ctx.case.closed_at or now, ctx.policy.survey.delay)
        return {"seconds": seconds_until(survey_at, now)}

    def survey_unrated(self, case_no: str) -> dict[str, Any]:
        first = True

        def change(ctx: Ctx) -> None:
            nonlocal first
            first = not (ctx.case.phase == "closed" and ctx.case.survey is not None and ctx.case.survey.unrated)
            ctx.case.survey = (ctx.case.survey or Survey()).model_copy(update={"unrated": True})
            ctx.case.phase = "closed"
            ctx.case.step_timer = None
            ctx.case.assignee = None
        ctx = self.mutate(case_no, change)
        if first or not self._done_before(case_no, "survey_unrated", undone_by=("reopened", "follow_up_opened")):
            self.event(ctx.case, "survey_unrated", "system",
                       "No survey answer after a reminder: closed without a rating (not counted in averages)")
        return {}

    def needs_attention(self, case_no: str, error: str, cause: str) -> dict[str, Any]:
        """Park the case: staff read a plain reason and get a link to the case's console page;
        the raw error and its cause stay in the timeline's details for operators."""
        failed_step = "first_contact"

        first = True

        def change(ctx: Ctx) -> None:
            nonlocal failed_step, first
            failed_step = ctx.case.phase
            first = ctx.case.phase != "needs_attention"
            if first:
                ctx.case.attention_step = _resume_point(ctx.case)
            ctx.case.phase = "needs_attention"
            ctx.case.attention_reason = plain_reason(error, ctx.tenant.brand.languages[0].startswith("zh"))
        ctx = self.mutate(case_no, change)
        if not first and self._done_before(case_no, "needs_attention", undone_by=("resumed",)):
            return {}  # a retry of this task: the brand CR center has its alert already
        person = self.staff(ctx, "brand_cr")
        to = self.staff_recipient(ctx, person)
        self.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="needs_attention", to=to,
                           links=MailLinks().add("console", self.links.console_case(case_no)),
                           failed_step=failed_step, reason=plain_reason(error, to.language.startswith("zh")))
        self.event(ctx.case, "needs_attention", "system",
                   f"Workflow parked in {failed_step}: {plain_reason(error, False)}",
                   error=error, cause=cause[:1000])
        return {}


@dataclass(frozen=True)
class Outlook:
    """What the customer may be told about the next deadline (policy.md §5): its promise
    while it is ahead; once missed, that it is late, who handles it now and the new date."""

    milestone: Milestone | None
    late: bool = False
    handler: Role | None = None
    new_due: datetime | None = None  # when the step next moves up the ladder: always ahead

    @property
    def promise(self) -> datetime | None:
        return self.milestone.due_at if self.milestone is not None and not self.late else None


def outlook(ctx: Ctx, now: datetime) -> Outlook:
    """The next open deadline of the cycle as the customer sees it (the acknowledgement is ours)."""
    case = ctx.case
    open_milestones = [m for m in case.milestones if m.met_at is None and m.cycle == case.cycle
                       and m.name != "acknowledgement"]
    if not open_milestones or case.phase == "closed":
        return Outlook(None)
    nxt = min(open_milestones, key=lambda m: m.due_at)
    if nxt.due_at > now:
        return Outlook(nxt)
    timer = case.step_timer
    if timer is None or timer.step in CUSTOMER_STEPS:
        return Outlook(nxt, late=True)
    sched = step_schedule(case, timer.step, timer.opened_at, ctx.policy, ctx.cal)
    # The rungs already due count even when the timer has not fired yet (a page read first).
    rungs = timer.escalations + escalations_due(sched, timer.escalations, now, ctx.policy, ctx.cal)
    new_due = next_escalation_at(sched, rungs, ctx.policy, ctx.cal)
    return Outlook(nxt, late=True, handler=handling_role(ctx, rungs), new_due=new_due if new_due > now else None)


def handling_role(ctx: Ctx, escalations: int) -> Role:
    """Who answers for the step after ``escalations`` rungs of the ladder (policy.md §5:
    CS head → service manager → GM → regional manager → brand CR center)."""
    timer, ladder = ctx.case.step_timer, ctx.policy.escalation_ladder
    member = ctx.tenant.staff_member(timer.assignee) if timer else None
    base: Role = member.role if member else "cs_head"
    if timer is not None and timer.step == "approval":
        return base  # an approval's assignee moves up the ladder itself
    start = ladder.index(base) if base in ladder else 0
    extra = escalations - 1 if timer is not None and timer.step == "customer_reply" else escalations
    return ladder[min(start + max(extra, 0), len(ladder) - 1)]


def _resume_point(case: Case) -> str:
    """Where a resumed execution re-enters: the step the case stood in (its human asked
    again), the survey for a closed case, the first contact for one parked at triage."""
    if case.step_timer is not None:
        return case.step_timer.step
    if case.phase in RESUME_POINTS:
        return case.phase
    if case.phase == "closed":
        return "survey"
    return "first_contact"


def _restarted_ref(execution: str | None) -> str:
    return f"restarted:{execution}"


def _restart_point(case: Case) -> tuple[str, bool] | None:
    """Where a case whose execution is gone continues, and whether it waits again on the step
    it stood in (rather than entering a step afresh); None when nothing is left to run."""
    if case.phase == "needs_attention":
        return None  # parked: staff resume it from the console
    timer = case.step_timer
    if timer is not None:
        if case.last_recorded != timer.key:
            return timer.step, True  # open, or decided and not yet applied: the wait hands it over
        nxt = _next_after(case, timer.step)  # applied; the next step was not entered yet
        return None if nxt == "closed" else (nxt, False)
    if case.phase == "closed":
        survey = case.survey
        if survey is not None and (survey.answered_at is not None or survey.unrated):
            return None
        return "close", False  # closing again is idempotent; then the wait before the survey
    return (case.phase, False) if case.phase in RESUME_POINTS else ("triage", False)


def _next_after(case: Case, step: Step) -> str:
    """Where a case goes after a decision that was already applied (a retried call)."""
    if step in ("first_contact", "follow_up"):
        return "investigation"
    if step == "investigation":
        return "plan"
    if step == "plan":
        return "approval"
    if step == "approval":
        if _last_rejection(case) is not None and not case.pending_approvals():
            return "plan"
        return "approval" if case.pending_approvals() else "customer_reply"
    if step == "customer_reply":
        return "carry_out" if case.customer_decision == "accept" else "plan"
    if step == "carry_out":
        return "close"
    return "follow_up" if case.phase == "follow_up" else "closed"


def _last_rejection(case: Case) -> Approval | None:
    if not case.plan:
        return None
    rejected = [a for a in case.approvals if a.plan_revision == case.plan.revision and a.decision == "reject"]
    return rejected[-1] if rejected else None


def _how(decision: dict[str, Any]) -> str:
    """How a decision was taken, for the audit trail on the timeline."""
    if decision.get("via") == "mail":
        return " (by reply mail)"
    if decision.get("via") == "link":
        return f" (by link from {decision.get('ip') or '?'}, {str(decision.get('user_agent') or '?')[:60]})"
    return ""


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _summary(step: Step, form: dict[str, Any]) -> str:
    if step == "approval":
        return f"Plan {form.get('decision')}d" + (f": {form.get('comment')}" if form.get("comment") else "")
    if step == "customer_reply":
        return f"Customer {form.get('decision')}ed the plan" + (f": {form.get('reason')}" if form.get("reason") else "")
    if step == "survey":
        return f"Survey answered: {form.get('score') if form.get('score') is not None else form.get('grade')}"
    if step == "plan":
        return f"Plan submitted: {str(form.get('measures', ''))[:120]}"
    if step == "investigation":
        return f"Investigation recorded: root cause {form.get('root_cause')}, responsibility {form.get('responsibility')}"
    return f"{step.replace('_', ' ').capitalize()} recorded: {str(form.get('notes', ''))[:120]}"
