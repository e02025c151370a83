"""Third-party notes: mail that names a case but is not verifiably its customer's or its staff's.

Case numbers are sequential, so naming one proves nothing. Such a mail is kept on the case
for staff ("from an unverified sender") and does nothing else: it never re-opens the case,
changes its severity, shows on the customer's status page or triggers a reply. Staff who
recognise it as the customer's promote it; the promotion is on the timeline, and from then on
the mail counts as the customer's where the customer's mail is shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

from .clock import Clock
from .models import MailMessage, TimelineEvent


class CaseRecords(Protocol):
    """What ``promote`` needs of the ``CaseStore`` (ports.py imports views, which shows notes: this
    module cannot import ports without a circle)."""

    def messages(self, case_no: str) -> list[MailMessage]: ...

    def events(self, case_no: str) -> list[TimelineEvent]: ...

    def add_event(self, event: TimelineEvent) -> None: ...

NOTE_KIND = "third_party_note"  # the message's kind, and the timeline event's type
PROMOTED = "third_party_promoted"


def note_id(message_id: str) -> str:
    """A URL-safe name for a note (a Message-ID may hold '/', '%' or anything else)."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:16]


def promoted(events: Iterable[TimelineEvent]) -> set[str]:
    return {str(e.data.get("note_id")) for e in events if e.type == PROMOTED}


def is_customers(message: MailMessage, promoted_notes: set[str]) -> bool:
    """Whether an incoming message counts as its sender's own (a note only once promoted)."""
    return message.kind != NOTE_KIND or note_id(message.message_id) in promoted_notes


def promote(store: CaseRecords, clock: Clock, case_no: str, note: str, by: str) -> MailMessage | None:
    """Staff take a note as the customer's mail; None if the case has no such note. A second
    promotion changes nothing."""
    found = next((m for m in store.messages(case_no) if m.kind == NOTE_KIND and note_id(m.message_id) == note), None)
    if found is None:
        return None
    if note not in promoted(store.events(case_no)):
        store.add_event(TimelineEvent(
            case_no=case_no, at=clock.now(), type=PROMOTED, actor=by,
            summary=f"Taken by staff as the customer's mail: {found.subject[:100]}",
            data={"note_id": note, "message_id": found.message_id}))
    return found
