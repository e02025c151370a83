"""The reconciler: what makes sure that nothing received is lost and nothing refused stays unsent.

It runs on a schedule (``infra/catalog.py``) and does two things, reading keys only, never
scanning the table:

1. Received mail. The intake's first write lists every received mail under its day
   (``CaseStore.note_received``). For each listed mail of the last few days not yet
   accounted for, the reconciler reads its inbound record (the SES message id's): done,
   and it is marked accounted for; claimed by an attempt too recently, and it is left to
   that attempt; otherwise it is re-driven through the intake, exactly as SES would
   deliver it again (the SES id makes that idempotent). A mail whose re-drives keep
   failing is, after a few, held for the brand's staff as malformed, with the raw mail,
   so that it still gets a disposition and a person sees it — also when a case number was
   already allocated to it (the held record's detail names it).
2. Outgoing mail the mail service refused (``ReliableMailer``): sent again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock
from .intake import InboundMail, Intake, SesVerdicts
from .outbound import ReliableMailer
from .ports import CaseStore, HeldMail, InboundRecord, ReceivedMail


@dataclass(frozen=True)
class ReconcileRules:
    grace: timedelta = timedelta(minutes=15)  # a claim younger than this may be a live attempt
    lookback_days: int = 3
    max_attempts: int = 5  # failed re-drives before the mail is held for staff
    batch: int = 200  # listed mails per day, and pending mails, per run


@dataclass
class ReconcileReport:
    accounted: int = 0  # listed mails an intake attempt had finished: now marked
    in_flight: int = 0  # claimed too recently to be re-driven: left to their attempt
    redriven: Counter[str] = field(default_factory=Counter)  # re-drives by the disposition they reached
    failed: int = 0  # re-drives that failed: tried again next run
    held: int = 0  # given up after ``max_attempts``: held for staff as malformed
    mails_resent: int = 0
    mails_pending: int = 0  # refused again: still pending
    more: bool = False  # a day's list or the pending mail filled a batch: the next run goes on

    def as_dict(self) -> dict[str, Any]:
        return {"accounted": self.accounted, "in_flight": self.in_flight, "redriven": dict(self.redriven),
                "failed": self.failed, "held": self.held, "mails_resent": self.mails_resent,
                "mails_pending": self.mails_pending, "more": self.more}

    @property
    def settled(self) -> bool:
        """Nothing was left for a later run."""
        return not (self.in_flight or self.failed or self.mails_pending or self.more)


class Reconciler:
    def __init__(self, store: CaseStore, intake: Intake, mailer: ReliableMailer, clock: Clock,
                 rules: ReconcileRules | None = None) -> None:
        self.store = store
        self.intake = intake
        self.mailer = mailer
        self.clock = clock
        self.rules = rules or ReconcileRules()

    def run(self) -> ReconcileReport:
        report = ReconcileReport()
        now = self.clock.now()
        for back in range(self.rules.lookback_days, -1, -1):
            listed = self.store.received_on((now - timedelta(days=back)).date(), limit=self.rules.batch)
            report.more |= len(listed) == self.rules.batch
            for mail in listed:
                self._account_for(mail, now, report)
        pending_mails = self.store.pending_mails(limit=self.rules.batch)
        report.more |= len(pending_mails) == self.rules.batch
        for pending in pending_mails:
            if self.mailer.resend(pending):
                report.mails_resent += 1
            else:
                report.mails_pending += 1
        return report

    def _account_for(self, mail: ReceivedMail, now: datetime, report: ReconcileReport) -> None:
        record = self.store.inbound_record(mail.ses_message_id)
        if record is not None and record.status == "done":
            self.store.settle_received(replace(mail, status="done"))
            report.accounted += 1
            return
        claimed = record.claimed_at if record is not None and record.claimed_at else mail.received_at
        if now - claimed < self.rules.grace:
            report.in_flight += 1
            return
        try:
            result = self.intake.receive(InboundMail(
                ses_message_id=mail.ses_message_id, raw_key=mail.raw_key, recipients=list(mail.recipients),
                verdicts=SesVerdicts(**mail.verdicts), envelope_from=mail.envelope_from,
                received_at=mail.received_at))
        except Exception as exc:  # noqa: BLE001 - any failure: counted, tried again next run, held after a few
            failed = replace(mail, attempts=mail.attempts + 1)
            if failed.attempts >= self.rules.max_attempts:
                # Even with a case number allocated: re-driving for ever would never end its story.
                number = f"; case number {record.case_no} was allocated" if record is not None and record.case_no else ""
                self._hold(failed, f"intake failed {failed.attempts} times ({type(exc).__name__}){number}")
                report.held += 1
            else:
                self.store.settle_received(failed)
                report.failed += 1
            return
        self.store.settle_received(replace(mail, status="done"))
        report.redriven[result.disposition] += 1

    def _hold(self, mail: ReceivedMail, detail: str) -> None:
        """Held for the brand's staff (who can read the raw mail and release it); mail to no
        tenant keeps only its inbound record and raw mail, for the operators."""
        brand = next((b for b in map(self.store.tenant_for_address, mail.recipients) if b), None)
        if brand is not None:
            self.store.hold(HeldMail(
                brand=brand, held_id=f"{mail.received_at:%Y%m%dT%H%M%S}-{mail.ses_message_id}",
                inbound_id=mail.ses_message_id, raw_key=mail.raw_key, disposition="quarantine_malformed",
                detail=detail, received_at=mail.received_at, sender=mail.envelope_from,
                subject="(not read: the intake failed on this mail)", recipients=list(mail.recipients)))
        self.store.finish_inbound(InboundRecord(mail.ses_message_id, "done", "quarantine_malformed", None,
                                                mail.raw_key, detail))
        self.store.settle_received(replace(mail, status="held"))
