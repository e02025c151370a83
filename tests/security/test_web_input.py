"""Attacks on what the web side reads: bodies too large (413), bodies that are not what the route
reads and hostile JSON (deep nesting, huge numbers, NaN/Infinity, duplicate keys, another top
level, wrong types), compensation beyond the policy, report periods outside the calendar. Each
gets a clear 4xx, never a 5xx, and changes nothing (docs/security.md, "Web and input")."""

from __future__ import annotations

import json

from infra.local.http import recipients_of
from infra.local.runtime import LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import sample
from tests.security.support import FORM, JSON, Api, act, deliver, hostile_mail, link_path, staff_token, to_plan

# Bodies a JSON parser without limits fails on (each was a 502 before the limits).
DEEP = b"[" * 1100 + b"]" * 1100  # 2 KB
HOSTILE_JSON: list[tuple[bytes, str]] = [
    (DEEP, "nests deeper"),
    (b'{"notes": ' + b"[" * 25 + b"]" * 25 + b"}", "nests deeper"),
    (b'{"notes": "x", "value": ' + b"9" * 4301 + b"}", "longer than"),
    (b'{"notes": "x", "value": 1e999}', "out of range"),
    (b'{"notes": "x", "value": NaN}', "NaN is not a number"),
    (b'{"notes": "x", "value": -Infinity}', "-Infinity is not a number"),
    (b'{"notes": "x", "notes": "y"}', "appears twice"),
    (b'{"notes": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "x": 1}', ""),  # brackets in a string are text: no refusal
]


def first_contact_link(runtime: LocalRuntime) -> str:
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    return link_path(runtime, deliver(runtime, raw), "first_contact")


def unchanged(runtime: LocalRuntime, api: Api, path: str) -> None:
    """Nothing was decided: the page still asks for first contact, its task is open."""
    status, text = api.call("GET", path, headers={"Accept": "application/json"})
    assert status == 200 and json.loads(text)["step"] == "first_contact"
    task = services().store.get_task(runtime.outbox.all()[-1].mail.case_no or "", "first_contact-1")
    assert task is not None and task.status == "open"


def test_oversize_bodies_answer_413_on_every_route(manual_runtime: LocalRuntime, api: Api) -> None:
    path = first_contact_link(manual_runtime)
    auth = staff_token(api)
    console = api.signed_in("cr.center@aurora-motors.example")
    over_handler, over_server = b"notes=" + b"x" * 70 * 1024, b"x" * (2 * 1024 * 1024)
    for client, method, route, headers in ((api, "POST", path, FORM), (api, "POST", path, JSON),
                                           (api, "POST", "/api/intake", {**auth, **JSON}),
                                           (console, "POST", "/console/intake", FORM),
                                           (api, "POST", "/_local/clock", JSON)):
        for body in (over_handler, over_server):  # over the handler's 64 KB; over the server's 1 MB, never read
            got, text = client.call(method, route, body, headers)
            assert got == 413, (route, len(body), got, text[:200])
    unchanged(manual_runtime, api, path)
    assert len(services().store.list_cases("aurora")) == 1  # nothing registered


def test_bodies_that_are_not_a_json_object_or_not_utf8_answer_400(manual_runtime: LocalRuntime, api: Api) -> None:
    path = first_contact_link(manual_runtime)
    auth = staff_token(api)
    cases: list[tuple[str, bytes, dict[str, str], str]] = [
        (path, b"{not json", JSON, "body must be a JSON object"),
        (path, b"[1, 2, 3]", JSON, "body must be a JSON object"),
        (path, b'"a string"', JSON, "body must be a JSON object"),
        (path, b"\xff\xfe\xfd not UTF-8", FORM, "UTF-8"),
        (path, b"\xff\xfe\xfd not UTF-8", JSON, "UTF-8"),
        ("/api/intake", b"{not json", {**auth, **JSON}, "JSON object"),
        ("/api/intake", b"[]", {**auth, **JSON}, "JSON object"),
        ("/api/intake", b"\xff\xfe\xfd", {**auth, **JSON}, "UTF-8"),
        ("/api/intake", b"\xff\xfe\xfd", {**auth, **FORM}, "UTF-8"),
        ("/_local/clock", b"[]", JSON, "JSON object"),
        ("/_local/token", b"{not json", JSON, "JSON object"),
    ]
    for route, body, headers, fragment in cases:
        got, text = api.call("POST", route, body, headers)
        assert (got, fragment in text) == (400, True), (route, body[:40], headers, got, text[:200])
    unchanged(manual_runtime, api, path)


def test_hostile_json_answers_400_on_every_route_that_reads_json(manual_runtime: LocalRuntime, api: Api) -> None:
    path = first_contact_link(manual_runtime)
    case_no = manual_runtime.outbox.all()[-1].mail.case_no
    auth = staff_token(api)
    console = api.signed_in("cr.center@aurora-motors.example")
    routes = [(api, path, JSON), (api, "/api/intake", {**auth, **JSON}),
              (api, f"/api/cases/{case_no}/classification", {**auth, **JSON}),
              (console, f"/console/cases/{case_no}/classification", JSON),
              (api, "/_local/clock", JSON), (api, "/_local/token", JSON), (api, "/_local/faults", JSON),
              (api, "/_local/invoke/reports", JSON)]
    for client, route, headers in routes:
        for body, fragment in HOSTILE_JSON:
            got, text = client.call("POST", route, body, headers)
            if fragment:  # the console's page says "check what you entered"; the APIs say what is wrong
                assert (got, fragment in text or client is console) == (400, True), (route, body[:40], got, text[:300])
            elif not route.startswith("/_local/invoke/"):  # (there a function's own error is its answer)
                # A well-formed body: whatever the route makes of its fields, not a refusal of the JSON.
                assert got < 500 and "nests deeper" not in text, (route, got, text[:300])
    unchanged(manual_runtime, api, path)
    reasons = services().store.get_case(case_no or "").classification.reasons
    assert not any(r.startswith("corrected by") for r in reasons)  # not corrected
    assert len(services().store.list_cases("aurora")) == 1


def test_fields_of_the_wrong_type_or_value_answer_400_with_the_field(manual_runtime: LocalRuntime, api: Api) -> None:
    auth = staff_token(api)
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    case_no = manual_runtime.deliver(raw, recipients_of(raw))["case_no"]
    cases: list[tuple[str, str, bytes | None, dict[str, str], int, str]] = [
        ("POST", "/api/intake", json.dumps({"channel": "telepathy"}).encode(), {**auth, **JSON}, 400, "channel"),
        ("POST", f"/api/cases/{case_no}/classification", b'{"severity": 12}', {**auth, **JSON}, 400, "severity"),
        ("POST", f"/api/cases/{case_no}/classification", b'{"safety": {"a": [1]}}', {**auth, **JSON}, 400, "safety"),
        ("POST", f"/api/cases/{case_no}/dealer", b'{"dealer": null}', {**auth, **JSON}, 400, "dealer"),
        ("POST", f"/api/cases/{case_no}/dealer", b'{"dealer": 1e308}', {**auth, **JSON}, 400, "dealer"),
        ("GET", "/api/cases?phase=%00%ff", None, auth, 400, "phase"),
        ("GET", "/api/cases/%ff", None, auth, 404, ""),
        ("POST", "/api/held/no-such-mail/release", b"", auth, 404, ""),
    ]
    for method, path, body, headers, status, fragment in cases:
        got, text = api.call(method, path, body, headers)
        assert (got, fragment in text) == (status, True), (method, path, (body or b"")[:40], got, text[:200])
    assert [c.case_no for c in services().store.list_cases("aurora")] == [case_no]  # nothing registered


def test_compensation_beyond_the_policy_is_refused_before_the_link_is_used(manual_runtime: LocalRuntime,
                                                                          api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    to_plan(api, manual_runtime, case_no)
    plan = {"measures": "Repair free of charge."}
    for value, field in (("1E+999999", "compensation"), (1e30, "compensation"), ("10000000.01", "compensation"),
                         ("12.345", "compensation"), ("NaN", "compensation.0.value"), (-5, "compensation.0.value")):
        answer = act(api, manual_runtime, case_no, "plan",
                     {**plan, "compensation": [{"kind": "money", "value": value, "description": "x"}]})
        assert answer.status == 400 and field in answer.json()["errors"], (value, answer.status, answer.body[:300])
    assert services().store.get_case(case_no).plan is None  # nothing recorded; the link still works
    answer = act(api, manual_runtime, case_no, "plan",
                 {**plan, "compensation": [{"kind": "money", "value": "10000000.00", "description": "x"}]})
    assert answer.status == 200, answer.body[:300]  # the maximum itself is a plan
    assert str(services().store.get_case(case_no).plan.compensation[0].value) == "10000000.00"  # type: ignore[union-attr]


def test_report_periods_outside_the_calendar_answer_400(manual_runtime: LocalRuntime, api: Api) -> None:
    auth = staff_token(api)
    console = api.signed_in("cr.center@aurora-motors.example")
    for period in ("0000", "0001", "9999-12", "1999-12", "2101", "2026-13", "2026-Q0", "%E2%91%A0"):
        got, text = api.call("GET", f"/api/reports/{period}?format=json", headers=auth)
        assert got == 400 and "period" in text, (period, got, text[:200])
        assert console.call("GET", f"/console/reports/{period}")[0] == 400, period
    for period in ("2000-01", "2100-12", "2026-Q4", "2026"):
        assert api.call("GET", f"/api/reports/{period}?format=json", headers=auth)[0] == 200, period
