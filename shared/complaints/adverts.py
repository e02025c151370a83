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


def bulk_advert(subject: str, text: str) -> str | None:
    """Why a mail reads as a bulk advert, or None."""
    if _VOICE.search(text):
        return None
    markers = sorted({m.group(0).lower() for m in _MARKETING.finditer(f"{subject}\n{text}")})
    if len(markers) < _MARKERS:
        return None
    return "reads as a bulk advert (" + ", ".join(markers[:5]) + "), not a customer's complaint"
