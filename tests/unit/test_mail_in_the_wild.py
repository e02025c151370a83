"""What real-world mail does to a parser (issue 19), each phenomenon reproduced in our own
small messages: the kinds a mature helpdesk's suite of broken mails shows (see
docs/benchmarks.md for the suite itself, run with ``benchmarks.zammad_suite``)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from shared.complaints.mail import ParsedMail, parse_mail

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def parse(*lines: str, body: bytes = b"Guten Tag, die Bremsen quietschen.", envelope: str | None = None) -> ParsedMail:
    raw = "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body
    return parse_mail(raw, received_at=NOW, envelope_from=envelope)


# --- charsets ---------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "decoded"), [
    ("=?iso-8859-1?Q?Gr=FC=DFe?=", "Grüße"),  # ü ß is a GB18030 pair: read as 鼢
    ("=?iso-8859-1?Q?=C4u=DFerst_s=FC=DF?=", "Äußerst süß"),
    ("=?iso-8859-1?Q?T=FCr_=F6ffnet_schwer?=", "Tür öffnet schwer"),
    ("=?ISO-8859-15?Q?D=E9j=E0_r=E9par=E9?=", "Déjà réparé"),
    ("=?windows-1252?Q?=C9t=E9_=96_pi=E8ce?=", "Été – pièce"),
])
def test_a_short_latin_subject_keeps_its_declared_charset(word: str, decoded: str) -> None:
    """A single-byte label whose bytes read as words of its script is never overridden by a
    CJK guess (a third of the bytes high made GB18030 win: aa漩…)."""
    assert parse("From: kunde@mail.example", f"Subject: {word}").subject == decoded


def test_a_latin1_body_with_many_umlauts_stays_latin1() -> None:
    body = "Grüße, Ärger: Öl läuft aus, Tür öffnet schwer, Kühlung fällt aus.".encode("latin-1")
    parsed = parse("From: kunde@mail.example", "Subject: Werkstatt", "Content-Type: text/plain; charset=iso-8859-1",
                   body=body)
    assert parsed.text == body.decode("latin-1")


def test_chinese_bytes_under_a_latin1_label_are_still_read_as_chinese() -> None:
    """The other side of the rule: GBK text read as Latin-1 is symbols and random case."""
    body = "刹车异响，已经修了两次还是不好。".encode("gbk")
    parsed = parse("From: li@mail.example", "Subject: x", "Content-Type: text/plain; charset=iso-8859-1", body=body)
    assert parsed.text == "刹车异响，已经修了两次还是不好。"


def test_iso_2022_jp_subject_and_body_are_japanese_not_their_escape_bytes() -> None:
    """ISO-2022-JP (Zammad's mail091) is all ASCII bytes: read as ASCII, the mail was
    "$B%a%k%^%,2r=|(B"; Japanese staff see the request it is."""
    subject = "=?iso-2022-jp?B?" + base64.b64encode("メルマガ解除".encode("iso2022_jp")).decode() + "?="
    parsed = parse("From: mail@domain.example", f"Subject: {subject}", 'Content-Type: text/plain; charset="iso-2022-jp"',
                   body="このアドレスへのメルマガを解除してください。".encode("iso2022_jp"))
    assert (parsed.subject, parsed.text.strip()) == ("メルマガ解除", "このアドレスへのメルマガを解除してください。")


@pytest.mark.parametrize(("raw", "subject"), [
    ("ツール".encode("shift_jis"), "ツール"),  # Zammad's mail093: GBK read it as 僣乕儖
    ("刹车异响，我的车有问题".encode("gbk"), "刹车异响，我的车有问题"),  # GBK stays GBK
    ("您好，请问4S店的地址".encode("gbk"), "您好，请问4S店的地址"),
])
def test_an_undeclared_8bit_subject_is_read_as_japanese_only_when_it_gives_kana(raw: bytes, subject: str) -> None:
    mail = b"From: bar@example.org\r\nSubject: " + raw + b"\r\n\r\nHallo"
    assert parse_mail(mail, received_at=NOW).subject == subject


def test_iso_2022_jp_with_windows_circled_digits_is_read_and_an_open_run_ends_at_the_line() -> None:
    """Zammad's mail099: ① (NEC row 13, as Windows writes ISO-2022-JP) made the strict codec
    fail, and the body was its escape text; the run is never closed with ESC ( B."""
    parsed = parse("From: noreply@example.org", "Subject: x", "Content-Type: text/plain; charset=ISO-2022-JP",
                   body=b'\x1b$B!!-!#1ET#38)$N03$H!"\r\nTermin')
    assert [line.strip() for line in parsed.text.splitlines()] == ["①１都３県の鯵と、", "Termin"]


@pytest.mark.parametrize("content_type", ["Content-Type: text/plain;", "Content-Type: text/plain; charset=us-ascii"])
def test_iso_2022_jp_without_its_label_is_still_japanese(content_type: str) -> None:
    """Zammad's mail116: Outlook wrote ``text/plain;`` with no charset over an ISO-2022-JP body,
    which read as ASCII showed its escape text ($B$3$l$O...)."""
    parsed = parse("From: info@shop.example", "Subject: x", content_type,
                   body="これはテストです。\r\n".encode("iso2022_jp") + "田中".encode("iso2022_jp"))
    assert parsed.text.splitlines() == ["これはテストです。", "田中"]


def test_an_ascii_body_under_an_unknown_label_stays_ascii() -> None:
    parsed = parse("From: kai@mail.example", "Subject: x", "Content-Type: text/plain; charset=x-unknown", body=b"Bremsen $B")
    assert parsed.text.strip() == "Bremsen $B"


@pytest.mark.parametrize(("header", "decoded"), [
    ("=?us-ascii?Q?Auftrag / 4711 / Berlin Mitte / Bremsen?=", "Auftrag / 4711 / Berlin Mitte / Bremsen"),
    ("=?iso-8859-1?Q?Termin f=FCr Montag?=", "Termin für Montag"),
    ("Re: =?utf-8?B?5Yi5 6L2m?= bitte", "Re: 刹车 bitte"),  # spaces inside base64 too
    ("=?utf-8?q?ok?= =?utf-8?q?_fine?=", "ok fine"),  # strict words still join
])
def test_encoded_words_with_raw_spaces_are_decoded(header: str, decoded: str) -> None:
    assert parse("From: kunde@mail.example", f"Subject: {header}").subject == decoded


# --- who wrote it ----------------------------------------------------------------------

def test_no_from_header_takes_the_sender_from_reply_to() -> None:
    parsed = parse("Reply-To: Kai Wolf <kai.wolf@mail.example>", "To: kefu@aurora-motors.example", "Subject: Garantie",
                   envelope="bounce-7f3@sender.example")
    assert (parsed.from_address, parsed.from_name) == ("kai.wolf@mail.example", "Kai Wolf")
    assert "no valid address in From; the sender is taken from Reply-To" in parsed.warnings


def test_a_from_without_an_address_falls_back_to_reply_to_then_sender_then_envelope() -> None:
    assert parse('From: "我" <>', "Reply-To: <wang@mail.example>").from_address == "wang@mail.example"
    assert parse("From: [unknown]", "Sender: desk@mail.example").from_address == "desk@mail.example"
    assert parse("From: [unknown]", envelope="<envelope@mail.example>").from_address == "envelope@mail.example"


def test_the_first_valid_of_several_from_headers_is_the_sender() -> None:
    parsed = parse("From: [????]", "From: =?utf-8?B?546L5by6?= <wang.qiang@mail.example>", "Subject: 车门异响")
    assert (parsed.from_address, parsed.from_name) == ("wang.qiang@mail.example", "王强")


@pytest.mark.parametrize("stray", [
    "forwarded by the old mail system",  # a note pasted above the headers
    "-----",
    ">From kunde@mail.example Mon Dec  1 10:00:00 2026",  # a quoted mailbox separator
])
def test_a_header_block_after_stray_lines_is_read(stray: str) -> None:
    parsed = parse(stray, "From: Kai Wolf <kai.wolf@mail.example>", "To: kefu@aurora-motors.example",
                   "Subject: Bremsen quietschen", "Date: Mon, 30 Nov 2026 10:00:00 +0100")
    assert (parsed.from_address, parsed.subject) == ("kai.wolf@mail.example", "Bremsen quietschen")
    assert parsed.text == "Guten Tag, die Bremsen quietschen."
    assert "stray lines before the headers skipped" in parsed.warnings


@pytest.mark.parametrize("stray", [None, "---- Original email message ----"])
def test_received_lines_that_lost_their_folding_indent_do_not_end_the_headers(stray: str | None) -> None:
    """A relay that drops the indent of a Received header's continuation lines would leave
    To, Subject and From below them in the body."""
    headers = ["Return-Path: kai.wolf@mail.example",
               "Received: from mx.mail.example ([192.0.2.7])", "by mx.aurora-motors.example with ESMTP",
               "for kefu@aurora-motors.example;", "Thu, 3 Dec 2026 16:58:16 +0100",
               "Received: by mx.mail.example (Postfix, from userid 500)", "id 58E7387959; Thu, 3 Dec 2026 16:58:28 +0100",
               "To: kefu@aurora-motors.example", "Subject: Kontaktformular", "From: kai.wolf@mail.example"]
    parsed = parse(*([stray] if stray else []), *headers)
    assert (parsed.from_address, parsed.subject) == ("kai.wolf@mail.example", "Kontaktformular")
    assert parsed.text == "Guten Tag, die Bremsen quietschen."
    assert "header lines that lost their folding indent read as continued headers" in parsed.warnings


def test_a_body_after_a_missing_blank_line_is_not_taken_for_folded_headers() -> None:
    """Without a header every mail has below it, an unindented line is where the body begins."""
    raw = (b"X-Mailer: webform\r\nX-Form: 7\r\nGuten Tag, die Bremsen quietschen.\r\nX-Note: bitte anrufen\r\n"
           b"\r\nDanke")
    parsed = parse_mail(raw, received_at=NOW)
    assert "Guten Tag, die Bremsen quietschen." in parsed.text
    assert "header lines that lost their folding indent read as continued headers" not in parsed.warnings


def test_a_mail_whose_body_only_looks_like_headers_is_not_re_read() -> None:
    parsed = parse("From: kai.wolf@mail.example", "Subject: Termin", body=b"Von: mir\r\nAn: euch\r\n")
    assert parsed.subject == "Termin" and "Von: mir" in parsed.text


# --- auto replies -----------------------------------------------------------------------

def test_an_auto_reply_subject_drops_a_mail_only_with_a_body_that_reads_as_one() -> None:
    absence = b"I am out of the office until 7 December and will reply then."
    assert parse("From: a@corp.example", "Subject: Out of office: Re: your case", body=absence).kind == "auto_reply"
    complaint = b"Out of office all week because my car broke down again; the dealer's repair failed twice."
    assert parse("From: a@corp.example", "Subject: Out of office since the brakes failed", body=complaint).kind == "normal"


def test_header_evidence_alone_makes_an_auto_reply() -> None:
    assert parse("From: a@corp.example", "Subject: Bremsen", "Auto-Submitted: auto-replied").kind == "auto_reply"
    assert parse("From: a@corp.example", "Subject: Bremsen", "X-Autorespond: yes").kind == "auto_reply"


# --- attachment names -------------------------------------------------------------------

def _report_with(parts: str) -> ParsedMail:
    return parse("From: MAILER-DAEMON@mx.mail.example (Mail Delivery System)", "Subject: Undelivered Mail",
                 'Content-Type: multipart/mixed; boundary="b"',
                 body=("--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
                       + parts + "--b--\r\n").encode())


def test_a_nameless_part_is_named_after_its_description() -> None:
    """A delivery report names none of its parts; their descriptions say what they are."""
    parsed = _report_with(
        "--b\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.mail.example\r\n\r\nFinal-Recipient: rfc822; li@mail.example\r\nAction: failed\r\n"
        "--b\r\nContent-Description: =?utf-8?Q?R=C3=BCckl=C3=A4ufer?= / Kopie\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: kefu@brand.example\r\nSubject: Ihr Fall\r\n\r\nHallo\r\n")
    assert [a.filename for a in parsed.attachments] == ["Delivery report.txt", "Ihr Fall.eml"]


def test_a_nameless_report_part_is_named_after_its_type_and_a_named_one_keeps_its_name() -> None:
    parsed = _report_with(
        "--b\r\nContent-Type: message/disposition-notification\r\n\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n"
        '--b\r\nContent-Description: Rechnung\r\nContent-Type: application/pdf; name="rechnung-4711.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n")
    assert [a.filename for a in parsed.attachments] == ["disposition-notification.txt", "rechnung-4711.pdf"]


def test_a_nameless_attached_message_is_named_after_its_subject_and_a_report_part_after_its_type() -> None:
    """A returned mail (Zammad's mail078): staff see "delivery-status.txt" and the subject of
    the mail that came back, not attachment-1/attachment-2."""
    parsed = _report_with(
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.mail.example\r\n\r\n"
        "Final-Recipient: rfc822; li@mail.example\r\nAction: delayed\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: kefu@brand.example\r\nSubject: =?utf-8?Q?Ihre_Anfrage_[Fall=23SH001]?=\r\n\r\nHallo\r\n")
    assert [a.filename for a in parsed.attachments] == ["delivery-status.txt", "Ihre Anfrage [Fall#SH001].eml"]


# --- senders ----------------------------------------------------------------------------

@pytest.mark.parametrize(("sender", "address"), [
    ('"your secret past" <power quadrant system@example.com>', '"power quadrant system"@example.com'),
    ("Li Na <  li  na@mail.example >", '"li na"@mail.example'),
    ('"Wang Wei"@mail.example', '"wang wei"@mail.example'),  # quoted already: kept
])
def test_a_local_part_with_spaces_inside_angle_brackets_is_read_as_the_quoted_mailbox_it_means(
        sender: str, address: str) -> None:
    parsed = parse(f"From: {sender}", "Subject: Bremsen", "Date: Fri, 4 Dec 2026 08:00:00 +0000")
    assert (parsed.from_address, parsed.warnings) == (address, [])


@pytest.mark.parametrize("sender", [
    "Martin <redacted@redacted>",  # a single-label domain: no reply could reach it
    "power quadrant system@example.com",  # no brackets: which words are the address is a guess
])
def test_an_address_a_reply_cannot_reach_is_not_taken_for_the_sender(sender: str) -> None:
    assert parse(f"From: {sender}", "Subject: Bremsen").from_address is None


# --- kinds ------------------------------------------------------------------------------

NEWSLETTER = ("<p>Nur 3,90 statt 39,90 EUR: In-Ear-Headset, jetzt supergünstig!</p>"
              "<p>Newsletter im Browser ansehen</p><p>Vom Newsletter abmelden</p>")


def test_a_shop_mailing_without_list_headers_is_bulk_by_its_footer() -> None:
    parsed = parse("From: Shop <angebote@shop.example>", "Subject: -90%!", "Content-Type: text/html; charset=utf-8",
                   body=NEWSLETTER.encode())
    assert parsed.kind == "bulk"


def test_a_gateways_infomail_mark_makes_bulk() -> None:
    parsed = parse("From: Shop <angebote@shop.example>", "Subject: -90%!", "X-antispameurope-detected-infomail: yes",
                   body=b"Nur 3,90 statt 39,90 EUR!")
    assert parsed.kind == "bulk"


@pytest.mark.parametrize(("subject", "body"), [
    ("Bremsen", "Bitte melden Sie mich vom Newsletter ab, und die Bremsen quietschen noch."),  # one kind only
    ("WG: Angebot", NEWSLETTER),  # a customer forwarding a mailing writes about it
    ("Angebot", "Mein Auto hat nach dem Newsletter im Browser ansehen ... abmelden" + NEWSLETTER),  # their voice
])
def test_a_customer_mentioning_a_newsletter_is_not_bulk(subject: str, body: str) -> None:
    assert parse("From: Kai <kai@mail.example>", f"Subject: {subject}", body=body.encode()).kind == "normal"


def test_a_quoted_mailbox_is_masked_like_any_other() -> None:
    """Intake now takes such senders as customers: the masks must know them too."""
    from shared.complaints.masking import mask_text
    assert mask_text('Antwort an "li na"@mail.example und kai@mail.example') == "Antwort an l***@mail.example und k***@mail.example"


def _mixed(plain: str, html: str) -> bytes:
    return (
        "From: Kim <kim@mail.example>\r\nTo: complaints@aurora-motors.example\r\nSubject: two parts\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n"
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b--\r\n"
    ).encode()


def test_an_html_part_beside_the_plain_one_in_a_mixed_mail_is_read_too() -> None:
    """A mixed mail whose HTML part says more than its plain part: both are the body."""
    mail = parse_mail(_mixed("The first part, in plain text.",
                             "<p>The second part: the brakes grabbed on the ring road.</p>"), received_at=NOW)
    assert "first part" in mail.text and "brakes grabbed on the ring road" in mail.text


def test_an_html_part_that_repeats_the_plain_one_is_not_read_twice() -> None:
    text = "我的车刹车有异响，去了三次4S店都没有修好，希望尽快处理。"
    mail = parse_mail(_mixed(text, f"<div>{text}</div>"), received_at=NOW)
    assert mail.text.count("刹车有异响") == 1
