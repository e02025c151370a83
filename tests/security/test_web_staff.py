"""Attacks on the staff side: cross-site requests to the console (CSRF), one tenant's staff
reading another's cases, reports and held mail by guessing (IDOR), a dealer's staff reading
another dealer's case, forged bearer tokens and session cookies, the sign-in sending a browser
elsewhere (docs/security.md, "Web and input")."""

from __future__ import annotations

import re
from urllib.parse import quote

from infra.local import tokens
from infra.local.http import recipients_of
from infra.local.runtime import LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import sample
from tests.integration.test_console import other_brand_case
from tests.security.support import CR, CR_B, CS_BJ002, CS_SH001, GM_SH001, Api, deliver

CLASSIFY = {"category": "service", "severity": "major", "safety": "false", "media_or_regulator": "false",
            "reason": "the customer complains about the service at hand-over"}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page carries a CSRF token"
    return found.group(1)


def test_console_posts_need_the_sessions_token_and_our_origin(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, sample("p01_brake_failure_sh001.eml"))
    cs, gm = api.signed_in(CS_SH001), api.signed_in(GM_SH001)
    token = csrf_of(cs.request("GET", f"/console/cases/{case_no}").body)
    route = f"/console/cases/{case_no}/classification"
    assert cs.post_form(route, CLASSIFY).status == 403  # no token: a form on another site
    assert cs.post_form(route, {**CLASSIFY, "csrf": token}, origin="https://evil.example").status == 403
    assert cs.post_form(route, {**CLASSIFY, "csrf": token}, origin="null").status == 403
    assert gm.post_form(route, {**CLASSIFY, "csrf": token}).status == 403  # another session's token
    assert api.post_form(route, {**CLASSIFY, "csrf": token}).status == 401  # no session at all
    assert services().store.get_case(case_no).classification.category != "service"
    assert cs.post_form("/console/sign-in", {"email": CR, "csrf": "x"}).status == 403  # sign-in without its nonce
    done = cs.post_form(route, {**CLASSIFY, "csrf": token})
    assert done.status == 303 and services().store.get_case(case_no).classification.category == "service"


def test_one_tenants_staff_cannot_read_anothers_cases_reports_or_held_mail(manual_runtime: LocalRuntime,
                                                                          two_brands: Api) -> None:
    api = two_brands
    aurora = deliver(manual_runtime, sample("p01_brake_failure_sh001.eml"))
    borealis = other_brand_case(aurora)  # same dealer code, same number but for the prefix
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    assert manual_runtime.deliver(raw, recipients_of(raw), verdicts={"spam": "FAIL"})["case_no"] is None
    [held] = api.request("GET", "/api/held", headers=api.bearer(CR)).json()["held"]

    b = api.bearer(CR_B, "borealis")
    assert api.call("GET", f"/api/cases/{aurora}", headers=b)[0] == 404  # 404, not 403: nothing to learn
    assert api.call("GET", f"/api/cases/{borealis}", headers=b)[0] == 200
    assert [c["case_no"] for c in api.request("GET", "/api/cases", headers=b).json()["cases"]] == [borealis]
    assert api.call("GET", f"/api/cases/{borealis}", headers=api.bearer(CR))[0] == 404
    assert api.request("GET", "/api/held", headers=b).json()["held"] == []
    assert api.call("POST", f"/api/held/{held['held_id']}/release", b"", b)[0] == 404
    # An Aurora address with Borealis' brand claim is nobody (the claim is signed: a client cannot set it).
    assert api.call("GET", f"/api/cases/{borealis}", headers=api.bearer(CR, "borealis"))[0] == 401
    month = manual_runtime.clock.now().strftime("%Y-%m")
    report = api.request("GET", f"/api/reports/{month}?format=json&dealer=SH001", headers=b).json()
    assert report["summary"]["received"] == 1  # Borealis' own SH001: its one case, not Aurora's
    console = api.signed_in(CR_B, "borealis")
    assert console.call("GET", f"/console/cases/{aurora}")[0] == 404
    assert aurora not in console.call("GET", "/console/export")[1]


def test_a_dealers_staff_cannot_read_another_dealers_case_or_report(manual_runtime: LocalRuntime, api: Api) -> None:
    sh001 = deliver(manual_runtime, sample("p01_brake_failure_sh001.eml"))
    bj002 = api.bearer(CS_BJ002)
    assert api.call("GET", f"/api/cases/{sh001}", headers=bj002)[0] == 404
    assert api.request("GET", "/api/cases", headers=bj002).json()["cases"] == []
    assert api.call("GET", "/api/cases?dealer=SH001", headers=bj002)[1].count(sh001) == 0
    month = manual_runtime.clock.now().strftime("%Y-%m")
    assert api.call("GET", f"/api/reports/{month}?dealer=SH001", headers=bj002)[0] == 403
    assert api.call("GET", f"/api/reports/{month}?scope=brand", headers=bj002)[0] == 403
    assert api.call("POST", f"/api/cases/{sh001}/classification", b'{"category": "service"}',
                    {**bj002, "Content-Type": "application/json"})[0] == 404
    assert api.signed_in(CS_BJ002).call("GET", f"/console/cases/{sh001}")[0] == 404
    assert api.call("GET", f"/api/cases/{sh001}", headers=api.bearer(CS_SH001))[0] == 200


def test_forged_bearer_tokens_and_session_cookies_are_nobody(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, sample("p01_brake_failure_sh001.eml"))
    good = tokens.issue(CR, "aurora", api.secret)
    body = good.partition(".")[0]
    forged = [
        "", "forged.token.value", "forged.tokén", body, f"{body}.{'0' * 64}",  # no or a wrong signature
        tokens.issue(CR, "aurora", "another-secret-" + "x" * 20),  # signed with another key
        tokens.issue(CR, "aurora", api.secret, ttl_s=-60),  # expired
        tokens.issue("someone@mail.example", "aurora", api.secret),  # signed, but not staff
        tokens.issue(CR, "no-such-brand", api.secret),
    ]
    for token in forged:
        got, _ = api.call("GET", f"/api/cases/{case_no}", headers={"Authorization": f"Bearer {token}"})
        assert got == 401, (token[:40], got)
        browser = Api(api.base, api.secret, {"console_session": token} if token else {})
        page = browser.request("GET", f"/console/cases/{case_no}")
        assert page.status == 303 and page.headers["location"].startswith("/console/sign-in"), (token[:40], page.status)
        assert browser.post_form(f"/console/cases/{case_no}/classification", {**CLASSIFY, "csrf": "x"}).status == 401
    assert api.call("GET", f"/api/cases/{case_no}", headers={"Authorization": f"Basic {good}"})[0] == 401
    assert api.call("GET", f"/api/cases/{case_no}", headers={"Authorization": f"Bearer {good}"})[0] == 200


def test_the_sign_in_goes_back_only_into_the_console(manual_runtime: LocalRuntime, api: Api) -> None:
    signed_in = api.signed_in(CR)
    for target in ("https://evil.example/", "//evil.example/console", "/\\evil.example", "/console\\..\\x",
                   "javascript:alert(1)"):
        answer = signed_in.request("GET", f"/console/sign-in?next={quote(target)}&probe=1")
        assert answer.status == 303 and answer.headers["location"] == "/console/cases", (target, answer.headers)
    answer = signed_in.request("GET", "/console/sign-in?next=%2Fconsole%2Flibrary&probe=1")
    assert answer.headers["location"] == "/console/library"
