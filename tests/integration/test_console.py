"""The staff console and the scoped store on the local runtime (moto): sign-in and its
cookies, CSRF, tenant isolation by case number, list filter, export, library and link,
accountability and the case library on DynamoDB, the daily reminders."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlencode

import pytest

from infra.local.http import api_event, recipients_of
from infra.local.runtime import LocalRuntime
from infra.local.tokens import LocalSessions
from shared.complaints.models import Case, Investigation
from shared.complaints.views import Viewer
from shared.runtime import wiring
from shared.runtime.wiring import services
from tests.conftest import sample
from tests.unit.test_staff_views import other_brand_doc

SECRET = "console-test-secret-" + "x" * 20
CR, CS_SH001, GM_SH001 = "cr.center@aurora-motors.example", "cs.sh001@dealers.example", "gm.sh001@dealers.example"
NORTH, CR_B = "north.region@aurora-motors.example", "cr.center@borealis-motors.example"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert found, "the page carries a CSRF token"
        return found.group(1)


@dataclass
class Browser:
    """Requests as API Gateway hands them to the staff function, with a cookie jar."""

    runtime: LocalRuntime
    jar: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, fields: dict[str, str] | None = None,
                origin: str | None = "http://127.0.0.1:8080") -> Answer:
        headers = {"host": "127.0.0.1:8080"}
        if self.jar:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if fields is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            if origin:
                headers["origin"] = origin
        body = urlencode(fields or {}).encode()
        result = self.runtime.invoke("staff_api", api_event(method, path, headers, body, "127.0.0.1", None))
        cookies = list(result.get("cookies") or [])
        for cookie in cookies:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return Answer(int(result["statusCode"]), dict(result.get("headers") or {}), cookies, result.get("body") or "")

    def sign_in_as(self, email: str, brand: str = "aurora") -> Browser:
        token = LocalSessions(SECRET).token_for_email(email, brand)
        assert token
        self.jar["console_session"] = token
        return self


def api(runtime: LocalRuntime, path: str, email: str, brand: str = "aurora") -> tuple[int, Any]:
    result = runtime.invoke("staff_api", api_event("GET", path, {"host": "x"}, b"", "127.0.0.1",
                                                   {"email": email, "custom:brand": brand}))
    return int(result["statusCode"]), json.loads(result["body"] or "null")


def register(runtime: LocalRuntime, name: str) -> str:
    """A case from a sample mail, its lifecycle settled at its first step."""
    raw = sample(name)
    no = str(runtime.deliver(raw, recipients_of(raw))["case_no"])
    assert runtime.clock.settle()
    return no


@pytest.fixture
def runtime(manual_runtime: LocalRuntime) -> Iterator[LocalRuntime]:
    wiring.configure(staff_sessions=LocalSessions(SECRET))
    wiring.case_store().put_tenant(other_brand_doc(), [])
    yield manual_runtime


def close_with_investigation(no: str, root_cause: str = "product", responsibility: str = "employee") -> Case:
    lifecycle = services().lifecycle

    def investigate(ctx: Any) -> None:
        ctx.case.investigation = Investigation(
            findings="刘伟的车：刹车助力泵真空管脱落，联系电话 13800138001", root_cause=root_cause,
            responsibility=responsibility, preliminary_feedback="x", recorded_by=CS_SH001,
            recorded_at=lifecycle.clock.now())
    lifecycle.mutate(no, investigate)
    lifecycle.close(no)
    return services().store.get_case(no)


def other_brand_case(sh_case: str) -> str:
    """Brand B's copy of an Aurora case, at a dealer with the same code."""
    case = services().store.get_case(sh_case)
    copy = case.model_copy(update={"case_no": "BOR-SH001-202611-00001", "brand": "borealis", "version": 0})
    return services().store.create_case(copy).case_no


# ----- sign-in ---------------------------------------------------------------------------------------
def test_sign_in_keeps_the_token_in_a_strict_http_only_cookie_and_goes_back(runtime: LocalRuntime) -> None:
    browser = Browser(runtime)
    first = browser.request("GET", "/console/cases?phase=open")
    assert first.status == 303 and unquote(first.location) == "/console/sign-in?next=/console/cases?phase=open"
    # From another site the Strict cookie is withheld: the page reloads itself first.
    probe = browser.request("GET", first.location)
    assert probe.status == 200 and 'http-equiv="refresh"' in probe.body and "probe=1" in probe.body
    form = browser.request("GET", "/console/sign-in?" + urlencode({"next": "/console/cases?phase=open", "probe": "1"}))
    assert form.status == 200 and 'name="email"' in form.body
    [pre] = form.cookies
    assert "HttpOnly" in pre and "SameSite=Strict" in pre and "Path=/console" in pre

    fields = {"email": CR, "next": "/console/cases?phase=open", "csrf": form.csrf()}
    assert browser.request("POST", "/console/sign-in", {**fields, "csrf": "0" * 64}).status == 403
    assert browser.request("POST", "/console/sign-in", fields, origin="https://evil.example").status == 403
    assert Browser(runtime).request("POST", "/console/sign-in", fields).status == 403  # no pre-session cookie
    unknown = browser.request("POST", "/console/sign-in", {**fields, "email": "someone@mail.example"})
    assert unknown.status == 400 and "不是本品牌的员工" in unknown.body
    signed = browser.request("POST", "/console/sign-in", fields)
    assert signed.status == 303 and signed.location == "/console/cases?phase=open"
    session = next(c for c in signed.cookies if c.startswith("console_session="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/console" in session
    assert "Secure" not in session  # http://127.0.0.1; the deployed stack is https and gets Secure

    page = browser.request("GET", "/console/cases?phase=open")
    assert page.status == 200 and "Brand Customer Relations Center" in page.body
    assert page.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in page.headers[
        "Content-Security-Policy"]
    assert browser.request("GET", "/console/sign-in?probe=1&next=/console/library").location == "/console/library"
    assert browser.request("GET", "/console/sign-in?probe=1&next=https://evil.example/").location == "/console/cases"

    assert browser.request("POST", "/console/sign-out", {"csrf": "nope"}).status == 403
    out = browser.request("POST", "/console/sign-out", {"csrf": page.csrf()})
    assert out.status == 303 and "console_session" not in browser.jar
    assert browser.request("GET", "/console/cases").status == 303
    forged = Browser(runtime, {"console_session": "eyJlbWFpbCI6ICJjci5jZW50ZXJAYXVyb3JhLW1vdG9ycy5leGFtcGxlIn0.00"})
    assert forged.request("GET", "/console/cases").status == 303


# ----- tenant isolation ------------------------------------------------------------------------------
def test_another_tenants_case_cannot_be_read_by_number_filter_export_library_or_link(runtime: LocalRuntime) -> None:
    sh, bj, hq = (register(runtime, n) for n in ("p01_brake_failure_sh001.eml", "p02_wait_time_bj002_gb2312.eml",
                                                 "p24_no_date_bare_from_app_triage.eml"))
    bor = other_brand_case(sh)
    close_with_investigation(sh)

    cs, north, cr, cr_b = (Browser(runtime).sign_in_as(CS_SH001), Browser(runtime).sign_in_as(NORTH),
                           Browser(runtime).sign_in_as(CR), Browser(runtime).sign_in_as(CR_B, "borealis"))
    # by number: 404, never 403, in the console and the API
    for browser, visible, hidden in ((cs, [sh], [bj, hq, bor]), (north, [bj], [sh, hq, bor]),
                                     (cr, [sh, bj, hq], [bor]), (cr_b, [bor], [sh, bj, hq])):
        for no in visible:
            assert browser.request("GET", f"/console/cases/{no}").status == 200, no
        for no in hidden:
            answer = browser.request("GET", f"/console/cases/{no}")
            assert answer.status == 404 and no not in answer.body, no
    assert api(runtime, f"/api/cases/{bor}", CS_SH001)[0] == 404
    assert api(runtime, f"/api/cases/{sh}", CR_B, "borealis")[0] == 404
    assert api(runtime, f"/api/cases/{bor}", CR_B, "borealis")[0] == 200
    assert api(runtime, f"/api/cases/{sh}", CR, "borealis")[0] == 401  # brand A's e-mail in a brand B token

    # by list filter and by export
    listed = cs.request("GET", "/console/cases?dealer=BJ002")
    assert listed.status == 200 and bj not in listed.body and sh not in listed.body
    assert bj not in cs.request("GET", "/console/cases").body and sh in cs.request("GET", "/console/cases").body
    exported = list(csv.DictReader(io.StringIO(cs.request("GET", "/console/export").body.lstrip("\ufeff"))))
    assert [r["case_no"] for r in exported] == [sh]
    assert list(csv.DictReader(io.StringIO(cs.request("GET", "/console/export?dealer=BJ002").body.lstrip("\ufeff")))) == []
    everything = cr_b.request("GET", "/console/export").body
    assert bor in everything and "AUR-" not in everything and "AUR-" not in cr_b.request("GET", "/console/cases").body
    _, api_list = api(runtime, "/api/cases?dealer=SH001", CR_B, "borealis")
    assert [c["case_no"] for c in api_list["cases"]] == [bor]

    # by the library: brand A's closed case is brand A's; the case link only for who sees the case
    assert api(runtime, "/api/library", CR_B, "borealis")[1]["entries"] == []
    assert "AUR-" not in cr_b.request("GET", "/console/library").body
    [entry] = api(runtime, "/api/library", NORTH)[1]["entries"]
    assert "case_no" not in entry and "dealer" not in entry and entry["entry_id"].startswith("L-")
    assert api(runtime, "/api/library", CS_SH001)[1]["entries"][0]["case_no"] == sh

    # by the report route: another dealer's, another region's, the brand's, another brand's
    assert cs.request("GET", "/console/reports/2026-11?dealer=BJ002").status == 403
    assert cs.request("GET", "/console/reports/2026-11?scope=brand").status == 403
    assert north.request("GET", "/console/reports/2026-11?region=east").status == 403
    assert cs.request("GET", "/console/reports/2026-11?dealer=XX999").status == 404
    own = json.loads(cs.request("GET", "/console/reports/2026-11?format=json").body)
    assert own["scope"]["dealer"] == "SH001" and own["summary"]["received"] == 1
    brand_a = json.loads(cr.request("GET", "/console/reports/2026-11?format=json").body)
    brand_b = json.loads(cr_b.request("GET", "/console/reports/2026-11?format=json").body)
    assert brand_a["summary"]["received"] == 3 and brand_b["summary"]["received"] == 1  # its own copy only
    assert cr.request("GET", "/console/reports").location == "/console/reports/2026-11"
    assert "<html" in cr.request("GET", "/console/reports/2026-11").body

    # by link: a console link to another tenant's case, and acting on it
    assert cs.request("GET", f"/console/cases/{bj}#accountability").status == 404
    page = cs.request("GET", f"/console/cases/{sh}")
    corrected = cs.request("POST", f"/console/cases/{bj}/classification",
                           {"csrf": page.csrf(), "category": "price", "reason": "x"})
    assert corrected.status == 404
    assert services().store.get_case(bj).classification.category != "price"


def test_the_store_reads_only_the_viewers_partitions_on_dynamodb(runtime: LocalRuntime) -> None:
    sh, bj = register(runtime, "p01_brake_failure_sh001.eml"), register(runtime, "p02_wait_time_bj002_gb2312.eml")
    bor = other_brand_case(sh)
    store = wiring.case_store()
    tenant = store.get_tenant("aurora")

    def of(email: str, brand: str = "aurora") -> Viewer:
        t = store.get_tenant(brand)
        member = t.staff_member(email)
        assert member is not None
        return Viewer.of(member, t)
    assert [c.case_no for c in store.cases_for(of(CS_SH001))] == [sh]
    assert [c.case_no for c in store.cases_for(of(CS_SH001), dealer="BJ002")] == []
    assert [c.case_no for c in store.cases_for(of(NORTH))] == [bj]
    assert {c.case_no for c in store.cases_for(of(CR))} == {sh, bj}
    assert [c.case_no for c in store.cases_for(of(CR), phase="first_contact", dealer="SH001")] == [sh]
    assert store.cases_for(of(CR), phase="closed") == []
    assert [c.case_no for c in store.cases_for(of(CR_B, "borealis"))] == [bor]
    assert tenant.has_dealer("SH001")


# ----- the console's actions -------------------------------------------------------------------------
def test_console_actions_need_the_forms_token_and_record_like_the_api(runtime: LocalRuntime) -> None:
    sh = register(runtime, "p11_refund_demand_sh001_code_pdf.eml")
    cs = Browser(runtime).sign_in_as(CS_SH001)
    page = cs.request("GET", f"/console/cases/{sh}")
    assert page.status == 200 and "更正分类" in page.body
    fields = {"category": "service", "severity": "major", "safety": "false", "media_or_regulator": "false",
              "reason": "客户投诉的是交车时的服务"}
    assert cs.request("POST", f"/console/cases/{sh}/classification", fields).status == 403  # no token
    assert cs.request("POST", f"/console/cases/{sh}/classification", {**fields, "csrf": page.csrf()},
                      origin="https://evil.example").status == 403
    assert Browser(runtime).sign_in_as(GM_SH001).request(  # another person's token
        "POST", f"/console/cases/{sh}/classification", {**fields, "csrf": page.csrf()}).status == 403
    done = cs.request("POST", f"/console/cases/{sh}/classification", {**fields, "csrf": page.csrf()})
    assert done.status == 303 and done.location == f"/console/cases/{sh}?done=classification"
    assert "分类已更正" in cs.request("GET", done.location).body
    assert services().store.get_case(sh).classification.category == "service"
    invalid = cs.request("POST", f"/console/cases/{sh}/classification", {**fields, "reason": "", "csrf": page.csrf()})
    assert invalid.status == 400 and 'class="err"' in invalid.body

    # accountability: after closure only; the GM records, gets the mail, marks it done
    assert "结案后记录" in cs.request("GET", f"/console/cases/{sh}").body
    close_with_investigation(sh, root_cause="service")
    gm = Browser(runtime).sign_in_as(GM_SH001)
    page = gm.request("GET", f"/console/cases/{sh}")
    assert "门店标准建议" in page.body and "罚款 · ¥200.00" in page.body  # SH001's schedule, service × employee
    assert cs.request("POST", f"/console/cases/{sh}/accountability",
                      {"csrf": cs.request("GET", f"/console/cases/{sh}").csrf(), "responsibility": "employee",
                       "measure": "fine", "fine": "200"}).status == 403  # the CS head does not record it
    recorded = gm.request("POST", f"/console/cases/{sh}/accountability",
                          {"csrf": page.csrf(), "responsibility": "employee", "measure": "fine", "fine": "200",
                           "person": "SA-017", "note": ""})
    assert recorded.status == 303
    [mail] = [m.mail for m in runtime.outbox.for_case(sh) if "责任追究待办" in m.mail.subject]
    assert mail.to == [GM_SH001] and mail.links[0]["url"].endswith(f"/console/cases/{sh}#accountability")
    _, tasks = api(runtime, "/api/accountability", GM_SH001)
    assert [(t["case_no"], t["measure"], t["done_at"]) for t in tasks["tasks"]] == [(sh, "fine", None)]
    assert api(runtime, "/api/accountability", "gm.bj002@dealers.example")[1]["tasks"] == []
    marked = gm.request("POST", f"/console/cases/{sh}/accountability/done", {"csrf": page.csrf(), "note": "已罚款"})
    assert marked.status == 303 and "已标记落实" in gm.request("GET", marked.location.split("#")[0]).body
    assert api(runtime, "/api/accountability", GM_SH001)[1]["tasks"] == []
    _, document = api(runtime, f"/api/cases/{sh}", CR)
    assert document["accountability"]["done_by"] == GM_SH001
    assert {"accountability_recorded", "accountability_done"} <= {e["type"] for e in document["timeline"]}

    # the monthly report is a link away
    assert 'href="/console/reports"' in page.body


def test_the_library_on_dynamodb_moves_with_the_case_and_is_searchable(runtime: LocalRuntime) -> None:
    sh = register(runtime, "p01_brake_failure_sh001.eml")
    close_with_investigation(sh, root_cause="product")
    store = wiring.case_store()
    [entry] = store.library_entries("aurora", root_cause="product")
    assert "刘伟" not in entry.model_dump_json().replace(sh, "") and "13800138001" not in entry.findings
    assert "真空管脱落" in entry.findings and "LAUR0A1B2C3000001" not in entry.description
    services().lifecycle.mutate(sh, lambda ctx: setattr(ctx.case.classification, "category", "other"))
    assert store.library_entries("aurora", category="product_quality") == []  # moved, not duplicated
    assert [e.category for e in store.library_entries("aurora")] == ["other"]
    cr = Browser(runtime).sign_in_as(CR)
    page = cr.request("GET", "/console/library?" + urlencode({"category": "other", "q": "真空管"}))
    assert page.status == 200 and "真空管脱落" in page.body and "刘伟" not in page.body
    assert "真空管脱落" not in cr.request("GET", "/console/library?q=变速箱").body


def test_daily_reminders_mail_each_overdue_measure_once_a_day(runtime: LocalRuntime) -> None:
    sh = register(runtime, "p01_brake_failure_sh001.eml")
    close_with_investigation(sh)
    cr = Browser(runtime).sign_in_as(CR)
    page = cr.request("GET", f"/console/cases/{sh}")
    assert cr.request("POST", f"/console/cases/{sh}/accountability",
                      {"csrf": page.csrf(), "responsibility": "management", "measure": "process_change"}).status == 303
    assert runtime.invoke("accountability_reminders", {})["reminded"] == []
    runtime.clock.advance(31 * 24 * 3600)
    assert runtime.invoke("accountability_reminders", {})["reminded"] == [sh]
    assert runtime.invoke("accountability_reminders", {})["reminded"] == []  # a retried run: once a day
    overdue = [m.mail for m in runtime.outbox.for_case(sh) if "责任追究已逾期" in m.mail.subject]
    assert [m.to for m in overdue] == [[GM_SH001]]
    listed = cr.request("GET", "/console/accountability")
    assert sh in listed.body and "已逾期" in listed.body
    runtime.clock.advance(24 * 3600 + timedelta(hours=1).total_seconds())
    assert runtime.invoke("accountability_reminders", {})["reminded"] == [sh]  # the next day, again


def test_in_aws_the_console_signs_in_through_cognitos_hosted_ui(runtime: LocalRuntime) -> None:
    """The AWS path end to end on moto's Cognito: sign-in page → hosted UI (state, PKCE) →
    callback → code exchanged (a stand-in token endpoint) → GetUser → session cookie."""
    import base64
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs, urlsplit

    import boto3

    from shared.runtime.sessions import CognitoSessions

    cognito = boto3.client("cognito-idp", region_name=runtime.region)
    pool = cognito.create_user_pool(PoolName="staff", Schema=[
        {"Name": "brand", "AttributeDataType": "String", "Mutable": True}])["UserPool"]["Id"]
    app = cognito.create_user_pool_client(UserPoolId=pool, ClientName="console", ExplicitAuthFlows=[
        "ALLOW_ADMIN_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool, Username=GM_SH001, MessageAction="SUPPRESS", UserAttributes=[
        {"Name": "email", "Value": GM_SH001}, {"Name": "custom:brand", "Value": "aurora"}])
    cognito.admin_set_user_password(UserPoolId=pool, Username=GM_SH001, Password="Correct-Horse-9!", Permanent=True)
    access_token = cognito.admin_initiate_auth(
        UserPoolId=pool, ClientId=app, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": GM_SH001, "PASSWORD": "Correct-Horse-9!"})["AuthenticationResult"]["AccessToken"]
    challenges: dict[str, str] = {}

    class TokenEndpoint(BaseHTTPRequestHandler):  # what Cognito's /oauth2/token does with a code
        def do_POST(self) -> None:
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["content-length"])).decode()).items()}
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            ok = challenges.pop(form.get("code", ""), None) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
            body = json.dumps({"access_token": access_token} if ok else {"error": "invalid_grant"}).encode()
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = HTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    domain = f"http://127.0.0.1:{server.server_port}"
    wiring.configure(staff_sessions=CognitoSessions(domain, app, runtime.region, cognito))
    try:
        browser = Browser(runtime)
        assert browser.request("GET", "/console/sign-in?next=/console/accountability").status == 200  # the probe
        hosted = browser.request("GET", "/console/sign-in?next=/console/accountability&probe=1")
        assert hosted.status == 303 and hosted.location.startswith(f"{domain}/oauth2/authorize?")
        query = {k: v[0] for k, v in parse_qs(urlsplit(hosted.location).query).items()}
        [pending] = hosted.cookies
        assert "Path=/console/callback" in pending and "SameSite=Lax" in pending and "HttpOnly" in pending

        # Cognito signs the person in (password, MFA) and sends the browser back with a code.
        challenges["code-1"] = query["code_challenge"]
        forged = browser.request("GET", "/console/callback?" + urlencode({"code": "code-1", "state": "forged"}))
        assert forged.status == 400 and "console_session" not in browser.jar
        challenges["code-2"] = query["code_challenge"]
        back = browser.request("GET", "/console/callback?" + urlencode({"code": "code-2", "state": query["state"]}))
        assert back.status == 200 and 'url=/console/accountability"' in back.body
        assert browser.jar["console_session"] == access_token
        assert browser.request("GET", "/console/accountability").status == 200
        assert Browser(runtime).request("GET", "/console/callback?" + urlencode(
            {"code": "code-3", "state": query["state"]})).status == 400  # no pending sign-in in this browser
        page = browser.request("GET", "/console/accountability")
        out = browser.request("POST", "/console/sign-out", {"csrf": page.csrf()})
        assert out.location.startswith(f"{domain}/logout?client_id={app}")
        cognito.global_sign_out(AccessToken=access_token)
        revoked = Browser(runtime, {"console_session": access_token})
        wiring.configure(staff_sessions=CognitoSessions(domain, app, runtime.region, cognito))  # a cold Lambda
        assert revoked.request("GET", "/console/cases").status == 303
    finally:
        server.shutdown()
        wiring.configure(staff_sessions=LocalSessions(SECRET))


def test_brand_cr_resumes_a_parked_case_from_its_page(runtime: LocalRuntime) -> None:
    sh = register(runtime, "p11_refund_demand_sh001_code_pdf.eml")
    services().lifecycle.needs_attention(sh, "KeyError", "simulated defect")
    assert runtime.clock.settle()
    parked = services().store.get_case(sh)
    assert parked.phase == "needs_attention" and parked.attention_step == "first_contact"
    cs = Browser(runtime).sign_in_as(CS_SH001)
    assert "/resume" not in cs.request("GET", f"/console/cases/{sh}").body  # the CS head may not
    page = cs.request("GET", f"/console/cases/{sh}")
    assert cs.request("POST", f"/console/cases/{sh}/resume", {"csrf": page.csrf()}).status == 403
    cr = Browser(runtime).sign_in_as(CR)
    page = cr.request("GET", f"/console/cases/{sh}")
    assert f'action="/console/cases/{sh}/resume"' in page.body and "恢复处理" in page.body
    done = cr.request("POST", f"/console/cases/{sh}/resume", {"csrf": page.csrf()})
    assert done.status == 303 and done.location == f"/console/cases/{sh}?done=resume"
    assert runtime.clock.settle()
    case = services().store.get_case(sh)
    assert case.phase == "first_contact" and case.execution and case.execution.startswith(f"{sh}.a")
    assert runtime.execution(case.execution)["status"] == "RUNNING"
    assert "已恢复处理" in cr.request("GET", done.location).body
    # Resuming what is not parked is refused, over the API too.
    result = runtime.invoke("staff_api", api_event("POST", f"/api/cases/{sh}/resume", {"host": "x"}, b"{}",
                                                   "127.0.0.1", {"email": CR, "custom:brand": "aurora"}))
    assert result["statusCode"] == 409
