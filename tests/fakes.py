"""In-memory ports for domain tests: the same contract as the DynamoDB adapter
(conditional writes included), no AWS, no network."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from shared.complaints.clock import FixedClock
from shared.complaints.errors import (
    CaseNotFoundError,
    ConfigurationError,
    ConflictError,
    LinkGoneError,
    TaskNotOpenError,
)
from shared.complaints.kpis import KpiTables, case_changes, in_scope
from shared.complaints.library import LibraryEntry, library_entry
from shared.complaints.lifecycle import Lifecycle
from shared.complaints.links import LinkService
from shared.complaints.models import Case, HumanTask, Link, MailMessage, TimelineEvent
from shared.complaints.notifications import Notifier
from shared.complaints.ports import (
    AccountabilityTask,
    HeldMail,
    InboundRecord,
    OutgoingMail,
    PendingMail,
    ReceivedMail,
    StoredAttachment,
)
from shared.complaints.review import ReviewEntry, review_entry
from shared.complaints.tenant import TRIAGE, Tenant, Vehicle
from shared.complaints.views import Viewer

DEMO_TENANT = Path(__file__).resolve().parent.parent / "infra" / "local" / "demo-brand.json"


def demo_tenant_doc() -> tuple[dict[str, Any], list[Vehicle]]:
    doc = json.loads(DEMO_TENANT.read_text("utf-8"))
    vehicles = [Vehicle.model_validate(v) for v in doc.pop("vehicles", [])]
    doc.pop("about", None)
    return doc, vehicles


class MemoryStore(KpiTables):
    def __init__(self) -> None:
        super().__init__()  # the KPI aggregates (shared/complaints/kpis.py)
        self._lock = threading.Lock()
        self.tenants: dict[str, Tenant] = {}
        self.addresses: dict[str, str] = {}
        self.domains: dict[str, str] = {}
        self.vehicles: dict[tuple[str, str], Vehicle] = {}
        self.counters: dict[str, int] = {}
        self.cases: dict[str, Case] = {}
        self.event_log: dict[str, list[TimelineEvent]] = {}
        self.mail: dict[str, list[MailMessage]] = {}
        self.message_ids: dict[str, str] = {}
        self.tasks: dict[tuple[str, str], HumanTask] = {}
        self.link_table: dict[str, Link] = {}
        self.inbound: dict[str, InboundRecord] = {}
        self.rfc_ids: dict[str, str] = {}
        self.held: dict[tuple[str, str], HeldMail] = {}
        self.stored_attachments: dict[str, dict[str, StoredAttachment]] = {}
        self.accountability: dict[tuple[str, str], AccountabilityTask] = {}
        self.library: dict[tuple[str, str], LibraryEntry] = {}
        self.received: dict[tuple[date, str], ReceivedMail] = {}
        self.pending: dict[str, PendingMail] = {}
        self.review: dict[str, tuple[int, ReviewEntry | None]] = {}  # case -> (version that wrote it, entry)

    def put_tenant(self, doc: dict[str, Any], vehicles: list[Vehicle]) -> None:
        tenant = Tenant.model_validate(doc)
        self.tenants[tenant.brand.id] = tenant
        for a in [*tenant.brand.intake_addresses, *(d.address for d in tenant.dealers), tenant.brand.sender_address]:
            self.addresses[a.lower()] = tenant.brand.id
        for domain in tenant.brand.receiving_domains:
            self.domains[domain] = tenant.brand.id
        for v in vehicles:
            self.vehicles[(tenant.brand.id, v.vin)] = v

    def get_tenant(self, brand_id: str) -> Tenant:
        if brand_id not in self.tenants:
            raise ConfigurationError(brand_id)
        return self.tenants[brand_id]

    def tenant_for_address(self, address: str) -> str | None:
        address = address.lower()
        return self.addresses.get(address) or self.domains.get(address.rpartition("@")[2])

    def find_vehicle(self, brand_id: str, *, vin: str | None = None, plate: str | None = None) -> Vehicle | None:
        for (b, v_vin), v in self.vehicles.items():
            if b == brand_id and ((vin and v_vin == vin.upper()) or (plate and v.plate == plate)):
                return v
        return None

    def next_case_sequence(self, brand_id: str, dealer_segment: str, month: str) -> int:
        with self._lock:
            key = f"{brand_id}#{dealer_segment}#{month}"
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]

    def create_case(self, case: Case) -> Case:
        with self._lock:
            if case.case_no in self.cases:
                raise ConflictError(case.case_no)
            case = case.model_copy(deep=True, update={"version": 1})
            self._kpi_write(None, case)
            self.cases[case.case_no] = case
            return case.model_copy(deep=True)

    def _kpi_write(self, old: Case | None, new: Case) -> None:
        changed = case_changes(old, new, self.get_tenant(new.brand))
        self.kpi_record_members(changed)
        self.kpi_apply(changed)
        policy = self.get_tenant(new.brand).policy_for(None)  # the review queue, as the DynamoDB store keeps it
        entry = review_entry(new, policy)
        if entry != (review_entry(old, policy) if old else None) and self.review.get(new.case_no, (0, None))[0] < new.version:
            self.review[new.case_no] = (new.version, entry)

    def review_queue(self, brand_id: str, *, limit: int = 200) -> list[ReviewEntry]:
        found = [e for _, e in self.review.values() if e is not None and e.brand == brand_id]
        return sorted(found, key=lambda e: e.key)[:limit]

    def cases_received(self, brand_id: str, start: datetime, end: datetime) -> Iterator[Case]:
        found = [c for c in self.cases.values() if c.brand == brand_id and start <= c.received_at < end]
        yield from (c.model_copy(deep=True) for c in sorted(found, key=lambda c: (c.received_at, c.case_no)))

    def get_case(self, case_no: str) -> Case:
        if case_no not in self.cases:
            raise CaseNotFoundError(case_no)
        return self.cases[case_no].model_copy(deep=True)

    def save_case(self, case: Case) -> Case:
        with self._lock:
            if self.cases[case.case_no].version != case.version:
                raise ConflictError(case.case_no)
            saved = case.model_copy(deep=True, update={"version": case.version + 1})
            self._kpi_write(self.cases[case.case_no], saved)
            self.cases[case.case_no] = saved
        if saved.phase == "closed":  # the case library keeps every closed case, as the DynamoDB store does
            self.put_library_entry(library_entry(saved, self.get_tenant(saved.brand)))
        return saved.model_copy(deep=True)

    def list_cases(self, brand_id: str, *, dealer: str | None = None, phase: str | None = None,
                   limit: int = 100) -> list[Case]:
        return [c.model_copy(deep=True) for c in self.cases.values()
                if c.brand == brand_id and (dealer is None or c.dealer == dealer) and (phase is None or c.phase == phase)][:limit]

    def case_for(self, viewer: Viewer, case_no: str) -> Case:
        case = self.get_case(case_no)
        if not viewer.sees(case):
            raise CaseNotFoundError(case_no)
        return case

    def cases_for(self, viewer: Viewer, *, dealer: str | None = None, phase: str | None = None,
                  limit: int = 200) -> list[Case]:
        partitions = viewer.partitions(dealer)
        found = [c.model_copy(deep=True) for c in self.cases.values()
                 if c.brand == viewer.brand and (partitions is None or (c.dealer or TRIAGE) in partitions)
                 and (phase is None or c.phase == phase)]
        return sorted(found, key=lambda c: (c.received_at, c.case_no), reverse=True)[:limit]

    def put_library_entry(self, entry: LibraryEntry) -> None:
        with self._lock:
            self.library[(entry.brand, entry.case_no)] = entry

    def library_entries(self, brand_id: str, *, category: str | None = None, root_cause: str | None = None,
                        limit: int = 500) -> list[LibraryEntry]:
        found = [e for (b, _), e in self.library.items() if b == brand_id and (category is None or e.category == category)
                 and (root_cause is None or e.root_cause == root_cause)]
        return sorted(found, key=lambda e: e.closed_at, reverse=True)[:limit]

    def recent_cases_of(self, brand_id: str, *, customer_email: str | None, vin: str | None,
                        since: datetime, phone: str | None = None) -> list[Case]:
        return [c for c in self.cases.values() if c.brand == brand_id and c.received_at >= since and (
            (customer_email and c.customer.email == customer_email) or (vin and c.vehicle and c.vehicle.vin == vin)
            or (phone and c.customer.phone == phone))]

    def add_event(self, event: TimelineEvent) -> None:
        self.event_log.setdefault(event.case_no, []).append(event)

    def events(self, case_no: str) -> list[TimelineEvent]:
        return list(self.event_log.get(case_no, []))

    def add_message(self, message: MailMessage) -> None:
        if message.case_no:
            self.mail.setdefault(message.case_no, []).append(message)
            if message.direction == "out":
                self.message_ids[message.message_id] = message.case_no

    def messages(self, case_no: str) -> list[MailMessage]:
        return list(self.mail.get(case_no, []))

    def case_for_message_id(self, message_id: str) -> str | None:
        return self.message_ids.get(message_id)

    def arm_task(self, task: HumanTask) -> tuple[HumanTask, bool]:
        with self._lock:
            key = (task.case_no, task.key)
            current = self.tasks.get(key)
            if current is None:
                self.tasks[key] = task.model_copy(update={"version": 1})
                return self.tasks[key], True
            if current.status != "open":
                return current, False
            self.tasks[key] = current.model_copy(update={"token": task.token, "version": current.version + 1})
            return self.tasks[key], False

    def get_task(self, case_no: str, key: str) -> HumanTask | None:
        return self.tasks.get((case_no, key))

    def decide_task(self, case_no: str, key: str, decision: dict[str, Any], by: str, at: datetime) -> HumanTask:
        with self._lock:
            current = self.tasks.get((case_no, key))
            if current is None or current.status != "open":
                raise TaskNotOpenError(key)
            decided = current.model_copy(update={"status": "decided", "decision": decision, "decided_by": by,
                                                 "decided_at": at, "version": current.version + 1})
            self.tasks[(case_no, key)] = decided
            return decided

    def put_link(self, link: Link) -> None:
        self.link_table[link.link_hash] = link

    def get_link(self, link_hash: str) -> Link | None:
        return self.link_table.get(link_hash)

    def claim_link(self, link_hash: str, by: str, at: datetime) -> Link:
        with self._lock:
            link = self.link_table[link_hash]
            if link.used_at is not None:
                raise LinkGoneError("used", reason="used", decided_by=link.used_by)
            self.link_table[link_hash] = link.model_copy(update={"used_at": at, "used_by": by})
            return self.link_table[link_hash]


    def claim_inbound(self, ses_message_id: str, raw_key: str, at: datetime) -> InboundRecord | None:
        with self._lock:
            if ses_message_id in self.inbound:
                prior = self.inbound[ses_message_id]
                if prior.status == "processing":
                    self.inbound[ses_message_id] = replace(prior, claimed_at=at)
                return prior
            self.inbound[ses_message_id] = InboundRecord(ses_message_id, "processing", raw_key=raw_key, claimed_at=at)
            return None

    def finish_inbound(self, record: InboundRecord) -> None:
        with self._lock:
            prior = self.inbound.get(record.ses_message_id)
            self.inbound[record.ses_message_id] = replace(record, claimed_at=prior.claimed_at if prior else None)

    def inbound_record(self, ses_message_id: str) -> InboundRecord | None:
        return self.inbound.get(ses_message_id)

    def note_received(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.received.setdefault((mail.received_at.astimezone(UTC).date(), mail.ses_message_id), mail)

    def received_on(self, day: date, *, limit: int = 100) -> list[ReceivedMail]:
        found = [m for (d, _), m in sorted(self.received.items()) if d == day and m.status == "received"]
        return found[:limit]

    def settle_received(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.received[(mail.received_at.astimezone(UTC).date(), mail.ses_message_id)] = mail

    def defer_mail(self, pending: PendingMail) -> None:
        with self._lock:
            self.pending[pending.pending_id] = pending

    def pending_mails(self, *, limit: int = 100) -> list[PendingMail]:
        return [self.pending[k] for k in sorted(self.pending)][:limit]

    def settle_mail(self, pending: PendingMail, *, sent: bool) -> None:
        with self._lock:
            if sent:
                self.pending.pop(pending.pending_id, None)
            else:
                self.pending[pending.pending_id] = pending

    def count_hit(self, key: str, window: str, expires_at: int) -> int:
        with self._lock:
            self.counters[f"rate#{key}#{window}"] = self.counters.get(f"rate#{key}#{window}", 0) + 1
            return self.counters[f"rate#{key}#{window}"]

    def claim_message_id(self, brand_id: str, message_id: str, ses_message_id: str) -> str | None:
        with self._lock:
            first = self.rfc_ids.setdefault(f"{brand_id}#{message_id}", ses_message_id)
            return None if first == ses_message_id else first

    def hold(self, held: HeldMail) -> None:
        self.held[(held.brand, held.held_id)] = held

    def held_mail(self, brand_id: str, held_id: str) -> HeldMail | None:
        return self.held.get((brand_id, held_id))

    def list_held(self, brand_id: str, *, status: str | None = None, limit: int = 100) -> list[HeldMail]:
        found = [h for (b, _), h in sorted(self.held.items(), reverse=True) if b == brand_id]
        return [h for h in found if status is None or h.status == status][:limit]

    def release_held(self, brand_id: str, held_id: str, *, case_no: str, by: str, at: datetime) -> None:
        held = self.held[(brand_id, held_id)]
        self.held[(brand_id, held_id)] = replace(held, status="released", case_no=case_no, released_by=by,
                                                  released_at=at)

    def add_attachment(self, attachment: StoredAttachment) -> None:
        self.stored_attachments.setdefault(attachment.case_no, {})[attachment.key] = attachment

    def attachments(self, case_no: str) -> list[StoredAttachment]:
        return list(self.stored_attachments.get(case_no, {}).values())

    def count_correction(self, brand_id: str, month: str, fields: list[str], total: str = "corrected") -> None:
        with self._lock:
            for name in [total, *fields]:
                key = f"corrections#{brand_id}#{month}#{name}"
                self.counters[key] = self.counters.get(key, 0) + 1

    def note_corrected(self, brand_id: str, month: str, case_no: str) -> None:
        with self._lock:
            self.counters[f"corrected#{brand_id}#{month}#{case_no}"] = 1

    def corrected_cases(self, brand_id: str, since: str = "") -> list[str]:
        prefix = f"corrected#{brand_id}#"
        found = sorted(k.removeprefix(prefix) for k in self.counters if k.startswith(prefix))
        return list(dict.fromkeys(k.partition("#")[2] for k in found if k >= since))

    def correction_counts(self, brand_id: str, month: str) -> dict[str, int]:
        prefix = f"corrections#{brand_id}#{month}#"
        return {k.removeprefix(prefix): v for k, v in self.counters.items() if k.startswith(prefix)}

    def put_accountability_task(self, task: AccountabilityTask) -> None:
        with self._lock:
            self.accountability[(task.brand, task.case_no)] = task

    def accountability_tasks(self, brand_id: str, *, due_before: datetime | None = None,
                             open_only: bool = True, limit: int | None = None,
                             scope: str = "brand") -> list[AccountabilityTask]:
        found = [t for (b, _), t in self.accountability.items() if b == brand_id
                 and (due_before is None or t.due_at < due_before) and (not open_only or t.done_at is None)
                 and in_scope(scope, t.region, t.dealer)]
        found = sorted(found, key=lambda t: (t.done_at is not None, t.due_at, t.case_no))
        return found[:limit] if limit is not None else sorted(found, key=lambda t: (t.due_at, t.case_no))


class MemoryMailer:
    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    def send(self, mail: OutgoingMail) -> None:
        self.sent.append(copy.deepcopy(mail))

    def to(self, address: str) -> list[OutgoingMail]:
        return [m for m in self.sent if address in m.to]


class MemoryWorkflow:
    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.completed: list[tuple[str, dict[str, Any]]] = []
        self.dead_tokens: set[str] = set()

    def start(self, name: str, payload: dict[str, Any]) -> None:
        self.started.setdefault(name, payload)

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.dead_tokens:
            return False
        self.completed.append((token, output))
        return True


class MemoryBlobs:
    """Objects in memory; reads ranges and writes in parts as S3 does (``StreamingBlobStore``)."""

    def __init__(self, chunk: int = 1 << 20) -> None:
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self._chunk = chunk

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = body
        self.content_types[key] = content_type

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        view = memoryview(self.objects[key])
        stop = len(view) if end is None else min(end, len(view))
        for at in range(start, stop, self._chunk):
            yield bytes(view[at : min(at + self._chunk, stop)])

    def put_chunks(self, key: str, chunks: Iterable[bytes], content_type: str = "application/octet-stream") -> None:
        self.put(key, b"".join(chunks), content_type)


class Domain:
    """The domain services wired to in-memory ports, with a clock the test moves."""

    def __init__(self, at: datetime) -> None:
        self.clock = FixedClock(at)
        self.store = MemoryStore()
        self.mailer = MemoryMailer()
        self.workflow = MemoryWorkflow()
        self.blobs = MemoryBlobs()
        doc, vehicles = demo_tenant_doc()
        self.store.put_tenant(doc, vehicles)
        self.links = LinkService(self.store, self.clock, "x" * 32, "https://complaints.example")
        self.notifier = Notifier(self.store, self.mailer, self.clock)
        self.lifecycle = Lifecycle(self.store, self.workflow, self.clock, self.links, self.notifier)

    @property
    def tenant(self) -> Tenant:
        return self.store.get_tenant("aurora")
