"""The two high mail attacks of issue 16 replayed on the local runtime, through the path
``POST /_local/inbound`` takes (``LocalRuntime.deliver``: the raw mail in S3 with SES's
Authentication-Results header on top, then the intake function with its SES event), while the
case goes through its lifecycle on the warp clock."""

from __future__ import annotations

import json
import threading
from typing import Any

from infra.local.http import api_event
from infra.local.outbox import SentMail
from infra.local.personas import Personas, happy_path
from infra.local.runtime import LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import finished, wait_until
from tests.workflow.test_approvals_workflow import reply_to
from tests.workflow.test_deadlines_workflow import complaint

SH001 = "sh001@complaints.aurora-motors.example"
APPROVER = "service.sh001@dealers.example"
FORGED = {"spf": "PASS", "dkim": "NONE", "dmarc": "FAIL"}  # the query: spf=PASS&dkim=NONE&dmarc=FAIL


def test_forged_approval_and_a_stranger_in_a_closed_case(warp_runtime: LocalRuntime) -> None:
    results: list[dict[str, object]] = []

    def on_mail(sent: SentMail) -> None:
        if not ({"approval"} & {link["step"] for link in sent.mail.links}) or sent.mail.to != [APPROVER]:
            return
        warp_runtime.clock.hold()  # the forger and the approver are typing: time waits

        def send() -> None:
            try:
                # The forger knows the approval mail's Message-ID (the worst case); SPF passes for
                # its own envelope domain. Then the approver's own reply.
                results.append(warp_runtime.deliver(reply_to(sent, APPROVER, "APPROVE"), [SH001], "x@evil.example",
                                                    FORGED))
                warp_runtime.deliver(reply_to(sent, APPROVER, "同意 按方案执行"), [SH001], APPROVER)
            finally:
                warp_runtime.clock.release()
        threading.Thread(target=send).start()

    personas = happy_path()
    del personas["approval"]
    Personas(warp_runtime, personas)
    warp_runtime.outbox.subscribe(on_mail)
    no = str(warp_runtime.deliver(complaint(SH001, "Rattle", "The dashboard rattles."), [SH001])["case_no"])
    wait_until(finished(warp_runtime, no))
    store = services().store
    case = store.get_case(no)
    # High 1: the forged approval applied nothing; the approver's verified reply decided.
    assert results and results[0]["disposition"] == "append_to_case"
    assert [a.decision for a in case.approvals] == ["approve"] and case.approvals[0].comment == "按方案执行"
    refused = [e for e in store.events(no) if e.type == "decision_by_mail_refused"]
    assert [e.data["problem"] for e in refused] == ["unverified"]

    # High 2: a stranger, every verdict FAIL, names the closed case in the subject.
    assert case.phase == "closed"
    sent_before = len(warp_runtime.outbox.all())
    stranger = (f"From: <stranger@evil.example>\r\nTo: {SH001}\r\nSubject: Re: [{no}] 还是不行\r\n"
                "Message-ID: <stranger-1@evil.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                "刹车失灵，差点出事故，我要找媒体曝光\r\n").encode()
    result = warp_runtime.deliver(stranger, [SH001], "stranger@evil.example",
                                  {"spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL", "spam": "PASS"})
    assert result == {"disposition": "third_party_note", "case_no": no}
    warp_runtime.clock.settle(10)
    after = store.get_case(no)
    assert after.phase == "closed" and after.cycle == case.cycle  # not re-opened: no follow-up execution
    assert after.classification.severity == case.classification.severity and not after.classification.safety
    assert len(warp_runtime.outbox.all()) == sent_before  # no alert to the GM or the brand, no reply
    note = [e for e in store.events(no) if e.type == "third_party_note"]
    assert len(note) == 1 and "unverified sender" in note[0].summary


def _api(runtime: LocalRuntime, method: str, path: str, email: str) -> tuple[int, Any]:
    event = api_event(method, path, {"host": "x"}, b"", "127.0.0.1", {"email": email, "custom:brand": "aurora"})
    result = runtime.invoke("staff_api", event)
    return int(result["statusCode"]), json.loads(result["body"] or "null")


def test_staff_promote_a_note_through_the_api_within_their_scope(manual_runtime: LocalRuntime) -> None:
    first = complaint(SH001, "Rattle", "The dashboard rattles.")
    no = str(manual_runtime.deliver(first, [SH001])["case_no"])
    # The customer's own address, unverified, naming only the case: a note, with its note_id for staff.
    note_mail = (f"From: <customer@mail.example>\r\nTo: {SH001}\r\nSubject: [{no}] photo\r\n"
                 "Message-ID: <note-1@mail.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nA photo.\r\n").encode()
    assert manual_runtime.deliver(note_mail, [SH001], "customer@mail.example",
                                  {"spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL"})["disposition"] == "third_party_note"
    status, case = _api(manual_runtime, "GET", f"/api/cases/{no}", "cs.sh001@dealers.example")
    [entry] = [e for e in case["timeline"] if e["type"] == "third_party_note"]
    path = f"/api/cases/{no}/messages/{entry['note_id']}/promote"
    assert _api(manual_runtime, "POST", path, "cs.bj002@dealers.example")[0] == 404  # another dealer's staff
    assert _api(manual_runtime, "POST", f"/api/cases/{no}/messages/0000000000000000/promote",
                "cs.sh001@dealers.example")[0] == 404
    status, body = _api(manual_runtime, "POST", path, "cs.sh001@dealers.example")
    assert status == 200 and body["kind"] == "customer_mail"
    promoted = [e for e in services().store.events(no) if e.type == "third_party_promoted"]
    assert [e.actor for e in promoted] == ["cs.sh001@dealers.example"]
