"""The lifecycle service on in-memory ports: what each state of the state machine does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.complaints.actions import LinkActions, RequestMeta
from shared.complaints.deadlines import cycle_milestones
from shared.complaints.errors import InvalidInputError, LinkForbiddenError, LinkGoneError, LinkNotFoundError
from shared.complaints.links import link_hash
from shared.complaints.models import Case, Classification, Customer
from tests.fakes import Domain

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai


def make_case(d: Domain, severity: str = "general", dealer: str | None = "SH001", no: str = "AUR-SH001-202611-00001") -> Case:
    case = Case(case_no=no, brand="aurora", dealer=dealer, region="east" if dealer else None, channel="email",
                phase="first_contact", received_at=d.clock.now(), subject="异响", description="仪表台异响",
                language="zh", customer=Customer(name="刘伟", email="liu.wei@mail.example"),
                classification=Classification(category="product_quality", severity=severity,
                                              safety=severity == "critical", media_or_regulator=False))
    case.milestones = cycle_milestones(case, case.received_at, d.tenant.policy_for(dealer), d.tenant.calendar_for(dealer))
    return d.store.create_case(case)


def waiting_for_first_contact(token: str = "t1") -> tuple[Domain, str]:
    """A fresh case whose first-contact step is open, its link mailed to the CS head."""
    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.enter(no, "first_contact", "e1")
    d.lifecycle.open_task(no, "first_contact", token)
    return d, no


def link_of(d: Domain, step: str, to: str) -> str:
    for mail in reversed(d.mailer.sent):
        for link in mail.links:
            if link["step"] == step and to in mail.to:
                return link["url"].rsplit("/", 1)[1]
    raise AssertionError(f"no {step} link for {to}")


def submit(d: Domain, link_id: str, **fields: str) -> int:
    actions = LinkActions(d.lifecycle, d.links)
    view = actions.show(link_id)
    assert view.status == 200, view.data
    result = actions.submit(link_id, {**fields, "form_token": view.data["form_token"]}, RequestMeta("1.2.3.4", "test"))
    return result.status


def test_critical_case_alerts_gm_and_brand_at_once() -> None:
    d = Domain(T0)
    make_case(d, "critical")
    d.lifecycle.triage("AUR-SH001-202611-00001")
    assert {m.to[0] for m in d.mailer.sent} == {"gm.sh001@dealers.example", "cr.center@aurora-motors.example"}
    d.lifecycle.triage("AUR-SH001-202611-00001")  # a retried call alerts nobody twice
    assert len(d.mailer.sent) == 2


def test_first_contact_warns_then_escalates_two_levels() -> None:
    d = Domain(T0)
    no = make_case(d).case_no
    first = d.lifecycle.enter(no, "first_contact", "entry-1")
    assert first["seconds"] == 45 * 60  # warned at 75 % of the hour
    d.lifecycle.open_task(no, "first_contact", "token-1")
    assert d.mailer.to("cs.sh001@dealers.example")[-1].subject.startswith(f"[{no}] 待办")

    d.clock.set(T0 + timedelta(minutes=45))
    assert d.lifecycle.timer(no, "first_contact")["seconds"] == 15 * 60
    assert "即将超时" in d.mailer.to("cs.sh001@dealers.example")[-1].subject

    d.clock.set(T0 + timedelta(hours=1))
    nxt = d.lifecycle.timer(no, "first_contact")
    assert "超时升级" in d.mailer.to("service.sh001@dealers.example")[-1].subject
    case = d.store.get_case(no)
    assert case.milestone("first_contact").breached  # type: ignore[union-attr]
    assert nxt["seconds"] == 24 * 3600  # re-escalation after one more working day (Tuesday)

    d.clock.set(T0 + timedelta(hours=1, days=1))
    d.lifecycle.timer(no, "first_contact")
    assert "超时升级" in d.mailer.to("gm.sh001@dealers.example")[-1].subject
    assert d.store.get_case(no).escalation_level == 2


def test_entry_is_idempotent_for_a_retried_lambda() -> None:
    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.enter(no, "first_contact", "entry-1")
    d.lifecycle.enter(no, "first_contact", "entry-1")
    assert d.store.get_case(no).step_seq == 1


def test_decision_that_races_a_timer_is_handed_to_the_new_token() -> None:
    d, no = waiting_for_first_contact("token-1")
    d.workflow.dead_tokens.add("token-1")  # the timer fired just before the person clicked
    assert submit(d, link_of(d, "first_contact", "cs.sh001@dealers.example"), notes="called") == 200
    assert d.workflow.completed == []
    d.lifecycle.open_task(no, "first_contact", "token-2")  # the re-armed wait
    assert d.workflow.completed == [("token-2", {"task_key": "first_contact-1", "outcome": "done"})]


def test_approval_chain_follows_the_authority_matrix() -> None:
    d = Domain(T0)
    no = make_case(d, "major").case_no
    d.lifecycle.enter(no, "plan", "e1")
    d.lifecycle.open_task(no, "plan", "t-plan")
    submit(d, link_of(d, "plan", "cs.sh001@dealers.example"), measures="buy back the car",
           comp_kind_1="buy_back", comp_value_1="150000")
    assert d.lifecycle.record(no, "plan", "plan-1") == {"next": "approval"}
    case = d.store.get_case(no)
    assert [(a.level, a.role) for a in case.approvals] == [(1, "general_manager"), (2, "regional_manager")]

    d.lifecycle.enter(no, "approval", "e2")
    d.lifecycle.open_task(no, "approval", "t-a1")
    submit(d, link_of(d, "approval", "gm.sh001@dealers.example"), decision="approve")
    assert d.lifecycle.record(no, "approval", "approval-2") == {"next": "approval"}
    d.lifecycle.enter(no, "approval", "e3")
    d.lifecycle.open_task(no, "approval", "t-a2")
    submit(d, link_of(d, "approval", "east.region@aurora-motors.example"), decision="reject", comment="too much")
    assert d.lifecycle.record(no, "approval", "approval-3") == {"next": "plan"}


def approval_waiting() -> tuple[Domain, str]:
    """A fresh case whose ¥800 plan waits for the service manager's approval."""
    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.enter(no, "plan", "e1")
    d.lifecycle.open_task(no, "plan", "t1")
    submit(d, link_of(d, "plan", "cs.sh001@dealers.example"), measures="free repair", comp_kind_1="free_service",
           comp_value_1="800")
    d.lifecycle.record(no, "plan", "plan-1")
    d.lifecycle.enter(no, "approval", "e2")
    d.lifecycle.open_task(no, "approval", "t2")
    return d, no


def test_late_approval_escalates_and_the_old_link_stops_working() -> None:
    d, no = approval_waiting()
    old = link_of(d, "approval", "service.sh001@dealers.example")
    d.clock.set(T0 + timedelta(days=1))
    d.lifecycle.timer(no, "approval")  # reminder after 1 working day
    d.clock.set(T0 + timedelta(days=2))
    d.lifecycle.timer(no, "approval")  # escalation after 2
    actions = LinkActions(d.lifecycle, d.links)
    assert actions.show(old).status == 410
    assert submit(d, link_of(d, "approval", "gm.sh001@dealers.example"), decision="approve") == 200


def test_links_refuse_forgery_and_missing_form_token() -> None:
    d, _ = waiting_for_first_contact()
    actions = LinkActions(d.lifecycle, d.links)
    link = link_of(d, "first_contact", "cs.sh001@dealers.example")
    with pytest.raises(LinkNotFoundError):
        actions.show(link[:-2] + "xx")
    with pytest.raises(LinkForbiddenError):
        actions.submit(link, {"notes": "called"}, RequestMeta())
    with pytest.raises(LinkForbiddenError):
        actions.submit(link, {"notes": "called", "form_token": "0" * 64}, RequestMeta())
    assert d.workflow.completed == []
    # the table holds only a hash of the link id
    assert link not in str(d.store.link_table)


def test_links_expire() -> None:
    d, _ = waiting_for_first_contact()
    link = link_of(d, "first_contact", "cs.sh001@dealers.example")
    d.clock.set(T0 + timedelta(days=61))
    with pytest.raises(LinkGoneError) as gone:
        LinkActions(d.lifecycle, d.links).show(link)
    assert gone.value.reason == "expired"


def test_invalid_form_does_not_burn_the_link() -> None:
    d, _ = waiting_for_first_contact()
    actions = LinkActions(d.lifecycle, d.links)
    link = link_of(d, "first_contact", "cs.sh001@dealers.example")
    token = actions.show(link).data["form_token"]
    bad = actions.submit(link, {"form_token": token, "notes": ""}, RequestMeta())
    assert bad.status == 400 and "notes" in bad.data["errors"]
    assert actions.submit(link, {"form_token": token, "notes": "called back"}, RequestMeta()).status == 200
    again = actions.show(link)
    assert again.status == 410 and again.data["reason"] == "decided"


def test_triage_case_goes_to_the_brand_and_gets_a_dealer_at_first_contact() -> None:
    d = Domain(T0)
    no = make_case(d, dealer=None, no="AUR-HQ-202611-00001").case_no
    d.lifecycle.enter(no, "first_contact", "e1")
    d.lifecycle.open_task(no, "first_contact", "t1")
    link = link_of(d, "first_contact", "cr.center@aurora-motors.example")
    actions = LinkActions(d.lifecycle, d.links)
    token = actions.show(link).data["form_token"]
    assert actions.submit(link, {"form_token": token, "notes": "called"}, RequestMeta()).status == 400
    assert actions.submit(link, {"form_token": token, "notes": "called", "dealer": "GZ003"}, RequestMeta()).status == 200
    d.lifecycle.record(no, "first_contact", "first_contact-1")
    assert d.store.get_case(no).dealer == "GZ003"


def test_survey_reminds_once_then_closes_unrated() -> None:
    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.close(no)
    d.lifecycle.enter(no, "survey", "e1")
    d.lifecycle.open_task(no, "survey", "t1")
    d.clock.set(T0 + timedelta(days=7))  # 5 working days later
    assert d.lifecycle.timer(no, "survey")["expired"] is False
    assert d.mailer.to("liu.wei@mail.example")[-1].subject.endswith("提醒：请您评价本次投诉处理")
    d.clock.set(T0 + timedelta(days=14))
    assert d.lifecycle.timer(no, "survey")["expired"] is True
    d.lifecycle.survey_unrated(no)
    case = d.store.get_case(no)
    assert case.survey is not None and case.survey.unrated and case.survey.score is None


def test_poor_score_reopens_as_level_two_follow_up() -> None:
    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.enter(no, "survey", "e1")
    d.lifecycle.open_task(no, "survey", "t1")
    submit(d, link_of(d, "survey", "liu.wei@mail.example"), grade="passable", comment="slow")
    assert d.lifecycle.record(no, "survey", "survey-1") == {"next": "follow_up"}
    case = d.store.get_case(no)
    assert (case.level, case.cycle, case.phase, case.survey.score) == ("II", 2, "follow_up", 65)  # type: ignore[union-attr]
    assert {m.name for m in case.milestones if m.cycle == 2} == {"first_contact", "preliminary_feedback", "solution"}


def test_customers_who_write_traditional_chinese_get_traditional_chinese() -> None:
    d = Domain(T0)
    case = make_case(d)
    case.language = "zh-Hant"
    d.store.save_case(case)
    d.lifecycle.enter(case.case_no, "survey", "e1")
    d.lifecycle.open_task(case.case_no, "survey", "t1")
    mail = d.mailer.to("liu.wei@mail.example")[-1]
    assert "請您評價本次投訴處理" in mail.subject and "满意" not in mail.text and 'lang="zh-Hant"' in mail.html
    page = LinkActions(d.lifecycle, d.links).show(link_of(d, "survey", "liu.wei@mail.example"))
    from shared.complaints.pages import render

    html = render(page)
    assert "您對本次投訴處理滿意嗎" in html and 'lang="zh-Hant"' in html


def test_status_page_shows_the_customers_messages_without_links_and_is_rate_limited() -> None:
    from shared.complaints.errors import RateLimitedError

    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.enter(no, "survey", "e1")
    d.lifecycle.open_task(no, "survey", "t1")
    ctx = d.lifecycle.load(no)
    status = d.lifecycle.status_link(ctx).rsplit("/", 1)[1]
    actions = LinkActions(d.lifecycle, d.links)
    view = actions.show(status)
    assert view.kind == "status" and [m["from_us"] for m in view.data["messages"]] == [True]
    assert "https://" not in view.data["messages"][0]["text"]  # the survey link is not shown
    with pytest.raises(LinkForbiddenError):
        actions.submit(status, {"form_token": "x"}, RequestMeta())
    for _ in range(28):
        actions.show(status)
    with pytest.raises(RateLimitedError):
        actions.show(status)


def test_extension_moves_the_deadline_only_with_the_customers_consent() -> None:
    from shared.complaints.pages import render

    for answer in ("accept", "decline"):
        d = Domain(T0)
        no = make_case(d).case_no
        d.lifecycle.enter(no, "plan", "e1")
        d.lifecycle.open_task(no, "plan", "t1")
        actions = LinkActions(d.lifecycle, d.links)
        plan_link = link_of(d, "plan", "cs.sh001@dealers.example")
        page = actions.show(plan_link)
        assert page.data["can_extend"] and "Ask the customer" in render(page).replace("请求客户同意延期", "Ask the customer")
        old_due = d.store.get_case(no).milestone("solution").due_at  # type: ignore[union-attr]
        asked = actions.submit(plan_link, {"form_token": page.data["form_token"], "intent": "extension",
                                           "reason": "The part comes from the factory next week.",
                                           "until": "2026-12-02T18:00"}, RequestMeta())
        assert asked.status == 200 and actions.show(plan_link).status == 200  # the step's link is not used up
        consent = link_of(d, "extension_consent", "liu.wei@mail.example")
        view = actions.show(consent)
        assert view.status == 200 and "2026-12-02 18:00" in render(view)
        assert actions.submit(consent, {"form_token": view.data["form_token"], "decision": answer},
                              RequestMeta()).status == 200
        case = d.store.get_case(no)
        solution = case.milestone("solution")
        assert solution is not None
        if answer == "accept":
            assert solution.due_at == datetime(2026, 12, 2, 10, 0, tzinfo=UTC) and solution.original_due_at == old_due
        else:
            assert solution.due_at == old_due and solution.original_due_at is None
        assert case.extensions[0].answer == answer
        assert f"extension_{answer}ed" in [e.type for e in d.store.events(no)]
        assert actions.show(consent).status == 410  # answered once
        staff = d.mailer.to("cs.sh001@dealers.example")[-1]
        assert ("同意延期" if answer == "accept" else "不同意延期") in staff.subject


def test_no_extension_after_the_deadline_or_without_an_answer() -> None:
    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.enter(no, "plan", "e1")
    d.lifecycle.request_extension(no, "cs.sh001@dealers.example", "Waiting for a part", T0 + timedelta(days=10))
    due = d.store.get_case(no).milestone("solution").due_at  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError):  # one open request at a time
        d.lifecycle.request_extension(no, "cs.sh001@dealers.example", "Waiting for a part", T0 + timedelta(days=11))
    d.clock.set(due)
    assert d.store.get_case(no).milestone("solution").due_at == due  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError):
        d.lifecycle.request_extension(no, "cs.sh001@dealers.example", "Too late now", T0 + timedelta(days=12))


def test_progress_updates_every_two_working_days_unless_we_wrote_meanwhile() -> None:
    d = Domain(T0)  # Monday
    no = make_case(d).case_no
    d.lifecycle.enter(no, "plan", "e1")
    d.lifecycle.open_task(no, "plan", "t1")
    d.clock.set(T0 + timedelta(days=2))  # Wednesday: two working days without news
    d.lifecycle.timer(no, "plan")
    updates = [m for m in d.mailer.to("liu.wei@mail.example") if "处理进度" in m.subject]
    assert len(updates) == 1
    d.clock.set(T0 + timedelta(days=3))
    d.lifecycle.timer(no, "plan")  # one working day after the update: nothing yet
    assert len([m for m in d.mailer.to("liu.wei@mail.example") if "处理进度" in m.subject]) == 1


# The 24-hour feedback counts 24 service hours (08:30-18:00): Monday 10:00 + 8 h + Tuesday 9.5 h
# + 6.5 h = Wednesday 15:00 (docs/decisions.md, 2026-12-04 — service hours).
@pytest.mark.parametrize(("severity", "expected"), [
    ("general", {"acknowledgement": "2026-11-23T03:00", "first_contact": "2026-11-23T03:00",
                 "preliminary_feedback": "2026-11-25T07:00", "solution": "2026-11-26T02:00"}),
    ("major", {"acknowledgement": "2026-11-23T03:00", "first_contact": "2026-11-23T03:00",
               "preliminary_feedback": "2026-11-25T07:00", "result": "2026-11-30T02:00"}),
    ("critical", {"acknowledgement": "2026-11-23T03:00", "first_contact": "2026-11-23T03:00",
                  "preliminary_feedback": "2026-11-25T07:00", "result": "2026-11-30T02:00"}),
])
def test_milestones_of_every_severity(severity: str, expected: dict[str, str]) -> None:
    d = Domain(T0)  # Monday 10:00 in Shanghai
    case = make_case(d, severity)
    from shared.complaints.views import case_document

    doc = case_document(case, [])
    assert {m["name"]: m["due_at"][:16] for m in doc["milestones"]} == expected


def test_several_departments_add_the_joint_plan_milestone() -> None:
    d = Domain(T0)
    no = make_case(d).case_no
    d.lifecycle.enter(no, "investigation", "e1")
    d.lifecycle.open_task(no, "investigation", "t1")
    submit(d, link_of(d, "investigation", "cs.sh001@dealers.example"), findings="Sales and service both",
           root_cause="communication", responsibility="management", preliminary_feedback="We are looking into it.",
           departments_involved="2")
    d.lifecycle.record(no, "investigation", "investigation-1")
    joint = d.store.get_case(no).milestone("joint_plan")
    assert joint is not None and joint.due_at == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 7 working days


def test_concurrent_submissions_make_exactly_one_decision() -> None:
    from concurrent.futures import ThreadPoolExecutor

    d, no = waiting_for_first_contact()
    actions = LinkActions(d.lifecycle, d.links)
    mine = link_of(d, "first_contact", "cs.sh001@dealers.example")
    # The same link submitted twice at once (a double click), and an escalated manager's own link.
    d.clock.set(T0 + timedelta(hours=1))
    d.lifecycle.timer(no, "first_contact")
    theirs = link_of(d, "first_contact", "service.sh001@dealers.example")
    tokens = {link: actions.show(link).data["form_token"] for link in (mine, theirs)}

    def post(link: str) -> int:
        return actions.submit(link, {"form_token": tokens[link], "notes": "called"}, RequestMeta()).status

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda i: _status_or_gone(post, [mine, theirs][i % 2]), range(6)))
    assert statuses.count(200) == 1 and statuses.count(410) == 5
    assert len(d.workflow.completed) == 1


def _status_or_gone(post: Any, link: str) -> int:
    try:
        return int(post(link))
    except LinkGoneError:
        return 410


def test_a_scanner_opening_links_changes_nothing() -> None:
    d, no = waiting_for_first_contact()
    actions = LinkActions(d.lifecycle, d.links)
    link = link_of(d, "first_contact", "cs.sh001@dealers.example")
    before = (d.store.get_case(no), d.store.get_task(no, "first_contact-1"), d.store.get_link(link_hash(link)))
    for _ in range(5):
        assert actions.show(link).status == 200
    after = (d.store.get_case(no), d.store.get_task(no, "first_contact-1"), d.store.get_link(link_hash(link)))
    assert before == after and d.workflow.completed == []


def test_retried_close_unrated_and_attention_tasks_mail_and_record_once() -> None:
    """A state machine retry of a task whose work was saved must not mail or record twice;
    one whose earlier attempt died before mailing still mails."""
    d, no = waiting_for_first_contact()

    def events(kind: str) -> int:
        return [e.type for e in d.store.events(no)].count(kind)

    d.lifecycle.needs_attention(no, "KeyError", "defect")
    d.lifecycle.needs_attention(no, "KeyError", "defect")  # a retry of the same task
    alerts = [m for m in d.mailer.sent if "cr.center@aurora-motors.example" in m.to]
    assert len(alerts) == 1 and events("needs_attention") == 1
    d.lifecycle.resume(no, "cr.center@aurora-motors.example")
    d.lifecycle.needs_attention(no, "KeyError", "again")  # parked again after a resume: a new alert
    assert events("needs_attention") == 2

    d2, no2 = waiting_for_first_contact()
    before = len(d2.mailer.sent)
    d2.lifecycle.close(no2)
    assert len(d2.mailer.sent) == before + 1 and d2.mailer.sent[-1].to == ["liu.wei@mail.example"]
    d2.lifecycle.close(no2)
    assert len(d2.mailer.sent) == before + 1 and [e.type for e in d2.store.events(no2)].count("closed") == 1
    sent = len(d2.mailer.sent)
    d2.lifecycle.survey_unrated(no2)
    d2.lifecycle.survey_unrated(no2)
    assert [e.type for e in d2.store.events(no2)].count("survey_unrated") == 1 and len(d2.mailer.sent) == sent

    # An attempt that saved "closed" but died before its mail: the retry still mails and records.
    d3, no3 = waiting_for_first_contact()

    def closed_without_mail(ctx: Any) -> None:
        ctx.case.phase, ctx.case.closed_at = "closed", T0

    d3.lifecycle.mutate(no3, closed_without_mail)
    before = len(d3.mailer.sent)
    d3.lifecycle.close(no3)
    assert len(d3.mailer.sent) == before + 1 and [e.type for e in d3.store.events(no3)].count("closed") == 1
