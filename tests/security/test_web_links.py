"""Attacks on the links in mails: methods (GET and HEAD never decide), forged link ids, forged
form tokens, used and expired links, replayed form posts, a script hammering one link
(docs/security.md, "Web and input")."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from infra.local.runtime import LocalRuntime
from shared.runtime.wiring import services
from tests.security.support import (
    CUSTOMER,
    FIRST_CONTACT,
    FORM,
    JSON,
    Api,
    act,
    deliver,
    hostile_mail,
    link_path,
    to_plan,
)


def open_task(case_no: str, key: str) -> bool:
    task = services().store.get_task(case_no, key)
    return task is not None and task.status == "open"


def test_get_and_head_show_a_step_and_never_decide_it(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    to_plan(api, manual_runtime, case_no)
    assert act(api, manual_runtime, case_no, "plan", {"measures": "Repair free of charge."}).status == 200
    path = link_path(manual_runtime, case_no, "approval")
    for method, query in (("GET", ""), ("GET", "?decision=approve&comment=ok"), ("HEAD", ""),
                          ("HEAD", "?decision=approve")):  # what mail scanners and link previews do
        for accept in ("text/html", "application/json"):
            got, _ = api.call(method, path + query, headers={"Accept": accept})
            assert got == 200, (method, query, got)
    assert services().store.get_case(case_no).approvals[0].decision is None
    got, _ = api.call("POST", path, b"decision=approve&comment=ok", FORM)  # a POST without the page's token
    assert got == 403 and services().store.get_case(case_no).approvals[0].decision is None
    assert act(api, manual_runtime, case_no, "approval", {"decision": "approve", "comment": "ok"}).status == 200
    assert services().store.get_case(case_no).approvals[0].decision == "approve"


def test_forged_and_malformed_link_ids_answer_404(manual_runtime: LocalRuntime, api: Api) -> None:
    deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    for bad in ("/a/" + secrets.token_urlsafe(32), "/a/" + "z" * 5000, "/a/%ff%fe", "/a/..%2f..%2fetc%2fpasswd", "/a/"):
        for method, body in (("GET", None), ("POST", b"notes=hello")):
            got, _ = api.call(method, bad, body, FORM if body else None)
            assert got == 404, (method, bad[:60], got)


def test_a_post_needs_the_form_token_of_its_own_page(manual_runtime: LocalRuntime, api: Api) -> None:
    first = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    second = deliver(manual_runtime, hostile_mail(subject="异响").replace(b"hostile-1@", b"hostile-2@"))
    path, other = link_path(manual_runtime, first, "first_contact"), link_path(manual_runtime, second, "first_contact")
    other_token = api.request("GET", other, headers={"Accept": "application/json"}).json()["form_token"]
    for body, headers in ((b"notes=hello", FORM),
                          (json.dumps({"form_token": "forged", **FIRST_CONTACT}).encode(), JSON),
                          (json.dumps({"form_token": other_token, **FIRST_CONTACT}).encode(), JSON),  # another link's
                          (b"form_token=%ff%fe&notes=%00", FORM),
                          (json.dumps({"form_token": "表单", **FIRST_CONTACT}).encode(), JSON),
                          (json.dumps({"form_token": 12, **FIRST_CONTACT}).encode(), JSON),
                          (json.dumps({"form_token": ["a"], **FIRST_CONTACT}).encode(), JSON)):
        got, text = api.call("POST", path, body, headers)
        assert got == 403, (body[:60], got, text[:200])
    assert open_task(first, "first_contact-1") and open_task(second, "first_contact-1")


def test_a_used_link_answers_410_and_a_replayed_post_changes_nothing(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    path = link_path(manual_runtime, case_no, "first_contact")
    token = api.request("GET", path, headers={"Accept": "application/json"}).json()["form_token"]
    body = json.dumps({**FIRST_CONTACT, "form_token": token}).encode()
    assert api.call("POST", path, body, JSON)[0] == 200
    manual_runtime.clock.settle(30)
    for _ in range(3):  # the same post again: a double click, a replay of a captured request
        got, text = api.call("POST", path, body, JSON)
        assert got == 410, (got, text[:200])
    page = api.request("GET", path, headers={"Accept": "application/json"})
    assert page.status == 410 and page.json()["status"] == "gone"
    done = [e for e in services().store.events(case_no) if e.type == "step_completed" and e.data.get("step") ==
            "first_contact"]
    assert len(done) <= 1 and services().store.get_case(case_no).phase != "first_contact"
    assert sum(1 for e in services().store.events(case_no) if e.type == "step_opened"
               and e.data.get("step") == "investigation") == 1  # decided once


def test_an_expired_link_answers_410(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    url = services().links.issue(case_no=case_no, step="status", task_key=None, recipient=CUSTOMER,
                                 expires_at=manual_runtime.clock.now() + timedelta(minutes=1))
    path = "/" + url.split("/", 3)[3]
    assert api.call("GET", path)[0] == 200
    manual_runtime.clock.advance(120)
    for method, body in (("GET", None), ("POST", b"{}")):
        got, text = api.call(method, path, body, JSON if body else None)
        assert got == 410, (method, got, text[:200])


def test_a_script_hammering_one_link_gets_429(manual_runtime: LocalRuntime, api: Api) -> None:
    case_no = deliver(manual_runtime, hostile_mail(subject="刹车失灵"))
    path = link_path(manual_runtime, case_no, "first_contact")
    statuses = [api.call("GET", path)[0] for _ in range(35)]
    assert statuses[:30] == [200] * 30 and statuses[-1] == 429, statuses
    assert open_task(case_no, "first_contact-1")
