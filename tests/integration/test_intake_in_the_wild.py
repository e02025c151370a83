"""Intake's dispositions for what real-world mail does (issue 19, issue 15 item 6), each in
our own small messages: who the customer is when originals are attached, languages beyond
zh/en and the language they are answered in, bulk adverts, a brand's unknown addresses."""

from __future__ import annotations

import pytest

from shared.complaints.intake import InboundMail, SesVerdicts
from shared.complaints.tenant import Brand
from tests.integration.test_intake_bad_input import SH001, Harness, headers, mail

KEFU = "kefu@aurora-motors.example"


@pytest.fixture
def h() -> Harness:
    return Harness()


def _attached(*originals: tuple[str, str, str]) -> str:
    """A multipart/mixed body: a short note, then each (sender, subject, text) as message/rfc822."""
    parts = ["--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{note}\r\n"]
    for sender, subject, text in originals:
        parts.append(f"--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
                     f"From: {sender}\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n")
    return "".join(parts) + "--b--\r\n"


# --- the forward rule ---------------------------------------------------------------------

def test_a_customer_attaching_two_earlier_messages_stays_the_customer(h: Harness) -> None:
    body = _attached(("Werkstatt <service@garage.example>", "Ihr Termin", "Ihr Termin ist am Montag."),
                     ("Versicherung <claims@insurer.example>", "Schadenmeldung", "Wir prüfen den Schaden.")
                     ).format(note="Die Bremsen quietschen immer noch, siehe die beiden Mails im Anhang.")
    raw = mail("From: Kai Wolf <kai.wolf@mail.example>", f"To: {SH001}", "Subject: AW: Bremsen",
               "Message-ID: <kw-1@mail.example>", 'Content-Type: multipart/mixed; boundary="b"', body=body)
    case = h.case(h.deliver(raw))
    assert (case.customer.email, case.customer.name, case.reporter) == ("kai.wolf@mail.example", "Kai Wolf", None)
    assert [a.filename for a in h.d.store.attachments(case.case_no)] == ["Ihr Termin.eml", "Schadenmeldung.eml"]
    assert len(h.sent_to("kai.wolf@mail.example")) == 1 and h.sent_to("service@garage.example") == []


def test_a_customer_forwarding_the_dealers_reply_is_not_the_dealers_complaint(h: Harness) -> None:
    body = ("我对这个答复不满意，刹车还是响。\n\n---------- Forwarded message ----------\n"
            "From: 上海店客服 <cs.sh001@dealers.example>\nDate: 2026年11月20日 10:02\nSubject: 回复：刹车异响\n\n"
            "您好，经检测刹车正常。")
    raw = mail(*headers("li.na@mail.example", "Fwd: 回复：刹车异响"), body=body)
    case = h.case(h.deliver(raw))
    assert (case.customer.email, case.reporter) == ("li.na@mail.example", None)


def test_an_unknown_sender_who_says_it_passes_on_a_customers_complaint_is_the_reporter(h: Harness) -> None:
    body = ("朋友托我转交他的投诉，请处理。\n\n---------- Forwarded message ----------\n"
            "From: 赵刚 <zhao.gang@mail.example>\nDate: 2026年11月21日 09:00\nSubject: 变速箱顿挫\n\n"
            "我的车变速箱换挡顿挫，修了三次。")
    case = h.case(h.deliver(mail(*headers("friend@mail.example", "Fwd: 变速箱顿挫"), body=body)))
    assert (case.customer.email, case.customer.name, case.reporter) == (
        "zhao.gang@mail.example", "赵刚", "friend@mail.example")


def test_a_brand_address_forwarding_an_attached_original_makes_its_sender_the_customer(h: Harness) -> None:
    body = _attached(("马丽 <mali@mail.example>", "保险理赔", "理赔款两个月没到账。")).format(note="来电客户的原邮件。")
    raw = mail("From: 400 Hotline <hotline@aurora-motors.example>", f"To: {KEFU}", "Subject: 保险理赔",
               "Message-ID: <hl-9@aurora-motors.example>", 'Content-Type: multipart/mixed; boundary="b"', body=body)
    case = h.case(h.deliver(raw, to=[KEFU]))
    assert (case.customer.email, case.reporter) == ("mali@mail.example", "hotline@aurora-motors.example")


# --- senders a mature parser recovers --------------------------------------------------------

def test_a_mail_without_from_is_registered_for_its_reply_to(h: Harness) -> None:
    raw = mail("Reply-To: Kai Wolf <kai.wolf@mail.example>", f"To: {SH001}", "Subject: Bremsen quietschen",
               "Message-ID: <nofrom-1@mail.example>", body="Die Bremsen quietschen seit der Inspektion.")
    result = h.deliver(raw, envelope="bounces@relay.example")
    assert result.disposition == "new_case"
    assert h.case(result).customer.email == "kai.wolf@mail.example"


def test_a_mail_with_a_stray_line_before_its_headers_is_registered(h: Harness) -> None:
    raw = b"(copied from the old inbox)\r\n" + mail(*headers("li.na@mail.example"))
    result = h.deliver(raw)
    assert result.disposition == "new_case" and h.case(result).subject == "刹车异响"


def test_a_mail_whose_received_lines_lost_their_indent_is_registered_for_its_from(h: Harness) -> None:
    """The relay's unindented continuation lines would end the headers: the sender would be
    the envelope's and the subject lost."""
    relay = ("Return-Path: bounce-7@relay.example", f"X-Original-To: {SH001}", "Received: from relay.example ([192.0.2.7])",
             "by mx.aurora-motors.example with ESMTP", "Mon, 23 Nov 2026 09:30:02 +0800")
    result = h.deliver(mail(*relay, *headers("li.na@mail.example")))
    case = h.case(result)
    assert (result.disposition, case.customer.email, case.subject) == ("new_case", "li.na@mail.example", "刹车异响")


# --- languages ------------------------------------------------------------------------------

GERMAN = ("Sehr geehrte Damen und Herren, seit der Inspektion bei Ihnen quietschen die Bremsen meines Autos. "
          "Ich bitte um einen Termin, die Werkstatt hat mich nicht zurückgerufen.")


def test_a_german_mail_is_recorded_as_german_and_answered_in_the_brands_fallback(h: Harness) -> None:
    raw = mail(*headers("kai.wolf@mail.example", "Bremsen quietschen"), body=GERMAN)
    case = h.case(h.deliver(raw))
    assert case.language == "de"
    [ack] = h.sent_to("kai.wolf@mail.example")
    assert h.d.tenant.brand.fallback_language == "en"
    assert 'lang="en"' in ack.html and not any("\u4e00" <= ch <= "\u9fff" for ch in ack.subject)


def test_without_a_fallback_the_brands_first_language_answers(h: Harness) -> None:
    tenant = h.d.tenant
    brand = Brand.model_validate({**tenant.brand.model_dump(), "fallback_language": None})
    assert brand.reply_language("de") == brand.languages[0] == "zh"
    assert brand.reply_language("zh-Hant") == "zh-Hant" and brand.reply_language("en") == "en"
    with pytest.raises(ValueError, match="fallback_language"):
        Brand.model_validate({**tenant.brand.model_dump(), "fallback_language": "de"})


def test_a_french_customer_opening_the_status_page_reads_it_in_the_fallback(h: Harness) -> None:
    body = "Bonjour, les freins de ma voiture font du bruit depuis la révision et je ne suis pas content du service."
    case = h.case(h.deliver(mail(*headers("claire@mail.example", "Freins bruyants"), body=body)))
    assert case.language == "fr"
    ctx = h.lifecycle.load(case.case_no)
    assert h.lifecycle.customer_recipient(ctx).language == "en"  # type: ignore[union-attr]


# --- bulk adverts ---------------------------------------------------------------------------

SEMINAR = ("=====================\n        汽车售后服务经理实战训练营\n=====================\n"
           "【课程时间】12月12-13日 上海\n【培训对象】售后经理、服务顾问、车间主任\n"
           "【课程大纲】一、刹车、转向、安全气囊等安全件的质量问题如何向客户解释\n二、客户投诉媒体曝光的危机应对\n"
           "【学习费用】3200元/人（含讲义、午餐）\n【报名咨询】021-5555 0101  QQ：1234567890\n"
           "如不希望再收到此类邮件，回复“退订”即可。")


def test_a_bulk_advert_for_a_seminar_is_never_raised_to_critical(h: Harness) -> None:
    case = h.case(h.deliver(mail(*headers("promo@training.example", "售后经理实战训练营"), body=SEMINAR)))
    cls = case.classification
    assert (cls.severity, cls.safety, cls.possible_safety, cls.media_or_regulator) == ("general", False, False, False)
    assert any("bulk advert" in reason for reason in cls.reasons)
    assert h.d.store.list_held("aurora") == []  # still a case staff can see and close


def test_a_customers_complaint_mentioning_a_training_is_not_an_advert(h: Harness) -> None:
    body = ("我的车刹车失灵，在高速上差点出事故。店里说技师去参加培训了，课程结束才能修，"
            "报名的事跟我有什么关系？QQ：1234567890")
    case = h.case(h.deliver(mail(*headers("li.na@mail.example", "刹车失灵"), body=body)))
    assert case.classification.severity == "critical"


# --- addresses --------------------------------------------------------------------------------

@pytest.mark.parametrize("recipient", ["service@aurora-motors.example", "shanghai@complaints.aurora-motors.example"])
def test_an_unknown_local_part_of_a_brand_domain_reaches_its_triage_queue(h: Harness, recipient: str) -> None:
    result = h.deliver(mail(*headers("li.na@mail.example"), body="车门关不严，请尽快处理。"), to=[recipient])
    assert result.disposition == "new_case"
    assert h.case(result).dealer is None and h.case(result).case_no.startswith("AUR-HQ-")


def test_mail_to_a_domain_no_brand_receives_at_is_still_quarantined(h: Harness) -> None:
    result = h.intake.receive(_inbound(h, "someone@aurora-motors.example.other"))
    assert result.disposition == "quarantine_malformed"


def _inbound(h: Harness, recipient: str) -> InboundMail:
    h.blobs.put("raw/elsewhere", mail(*headers()))
    return InboundMail("ses-elsewhere", "raw/elsewhere", [recipient], SesVerdicts(), None, None)


# --- senders, spam and mailings (Zammad's mail071, 046/069, 047) ---------------------------

def test_a_sender_with_spaces_in_the_bracketed_local_part_is_the_customer_and_is_answered(h: Harness) -> None:
    result = h.deliver(mail(*headers('"Li Na" <li na@mail.example>')))
    case = h.case(result)
    assert (result.disposition, case.customer.email) == ("new_case", '"li na"@mail.example')
    assert h.sent_to('"li na"@mail.example'), "the acknowledgement goes to the mailbox the sender meant"


def test_a_sender_whose_domain_has_no_dot_is_held_as_malformed(h: Harness) -> None:
    result = h.deliver(mail(*headers("Martin <redacted@redacted>")))
    [held] = h.d.store.list_held("aurora")
    assert (result.disposition, held.held_id) == ("quarantine_malformed", result.held_id)


@pytest.mark.parametrize("flag", [("X-Spam-Flag: YES",), ("X-Spam-Status: Yes, score=9.4 required=5.0",)])
def test_a_mail_a_spam_filter_on_the_way_flagged_is_held_as_spam(h: Harness, flag: tuple[str, ...]) -> None:
    result = h.deliver(mail(*headers("li.na@mail.example", "刹车异响", None, *flag)))
    [held] = h.d.store.list_held("aurora")
    assert (result.disposition, result.case_no, held.held_id) == ("quarantine_spam", None, result.held_id)


def test_a_mail_a_spam_filter_passed_opens_a_case(h: Harness) -> None:
    flags = ("X-Spam-Flag: NO", "X-Spam-Status: No, score=-1.9 required=6.6")
    assert h.deliver(mail(*headers("li.na@mail.example", "刹车异响", None, *flags))).disposition == "new_case"


def test_a_shop_mailing_without_list_headers_is_ignored_as_bulk(h: Harness) -> None:
    body = ("Nur 3,90 statt 39,90 EUR: In-Ear-Headset, jetzt supergünstig!\r\n"
            "Newsletter online ansehen | Vom Newsletter abmelden\r\n")
    result = h.deliver(mail(*headers("angebote@shop.example", "-90%!"), body=body))
    assert (result.disposition, result.case_no) == ("ignore_bulk", None)
