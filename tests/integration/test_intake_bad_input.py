"""One test per kind of bad input of issue #3 (items 1-4): what intake does with it, and
that the raw mail is kept unchanged and referenced from whatever the mail became.

The intake service runs on the in-memory ports (``tests/fakes.py``): every kind is a
few milliseconds, and the labelled samples cover the AWS adapters on moto."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import tracemalloc
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.complaints.intake import InboundMail, Intake, IntakeResult, SesVerdicts
from shared.complaints.lifecycle import Lifecycle
from shared.complaints.models import Case, Classification, Customer, MailMessage
from tests.fakes import Domain, MemoryBlobs, demo_tenant_doc

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
SH001 = "sh001@complaints.aurora-motors.example"
BRAKES = "我的车刹车有异响，去店里两次了还没修好。"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def mail(*headers: str, body: bytes | str = BRAKES) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return "\r\n".join(headers).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + data


def headers(sender: str = "li.na@mail.example", subject: str = "刹车异响", message_id: str | None = None,
            *extra: str) -> tuple[str, ...]:
    return (f"From: {sender}", f"To: {SH001}", f"Subject: {subject}", "Date: Mon, 23 Nov 2026 09:30:00 +0800",
            f"Message-ID: <{message_id or os.urandom(6).hex()}@mail.example>", *extra)


class Harness:
    def __init__(self, lifecycle: type[Lifecycle] = Lifecycle, blobs: MemoryBlobs | None = None) -> None:
        self.d = Domain(NOW)
        self.blobs = blobs or self.d.blobs
        self.lifecycle = lifecycle(self.d.store, self.d.workflow, self.d.clock, self.d.links, self.d.notifier)
        self.intake = Intake(self.d.store, self.blobs, self.d.workflow, self.d.clock, self.lifecycle)
        self.count = 0

    def deliver(self, raw: bytes, *, to: Iterable[str] = (SH001,), verdicts: SesVerdicts | None = None,
                envelope: str | None = None, ses_id: str | None = None) -> IntakeResult:
        self.count += 1
        ses_id = ses_id or f"ses-{self.count}"
        key = f"raw/{ses_id}"
        self.blobs.put(key, raw)
        result = self.intake.receive(InboundMail(ses_id, key, list(to), verdicts or SesVerdicts(), envelope, NOW))
        assert self.blobs.get(key) == raw, "the raw mail is kept unchanged"
        assert key in self.raw_keys_of(result), "what the mail became points at the raw mail"
        return result

    def raw_keys_of(self, result: IntakeResult) -> set[str]:
        store = self.d.store
        if result.held_id:
            held = store.held_mail("aurora", result.held_id)
            return {held.raw_key} if held else set()
        if result.case_no is None:
            return {r.raw_key for r in store.inbound.values() if r.raw_key}
        case = store.get_case(result.case_no)
        return {case.raw_mail_key or "", *(str(e.data.get("raw_key")) for e in store.events(result.case_no))}

    def case(self, result: IntakeResult) -> Case:
        assert result.case_no is not None, result
        return self.d.store.get_case(result.case_no)

    def sent_to(self, address: str) -> list[Any]:
        return self.d.mailer.to(address)

    def summaries(self, case_no: str) -> str:
        return "\n".join(f"{e.type}: {e.summary}" for e in self.d.store.events(case_no))


@pytest.fixture
def h() -> Harness:
    return Harness()


# --- item 1: parsing that never crashes and never loses ---------------------------------

def test_gb2312_label_on_gbk_bytes_is_read_as_gb18030(h: Harness) -> None:
    raw = mail(f"From: =?gb2312?B?{b64('张喆'.encode('gbk'))}?= <zhangzhe@mail.example>", f"To: {SH001}",
               f"Subject: =?gb2312?B?{b64('张喆：交车延迟'.encode('gbk'))}?=", 'Content-Type: text/plain; charset="gb2312"',
               body="我叫张喆，交车晚了半个月。".encode("gbk"))
    case = h.case(h.deliver(raw))
    assert (case.customer.name, case.subject) == ("张喆", "张喆：交车延迟")
    assert "张喆" in case.description
    assert "charset gb2312 decoded as gb18030" in h.summaries(case.case_no)  # flagged for staff


def test_big5_label_is_read_as_big5_hkscs(h: Harness) -> None:
    raw = mail(*headers(), "Content-Type: text/plain; charset=big5",
               body="本人陳志明，車機經常當機，藍牙連不上。喆".encode("big5hkscs"))
    case = h.case(h.deliver(raw))
    assert "車機經常當機" in case.description and "喆" in case.description
    assert case.language == "zh-Hant"


@pytest.mark.parametrize(("label", "body", "flag"), [
    ("gb2312", "方向盘突然很沉，请尽快联系我。".encode(), "charset gb2312 declared, decoded as utf-8"),  # a lying label
    ("x-made-up", "我的车漏水了，天窗一直滴水。".encode("gb18030"), "unknown charset x-made-up"),
    ("iso-8859-1", "车门关不严，下雨天漏水。".encode("gbk"), "charset iso-8859-1 declared, decoded as gb18030"),
], ids=["utf-8 labelled gb2312", "unknown label", "gbk labelled latin-1"])
def test_unknown_or_lying_charset_label_is_detected_and_flagged(h: Harness, label: str, body: bytes, flag: str) -> None:
    case = h.case(h.deliver(mail(*headers(), f"Content-Type: text/plain; charset={label}", body=body)))
    assert case.description == body.decode("utf-8" if label == "gb2312" else "gb18030")
    assert flag in h.summaries(case.case_no)


def test_rfc2047_subject_and_name_and_rfc2231_filename(h: Harness) -> None:
    raw = mail(f"From: =?utf-8?B?{b64('刘伟'.encode())}?= <liu.wei@mail.example>", f"To: {SH001}",
               f"Subject: =?utf-8?Q?=E5=88=B9=E8=BD=A6?= =?utf-8?B?{b64('失灵'.encode())}?=", "MIME-Version: 1.0",
               'Content-Type: multipart/mixed; boundary="b"',
               body=("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n刹车踩到底没反应。\r\n--b\r\n"
                     "Content-Type: image/jpeg\r\nContent-Disposition: attachment; "
                     "filename*=utf-8''%E7%8E%B0%E5%9C%BA%E7%85%A7%E7%89%87.jpg\r\n"
                     f"Content-Transfer-Encoding: base64\r\n\r\n{b64(b'jpeg-bytes')}\r\n--b--\r\n"))
    case = h.case(h.deliver(raw))
    assert (case.customer.name, case.subject) == ("刘伟", "刹车失灵")
    assert [a.filename for a in h.d.store.attachments(case.case_no)] == ["现场照片.jpg"]


def test_html_only_mail_becomes_clean_text_without_remote_fetches(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("intake fetched something remote")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    html = ('<html><head><style>p{color:red}</style><script>alert("x")</script></head><body>'
            '<p>My car smells of burning plastic near the battery.</p><img src="https://tracker.example/p.gif">'
            '<p>Please call me.<br>John</p></body></html>')
    case = h.case(h.deliver(mail(*headers(), "Content-Type: text/html; charset=utf-8", body=html)))
    assert case.description == "My car smells of burning plastic near the battery.\n\nPlease call me.\nJohn"
    assert case.classification.severity == "critical"


def test_multipart_alternative_inside_mixed(h: Harness) -> None:
    raw = mail(*headers(), "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="outer"',
               body=("--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
                     f"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{BRAKES}\r\n"
                     "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML version</p>\r\n--inner--\r\n"
                     "--outer\r\nContent-Type: application/pdf; name=\"bill.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                     f"{b64(b'%PDF-1.4 bill')}\r\n--outer--\r\n"))
    case = h.case(h.deliver(raw))
    assert case.description == BRAKES
    assert [(a.filename, a.content_type, a.size) for a in h.d.store.attachments(case.case_no)] == [
        ("bill.pdf", "application/pdf", 13)]


def test_attachments_are_stored_with_safe_names_recorded_size_and_type(h: Harness) -> None:
    payload = os.urandom(3000)
    raw = mail(*headers(), 'Content-Type: multipart/mixed; boundary="b"',
               body=(f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{BRAKES}\r\n--b\r\n"
                     'Content-Type: application/octet-stream; name="x"\r\n'
                     'Content-Disposition: attachment; filename="../../etc/pass\u202ewd<1>.exe"\r\n'
                     f"Content-Transfer-Encoding: base64\r\n\r\n{b64(payload)}\r\n--b--\r\n"))
    case = h.case(h.deliver(raw))
    [stored] = h.d.store.attachments(case.case_no)
    assert stored.filename == "passwd_1_.exe"
    assert (stored.size, stored.content_type, stored.sha256) == (3000, "application/octet-stream",
                                                                hashlib.sha256(payload).hexdigest())
    assert stored.key == "attachments/ses-1/01.exe" and h.blobs.get(stored.key) == payload


def test_headers_that_make_pythons_parser_raise_are_read_one_by_one(h: Harness) -> None:
    raw = mail("From: Li Na <li.na@mail.example>", "To: a@[1.2.3", "Cc: =?x?q??=", "Subject: 刹车异响",
               "Date: Mon, 23 Nov 2026 09:30:00 +0800", "Message-ID: <odd-headers@mail.example>")
    case = h.case(h.deliver(raw))
    assert (case.customer.email, case.subject, case.dealer) == ("li.na@mail.example", "刹车异响", "SH001")


def test_missing_date_uses_receipt_time_and_missing_from_uses_the_envelope(h: Harness) -> None:
    raw = mail("From: =?utf-8?B?5byg5pWP?=", f"To: {SH001}", "Subject: 刹车异响", "Message-ID: <no-date@mail.example>")
    case = h.case(h.deliver(raw, envelope="zhang.min@mail.example"))
    assert (case.customer.email, case.received_at) == ("zhang.min@mail.example", NOW)
    nobody = h.deliver(mail("Subject: 刹车异响", f"To: {SH001}"))
    assert nobody.disposition == "quarantine_malformed" and nobody.case_no is None


def test_nul_and_invalid_bytes_are_removed_or_repaired(h: Harness) -> None:
    body = "后车窗升降器有异响".encode() + b"\x00" + "（附件".encode("gbk") + b"\xff" + "稍后补发）".encode()
    case = h.case(h.deliver(mail(*headers(), "Content-Type: text/plain; charset=utf-8", body=body)))
    assert "\x00" not in case.description and "后车窗升降器有异响（附件" in case.description
    assert "invalid bytes replaced" in h.summaries(case.case_no)


def test_a_dashcam_video_is_stored_without_holding_the_mail_in_memory() -> None:
    class Sink(MemoryBlobs):
        """Keeps what intake writes in parts as a digest: the test measures intake, not the store."""

        def put_chunks(self, key: str, chunks: Iterable[bytes], content_type: str = "") -> None:
            digest = hashlib.sha256()
            for chunk in chunks:
                digest.update(chunk)
            self.put(key, digest.digest(), content_type)

    h = Harness(blobs=Sink())
    video = os.urandom(30 * 1024 * 1024)
    raw = mail(*headers(), 'Content-Type: multipart/mixed; boundary="v"',
               body=("--v\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n仪表台异响，视频见附件。\r\n--v\r\n"
                     'Content-Type: video/mp4; name="dashcam.mp4"\r\nContent-Transfer-Encoding: base64\r\n\r\n').encode()
               + base64.encodebytes(video).replace(b"\n", b"\r\n") + b"--v--\r\n")
    tracemalloc.start()
    try:
        case = h.case(h.deliver(raw))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    [stored] = h.d.store.attachments(case.case_no)
    assert (stored.filename, stored.size, stored.sha256) == ("dashcam.mp4", len(video), hashlib.sha256(video).hexdigest())
    assert h.blobs.get(stored.key) == hashlib.sha256(video).digest()
    assert case.description == "仪表台异响，视频见附件。"
    assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.1f} MB held for a {len(raw) / 2**20:.0f} MB mail"


# --- item 2: dispositions ----------------------------------------------------------------

@pytest.mark.parametrize("marker", [
    ("Auto-Submitted: auto-replied",), ("X-Autoreply: yes",), ("X-Autorespond: yes",), ("Precedence: auto_reply",),
])
def test_auto_replies_are_ignored_and_never_answered(h: Harness, marker: tuple[str]) -> None:
    result = h.deliver(mail(*headers("ooo@corp.example"), *marker))
    assert result.disposition == "ignore_auto_reply" and result.case_no is None
    assert h.d.mailer.sent == [] and h.d.workflow.started == {}


@pytest.mark.parametrize("subject", ["自动回复: [AUR-SH001-202611-00001] 您的投诉已受理", "自動回覆：休假中",
                                     "Out of Office: back on Monday", "Automatic reply: Your complaint"])
def test_auto_reply_subjects_with_an_absence_notice_are_ignored(h: Harness, subject: str) -> None:
    absence = "我11月12日至16日休假，期间无法及时查看邮件。 I am away until Monday with no access to mail."
    assert h.deliver(mail(*headers("ooo@corp.example", subject), body=absence)).disposition == "ignore_auto_reply"
    assert h.d.mailer.sent == []


@pytest.mark.parametrize("subject", ["Out of office again: nobody repaired my brakes", "自动回复？我的车刹车还是异响"])
def test_a_subject_alone_never_drops_a_complaint(h: Harness, subject: str) -> None:
    """Issue 15: a real complaint whose subject began with out-of-office-like words was dropped."""
    body = f"{BRAKES}\nThe dealer keeps sending automatic replies and never calls back. 刹车问题第三次了。"
    result = h.deliver(mail(*headers("li.na@mail.example", subject), body=body))
    assert result.disposition == "new_case"
    assert h.case(result).customer.email == "li.na@mail.example"


def test_a_long_mail_under_an_auto_reply_subject_is_not_an_auto_reply(h: Harness) -> None:
    long_notice = "Thank you for your message. " * 40  # no complaint words, but no absence notice is this long
    assert h.deliver(mail(*headers("a@corp.example", "Auto reply: info"), body=long_notice)).disposition == "new_case"


def test_bounces_are_ignored(h: Harness) -> None:
    raw = mail("From: MAILER-DAEMON@mx.mail.example", f"To: {SH001}", "Subject: Undelivered Mail Returned to Sender",
               'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
               body=("--r\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n--r\r\n"
                     "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
                     "Final-Recipient: rfc822; x@mail.example\r\nAction: failed\r\nStatus: 5.1.1\r\n--r--\r\n"))
    assert h.deliver(raw).disposition == "ignore_bounce" and h.d.mailer.sent == []


@pytest.mark.parametrize("marker", [("List-Id: <owners.autofans.example>",), ("Precedence: bulk",),
                                    ("List-Unsubscribe: <mailto:leave@autofans.example>",)])
def test_bulk_and_list_mail_is_ignored(h: Harness, marker: tuple[str]) -> None:
    assert h.deliver(mail(*headers("weekly@autofans.example"), *marker)).disposition == "ignore_bulk"
    assert h.d.mailer.sent == []


@pytest.mark.parametrize("marker", [("From: care@aurora-motors.example",), ("X-Case-Number: AUR-SH001-202611-00001",)])
def test_our_own_mail_looping_back_is_dropped(h: Harness, marker: tuple[str]) -> None:
    result = h.deliver(mail(*marker, f"To: {SH001}", "Subject: [AUR-SH001-202611-00001] 我们已收到您的投诉"))
    assert (result.disposition, result.detail) == ("ignore_auto_reply", "our own mail came back")
    assert h.d.mailer.sent == []


@pytest.mark.parametrize(("verdicts", "disposition"), [(SesVerdicts(spam="FAIL"), "quarantine_spam"),
                                                       (SesVerdicts(virus="FAIL"), "quarantine_virus")])
def test_ses_spam_or_virus_fail_is_quarantined_where_staff_see_it(h: Harness, verdicts: SesVerdicts,
                                                                  disposition: str) -> None:
    result = h.deliver(mail(*headers()), verdicts=verdicts)
    assert result.disposition == disposition and h.d.mailer.sent == []
    [held] = h.d.store.list_held("aurora")
    assert (held.held_id, held.disposition, held.sender, held.status) == (
        result.held_id, disposition, "li.na@mail.example", "held")


def test_the_same_ses_message_or_message_id_twice_is_a_duplicate(h: Harness) -> None:
    raw = mail(*headers(message_id="once"))
    first = h.deliver(raw, ses_id="ses-a")
    assert h.deliver(raw, ses_id="ses-a") == IntakeResult("duplicate", first.case_no, "same SES message delivered again")
    again = h.deliver(raw, ses_id="ses-b")
    assert again.disposition == "duplicate" and again.held_id
    assert len(h.d.store.cases) == 1 and len(h.sent_to("li.na@mail.example")) == 1


def test_acknowledgements_are_marked_and_limited_per_sender(h: Harness) -> None:
    results = [h.deliver(mail(*headers(subject=f"刹车异响 {n}"))) for n in range(7)]
    acks = h.sent_to("li.na@mail.example")
    assert len(acks) == 5 and all(r.disposition == "new_case" for r in results)
    assert all(a.headers["Auto-Submitted"] == "auto-replied" and a.headers["X-Auto-Response-Suppress"] == "All"
               for a in acks)
    assert "acknowledgement_withheld" in h.summaries(results[-1].case_no or "")


# --- item 3: threading --------------------------------------------------------------------

def _registered(h: Harness, sender: str = "li.na@mail.example") -> tuple[Case, Any]:
    result = h.deliver(mail(*headers(sender)))
    return h.case(result), h.sent_to(sender)[-1]


def test_a_reply_naming_our_message_id_appends_and_notifies_the_assignee(h: Harness) -> None:
    case, ack = _registered(h)
    result = h.deliver(mail(*headers(subject="Re: 周六上午可以", message_id="reply-1"),
                            f"In-Reply-To: {ack.message_id}", body="周六上午10点我把车开过去。"))
    assert result == IntakeResult("append_to_case", case.case_no)
    assert [m.text for m in h.d.store.messages(case.case_no) if m.kind == "customer_mail"] == ["周六上午10点我把车开过去。"]
    assert any("客户来信" in m.subject for m in h.sent_to("cs.sh001@dealers.example"))


def test_a_case_number_of_the_same_tenant_in_the_subject_appends(h: Harness) -> None:
    case, _ = _registered(h)
    result = h.deliver(mail(*headers(subject=f"repair order for {case.case_no}"), body="RO-77812"))
    assert result == IntakeResult("append_to_case", case.case_no)


def test_a_case_number_or_message_id_of_another_tenant_is_quarantined(h: Harness) -> None:
    doc, _ = demo_tenant_doc()
    doc = json.loads(json.dumps(doc).replace("aurora-motors", "nova-cars").replace('"aurora"', '"nova"')
                     .replace('"AUR"', '"NOV"'))
    h.d.store.put_tenant(doc, [])
    other = Case(case_no="NOV-SH001-202611-00001", brand="nova", dealer="SH001", channel="email", phase="plan",
                 received_at=NOW, subject="x", description="x", language="zh", customer=Customer(email="li.na@mail.example"),
                 classification=Classification(category="service", severity="general", safety=False,
                                               media_or_regulator=False))
    h.d.store.create_case(other)
    h.d.store.add_message(MailMessage(case_no=other.case_no, direction="out", message_id="n1@nova-cars.example",
                                      at=NOW, sender="care@nova-cars.example", recipients=[], subject="", text=""))
    by_subject = h.deliver(mail(*headers(subject=f"Re: [{other.case_no}] 进度")))
    by_reference = h.deliver(mail(*headers(subject="Re: 进度"), "In-Reply-To: <n1@nova-cars.example>"))
    for result in (by_subject, by_reference):
        assert result.disposition == "quarantine_malformed" and result.detail == "refers to a case of another tenant"
    assert h.d.store.messages(other.case_no)[-1].direction == "out" and h.d.mailer.sent == []


def _closed(h: Harness, days_ago: int) -> tuple[Case, Any]:
    case, ack = _registered(h)
    h.d.store.save_case(case.model_copy(update={"phase": "closed", "closed_at": NOW - timedelta(days=days_ago)}))
    return case, ack


def test_a_reply_within_30_days_of_closing_reopens_the_case_as_a_follow_up(h: Harness) -> None:
    case, ack = _closed(h, days_ago=29)
    result = h.deliver(mail(*headers(subject="Re: 又响了"), f"In-Reply-To: {ack.message_id}", body="刹车又响了。"))
    assert result == IntakeResult("append_to_case", case.case_no)
    reopened = h.d.store.get_case(case.case_no)
    assert (reopened.phase, reopened.level, reopened.cycle, reopened.closed_at) == ("follow_up", "II", 2, None)
    assert reopened.execution == f"{case.case_no}.r2"
    assert h.d.workflow.started[reopened.execution] == {"case_no": case.case_no, "entry": "follow_up"}
    assert any(m.name == "first_contact" and m.cycle == 2 for m in reopened.milestones)
    assert "re-opened as a Level-II follow-up" in h.summaries(case.case_no)
    assert any("客户来信" in m.subject for m in h.sent_to("cs.sh001@dealers.example"))  # its CS head hears of it
    # The same mail again (an SES retry) neither re-opens twice nor starts another execution.
    again = h.deliver(mail(*headers(subject="Re: 又响了"), f"In-Reply-To: {ack.message_id}", body="刹车又响了。"),
                      ses_id="ses-1-again")
    assert again.disposition in ("duplicate", "append_to_case")
    assert h.d.store.get_case(case.case_no).cycle == 2 and len(h.d.workflow.started) == 2


def test_a_reply_long_after_closing_opens_a_new_case_linked_to_the_old(h: Harness) -> None:
    case, ack = _closed(h, days_ago=31)
    result = h.deliver(mail(*headers(subject="Re: 又坏了"), f"In-Reply-To: {ack.message_id}"))
    new = h.case(result)
    assert result.disposition == "new_case" and new.case_no != case.case_no
    assert f"closed case {case.case_no}" in h.summaries(new.case_no)
    assert f"new case {new.case_no}" in h.summaries(case.case_no)
    assert new.classification.repeat_of == case.case_no  # same customer, same issue, within 90 days


# --- item 4: forwards ---------------------------------------------------------------------

def test_an_inline_forward_from_a_dealer_registers_the_customer_inside(h: Harness) -> None:
    body = ("请处理以下客户投诉。\n\n---------- Forwarded message ----------\nFrom: 林志强 <lin.zhiqiang@qq.example>\n"
            "Date: 2026年11月20日 10:02\nSubject: 销售误导\nTo: cs.gz003@dealers.example\n\n"
            "销售顾问承诺的交车时间一拖再拖，还骗我说有现车。\n手机 139 1234 5678\n\n黄丽\n客服经理 020-8888 1234")
    raw = mail("From: Huang Li <cs.gz003@dealers.example>", "To: gz003@complaints.aurora-motors.example",
               "Subject: Fwd: 销售误导", "Message-ID: <fwd-1@dealers.example>", body=body)
    case = h.case(h.deliver(raw, to=["gz003@complaints.aurora-motors.example"]))
    assert (case.customer.email, case.customer.name, case.customer.phone) == (
        "lin.zhiqiang@qq.example", "林志强", "13912345678")
    assert case.reporter == "cs.gz003@dealers.example"
    assert len(h.sent_to("lin.zhiqiang@qq.example")) == 1 and h.sent_to("cs.gz003@dealers.example") == []


def test_a_message_rfc822_forward_from_the_hotline_registers_the_customer_inside(h: Harness) -> None:
    inner = (f"From: =?utf-8?B?{b64('马丽'.encode())}?= <mali_2008@163.example>\r\nTo: 400@aurora-motors.example\r\n"
             "Subject: 保险理赔款迟迟不到\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
             "极光成都武侯4S店的保险理赔款拖了两个月还没到账。\r\n")
    raw = mail("From: 400 Hotline <hotline@aurora-motors.example>", "To: kefu@aurora-motors.example",
               "Subject: Fwd: 保险理赔款迟迟不到", "Message-ID: <hotline-1@aurora-motors.example>",
               'Content-Type: multipart/mixed; boundary="f"',
               body=(f"--f\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n客户来电后发来的原邮件，请处理。\r\n"
                     f"--f\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--f--\r\n"))
    case = h.case(h.deliver(raw, to=["kefu@aurora-motors.example"]))
    assert (case.customer.email, case.reporter, case.dealer) == ("mali_2008@163.example",
                                                               "hotline@aurora-motors.example", "CD004")
    assert len(h.sent_to("mali_2008@163.example")) == 1 and h.sent_to("hotline@aurora-motors.example") == []


# --- held mail, repeats and staff entry through the same path --------------------------------

def test_held_mail_is_released_by_staff_as_a_new_case(h: Harness) -> None:
    held = h.deliver(mail(*headers("li.na@mail.example", "Out of Office: 刹车异响", None, "Auto-Submitted: auto-replied")))
    assert held.disposition == "ignore_auto_reply" and held.held_id
    released = h.intake.release("aurora", held.held_id, "cr.center@aurora-motors.example")
    assert released is not None and released.disposition == "new_case"
    again = h.intake.release("aurora", held.held_id, "cr.center@aurora-motors.example")
    assert again is not None and again.case_no == released.case_no  # a second click registers nothing new
    [record] = h.d.store.list_held("aurora")
    assert (record.status, record.case_no, record.released_by) == ("released", released.case_no,
                                                                   "cr.center@aurora-motors.example")
    assert "Released by staff" in h.summaries(released.case_no or "")
    assert h.intake.release("aurora", "no-such-mail", "cr.center@aurora-motors.example") is None


def test_the_same_phone_number_and_issue_within_90_days_is_a_repeat(h: Harness) -> None:
    first = h.case(h.deliver(mail(*headers("li.na@mail.example"), body=f"{BRAKES}\n电话 138 0013 8000")))
    second = h.case(h.deliver(mail(*headers("li.na.work@corp.example"), body=f"{BRAKES}\n手机：13800138000")))
    assert second.customer.phone == first.customer.phone == "13800138000"
    assert second.classification.repeat_of == first.case_no
    assert second.classification.severity == "major"


def test_a_delivery_retried_after_a_crash_registers_once(h: Harness) -> None:
    raw = mail(*headers(message_id="retry"))
    key = "raw/ses-retry"
    h.blobs.put(key, raw)
    inbound = InboundMail("ses-retry", key, [SH001], SesVerdicts(), None, NOW)
    h.d.store.claim_inbound("ses-retry", key, NOW)  # an earlier attempt died after claiming the mail
    first = h.intake.receive(inbound)
    assert first.disposition == "new_case"
    assert h.intake.receive(replace(inbound)) == IntakeResult("duplicate", first.case_no,
                                                             "same SES message delivered again")
