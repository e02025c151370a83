"""Outgoing mail that survives a mail service refusing it for a while.

``ReliableMailer`` is the ``Mailer`` the domain sends through. A refused send is tried
again after a random wait that doubles each time, up to a cap (exponential backoff with
full jitter, so that many senders refused at once do not come back at once); if the mail
service still refuses, the mail is kept as pending (``CaseStore.defer_mail``) and the
case's timeline says so. The step that sent it goes on: a deadline, a decision or a
closing never waits on the mail service. The reconciler re-sends pending mail on its
schedule (``resend``), with the same Message-ID, so that a reply still threads.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from .clock import Clock, iso
from .errors import MailDeliveryError
from .models import TimelineEvent
from .ports import CaseStore, Mailer, OutgoingMail, PendingMail


@dataclass(frozen=True)
class RetryRules:
    attempts: int = 3  # sends of one mail before it waits for the reconciler
    base_s: float = 0.2  # the wait before the second send is random, up to this; it doubles each time
    cap_s: float = 2.0  # ... up to this

    def wait_before(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: a uniform wait up to the capped exponential bound (``attempt`` >= 2)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempt - 2)))


class ReliableMailer:
    def __init__(self, mailer: Mailer, store: CaseStore, clock: Clock, rules: RetryRules | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.mailer = mailer
        self.store = store
        self.clock = clock
        self.rules = rules or RetryRules()
        self._sleep = sleep
        self._rng = rng or random.Random()

    def send(self, mail: OutgoingMail) -> None:
        try:
            self._send(mail)
        except MailDeliveryError as exc:
            self._defer(mail, str(exc) or type(exc).__name__)

    def resend(self, pending: PendingMail) -> bool:
        """One more try for a pending mail; True when it went out (and is no longer pending)."""
        try:
            self._send(pending.mail)
        except MailDeliveryError as exc:
            self.store.settle_mail(replace(pending, attempts=pending.attempts + 1, error=str(exc) or pending.error),
                                   sent=False)
            return False
        self.store.settle_mail(pending, sent=True)
        if pending.mail.case_no:
            self.store.add_event(TimelineEvent(
                case_no=pending.mail.case_no, at=self.clock.now(), type="mail_resent", actor="system",
                summary=f"Mail sent again after the mail service had refused it ({pending.error}): "
                        f"{pending.mail.subject[:100]}",
                data={"message_id": pending.mail.message_id.strip("<>"), "pending_id": pending.pending_id,
                      "attempts": pending.attempts + 1}))
        return True

    def _send(self, mail: OutgoingMail) -> None:
        for attempt in range(1, self.rules.attempts + 1):
            if attempt > 1:
                self._sleep(self.rules.wait_before(attempt, self._rng))
            try:
                self.mailer.send(mail)
                return
            except MailDeliveryError:
                if attempt == self.rules.attempts:
                    raise

    def _defer(self, mail: OutgoingMail, error: str) -> None:
        now = self.clock.now()
        digest = hashlib.sha256(mail.message_id.encode()).hexdigest()[:16]
        pending = PendingMail(f"{iso(now)}#{digest}", mail, now, error)
        self.store.defer_mail(pending)
        if mail.case_no:
            self.store.add_event(TimelineEvent(
                case_no=mail.case_no, at=now, type="mail_deferred", actor="system",
                summary=f"The mail service refused a mail ({error}) {self.rules.attempts} times: it will be sent "
                        f"again: {mail.subject[:100]}",
                data={"message_id": mail.message_id.strip("<>"), "pending_id": pending.pending_id, "error": error}))
