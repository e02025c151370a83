"""The review queue on the local runtime (moto): a possible safety risk and a low-confidence category
through intake (their classification written over what the classifier said), the queue from the
index, the console's one-POST decisions (CSRF-protected, brand CR only), the staff API route, the
counts in the monthly report and ``complaints corrections export``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from infra.local import cli
from infra.local.http import LocalHttpServer, api_event
from infra.local.runtime import LocalRuntime
from infra.local.settings import LocalSettings
from infra.local.tokens import LocalSessions
from shared.complaints.lifecycle import Ctx
from shared.complaints.models import Evidence
from shared.runtime import wiring
from shared.runtime.wiring import services
from tests.integration.test_console import CR, CS_SH001, GM_SH001, Browser, api, register, runtime  # noqa: F401

BRAKES = Evidence(kind="safety:brakes", phrase="刹车踩到底", weight=0.6)


def post_api(rt: LocalRuntime, path: str, email: str, body: dict[str, Any]) -> tuple[int, Any]:
    result = rt.invoke("staff_api", api_event("POST", path, {"host": "x", "content-type": "application/json"},
                                              json.dumps(body).encode(), "127.0.0.1",
                                              {"email": email, "custom:brand": "aurora"}))
    return int(result["statusCode"]), json.loads(result["body"] or "null")


def flag_possible_safety(no: str) -> None:
    """What the classifier decides when it is not sure of a safety risk (its own tests say when)."""
    def change(ctx: Ctx) -> None:
        cls = ctx.case.classification
        cls.possible_safety, cls.safety, cls.severity, cls.media_or_regulator = True, True, "critical", False
        cls.evidence = [BRAKES]
    services().lifecycle.mutate(no, change)


def unsure_of_category(no: str) -> None:
    def change(ctx: Ctx) -> None:
        ctx.case.classification.confidence = 0.35
        ctx.case.classification.evidence = [Evidence(kind="category:price", phrase="多收了工时费")]
    services().lifecycle.mutate(no, change)


@pytest.fixture
def queued(runtime: LocalRuntime) -> tuple[str, str]:  # noqa: F811 - the console tests' runtime
    safety = register(runtime, "p01_brake_failure_sh001.eml")
    unsure = register(runtime, "p23_big5_maintenance_price_sh001.eml")
    flag_possible_safety(safety)
    unsure_of_category(unsure)
    return safety, unsure


def test_queue_lists_both_oldest_first_and_only_for_the_brand_cr(runtime: LocalRuntime,  # noqa: F811
                                                                  queued: tuple[str, str]) -> None:
    safety, unsure = queued
    status, body = api(runtime, "/api/review", CR)
    assert status == 200
    assert [(e["case_no"], e["reasons"]) for e in body["entries"]] == [(safety, ["possible_safety"]),
                                                                       (unsure, ["low_confidence"])]
    assert body["entries"][0]["evidence"] == ["刹车踩到底"]
    assert api(runtime, "/api/review", CS_SH001)[0] == 403
    # The flag shows where severity shows for staff: the list, the case page, the API's list.
    cs = Browser(runtime).sign_in_as(CS_SH001)
    listed = cs.request("GET", "/console/cases")
    assert listed.status == 200 and "可能存在安全隐患——请确认" in listed.body
    page = cs.request("GET", f"/console/cases/{safety}")
    assert "可能存在安全隐患——请确认" in page.body and "刹车踩到底" in page.body
    assert f"/console/cases/{safety}/safety-review" not in page.body  # dealer staff see it, cannot decide it
    status, cases = api(runtime, "/api/cases", CS_SH001)
    assert {c["case_no"]: c["possible_safety"] for c in cases["cases"]}[safety] is True


def test_console_decides_each_row_in_one_post(runtime: LocalRuntime, queued: tuple[str, str]) -> None:  # noqa: F811
    safety, unsure = queued
    cr = Browser(runtime).sign_in_as(CR)
    page = cr.request("GET", "/console/review")
    assert page.status == 200 and safety in page.body and unsure in page.body and "多收了工时费" in page.body
    path = f"/console/review/{safety}/safety"
    assert cr.request("POST", path, {"decision": "dismiss"}).status == 403  # no CSRF token
    assert cr.request("POST", path, {"decision": "dismiss", "csrf": page.csrf()},
                      origin="https://evil.example").status == 403
    gm = Browser(runtime).sign_in_as(GM_SH001)
    gm_page = gm.request("GET", f"/console/cases/{safety}")
    assert gm.request("POST", path, {"decision": "dismiss", "csrf": gm_page.csrf()}).status == 403
    done = cr.request("POST", path, {"decision": "dismiss", "csrf": page.csrf()})
    assert done.status == 303 and done.location == "/console/review?done=safety"
    case = services().store.get_case(safety)
    assert (case.classification.safety_review, case.classification.safety, case.classification.severity) == (
        "dismissed", False, "general")
    assert any(e.type == "safety_reviewed" and e.actor == CR for e in services().store.events(safety))

    moved = cr.request("POST", f"/console/review/{unsure}/category", {"category": "service", "csrf": page.csrf()})
    assert moved.status == 303
    settled = services().store.get_case(unsure).classification
    assert settled.category == "service" and settled.category_reviewed
    after = cr.request("GET", "/console/review?done=category")
    assert safety not in after.body and unsure not in after.body and "没有待复核的案件" in after.body

    month = services().clock.now().strftime("%Y-%m")
    report = runtime.invoke("reports", api_event("GET", f"/api/reports/{month}?format=json", {"host": "x"}, b"",
                                                 "127.0.0.1", {"email": CR, "custom:brand": "aurora"}))
    corrections = {r["key"]: r["value"] for r in json.loads(report["body"])["corrections"]}
    assert corrections["safety_dismissed"] == 1 and corrections["corrected"] == 2


def test_api_safety_review_is_the_brand_crs_and_decides_once(runtime: LocalRuntime,  # noqa: F811
                                                             queued: tuple[str, str]) -> None:
    safety, _ = queued
    path = f"/api/cases/{safety}/safety-review"
    assert post_api(runtime, path, GM_SH001, {"decision": "confirm"})[0] == 403
    assert post_api(runtime, path, CR, {"decision": "maybe"})[0] == 400
    status, body = post_api(runtime, path, CR, {"decision": "confirm", "note": "called the customer"})
    assert status == 200 and body["safety_review"] == "confirmed" and body["possible_safety"] is False
    assert body["severity"] == "critical"
    assert post_api(runtime, path, CR, {"decision": "dismiss"})[0] == 409
    assert [e["case_no"] for e in api(runtime, "/api/review", CR)[1]["entries"]] != [safety]


@pytest.fixture
def http(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHttpServer]:  # noqa: F811
    server = LocalHttpServer(runtime, LocalSettings(http_port=0, smtp_port=0)).start()
    monkeypatch.setenv("COMPLAINTS_HTTP_PORT", str(server.server.server_address[1]))
    yield server
    server.stop()


def test_a_correction_made_in_the_console_comes_out_of_the_export(http: LocalHttpServer, queued: tuple[str, str],
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    safety, unsure = queued
    cr = Browser(http.runtime)
    token = LocalSessions(http.settings.token_secret).token_for_email(CR, "aurora")  # the server's own sessions
    assert token
    cr.jar["console_session"] = token
    page = cr.request("GET", "/console/review")
    cr.request("POST", f"/console/review/{unsure}/category", {"category": "service", "csrf": page.csrf()})
    cli.main(["corrections", "export", str(tmp_path / "out"), "--since", services().clock.now().strftime("%Y-%m")])
    assert "1 labelled examples" in capsys.readouterr().out
    labels = json.loads((tmp_path / "out" / "labels.json").read_text("utf-8"))
    assert [label["file"] for label in labels] == [f"{unsure}.eml"]
    [label] = labels
    assert label["category"] == "service" and label["tags"] == ["correction"]
    assert label["why"].startswith("corrected by brand_cr on ") and label["why"].endswith(": category")
    assert set(label) == {"file", "category", "severity", "safety", "media_or_regulator", "language", "tags", "why"}
    raw = (tmp_path / "out" / f"{unsure}.eml").read_bytes()
    case = services().store.get_case(unsure)
    assert case.raw_mail_key and raw == services().blobs.get(case.raw_mail_key)  # the mail as received
    assert message_from_bytes(raw)["Subject"]
    # Nobody else exports; a month in the future has nothing.
    with pytest.raises(SystemExit):
        cli.main(["corrections", "export", str(tmp_path / "cs"), "--as", CS_SH001])
    cli.main(["corrections", "export", str(tmp_path / "later"), "--since", "2099-01"])
    assert json.loads((tmp_path / "later" / "labels.json").read_text("utf-8")) == []
    assert safety  # reviewed by nobody yet: not an example


def test_an_older_version_never_puts_back_an_entry_a_newer_one_removed(runtime: LocalRuntime,  # noqa: F811
                                                                        queued: tuple[str, str]) -> None:
    safety, _ = queued
    store = wiring.case_store()
    waiting = store.get_case(safety)  # as a slow writer read it: still waiting for review
    assert post_api(runtime, f"/api/cases/{safety}/safety-review", CR, {"decision": "confirm"})[0] == 200
    assert safety not in [e.case_no for e in store.review_queue("aurora")]
    store._keep_review_entry(waiting, None)  # its queue write arrives after the newer one's
    assert safety not in [e.case_no for e in store.review_queue("aurora")]
    # A later version that waits again is listed again (the condition is on the version, not a one-way door).
    case = store.get_case(safety)
    again = case.model_copy(update={"classification": case.classification.model_copy(
        update={"possible_safety": True, "safety_review": None})})
    store.save_case(again)
    assert safety in [e.case_no for e in store.review_queue("aurora")]
