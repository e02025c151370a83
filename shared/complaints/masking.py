"""Contact data shown to the customer, masked: the status page is reached by a link that may
be forwarded, so it shows enough of a phone, an e-mail address, a VIN or a plate for the
customer to recognise it, never all of it. The same masks serve the page's fields and the
text of the mails on it.

The patterns are also what the case library replaces (``library.anonymize``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A quoted local part ("power quadrant system"@example.com) is a mailbox intake accepts too.
EMAIL = re.compile(r'(?:"[^"\r\n]{1,64}"|[A-Za-z0-9._%+-]+)@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+')
VIN = re.compile(r"(?<![\dA-Za-z])[A-HJ-NPR-Z0-9]{13}[0-9]{4}(?![A-Za-z0-9])")
PHONES = (
    re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)"),  # mobile
    re.compile(r"(?<![\d+])(?:\(?0\d{2,3}\)?[\s-]?)\d{7,8}(?!\d)"),  # fixed line with its area code
    re.compile(r"\+\d{1,3}[\s-]?(?:\d[\s-]?){6,12}\d"),  # international
)
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领"
PLATE = re.compile(rf"[{_PROVINCES}]\s?[A-HJ-NP-Za-hj-np-z][\s·•.\-]?[A-HJ-NP-Za-hj-np-z0-9]{{5,6}}(?![A-Za-z0-9])")


def mask_phone(phone: str) -> str:
    """``138****8001``: the first three and the last four digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):  # +86 and a mobile: the mobile's own digits
        digits = digits[2:]
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"


def mask_email(email: str) -> str:
    """``l***@mail.example``: the first letter and the domain."""
    local, _, domain = email.rpartition("@")
    first = local.strip('"')[:1]  # of a quoted local part, its first letter
    return f"{first}***@{domain}"


def mask_vin(vin: str) -> str:
    """``LAU**********0001``: the maker's code and the serial's last four."""
    return vin[:3] + "*" * max(len(vin) - 7, 4) + vin[-4:]


def mask_plate(plate: str) -> str:
    """``沪A***45``: the province and city letter, the last two."""
    compact = re.sub(r"[\s·•.\-]", "", plate)
    return compact[:2] + "***" + compact[-2:]


_MASKS = ((EMAIL, mask_email), (VIN, mask_vin), *((p, mask_phone) for p in PHONES), (PLATE, mask_plate))


def mask_text(text: str, known: Iterable[str | None] = ()) -> str:
    """``text`` with every phone, e-mail address, VIN and plate masked: the ``known`` ones (the
    case's own, however they were written) and whatever else looks like one."""
    for value in sorted({v.strip() for v in known if v and len(v.strip()) >= 5}, key=len, reverse=True):
        mask = next((m for p, m in _MASKS if p.fullmatch(value)), None)
        text = re.sub(re.escape(value), (mask or mask_phone)(value), text, flags=re.IGNORECASE)
    for pattern, mask in _MASKS:
        text = pattern.sub(lambda found, mask=mask: mask(found.group()), text)  # type: ignore[misc]
    return text
