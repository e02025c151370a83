"""Complaints that staff enter (policy.md §2): the phone hotline and the 400 line, walk-ins,
social media, letters, online forms. What staff enter is kept unchanged as the case's
original; from there it is registered exactly as a mail is: routed, classified, checked
for repeats, numbered, acknowledged (when there is an e-mail address), started.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .clock import iso
from .errors import InvalidInputError
from .intake import Complaint, Intake, IntakeResult
from .models import Customer, Language
from .routing import mobile_numbers
from .tenant import Staff, Tenant

EnteredChannel = Literal["phone", "hotline_400", "walk_in", "social_media", "letter", "online_form"]
CHANNEL_NAMES: dict[str, tuple[str, str]] = {
    "phone": ("电话", "phone"), "hotline_400": ("400 热线", "400 hotline"), "walk_in": ("现场", "walk-in"),
    "social_media": ("社交媒体/公众号", "social media"), "letter": ("信函", "letter"),
    "online_form": ("在线表单", "online form"),
}
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")


class ManualComplaint(BaseModel):
    """What staff enter for one complaint (a JSON body or the intake form's fields)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # The form carries a fresh one: submitting it twice registers one case.
    request_id: str = Field(default_factory=lambda: secrets.token_hex(16), pattern=r"^[A-Za-z0-9_-]{8,64}$")
    channel: EnteredChannel
    customer_name: str | None = Field(default=None, max_length=100)
    customer_email: str | None = Field(default=None, max_length=254)
    customer_phone: str | None = Field(default=None, max_length=40)
    subject: str = Field(default="", max_length=200)
    description: str = Field(min_length=1, max_length=20000)
    dealer: str | None = Field(default=None, max_length=20)  # none: routed like a mail
    vin: str | None = Field(default=None, max_length=17)
    plate: str | None = Field(default=None, max_length=12)
    language: Language | None = None  # the customer's; none: read from the description
    received_at: datetime | None = None  # when the customer called or came; none: now

    @field_validator("customer_name", "customer_email", "customer_phone", "dealer", "vin", "plate", "language",
                     "received_at", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("customer_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.fullmatch(value):
            raise ValueError("not an e-mail address")
        return value.lower() if value else None

    @model_validator(mode="after")
    def _contact(self) -> ManualComplaint:
        if not (self.customer_email or self.customer_phone):
            raise ValueError("an e-mail address or a phone number of the customer is needed")
        return self


def register(intake: Intake, tenant: Tenant, entered: ManualComplaint, by: Staff) -> IntakeResult:
    """Register what staff entered; dealer staff register for their own dealer."""
    if entered.dealer and not tenant.has_dealer(entered.dealer):
        raise InvalidInputError("unknown dealer", {"dealer": "not a dealer of this brand"})
    now = intake.clock.now()
    received_at = entered.received_at or now
    if received_at.tzinfo is None:  # staff write the time on the wall: the dealer's (the brand's for triage)
        received_at = received_at.replace(tzinfo=ZoneInfo(tenant.calendar_for(by.dealer or entered.dealer).timezone))
    received_at = min(received_at, now)  # a typo must not date a case in the future
    raw_key = f"manual/{tenant.brand.id}/{entered.request_id}.json"

    def complaint() -> Complaint:
        original = {**entered.model_dump(mode="json"), "entered_by": by.email, "entered_at": iso(now)}
        intake.blobs.put(raw_key, json.dumps(original, ensure_ascii=False, indent=1).encode(), "application/json")
        phone = entered.customer_phone
        return Complaint(
            channel=entered.channel, received_at=received_at, subject=entered.subject,
            text=entered.description, raw_key=raw_key, reporter=by.email,
            customer=Customer(name=entered.customer_name, email=entered.customer_email,
                              phone=next(iter(mobile_numbers(phone)), re.sub(r"[\s-]", "", phone)) if phone else None),
            dealer=by.dealer or entered.dealer, vin=entered.vin, plate=entered.plate, language=entered.language,
            entered_at=now)
    return intake.register_once(tenant, f"manual-{tenant.brand.id}-{entered.request_id}", raw_key, complaint)
