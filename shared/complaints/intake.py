"""Intake: every received mail becomes a case, a message on a case, or a held record that
staff can see and release; complaints that staff enter (phone, walk-in, ...) register
through the same path.

The raw mail is in S3 before this runs (SES's S3 action); the first write here claims
the SES message id, so a redelivered event never registers a second case.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from . import casenumbers, largeparts, notes
from .adverts import bulk_advert
from .casework import set_severity
from .classify import ClassificationResult, classify, own_words
from .clock import Clock
from .deadlines import cycle_milestones, meet
from .errors import CaseNotFoundError, ConflictError
from .language import detect_language
from .lifecycle import Ctx, Lifecycle
from .mail import ParsedMail, parse_mail
from .models import Case, Channel, Classification, Customer, Language, MailMessage, TimelineEvent, VehicleRef
from .notifications import MailLinks
from .policy import IntakePolicy, build_policy
from .ports import BlobStore, CaseStore, HeldMail, InboundRecord, ReceivedMail, StoredAttachment, Workflow
from .replies import MailReply
from .routing import mobile_numbers, route
from .senders import counter_key, verified_sender
from .tenant import Tenant, Vehicle

Disposition = Literal[
    "new_case", "append_to_case", "ignore_auto_reply", "ignore_bounce", "ignore_bulk", "duplicate",
    "quarantine_spam", "quarantine_virus", "quarantine_malformed", "quarantine_flood", "third_party_note",
]


@dataclass(frozen=True)
class SesVerdicts:
    spam: str = "PASS"
    virus: str = "PASS"
    spf: str = "PASS"
    dkim: str = "PASS"
    dmarc: str = "PASS"


@dataclass(frozen=True)
class InboundMail:
    ses_message_id: str
    raw_key: str
    recipients: list[str]
    verdicts: SesVerdicts
    envelope_from: str | None = None
    received_at: datetime | None = None  # SES's receipt time; retries then agree on it


@dataclass(frozen=True)
class IntakeResult:
    disposition: Disposition
    case_no: str | None = None
    detail: str | None = None
    held_id: str | None = None  # the held record, when the mail became neither case nor message

    def as_dict(self) -> dict[str, Any]:
        return {"disposition": self.disposition, "case_no": self.case_no}


@dataclass(frozen=True)
class Complaint:
    """A complaint ready to register, whatever its channel: a parsed mail, or what staff entered."""

    channel: Channel
    received_at: datetime
    subject: str
    text: str
    customer: Customer
    raw_key: str | None  # the original, kept unchanged: the raw mail, or the form as submitted
    reporter: str | None = None  # who forwarded or entered it, when not the customer
    recipients: tuple[str, ...] = ()  # where it was sent: routing's first clue
    dealer: str | None = None  # chosen by staff: routing then only looks for the vehicle
    vin: str | None = None
    plate: str | None = None
    language: Language | None = None  # given by staff; else detected from the text
    mail: ParsedMail | None = None  # the mail itself: the case's first message and its attachments
    follows: str | None = None  # a closed case this complaint comes back to
    entered_at: datetime | None = None  # entered by staff after the fact: when they entered it


def after_closing(closed_at: datetime | None, at: datetime, reopen_within: timedelta) -> Literal["reopen", "new_case"]:
    """What a customer's mail to a closed case does: within the window it re-opens the case
    as a follow-up; later it is a new complaint, linked to the old case."""
    return "reopen" if closed_at is not None and at - closed_at <= reopen_within else "new_case"


DecideByMail = Callable[[str, MailReply], str | None]
# Who a mail on a case is from, as far as we can tell: the case's customer, the tenant's staff,
# or anybody else (a third party, or one of them unverified).
Standing = Literal["customer", "staff", "third_party"]
_THREAD_IDS = 20  # Message-IDs of In-Reply-To/References looked up: a reply's parents are the last ones


def _head(text: str, max_bytes: int) -> str:
    """The text's start, at most ``max_bytes`` in UTF-8 (no character cut in two)."""
    return text[:max_bytes].encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def _bounded(parsed: ParsedMail, bounds: IntakePolicy) -> ParsedMail:
    """What intake reads and stores of a mail, cut to the policy's sizes before any write;
    the raw mail stays whole (and staff can read it)."""
    forwarded = parsed.forwarded
    if forwarded is not None:
        forwarded = replace(forwarded, subject=(forwarded.subject or "")[:bounds.max_subject_chars] or None,
                            text=_head(forwarded.text, bounds.max_text_bytes))
    return replace(parsed, subject=parsed.subject[:bounds.max_subject_chars], to=parsed.to[:bounds.max_recipients],
                   cc=parsed.cc[:bounds.max_recipients], text=_head(parsed.text, bounds.max_text_bytes),
                   in_reply_to=parsed.in_reply_to[:_THREAD_IDS], references=parsed.references[-_THREAD_IDS:],
                   forwarded=forwarded)


class Intake:
    def __init__(self, store: CaseStore, blobs: BlobStore, workflow: Workflow, clock: Clock,
                 lifecycle: Lifecycle,
                 decide_by_mail: DecideByMail | None = None, fallback_brand: str | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.workflow = workflow
        self.clock = clock
        self.lifecycle = lifecycle
        self.decide_by_mail = decide_by_mail
        self.fallback_brand = fallback_brand  # whose staff see mail addressed to no tenant
        # Storage bounds apply before the tenant is known (the envelope is the first write): the defaults'.
        self.bounds = build_policy().intake

    # ----- mail in --------------------------------------------------------------------------
    def receive(self, mail: InboundMail) -> IntakeResult:
        now = self.clock.now()
        received_at = mail.received_at or now
        mail = replace(mail, recipients=list(mail.recipients[:self.bounds.max_recipients]))
        # First, list it under its day: the reconciler re-drives a listed mail that no attempt finished.
        self.store.note_received(ReceivedMail(mail.ses_message_id, mail.raw_key, received_at, list(mail.recipients),
                                              asdict(mail.verdicts), mail.envelope_from))
        prior = self.store.claim_inbound(mail.ses_message_id, mail.raw_key, now)
        if prior is not None and prior.status == "done":
            return IntakeResult("duplicate", prior.case_no, "same SES message delivered again")
        result = self._process(mail, received_at, prior)
        self.store.finish_inbound(InboundRecord(mail.ses_message_id, "done", result.disposition, result.case_no,
                                                mail.raw_key, result.detail))
        return result

    def _process(self, mail: InboundMail, received_at: datetime, prior: InboundRecord | None) -> IntakeResult:
        verdict = _verdict(mail.verdicts)
        brand_id = next((b for b in map(self.store.tenant_for_address, mail.recipients) if b), None)
        if brand_id is None and self.fallback_brand is None:
            # No tenant's staff to show it to: the inbound record and the raw mail keep it for the operators.
            return IntakeResult(verdict[0] if verdict else "quarantine_malformed",
                                detail="no recipient belongs to a tenant")
        tenant = self.store.get_tenant(brand_id or str(self.fallback_brand))
        parsed = _bounded(parse_mail(largeparts.read_slim(self.blobs, mail.raw_key), received_at=received_at,
                                     envelope_from=mail.envelope_from), self.bounds)
        if brand_id is None:
            # An SES rule out of step with the tenants, a typo in an address: the default brand's
            # CR center sees it among held mail and can release it as a case.
            return self._hold(tenant, mail, parsed, received_at, verdict[0] if verdict else "quarantine_malformed",
                              "no recipient belongs to a tenant")
        held = verdict or self._not_a_complaint(tenant, parsed)
        if held is not None:
            return self._hold(tenant, mail, parsed, received_at, *held)
        if prior is not None and prior.case_no:
            return self._resume(prior.case_no)
        if parsed.message_id:
            first = self.store.claim_message_id(brand_id, parsed.message_id, mail.ses_message_id)
            if first is not None:
                return self._hold(tenant, mail, parsed, received_at, "duplicate",
                                  f"Message-ID already received (SES message {first})")
        case, answered = self._thread(parsed)
        if case is None:
            return self._register_mail(tenant, parsed, mail, received_at)
        if case.brand != tenant.brand.id:
            return self._hold(tenant, mail, parsed, received_at, "quarantine_malformed",
                              "refers to a case of another tenant")
        verified = verified_sender(parsed.from_address, dmarc=mail.verdicts.dmarc, dkim=mail.verdicts.dkim,
                                   auth_results=parsed.headers.get("authentication-results"))
        standing = self._standing(tenant, case, parsed, answered=answered, verified=verified)
        if standing == "third_party":
            return self._note(case, parsed, mail, verified)
        reopen_within = timedelta(days=tenant.policy_for(case.dealer).intake.reopen_within_days)
        if case.is_closed and after_closing(case.closed_at, received_at, reopen_within) == "new_case":
            return self._register_mail(tenant, parsed, mail, received_at, follows=case.case_no)
        return self._append(tenant, case, parsed, mail, received_at, verified=verified)

    def _register_mail(self, tenant: Tenant, parsed: ParsedMail, mail: InboundMail, received_at: datetime,
                       follows: str | None = None) -> IntakeResult:
        """A new case, unless the sender is past the policy's allowance of new cases per window
        (a flood): then the mail joins their latest open case, or is held when none is open."""
        bounds = tenant.policy_for(None).intake
        sender = (parsed.from_address or "").lower()
        if not self._may_open_case(tenant, sender, received_at, bounds):
            window = timedelta(hours=bounds.new_case_window_hours)
            latest = [c for c in self.store.recent_cases_of(tenant.brand.id, customer_email=sender, vin=None,
                                                             since=received_at - window)
                      if not c.is_closed and c.phase != "needs_attention"]
            detail = (f"more than {bounds.new_cases_per_sender} new cases from this sender within "
                      f"{bounds.new_case_window_hours} hours")
            if not latest:
                return self._hold(tenant, mail, parsed, received_at, "quarantine_flood", detail)
            return self._append_quietly(max(latest, key=lambda c: (c.received_at, c.case_no)), parsed, mail, detail)
        complaint = self._complaint(tenant, parsed, mail.raw_key, mail.recipients, received_at)
        return self._register(tenant, replace(complaint, follows=follows), mail.ses_message_id)

    def _may_open_case(self, tenant: Tenant, sender: str, at: datetime, bounds: IntakePolicy) -> bool:
        seconds = bounds.new_case_window_hours * 3600
        window = int(at.timestamp()) // seconds
        count = self.store.count_hit(counter_key("cases", tenant.brand.id, sender),
                                     f"{bounds.new_case_window_hours}h{window}", (window + 2) * seconds)
        return count <= bounds.new_cases_per_sender

    @staticmethod
    def _standing(tenant: Tenant, case: Case, parsed: ParsedMail, *, answered: bool, verified: bool) -> Standing:
        """A mail answering one of our mails on the case (an unguessable Message-ID), or verified
        for its From domain, is its sender's: the customer's, or staff's. Anything else naming
        the case (a case number is sequential, anybody can write it) is a third party's."""
        sender = (parsed.from_address or "").lower()
        if not (answered or verified) or not sender:
            return "third_party"
        if sender == (case.customer.email or "").lower():
            return "customer"
        if tenant.staff_member(sender) is not None:
            return "staff"
        return "third_party"

    @staticmethod
    def _not_a_complaint(tenant: Tenant, parsed: ParsedMail) -> tuple[Disposition, str] | None:
        """Mail no person wrote to us must never open a case or be answered (mail loops)."""
        flagged = _spam_flagged(parsed.headers)
        if flagged:
            return "quarantine_spam", f"a spam filter on the way marked it ({flagged})"
        if parsed.kind == "auto_reply":
            return "ignore_auto_reply", "an auto-reply (Auto-Submitted, X-Autoreply, Precedence or subject)"
        if parsed.kind == "bounce":
            return "ignore_bounce", "a delivery status notification"
        if parsed.kind == "bulk":
            return "ignore_bulk", "bulk or list mail (list headers, a gateway's bulk mark or a newsletter's footer)"
        if (parsed.from_address or "") == tenant.brand.sender_address.lower() or parsed.headers.get("x-case-number"):
            return "ignore_auto_reply", "our own mail came back"
        if parsed.from_address is None:
            return "quarantine_malformed", "no sender address in From or the envelope"
        return None

    def _hold(self, tenant: Tenant, mail: InboundMail, parsed: ParsedMail, received_at: datetime,
              disposition: Disposition, detail: str) -> IntakeResult:
        held_id = f"{received_at:%Y%m%dT%H%M%S}-{mail.ses_message_id}"
        self.store.hold(HeldMail(
            brand=tenant.brand.id, held_id=held_id, inbound_id=mail.ses_message_id, raw_key=mail.raw_key,
            disposition=disposition, detail=detail, received_at=received_at, sender=parsed.from_address,
            subject=parsed.subject[:200], recipients=list(mail.recipients)))
        return IntakeResult(disposition, detail=detail, held_id=held_id)

    @staticmethod
    def _complaint(tenant: Tenant, parsed: ParsedMail, raw_key: str, recipients: list[str],
                   received_at: datetime) -> Complaint:
        """The complainant of a forward is the customer inside it; the forwarder is the reporter."""
        name, address, reporter, own = parsed.from_name, parsed.from_address, None, own_words(parsed.text)
        if _forwards_a_complaint(tenant, parsed) and parsed.forwarded is not None:
            name, address, reporter = parsed.forwarded.name, parsed.forwarded.address, parsed.from_address
            own = parsed.forwarded.text
        phone = next(iter(mobile_numbers(own)), None)
        return Complaint(channel="email", received_at=received_at, subject=parsed.subject, text=parsed.text,
                         customer=Customer(name=name, email=address, phone=phone), raw_key=raw_key,
                         reporter=reporter, recipients=tuple(recipients), mail=parsed)

    # ----- release and entry by staff ---------------------------------------------------------------
    def release(self, brand_id: str, held_id: str, by: str) -> IntakeResult | None:
        """Register a held mail as a new case, as staff decided; None if there is no such mail."""
        held = self.store.held_mail(brand_id, held_id)
        if held is None:
            return None
        if held.status == "released" and held.case_no:
            return IntakeResult("new_case", held.case_no, "released before")
        tenant = self.store.get_tenant(brand_id)

        def complaint() -> Complaint:
            parsed = _bounded(parse_mail(largeparts.read_slim(self.blobs, held.raw_key), received_at=held.received_at,
                                         envelope_from=held.sender), self.bounds)
            return self._complaint(tenant, parsed, held.raw_key, held.recipients, held.received_at)
        result = self.register_once(tenant, f"release-{held.inbound_id}", held.raw_key, complaint)
        assert result.case_no is not None
        self.store.release_held(brand_id, held_id, case_no=result.case_no, by=by, at=self.clock.now())
        self.store.add_event(TimelineEvent(
            case_no=result.case_no, at=self.clock.now(), type="released", actor=by,
            summary=f"Released by staff from held mail ({held.disposition})",
            data={"held_id": held_id, "disposition": held.disposition, "raw_key": held.raw_key}))
        return result

    def register_once(self, tenant: Tenant, inbound_id: str, raw_key: str,
                      complaint: Callable[[], Complaint]) -> IntakeResult:
        """Register a complaint once per ``inbound_id``: a repeated request answers the same case."""
        prior = self.store.claim_inbound(inbound_id, raw_key, self.clock.now())
        if prior is not None and prior.status == "done" and prior.case_no:
            return IntakeResult("new_case", prior.case_no, "registered before")
        if prior is not None and prior.case_no:
            result = self._resume(prior.case_no)
        else:
            result = self._register(tenant, complaint(), inbound_id)
        self.store.finish_inbound(InboundRecord(inbound_id, "done", result.disposition, result.case_no, raw_key, None))
        return result

    # ----- threading --------------------------------------------------------------------------
    def _thread(self, parsed: ParsedMail) -> tuple[Case | None, bool]:
        """The case a reply belongs to, and whether it answers one of our mails on it: by the
        Message-IDs it answers, else a case number in its subject. Any tenant's: the caller
        decides what another tenant's case means."""
        for mid in [*parsed.in_reply_to, *reversed(parsed.references)]:
            case_no = self.store.case_for_message_id(mid)
            if case_no:
                with contextlib.suppress(CaseNotFoundError):
                    return self.store.get_case(case_no), True
        for number in casenumbers.ANY.findall(parsed.subject)[:3]:
            with contextlib.suppress(CaseNotFoundError):  # an unknown number in a subject is just text
                return self.store.get_case(number), False
        return None, False

    def _note(self, case: Case, parsed: ParsedMail, mail: InboundMail, verified: bool) -> IntakeResult:
        """A third party's mail on the case: kept for staff, and nothing else happens."""
        now, message_id = self.clock.now(), parsed.message_id or mail.ses_message_id
        if self.decide_by_mail is not None:  # a decision in it is refused, and on the timeline
            self.decide_by_mail(case.case_no, self._reply(parsed, mail, message_id, verified=verified, told=False))
        self.store.add_message(MailMessage(
            case_no=case.case_no, direction="in", message_id=message_id, at=now, sender=parsed.from_address or "",
            recipients=parsed.to, subject=parsed.subject, text=parsed.text[:20000], kind=notes.NOTE_KIND))
        how = "verified, but neither the customer nor staff" if verified else "not verified for its From domain"
        self.store.add_event(TimelineEvent(
            case_no=case.case_no, at=now, type=notes.NOTE_KIND, actor="unverified sender",
            summary=f"Mail from an unverified sender ({parsed.from_address or 'no address'}; {how}): "
                    f"{parsed.subject[:100]}",
            data={"note_id": notes.note_id(message_id), "message_id": message_id, "raw_key": mail.raw_key}))
        return IntakeResult("third_party_note", case.case_no, "names the case; not verifiably its customer's or staff's")

    def _append_quietly(self, case: Case, parsed: ParsedMail, mail: InboundMail, why: str) -> IntakeResult:
        """A flooding sender's mail joins their open case: kept, with no alert, task or reply."""
        now, message_id = self.clock.now(), parsed.message_id or mail.ses_message_id
        self.store.add_message(MailMessage(
            case_no=case.case_no, direction="in", message_id=message_id, at=now, sender=parsed.from_address or "",
            recipients=parsed.to, subject=parsed.subject, text=parsed.text[:20000], kind="customer_mail"))
        self.store.add_event(TimelineEvent(
            case_no=case.case_no, at=now, type="customer_mail", actor="customer",
            summary=f"Mail from the customer, added to this case without alerts ({why}): {parsed.subject[:100]}",
            data={"raw_key": mail.raw_key, "flood": True}))
        return IntakeResult("append_to_case", case.case_no, why)

    @staticmethod
    def _reply(parsed: ParsedMail, mail: InboundMail, message_id: str, *, verified: bool, told: bool) -> MailReply:
        return MailReply(sender=(parsed.from_address or "").lower(), text=parsed.text, verified=verified,
                         answers=tuple([*parsed.in_reply_to, *parsed.references]), message_id=message_id,
                         may_be_told=told)

    def _append(self, tenant: Tenant, case: Case, parsed: ParsedMail, mail: InboundMail,
                received_at: datetime, *, verified: bool) -> IntakeResult:
        case_no, now = case.case_no, self.clock.now()
        message_id = parsed.message_id or mail.ses_message_id
        sender = (parsed.from_address or "").lower()
        decision = None
        if self.decide_by_mail is not None:
            # An approver or the customer answering the step the case waits for, on the first line.
            decision = self.decide_by_mail(case_no, self._reply(parsed, mail, message_id, verified=verified, told=True))
        self.store.add_message(MailMessage(
            case_no=case_no, direction="in", message_id=message_id, at=now, sender=parsed.from_address or "",
            recipients=parsed.to, subject=parsed.subject, text=parsed.text[:20000],
            kind="decision" if decision else "customer_mail"))
        if decision is not None:
            self.store.add_event(TimelineEvent(case_no=case_no, at=now, type="decision_by_mail", actor=sender,
                                               summary=f"Decided by reply mail: {decision}",
                                               data={"raw_key": mail.raw_key}))
            return IntakeResult("append_to_case", case_no)
        stored = self._store_attachments(case_no, parsed, mail.ses_message_id, message_id, now)
        found = classify(parsed.subject, parsed.text, tenant.policy_for(case.dealer).classification.rules)
        raised: list[str] = []

        def change(ctx: Ctx) -> None:
            raised.clear()
            cls = ctx.case.classification
            if found.media_or_regulator and not cls.media_or_regulator:
                cls.media_or_regulator = True
                raised.append("media_or_regulator")
            if found.safety and not cls.safety:
                cls.safety = True
                raised.append("safety")
            elif found.possible_safety and not (cls.safety or cls.possible_safety or cls.safety_review == "dismissed"):
                cls.possible_safety = True
                raised.append("possible_safety")
            if raised and cls.severity != "critical":
                set_severity(ctx, "critical", now)
                cls.reasons.extend(found.reasons)
                ctx.case.critical_alerted_at = None
        ctx = self.lifecycle.mutate(case_no, change)
        self.store.add_event(TimelineEvent(case_no=case_no, at=now, type="customer_mail", actor="customer",
                                           summary=f"Mail from the customer: {parsed.subject[:100]}",
                                           data={"raised": raised, "raw_key": mail.raw_key,
                                                 "attachments": [a.key for a in stored],
                                                 "warnings": parsed.warnings}))
        assignee = ctx.tenant.staff_member(ctx.case.assignee or "") or self.lifecycle.staff(ctx, "cs_head")
        self.lifecycle.notifier.send(tenant=tenant, case=ctx.case, kind="customer_message",
                                     to=self.lifecycle.staff_recipient(ctx, assignee),
                                     excerpt=parsed.text[:1500], raised=", ".join(raised))
        if raised and ctx.case.critical_alerted_at is None:
            self.lifecycle.alert_critical(ctx)
        if case.is_closed:  # within the re-open window (_process decided)
            self._reopen(ctx, received_at)
        return IntakeResult("append_to_case", case_no)

    def _reopen(self, ctx: Ctx, at: datetime) -> None:
        """A customer wrote to a recently closed case: it re-opens as a follow-up."""
        self.lifecycle.reopen_for_reply(ctx.case.case_no, at)

    # ----- registration ----------------------------------------------------------------------
    def _register(self, tenant: Tenant, complaint: Complaint, inbound_id: str) -> IntakeResult:
        brand, received_at = tenant.brand.id, complaint.received_at
        find_vehicle = cache(lambda vin, plate: self.store.find_vehicle(brand, vin=vin, plate=plate))
        given = " ".join(x for x in (complaint.vin, complaint.plate) if x)
        routed = route(recipients=list(complaint.recipients), text=f"{complaint.subject}\n{complaint.text}\n{given}",
                       dealers=tenant.dealers, brand_addresses=tenant.brand.intake_addresses,
                       case_prefix=tenant.brand.case_prefix, find_vehicle=find_vehicle)
        dealer = complaint.dealer or routed.dealer
        vehicle = find_vehicle(routed.vin, routed.plate) if (routed.vin or routed.plate) else None
        policy = tenant.policy_for(dealer)
        found = classify(complaint.subject, complaint.text, policy.classification.rules)
        classification = _classification(found)
        advert = bulk_advert(complaint.subject, complaint.text) if complaint.channel == "email" else None
        if advert:
            _as_advert(classification, advert)
        repeat = self._repeat_of(brand, complaint.customer, routed.vin, found, received_at, policy.repeat_window_days)
        if repeat is not None:
            classification.repeat_of = repeat
            classification.reasons.append(f"repeat of {repeat} (same customer or vehicle, same category, "
                                          f"within {policy.repeat_window_days} days)")
            if classification.severity == "general":
                classification.severity = "major"
        case_no = casenumbers.allocate(self.store, tenant, dealer, received_at)
        # Remember the number before creating the case: a retry resumes it instead of allocating another.
        self.store.finish_inbound(InboundRecord(inbound_id, "processing", None, case_no, complaint.raw_key, None))
        case = Case(
            case_no=case_no, brand=brand, dealer=dealer,
            region=tenant.dealer(dealer).region if tenant.has_dealer(dealer) else None,
            channel=complaint.channel, phase="first_contact", received_at=received_at,
            entered_at=complaint.entered_at,
            subject=complaint.subject or complaint.text[:60] or "(no subject)", description=complaint.text[:20000],
            language=complaint.language or detect_language(f"{complaint.subject}\n{complaint.text}"),
            customer=complaint.customer, vehicle=_vehicle_ref(vehicle, routed.vin, routed.plate),
            classification=classification, raw_mail_key=complaint.raw_key, reporter=complaint.reporter)
        case.milestones = cycle_milestones(case, received_at, policy, tenant.calendar_for(case.dealer))
        # Met as the case is created: the acknowledgement goes out right after, and a retry
        # that finds no acknowledgement recorded sends it then (``_resume``).
        meet(case, "acknowledgement", self.clock.now())
        with contextlib.suppress(ConflictError):  # created by an earlier attempt of this same complaint
            case = self.store.create_case(case)
        stored: list[StoredAttachment] = []
        if complaint.mail is not None:
            message_id = complaint.mail.message_id or inbound_id
            self.store.add_message(MailMessage(
                case_no=case_no, direction="in", message_id=message_id, at=received_at,
                sender=complaint.mail.from_address or "", recipients=complaint.mail.to, subject=complaint.subject,
                text=complaint.text[:20000], kind="complaint"))
            stored = self._store_attachments(case_no, complaint.mail, inbound_id, message_id, received_at)
        how = "e-mail" if complaint.channel == "email" else f"{complaint.channel.replace('_', ' ')} (entered by staff)"
        routing = f"dealer {dealer} chosen by staff" if complaint.dealer else f"routed {routed.reason}"
        self.store.add_event(TimelineEvent(
            case_no=case_no, at=self.clock.now(), type="registered", actor=complaint.reporter or "customer",
            summary=f"Registered from {how}; {routing}{_read_with(complaint.mail)}",
            data={"dealer": dealer or "triage", "severity": classification.severity, "channel": complaint.channel,
                  "category": classification.category, "raw_key": complaint.raw_key,
                  "attachments": [a.key for a in stored], "follows": complaint.follows,
                  "warnings": complaint.mail.warnings if complaint.mail else []}))
        if complaint.follows:
            self._link(complaint.follows, case_no)
        self._acknowledge(Ctx(case, tenant, policy))
        self.workflow.start(case_no, {"case_no": case_no, "entry": "triage"})
        return IntakeResult("new_case", case_no)

    def _link(self, closed: str, new: str) -> None:
        """A reply long after closing: the new case and the old one point at each other."""
        now = self.clock.now()
        self.store.add_event(TimelineEvent(case_no=new, at=now, type="linked_case", actor="system",
                                           summary=f"The customer wrote again about closed case {closed}",
                                           data={"case_no": closed}))
        self.store.add_event(TimelineEvent(case_no=closed, at=now, type="linked_case", actor="system",
                                           summary=f"The customer wrote again after closing: new case {new}",
                                           data={"case_no": new}))

    def _resume(self, case_no: str) -> IntakeResult:
        """A retry of a registration that got as far as numbering the case: acknowledge
        unless that was done, start the lifecycle (once per case)."""
        ctx = self.lifecycle.load(case_no)
        if not any(m.kind == "acknowledgement" for m in self.store.messages(case_no)):
            self._acknowledge(ctx)
        self.workflow.start(case_no, {"case_no": case_no, "entry": "triage"})
        return IntakeResult("new_case", case_no)

    def _acknowledge(self, ctx: Ctx) -> None:
        """The acknowledgement, within the sender's daily allowance (a loop or a flood is not
        answered mail for mail)."""
        to = self.lifecycle.customer_recipient(ctx)
        if to is None:
            return
        allowance = ctx.policy.intake.acknowledgements_per_sender_per_day
        if self._may_acknowledge(ctx.tenant, to.email, allowance):
            self.lifecycle.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="acknowledgement", to=to,
                                         links=MailLinks().add("status", self.lifecycle.status_link(ctx)))
            return
        self.store.add_event(TimelineEvent(
            case_no=ctx.case.case_no, at=self.clock.now(), type="acknowledgement_withheld", actor="system",
            summary=f"No acknowledgement: this sender had {allowance} "
                    "today already (mail loop or flood protection)"))

    def _may_acknowledge(self, tenant: Tenant, address: str, allowance: int) -> bool:
        now = self.clock.now()
        count = self.store.count_hit(counter_key("ack", tenant.brand.id, address), now.strftime("%Y%m%d"),
                                     int(now.timestamp()) + 2 * 86400)
        return count <= allowance

    def _store_attachments(self, case_no: str, parsed: ParsedMail, inbound_id: str, message_id: str,
                           at: datetime) -> list[StoredAttachment]:
        """Each attachment as its own object, keyed by the mail and its position (a retry
        overwrites, never duplicates); the sender's file name is only shown, never a key."""
        stored = []
        for index, attachment in enumerate(parsed.attachments, start=1):
            key = f"attachments/{inbound_id}/{index:02d}{_extension(attachment.filename)}"
            size, sha256 = largeparts.store_chunks(self.blobs, key, attachment.chunks(), attachment.content_type)
            record = StoredAttachment(case_no=case_no, key=key, filename=attachment.filename,
                                      content_type=attachment.content_type, size=size, sha256=sha256,
                                      message_id=message_id, at=at)
            self.store.add_attachment(record)
            stored.append(record)
        return stored

    def _repeat_of(self, brand: str, customer: Customer, vin: str | None, found: ClassificationResult,
                   at: datetime, window_days: int) -> str | None:
        earlier = self.store.recent_cases_of(brand, customer_email=customer.email, vin=vin, phone=customer.phone,
                                             since=at - timedelta(days=window_days))
        same = [c for c in earlier if c.classification.category == found.category]
        return same[-1].case_no if same else None


def _verdict(verdicts: SesVerdicts) -> tuple[Disposition, str] | None:
    if verdicts.virus.upper() == "FAIL":
        return "quarantine_virus", "SES virus verdict FAIL"
    if verdicts.spam.upper() == "FAIL":
        return "quarantine_spam", "SES spam verdict FAIL"
    return None


def _spam_flagged(headers: dict[str, str]) -> str | None:
    """A filter the mail passed before SES (SpamAssassin and its kin) judged it spam: held like an
    SES spam verdict, a visible record staff can release. "No" and a bare score are not a verdict."""
    if headers.get("x-spam-flag", "").strip().lower() == "yes":
        return "X-Spam-Flag: YES"
    if headers.get("x-spam-status", "").strip().lower().startswith("yes"):
        return "X-Spam-Status: Yes"
    return None


def _classification(found: ClassificationResult) -> Classification:
    severity = found.severity  # the classifier decides (a demand makes a product or service dispute major)
    return Classification(category=found.category, severity=severity, safety=found.safety,
                          media_or_regulator=found.media_or_regulator, reasons=list(found.reasons),
                          possible_safety=found.possible_safety, confidence=found.confidence,
                          evidence=list(found.evidence))


# A forwarder saying whose complaint it passes on.
_ON_BEHALF = re.compile(
    r"客户|客戶|顾客|顧客|车主|車主|用户|用戶|投诉|投訴|请处理|請處理|转交|轉交|"
    r"customer|client|on behalf of|complaint|kunde|kundin|beschwerde|réclamation|plainte",
    re.IGNORECASE,
)


def _forwards_a_complaint(tenant: Tenant, parsed: ParsedMail) -> bool:
    """Whether the original inside a mail is the complaint and its sender the customer: the
    mail comes from one who forwards for customers (dealer staff, the hotline, the brand), or
    says in its own words that it passes on a customer's complaint. Otherwise the sender is
    the customer and attached messages are their attachments; an original written by the
    tenant's own people is never a complainant's."""
    forwarded = parsed.forwarded
    if forwarded is None or not forwarded.address or tenant.forwards_for_customers(forwarded.address):
        return False
    return tenant.forwards_for_customers(parsed.from_address) or _ON_BEHALF.search(forwarded.note) is not None


def _as_advert(classification: Classification, reason: str) -> None:
    """An advert keeps its category but is never critical or major, and flags no risk."""
    classification.severity = "general"
    classification.safety = classification.possible_safety = classification.media_or_regulator = False
    classification.reasons.append(reason)


def _read_with(parsed: ParsedMail | None) -> str:
    """What staff should know about how the mail was read (lying charset labels, repaired bytes)."""
    if parsed is None or not parsed.warnings:
        return ""
    return "; read with care: " + "; ".join(parsed.warnings[:4])


def _extension(filename: str) -> str:
    suffix = filename.rpartition(".")[2] if "." in filename else ""
    return f".{suffix.lower()}" if re.fullmatch(r"[A-Za-z0-9]{1,8}", suffix) else ""


def _vehicle_ref(vehicle: Vehicle | None, vin: str | None, plate: str | None) -> VehicleRef | None:
    if vehicle is not None:
        return VehicleRef(vin=vehicle.vin, model=vehicle.model, plate=vehicle.plate)
    if vin or plate:
        return VehicleRef(vin=vin, plate=plate)
    return None
