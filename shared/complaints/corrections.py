"""Staff corrections and reviews as labelled examples (``complaints corrections export``): the
classification report replays them (``benchmarks/classify.py --corpus DIR``).

Each corrected or reviewed case becomes ``<case_no>.eml`` (its raw mail; a phone or walk-in
complaint a mail made of its subject and text) and one entry of ``labels.json``, in the corpus
format: what the classification is after the staff's word, and why. Personal data stays in the
mail only: the labels carry none. The folder is the brand's own data.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from .models import Case, TimelineEvent
from .tenant import Tenant

# The timeline events by which staff settle a classification (casework.Casework._reclassify).
STAFF_EVENTS = ("classification_corrected", "safety_reviewed", "category_confirmed")


def example_file(case: Case) -> str:
    return f"{case.case_no}.eml"


def _why(events: list[TimelineEvent], tenant: Tenant, case: Case) -> str:
    parts = []
    for e in events:
        if e.type not in STAFF_EVENTS:
            continue
        member = tenant.staff_member(e.actor)
        role = member.role if member else "staff"
        changes = e.data.get("changes")
        marks = e.data.get("marks")
        fields = [*(changes if isinstance(changes, dict) else {}), *(marks if isinstance(marks, list) else [])]
        day = tenant.calendar_for(case.dealer).local(e.at).strftime("%Y-%m-%d")
        parts.append(f"corrected by {role} on {day}: {', '.join(str(f) for f in fields) or e.type}")
    return "; ".join(parts)


def labelled_example(case: Case, events: list[TimelineEvent], tenant: Tenant) -> dict[str, Any] | None:
    """The case's entry of ``labels.json``, or None if no staff settled its classification."""
    why = _why(events, tenant, case)
    if not why:
        return None
    c = case.classification
    return {"file": example_file(case), "category": c.category, "severity": c.severity, "safety": c.safety,
            "media_or_regulator": c.media_or_regulator, "language": case.language, "tags": ["correction"],
            "why": why}


def synthetic_mail(case: Case, tenant: Tenant) -> bytes:
    """A complaint that came by phone, walk-in or another channel without a mail: its subject
    and text as a mail, so that the classifier reads it as it read the case."""
    mail = EmailMessage()
    mail["Subject"] = case.subject
    mail["From"] = f"{case.channel.replace('_', '-')}@intake.invalid"
    mail["To"] = tenant.brand.intake_addresses[0] if tenant.brand.intake_addresses else tenant.brand.sender_address
    mail["Date"] = format_datetime(case.received_at)
    mail["X-Complaint-Channel"] = case.channel
    mail.set_content(case.description, charset="utf-8")
    return bytes(mail)
