"""The local mail catcher: every mail the system sends, with its links, in order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.aws import build_mime
from shared.complaints.clock import iso
from shared.complaints.ports import OutgoingMail


@dataclass(frozen=True)
class SentMail:
    id: int
    mail: OutgoingMail
    raw: bytes
    sent_at: datetime

    def as_dict(self) -> dict[str, Any]:
        m = self.mail
        return {"id": self.id, "from": f"{m.sender_name} <{m.sender}>", "to": m.to, "subject": m.subject,
                "text": m.text, "html": m.html, "sent_at": iso(self.sent_at), "message_id": m.message_id.strip("<>"),
                "case_no": m.case_no, "links": list(m.links), "headers": dict(m.headers)}


class Outbox:
    """``Mailer`` for the local runtime. Listeners are called synchronously, inside the
    sending handler, so a test persona can hold the clock before warp moves on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[SentMail] = []
        self._listeners: list[Callable[[SentMail], None]] = []

    def send(self, mail: OutgoingMail) -> None:
        raw = build_mime(mail)  # the same MIME that SES would send
        with self._lock:
            sent = SentMail(len(self._mails) + 1, mail, raw, mail.sent_at or datetime.now())
            self._mails.append(sent)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(sent)

    def subscribe(self, listener: Callable[[SentMail], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def all(self) -> list[SentMail]:
        with self._lock:
            return list(self._mails)

    def for_case(self, case_no: str) -> list[SentMail]:
        return [m for m in self.all() if m.mail.case_no == case_no]

    def clear(self) -> None:
        with self._lock:
            self._mails.clear()
