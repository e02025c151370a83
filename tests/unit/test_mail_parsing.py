"""Inbound MIME parsing: every labelled sample, and the malformations real complaint mail
carries (lying charset labels, stripped padding, NULs, odd folding, forwards)."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.complaints import largeparts
from shared.complaints.mail import ParsedMail, parse_mail

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "emails"
RECEIVED = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
KIND_BY_DISPOSITION = {"ignore_auto_reply": "auto_reply", "ignore_bounce": "bounce", "ignore_bulk": "bulk"}


@dataclass(frozen=True)
class Sample:
    label: dict[str, Any]
    mail: ParsedMail


@cache
def labelled_samples() -> tuple[Sample, ...]:
    """Every sample file with its label, parsed once for all test modules."""
    labels = json.loads((SAMPLES / "labels.json").read_text("utf-8"))
    return tuple(
        Sample(label, parse_mail((SAMPLES / label["file"]).read_bytes(), received_at=RECEIVED))
        for label in labels if label.get("file")
    )


def customer_address(mail: ParsedMail) -> str | None:
    """The complainant: the original sender of a forward, else the sender."""
    return mail.forwarded.address if mail.forwarded else mail.from_address


def mail(*headers: str, body: bytes | str = b"") -> ParsedMail:
    """A message from header lines and a body; str bodies are sent as UTF-8."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    raw = "\r\n".join(headers).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + data
    return parse_mail(raw, received_at=RECEIVED)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- the labelled samples -------------------------------------------------------------

def test_every_labelled_sample_is_parsed() -> None:
    files = sorted(p.name for p in SAMPLES.glob("*.eml"))
    assert sorted(s.label["file"] for s in labelled_samples()) == files
    kinds = Counter(s.mail.kind for s in labelled_samples())
    print("\nkinds:", dict(kinds))


@pytest.mark.parametrize("sample", labelled_samples(), ids=lambda s: s.label["file"])
def test_sample_kind_sender_and_basics(sample: Sample) -> None:
    label, parsed = sample.label, sample.mail
    assert parsed.kind == KIND_BY_DISPOSITION.get(label["disposition"], "normal")
    assert parsed.date.utcoffset() == timedelta(0)
    assert parsed.message_id and "<" not in parsed.message_id
    assert "\x00" not in parsed.text and "\ufffd" not in parsed.subject
    if label["disposition"] == "new_case":
        assert customer_address(parsed) == label["customer_email"]
        assert parsed.text or parsed.attachments


def test_duplicate_delivery_keeps_its_message_id() -> None:
    by_file = {s.label["file"]: s.mail for s in labelled_samples()}
    first, again = by_file["p21_big5_infotainment_gz003.eml"], by_file["p22_big5_infotainment_gz003_dup.eml"]
    assert first.message_id == again.message_id == "1763180526.4471.cmchen.hk@yahoo.example"


def test_hotline_forward_as_message_rfc822_names_the_customer() -> None:
    parsed = next(s.mail for s in labelled_samples() if s.label["file"].startswith("p13_"))
    assert parsed.forwarded is not None
    assert (parsed.forwarded.name, parsed.forwarded.address) == ("马丽", "mali_2008@163.example")
    assert "极光成都武侯4S店" in parsed.forwarded.text
    assert "极光成都武侯4S店" in parsed.text  # the original's words are part of the case text
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]


def test_reply_quoting_our_own_mail_is_not_a_forward() -> None:
    replies = [s.mail for s in labelled_samples() if s.label["disposition"] == "append_to_case"]
    assert replies and all(m.forwarded is None for m in replies)


# --- charsets -------------------------------------------------------------------------

def test_gb2312_label_on_gbk_bytes_decodes_zhe() -> None:
    parsed = mail(
        f"From: =?gb2312?B?{b64('张喆'.encode('gbk'))}?= <zhangzhe@mail.example>",
        f"Subject: =?gb2312?B?{b64('张喆的投诉'.encode('gbk'))}?=",
        "Date: Mon, 16 Nov 2026 14:18:36 +0800",
        'Content-Type: text/plain; charset="gb2312"',
        "Content-Transfer-Encoding: base64",
        body=b64("我叫张喆，交车晚了半个月。".encode("gbk")),
    )
    assert parsed.from_name == "张喆"
    assert parsed.subject == "张喆的投诉"
    assert parsed.text == "我叫张喆，交车晚了半个月。"
    assert "charset gb2312 decoded as gb18030" in parsed.warnings


def test_big5_decodes_including_hkscs_characters() -> None:
    parsed = mail(
        f"Subject: =?big5?B?{b64('車機經常死機'.encode('big5'))}?=",
        "Content-Type: text/plain; charset=big5",
        body="本人陳志明，藍牙連不上，店裡說要換硬件。喆".encode("big5hkscs"),
    )
    assert parsed.subject == "車機經常死機"
    assert parsed.text == "本人陳志明，藍牙連不上，店裡說要換硬件。喆"


def test_utf8_bytes_under_a_gb2312_label_are_read_as_utf8() -> None:
    parsed = mail('Content-Type: text/plain; charset="gb2312"', body="方向盘突然很沉，请尽快联系我。")
    assert parsed.text == "方向盘突然很沉，请尽快联系我。"


def test_latin1_label_on_latin1_text_is_kept() -> None:
    parsed = mail("Content-Type: text/plain; charset=iso-8859-1", body="Grüße von Jürgen Müller, très déçu.".encode("latin-1"))
    assert parsed.text == "Grüße von Jürgen Müller, très déçu."


def test_unknown_charset_falls_back_and_warns() -> None:
    parsed = mail("Content-Type: text/plain; charset=x-made-up", body="我的车漏水了".encode("gb18030"))
    assert parsed.text == "我的车漏水了"
    assert "unknown charset x-made-up" in parsed.warnings


def test_gbk_bytes_inside_utf8_are_repaired_and_nul_removed() -> None:
    body = "你好，".encode() + "（附件".encode("gbk") + b"\x00" + "照片稍后补发）".encode() + b"\xff"
    parsed = mail("Content-Type: text/plain; charset=utf-8", body=body)
    assert parsed.text == "你好，（附件照片稍后补发）\ufffd"
    assert "invalid bytes replaced" in parsed.warnings


def test_nul_bytes_are_removed() -> None:
    parsed = mail("Content-Type: text/plain; charset=utf-8", body=b"brake\x00 pedal\x00")
    assert parsed.text == "brake pedal"


def test_base64_with_stripped_padding_decodes_fully() -> None:
    encoded = b64("等了五个小时".encode("gb18030") + b"!").rstrip("=")
    parsed = mail("Content-Type: text/plain; charset=gbk", "Content-Transfer-Encoding: base64", body=encoded)
    assert parsed.text == "等了五个小时!"


def test_quoted_printable_and_a_very_long_line() -> None:
    long_line = "刹车" * 6000
    parsed = mail("Content-Type: text/html; charset=utf-8", body=f"<html><body><div>{long_line}</div></body></html>")
    assert parsed.text == long_line
    qp = mail(
        "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable",
        body="=E5=88=B9=E8=BD=A6=\r\n=E5=A4=B1=E7=81=B5",
    )
    assert qp.text == "刹车失灵"


# --- headers and dates ----------------------------------------------------------------

def test_missing_date_uses_received_at() -> None:
    parsed = mail("From: wuxiaoyun@qq.example", "Subject: hi", body="x")
    assert parsed.date == RECEIVED
    assert "missing Date" in parsed.warnings


def test_unparseable_date_uses_received_at() -> None:
    parsed = mail("Date: sometime last Tuesday", body="x")
    assert parsed.date == RECEIVED
    assert "unparseable Date" in parsed.warnings


def test_date_is_aware_utc() -> None:
    assert mail("Date: Mon, 02 Nov 2026 08:17:43 +0800", body="x").date == datetime(2026, 11, 2, 0, 17, 43, tzinfo=UTC)


def test_oddly_folded_headers() -> None:
    parsed = mail(
        'From: \r\n "Kim, Minjun"\r\n\t<Minjun.Kim@corp.example>',
        "To: HZ005 Complaints\r\n   <HZ005@complaints.aurora-motors.example>, other@x.example",
        "Cc: =?utf-8?B?5byg5LiJ?= <CC@X.example>",
        "Subject: Rattling noise\r\n \r\n\t- S5, 4 months old",
        "Message-ID: \r\n <abc@corp.example>",
        "In-Reply-To: <case-1.n1@aurora.example>",
        "References: <case-1.n1@aurora.example>\r\n <case-1.n2@aurora.example>",
        body="x",
    )
    assert (parsed.from_name, parsed.from_address) == ("Kim, Minjun", "minjun.kim@corp.example")
    assert parsed.to == ["hz005@complaints.aurora-motors.example", "other@x.example"]
    assert parsed.cc == ["cc@x.example"]
    assert parsed.subject == "Rattling noise - S5, 4 months old"
    assert parsed.message_id == "abc@corp.example"
    assert parsed.in_reply_to == ["case-1.n1@aurora.example"]
    assert parsed.references == ["case-1.n1@aurora.example", "case-1.n2@aurora.example"]
    assert parsed.headers["subject"] == "Rattling noise - S5, 4 months old"
    assert parsed.headers["cc"] == "张三 <CC@X.example>"


def test_encoded_words_split_inside_a_character_are_joined() -> None:
    data = "刹车失灵".encode()
    parsed = mail(f"Subject: =?utf-8?B?{b64(data[:4])}?=\r\n =?utf-8?B?{b64(data[4:])}?= [AUR-SH001-202611-00042]", body="x")
    assert parsed.subject == "刹车失灵 [AUR-SH001-202611-00042]"


def test_raw_utf8_in_headers_is_decoded() -> None:
    parsed = parse_mail("Subject: 刹车失灵\r\nFrom: 刘伟 <liu@x.example>\r\n\r\nx".encode(), received_at=RECEIVED)
    assert (parsed.subject, parsed.from_name) == ("刹车失灵", "刘伟")


def test_envelope_sender_stands_in_for_a_from_without_address() -> None:
    parsed = parse_mail(b"From: Mail Robot\r\nSubject: x\r\n\r\nx", received_at=RECEIVED, envelope_from="<Robot@X.example>")
    assert parsed.from_address == "robot@x.example"


# --- bodies and attachments -----------------------------------------------------------

def test_html_only_gives_clean_text() -> None:
    parsed = mail(
        "Content-Type: text/html; charset=utf-8",
        body=(
            "<html><head><title>t</title><style>p{color:red}</style><script>alert(1)</script></head>"
            "<body><p>Dear&nbsp;Aurora,</p><p>Yan&#x27;an Road &amp; the garage&hellip;</p>"
            "<ul><li>brakes</li><li>steering</li></ul><br><table><tr><td>a</td><td>b</td></tr></table>"
            "<!-- tracking --><script>var x = '<p>no</p>';</script></body></html>"
        ),
    )
    assert parsed.text == "Dear Aurora,\n\nYan'an Road & the garage…\n\n- brakes\n- steering\n\na b"
    assert parsed.html is not None and "<script>" in parsed.html


def test_plain_text_is_preferred_over_html() -> None:
    boundary = "b1"
    parsed = mail(
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        body=(
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain words\r\n"
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html words</p>\r\n--{boundary}--\r\n"
        ),
    )
    assert parsed.text == "plain words"
    assert parsed.html == "<p>html words</p>"


def test_attachment_filenames_are_decoded_and_made_safe() -> None:
    boundary = "mixed"
    parts = [
        ("image/jpeg", "attachment; filename*=utf-8''%E4%BA%8B%E6%95%85%E7%85%A7%E7%89%87.jpg", b"\xff\xd8jpeg"),
        ("application/pdf", "attachment; filename*=gbk''%BD%E1%CB%E3%B5%A5.pdf", b"%PDF"),
        ("application/pdf", f'attachment; filename="=?utf-8?B?{b64("发票.pdf".encode())}?="', b"%PDF"),
        ("text/plain", "attachment; filename*0*=utf-8''%E7%BB%B4%E4%BF%AE; filename*1*=%E5%8D%95.txt", b"notes"),
        ("application/octet-stream", 'attachment; filename="..\\\\..\\\\windows\\\\evil\u202egpj.exe"', b"MZ"),
        ("application/octet-stream", 'attachment; filename="\x01\x02"', b""),
    ]
    body = "".join(
        f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Disposition: {disposition}\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{b64(payload)}\r\n"
        for ctype, disposition, payload in parts
    ) + f"--{boundary}--\r\n"
    parsed = mail(f'Content-Type: multipart/mixed; boundary="{boundary}"', body=body)
    assert [a.filename for a in parsed.attachments] == [
        "事故照片.jpg", "结算单.pdf", "发票.pdf", "维修单.txt", "evilgpj.exe", "attachment-6.bin",
    ]
    assert parsed.attachments[0].payload == b"\xff\xd8jpeg" and parsed.attachments[0].size == 6
    assert parsed.text == ""


# --- kinds ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        (["Auto-Submitted: auto-replied"], "auto_reply"),
        (["Auto-Submitted: auto-generated; owner-email=x@y.example"], "auto_reply"),
        (["Auto-Submitted: no"], "normal"),
        (["X-Autoreply: yes"], "auto_reply"),
        (["X-Autorespond: on"], "auto_reply"),
        (["Precedence: auto_reply"], "auto_reply"),
        (["X-Auto-Response-Suppress: All"], "normal"),  # Outlook sets it on ordinary mail too
        (["Subject: Automatic reply: your complaint"], "auto_reply"),
        (["Subject: 自动回复：您的投诉已受理"], "auto_reply"),
        (["Subject: 【自動回覆】假期"], "auto_reply"),
        (["Subject: 休假中：11月12日返回"], "auto_reply"),
        (["Subject: 休假期间车坏了，没人管"], "normal"),
        (["Subject: Out of the office"], "auto_reply"),
        (["List-Id: <news.example>"], "bulk"),
        (["List-Unsubscribe: <mailto:u@news.example>"], "bulk"),
        (["Precedence: junk"], "bulk"),
        (["From: MAILER-DAEMON@mx.example", "Subject: Undelivered Mail Returned to Sender"], "bounce"),
        (["From: postmaster@qq.example", "Subject: 系统退信"], "bounce"),
        (["From: postmaster@qq.example", "Subject: question about my car"], "normal"),
    ],
)
def test_kind(headers: list[str], kind: str) -> None:
    assert mail(*headers, body="x").kind == kind


def test_delivery_status_report_is_a_bounce_whatever_its_subject() -> None:
    parsed = mail(
        'Content-Type: multipart/report; report-type="delivery-status"; boundary="r"',
        "Subject: Re: your car",
        body=(
            "--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: failed\r\n--r--\r\n"
        ),
    )
    assert parsed.kind == "bounce"
    assert parsed.forwarded is None


# --- forwards -------------------------------------------------------------------------

def test_gmail_inline_forward() -> None:
    parsed = mail(
        "From: Dealer CS <cs@dealer.example>",
        "To: gz003@complaints.aurora-motors.example",
        "Subject: Fwd: broken window",
        body=(
            "Please register this.\n\n---------- Forwarded message ---------\n"
            "From: **Ann Lee** <Ann.Lee@mail.example>\nDate: Tue, Nov 10, 2026 at 9:14 PM\n"
            "Subject: broken window\nTo: <cs@dealer.example>\n\nThe rear window does not close.\n"
        ),
    )
    assert parsed.forwarded is not None
    assert (parsed.forwarded.name, parsed.forwarded.address) == ("Ann Lee", "ann.lee@mail.example")
    assert (parsed.forwarded.subject, parsed.forwarded.text) == ("broken window", "The rear window does not close.")


def test_outlook_forward_header_block_under_a_forward_subject() -> None:
    parsed = mail(
        "From: 客服 <cs@dealer.example>",
        "To: complaints@aurora-motors.example",
        "Subject: 转发: 车漏水",
        body=(
            "请登记。\n\n________________________________\n发件人: 王先生 <wang@mail.example>\n"
            "发送时间: 2026年11月10日 21:14\n收件人: cs@dealer.example\n主题: 车漏水\n\n> 天窗漏水三次了。\n"
        ),
    )
    assert parsed.forwarded is not None
    assert (parsed.forwarded.address, parsed.forwarded.text) == ("wang@mail.example", "天窗漏水三次了。")


def test_forward_of_a_forward_reaches_the_customer() -> None:
    parsed = mail(
        "From: Region <east@aurora.example>",
        "To: complaints@aurora-motors.example",
        "Subject: FW: FW: noise",
        body=(
            "FYI\n\n-----Original Message-----\nFrom: Dealer <cs@dealer.example>\nSent: Monday\n"
            "Subject: FW: noise\n\nsee below\n\n-----Original Message-----\nFrom: Customer <cust@mail.example>\n"
            "Sent: Sunday\nSubject: noise\n\nThe dashboard rattles.\n"
        ),
    )
    assert parsed.forwarded is not None and parsed.forwarded.address == "cust@mail.example"


def test_reply_with_quoted_original_is_not_a_forward() -> None:
    parsed = mail(
        "From: Emma <emma@mail.example>",
        "To: complaints@aurora-motors.example",
        "Subject: RE: [AUR-HZ005-202611-00013] received",
        body="Here is the number.\n\n-----Original Message-----\nFrom: Someone <someone@else.example>\nSent: Friday\n\nDear Emma",
    )
    assert parsed.forwarded is None


def test_forward_of_our_own_mail_is_not_the_customer() -> None:
    parsed = mail(
        "From: Cust <cust@mail.example>",
        "To: complaints@aurora-motors.example",
        "Subject: Fwd: your complaint has been received",
        body=(
            "Nobody called.\n\n---------- Forwarded message ---------\n"
            "From: Aurora <complaints@aurora-motors.example>\nDate: Friday\n\nWe will call you."
        ),
    )
    assert parsed.forwarded is None


# --- never raises ---------------------------------------------------------------------

def _nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ndeep text\r\n"
    for level in range(depth):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
            + body + f"--b{level}--\r\n".encode()
        )
    return b"Subject: deep\r\n" + body


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe\xfd garbage without headers",
        b"Subject: only headers",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\nbroken\r\n",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all",
        b'Content-Type: text/plain; charset*=bogus\'\'%ZZ; name*0*=x%\r\n\r\nbody',
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64***",
        b"From: <<<>>>@@@, \"unterminated\r\nTo: ;;;\r\nDate: 99 Foo 99999 99:99:99\r\n\r\nx",
        b"Content-Type: message/rfc822\r\n\r\nnot really a message",
        _nested(40),
    ],
)
def test_never_raises(raw: bytes) -> None:
    parsed = parse_mail(raw, received_at=RECEIVED)
    assert isinstance(parsed, ParsedMail)
    assert parsed.date.tzinfo is not None


def test_deep_nesting_keeps_what_it_can_and_says_so() -> None:
    parsed = parse_mail(_nested(40), received_at=RECEIVED)
    assert "MIME nesting too deep; inner parts skipped" in parsed.warnings


# --- large parts held out of memory (largeparts) -----------------------------------------

def _multipart(*parts: tuple[str, bytes]) -> bytes:
    body = b"".join(f"--p\r\n{head}\r\n\r\n".encode() + data + b"\r\n" for head, data in parts)
    return b'From: a@mail.example\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n' + body + b"--p--\r\n"


def _read(raw: bytes) -> Callable[[int, int | None], Iterator[bytes]]:
    return lambda start, end: iter([raw[start:end]])


def test_a_large_binary_part_is_held_out_and_read_back_exactly() -> None:
    video = bytes(range(256)) * 2000 + b"x"  # not a multiple of 3: the base64 ends padded
    raw = _multipart(("Content-Type: text/plain; charset=utf-8", "仪表台异响".encode()),
                     ('Content-Type: video/mp4\r\nContent-Disposition: attachment;\r\n filename="dash.mp4"\r\n'
                      "Content-Transfer-Encoding: base64", base64.encodebytes(video)))
    slim = largeparts.slim([raw[i : i + 1000] for i in range(0, len(raw), 1000)], hold_out_from=4096, read=_read(raw))
    assert len(slim.spans) == 1 and slim.spans[0].size == len(video) and len(slim.raw) < 600
    parsed = parse_mail(slim, received_at=RECEIVED)
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.size, attachment.payload) == ("dash.mp4", len(video), b"")
    assert b"".join(attachment.chunks()) == video
    assert parsed.text == "仪表台异响"


def test_text_and_small_parts_are_never_held_out() -> None:
    long_text = base64.encodebytes(("刹车异响。" * 3000).encode())
    raw = _multipart(("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64", long_text),
                     ("Content-Type: image/png\r\nContent-Transfer-Encoding: base64", base64.encodebytes(b"png" * 10)))
    slim = largeparts.slim([raw], hold_out_from=4096)
    assert slim.spans == () and slim.raw == raw
    assert parse_mail(slim, received_at=RECEIVED).text == "刹车异响。" * 3000


def test_base64_decoding_across_chunks_and_without_padding() -> None:
    data = os.urandom(10_001)
    text = base64.encodebytes(data).rstrip(b"=\n")
    chunks = [text[i : i + 7] for i in range(0, len(text), 7)]
    assert b"".join(largeparts.decode_base64(chunks)) == data
