"""The staff API behind its (JWT) claims, and what the handlers log."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from infra.local.http import api_event, recipients_of
from infra.local.runtime import LocalRuntime
from shared.runtime.observability import logger
from tests.conftest import sample


def call(runtime: LocalRuntime, path: str, email: str | None) -> tuple[int, Any]:
    claims: dict[str, object] = {"email": email, "custom:brand": "aurora"} if email else {}
    result = runtime.invoke("staff_api", api_event("GET", path, {"host": "x"}, b"", "127.0.0.1", claims))
    return int(result["statusCode"]), json.loads(result["body"] or "null")


def register(runtime: LocalRuntime, name: str) -> str:
    raw = sample(name)
    return str(runtime.deliver(raw, recipients_of(raw))["case_no"])


def test_staff_see_their_own_place_in_the_tenant(manual_runtime: LocalRuntime) -> None:
    sh = register(manual_runtime, "p01_brake_failure_sh001.eml")
    bj = register(manual_runtime, "p02_wait_time_bj002_gb2312.eml")
    assert manual_runtime.clock.settle()

    status, case = call(manual_runtime, f"/api/cases/{sh}", "cs.sh001@dealers.example")
    assert status == 200 and case["case_no"] == sh and case["phase"] == "first_contact"
    assert {m["name"] for m in case["milestones"]} >= {"acknowledgement", "first_contact", "preliminary_feedback"}
    assert call(manual_runtime, f"/api/cases/{bj}", "cs.sh001@dealers.example")[0] == 404
    assert call(manual_runtime, f"/api/cases/{sh}", "north.region@aurora-motors.example")[0] == 404
    assert call(manual_runtime, f"/api/cases/{bj}", "north.region@aurora-motors.example")[0] == 200
    assert call(manual_runtime, f"/api/cases/{bj}", "cr.center@aurora-motors.example")[0] == 200
    assert call(manual_runtime, f"/api/cases/{sh}", "stranger@mail.example")[0] == 401

    _, listed = call(manual_runtime, "/api/cases", "cs.sh001@dealers.example")
    assert [c["case_no"] for c in listed["cases"]] == [sh]
    _, filtered = call(manual_runtime, "/api/cases?dealer=BJ002", "cs.sh001@dealers.example")
    assert filtered["cases"] == []  # asking for another dealer's list returns nothing of it
    _, everything = call(manual_runtime, "/api/cases", "cr.center@aurora-motors.example")
    assert {c["case_no"] for c in everything["cases"]} == {sh, bj}


def test_logs_carry_no_personal_data_link_ids_or_tokens(manual_runtime: LocalRuntime) -> None:
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logger.registered_formatter)  # the JSON lines CloudWatch would get
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        no = register(manual_runtime, "p01_brake_failure_sh001.eml")
        assert manual_runtime.clock.settle()
    finally:
        logger.setLevel(logging.WARNING)
        logging.getLogger(logger.name).removeHandler(handler)
    out = captured.getvalue()
    assert "mail received" in out and no in out  # the handlers did log
    assert "liu.wei@mail.example" not in out and "LAUR0A1B2C3000001" not in out
    for mail in manual_runtime.outbox.all():
        for link in mail.mail.links:
            assert link["url"].rsplit("/", 1)[1] not in out
