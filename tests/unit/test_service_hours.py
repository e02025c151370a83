"""Service hours (policy.md §5): hour deadlines count the dealer's opening hours, warnings come
at 75 % of the service time, dates shown to customers are never a past moment as a promise,
escalations are consolidated and never mailed twice to one person for one event, and calls
entered after the fact get a grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared.complaints.actions import LinkActions
from shared.complaints.calendar import WorkingCalendar
from shared.complaints.deadlines import cycle_milestones, step_schedule
from shared.complaints.errors import plain_reason
from shared.complaints.intake import Intake
from shared.complaints.manual_intake import ManualComplaint, register
from shared.complaints.models import Case, Classification, Customer, Investigation
from shared.complaints.notifications import MailLinks
from shared.complaints.pages import render
from shared.complaints.policy import Duration, ServiceHours, build_policy
from shared.complaints.views import case_document
from tests.fakes import Domain

SH = ZoneInfo("Asia/Shanghai")
HOURS = build_policy().service_hours  # 08:30-18:00 every day, public holidays open
CAL = WorkingCalendar("CN", "Asia/Shanghai", service_hours=HOURS)
CS, SM, GM, CR = ("cs.sh001@dealers.example", "service.sh001@dealers.example", "gm.sh001@dealers.example",
                  "cr.center@aurora-motors.example")
CUSTOMER = "liu.wei@mail.example"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


# ----- the arithmetic ------------------------------------------------------------------------------
def test_a_mail_at_21_22_has_first_contact_due_at_09_30_the_next_morning() -> None:
    due = CAL.add(local(2026, 12, 7, 21, 22), build_policy().deadlines.first_contact)
    assert CAL.local(due) == local(2026, 12, 8, 9, 30)


def test_a_deadline_spanning_closing_time_carries_over_to_the_next_opening() -> None:
    assert CAL.local(CAL.add_service_hours(local(2026, 12, 7, 17, 30), 1)) == local(2026, 12, 8, 9, 0)
    assert CAL.local(CAL.add_service_hours(local(2026, 12, 7, 17, 0), 1)) == local(2026, 12, 7, 18, 0)  # at closing
    assert CAL.local(CAL.add_service_hours(local(2026, 12, 7, 6, 0), 0.5)) == local(2026, 12, 7, 9, 0)  # before opening
    # 24 service hours from Monday 10:00: 8 h Monday, 9.5 h Tuesday, 6.5 h Wednesday.
    assert CAL.local(CAL.add_service_hours(local(2026, 11, 23, 10, 0), 24)) == local(2026, 11, 25, 15, 0)


def test_weekends_count_when_the_store_opens_and_closed_weekdays_do_not() -> None:
    saturday_evening = local(2026, 12, 5, 20, 0)
    assert CAL.local(CAL.add_service_hours(saturday_evening, 1)) == local(2026, 12, 6, 9, 30)  # Sunday open
    no_sundays = WorkingCalendar("CN", "Asia/Shanghai",
                                 service_hours=HOURS.model_copy(update={"closed_weekdays": [7]}))
    assert no_sundays.local(no_sundays.add_service_hours(saturday_evening, 1)) == local(2026, 12, 7, 9, 30)


def test_public_holidays_open_or_closed_by_configuration() -> None:
    eve = local(2026, 9, 30, 21, 0)  # 1-7 October 2026: National Day holiday
    assert CAL.local(CAL.add_service_hours(eve, 1)) == local(2026, 10, 1, 9, 30)  # default: open
    closed = WorkingCalendar("CN", "Asia/Shanghai",
                             service_hours=HOURS.model_copy(update={"public_holidays": "closed"}))
    # Closed 1-7 October (the Sunday inside the block too); Thursday 8 October opens again.
    assert closed.local(closed.add_service_hours(eve, 1)) == local(2026, 10, 8, 9, 30)
    assert not closed.is_service_day(local(2026, 10, 4, 12, 0).date())
    assert closed.is_service_day(local(2026, 10, 11, 12, 0).date())  # an ordinary Sunday stays open


def test_the_dealers_zone_decides_the_opening_hours() -> None:
    berlin = WorkingCalendar("DE", "Europe/Berlin", "BE", service_hours=HOURS)
    start = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)  # 21:00 in Berlin, 04:00 next day in Shanghai
    assert berlin.local(berlin.add_service_hours(start, 1)).isoformat() == "2026-12-08T09:30:00+01:00"
    assert CAL.local(CAL.add_service_hours(start, 1)) == local(2026, 12, 8, 9, 30)
    # Across the change to summer time the wall clock still opens at 08:30.
    spring = berlin.local(berlin.add_service_hours(datetime(2026, 3, 28, 20, 0, tzinfo=UTC), 1))
    assert spring.isoformat() == "2026-03-29T09:30:00+02:00"


def test_service_hours_are_configuration_and_checked() -> None:
    assert build_policy().deadlines.first_contact == Duration(service_hours=1)
    assert build_policy().intake.backdated_grace == Duration(service_hours=1)
    late = build_policy({"service_hours": {"opens": "09:00", "closes": "17:00"}}).service_hours
    assert (late.opens.hour, late.closes.hour, late.public_holidays) == (9, 17, "open")
    with pytest.raises(ValidationError):
        ServiceHours(opens="18:00", closes="08:30", public_holidays="open")
    with pytest.raises(ValidationError):
        build_policy({"service_hours": {"closed_weekdays": [1, 2, 3, 4, 5, 6, 7]}})


def test_the_warning_comes_at_75_percent_of_the_service_time() -> None:
    start = local(2026, 12, 7, 21, 22)
    due = CAL.add_service_hours(start, 1)
    assert CAL.local(CAL.fraction_of(start, due, 0.75)) == local(2026, 12, 8, 9, 15)  # not 06:30 at night


# ----- a case on the fake store --------------------------------------------------------------------
def make_case(d: Domain, *, received: datetime | None = None, entered: datetime | None = None,
              channel: str = "email", severity: str = "general") -> Case:
    case = Case(case_no="AUR-SH001-202612-00001", brand="aurora", dealer="SH001", region="east", channel=channel,
                phase="first_contact", received_at=received or d.clock.now(), entered_at=entered, subject="刹车异响",
                description="刹车有异响", language="zh", customer=Customer(name="刘伟", email=CUSTOMER),
                classification=Classification(category="product_quality", severity=severity,
                                              safety=severity == "critical", media_or_regulator=False))
    case.milestones = cycle_milestones(case, case.received_at, d.tenant.policy_for("SH001"), d.tenant.calendar_for("SH001"))
    return d.store.create_case(case)


def test_a_mail_at_21_22_is_not_escalated_in_the_night() -> None:
    d = Domain(local(2026, 12, 7, 21, 22).astimezone(UTC))
    no = make_case(d).case_no
    assert d.store.get_case(no).milestone("first_contact").due_at == local(2026, 12, 8, 9, 30)  # type: ignore[union-attr]
    seconds = d.lifecycle.enter(no, "first_contact", "e1")["seconds"]
    assert d.clock.now() + timedelta(seconds=seconds) == local(2026, 12, 8, 9, 15)  # the warning, in the morning
    d.clock.set(local(2026, 12, 7, 23, 0).astimezone(UTC))
    d.lifecycle.timer(no, "first_contact")
    assert not [m for m in d.mailer.sent if "超时" in m.subject]


def test_the_case_api_shows_the_service_hours_deadline() -> None:
    d = Domain(local(2026, 12, 7, 21, 22).astimezone(UTC))
    doc = case_document(make_case(d), [])
    due = {m["name"]: m["due_at"] for m in doc["milestones"]}
    assert due["first_contact"].startswith("2026-12-08T01:30")  # 09:30 in Shanghai


def progress_mails(d: Domain) -> list[str]:
    return [m.text for m in d.mailer.to(CUSTOMER) if "处理进度" in m.subject]


def test_a_progress_mail_after_a_breach_says_it_is_late_who_handles_it_and_the_new_date() -> None:
    d = Domain(local(2026, 12, 7, 10, 0).astimezone(UTC))
    no = make_case(d).case_no
    d.lifecycle.enter(no, "first_contact", "e1")
    d.clock.set(local(2026, 12, 9, 11, 0).astimezone(UTC))  # two working days, nobody called
    d.lifecycle.timer(no, "first_contact")
    [text] = progress_mails(d)
    assert "逾期" in text and "原定的 2026-12-07 11:00 前" in text  # the missed date, named as missed
    # Due Monday 11:00; rungs on Monday, Tuesday and Wednesday 11:00... Wednesday 11:00 is now: three.
    assert d.store.get_case(no).escalation_level == 3
    assert "区域经理负责跟进" in text  # who handles it now: the third rung up from the CS head
    assert "2026-12-10 11:00 前与您联系" in text  # the new expected date: the next rung, ahead
    assert "预计在" not in text


def test_no_mail_or_page_promises_a_moment_already_past() -> None:
    """The renderers with a clock past the due date: the moment is not offered as a promise."""
    d = Domain(local(2026, 12, 7, 10, 0).astimezone(UTC))
    case = make_case(d)
    ctx = d.lifecycle.load(case.case_no)
    to = d.lifecycle.customer_recipient(ctx)
    assert to is not None
    d.clock.set(local(2026, 12, 23, 10, 0).astimezone(UTC))  # everything is overdue
    d.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="acknowledgement", to=to,
                    links=MailLinks().add("status", "x"))
    d.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="progress_update", to=to,
                    links=MailLinks().add("status", "x"),
                    next_due=ctx.case.milestone("first_contact").due_at, late=False, handler=None,  # type: ignore[union-attr]
                    new_due=None)
    investigated = ctx.case.model_copy(update={"investigation": Investigation(
        findings="刹车片磨损", root_cause="product", responsibility="system", preliminary_feedback="更换刹车片",
        recorded_by=CS, recorded_at=d.clock.now())})
    d.notifier.send(tenant=ctx.tenant, case=investigated, kind="preliminary_feedback", to=to,
                    links=MailLinks().add("status", "x"), resolution_due=ctx.case.milestone("solution").due_at)  # type: ignore[union-attr]
    for mail in d.mailer.to(CUSTOMER):
        for m in ctx.case.milestones:
            assert ctx.cal.local(m.due_at).strftime("%Y-%m-%d %H:%M") not in mail.text, mail.text
    d.lifecycle.enter(case.case_no, "first_contact", "e1")
    link = d.links.issue(case_no=case.case_no, step="status", task_key=None, recipient=CUSTOMER,
                         expires_at=d.clock.now() + timedelta(days=1))
    page = render(LinkActions(d.lifecycle, d.links).show(link.rsplit("/", 1)[1]))
    assert "预计不晚于" not in page and "已逾期" in page and "新的预计时间" in page


def test_resuming_a_parked_case_sends_one_consolidated_escalation() -> None:
    d = Domain(local(2026, 12, 7, 10, 0).astimezone(UTC))
    no = make_case(d).case_no
    d.lifecycle.enter(no, "first_contact", "e1")
    d.lifecycle.needs_attention(no, "States.Timeout", "Task timed out after 60 seconds")
    d.clock.set(local(2026, 12, 11, 10, 0).astimezone(UTC))  # parked for four days
    d.lifecycle.resume(no, CR)
    d.lifecycle.enter(no, "first_contact", "e2")
    before = len(d.mailer.sent)
    d.lifecycle.timer(no, "first_contact")
    escalations = [m for m in d.mailer.sent[before:] if "超时升级" in m.subject]
    assert len(escalations) == 1 and escalations[0].to == [CR]  # four rungs in one mail, to the top reached
    assert "合并" in escalations[0].text
    assert d.store.get_case(no).escalation_level == 4
    breached = [e for e in d.store.events(no) if e.type == "deadline_breached"]
    assert len(breached) == 1 and breached[0].data["rungs"] == 4


def test_never_the_same_escalation_twice_to_one_person_for_one_event() -> None:
    d = Domain(local(2026, 12, 7, 10, 0).astimezone(UTC))
    no = make_case(d).case_no
    d.lifecycle.enter(no, "first_contact", "e1")
    d.clock.set(local(2026, 12, 14, 10, 0).astimezone(UTC))  # the ladder's top is passed: CR center
    d.lifecycle.timer(no, "first_contact")
    d.clock.set(local(2026, 12, 15, 10, 0).astimezone(UTC))  # another working day at the top
    d.lifecycle.timer(no, "first_contact")
    d.lifecycle.needs_attention(no, "KeyError", "defect")
    d.lifecycle.resume(no, CR)
    d.lifecycle.enter(no, "first_contact", "e2")
    d.lifecycle.timer(no, "first_contact")  # the resumed step reaches the CR center again
    to_cr = [m for m in d.mailer.to(CR) if "超时升级" in m.subject]
    assert len(to_cr) == 1


def test_parked_case_reason_is_plain_words_and_the_mail_links_to_the_console() -> None:
    d = Domain(local(2026, 12, 7, 10, 0).astimezone(UTC))
    no = make_case(d).case_no
    d.lifecycle.needs_attention(no, "Lambda.ServiceException", "Rate exceeded (Service: Lambda, Status Code: 500)")
    case = d.store.get_case(no)
    assert case.attention_reason == plain_reason("Lambda.ServiceException", zh=True)
    assert "Lambda" not in (case.attention_reason or "") and "Rate exceeded" not in (case.attention_reason or "")
    [mail] = d.mailer.to(CR)
    assert mail.links[0]["url"] == f"https://complaints.example/console/cases/{no}"
    assert "Lambda" not in mail.text
    [event] = [e for e in d.store.events(no) if e.type == "needs_attention"]
    assert event.data["error"] == "Lambda.ServiceException" and "Rate exceeded" in str(event.data["cause"])
    assert plain_reason("States.Timeout", zh=False).startswith("The system took too long")
    assert plain_reason("Something.Else", zh=False) == "The system hit an error it cannot handle by itself."


# ----- calls entered after the fact ----------------------------------------------------------------
def enter_call(d: Domain, call_at: str, **extra: str) -> Case:
    tenant = d.tenant
    intake = Intake(d.store, d.blobs, d.workflow, d.clock, d.lifecycle)
    by = tenant.staff_member(CS)
    assert by is not None
    entered = ManualComplaint.model_validate({
        "channel": "phone", "customer_name": "刘伟", "customer_phone": "13800138001", "customer_email": CUSTOMER,
        "subject": "保养等待", "description": "客户来电：保养等了三个小时，服务顾问态度很差。", "received_at": call_at, **extra})
    result = register(intake, tenant, entered, by)
    return d.store.get_case(result.case_no or "")


def test_a_back_dated_call_runs_from_the_call_but_gets_a_grace_before_escalation() -> None:
    d = Domain(local(2026, 12, 7, 12, 0).astimezone(UTC))  # entered at noon
    case = enter_call(d, "2026-12-07T10:00")  # the call, on the dealer's wall clock
    assert case.received_at == local(2026, 12, 7, 10, 0) and case.entered_at == d.clock.now()
    assert case.milestone("first_contact").due_at == local(2026, 12, 7, 11, 0)  # type: ignore[union-attr]
    seconds = d.lifecycle.enter(case.case_no, "first_contact", "e1")["seconds"]
    assert seconds == 3600  # not within a second: the grace of one service hour after entry
    d.lifecycle.timer(case.case_no, "first_contact")
    assert not [m for m in d.mailer.sent if "超时升级" in m.subject]
    d.clock.set(local(2026, 12, 7, 13, 0).astimezone(UTC))
    d.lifecycle.timer(case.case_no, "first_contact")
    assert [m.to for m in d.mailer.sent if "超时升级" in m.subject] == [[SM]]
    sched = step_schedule(d.store.get_case(case.case_no), "first_contact", d.clock.now(),
                          d.tenant.policy_for("SH001"), d.tenant.calendar_for("SH001"))
    assert sched.first_escalation_at == local(2026, 12, 7, 13, 0)


def test_no_acknowledgement_breach_on_a_phone_case() -> None:
    d = Domain(local(2026, 12, 7, 15, 0).astimezone(UTC))
    case = enter_call(d, "2026-12-07T09:00")  # typed in six hours after the call
    ack = case.milestone("acknowledgement")
    assert ack is not None and ack.met_at is not None and not ack.breached
    acks = [m for m in d.mailer.to(CUSTOMER) if "已收到" in m.subject]
    assert len(acks) == 1 and "2026-12-07 10:00" not in acks[0].text  # the passed first-contact time is no promise


def test_the_call_time_is_read_in_the_dealers_zone() -> None:
    d = Domain(local(2026, 12, 7, 12, 0).astimezone(UTC))
    doc_dealer = d.tenant.dealer("SH001")
    assert (doc_dealer.timezone or d.tenant.brand.timezone) == "Asia/Shanghai"
    case = enter_call(d, "2026-12-07T11:45")
    assert case.received_at == datetime(2026, 12, 7, 3, 45, tzinfo=UTC)
