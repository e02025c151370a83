"""The review queue and the safety review (policy.md §4) on in-memory ports: what confirming,
dismissing and settling a category do to a case, its deadlines, its counts and the queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from shared.complaints.casework import Casework, ClassificationCorrection
from shared.complaints.corrections import labelled_example, synthetic_mail
from shared.complaints.deadlines import cycle_milestones
from shared.complaints.errors import InvalidTransitionError
from shared.complaints.models import Case, Classification, Customer, Evidence
from shared.complaints.reports import Period, Scope, build_report, render_csv, render_html, render_json
from shared.complaints.review import CategoryReviewForm, SafetyReviewForm, review_entry, severity_without_safety
from tests.fakes import Domain

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CR = "cr.center@aurora-motors.example"
BRAKES = Evidence(kind="safety:brakes", phrase="刹车突然变软", weight=0.7)
DEMAND = Evidence(kind="demand", phrase="要求换车", weight=1.0)
THREAT = Evidence(kind="threat:regulator", phrase="我会投诉到12315", weight=1.0)


def possible_safety(*extra: Evidence, media: bool = False, confidence: float | None = 0.9) -> Classification:
    return Classification(category="product_quality", severity="critical", safety=True, media_or_regulator=media,
                          possible_safety=True, confidence=confidence, evidence=[BRAKES, *extra],
                          reasons=["safety possible: brakes"])


def make_case(d: Domain, cls: Classification, no: str = "AUR-SH001-202611-00001",
              received: datetime | None = None) -> Case:
    case = Case(case_no=no, brand="aurora", dealer="SH001", region="east", channel="email", phase="first_contact",
                received_at=received or d.clock.now(), subject="刹车问题", description="高速上刹车突然变软，很害怕",
                language="zh", customer=Customer(name="刘伟", email="liu.wei@mail.example"), classification=cls,
                raw_mail_key=f"raw/{no}")
    case.milestones = cycle_milestones(case, case.received_at, d.tenant.policy_for("SH001"),
                                       d.tenant.calendar_for("SH001"))
    return d.store.create_case(case)


def month(d: Domain) -> str:
    return d.tenant.calendar_for(None).local(d.clock.now()).strftime("%Y%m")


def test_confirm_keeps_it_critical_clears_the_flag_and_leaves_the_queue() -> None:
    d = Domain(T0)
    no = make_case(d, possible_safety()).case_no
    assert [e.case_no for e in d.store.review_queue("aurora")] == [no]
    case = Casework(d.lifecycle).review_safety(no, SafetyReviewForm(decision="confirm"), CR)
    cls = case.classification
    assert (cls.severity, cls.safety, cls.possible_safety, cls.safety_review) == ("critical", True, False, "confirmed")
    assert d.store.review_queue("aurora") == []
    assert case.milestone("result") is not None  # a critical case's resolution milestone stays
    counts = d.store.correction_counts("aurora", month(d))
    assert counts == {"reviewed": 1, "safety_confirmed": 1}  # a confirmation is not a correction
    [event] = [e for e in d.store.events(no) if e.type == "safety_reviewed"]
    assert event.actor == CR and "confirmed" in event.summary
    with pytest.raises(InvalidTransitionError):  # one decision: nothing waits any more
        Casework(d.lifecycle).review_safety(no, SafetyReviewForm(decision="dismiss"), CR)


@pytest.mark.parametrize(("extra", "media", "severity", "milestone"), [
    ((), False, "general", "solution"),  # nothing else: a general case, due a solution in 3 working days
    ((DEMAND,), False, "major", "result"),
    ((THREAT,), True, "critical", "result"),  # the threat remains
])
def test_dismiss_recomputes_the_severity_and_its_deadline(extra: tuple[Evidence, ...], media: bool, severity: str,
                                                          milestone: str) -> None:
    d = Domain(T0)
    no = make_case(d, possible_safety(*extra, media=media)).case_no
    case = Casework(d.lifecycle).review_safety(no, SafetyReviewForm(decision="dismiss", note="only a sensor"), CR)
    cls = case.classification
    assert (cls.severity, cls.safety, cls.possible_safety, cls.safety_review) == (severity, False, False, "dismissed")
    names = {m.name for m in case.milestones}
    assert milestone in names and ({"solution", "result"} - {milestone}).isdisjoint(names)
    due = case.milestone(milestone)
    assert due is not None
    expected = d.tenant.calendar_for("SH001").add(case.received_at,
                                                   getattr(d.tenant.policy_for("SH001").deadlines, milestone))
    assert due.due_at == expected
    counts = d.store.correction_counts("aurora", month(d))
    assert counts["corrected"] == 1 and counts["safety_dismissed"] == 1 and counts["safety"] == 1
    assert counts.get("severity", 0) == (0 if severity == "critical" else 1)
    assert d.store.review_queue("aurora") == []
    assert cls.reasons[-1].startswith(f"corrected by {CR}: only a sensor")


def test_repeat_complaint_is_major_once_safety_is_dismissed() -> None:
    cls = possible_safety()
    assert severity_without_safety(cls, repeat=True) == "major"
    assert severity_without_safety(cls, repeat=False) == "general"


def test_queue_holds_low_confidence_categories_until_staff_settle_them_oldest_first() -> None:
    d = Domain(T0)
    unsure = Classification(category="service", severity="general", safety=False, media_or_regulator=False,
                            confidence=0.4, evidence=[Evidence(kind="category:service", phrase="等了三个小时")])
    sure = unsure.model_copy(update={"confidence": 0.6})  # the policy's threshold itself is sure enough
    old = make_case(d, unsure, "AUR-SH001-202611-00002", T0 - timedelta(hours=5)).case_no
    new = make_case(d, possible_safety(), "AUR-SH001-202611-00003").case_no
    make_case(d, sure, "AUR-SH001-202611-00004")
    queue = d.store.review_queue("aurora")
    assert [(e.case_no, e.reasons) for e in queue] == [(old, ("low_confidence",)), (new, ("possible_safety",))]
    assert queue[0].evidence == ("等了三个小时",) and queue[1].evidence[0] == "刹车突然变软"
    # Confirmed as it is: out of the queue, counted as a review.
    case = Casework(d.lifecycle).review_category(old, CategoryReviewForm(category="service"), CR)
    assert case.classification.category_reviewed and case.classification.category == "service"
    assert [e.case_no for e in d.store.review_queue("aurora")] == [new]
    assert d.store.correction_counts("aurora", month(d)) == {"reviewed": 1, "category_confirmed": 1}
    assert [e.type for e in d.store.events(old)][-1] == "category_confirmed"


def test_a_correction_naming_the_category_settles_it_and_a_closed_case_leaves_the_queue() -> None:
    d = Domain(T0)
    unsure = Classification(category="service", severity="general", safety=False, media_or_regulator=False,
                            confidence=0.3)
    a = make_case(d, unsure, "AUR-SH001-202611-00005").case_no
    b = make_case(d, unsure, "AUR-SH001-202611-00006").case_no
    Casework(d.lifecycle).correct_classification(a, ClassificationCorrection(category="price", reason="a bill"), CR)
    assert [e.case_no for e in d.store.review_queue("aurora")] == [b]
    assert d.store.correction_counts("aurora", month(d)) == {"corrected": 1, "category": 1}
    # A severity-only correction leaves the category for review.
    Casework(d.lifecycle).correct_classification(b, ClassificationCorrection(severity="major", reason="refund"), CR)
    assert [e.case_no for e in d.store.review_queue("aurora")] == [b]

    def close(ctx: object) -> None:
        ctx.case.phase, ctx.case.closed_at = "closed", d.clock.now()  # type: ignore[attr-defined]
    d.lifecycle.mutate(b, close)
    assert d.store.review_queue("aurora") == []


def test_entry_of_a_case_that_needs_no_review_is_none() -> None:
    d = Domain(T0)
    case = make_case(d, possible_safety().model_copy(update={"possible_safety": False}))
    assert review_entry(case, d.tenant.policy_for(None)) is None
    assert d.store.review_queue("aurora") == []


def test_labelled_example_says_who_settled_what_and_carries_no_personal_data() -> None:
    d = Domain(T0)
    no = make_case(d, possible_safety(DEMAND)).case_no
    assert labelled_example(d.store.get_case(no), d.store.events(no), d.tenant) is None  # nobody reviewed it yet
    case = Casework(d.lifecycle).review_safety(no, SafetyReviewForm(decision="dismiss"), CR)
    example = labelled_example(case, d.store.events(no), d.tenant)
    assert example == {"file": f"{no}.eml", "category": "product_quality", "severity": "major", "safety": False,
                       "media_or_regulator": False, "language": "zh", "tags": ["correction"],
                       "why": "corrected by brand_cr on 2026-11-23: safety, severity, safety_dismissed"}
    assert d.store.corrected_cases("aurora") == [no] and d.store.corrected_cases("aurora", "202612") == []
    mail = message_from_bytes(synthetic_mail(case, d.tenant), policy=policy.default)
    assert isinstance(mail, EmailMessage)
    body = mail.get_body()
    assert mail["Subject"] == "刹车问题" and body is not None and "刹车突然变软" in body.get_content()


def test_critical_alert_says_possible_safety_risk_with_the_evidence() -> None:
    d = Domain(T0)
    no = make_case(d, possible_safety()).case_no
    d.lifecycle.triage(no)
    alerts = [m for m in d.mailer.sent if m.to == ["gm.sh001@dealers.example"]]
    assert alerts and "可能存在安全隐患——请确认：刹车突然变软" in alerts[0].text
    assert "可能的安全隐患" in alerts[0].text


def test_monthly_report_counts_reviews_in_html_csv_and_json() -> None:
    d = Domain(T0)
    confirmed = make_case(d, possible_safety(), "AUR-SH001-202611-00007").case_no
    dismissed = make_case(d, possible_safety(), "AUR-SH001-202611-00008").case_no
    Casework(d.lifecycle).review_safety(confirmed, SafetyReviewForm(decision="confirm"), CR)
    Casework(d.lifecycle).review_safety(dismissed, SafetyReviewForm(decision="dismiss"), CR)
    report = build_report(d.store, d.store, d.tenant, Scope("brand"), Period.parse("2026-11"), T0)
    counts = {r.key: r.value for r in report.corrections}
    assert counts == {"corrected": 1, "reviewed": 1, "safety_confirmed": 1, "safety_dismissed": 1, "safety": 1,
                      "severity": 1}
    csv_rows = {tuple(line.split(",")[:2]): line.rsplit(",", 1)[1] for line in render_csv(report).splitlines()}
    assert csv_rows[("correction", "safety_dismissed")] == "1" and csv_rows[("correction", "reviewed")] == "1"
    assert {r["key"]: r["value"] for r in json.loads(render_json(report))["corrections"]}["safety_confirmed"] == 1
    html = render_html(report)
    assert "安全隐患已确认" in html and "安全隐患已排除" in html


def test_a_console_correction_of_a_sure_case_confirms_no_category() -> None:
    d = Domain(T0)
    sure = Classification(category="service", severity="general", safety=False, media_or_regulator=False,
                          confidence=0.95)
    no = make_case(d, sure).case_no
    # The console's form sends every field: the category as it stands, the severity changed.
    case = Casework(d.lifecycle).correct_classification(
        no, ClassificationCorrection(category="service", severity="major", reason="demands a refund"), CR)
    assert case.classification.category_reviewed
    assert d.store.correction_counts("aurora", month(d)) == {"corrected": 1, "severity": 1}
