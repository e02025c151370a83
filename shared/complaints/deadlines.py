"""Milestones and step timers (policy.md §5-§8).

A human step waits on one timer at a time: the next warning, breach, reminder or
expiry of that step. The state machine turns it into the Task's
``TimeoutSecondsPath``; when it fires, ``due_events`` says what is due now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from .calendar import WorkingCalendar
from .models import Case, Milestone, Step
from .policy import Policy


def resolution_name(case: Case) -> str:
    return "solution" if case.classification.severity == "general" else "result"


def cycle_milestones(case: Case, start: datetime, policy: Policy, cal: WorkingCalendar) -> list[Milestone]:
    """The milestones of one handling cycle (the first, or a Level-II follow-up)."""
    d = policy.deadlines
    milestones = [Milestone(name=n, cycle=case.cycle, due_at=cal.add(start, getattr(d, n)))
                  for n in ("first_contact", "preliminary_feedback", resolution_name(case))]
    if case.cycle == 1:
        # The acknowledgement is the system's own, sent when the case is registered: for a call
        # or a letter entered after the fact it runs from the entry, so back-dating the call
        # cannot make it late (the customer was answered on the phone).
        acknowledged_from = case.entered_at if case.entered_at is not None else start
        milestones.insert(0, Milestone(name="acknowledgement", cycle=case.cycle,
                                       due_at=cal.add(acknowledged_from, d.acknowledgement)))
    return milestones


def joint_plan_milestone(case: Case, policy: Policy, cal: WorkingCalendar, start: datetime) -> Milestone:
    return Milestone(name="joint_plan", cycle=case.cycle, due_at=cal.add(start, policy.deadlines.joint_plan))


def meet(case: Case, name: str, at: datetime) -> Milestone | None:
    m = case.milestone(name)
    if m is not None and m.met_at is None:
        m.met_at = at
        m.breached = m.breached or at > m.due_at
    return m


def governing_milestone(case: Case, step: Step) -> Milestone | None:
    """The milestone a step works towards, if the policy gives it one."""
    if step in ("first_contact", "follow_up"):
        return case.milestone("first_contact")
    if step == "investigation":
        return case.milestone("preliminary_feedback")
    if step == "plan":
        return case.milestone("joint_plan") or case.milestone(resolution_name(case))
    return None


@dataclass(frozen=True)
class StepSchedule:
    """When a step's assignee is warned and when it is due; after ``due_at`` the step
    escalates every ``reescalate`` (or, for the survey, expires at ``expires_at``). The
    first escalation waits until ``escalate_from`` when that is later (a back-dated call's grace)."""

    warn_at: datetime | None
    due_at: datetime
    expires_at: datetime | None = None
    escalate_from: datetime | None = None

    @property
    def first_escalation_at(self) -> datetime:
        return max(self.due_at, self.escalate_from) if self.escalate_from else self.due_at


def backdated_grace_until(case: Case, policy: Policy, cal: WorkingCalendar) -> datetime | None:
    """A case staff entered after the fact (a call at 10:00 typed in at 12:00): its clocks
    run from the call, but nobody is escalated before staff had the policy's grace after
    entering it — otherwise a truthful call time escalates within a second."""
    if case.entered_at is None or case.entered_at <= case.received_at:
        return None
    return cal.add(case.entered_at, policy.intake.backdated_grace)


def step_schedule(case: Case, step: Step, opened_at: datetime, policy: Policy,
                  cal: WorkingCalendar) -> StepSchedule:
    if step == "approval":
        return StepSchedule(warn_at=cal.add(opened_at, policy.approval.remind_after),
                            due_at=cal.add(opened_at, policy.approval.escalate_after))
    if step == "customer_reply":
        return StepSchedule(warn_at=None, due_at=cal.add(opened_at, policy.customer_reply.phone_confirm_after))
    if step == "survey":
        reminder = cal.add(opened_at, policy.survey.reminder_after)
        return StepSchedule(warn_at=None, due_at=reminder,
                            expires_at=cal.add(reminder, policy.survey.close_after_reminder))
    milestone = governing_milestone(case, step)
    due = milestone.due_at if milestone is not None else cal.add(opened_at, policy.deadlines.carry_out)
    grace = backdated_grace_until(case, policy, cal)
    if due <= opened_at:
        return StepSchedule(warn_at=None, due_at=due, escalate_from=grace)
    return StepSchedule(warn_at=warning_at(opened_at, due, policy, cal), due_at=due, escalate_from=grace)


def warning_at(start: datetime, due: datetime, policy: Policy, cal: WorkingCalendar) -> datetime:
    """The policy's warning point (75 % by default) of the service time from start to due."""
    return cal.fraction_of(start, due, policy.warning_fraction)


def next_escalation_at(schedule: StepSchedule, escalations: int, policy: Policy, cal: WorkingCalendar) -> datetime:
    at = schedule.first_escalation_at
    for _ in range(escalations):
        at = cal.add(at, policy.reescalate_after)
    return at


def escalations_due(schedule: StepSchedule, escalations: int, now: datetime, policy: Policy,
                    cal: WorkingCalendar) -> int:
    """How many rungs of the ladder are due by ``now`` beyond the ``escalations`` made: more
    than one when the case was parked or the clock jumped (they go out as one escalation)."""
    due = 0
    while now >= next_escalation_at(schedule, escalations + due, policy, cal):
        due += 1
    return due


def seconds_until(at: datetime, now: datetime) -> int:
    """A Task timeout: whole seconds, at least 1 (Step Functions wants a positive integer)."""
    return max(1, math.ceil((at - now) / timedelta(seconds=1)))
