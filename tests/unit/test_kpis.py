"""KPI facts and aggregates (shared/complaints/kpis.py): each formula on hand-built cases, the
deltas a store applies, and the aggregates of a realistic mix of lifecycles against a
recomputation from the cases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.complaints import kpis
from shared.complaints.kpis import KpiTables, case_facts, changes, rebuild_month, recompute
from shared.complaints.models import (
    Accountability,
    Case,
    Classification,
    CompensationItem,
    Customer,
    Investigation,
    Milestone,
    Plan,
    Survey,
    VehicleRef,
)
from shared.complaints.policy import build_policy
from shared.complaints.reports import Figures
from shared.complaints.tenant import Tenant
from tests.fakes import Domain, demo_tenant_doc
from tests.kpi_lifecycles import Driver, World

T = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NOV, DEC = "2026-11", "2026-12"
SH001 = ("brand", "region#east", "dealer#east#SH001")


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant.model_validate(demo_tenant_doc()[0])


def a_case(**changes_: object) -> Case:
    case = Case(case_no="AUR-SH001-202611-00001", brand="aurora", dealer="SH001", region="east", channel="phone",
                phase="investigation", received_at=T, subject="异响", description="仪表台异响", language="zh",
                customer=Customer(name="刘伟", email="liu.wei@mail.example", phone="13800138000"),
                vehicle=VehicleRef(vin="LAUR0A1B2C3000001", model="Aurora S5", plate="沪A12345"),
                classification=Classification(category="service", severity="major", safety=False,
                                              media_or_regulator=False, reasons=["compensation: 要求赔偿"]),
                milestones=[Milestone(name="acknowledgement", due_at=T + timedelta(hours=1), met_at=T),
                            Milestone(name="first_contact", due_at=T + timedelta(hours=1))])
    return case.model_copy(update=changes_)


def closed(case: Case, at: datetime, **more: object) -> Case:
    milestones = [m.model_copy(update={"met_at": m.met_at or m.due_at - timedelta(minutes=5)}) for m in case.milestones]
    return case.model_copy(update={"phase": "closed", "closed_at": at, "milestones": milestones, **more})


# ----- facts of one case ------------------------------------------------------------------------------
def test_a_new_case_counts_in_its_month_of_receipt_in_the_brand_its_region_and_its_dealer(tenant: Tenant) -> None:
    facts = case_facts(a_case(), tenant)
    assert facts.scopes == SH001
    assert list(facts.counts) == [NOV]
    counts = facts.counts[NOV]
    for metric in ("received", "category:service", "severity:major", "channel:phone", "issue:demand:compensation",
                   "issue:model:Aurora S5/service", "milestone:acknowledgement", "milestone_on_time:acknowledgement"):
        assert counts[metric] == 1, metric
    assert "closed" not in counts and "repeat" not in counts and "milestone:first_contact" not in counts
    assert facts.opinion is None
    assert facts.open is not None and (facts.open.milestone, facts.open.due_at) == ("first_contact", T + timedelta(hours=1))


def test_a_case_in_the_triage_queue_counts_for_the_brand_only(tenant: Tenant) -> None:
    assert case_facts(a_case(dealer=None, region=None), tenant).scopes == ("brand",)


def test_months_are_the_brands_calendar_months(tenant: Tenant) -> None:
    last_minutes = datetime(2026, 11, 30, 15, 50, tzinfo=UTC)  # 23:50 on 30 November in Shanghai
    first_minutes = datetime(2026, 11, 30, 16, 10, tzinfo=UTC)  # 00:10 on 1 December in Shanghai
    assert list(case_facts(a_case(received_at=last_minutes, milestones=[]), tenant).counts) == [NOV]
    assert list(case_facts(a_case(received_at=first_minutes, milestones=[]), tenant).counts) == [DEC]


def test_outcomes_count_in_the_month_of_closure(tenant: Tenant) -> None:
    facts = case_facts(closed(a_case(), datetime(2026, 12, 2, 3, 0, tzinfo=UTC)), tenant)
    assert facts.counts[DEC]["closed"] == 1 and facts.counts[DEC]["on_time"] == 1
    assert facts.counts[DEC]["survey_pending"] == 1  # closed, the survey not answered yet
    assert "closed" not in facts.counts[NOV] and facts.open is None


def test_a_breach_anywhere_makes_the_case_late(tenant: Tenant) -> None:
    case = closed(a_case(), T + timedelta(days=3))
    case.milestones[1] = case.milestones[1].model_copy(update={"met_at": T + timedelta(hours=2), "breached": True})
    counts = case_facts(case, tenant).counts[NOV]
    assert counts["closed"] == 1 and "on_time" not in counts
    assert counts["milestone:first_contact"] == 1 and "milestone_on_time:first_contact" not in counts


def test_milestones_count_when_settled_in_the_month_they_were_due(tenant: Tenant) -> None:
    due_in_december = T + timedelta(days=25)
    case = a_case(milestones=[
        Milestone(name="first_contact", due_at=T + timedelta(hours=1), met_at=T + timedelta(minutes=20)),  # on time
        Milestone(name="preliminary_feedback", due_at=T + timedelta(hours=24), breached=True),  # overdue, open
        Milestone(name="result", due_at=due_in_december),  # open, not due: not counted yet
        Milestone(name="joint_plan", due_at=due_in_december, met_at=due_in_december, breached=False)])
    counts = case_facts(case, tenant).counts
    assert counts[NOV]["milestone:first_contact"] == counts[NOV]["milestone_on_time:first_contact"] == 1
    assert counts[NOV]["milestone:preliminary_feedback"] == 1
    assert "milestone_on_time:preliminary_feedback" not in counts[NOV]
    assert "milestone:result" not in counts[NOV] and "milestone:result" not in counts[DEC]
    assert counts[DEC]["milestone_on_time:joint_plan"] == 1


def test_surveys_rated_unrated_and_pending(tenant: Tenant) -> None:
    at = T + timedelta(days=3)
    rated = closed(a_case(), at, survey=Survey(score=85, answered_at=at + timedelta(days=3)))
    assert case_facts(rated, tenant).counts[NOV]["score:85"] == 1
    unrated = closed(a_case(), at, survey=Survey(unrated=True))
    assert case_facts(unrated, tenant).counts[NOV]["unrated"] == 1
    # Closed again after a follow-up: the first survey's score belongs to the earlier closure.
    again = closed(a_case(), at, survey=Survey(score=50, answered_at=at - timedelta(days=1)))
    counts = case_facts(again, tenant).counts[NOV]
    assert counts["survey_pending"] == 1 and not any(m.startswith("score:") for m in counts)
    assert kpis.survey_state(again.model_copy(update={"survey": Survey(score=50, unrated=True,
                                                                        answered_at=at - timedelta(days=1))})) == "unrated"


def test_compensation_is_what_the_customer_accepted(tenant: Tenant) -> None:
    plan = Plan(revision=2, measures="repair", submitted_by="cs", submitted_at=T,
                compensation=[CompensationItem(kind="money", value=Decimal("1500.50")),
                              CompensationItem(kind="coupon", value=Decimal("200"))])
    accepted = case_facts(closed(a_case(), T + timedelta(days=2), plan=plan, customer_decision="accept"), tenant)
    assert accepted.counts[NOV]["compensation"] == Decimal("1700.50") and accepted.counts[NOV]["compensated"] == 1
    declined = case_facts(closed(a_case(), T + timedelta(days=2), plan=plan, customer_decision="decline"), tenant)
    assert "compensation" not in declined.counts[NOV]


def test_repeat_root_cause_correction_and_accountability(tenant: Tenant) -> None:
    case = closed(a_case(), T + timedelta(days=2),
                  classification=Classification(category="price", severity="general", safety=False,
                                                media_or_regulator=False, repeat_of="AUR-SH001-202610-00007",
                                                reasons=["corrected by cr.center@aurora-motors.example: quote"]),
                  investigation=Investigation(findings="f", root_cause="communication", responsibility="employee",
                                              preliminary_feedback="p", recorded_by="cs", recorded_at=T),
                  accountability=Accountability(responsibility="employee", measure="fine", fine=Decimal("300"),
                                                assignee="gm", recorded_by="cr", recorded_at=T, due_at=T))
    counts = case_facts(case, tenant).counts[NOV]
    assert counts["repeat"] == counts["corrected"] == counts["root_cause:communication"] == 1
    assert counts["issue:cause:price/communication"] == 1
    assert counts["responsibility:employee"] == 1 and counts["fines"] == Decimal("300")


def test_hazards_and_threats_are_issues(tenant: Tenant) -> None:
    case = a_case(classification=Classification(
        category="product_quality", severity="critical", safety=True, media_or_regulator=True,
        reasons=["safety (brakes): 刹车失灵", "media_or_regulator (regulator): 12315", "not counted, worry: 担心气囊"]))
    assert kpis.issue_tags(case) == ["hazard:brakes", "threat:regulator", "model:Aurora S5/product_quality"]


def test_an_opinion_keeps_the_comment_without_personal_data(tenant: Tenant) -> None:
    at = T + timedelta(days=3)
    comment = "刘伟很满意，王先生态度好，电话13912345678，邮箱liu.wei@mail.example，车牌沪A12345"
    facts = case_facts(closed(a_case(), at, survey=Survey(score=95, comment=comment, opinion=True,
                                                          answered_at=at + timedelta(days=3))), tenant)
    assert facts.opinion is not None and facts.counts[NOV]["opinion"] == 1
    text = facts.opinion.comment
    for personal in ("刘伟", "王先生", "13912345678", "liu.wei", "沪A12345"):
        assert personal not in text, personal
    assert "很满意" in text and facts.opinion.score == 95
    assert facts.opinion.key == "east#SH001#AUR-SH001-202611-00001"


# ----- deltas -------------------------------------------------------------------------------------------
def test_changes_apply_the_difference_only(tenant: Tenant) -> None:
    before = case_facts(a_case(), tenant)
    after = case_facts(closed(a_case(), T + timedelta(days=40)), tenant)  # closed in December
    delta = changes("aurora", before, after)
    assert delta.members == [DEC]
    assert delta.deltas[(DEC, "brand")]["closed"] == 1
    assert delta.deltas[(NOV, "dealer#east#SH001")] == {"milestone:first_contact": 1, "milestone_on_time:first_contact": 1}
    assert "received" not in delta.deltas[(NOV, "brand")]
    assert delta.delete_open == [before.open] and delta.put_open == []
    assert changes("aurora", after, after).empty


def test_a_dealer_assigned_from_triage_moves_the_case_to_its_region_and_dealer(tenant: Tenant) -> None:
    delta = changes("aurora", case_facts(a_case(dealer=None, region=None), tenant), case_facts(a_case(), tenant))
    assert (NOV, "brand") not in delta.deltas  # the brand counted it already
    assert delta.deltas[(NOV, "region#east")]["received"] == 1 == delta.deltas[(NOV, "dealer#east#SH001")]["received"]
    assert delta.members == []


# ----- figures ------------------------------------------------------------------------------------------
def test_figures_follow_policy_10() -> None:
    policy = build_policy()
    counts = {"received": Decimal(8), "repeat": Decimal(2), "closed": Decimal(5), "on_time": Decimal(4),
              "score:100": Decimal(1), "score:95": Decimal(2), "score:75": Decimal(1), "score:50": Decimal(1),
              "unrated": Decimal(3), "compensation": Decimal("2500.00")}
    f = Figures.of(counts, policy)
    assert f.on_time_rate == 0.8 and f.repeat_rate == 0.25
    assert f.rated == 5 and f.satisfaction == (100 + 95 * 2 + 75 + 50) / 5
    assert f.satisfied == 3 and f.satisfaction_rate == 0.6  # >= policy survey.satisfied_from (80)
    assert f.response_rate == 5 / 8  # rated / (rated + unrated)
    assert f.compensation == Decimal("2500.00")


def test_no_rated_case_means_no_satisfaction_figure_not_zero() -> None:
    f = Figures.of({"received": Decimal(3), "closed": Decimal(2), "unrated": Decimal(2)}, build_policy())
    assert f.satisfaction is None and f.satisfaction_rate is None
    assert f.response_rate == 0.0 and f.on_time_rate == 0.0
    empty = Figures.of({}, build_policy())
    assert (empty.on_time_rate, empty.repeat_rate, empty.response_rate, empty.satisfaction) == (None, None, None, None)


def test_unrated_cases_are_never_counted_as_zero(tenant: Tenant) -> None:
    at = T + timedelta(days=3)
    tables = recompute([closed(a_case(), at, survey=Survey(score=90, answered_at=at + timedelta(days=2))),
                        closed(a_case(case_no="AUR-SH001-202611-00002"), at, survey=Survey(unrated=True))], tenant)
    f = Figures.of(tables.kpi_counts("aurora", NOV)["brand"], build_policy())
    assert f.satisfaction == 90.0 and f.rated == 1 and f.unrated == 1 and f.response_rate == 0.5


# ----- aggregates against the cases -------------------------------------------------------------------------
START = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
MONTHS = ("2026-09", "2026-10", "2026-11", "2026-12", "2027-01")


def realistic() -> Domain:
    d = Domain(START)
    Driver(World(d.store, d.clock, d.lifecycle, d.mailer), seed=11).mix(60, START, 85)
    return d


def assert_agree(store: KpiTables, fresh: KpiTables) -> None:
    for month in MONTHS:
        assert kpis.all_counts(store, "aurora", month) == kpis.all_counts(fresh, "aurora", month), month
        assert store.kpi_opinions("aurora", month) == fresh.kpi_opinions("aurora", month), month
    assert store.kpi_open("aurora") == fresh.kpi_open("aurora")
    assert store.kpi_risk_buckets("aurora") == fresh.kpi_risk_buckets("aurora")


def test_aggregates_kept_up_to_date_agree_with_a_recomputation_from_the_cases() -> None:
    d = realistic()
    cases = list(d.store.cases.values())
    phases = Counter(c.phase for c in cases)
    states = Counter(kpis.survey_state(c) for c in cases if c.closed_at)
    assert phases["closed"] > 20 and phases["investigation"] > 3 and phases["needs_attention"] > 2, phases
    assert states["rated"] > 10 and states["unrated"] > 2, states
    assert any(c.cycle > 1 for c in cases) and any(c.extensions for c in cases) and any(c.accountability for c in cases)
    assert any(m.breached for c in cases for m in c.milestones)
    assert_agree(d.store, recompute(cases, d.tenant))

    # And the brand's figures, counted here straight from the cases.
    tz = d.tenant.brand.timezone
    for month in MONTHS:
        brand = d.store.kpi_counts("aurora", month).get("brand", {})
        in_month = [c for c in cases if kpis.month_of(c.received_at, tz) == month]
        closed_in = [c for c in cases if c.closed_at and kpis.month_of(c.closed_at, tz) == month]
        rated = [c.survey.score for c in closed_in if kpis.survey_state(c) == "rated" and c.survey and c.survey.score]
        assert brand.get("received", 0) == len(in_month)
        assert brand.get("repeat", 0) == sum(1 for c in in_month if c.classification.repeat_of)
        assert brand.get("closed", 0) == len(closed_in)
        assert brand.get("on_time", 0) == sum(1 for c in closed_in if not any(m.breached for m in c.milestones))
        assert sum(v for m, v in brand.items() if m.startswith("score:")) == len(rated)
        assert sum(int(m[6:]) * v for m, v in brand.items() if m.startswith("score:")) == sum(rated)
        assert brand.get("compensation", 0) == sum((c.plan.total for c in closed_in if c.plan and
                                                    c.customer_decision == "accept"), Decimal(0))
        dealers = {s: v for s, v in d.store.kpi_counts("aurora", month, "dealer#").items()}
        assert sum(v.get("received", 0) for v in dealers.values()) == sum(1 for c in in_month if c.dealer)


def test_a_month_is_rebuilt_from_its_cases_after_a_lost_aggregate_write(monkeypatch: pytest.MonkeyPatch) -> None:
    d = realistic()
    victim = next(c for c in d.store.cases.values() if c.phase == "closed" and c.survey and c.survey.score)
    month = kpis.month_of(victim.closed_at or victim.received_at, d.tenant.brand.timezone)
    # A crash between the case write and its aggregate writes: the case is reopened, the
    # aggregates never hear of it.
    with monkeypatch.context() as m:
        m.setattr(d.store, "kpi_apply", lambda changes: None)
        d.store.save_case(d.store.get_case(victim.case_no).model_copy(update={"closed_at": None, "phase": "follow_up"}))
    fresh = recompute(d.store.cases.values(), d.tenant)
    assert kpis.all_counts(d.store, "aurora", month) != kpis.all_counts(fresh, "aurora", month)

    result = rebuild_month(d.store, "aurora", month)
    assert not result.consistent and result.corrected["brand"]["closed"] == -1
    assert result.cases == len(d.store.kpi_members("aurora", month))
    assert kpis.all_counts(d.store, "aurora", month) == kpis.all_counts(fresh, "aurora", month)
    assert d.store.kpi_opinions("aurora", month) == fresh.kpi_opinions("aurora", month)
    assert rebuild_month(d.store, "aurora", month).consistent  # nothing left to correct


# ----- what is at risk at a month's end ---------------------------------------------------------------------
def entry(due: datetime) -> kpis.OpenEntry:
    return kpis.OpenEntry("AUR-SH001-202611-00001", "east", "SH001", "general", "first_contact", due)


def test_an_open_deadline_counts_in_the_first_month_whose_end_it_is_at_risk_at(tenant: Tenant) -> None:
    shanghai = "+08:00"
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text + shanghai)
    # At risk within 24 hours (the demo policy): due 10:00 on 1 December is at risk when November ends.
    assert kpis.risk_buckets(entry(at("2026-12-01T10:00")), tenant) == {
        "2026-11": {"at_risk": Decimal(1)}, "2026-12": {"overdue": Decimal(1)}}
    # Due on 2 December or later: at risk only when December ends, overdue then too.
    assert kpis.risk_buckets(entry(at("2026-12-02T00:00")), tenant) == {
        "2026-12": {"at_risk": Decimal(1), "overdue": Decimal(1)}}
    assert kpis.risk_buckets(entry(at("2026-11-30T23:59")), tenant) == {
        "2026-11": {"at_risk": Decimal(1), "overdue": Decimal(1)}}
    assert kpis.month_start("2027-01", "Asia/Shanghai") == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert (kpis.next_month("2026-12"), kpis.previous_month("2027-01")) == ("2027-01", "2026-12")


def test_risk_buckets_follow_the_case_and_its_open_measure(tenant: Tenant) -> None:
    case = a_case()
    tables = recompute([case], tenant)
    first = min(m.due_at for m in case.milestones if m.met_at is None)
    month = kpis.month_of(first, "Asia/Shanghai")
    assert tables.kpi_risk("aurora", month)["dealer#east#SH001"]["overdue"] == 1
    assert tables.kpi_risk("aurora", kpis.previous_month(month)).get("brand", {}).get("overdue", 0) == 0
    done = closed(a_case(), T + timedelta(days=3))
    assert recompute([done], tenant).kpi_risk_buckets("aurora") == {}  # closed: nothing at risk
    # Every step of the changes moves one count out of the old buckets and into the new ones.
    store = KpiTables()
    for old, new in ((None, case), (case, done)):
        store.kpi_apply(changes("aurora", case_facts(old, tenant) if old else None, case_facts(new, tenant)))
    assert store.kpi_risk_buckets("aurora") == {}
