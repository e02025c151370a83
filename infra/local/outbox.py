"""The local mail catcher: every mail the system sends, with its links, in order."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.adapters.aws import build_mime, outgoing_mail, outgoing_mail_doc
from shared.complaints.clock import iso, parse_iso
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

    def line(self) -> str:
        return json.dumps({"id": self.id, "mail": outgoing_mail_doc(self.mail), "sent_at": iso(self.sent_at),
                           "raw": base64.b64encode(self.raw).decode()}, ensure_ascii=False)

    @classmethod
    def from_line(cls, line: str) -> SentMail:
        data = json.loads(line)
        return cls(int(data["id"]), outgoing_mail(data["mail"]), base64.b64decode(data["raw"]),
                   parse_iso(data["sent_at"]))


class Outbox:
    """``Mailer`` for the local runtime. Listeners are called synchronously, inside the
    sending handler, so a test persona can hold the clock before warp moves on. With a
    ``path``, every mail is appended to it as it is sent and read back at start."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = path
        self._mails: list[SentMail] = []
        self._listeners: list[Callable[[SentMail], None]] = []
        if path is not None and path.exists():
            with path.open(encoding="utf-8") as f:
                self._mails = [SentMail.from_line(line) for line in f if line.strip()]

    def send(self, mail: OutgoingMail) -> None:
        raw = build_mime(mail)  # the same MIME that SES would send
        with self._lock:
            sent = SentMail(len(self._mails) + 1, mail, raw, mail.sent_at or datetime.now())
            self._mails.append(sent)
            if self._path is not None:
                with self._path.open("a", encoding="utf-8") as f:
                    f.write(sent.line() + "\n")
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
            if self._path is not None:
                self._path.write_text("", encoding="utf-8")
