"""Ports: what the domain needs from the outside world. ``shared.adapters`` makes them
real on AWS (and on moto locally); ``tests/fakes.py`` makes them in memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from .kpis import KpiChanges, OpenEntry, OpinionEntry, Part
from .library import LibraryEntry
from .models import Case, HumanTask, Link, MailMessage, TimelineEvent
from .review import ReviewEntry
from .tenant import Tenant, Vehicle
from .views import Viewer


@dataclass(frozen=True)
class InboundRecord:
    """What became of one received mail (keyed by the SES message id)."""

    ses_message_id: str
    status: str  # processing | done
    disposition: str | None = None
    case_no: str | None = None
    raw_key: str | None = None
    detail: str | None = None
    # When the latest attempt claimed the mail: an attempt runs at most the function's
    # timeout, so a claim older than that belongs to an attempt that died.
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class ReceivedMail:
    """A received mail as SES handed it over (the receipt event, not the body), listed
    under its day by the intake's first write: the reconciler's list of mails to account
    for. SES names raw mail by message id only, so the bucket has no day to list by."""

    ses_message_id: str
    raw_key: str
    received_at: datetime
    recipients: list[str]
    verdicts: dict[str, str]  # spam, virus, spf, dkim, dmarc
    envelope_from: str | None = None
    status: str = "received"  # received (not yet accounted for) | done | held
    attempts: int = 0  # re-drives by the reconciler that failed


@dataclass(frozen=True)
class HeldMail:
    """A received mail that became neither a case nor a message on one (ignored,
    quarantined, a duplicate): kept where staff see it, and can release it as a new case."""

    brand: str
    held_id: str  # <yyyymmddThhmmss>-<inbound id>: unique, URL-safe, sorts by receipt
    inbound_id: str  # the SES message id
    raw_key: str
    disposition: str
    detail: str | None
    received_at: datetime
    sender: str | None
    subject: str
    recipients: list[str] = field(default_factory=list)  # the envelope: routing's first clue on release
    status: str = "held"  # held | released
    released_by: str | None = None
    released_at: datetime | None = None
    case_no: str | None = None  # the case a release registered


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment of a mail on a case, stored as its own object."""

    case_no: str
    key: str  # object key in the raw-mail bucket
    filename: str  # as the sender named it, made safe to show and store
    content_type: str  # as the sender declared it
    size: int
    sha256: str
    message_id: str  # the mail it came with
    at: datetime


@dataclass(frozen=True)
class AccountabilityTask:
    """An accountability task (policy.md §9) as the index keeps it: enough to list the open and
    overdue ones per brand, region and dealer without reading the cases."""

    brand: str
    case_no: str
    dealer: str | None
    region: str | None
    responsibility: str
    measure: str
    fine: str  # a Decimal as text
    assignee: str
    recorded_at: datetime
    due_at: datetime
    done_at: datetime | None = None


class CaseStore(Protocol):
    # tenants and reference data
    def get_tenant(self, brand_id: str) -> Tenant: ...
    def tenant_for_address(self, address: str) -> str | None:
        """The brand an address belongs to; else the brand receiving mail at its domain
        (an unknown local part of a brand's domain reaches its triage queue)."""
        ...
    def find_vehicle(self, brand_id: str, *, vin: str | None = None, plate: str | None = None) -> Vehicle | None: ...

    # cases
    def next_case_sequence(self, brand_id: str, dealer_segment: str, month: str) -> int: ...
    def create_case(self, case: Case) -> Case: ...
    def get_case(self, case_no: str) -> Case: ...
    def save_case(self, case: Case) -> Case: ...
    def list_cases(self, brand_id: str, *, dealer: str | None = None, phase: str | None = None,
                   limit: int = 100) -> list[Case]: ...
    def recent_cases_of(self, brand_id: str, *, customer_email: str | None, vin: str | None,
                        since: datetime, phone: str | None = None) -> list[Case]: ...

    # scoped reads: what staff see goes through these, never through get_case/list_cases
    def case_for(self, viewer: Viewer, case_no: str) -> Case:
        """The case if the viewer may see it; otherwise ``CaseNotFoundError``, as if it did not exist."""
        ...

    def cases_for(self, viewer: Viewer, *, dealer: str | None = None, phase: str | None = None,
                  limit: int = 200) -> list[Case]:
        """The viewer's cases, newest first: one index query per dealer partition in scope
        (the brand's index for brand staff); at most ``limit`` per partition and in all."""
        ...

    # the case library (policy.md §11): one anonymised entry per closed case
    def put_library_entry(self, entry: LibraryEntry) -> None:
        """Create or replace the case's entry (its key moves if category or root cause change)."""
        ...

    def library_entries(self, brand_id: str, *, category: str | None = None, root_cause: str | None = None,
                        limit: int = 500) -> list[LibraryEntry]:
        """The brand's entries, newest closed first, by key prefix (category, then root cause)."""
        ...

    # timeline and messages
    def add_event(self, event: TimelineEvent) -> None: ...
    def events(self, case_no: str) -> list[TimelineEvent]: ...
    def add_message(self, message: MailMessage) -> None: ...
    def messages(self, case_no: str) -> list[MailMessage]: ...
    def case_for_message_id(self, message_id: str) -> str | None: ...

    # human tasks
    def arm_task(self, task: HumanTask) -> tuple[HumanTask, bool]: ...
    def get_task(self, case_no: str, key: str) -> HumanTask | None: ...
    def decide_task(self, case_no: str, key: str, decision: dict[str, Any], by: str,
                    at: datetime) -> HumanTask: ...

    # links
    def put_link(self, link: Link) -> None: ...
    def get_link(self, link_hash: str) -> Link | None: ...
    def claim_link(self, link_hash: str, by: str, at: datetime) -> Link: ...

    # inbound mail bookkeeping (idempotency on the SES message id and the Message-ID header)
    def claim_inbound(self, ses_message_id: str, raw_key: str, at: datetime) -> InboundRecord | None: ...
    def finish_inbound(self, record: InboundRecord) -> None: ...
    def claim_message_id(self, brand_id: str, message_id: str, ses_message_id: str) -> str | None: ...
    def inbound_record(self, ses_message_id: str) -> InboundRecord | None: ...

    # reliability (docs/reliability.md): received mail by day, outgoing mail waiting to be re-sent
    def note_received(self, mail: ReceivedMail) -> None:
        """List a received mail under its day (a redelivery changes nothing)."""
        ...

    def received_on(self, day: date, *, limit: int = 100) -> list[ReceivedMail]:
        """The day's received mails not yet accounted for (status ``received``), oldest first."""
        ...

    def settle_received(self, mail: ReceivedMail) -> None:
        """Write a listed mail's status and attempts."""
        ...

    def defer_mail(self, pending: PendingMail) -> None: ...
    def pending_mails(self, *, limit: int = 100) -> list[PendingMail]: ...
    def settle_mail(self, pending: PendingMail, *, sent: bool) -> None:
        """Sent: forget it. Not sent: keep it with its attempts and error."""
        ...

    # rate limits
    def count_hit(self, key: str, window: str, expires_at: int) -> int:
        """Count one request against ``key`` in ``window``; returns the count so far."""
        ...

    # held mail: what intake ignored or quarantined, for staff to see and release
    def hold(self, held: HeldMail) -> None: ...
    def held_mail(self, brand_id: str, held_id: str) -> HeldMail | None: ...
    def list_held(self, brand_id: str, *, status: str | None = None, limit: int = 100) -> list[HeldMail]: ...
    def release_held(self, brand_id: str, held_id: str, *, case_no: str, by: str, at: datetime) -> None: ...

    # attachments of the mails on a case
    def add_attachment(self, attachment: StoredAttachment) -> None: ...
    def attachments(self, case_no: str) -> list[StoredAttachment]: ...

    # classification corrections and reviews by staff, counted per brand and month for the reports
    def count_correction(self, brand_id: str, month: str, fields: list[str], total: str = "corrected") -> None:
        """Count one correction (``total``: ``corrected``, or ``reviewed`` for a confirmation) and
        each field or review mark it names."""
        ...

    def correction_counts(self, brand_id: str, month: str) -> dict[str, int]: ...
    def note_corrected(self, brand_id: str, month: str, case_no: str) -> None:
        """List the case under the month (YYYYMM) a staff member settled its classification in."""
        ...

    def corrected_cases(self, brand_id: str, since: str = "") -> list[str]:
        """The cases listed by ``note_corrected`` in ``since`` (YYYYMM) or later, each once, by month."""
        ...

    # the brand CR center's review queue (review.py): kept by create_case and save_case
    def review_queue(self, brand_id: str, *, limit: int = 200) -> list[ReviewEntry]:
        """The brand's open cases waiting for review, oldest received first."""
        ...

    # accountability tasks after closure (policy.md §9), indexed per brand by due date
    def put_accountability_task(self, task: AccountabilityTask) -> None:
        """Create or replace the index entry of a case's accountability task."""
        ...

    def accountability_tasks(self, brand_id: str, *, due_before: datetime | None = None,
                             open_only: bool = True, limit: int | None = None,
                             scope: str = "brand") -> list[AccountabilityTask]:
        """The tasks of the brand or of one of its scopes (``kpis`` scope keys: ``region#<r>``,
        ``dealer#<r>#<d>``), earliest due first (``due_before``: due strictly before it; ``limit``: the
        first so many, open ones before done ones)."""
        ...

    # KPI aggregates (kpis.py): create_case and save_case keep them; reports read them
    def kpi_record_members(self, changes: KpiChanges) -> None: ...
    def kpi_apply(self, changes: KpiChanges) -> None: ...
    def kpi_adjust(self, brand_id: str, month: str, scope: str, delta: dict[str, Decimal]) -> None: ...
    def kpi_counts(self, brand_id: str, month: str, prefix: str = "",
                   part: Part = "summary") -> dict[str, dict[str, Decimal]]: ...
    def kpi_opinions(self, brand_id: str, month: str, prefix: str = "",
                     limit: int | None = None) -> list[OpinionEntry]: ...
    def kpi_open(self, brand_id: str, due_before: datetime | None = None,
                 limit: int | None = None, scope: str = "brand") -> list[OpenEntry]: ...
    def kpi_risk(self, brand_id: str, month: str) -> dict[str, dict[str, Decimal]]: ...
    def kpi_risk_buckets(self, brand_id: str) -> dict[tuple[str, str], dict[str, Decimal]]: ...
    def kpi_compact_risk(self, brand_id: str, before: str) -> int: ...
    def kpi_members(self, brand_id: str, month: str) -> list[str]: ...
    def report_mailed(self, brand_id: str, month: str, scope: str) -> bool: ...
    def mark_report_mailed(self, brand_id: str, month: str, scope: str, at: datetime) -> None: ...
    def cases_received(self, brand_id: str, start: datetime, end: datetime) -> Iterator[Case]:
        """The brand's cases received in [start, end), oldest first (repairs and checks, not reports)."""
        ...


class BlobStore(Protocol):
    def get(self, key: str) -> bytes: ...
    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None: ...


@runtime_checkable
class StreamingBlobStore(BlobStore, Protocol):
    """A blob store that reads byte ranges and writes in parts (S3 ranged GETs and
    multipart uploads), so that a large mail is never whole in memory."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive; None: to the end) in chunks."""
        ...

    def put_chunks(self, key: str, chunks: Iterable[bytes], content_type: str = "application/octet-stream") -> None: ...


@dataclass
class OutgoingMail:
    sender: str
    sender_name: str
    to: list[str]
    subject: str
    text: str
    html: str
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    case_no: str | None = None
    links: list[dict[str, str]] = field(default_factory=list)  # [{"step", "url"}]: for the local outbox
    sent_at: datetime | None = None


@dataclass(frozen=True)
class PendingMail:
    """An outgoing mail the mail service refused after our retries: kept, and shown on the
    case's timeline, until the reconciler has sent it."""

    pending_id: str  # <failed at>#<message id hash>: unique, sorts by failure
    mail: OutgoingMail
    failed_at: datetime
    error: str  # the mail service's error code
    attempts: int = 1


class Mailer(Protocol):
    def send(self, mail: OutgoingMail) -> None: ...


class Workflow(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> None: ...
    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        """False when the token is no longer waiting (timed out, already answered)."""
        ...
