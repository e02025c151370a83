"""Intake: one received mail becomes a case, a message on a case, or a visible record.

The raw mail is in S3 before this runs (SES's S3 action); the first write here claims
the SES message id, so a redelivered event never registers a second case.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import casenumbers
from .classify import ClassificationResult, classify, detect_language
from .clock import Clock
from .deadlines import cycle_milestones, meet
from .errors import CaseNotFoundError, ConflictError
from .lifecycle import Ctx, Lifecycle
from .mail import ParsedMail, parse_mail
from .models import Case, Classification, Customer, MailMessage, TimelineEvent, VehicleRef
from .notifications import MailLinks
from .ports import BlobStore, CaseStore, InboundRecord, Workflow
from .routing import route
from .tenant import Tenant, Vehicle

SEVERITY_RANK = {"general": 0, "major": 1, "critical": 2}


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
    received_at: datetime | None = None


@dataclass(frozen=True)
class IntakeResult:
    disposition: str
    case_no: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"disposition": self.disposition, "case_no": self.case_no}


class Intake:
    def __init__(self, store: CaseStore, blobs: BlobStore, workflow: Workflow, clock: Clock,
                 lifecycle: Lifecycle) -> None:
        self.store = store
        self.blobs = blobs
        self.workflow = workflow
        self.clock = clock
        self.lifecycle = lifecycle

    def receive(self, mail: InboundMail) -> IntakeResult:
        now = self.clock.now()
        received_at = mail.received_at or now
        prior = self.store.claim_inbound(mail.ses_message_id, mail.raw_key, now)
        if prior is not None and prior.status == "done":
            return IntakeResult("duplicate", prior.case_no, "same SES message delivered again")
        result = self._process(mail, received_at, prior)
        self.store.finish_inbound(InboundRecord(mail.ses_message_id, "done", result.disposition, result.case_no,
                                                mail.raw_key, result.detail))
        return result

    def _process(self, mail: InboundMail, received_at: datetime, prior: InboundRecord | None) -> IntakeResult:
        if mail.verdicts.virus.upper() == "FAIL":
            return IntakeResult("quarantine_virus", detail="SES virus verdict FAIL")
        if mail.verdicts.spam.upper() == "FAIL":
            return IntakeResult("quarantine_spam", detail="SES spam verdict FAIL")
        brand_id = next((b for b in (self.store.tenant_for_address(r) for r in mail.recipients) if b), None)
        if brand_id is None:
            return IntakeResult("quarantine_malformed", detail="no recipient belongs to a tenant")
        tenant = self.store.get_tenant(brand_id)
        parsed = parse_mail(self.blobs.get(mail.raw_key), received_at=received_at, envelope_from=mail.envelope_from)
        if parsed.kind == "auto_reply":
            return IntakeResult("ignore_auto_reply")
        if parsed.kind == "bounce":
            return IntakeResult("ignore_bounce")
        if parsed.kind == "bulk":
            return IntakeResult("ignore_bulk")
        sender = (parsed.from_address or "").lower()
        if sender == tenant.brand.sender_address.lower() or parsed.headers.get("x-case-number"):
            return IntakeResult("ignore_auto_reply", detail="our own mail came back")
        if parsed.from_address is None:
            return IntakeResult("quarantine_malformed", detail="no sender address")
        if prior is not None and prior.case_no:
            return self._resume(tenant, prior.case_no, parsed)
        if parsed.message_id:
            first = self.store.claim_message_id(brand_id, parsed.message_id, mail.ses_message_id)
            if first is not None:
                return IntakeResult("duplicate", detail=f"Message-ID already received as {first}")
        thread = self._thread(tenant, parsed)
        if thread is not None:
            return self._append(tenant, thread, parsed, mail)
        return self._register(tenant, parsed, mail, received_at)

    # ----- threading --------------------------------------------------------------------------
    def _thread(self, tenant: Tenant, parsed: ParsedMail) -> str | None:
        for mid in [*parsed.in_reply_to, *reversed(parsed.references)]:
            case_no = self.store.case_for_message_id(mid)
            if case_no:
                return case_no
        for number in casenumbers.pattern(tenant.brand.case_prefix).findall(parsed.subject):
            try:
                case = self.store.get_case(number)
            except CaseNotFoundError:
                continue  # an unknown number in a subject is just text
            if case.brand == tenant.brand.id:
                return number
        return None

    def _append(self, tenant: Tenant, case_no: str, parsed: ParsedMail, mail: InboundMail) -> IntakeResult:
        now = self.clock.now()
        self.store.add_message(MailMessage(
            case_no=case_no, direction="in", message_id=parsed.message_id or mail.ses_message_id, at=now,
            sender=parsed.from_address or "", recipients=parsed.to, subject=parsed.subject, text=parsed.text[:20000],
            kind="customer_mail"))
        found = classify(parsed.subject, parsed.text)
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
            if raised and cls.severity != "critical":
                cls.severity = "critical"
                cls.reasons.extend(found.reasons)
                ctx.case.critical_alerted_at = None
        ctx = self.lifecycle.mutate(case_no, change)
        self.store.add_event(TimelineEvent(case_no=case_no, at=now, type="customer_mail", actor="customer",
                                           summary=f"Mail from the customer: {parsed.subject[:100]}",
                                           data={"raised": raised}))
        assignee = ctx.tenant.staff_member(ctx.case.assignee or "") or self.lifecycle.staff(ctx, "cs_head")
        self.lifecycle.notifier.send(tenant=tenant, case=ctx.case, kind="customer_message",
                                     to=self.lifecycle.staff_recipient(ctx, assignee),
                                     excerpt=parsed.text[:1500], raised=", ".join(raised))
        if raised and ctx.case.critical_alerted_at is None:
            self.lifecycle.alert_critical(ctx)
        return IntakeResult("append_to_case", case_no)

    # ----- registration ----------------------------------------------------------------------
    def _register(self, tenant: Tenant, parsed: ParsedMail, mail: InboundMail, received_at: datetime) -> IntakeResult:
        brand = tenant.brand.id
        complainant_name, complainant_email, reporter = parsed.from_name, parsed.from_address, None
        text = parsed.text
        if parsed.forwarded is not None and parsed.forwarded.address:
            complainant_name, complainant_email = parsed.forwarded.name, parsed.forwarded.address
            reporter = parsed.from_address
        routed = route(recipients=mail.recipients, text=f"{parsed.subject}\n{text}", dealers=tenant.dealers,
                       brand_addresses=tenant.brand.intake_addresses, case_prefix=tenant.brand.case_prefix,
                       find_vehicle=lambda vin, plate: self.store.find_vehicle(brand, vin=vin, plate=plate))
        vehicle = self.store.find_vehicle(brand, vin=routed.vin, plate=routed.plate) if (routed.vin or routed.plate) else None
        found = classify(parsed.subject, text)
        policy = tenant.policy_for(routed.dealer)
        classification = self._classification(found)
        repeat = self._repeat_of(brand, complainant_email, routed.vin, found, received_at, policy.repeat_window_days)
        if repeat is not None:
            classification.repeat_of = repeat
            classification.reasons.append(f"repeat of {repeat} (same customer or vehicle, same category, "
                                          f"within {policy.repeat_window_days} days)")
            if classification.severity == "general":
                classification.severity = "major"
        case_no = casenumbers.allocate(self.store, tenant, routed.dealer, received_at)
        # Remember the number before creating the case: a retry resumes it instead of allocating another.
        self.store.finish_inbound(InboundRecord(mail.ses_message_id, "processing", None, case_no, mail.raw_key, None))
        case = Case(
            case_no=case_no, brand=brand, dealer=routed.dealer,
            region=tenant.dealer(routed.dealer).region if tenant.has_dealer(routed.dealer) else None,
            channel="email", phase="first_contact", received_at=received_at,
            subject=parsed.subject or text[:60] or "(no subject)", description=text[:20000],
            language=detect_language(f"{parsed.subject}\n{text}"),
            customer=Customer(name=complainant_name, email=complainant_email),
            vehicle=_vehicle_ref(vehicle, routed.vin, routed.plate), classification=classification,
            raw_mail_key=mail.raw_key, reporter=reporter)
        cal = tenant.calendar_for(case.dealer)
        case.milestones = cycle_milestones(case, received_at, policy, cal)
        with contextlib.suppress(ConflictError):  # created by an earlier attempt of this same mail
            case = self.store.create_case(case)
        self.store.add_message(MailMessage(
            case_no=case_no, direction="in", message_id=parsed.message_id or mail.ses_message_id, at=received_at,
            sender=parsed.from_address or "", recipients=parsed.to, subject=parsed.subject, text=text[:20000],
            kind="complaint"))
        self.store.add_event(TimelineEvent(
            case_no=case_no, at=self.clock.now(), type="registered", actor=reporter or "customer",
            summary=f"Registered from e-mail; routed {routed.reason}",
            data={"dealer": routed.dealer or "triage", "severity": classification.severity,
                  "category": classification.category}))
        self._resume(tenant, case_no, parsed)
        return IntakeResult("new_case", case_no)

    def _resume(self, tenant: Tenant, case_no: str, parsed: ParsedMail) -> IntakeResult:
        """Acknowledge (once) and start the lifecycle (once): both safe to repeat."""
        ctx = self.lifecycle.load(case_no)
        if ctx.case.milestone("acknowledgement") and ctx.case.milestone("acknowledgement").met_at is None:  # type: ignore[union-attr]
            to = self.lifecycle.customer_recipient(ctx)
            if to is not None:
                self.lifecycle.notifier.send(tenant=tenant, case=ctx.case, kind="acknowledgement", to=to,
                                             links=MailLinks().add("status", self.lifecycle.status_link(ctx)))

            def acknowledged(c: Ctx) -> None:
                meet(c.case, "acknowledgement", self.clock.now())
            self.lifecycle.mutate(case_no, acknowledged)
        self.workflow.start(case_no, {"case_no": case_no})
        return IntakeResult("new_case", case_no)

    @staticmethod
    def _classification(found: ClassificationResult) -> Classification:
        severity = found.severity
        if found.demands_compensation and severity == "general":
            severity = "major"
        return Classification(category=found.category, severity=severity, safety=found.safety,
                              media_or_regulator=found.media_or_regulator, reasons=list(found.reasons))

    def _repeat_of(self, brand: str, email: str | None, vin: str | None, found: ClassificationResult,
                   at: datetime, window_days: int) -> str | None:
        earlier = self.store.recent_cases_of(brand, customer_email=email, vin=vin, since=at - timedelta(days=window_days))
        same = [c for c in earlier if c.classification.category == found.category]
        return same[-1].case_no if same else None


def _vehicle_ref(vehicle: Vehicle | None, vin: str | None, plate: str | None) -> VehicleRef | None:
    if vehicle is not None:
        return VehicleRef(vin=vehicle.vin, model=vehicle.model, plate=vehicle.plate)
    if vin or plate:
        return VehicleRef(vin=vin, plate=plate)
    return None
