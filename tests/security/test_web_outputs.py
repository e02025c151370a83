"""Attacks through what the product writes: markup in every field a customer controls, on every
page (XSS); formulas in CSV cells; amounts no report can print; contact data in the console's
export and on the customer's status page; pages that may be framed, cached or leak their address
(docs/security.md, "Web and input")."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from infra.local.runtime import LocalRuntime
from shared.complaints import kpis
from shared.complaints.cells import csv_cell
from shared.complaints.models import VehicleRef
from shared.complaints.reports import Opinion, Period, Scope, build_report, render_csv, render_html, render_json
from shared.complaints.views import CaseFilters, case_rows, export_csv
from shared.runtime.wiring import services
from tests.fakes import Domain
from tests.security.support import (
    ATTR,
    CR,
    CUSTOMER,
    FIRST_CONTACT,
    FORMULA,
    INVESTIGATION,
    SCRIPT,
    Api,
    act,
    deliver,
    hostile_mail,
    link_path,
)
from tests.unit.test_staff_views import T0, add_case, viewer

PAYLOADS = (SCRIPT, ATTR, "<img src=x onerror=alert(2)>", "<script>")
T_NOV = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def assert_inert(page: str, where: str) -> None:
    for payload in PAYLOADS:
        assert payload not in page, (where, payload)


def test_markup_in_every_customer_field_is_text_on_every_page(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail())
    cs = api.signed_in("cs.sh001@dealers.example")
    step_page = api.call("GET", link_path(manual_runtime, case_no, "first_contact"))[1]
    assert "&lt;script&gt;" in step_page  # the subject is on the page, as text
    pages = {"first contact step": step_page, "console list": cs.call("GET", "/console/cases")[1],
             "console case": cs.call("GET", f"/console/cases/{case_no}")[1]}
    # the whole lifecycle, every text a customer or staff member types carrying markup too
    for step, fields in (("first_contact", {"notes": FIRST_CONTACT["notes"] + SCRIPT}),
                         ("investigation", {**INVESTIGATION, "findings": ATTR + SCRIPT}),
                         ("plan", {"measures": "Repair " + SCRIPT}),
                         ("approval", {"decision": "approve", "comment": ATTR})):
        assert act(api, manual_runtime, case_no, step, fields).status == 200, step
    pages["customer's plan page"] = api.call("GET", link_path(manual_runtime, case_no, "customer_reply"))[1]
    for step, fields in (("customer_reply", {"decision": "accept", "reason": SCRIPT}),
                         ("carry_out", {"notes": "Done " + ATTR})):
        assert act(api, manual_runtime, case_no, step, fields).status == 200, step
    manual_runtime.clock.advance(72 * 3600)  # the survey goes out two working days after closing
    manual_runtime.clock.settle(30)
    pages["survey page"] = api.call("GET", link_path(manual_runtime, case_no, "survey"))[1]
    assert act(api, manual_runtime, case_no, "survey", {"score": 95, "comment": FORMULA + SCRIPT}).status == 200
    pages["status page"] = api.call("GET", link_path(manual_runtime, case_no, "status"))[1]
    pages["console case, closed"] = cs.call("GET", f"/console/cases/{case_no}")[1]
    pages["console library"] = api.signed_in(CR).call("GET", "/console/library")[1]
    pages["outbox"] = api.call("GET", "/_local/mail")[1]
    month = manual_runtime.clock.now().strftime("%Y-%m")
    report = api.call("GET", f"/api/reports/{month}?format=html", headers=api.bearer(CR))[1]
    assert "HYPERLINK" in report  # the opinion is in the report, as text
    pages["report"] = report
    pages["console report"] = api.signed_in(CR).call("GET", f"/console/reports/{month}")[1]
    for where, page in pages.items():
        assert_inert(page, where)


def test_csv_cells_a_spreadsheet_would_run_are_quoted_in_every_csv() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert csv_cell(start + "1+1") == "'" + start + "1+1"
    assert (csv_cell(-3), csv_cell(Decimal("-1.5")), csv_cell(-0.25), csv_cell(True)) == ("-3", "-1.50", "-0.25", "true")
    d = Domain(T_NOV)
    report = build_report(d.store, d.store, d.tenant, Scope("brand"), Period.parse("2026-11"), T_NOV)
    report = replace(report, scope_name="=cmd|' /C calc'!A0",
                     opinions=[Opinion("AUR-SH001-202611-00001", "SH001", 95, FORMULA)])
    rows = list(csv.reader(io.StringIO(render_csv(report).removeprefix("\ufeff"))))
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    assert ["opinion", "AUR-SH001-202611-00001", "SH001", "95", "'" + FORMULA] in rows
    add_case(d, "AUR-SH001-202611-00001", "SH001", subject=FORMULA)
    export = export_csv(case_rows(d.store.cases_for(viewer(d, CR)), d.tenant, CaseFilters(), T0), d.tenant)
    [header, row] = list(csv.reader(io.StringIO(export)))
    assert dict(zip(header, row, strict=True))["subject"] == "'" + FORMULA


def test_the_consoles_export_has_no_customer_contact_data(manual_runtime: LocalRuntime, api: Api) -> None:
    d = Domain(T0)
    waiting = add_case(d, "AUR-SH001-202611-00001", "SH001", vehicle=VehicleRef(vin="LAUR0A1B2C3000001", plate="沪A12345"))
    waiting.assignee = waiting.customer.email  # the case waits on the customer's answer
    rows = case_rows([waiting], d.tenant, CaseFilters(), T0)
    text = export_csv(rows, d.tenant)
    for personal in ("刘伟", "liu.wei", "13800138001", "LAUR0A1B2C3000001", "沪A12345"):
        assert personal not in text, personal
    [header, row] = list(csv.reader(io.StringIO(text)))
    assert dict(zip(header, row, strict=True))["assignee"] == ""
    staffed = waiting.model_copy(update={"assignee": "cs.sh001@dealers.example"})
    [_, row] = list(csv.reader(io.StringIO(export_csv(case_rows([staffed], d.tenant, CaseFilters(), T0), d.tenant))))
    assert dict(zip(header, row, strict=True))["assignee"] == "cs.sh001@dealers.example"
    # and the console's own export, over HTTP, of a case waiting on its customer
    case_no = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    services().lifecycle.mutate(case_no, lambda ctx: setattr(ctx.case, "assignee", CUSTOMER))
    exported = api.signed_in(CR).call("GET", "/console/export")[1]
    assert case_no in exported and CUSTOMER not in exported and "13912345678" not in exported


def test_reports_build_in_every_format_for_any_stored_amount(manual_runtime: LocalRuntime, api: Api) -> None:
    month = manual_runtime.clock.now().strftime("%Y-%m")
    scopes = {"scope=brand": kpis.BRAND, "region=east": kpis.region_scope("east"),
              "dealer=SH001": kpis.dealer_scope("east", "SH001")}
    for scope in scopes.values():  # a compensation of 1e30 accepted before the policy's maximum
        services().store.kpi_adjust("aurora", month, scope, {"compensation": Decimal(int(1e30)), "closed": Decimal(1)})
    for query in scopes:
        for fmt in ("html", "csv", "json"):
            answer = api.request("GET", f"/api/reports/{month}?format={fmt}&{query}", headers=api.bearer(CR))
            assert answer.status == 200, (query, fmt, answer.status, answer.body[:200])
        figures = api.request("GET", f"/api/reports/{month}?format=json&{query}", headers=api.bearer(CR)).json()
        assert figures["summary"]["compensation"] == "1.00E+30"  # too large to write out: scientific
    # Amounts DynamoDB cannot even hold, in memory: every form stays small.
    d = Domain(T_NOV)
    for key in scopes.values():
        d.store.kpi_adjust("aurora", "2026-11", key, {"compensation": Decimal("1E+999999"), "fines": Decimal("-1E-999")})
    for place in (Scope("brand"), Scope("region", region="east"), Scope("dealer", region="east", dealer="SH001")):
        made = build_report(d.store, d.store, d.tenant, place, Period.parse("2026-11"), T_NOV)
        for render in (render_html, render_csv, render_json):
            text = render(made)
            assert len(text) < 400_000 and "E+999999" in text, (place, render.__name__, len(text))
        assert json.loads(render_json(made))["summary"]["compensation"] == "1.00E+999999"


def test_every_page_and_personal_json_is_unframed_uncached_and_keeps_its_address(manual_runtime: LocalRuntime,
                                                                                api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    month = manual_runtime.clock.now().strftime("%Y-%m")
    bearer, console = api.bearer(CR), api.signed_in(CR)
    step = link_path(manual_runtime, case_no, "first_contact")
    answers = {
        "step page": api.request("GET", step), "step JSON": api.request("GET", step, headers={"Accept": "application/json"}),
        "status page": api.request("GET", link_path(manual_runtime, case_no, "status")),
        "unknown link": api.request("GET", "/a/unknown"),
        "intake form": api.request("GET", "/api/intake", headers=bearer),
        "report html": api.request("GET", f"/api/reports/{month}?format=html", headers=bearer),
        "report json": api.request("GET", f"/api/reports/{month}?format=json", headers=bearer),
        "report csv": api.request("GET", f"/api/reports/{month}?format=csv", headers=bearer),
        "cases JSON": api.request("GET", "/api/cases", headers=bearer),
        "case JSON": api.request("GET", f"/api/cases/{case_no}", headers=bearer),
        "held JSON": api.request("GET", "/api/held", headers=bearer),
        "forbidden JSON": api.request("GET", "/api/held", headers=api.bearer("cs.sh001@dealers.example")),
        "console list": console.request("GET", "/console/cases"),
        "console case": console.request("GET", f"/console/cases/{case_no}"),
        "console export": console.request("GET", "/console/export"),
        "console report": console.request("GET", f"/console/reports/{month}"),
        "console sign-in": api.request("GET", "/console/sign-in?probe=1"),
    }
    for where, answer in answers.items():
        h = answer.headers
        assert answer.status < 500, (where, answer.status)
        assert h.get("cache-control") == "no-store" and h.get("x-content-type-options") == "nosniff", (where, h)
        assert h.get("referrer-policy") == "same-origin" and "frame-ancestors 'none'" in h.get(
            "content-security-policy", ""), (where, h)
        if h.get("content-type", "").startswith("text/html"):
            policy = h["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src" not in policy and "form-action 'self'" in policy, where


def test_the_status_page_masks_contact_data_in_its_fields_and_texts(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail(subject="我的电话 13912345678 车牌 沪B54321"))
    services().lifecycle.mutate(case_no, lambda ctx: setattr(ctx.case.customer, "phone", "13912345678"))
    path = link_path(manual_runtime, case_no, "status")
    for accept in ("text/html", "application/json"):
        page = api.call("GET", path, headers={"Accept": accept})[1]
        for personal in ("13912345678", "LAUR0A1B2C3000009", "沪B54321", CUSTOMER):
            assert personal not in page, (accept, personal)
        assert "139****5678" in page and "LAU**********0009" in page and "沪B***21" in page, accept
