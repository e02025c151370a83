"""Approvals on the warp clock: the authority matrix, reminders, escalation, decisions by link."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.outbox import SentMail
from infra.local.personas import Personas, happy_path
from infra.local.runtime import DEMO_TENANT, LocalConfig, LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import MONDAY_10AM_SHANGHAI, finished, wait_until
from tests.workflow.test_deadlines_workflow import complaint

SH001 = "sh001@complaints.aurora-motors.example"


@pytest.fixture
def three_level_runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    """SH001's own authority matrix (a dealer override of the brand's policy): three levels above ¥5,000."""
    doc = json.loads(DEMO_TENANT.read_text("utf-8"))
    sh001 = next(d for d in doc["dealers"] if d["code"] == "SH001")
    sh001["policy"] = {"approval": {"authority": [
        {"up_to": 1000, "roles": ["service_manager"]},
        {"up_to": 5000, "roles": ["service_manager", "general_manager"]},
        {"up_to": None, "roles": ["service_manager", "general_manager", "regional_manager"]}]}}
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    runtime = LocalRuntime(LocalConfig(clock="warp", start=MONDAY_10AM_SHANGHAI, tenant_file=path)).start()
    yield runtime
    runtime.stop()


@pytest.mark.parametrize(("value", "chain"), [
    ("500", ["service_manager"]),
    ("3000", ["service_manager", "general_manager"]),
    ("12000", ["service_manager", "general_manager", "regional_manager"]),
])
def test_one_two_and_three_approval_levels(three_level_runtime: LocalRuntime, value: str, chain: list[str]) -> None:
    personas = happy_path()
    personas["plan"] = lambda m: {"measures": "Goodwill repair.", "compensation": [{"kind": "money", "value": value}]}
    people = Personas(three_level_runtime, personas)
    no = str(three_level_runtime.deliver(complaint(SH001, "Rattle", "The dashboard rattles."), [SH001])["case_no"])
    wait_until(finished(three_level_runtime, no))
    case = services().store.get_case(no)
    assert [(a.role, a.decision) for a in case.approvals] == [(role, "approve") for role in chain]
    assert [c.step for c in people.clicks].count("approval") == len(chain)
    assert case.phase == "closed"


def test_a_silent_approver_is_reminded_then_passed_over(warp_runtime: LocalRuntime) -> None:
    seen: list[str] = []

    def approval(m: SentMail) -> dict[str, Any] | None:
        seen.append(m.mail.to[0])
        if m.mail.to == ["gm.sh001@dealers.example"]:
            return {"decision": "approve", "comment": "Approved on the service manager's behalf."}
        return None  # the service manager never acts

    personas = happy_path()
    personas["approval"] = approval
    people = Personas(warp_runtime, personas)
    no = str(warp_runtime.deliver(complaint(SH001, "Rattle", "The dashboard rattles."), [SH001])["case_no"])
    wait_until(finished(warp_runtime, no))
    mails = [(m.mail.to[0], m.mail.subject, m.sent_at) for m in warp_runtime.outbox.for_case(no)]
    request = next(t for to, s, t in mails if to == "service.sh001@dealers.example" and "请审批" in s)
    reminder = next(t for to, s, t in mails if to == "service.sh001@dealers.example" and "即将超时" in s)
    escalation = next(t for to, s, t in mails if to == "gm.sh001@dealers.example" and "超时升级" in s)
    assert (reminder - request).days == 1 and (escalation - request).days == 2  # working days: Mon → Tue → Wed
    case = services().store.get_case(no)
    assert case.approvals[0].approver == "gm.sh001@dealers.example" and case.approvals[0].decision == "approve"
    assert "approval_escalated" in [e.type for e in services().store.events(no)]
    # The service manager's original link no longer works: the approval was passed on.
    old = next(m for m in warp_runtime.outbox.for_case(no) if m.mail.to == ["service.sh001@dealers.example"]
               and any(link["step"] == "approval" for link in m.mail.links))
    url = next(link["url"] for link in old.mail.links if link["step"] == "approval")
    click = people.click("approval", url, no, {"decision": "approve"})
    assert click.status == 410


def reply_to(sent: SentMail, sender: str, first_line: str) -> bytes:
    mail = sent.mail
    return (f"From: <{sender}>\r\nTo: {mail.sender}\r\nSubject: Re: {mail.subject}\r\n"
            f"Message-ID: <reply-{abs(hash((sender, first_line, mail.message_id)))}@mail.example>\r\n"
            f"In-Reply-To: {mail.message_id}\r\nReferences: {mail.message_id}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{first_line}\r\n\r\n> {mail.text[:60]}\r\n").encode()


def test_approver_and_customer_decide_by_replying(warp_runtime: LocalRuntime) -> None:
    """The manager answers the approval mail with 同意, the customer the plan mail with ACCEPT:
    the same decision path as a link, accepted only from them and only when SES verified them."""
    import threading

    replies: list[tuple[bytes, dict[str, str]]] = []

    def on_mail(sent: SentMail) -> None:
        steps = {link["step"] for link in sent.mail.links}
        if "approval" in steps and sent.mail.to == ["service.sh001@dealers.example"]:
            # A forged reply first (SPF passing for the forger's own envelope domain, DMARC failing), then the real one.
            replies.append((reply_to(sent, "service.sh001@dealers.example", "同意"),
                            {"spf": "PASS", "dkim": "NONE", "dmarc": "FAIL"}))
            replies.append((reply_to(sent, "service.sh001@dealers.example", "同意 按方案执行"), {}))
        elif "customer_reply" in steps and sent.mail.to == ["customer@mail.example"]:
            replies.append((reply_to(sent, "customer@mail.example", "ACCEPT, thank you"), {}))
        else:
            return
        warp_runtime.clock.hold()  # the person is typing: time waits

        def send() -> None:
            try:
                while replies:
                    raw, verdicts = replies.pop(0)
                    warp_runtime.deliver(raw, ["complaints@aurora-motors.example"], verdicts=verdicts)
            finally:
                warp_runtime.clock.release()
        threading.Thread(target=send).start()

    personas = happy_path()
    del personas["approval"], personas["customer_reply"]
    Personas(warp_runtime, personas)
    warp_runtime.outbox.subscribe(on_mail)
    no = str(warp_runtime.deliver(complaint(SH001, "Rattle", "The dashboard rattles."), [SH001])["case_no"])
    wait_until(finished(warp_runtime, no))
    case = services().store.get_case(no)
    assert case.phase == "closed" and case.approvals[0].decision == "approve"
    assert case.approvals[0].comment == "按方案执行" and case.customer_decision == "accept"
    summaries = [e.summary for e in services().store.events(no) if e.type in ("approval_recorded", "customer_reply_recorded")]
    assert summaries and all(s.endswith("(by reply mail)") for s in summaries)
    refused = [m.mail for m in warp_runtime.outbox.for_case(no) if "未能作为决定" in m.mail.subject]
    assert len(refused) == 1 and "DMARC" in refused[0].text  # the forged one was refused politely
