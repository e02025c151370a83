"""The reliable mailer and the reconciler on the in-memory ports: retries with capped,
jittered backoff; a refused mail kept and shown, then sent; received mail accounted for,
re-drove once it is past the grace period, held for staff when it keeps failing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from shared.complaints.errors import MailDeliveryError
from shared.complaints.intake import InboundMail, Intake, SesVerdicts
from shared.complaints.outbound import ReliableMailer, RetryRules
from shared.complaints.ports import OutgoingMail, ReceivedMail
from shared.complaints.reconcile import Reconciler, ReconcileRules
from tests.fakes import Domain, MemoryMailer

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
SH001 = "sh001@complaints.aurora-motors.example"


class RefusingMailer(MemoryMailer):
    """Refuses the next ``refusals`` sends, as SES does when it throttles."""

    def __init__(self, refusals: int = 0) -> None:
        super().__init__()
        self.refusals = refusals
        self.tries = 0

    def send(self, mail: OutgoingMail) -> None:
        self.tries += 1
        if self.refusals > 0:
            self.refusals -= 1
            raise MailDeliveryError("Throttling")
        super().send(mail)


def listed(mail: InboundMail) -> ReceivedMail:
    return ReceivedMail(mail.ses_message_id, mail.raw_key, NOW, list(mail.recipients), {}, mail.envelope_from)


class Harness:
    def __init__(self, refusals: int = 0, rules: ReconcileRules | None = None) -> None:
        self.d = Domain(NOW)
        self.ses = RefusingMailer(refusals)
        self.waits: list[float] = []
        self.mailer = ReliableMailer(self.ses, self.d.store, self.d.clock, RetryRules(3, 0.2, 0.5),
                                     sleep=self.waits.append, rng=random.Random(1))
        self.d.notifier._mailer = self.mailer  # the domain sends through it, as wiring makes it
        self.intake = Intake(self.d.store, self.d.blobs, self.d.workflow, self.d.clock, self.d.lifecycle)
        self.reconciler = Reconciler(self.d.store, self.intake, self.mailer, self.d.clock,
                                     rules or ReconcileRules(timedelta(minutes=15), 3, 3, 200))

    def mail(self, n: int) -> InboundMail:
        raw = (f"From: customer{n}@mail.example\r\nTo: {SH001}\r\nSubject: 刹车异响\r\n"
               f"Message-ID: <m{n}@mail.example>\r\n\r\n我的车刹车有异响，去店里两次了还没修好。\r\n").encode()
        self.d.blobs.put(f"raw/ses-{n}", raw)
        return InboundMail(f"ses-{n}", f"raw/ses-{n}", [SH001], SesVerdicts(), f"customer{n}@mail.example", NOW)

    def later(self, minutes: int) -> None:
        self.d.clock.set(self.d.clock.now() + timedelta(minutes=minutes))


def test_a_refused_send_is_retried_with_capped_jittered_waits() -> None:
    h = Harness(refusals=2)
    h.intake.receive(h.mail(1))
    assert h.ses.tries == 3 and len(h.ses.sent) == 1 and not h.d.store.pending_mails()
    assert len(h.waits) == 2 and 0 <= h.waits[0] <= 0.2 and 0 <= h.waits[1] <= 0.4


def test_a_mail_still_refused_is_kept_shown_and_sent_by_the_reconciler() -> None:
    h = Harness(refusals=3)
    result = h.intake.receive(h.mail(1))
    assert result.disposition == "new_case" and h.ses.sent == []
    [pending] = h.d.store.pending_mails()
    assert pending.error == "Throttling" and pending.mail.case_no == result.case_no
    assert [e.type for e in h.d.store.events(result.case_no or "")].count("mail_deferred") == 1
    report = h.reconciler.run()
    assert report.mails_resent == 1 and h.ses.sent[0].message_id == pending.mail.message_id
    assert not h.d.store.pending_mails() and report.accounted == 1 and report.settled
    assert [e.type for e in h.d.store.events(result.case_no or "")].count("mail_resent") == 1


def test_received_mail_is_accounted_for_and_redriven_only_past_the_grace() -> None:
    h = Harness()
    done = h.mail(1)
    h.intake.receive(done)
    h.d.store.note_received(listed(h.mail(2)))  # an intake that died right after listing it
    first = h.reconciler.run()
    assert (first.accounted, first.in_flight, sum(first.redriven.values())) == (1, 1, 0)
    h.later(16)
    second = h.reconciler.run()
    assert second.redriven == {"new_case": 1} and second.settled
    assert len(h.d.store.list_cases("aurora")) == 2
    assert h.reconciler.run().as_dict() == {"accounted": 0, "in_flight": 0, "redriven": {}, "failed": 0, "held": 0,
                                            "mails_resent": 0, "mails_pending": 0, "more": False}


def test_a_run_handles_a_batch_and_says_there_is_more() -> None:
    h = Harness(rules=ReconcileRules(timedelta(minutes=15), 3, 3, batch=2))
    for n in range(5):
        h.intake.receive(h.mail(n))
    runs = [h.reconciler.run() for _ in range(3)]
    assert [r.accounted for r in runs] == [2, 2, 1] and [r.more for r in runs] == [True, True, False]


def test_a_mail_that_keeps_failing_is_held_for_staff_after_the_last_attempt() -> None:
    h = Harness()
    broken = h.mail(1)
    h.d.blobs.objects.pop(broken.raw_key)  # the intake cannot read it: every attempt fails
    h.d.store.note_received(listed(broken))
    failed, held = [], []
    for _ in range(3):
        h.later(16)
        report = h.reconciler.run()
        failed.append(report.failed)
        held.append(report.held)
    assert failed == [1, 1, 0] and held == [0, 0, 1]
    [record] = h.d.store.list_held("aurora")
    assert record.disposition == "quarantine_malformed" and record.raw_key == broken.raw_key
    assert "KeyError" in (record.detail or "")
    inbound = h.d.store.inbound_record("ses-1")
    assert inbound is not None and inbound.status == "done"
