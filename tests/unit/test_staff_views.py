"""What staff see, on in-memory ports: the viewer's scope, deadline risk and the console's
list (the export: tests/security), the case library (anonymised entries written on closure), accountability."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.complaints.accountability import AccountabilityForm, AccountabilityService, DoneForm, may_act, proposal
from shared.complaints.deadlines import cycle_milestones
from shared.complaints.errors import CaseNotFoundError, InvalidTransitionError
from shared.complaints.library import anonymize, known_identifiers, library_entry, search
from shared.complaints.models import Case, Classification, Customer, Investigation, VehicleRef
from shared.complaints.tenant import TRIAGE, Tenant
from shared.complaints.views import CaseFilters, Viewer, case_rows, sla
from tests.fakes import Domain, demo_tenant_doc

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CR, EAST, CS_SH001, GM_SH001 = ("cr.center@aurora-motors.example", "east.region@aurora-motors.example",
                                "cs.sh001@dealers.example", "gm.sh001@dealers.example")


def other_brand_doc() -> dict[str, Any]:
    """A second tenant with the same dealer codes: isolation must not rest on them."""
    doc, _ = demo_tenant_doc()
    text = (json.dumps(doc).replace("aurora-motors.example", "borealis-motors.example")
            .replace("dealers.example", "borealis-dealers.example").replace('"id": "aurora"', '"id": "borealis"'))
    found: dict[str, Any] = json.loads(text)
    found["brand"]["case_prefix"] = "BOR"
    return found


def add_case(d: Domain, no: str, dealer: str | None, *, brand: str = "aurora", received: datetime = T0,
             category: str = "product_quality", severity: str = "general", **fields: Any) -> Case:
    tenant = d.store.get_tenant(brand)
    region = tenant.dealer(dealer).region if tenant.has_dealer(dealer) else None
    case = Case(case_no=no, brand=brand, dealer=dealer, region=region, channel="email", phase="first_contact",
                received_at=received, subject=fields.pop("subject", "仪表台异响"),
                description=fields.pop("description", "仪表台异响"), language="zh",
                customer=fields.pop("customer", Customer(name="刘伟", email="liu.wei@mail.example", phone="13800138001")),
                classification=Classification(category=category, severity=severity, safety=severity == "critical",
                                              media_or_regulator=False), **fields)
    case.milestones = cycle_milestones(case, received, tenant.policy_for(dealer), tenant.calendar_for(dealer))
    case.milestones[0].met_at = received  # the acknowledgement goes out as the case is created
    return d.store.create_case(case)


def viewer(d: Domain, email: str, brand: str = "aurora") -> Viewer:
    tenant = d.store.get_tenant(brand)
    member = tenant.staff_member(email)
    assert member is not None
    return Viewer.of(member, tenant)


@pytest.fixture
def d() -> Domain:
    domain = Domain(T0)
    domain.store.put_tenant(other_brand_doc(), [])
    return domain


# ----- scope ---------------------------------------------------------------------------------------
def test_each_viewer_reads_their_own_part_of_the_tenant_and_nothing_else(d: Domain) -> None:
    add_case(d, "AUR-SH001-202611-00001", "SH001")
    add_case(d, "AUR-HZ005-202611-00001", "HZ005")  # east, like SH001
    add_case(d, "AUR-BJ002-202611-00001", "BJ002")  # north
    add_case(d, "AUR-HQ-202611-00001", None)  # the brand's triage queue
    add_case(d, "BOR-SH001-202611-00001", "SH001", brand="borealis")  # same dealer code, other brand

    def listed(v: Viewer, **kw: Any) -> list[str]:
        return sorted(c.case_no for c in d.store.cases_for(v, **kw))

    cs, east, cr = viewer(d, CS_SH001), viewer(d, EAST), viewer(d, CR)
    assert listed(cs) == ["AUR-SH001-202611-00001"]
    assert listed(cs, dealer="BJ002") == [] and listed(cs, dealer=TRIAGE) == []
    assert listed(east) == ["AUR-HZ005-202611-00001", "AUR-SH001-202611-00001"]
    assert listed(cr) == ["AUR-BJ002-202611-00001", "AUR-HQ-202611-00001", "AUR-HZ005-202611-00001",
                          "AUR-SH001-202611-00001"]
    assert listed(cr, dealer=TRIAGE) == ["AUR-HQ-202611-00001"]
    assert listed(viewer(d, "cr.center@borealis-motors.example", "borealis")) == ["BOR-SH001-202611-00001"]

    assert d.store.case_for(east, "AUR-SH001-202611-00001").dealer == "SH001"
    for v, no in [(cs, "AUR-BJ002-202611-00001"), (cs, "AUR-HQ-202611-00001"), (east, "AUR-BJ002-202611-00001"),
                  (cr, "BOR-SH001-202611-00001"), (cs, "BOR-SH001-202611-00001"), (cr, "AUR-XX-000000-00000")]:
        with pytest.raises(CaseNotFoundError):
            d.store.case_for(v, no)


# ----- deadline risk, the list, the export ---------------------------------------------------------
def test_deadline_risk_follows_the_policy_warning_fraction(d: Domain) -> None:
    case = add_case(d, "AUR-SH001-202611-00001", "SH001")  # first contact due in an hour, warned at 75 %
    tenant = d.tenant
    assert sla(case, tenant, T0 + timedelta(minutes=44)).state == "on_track"
    risk = sla(case, tenant, T0 + timedelta(minutes=45))
    assert (risk.state, risk.deadline, risk.due_at) == ("at_risk", "first_contact", T0 + timedelta(hours=1))
    assert sla(case, tenant, T0 + timedelta(minutes=61)).state == "breached"
    case.milestones[1].met_at = T0 + timedelta(minutes=30)  # first contact made: the 24-hour feedback is next
    assert sla(case, tenant, T0 + timedelta(minutes=61)).deadline == "preliminary_feedback"
    case.phase = "closed"
    assert sla(case, tenant, T0 + timedelta(days=30)).state == "none"


def test_breached_critical_first_then_breached_then_at_risk_nearest_due_first(d: Domain) -> None:
    # Changed 2026-12-04 (issue 17): breached cases used to sort below those only at risk, so a
    # critical case days overdue sat under cases that were merely close to their deadline.
    now = T0 + timedelta(minutes=50)
    add_case(d, "N-FRESH", "SH001", received=T0 + timedelta(minutes=40))  # on track
    add_case(d, "N-RISK-LATER", "SH001", received=T0 + timedelta(minutes=5))  # at risk, due 11:05
    add_case(d, "N-RISK-SOON", "SH001", received=T0)  # at risk, due 11:00
    add_case(d, "N-LATE", "SH001", received=T0 - timedelta(hours=2), category="price")  # breached
    add_case(d, "N-CRITICAL-LATE", "SH001", received=T0 - timedelta(days=3), severity="critical")  # 3 days overdue
    rows = case_rows(d.store.cases_for(viewer(d, CR)), d.tenant, CaseFilters(), now)
    assert [(r.case.case_no, r.sla.state) for r in rows] == [
        ("N-CRITICAL-LATE", "breached"), ("N-LATE", "breached"), ("N-RISK-SOON", "at_risk"),
        ("N-RISK-LATER", "at_risk"), ("N-FRESH", "on_track")]
    by = CaseFilters.model_validate({"sla": "at_risk", "category": "", "severity": ""})
    assert [r.case.case_no for r in case_rows(d.store.cases_for(viewer(d, CR)), d.tenant, by, now)] == [
        "N-RISK-SOON", "N-RISK-LATER"]
    price = CaseFilters(category="price")
    assert [r.case.case_no for r in case_rows(d.store.cases_for(viewer(d, CR)), d.tenant, price, now)] == ["N-LATE"]
    with pytest.raises(ValidationError):
        CaseFilters.model_validate({"phase": "nonsense"})


# ----- the case library ----------------------------------------------------------------------------
MAIL = """你好，我是极光S5车主刘伟，车牌沪A12345，车架号LAUR0A1B2C3000001。电话 138 0013 8001，邮箱 liu.wei@mail.example，
也可以找我太太王女士：021-55667788。家住上海市浦东新区张杨路 123 号 4 栋 501 室，身份证 310101199001011234。
维修师傅说这位女士的车没事。刹车踩到底没反应！请看 https://photos.example/abc?id=42
Regards, John Miller (Mr. Miller), +86 139 1234 5678, 42 Green Park Road"""


def test_anonymize_removes_the_people_and_keeps_the_complaint() -> None:
    known = [("刘伟", "[name]"), ("John Miller", "[name]"), ("liu.wei@mail.example", "[email]")]
    text = anonymize(MAIL, known)
    for personal in ("刘伟", "沪A12345", "LAUR0A1B2C3000001", "138 0013 8001", "liu.wei", "王女士", "55667788",
                     "张杨路", "310101199001011234", "photos.example", "Miller", "139 1234", "Green Park"):
        assert personal not in text, personal
    for kept in ("极光S5车主", "刹车踩到底没反应", "维修师傅说这位女士的车没事", "[plate]", "[VIN]", "[phone]",
                 "[address]", "[name]女士"):
        assert kept in text, kept


def test_a_closed_case_enters_the_library_without_personal_data(d: Domain) -> None:
    tenant = d.tenant
    case = add_case(d, "AUR-SH001-202611-00001", "SH001", category="service", description=MAIL,
                    customer=Customer(name="刘伟", email="liu.wei@mail.example", phone="13800138001"),
                    vehicle=VehicleRef(vin="LAUR0A1B2C3000001", plate="沪A12345"), reporter=CS_SH001)
    case.investigation = Investigation(findings="Wang Fang 致电刘伟：刹车助力泵接头松动", root_cause="service",
                                       responsibility="employee", preliminary_feedback="x", recorded_by=CS_SH001,
                                       recorded_at=T0)
    d.store.save_case(case)
    assert d.store.library_entries("aurora") == []  # open cases are not in the library
    d.lifecycle.close(case.case_no)
    [entry] = d.store.library_entries("aurora", category="service", root_cause="service")
    text = entry.model_dump_json()
    for personal in ("刘伟", "liu.wei", "13800138001", "LAUR0A1B2C3000001", "沪A12345", "Wang Fang", "cs.sh001"):
        assert personal not in text.replace(f'"case_no":"{case.case_no}"', ""), personal
    assert "刹车助力泵接头松动" in entry.findings and entry.entry_id.startswith("L-")
    assert d.store.library_entries("aurora", category="price") == []
    assert d.store.library_entries("aurora", root_cause="product") == []
    assert search(d.store.library_entries("aurora"), "助力泵") == [entry]
    assert search(d.store.library_entries("aurora"), "助力泵 变速箱") == []
    assert ("liu.wei", "[email]") in known_identifiers(case, tenant)
    # Saved again while closed (a survey answer, an accountability record): rewritten, not added.
    d.lifecycle.mutate(case.case_no, lambda ctx: setattr(ctx.case, "level", "II"))
    assert [e.level for e in d.store.library_entries("aurora")] == ["II"]
    assert library_entry(d.store.get_case(case.case_no), tenant) == d.store.library_entries("aurora")[0]


# ----- accountability ------------------------------------------------------------------------------
def closed_case(d: Domain, no: str = "AUR-SH001-202611-00001", dealer: str = "SH001", category: str = "service",
                responsibility: str = "employee") -> Case:
    case = add_case(d, no, dealer, category=category)
    case.investigation = Investigation(findings="f", root_cause="service", responsibility=responsibility,
                                       preliminary_feedback="p", recorded_by=CS_SH001, recorded_at=T0)
    d.store.save_case(case)
    d.lifecycle.close(no)
    return d.store.get_case(no)


def staff(d: Domain, email: str) -> Any:
    member = d.tenant.staff_member(email)
    assert member is not None
    return member


def test_accountability_is_a_task_for_the_dealer_gm_due_by_the_policy(d: Domain) -> None:
    service = AccountabilityService(d.lifecycle, "https://complaints.example")
    case = closed_case(d)
    found = proposal(d.tenant, case)  # SH001's own schedule: service × employee → fine ¥200
    assert found is not None and (found.measure, found.fine) == ("fine", Decimal(200))
    assert proposal(d.tenant, closed_case(d, "AUR-BJ002-202611-00001", "BJ002")) is None  # BJ002 has none
    assert not may_act(staff(d, CS_SH001), case) and may_act(staff(d, GM_SH001), case)
    assert not may_act(staff(d, "gm.bj002@dealers.example"), case) and may_act(staff(d, CR), case)

    form = AccountabilityForm.model_validate({"responsibility": "employee", "measure": "fine", "fine": "200",
                                              "person": "SA-017", "note": "未按流程检查刹车"})
    recorded = service.record(case.case_no, form, staff(d, GM_SH001)).accountability
    assert recorded is not None and recorded.due_at == T0 + timedelta(days=15) and recorded.assignee == GM_SH001
    [task] = d.store.accountability_tasks("aurora")
    assert (task.measure, task.fine, task.dealer, task.done_at) == ("fine", "200", "SH001", None)
    mail = d.mailer.to(GM_SH001)[-1]
    assert "责任追究待办" in mail.subject and "¥200.00" in mail.text
    assert mail.links == [{"step": "accountability",
                           "url": f"https://complaints.example/console/cases/{case.case_no}#accountability"}]

    management = AccountabilityForm(responsibility="management", measure="process_change")
    again = service.record(case.case_no, management, staff(d, CR)).accountability  # corrected while open
    assert again is not None and again.due_at == T0 + timedelta(days=30)
    assert [t.due_at for t in d.store.accountability_tasks("aurora")] == [T0 + timedelta(days=30)]

    d.clock.set(T0 + timedelta(days=3))
    done = service.done(case.case_no, staff(d, GM_SH001), DoneForm(note="流程已修订")).accountability
    assert done is not None and done.done_at == T0 + timedelta(days=3)
    assert d.store.accountability_tasks("aurora") == []
    assert [t.done_at for t in d.store.accountability_tasks("aurora", open_only=False)] == [done.done_at]
    service.done(case.case_no, staff(d, GM_SH001), DoneForm())  # a second click changes nothing
    types = [e.type for e in d.store.events(case.case_no)]
    assert types.count("accountability_recorded") == 2 and types.count("accountability_done") == 1
    with pytest.raises(InvalidTransitionError):
        service.record(case.case_no, management, staff(d, CR))  # carried out: closed for good


def test_accountability_only_after_closure_and_only_with_a_consistent_measure(d: Domain) -> None:
    service = AccountabilityService(d.lifecycle, "https://complaints.example")
    open_case = add_case(d, "AUR-SH001-202611-00009", "SH001")
    with pytest.raises(InvalidTransitionError):
        service.record(open_case.case_no, AccountabilityForm(responsibility="employee", measure="training"),
                       staff(d, CR))
    for invalid in ({"responsibility": "none", "measure": "fine", "fine": "10"}, {"responsibility": "employee"},
                    {"responsibility": "employee", "measure": "fine", "fine": ""},
                    {"responsibility": "employee", "measure": "training", "person": "wang@mail.example"}):
        with pytest.raises(ValidationError):
            AccountabilityForm.model_validate(invalid)
    case = closed_case(d)
    nobody = service.record(case.case_no, AccountabilityForm(responsibility="none"), staff(d, CR))
    assert nobody.accountability is None and d.store.accountability_tasks("aurora", open_only=False) == []
    assert d.store.events(case.case_no)[-1].data["responsibility"] == "none"


def test_a_dealer_overrides_the_accountability_deadlines(d: Domain) -> None:
    doc, vehicles = demo_tenant_doc()
    doc["dealers"][1]["policy"] = {"accountability": {"due_days": {"employee": 7, "management": 20, "system": 20}}}
    d.store.put_tenant(doc, vehicles)
    assert Tenant.model_validate(doc).dealers[1].code == "BJ002"
    case = closed_case(d, "AUR-BJ002-202611-00001", "BJ002")
    acc = AccountabilityService(d.lifecycle, "https://x.example").record(
        case.case_no, AccountabilityForm(responsibility="employee", measure="verbal_warning"), staff(d, CR))
    assert acc.accountability is not None and acc.accountability.due_at == T0 + timedelta(days=7)


def test_overdue_measures_are_listed_per_scope_and_reminded_once_a_day(d: Domain) -> None:
    service = AccountabilityService(d.lifecycle, "https://complaints.example")
    for no, dealer in (("AUR-SH001-202611-00001", "SH001"), ("AUR-BJ002-202611-00001", "BJ002")):
        closed_case(d, no, dealer)
        service.record(no, AccountabilityForm(responsibility="employee", measure="training"), staff(d, CR))
    assert service.tasks(viewer(d, CR), overdue_only=True) == []
    d.clock.set(T0 + timedelta(days=16))
    assert [t.case_no for t in service.tasks(viewer(d, CS_SH001), overdue_only=True)] == ["AUR-SH001-202611-00001"]
    assert len(service.tasks(viewer(d, CR), overdue_only=True)) == 2
    assert [t.case_no for t in service.tasks(viewer(d, EAST), overdue_only=True)] == ["AUR-SH001-202611-00001"]
    assert service.tasks(viewer(d, "cr.center@borealis-motors.example", "borealis")) == []

    sent = len(d.mailer.sent)
    assert sorted(service.remind_overdue("aurora")) == ["AUR-BJ002-202611-00001", "AUR-SH001-202611-00001"]
    assert service.remind_overdue("aurora") == []  # the same day: nothing twice
    assert sorted(m.to[0] for m in d.mailer.sent[sent:]) == ["gm.bj002@dealers.example", GM_SH001]
    assert all("已逾期" in m.subject for m in d.mailer.sent[sent:])
    d.clock.set(T0 + timedelta(days=17))
    service.done("AUR-SH001-202611-00001", staff(d, GM_SH001), DoneForm())
    assert service.remind_overdue("aurora") == ["AUR-BJ002-202611-00001"]


def test_the_staff_function_reads_cases_only_through_the_viewer() -> None:
    """The staff API and console have no unscoped read: ``get_case``/``list_cases`` are the
    workflow's; staff reads go through ``case_for``/``cases_for`` with the caller's viewer."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "functions" / "staff_api"
    calls = {node.func.attr for path in root.glob("*.py") for node in ast.walk(ast.parse(path.read_text("utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert {"case_for", "cases_for"} <= calls
    assert not calls & {"get_case", "list_cases", "recent_cases_of"}
