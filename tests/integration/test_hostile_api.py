"""Hostile requests to the link pages and the staff API, over HTTP as a client sends them:
oversized and malformed bodies get a clear 4xx (never a 5xx), and change nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.local.http import LocalHttpServer, recipients_of
from infra.local.runtime import LocalRuntime
from infra.local.settings import LocalSettings
from shared.runtime.wiring import services
from tests.conftest import sample

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


@dataclass
class Api:
    base: str

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str]:
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")


@pytest.fixture
def api(manual_runtime: LocalRuntime) -> Iterator[Api]:
    server = LocalHttpServer(manual_runtime, LocalSettings(http_port=0)).start()  # a port of its own, race-free
    yield Api(f"http://127.0.0.1:{server.server.server_address[1]}")
    server.stop()
    manual_runtime.clock.settle(30)


def staff_token(api: Api, email: str = "cr.center@aurora-motors.example") -> dict[str, str]:
    status, text = api.call("POST", "/_local/token", json.dumps({"email": email}).encode(), JSON)
    assert status == 200, text
    return {"Authorization": f"Bearer {json.loads(text)['token']}"}


def first_contact_link(runtime: LocalRuntime) -> str:
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    assert runtime.deliver(raw, recipients_of(raw))["disposition"] == "new_case"
    runtime.clock.settle(30)
    urls = [link["url"] for m in runtime.outbox.all() for link in m.mail.links if link["step"] == "first_contact"]
    assert urls, "the first-contact request went out"
    return "/" + urls[0].split("/", 3)[3]


def test_link_pages_answer_bad_bodies_with_a_clear_4xx_and_change_nothing(manual_runtime: LocalRuntime,
                                                                         api: Api) -> None:
    path = first_contact_link(manual_runtime)
    cases: list[tuple[bytes, dict[str, str], int, str]] = [
        (b"notes=" + b"x" * 70 * 1024, FORM, 413, ""),  # over the handler's 64 KB
        (b"x" * (2 * 1024 * 1024), FORM, 413, "body too large"),  # over the server's 1 MB, never read
        (b"{not json", JSON, 400, "body must be a JSON object"),
        (b"[1, 2, 3]", JSON, 400, "body must be a JSON object"),
        (b'"a string"', JSON, 400, "body must be a JSON object"),
        (b"\xff\xfe\xfd not UTF-8", FORM, 400, "UTF-8"),
        (b"\xff\xfe\xfd not UTF-8", JSON, 400, "UTF-8"),
        (b"notes=hello", FORM, 403, ""),  # no form token
        (json.dumps({"form_token": "forged", "notes": "hello"}).encode(), JSON, 403, ""),
        (b"form_token=%ff%fe&notes=%00", FORM, 403, ""),
        (json.dumps({"form_token": "表单", "notes": "hello"}).encode(), JSON, 403, ""),
        (json.dumps({"form_token": 12, "notes": "hello"}).encode(), JSON, 403, ""),
    ]
    for body, headers, status, fragment in cases:
        got, text = api.call("POST", path, body, headers)
        assert (got, fragment in text) == (status, True), (body[:40], headers, got, text[:200])
    for bad in ("/a/" + "z" * 5000, "/a/%ff%fe", "/a/..%2f..%2fetc%2fpasswd", "/a/"):
        assert api.call("GET", bad)[0] == 404, bad
    # Nothing was decided: the page still asks for first contact.
    status, text = api.call("GET", path, headers={"Accept": "application/json"})
    assert status == 200 and json.loads(text)["step"] == "first_contact"
    task = services().store.get_task(manual_runtime.outbox.all()[-1].mail.case_no or "", "first_contact-1")
    assert task is not None and task.status == "open"


def test_the_staff_api_answers_bad_requests_with_a_clear_4xx(manual_runtime: LocalRuntime, api: Api) -> None:
    auth = staff_token(api)
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    case_no = manual_runtime.deliver(raw, recipients_of(raw))["case_no"]
    cases: list[tuple[str, str, bytes | None, dict[str, str], int, str]] = [
        ("POST", "/api/intake", b"x" * 70 * 1024, {**auth, **JSON}, 413, "body too large"),
        ("POST", "/api/intake", b"x" * (2 * 1024 * 1024), {**auth, **JSON}, 413, "body too large"),
        ("POST", "/api/intake", b"{not json", {**auth, **JSON}, 400, "JSON object"),
        ("POST", "/api/intake", b"[]", {**auth, **JSON}, 400, "JSON object"),
        ("POST", "/api/intake", json.dumps({"channel": "telepathy"}).encode(), {**auth, **JSON}, 400, "channel"),
        ("POST", f"/api/cases/{case_no}/classification", b'{"severity": 12}', {**auth, **JSON}, 400, "severity"),
        ("POST", f"/api/cases/{case_no}/dealer", b'{"dealer": null}', {**auth, **JSON}, 400, "dealer"),
        ("GET", "/api/cases?phase=%00%ff", None, auth, 400, "phase"),
        ("GET", "/api/cases/%ff", None, auth, 404, ""),
        ("POST", "/api/held/no-such-mail/release", b"", auth, 404, ""),
        ("GET", "/api/cases", None, {}, 401, "Unauthorized"),
        ("GET", "/api/cases", None, {"Authorization": "Bearer forged.token.value"}, 401, "Unauthorized"),
        ("GET", "/api/cases", None, {"Authorization": "Bearer forged.tokén"}, 401, "Unauthorized"),
    ]
    for method, path, body, headers, status, fragment in cases:
        got, text = api.call(method, path, body, headers)
        assert (got, fragment in text) == (status, True), (method, path, (body or b"")[:40], got, text[:200])
    assert [c.case_no for c in services().store.list_cases("aurora")] == [case_no]  # nothing registered


def test_the_staff_api_answers_a_body_that_is_not_utf8_with_400(manual_runtime: LocalRuntime, api: Api) -> None:
    auth = staff_token(api)
    for headers in (JSON, FORM):
        status, text = api.call("POST", "/api/intake", b"\xff\xfe\xfd", {**auth, **headers})
        assert status == 400, (status, text)
