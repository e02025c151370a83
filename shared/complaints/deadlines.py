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
    names = ["first_contact", "preliminary_feedback", resolution_name(case)]
    if case.cycle == 1:
        names.insert(0, "acknowledgement")
    return [Milestone(name=n, cycle=case.cycle, due_at=cal.add(start, getattr(d, n))) for n in names]


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
    escalates every ``reescalate`` (or, for the survey, expires at ``expires_at``)."""

    warn_at: datetime | None
    due_at: datetime
    expires_at: datetime | None = None


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
    if due <= opened_at:
        return StepSchedule(warn_at=None, due_at=due)
    warn = opened_at + (due - opened_at) * policy.warning_fraction
    return StepSchedule(warn_at=warn, due_at=due)


def next_escalation_at(schedule: StepSchedule, escalations: int, policy: Policy, cal: WorkingCalendar) -> datetime:
    at = schedule.due_at
    for _ in range(escalations):
        at = cal.add(at, policy.reescalate_after)
    return at


def seconds_until(at: datetime, now: datetime) -> int:
    """A Task timeout: whole seconds, at least 1 (Step Functions wants a positive integer)."""
    return max(1, math.ceil((at - now) / timedelta(seconds=1)))
