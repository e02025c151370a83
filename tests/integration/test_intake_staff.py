"""What staff do around intake, through the staff API on the local runtime: held mail
listed and released, a triage case given its dealer, a classification corrected (and
counted), a complaint entered by phone through the API and through the form."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from infra.local.http import api_event, recipients_of
from infra.local.runtime import LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import sample

CR = "cr.center@aurora-motors.example"
CS_SH001 = "cs.sh001@dealers.example"


def call(runtime: LocalRuntime, method: str, path: str, email: str, body: Any = None,
         form: bool = False) -> tuple[int, Any]:
    headers = {"host": "x", "content-type": "application/x-www-form-urlencoded" if form else "application/json"}
    data = (urlencode(body) if form else json.dumps(body)).encode() if body is not None else b""
    result = runtime.invoke("staff_api", api_event(method, path, headers, data, "127.0.0.1",
                                                   {"email": email, "custom:brand": "aurora"}))
    text = result["body"] or "null"
    is_json = "json" in (result.get("headers") or {}).get("Content-Type", "application/json")
    return int(result["statusCode"]), json.loads(text) if is_json else text


def deliver(runtime: LocalRuntime, name: str, **kwargs: Any) -> dict[str, Any]:
    raw = sample(name)
    return runtime.deliver(raw, recipients_of(raw), **kwargs)


def test_held_mail_is_listed_and_released_by_the_brand_cr_center(manual_runtime: LocalRuntime) -> None:
    assert deliver(manual_runtime, "p18_out_of_office_en.eml")["disposition"] == "ignore_auto_reply"
    assert deliver(manual_runtime, "p01_brake_failure_sh001.eml", verdicts={"spam": "FAIL"})["case_no"] is None

    assert call(manual_runtime, "GET", "/api/held", CS_SH001)[0] == 403  # the brand's, not a dealer's
    status, listed = call(manual_runtime, "GET", "/api/held", CR)
    assert status == 200
    by_disposition = {h["disposition"]: h for h in listed["held"]}
    assert set(by_disposition) == {"ignore_auto_reply", "quarantine_spam"}
    spam = by_disposition["quarantine_spam"]
    assert (spam["sender"], spam["status"]) == ("liu.wei@mail.example", "held")

    status, released = call(manual_runtime, "POST", f"/api/held/{spam['held_id']}/release", CR)
    assert status == 200 and released["disposition"] == "new_case"
    case = services().store.get_case(released["case_no"])
    assert (case.dealer, case.classification.severity, case.customer.email) == ("SH001", "critical",
                                                                               "liu.wei@mail.example")
    assert manual_runtime.execution(case.case_no)["name"] == case.case_no
    assert call(manual_runtime, "GET", "/api/held?status=held", CR)[1]["held"][0]["disposition"] == "ignore_auto_reply"
    assert call(manual_runtime, "POST", "/api/held/nothing-here/release", CR)[0] == 404


def test_triage_assignment_and_classification_correction(manual_runtime: LocalRuntime) -> None:
    triage = deliver(manual_runtime, "p24_no_date_bare_from_app_triage.eml")["case_no"]
    assert triage.startswith("AUR-HQ-")
    assert manual_runtime.clock.settle()  # the lifecycle opens first contact at the brand CR center

    assert call(manual_runtime, "POST", f"/api/cases/{triage}/dealer", CR, {"dealer": "XX999"})[0] == 400
    status, assigned = call(manual_runtime, "POST", f"/api/cases/{triage}/dealer", CR, {"dealer": "SH001"})
    assert status == 200 and assigned == {"case_no": triage, "dealer": "SH001", "assignee": CS_SH001}
    assert call(manual_runtime, "POST", f"/api/cases/{triage}/dealer", CR, {"dealer": "BJ002"})[0] == 409
    links = [m.mail.links for m in manual_runtime.outbox.for_case(triage) if CS_SH001 in m.mail.to]
    assert [link["step"] for ls in links for link in ls] == ["first_contact"]  # the dealer's own link

    status, corrected = call(manual_runtime, "POST", f"/api/cases/{triage}/classification", CS_SH001,
                             {"category": "service", "reason": "about the dealer's handling of vouchers"})
    assert status == 200 and corrected["category"] == "service" and corrected["severity"] == "general"
    status, critical = call(manual_runtime, "POST", f"/api/cases/{triage}/classification", CS_SH001,
                            {"safety": True, "reason": "customer says the app unlocked the car while driving"})
    assert status == 200 and critical["severity"] == "critical"
    assert call(manual_runtime, "POST", f"/api/cases/{triage}/classification", CS_SH001,
                {"severity": "general", "reason": "x"})[0] == 400  # a safety risk is never below critical
    assert call(manual_runtime, "POST", f"/api/cases/{triage}/classification", CS_SH001, {"category": "x"})[0] == 400
    assert call(manual_runtime, "POST", f"/api/cases/{triage}/classification", "cs.bj002@dealers.example",
                {"category": "price", "reason": "x"})[0] == 404

    _, document = call(manual_runtime, "GET", f"/api/cases/{triage}", CR)
    types = [e["type"] for e in document["timeline"]]
    assert types.count("classification_corrected") == 2 and "dealer_assigned" in types
    counts = services().store.correction_counts("aurora", "202611")
    assert counts == {"corrected": 2, "category": 1, "safety": 1, "severity": 1}
    critical_mail = {m.mail.to[0] for m in manual_runtime.outbox.for_case(triage) if "gm.sh001" in m.mail.to[0]}
    assert critical_mail == {"gm.sh001@dealers.example"}


def test_complaints_entered_by_phone_register_through_the_same_path(manual_runtime: LocalRuntime) -> None:
    entered = {"request_id": "call-0001", "channel": "hotline_400", "customer_name": "王先生",
               "customer_phone": "138 0013 8000", "customer_email": "wang.xs@mail.example",
               "subject": "刹车失灵", "description": "客户来电：高速上刹车踩到底没反应，车在极光杭州西湖4S店保养。"}
    status, result = call(manual_runtime, "POST", "/api/intake", CR, entered)
    assert status == 200 and result["disposition"] == "new_case"
    case = services().store.get_case(result["case_no"])
    assert (case.channel, case.dealer, case.classification.severity) == ("hotline_400", "HZ005", "critical")
    assert (case.customer.phone, case.reporter) == ("13800138000", CR)
    assert services().blobs.get(case.raw_mail_key or "").decode().count("高速上刹车踩到底没反应") == 1
    assert call(manual_runtime, "POST", "/api/intake", CR, entered)[1]["case_no"] == case.case_no  # once
    acks = [m.mail for m in manual_runtime.outbox.for_case(case.case_no) if "wang.xs@mail.example" in m.mail.to]
    assert len(acks) == 1

    status, invalid = call(manual_runtime, "POST", "/api/intake", CR, {"channel": "phone", "description": "x"})
    assert status == 400 and "a phone number" in invalid["errors"]["_"]

    status, page = call(manual_runtime, "GET", "/api/intake", CS_SH001)
    assert status == 200 and 'name="request_id"' in page and 'name="dealer"' not in page  # dealer staff: their own
    form = {"request_id": "walkin-0001", "channel": "walk_in", "customer_phone": "13912345678",
            "subject": "", "description": "客户到店反映：保养等了三个小时，服务顾问态度很差。", "language": "",
            "received_at": "2026-11-23T09:15"}  # on the wall in Shanghai
    status, done = call(manual_runtime, "POST", "/api/intake", CS_SH001, form, form=True)
    assert status == 200 and "AUR-SH001-202611-" in done
    walk_in = services().store.list_cases("aurora", dealer="SH001")
    [visit] = [c for c in walk_in if c.channel == "walk_in"]
    assert visit.classification.category == "service" and visit.received_at == datetime(2026, 11, 23, 1, 15, tzinfo=UTC)
    status, again = call(manual_runtime, "POST", "/api/intake", CS_SH001, {**form, "description": ""}, form=True)
    assert status == 400 and 'class="err"' in again and "at least 1 character" in again
