"""Hostile mail: a property-based fuzz of the MIME parser and the whole intake behind it.

Whatever bytes arrive (random, MIME-shaped with broken headers, charsets, boundaries and
transfer encodings, or a real sample mutated), the intake never crashes, every mail gets a
disposition, the raw mail is kept unchanged, and what it became points at it.

200 examples run in ``make test`` (derandomized: the same ones every run); ``make fuzz``
runs ``FUZZ_EXAMPLES`` (default there: 5,000) new ones each time.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.complaints.intake import Disposition, InboundMail, Intake, SesVerdicts
from shared.complaints.mail import parse_mail
from tests.fakes import Domain

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
EMAILS = Path(__file__).resolve().parents[1] / "data" / "emails"
SAMPLES = sorted(p.read_bytes() for p in EMAILS.glob("*.eml"))
DISPOSITIONS = set(get_args(Disposition))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

RECIPIENTS = ["sh001@complaints.aurora-motors.example", "complaints@aurora-motors.example",
              "care@aurora-motors.example", "nobody@elsewhere.example", "SH001@Complaints.Aurora-Motors.Example"]
CHARSETS = ["utf-8", "gb2312", "gbk", "gb18030", "big5", "iso-8859-1", "us-ascii", "utf-16", "x-unknown", ""]
HEADER_NAMES = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "Content-Type",
                "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version", "Auto-Submitted", "Precedence",
                "List-Id", "List-Unsubscribe", "X-Case-Number", "X-Autoreply", "Return-Path", "Reply-To"]
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=120)


def _encoded_word(draw: Any) -> str:
    charset = draw(st.sampled_from(CHARSETS))
    kind = draw(st.sampled_from(["B", "Q", "b", "X"]))
    payload = draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=_?", max_size=40))
    return f"=?{charset}?{kind}?{payload}?="


@st.composite
def header_value(draw: Any) -> str:
    parts = draw(st.lists(st.one_of(TEXT, st.builds(lambda _: "", st.none()), st.sampled_from(
        ["<a@b>", "Li Na <li.na@mail.example>", "<<>>", "@", "\"unterminated", "text/plain; charset=", ";;;",
         "multipart/mixed; boundary=", "base64", "quoted-printable", "AUR-SH001-202611-00001", "\r\n\t folded"])),
        max_size=4))
    if draw(st.booleans()):
        parts.append(_encoded_word(draw))
    return " ".join(parts)


@st.composite
def body_part(draw: Any, depth: int = 0) -> bytes:
    ctype = draw(st.sampled_from(["text/plain", "text/html", "application/pdf", "image/jpeg", "message/rfc822",
                                  "multipart/mixed", "multipart/alternative", "text/x-garbage", ""]))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(["", "base64", "quoted-printable", "8bit", "7bit", "x-uuencode", "binary"]))
    head = f"Content-Type: {ctype}; charset={charset}\r\n" + (f"Content-Transfer-Encoding: {cte}\r\n" if cte else "")
    if ctype.startswith("multipart") and depth < 2:
        boundary = draw(st.text(alphabet="abc-=_'()+,./:? 0123456789", min_size=0, max_size=20))
        head = f'Content-Type: {ctype}; boundary="{boundary}"\r\n'
        children = draw(st.lists(body_part(depth + 1), max_size=3))
        closing = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}\r\n", "--other--\r\n"]))
        return head.encode() + b"\r\n" + b"".join(f"--{boundary}\r\n".encode() + c for c in children) + closing.encode()
    content = draw(st.one_of(TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=300),
                             st.sampled_from([b"5Yi56L2m5byC5ZON", b"=E5=88=B9=E8=BD=A6=", b"====", b"=\r\n=ZZ"])))
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + content + b"\r\n"


@st.composite
def mime_mail(draw: Any) -> bytes:
    headers = draw(st.lists(st.tuples(st.one_of(st.sampled_from(HEADER_NAMES), st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz-:", min_size=1, max_size=12)), header_value()), max_size=12))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("utf-8", "surrogateescape")
    separator = draw(st.sampled_from([b"\r\n", b"\n", b"", b"\r\n\r\n"]))
    return head + separator + draw(body_part())


@st.composite
def mutated_sample(draw: Any) -> bytes:
    raw = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 6))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        span = draw(st.integers(1, 64))
        action = draw(st.sampled_from(["delete", "duplicate", "insert", "flip", "truncate", "newlines"]))
        if action == "delete":
            del raw[at:at + span]
        elif action == "duplicate":
            raw[at:at] = raw[at:at + span]
        elif action == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=span))
        elif action == "flip":
            raw[at] ^= draw(st.integers(1, 255))
        elif action == "truncate":
            del raw[at:]
        else:
            raw[:] = raw.replace(b"\r\n", b"\n") if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")
    return bytes(raw)


HOSTILE = st.one_of(st.binary(max_size=2048), mime_mail(), mutated_sample())


@FUZZ
@given(raw=HOSTILE)
def test_the_parser_never_raises_and_keeps_text(raw: bytes) -> None:
    parsed = parse_mail(raw, received_at=NOW, envelope_from="li.na@mail.example")
    assert parsed.kind in ("normal", "auto_reply", "bounce", "bulk")
    assert isinstance(parsed.text, str) and isinstance(parsed.subject, str)


@FUZZ
@given(raw=HOSTILE, recipients=st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=3),
       spam=st.sampled_from(["PASS", "FAIL", "GRAY", "", "PROCESSING_FAILED"]),
       virus=st.sampled_from(["PASS", "FAIL", ""]), dkim=st.sampled_from(["PASS", "FAIL", "NONE"]),
       envelope=st.one_of(st.none(), st.sampled_from(["li.na@mail.example", "", "<>", "not an address"])))
def test_the_intake_gives_every_mail_a_disposition_and_keeps_it(raw: bytes, recipients: list[str], spam: str,
                                                                  virus: str, dkim: str, envelope: str | None) -> None:
    d = Domain(NOW)
    intake = Intake(d.store, d.blobs, d.workflow, d.clock, d.lifecycle)
    key = "raw/ses-fuzz"
    d.blobs.put(key, raw)
    result = intake.receive(InboundMail("ses-fuzz", key, recipients, SesVerdicts(spam=spam, virus=virus, dkim=dkim),
                                        envelope, NOW))
    assert result.disposition in DISPOSITIONS
    assert d.blobs.get(key) == raw, "the raw mail is kept unchanged"
    record = d.store.inbound_record("ses-fuzz")
    assert record is not None and record.status == "done" and record.disposition == result.disposition
    if result.held_id:
        held = d.store.held_mail("aurora", result.held_id)
        assert held is not None and held.raw_key == key
    elif result.case_no:
        case = d.store.get_case(result.case_no)
        events = d.store.events(result.case_no)
        assert key == case.raw_mail_key or any(e.data.get("raw_key") == key for e in events)
        if result.disposition == "new_case":
            assert d.workflow.started.get(result.case_no) == {"case_no": result.case_no, "entry": "triage"}
    else:
        assert record.raw_key == key  # mail for no tenant: its inbound record keeps the raw key
    # Listed for the reconciler (which marks it accounted for, the inbound record being done).
    assert [(m.ses_message_id, m.raw_key) for m in d.store.received_on(NOW.date())] == [("ses-fuzz", key)]
