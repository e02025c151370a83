"""Bulk adverts that reach a complaints address (training seminars, study abroad,
invoices for sale): marketing's markers and no complainant's voice. Such mail still
becomes a case staff can close, but is never raised to critical or major: a seminar
programme listing "brakes" or "quality problems" is no safety risk."""

from __future__ import annotations

import re

# What adverts say and complaints do not: unsubscribe lines, course programmes, fees per
# head, sign-up and consulting lines, contact by QQ number, offers.
_MARKETING = re.compile(
    r"退订|退訂|unsubscribe|abmelden|désinscri|课程|課程|培训|培訓|讲师|講師|讲授|報名|报名|学费|學費|元/人|"
    r"招生|留学|留學|移民|咨询热线|咨询电话|咨询回复|QQ\S{0,3}[:：]\s*\d{5,}|代开发票|"
    r"webinar|seminar|newsletter|special offer|limited time offer|click here|sign up now",
    re.IGNORECASE,
)
# The complainant's voice: someone writing about their own car or their own experience.
_VOICE = re.compile(
    r"我的车|我的車|我车|我車|我家的?车|本人的?车|我(?:在|于|於|去|到|买|買|开|開)|"
    r"\bmy (?:car|vehicle)\b|\bi (?:bought|drove|was driving|took)\b|\bmein(?:e|en)? (?:auto|wagen|fahrzeug)\b|"
    r"\bma voiture\b",
    re.IGNORECASE,
)
_MARKERS = 3  # different markers before a mail reads as an advert

# A mass mailing's footer, by kind: a way to unsubscribe, a copy to view in the browser, the
# sender's note on why the reader gets it. Two different kinds make a newsletter (one alone a
# customer may quote: "unsubscribe me").
_NEWSLETTER = {
    "unsubscribe": re.compile(r"unsubscribe|abmelden|abbestellen|désinscri|退订|退訂|取消订阅|取消訂閱", re.IGNORECASE),
    "view in browser": re.compile(
        r"(?:view|read|open)\s+(?:it\s+|this\s+(?:e-?mail|message)\s+)?(?:in|on)\s+(?:your|a|the)\s+(?:web\s*)?browser"
        r"|im\s+(?:web)?browser\s+(?:ansehen|anzeigen|öffnen|lesen)|online\s+(?:ansehen|anzeigen|lesen)"
        r"|在浏览器中查看|在瀏覽器中查看|网页版|網頁版", re.IGNORECASE),
    "mailing footer": re.compile(
        r"newsletter|you (?:are )?receiv\w* this (?:e-?mail|message) because|diese (?:e-?mail|nachricht) wurde an"
        r"|sie erhalten diese (?:e-?mail|nachricht)|this (?:e-?mail|message) was sent to|本邮件由系统自动发送|您收到此邮件是因为",
        re.IGNORECASE),
}
_NEWSLETTER_KINDS = 2


def newsletter(subject: str, text: str) -> list[str]:
    """The kinds of mass-mailing footer a mail carries when it reads as a newsletter (at least
    two kinds, and no complainant's voice), else []."""
    if _VOICE.search(text):
        return []
    kinds = [kind for kind, pattern in _NEWSLETTER.items() if pattern.search(f"{subject}\n{text}")]
    return kinds if len(kinds) >= _NEWSLETTER_KINDS else []


def bulk_advert(subject: str, text: str) -> str | None:
    """Why a mail reads as a bulk advert, or None."""
    if _VOICE.search(text):
        return None
    markers = sorted({m.group(0).lower() for m in _MARKETING.finditer(f"{subject}\n{text}")})
    if len(markers) < _MARKERS:
        return None
    return "reads as a bulk advert (" + ", ".join(markers[:5]) + "), not a customer's complaint"
