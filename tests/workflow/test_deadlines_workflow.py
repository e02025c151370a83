"""Deadlines on the dealer's working-day calendar, on the warp clock: the escalation
fires at the exact due time, across make-up working days, the Spring Festival and
another country's holidays and timezone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.outbox import SentMail
from infra.local.personas import Personas, happy_path
from infra.local.runtime import DEMO_TENANT, LocalConfig, LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import wait_until


def complaint(to: str, subject: str, body: str, sender: str = "customer@mail.example") -> bytes:
    return (f"From: A Customer <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash((to, subject, body)))}@mail.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"\r\n{body}\r\n").encode()


def sent_on_time(sent_at: datetime | None, due_at: datetime) -> bool:
    """The timer fires at the deadline itself; the mail leaves while its handler runs, which on
    the warp clock takes real (if busy, loaded-machine) time."""
    return sent_at is not None and timedelta(0) <= sent_at - due_at < timedelta(seconds=10)


def plan_ignored() -> dict[str, Any]:
    """Everyone acts at once, except that nobody proposes a plan: its deadline breaches."""
    personas: dict[str, Any] = happy_path()
    personas["plan"] = lambda m: None
    return personas


def first_breach(runtime: LocalRuntime, no: str, step_words: str = "") -> SentMail | None:
    """The first escalation mail of a case (for a step, when its name is given)."""
    return next((m for m in runtime.outbox.for_case(no)
                 if "超时升级" in m.mail.subject and step_words in m.mail.subject), None)


def run_until_breach(runtime: LocalRuntime, raw: bytes, recipient: str) -> tuple[str, SentMail]:
    Personas(runtime, plan_ignored())
    result = runtime.deliver(raw, [recipient])
    assert result["disposition"] == "new_case", result
    no = str(result["case_no"])
    wait_until(lambda: first_breach(runtime, no, "制定处理方案") is not None, 60)
    late = first_breach(runtime, no, "制定处理方案")
    assert late is not None
    return no, late


@pytest.fixture
def runtime_at(request: pytest.FixtureRequest) -> Iterator[LocalRuntime]:
    start, tenant = request.param
    runtime = LocalRuntime(LocalConfig(clock="warp", start=start, tenant_file=tenant)).start()
    yield runtime
    runtime.stop()


@pytest.mark.parametrize("runtime_at", [(datetime(2026, 9, 30, 9, 30, tzinfo=UTC), DEMO_TENANT)], indirect=True)
def test_three_working_days_end_on_a_make_up_saturday(runtime_at: LocalRuntime) -> None:
    raw = complaint("bj002@complaints.aurora-motors.example", "服务顾问态度差，等待时间太长",
                    "上周保养等了四个小时，服务顾问态度很差，没有人解释原因。")
    no, late = run_until_breach(runtime_at, raw, "bj002@complaints.aurora-motors.example")
    case = services().store.get_case(no)
    solution = case.milestone("solution")
    assert case.classification.severity == "general" and solution is not None
    assert solution.due_at == datetime(2026, 10, 10, 9, 30, tzinfo=UTC)  # Saturday 17:30 in Shanghai
    assert sent_on_time(late.sent_at, solution.due_at) and solution.breached
    assert late.mail.to == ["service.bj002@dealers.example"]
    # While nothing reaches the customer, they hear from us every 2 working days: the last mail
    # went out on Wed 30 Sep; the National Day holiday (1-7 Oct) does not count: +1 = Thu 8, +2 = Fri 9 Oct.
    updates = [m.sent_at for m in runtime_at.outbox.for_case(no) if m.mail.subject.endswith("您的投诉处理进度")]
    assert updates[:1] == [datetime(2026, 10, 9, 9, 30, tzinfo=UTC)]


@pytest.mark.parametrize("runtime_at", [(datetime(2026, 2, 13, 2, 0, tzinfo=UTC), DEMO_TENANT)], indirect=True)
def test_a_major_case_across_the_spring_festival(runtime_at: LocalRuntime) -> None:
    raw = complaint("hz005@complaints.aurora-motors.example", "交车延迟，要求赔偿",
                    "合同约定1月交车，拖到现在还没交车，我要求按合同支付违约金并赔偿4200元。")
    no, late = run_until_breach(runtime_at, raw, "hz005@complaints.aurora-motors.example")
    case = services().store.get_case(no)
    result = case.milestone("result")
    assert case.classification.severity == "major" and result is not None
    # +1 = Sat 14 Feb (make-up day), then the holiday 15-23 Feb, +2..+5 = 24..27 Feb.
    assert result.due_at == datetime(2026, 2, 27, 2, 0, tzinfo=UTC)
    assert sent_on_time(late.sent_at, result.due_at)


@pytest.fixture
def german_tenant(tmp_path: Path) -> Path:
    doc = json.loads(DEMO_TENANT.read_text("utf-8"))
    doc["dealers"].append({
        "code": "BE006", "name": "Aurora Berlin Mitte", "city": "Berlin", "region": "west",
        "country": "DE", "subdivision": "BE", "timezone": "Europe/Berlin",
        "address": "be006@complaints.aurora-motors.example",
        "staff": [{"email": "cs.be006@dealers.example", "name": "Anna Weber", "role": "cs_head"},
                  {"email": "service.be006@dealers.example", "name": "Jonas Becker", "role": "service_manager"},
                  {"email": "gm.be006@dealers.example", "name": "Lena Schulz", "role": "general_manager"}]})
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    return path


def test_a_dealer_in_another_country_and_timezone(german_tenant: Path) -> None:
    runtime = LocalRuntime(LocalConfig(clock="warp", start=datetime(2026, 12, 23, 15, 0, tzinfo=UTC),
                                       tenant_file=german_tenant)).start()
    try:
        raw = complaint("be006@complaints.aurora-motors.example", "Rude staff and a long wait",
                        "I waited four hours for a routine service and nobody explained why.")
        no, late = run_until_breach(runtime, raw, "be006@complaints.aurora-motors.example")
        case = services().store.get_case(no)
        solution = case.milestone("solution")
        assert solution is not None
        # Wed 23 Dec 16:00 in Berlin + 3 working days: 24 Dec, (25/26 Dec holidays, weekend), 28, 29 Dec.
        assert solution.due_at == datetime(2026, 12, 29, 15, 0, tzinfo=UTC)
        assert sent_on_time(late.sent_at, solution.due_at) and late.mail.to == ["service.be006@dealers.example"]
        assert case.milestone("first_contact").due_at == datetime(2026, 12, 23, 16, 0, tzinfo=UTC)  # type: ignore[union-attr]
    finally:
        runtime.stop()


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_an_extension_moves_the_deadline_only_if_the_customer_agrees(warp_runtime: LocalRuntime, answer: str) -> None:
    asked: list[str] = []

    def plan(m: SentMail) -> dict[str, Any] | None:
        if asked:
            return None  # after asking, nobody proposes a plan: the deadline (old or new) breaches
        asked.append("yes")
        return {"intent": "extension", "reason": "The new harness comes from the factory next week.",
                "until": "2026-12-03T18:00"}

    personas: dict[str, Any] = happy_path()
    personas["plan"] = plan
    personas["extension_consent"] = lambda m: {"decision": answer}
    people = Personas(warp_runtime, personas)
    raw = complaint("sh001@complaints.aurora-motors.example", "Dashboard rattle", "The dashboard rattles on rough roads.")
    no = str(warp_runtime.deliver(raw, ["sh001@complaints.aurora-motors.example"])["case_no"])
    wait_until(lambda: first_breach(warp_runtime, no) is not None, 60)
    late = first_breach(warp_runtime, no)
    case = services().store.get_case(no)
    solution = case.milestone("solution")
    assert solution is not None and late is not None
    if answer == "accept":
        assert solution.due_at == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
        assert solution.original_due_at == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    else:
        assert solution.due_at == datetime(2026, 11, 26, 2, 0, tzinfo=UTC) and solution.original_due_at is None
    assert sent_on_time(late.sent_at, solution.due_at)
    assert [c.status for c in people.clicks if c.step == "extension_consent"] == [200]
    assert case.extensions[0].answer == answer
