"""The mail attacks of issue 16, replayed through the intake on the in-memory ports (the same
``Intake.receive`` the intake function runs; ``test_mail_attacks_local`` replays the two high
ones through ``/_local/inbound``'s path on the local runtime). One test per kind of attack:
each says what must not happen, and checks the legitimate mail next to it still works, so that
no test passes by refusing everything."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from shared.complaints import intake as intake_module
from shared.complaints import notes
from shared.complaints.actions import LinkActions
from shared.complaints.classify import ClassificationResult
from shared.complaints.intake import InboundMail, Intake, IntakeResult, SesVerdicts
from shared.complaints.models import Case
from shared.complaints.outbound import ReliableMailer, RetryRules
from shared.complaints.ports import ReceivedMail
from shared.complaints.reconcile import Reconciler, ReconcileRules
from shared.complaints.senders import aligned, organisational_domain, ses_results, verified_sender
from tests.fakes import Domain
from tests.unit.test_lifecycle import T0, approval_waiting, link_of, make_case, submit

SH001 = "sh001@complaints.aurora-motors.example"
APPROVER = "service.sh001@dealers.example"  # the ¥800 plan's approver (approval-2)
CUSTOMER = "liu.wei@mail.example"
GM, BRAND_CR = "gm.sh001@dealers.example", "cr.center@aurora-motors.example"
FORGED = SesVerdicts(spf="PASS", dkim="NONE", dmarc="FAIL")  # SPF for the attacker's own envelope domain
ALL_FAIL = SesVerdicts(spf="FAIL", dkim="FAIL", dmarc="FAIL")


def ses_header(*, spf: str = "pass", mail_from: str = "evil.example", dkim: tuple[str, str] | None = None,
               dmarc: str = "fail", header_from: str = "dealers.example") -> str:
    """The Authentication-Results header SES puts on top of a received mail."""
    dkim_clause = f" dkim={dkim[0]} header.i=@{dkim[1]};\r\n" if dkim else ""
    return (f"Authentication-Results: amazonses.com;\r\n spf={spf} smtp.mailfrom={mail_from};\r\n{dkim_clause}"
            f" dmarc={dmarc} header.from={header_from};\r\n")


class Mailbox:
    """The intake over a domain on in-memory ports, deciding by mail as wiring makes it."""

    def __init__(self, d: Domain) -> None:
        self.d = d
        self.intake = Intake(d.store, d.blobs, d.workflow, d.clock, d.lifecycle,
                             decide_by_mail=LinkActions(d.lifecycle, d.links).decide_by_mail)
        self.count = 0

    def receive(self, *, sender: str, subject: str, text: str, verdicts: SesVerdicts = FORGED,
                envelope: str = "x@evil.example", in_reply_to: str | None = None, header: str = "",
                recipients: list[str] | None = None, extra: str = "") -> IntakeResult:
        self.count += 1
        reply = f"In-Reply-To: <{in_reply_to}>\r\nReferences: <{in_reply_to}>\r\n" if in_reply_to else ""
        raw = (f"{header}From: {sender}\r\nTo: {SH001}\r\nSubject: {subject}\r\n"
               f"Message-ID: <attempt{self.count}@{sender.rpartition('@')[2]}>\r\n{reply}{extra}"
               f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()
        key = f"raw/ses-{self.count}"
        self.d.blobs.put(key, raw)
        return self.intake.receive(InboundMail(f"ses-{self.count}", key, recipients or [SH001], verdicts, envelope,
                                               self.d.clock.now()))


def task_mail(d: Domain, no: str, key: str) -> str:
    """The Message-ID of the mail we sent for the task ``key``."""
    return next(m.message_id for m in d.store.messages(no) if m.direction == "out" and m.task_key == key)


def customer_reply_waiting() -> tuple[Domain, str]:
    """The approved ¥800 plan waits for the customer's answer (the plan mail went to them)."""
    d, no = approval_waiting()
    submit(d, link_of(d, "approval", APPROVER), decision="approve")
    d.lifecycle.record(no, "approval", "approval-2")
    d.lifecycle.enter(no, "customer_reply", "e3")
    d.lifecycle.open_task(no, "customer_reply", "t3")
    return d, no


# ----- high 1: a forged decision by mail ------------------------------------------------------------
@pytest.mark.parametrize("variant", ["answers_the_approval_mail", "names_the_case_only", "dkim_of_own_domain",
                                     "forged_results_header_below_ses"])
def test_forged_approval_is_not_applied(variant: str) -> None:
    """From the approver's address, SPF passing for the attacker's envelope domain, DMARC failing:
    nothing is approved, whether the forger knows the approval mail's Message-ID or only the case."""
    d, no = approval_waiting()
    box, completed = Mailbox(d), len(d.workflow.completed)
    ours = task_mail(d, no, "approval-2")
    header, verdicts = ses_header(), FORGED
    reply_to: str | None = ours
    if variant == "names_the_case_only":
        reply_to = None
    elif variant == "dkim_of_own_domain":  # DKIM passes, but for the attacker's domain: not aligned
        header, verdicts = ses_header(dkim=("pass", "evil.example")), SesVerdicts(dkim="PASS", dmarc="FAIL")
    elif variant == "forged_results_header_below_ses":
        header += "Authentication-Results: amazonses.com; dkim=pass header.i=@dealers.example; dmarc=pass\r\n"
    for _ in range(3):  # a forger tries again and again
        box.receive(sender=APPROVER, subject=f"Re: [{no}] 请审批处理方案", text="APPROVE", verdicts=verdicts,
                    in_reply_to=reply_to, header=header)
    assert len(d.workflow.completed) == completed  # the state machine was told nothing
    task = d.store.get_task(no, "approval-2")
    assert task is not None and task.status == "open"
    assert d.store.get_case(no).phase == "approval"
    refused = [e for e in d.store.events(no) if e.type == "decision_by_mail_refused"]
    assert len(refused) == 3 and {e.data["problem"] for e in refused} == {"unverified"}
    explanations = [m for m in d.mailer.to(APPROVER) if "未能作为决定" in m.subject]
    # At most one explanation a day, to the address the forger used; none at all when the mail is
    # only a third party's note (it never triggers a reply).
    assert len(explanations) == (0 if variant == "names_the_case_only" else 1)
    for mail in explanations:
        assert "800" not in mail.text and "free repair" not in mail.text  # nothing of the case


def test_forged_acceptance_for_the_customer_is_not_applied() -> None:
    d, no = customer_reply_waiting()
    box, completed = Mailbox(d), len(d.workflow.completed)
    result = box.receive(sender=CUSTOMER, subject=f"Re: [{no}] 处理方案", text="接受",
                         in_reply_to=task_mail(d, no, "customer_reply-3"),
                         header=ses_header(header_from="mail.example"))
    assert result.disposition == "append_to_case"
    assert len(d.workflow.completed) == completed and d.store.get_case(no).customer_decision is None


def test_a_decision_needs_a_verified_sender_answering_the_tasks_own_mail() -> None:
    """The legitimate ways still decide: DMARC PASS, or DKIM PASS aligned (a subdomain signs)
    with DMARC GRAY, in answer to the approval mail; a verified mail that only names the case does not."""
    d, no = approval_waiting()
    box = Mailbox(d)
    box.receive(sender=APPROVER, subject=f"[{no}] 请审批", text="同意", verdicts=SesVerdicts(dmarc="PASS"),
                header=ses_header(dmarc="pass", mail_from="dealers.example"))
    assert d.store.get_task(no, "approval-2").status == "open"  # type: ignore[union-attr]
    box.receive(sender=APPROVER, subject=f"Re: [{no}] 请审批", text="同意", verdicts=SesVerdicts(dkim="PASS", dmarc="GRAY"),
                in_reply_to=task_mail(d, no, "approval-2"),
                header=ses_header(dkim=("pass", "mail.dealers.example"), dmarc="none"))
    assert d.workflow.completed[-1] == ("t2", {"task_key": "approval-2", "outcome": "approve"})


def test_sender_verification_rules() -> None:
    assert organisational_domain("mail.dealers.example") == "dealers.example"
    assert organisational_domain("a.b.aurora.com.cn") == "aurora.com.cn"
    assert aligned("mail.aurora.com.cn", "aurora.com.cn") and not aligned("evil.com.cn", "aurora.com.cn")
    spoof = 'amazonses.com; spf=pass smtp.mailfrom="x;dkim=pass header.i=@dealers.example"@evil.example; dmarc=fail'
    assert ses_results(spoof).dkim_pass_domains == frozenset()  # a quoted local part is not a clause
    assert ses_results("mx.evil.example; dkim=pass header.i=@dealers.example").dkim_pass_domains == frozenset()
    assert not verified_sender(APPROVER, dmarc="FAIL", dkim="PASS", auth_results=None)  # no signing domain known
    assert not verified_sender(APPROVER, dmarc="PASS", dkim="NONE",
                               auth_results="amazonses.com; dmarc=pass header.from=evil.example")
    assert not verified_sender(APPROVER, dmarc="FAIL", dkim="NONE", auth_results=None)  # SPF alone: never


# ----- high 2: a stranger inside any case -----------------------------------------------------------
def closed_case(d: Domain) -> Case:
    no = make_case(d).case_no
    d.lifecycle.close(no)
    d.clock.set(T0 + timedelta(days=3))
    return d.store.get_case(no)


@pytest.mark.parametrize(("sender", "verdicts"), [
    ("stranger@evil.example", ALL_FAIL),  # anybody, every verdict FAIL
    (CUSTOMER, ALL_FAIL),  # the customer's address, forged
    ("stranger@evil.example", SesVerdicts()),  # verified, but for a domain of its own
])
def test_a_stranger_naming_a_closed_case_only_leaves_a_note(sender: str, verdicts: SesVerdicts) -> None:
    d = Domain(T0)
    case = closed_case(d)
    box, mails_before = Mailbox(d), len(d.mailer.sent)
    result = box.receive(sender=sender, subject=f"Re: [{case.case_no}] 投诉进度", verdicts=verdicts,
                         text="刹车失灵，差点出事故，我要向媒体曝光", envelope=sender)
    assert result.disposition == "third_party_note" and result.case_no == case.case_no
    after = d.store.get_case(case.case_no)
    assert after.phase == "closed" and after.cycle == case.cycle  # not re-opened
    assert after.classification.severity == case.classification.severity and not after.classification.safety
    assert len(d.mailer.sent) == mails_before  # no alert to the GM or the brand, no reply, no staff mail
    assert [e.type for e in d.store.events(case.case_no)][-1] == notes.NOTE_KIND
    status = LinkActions(d.lifecycle, d.links)._status(d.lifecycle.load(case.case_no))
    assert all("刹车失灵" not in m["text"] for m in status["messages"])  # not on the status page
    assert all(e.type != notes.NOTE_KIND for e in status["events"])


def test_staff_promote_a_note_and_the_customer_keeps_threading() -> None:
    d = Domain(T0)
    case = closed_case(d)
    box = Mailbox(d)
    box.receive(sender=CUSTOMER, subject=f"[{case.case_no}] 补充", text="补充一张照片", verdicts=ALL_FAIL)
    [note] = [m for m in d.store.messages(case.case_no) if m.kind == notes.NOTE_KIND]
    assert notes.promote(d.store, d.clock, case.case_no, notes.note_id(note.message_id), BRAND_CR) == note
    assert notes.promote(d.store, d.clock, case.case_no, notes.note_id(note.message_id), BRAND_CR) == note
    assert [e.actor for e in d.store.events(case.case_no) if e.type == notes.PROMOTED] == [BRAND_CR]  # once
    status = LinkActions(d.lifecycle, d.links)._status(d.lifecycle.load(case.case_no))
    assert any("补充一张照片" in m["text"] for m in status["messages"])
    # The customer answering our own mail is the customer's, verified or not: it re-opens the case.
    ours = next(m.message_id for m in d.store.messages(case.case_no) if m.direction == "out")
    result = box.receive(sender=CUSTOMER, subject="Re: 结案通知", text="问题又出现了", verdicts=ALL_FAIL,
                         in_reply_to=ours)
    assert result.disposition == "append_to_case" and d.store.get_case(case.case_no).phase != "closed"


# ----- medium: sizes that never got a disposition, bodies that outran the function -------------------
def test_a_huge_subject_and_recipient_list_are_cut_before_any_write() -> None:
    d = Domain(T0)
    box = Mailbox(d)
    many = [f"r{i}@elsewhere.example" for i in range(100_000)]
    result = box.receive(sender="big@mail.example", subject="刹车异响" * 250_000, text="我的车刹车有异响",
                         verdicts=SesVerdicts(), envelope="big@mail.example", recipients=[SH001, *many],
                         extra=f"Cc: {', '.join(many[:5000])}\r\n")
    assert result.disposition == "new_case" and result.case_no
    bounds = d.tenant.policy_for(None).intake
    case = d.store.get_case(result.case_no)
    assert len(case.subject) <= bounds.max_subject_chars
    listed = _listed(d, "ses-1")
    assert len(listed.recipients) <= bounds.max_recipients
    [first] = [m for m in d.store.messages(result.case_no) if m.direction == "in"]
    assert len(first.subject) <= bounds.max_subject_chars and len(first.recipients) <= bounds.max_recipients
    assert len(d.blobs.get("raw/ses-1")) > 1_000_000  # the raw mail stays whole


def _listed(d: Domain, ses_id: str) -> ReceivedMail:
    found = [m for m in d.store.received.values() if m.ses_message_id == ses_id]
    assert found
    return found[0]


def test_a_40_mb_mail_gets_its_disposition_well_within_the_function_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Domain(T0)
    box = Mailbox(d)
    classified: list[int] = []
    real = intake_module.classify

    def classify(subject: str, text: str, rules: dict[str, Any] | None = None) -> ClassificationResult:
        classified.append(len(text.encode("utf-8")))  # the real one, its input measured
        return real(subject, text, rules)
    monkeypatch.setattr(intake_module, "classify", classify)
    text = "我的车刹车有异响，经销商一直不处理。The brakes squeal and nobody fixes them. " * 420_000  # 40 MB
    started = time.monotonic()
    result = box.receive(sender="long@mail.example", subject="刹车异响", text=text, verdicts=SesVerdicts(),
                         envelope="long@mail.example")
    took = time.monotonic() - started
    assert len(d.blobs.get("raw/ses-1")) > 39_000_000
    assert result.disposition == "new_case"
    assert classified and max(classified) <= d.tenant.policy_for(None).intake.max_text_bytes
    # The intake function's timeout is 60 s; alone on this machine it takes about 12 s (docs/benchmarks.md),
    # more when the machine is shared: the bound that must hold is the timeout.
    assert took < 60, f"{took:.1f} s"


# ----- medium: the reconciler ends every story --------------------------------------------------------
class BrokenCases(Exception):
    pass


def test_a_mail_that_exhausts_its_attempts_is_held_even_with_a_case_number() -> None:
    d = Domain(T0)
    box = Mailbox(d)

    def refuse(case: Case) -> Case:
        raise BrokenCases("the case cannot be written")
    d.store.create_case = refuse  # type: ignore[method-assign]
    with pytest.raises(BrokenCases):
        box.receive(sender="someone@mail.example", subject="刹车异响", text="刹车异响", verdicts=SesVerdicts())
    record = d.store.inbound_record("ses-1")
    assert record is not None and record.case_no  # the number was allocated before the failure
    reconciler = Reconciler(d.store, box.intake, ReliableMailer(d.mailer, d.store, d.clock, RetryRules(1, 0, 0)),
                            d.clock, ReconcileRules(timedelta(minutes=15), 3, 3, 200))
    reports = []
    for _ in range(3):
        d.clock.set(d.clock.now() + timedelta(minutes=20))
        reports.append(reconciler.run())
    assert [r.failed for r in reports] == [1, 1, 0] and reports[-1].held == 1
    [held] = d.store.list_held("aurora")
    assert held.disposition == "quarantine_malformed" and record.case_no in (held.detail or "")
    assert d.store.inbound_record("ses-1").status == "done"  # type: ignore[union-attr]
    d.clock.set(d.clock.now() + timedelta(minutes=20))
    assert reconciler.run().settled  # nothing is retried any more


# ----- low: one sender, thirty cases ----------------------------------------------------------------
def test_a_flood_from_one_sender_opens_no_more_than_the_allowance() -> None:
    d = Domain(T0)
    box = Mailbox(d)
    allowance = d.tenant.policy_for(None).intake.new_cases_per_sender
    results = [box.receive(sender="flood@mail.example", subject=f"投诉 {n}", text=f"第{n}封：刹车异响",
                           verdicts=SesVerdicts(), envelope="flood@mail.example") for n in range(30)]
    opened = [r.case_no for r in results if r.disposition == "new_case"]
    assert len(opened) == allowance and len(d.workflow.started) == allowance  # no more cases, no more tasks
    rest = results[allowance:]
    assert {r.disposition for r in rest} == {"append_to_case"} and {r.case_no for r in rest} == {opened[-1]}
    # Another sender is not affected.
    other = box.receive(sender="other@mail.example", subject="投诉", text="刹车异响", verdicts=SesVerdicts(),
                        envelope="other@mail.example")
    assert other.disposition == "new_case"
    # With none of the flooder's cases open, further mail is held for staff.
    for no in opened:
        d.lifecycle.close(str(no))
    held = box.receive(sender="flood@mail.example", subject="再投诉", text="刹车异响", verdicts=SesVerdicts(),
                       envelope="flood@mail.example")
    assert held.disposition == "quarantine_flood" and held.held_id
