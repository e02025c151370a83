"""``Lifecycle.restart``: where a case whose execution is gone (the local stack restarted)
continues, on in-memory ports."""

from __future__ import annotations

from datetime import timedelta

from shared.complaints.lifecycle import Ctx, running_as
from shared.complaints.models import Survey
from tests.unit.test_lifecycle import T0, link_of, make_case, submit, waiting_for_first_contact


def test_a_case_waiting_on_a_person_waits_on_the_same_task_and_its_mailed_link_still_decides() -> None:
    d, no = waiting_for_first_contact("old-token")
    link = link_of(d, "first_contact", "cs.sh001@dealers.example")
    mails = len(d.mailer.sent)
    d.clock.set(T0 + timedelta(minutes=20))
    execution = d.lifecycle.restart(no)
    assert execution is not None and d.workflow.started[execution] == {"case_no": no, "entry": "first_contact"}
    with running_as(execution):
        seconds = d.lifecycle.enter(no, "first_contact", "entered-after-restart")["seconds"]
        d.lifecycle.open_task(no, "first_contact", "new-token")
    case = d.store.get_case(no)
    assert case.step_timer is not None and case.step_timer.key == "first_contact-1"  # the same wait
    assert case.step_timer.opened_at == T0 and seconds <= 40 * 60  # its deadline clock ran on
    assert len(d.mailer.sent) == mails  # nobody is asked twice
    assert submit(d, link, notes="Called back after the restart.", dealer="SH001") == 200
    assert d.workflow.completed[-1][0] == "new-token"  # the decision goes to the new execution


def test_where_other_cases_continue() -> None:
    d, no = waiting_for_first_contact()
    submit(d, link_of(d, "first_contact", "cs.sh001@dealers.example"), notes="Called.", dealer="SH001")
    d.lifecycle.record(no, "first_contact", "first_contact-1")  # applied; investigation not entered yet
    execution = d.lifecycle.restart(no)
    assert execution and d.workflow.started[execution]["entry"] == "investigation"

    fresh = make_case(d, no="AUR-SH001-202611-00002").case_no  # stopped before its first step was entered
    execution = d.lifecycle.restart(fresh)
    assert execution and d.workflow.started[execution]["entry"] == "first_contact"

    closed = make_case(d, no="AUR-SH001-202611-00003").case_no
    d.lifecycle.close(closed)  # the survey has not gone out: close again, then its wait
    execution = d.lifecycle.restart(closed)
    assert execution and d.workflow.started[execution]["entry"] == "close"

    def answered(ctx: Ctx) -> None:
        ctx.case.survey = Survey(score=90, answered_at=T0)
    d.lifecycle.mutate(closed, answered)
    assert d.lifecycle.restart(closed) is None  # nothing left to run

    parked = make_case(d, no="AUR-SH001-202611-00004").case_no
    d.lifecycle.needs_attention(parked, "KeyError", "a defect")
    assert d.lifecycle.restart(parked) is None  # staff resume it
