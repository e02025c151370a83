"""The case store on DynamoDB, through pynamodb: one table, keys by item kind.

The table, its key layout and its indexes are in ``table.py``; the KPI methods of the store in
``kpi_dynamodb.py``.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, get_args

from aws_lambda_powertools import Logger
from pynamodb.exceptions import PutError, PynamoDBException, UpdateError

from shared.adapters.aws import outgoing_mail, outgoing_mail_doc
from shared.adapters.kpi_dynamodb import DynamoKpiTables
from shared.adapters.table import Item, bound, digest, place_query, placed, repeat_lookup_keys, repeat_lookup_keys_for
from shared.complaints.clock import iso, parse_iso
from shared.complaints.errors import (
    CaseNotFoundError,
    ConfigurationError,
    ConflictError,
    LinkGoneError,
    TaskNotOpenError,
    TransientError,
)
from shared.complaints.library import LibraryEntry, library_entry
from shared.complaints.models import Case, Category, HumanTask, Link, MailMessage, TimelineEvent
from shared.complaints.ports import (
    AccountabilityTask,
    HeldMail,
    InboundRecord,
    PendingMail,
    ReceivedMail,
    StoredAttachment,
)
from shared.complaints.review import ReviewEntry, review_entry
from shared.complaints.tenant import TRIAGE, Tenant, Vehicle
from shared.complaints.views import Viewer

_CONDITION_FAILED = "ConditionalCheckFailedException"
# Left after botocore's own retries (standard mode; pynamodb's ``max_retry_attempts``):
# the state machine and the mail senders retry ``TransientError`` with backoff.
_TRANSIENT_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                              "InternalServerError", "ServiceUnavailable", "TransactionConflictException"})
RECEIVED_KEPT = timedelta(days=35)  # a day's list of received mail, past any reconciler look-back
F = TypeVar("F", bound=Callable[..., Any])


def _failed_condition(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == _CONDITION_FAILED


def _transient(method: F) -> F:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except PynamoDBException as exc:
            code = getattr(exc, "cause_response_code", None)
            if code in _TRANSIENT_CODES:
                raise TransientError(f"DynamoDB {code}") from exc
            raise
    return call  # type: ignore[return-value]


def _transient_errors(cls: type[Any]) -> type[Any]:
    """DynamoDB's throttles and server errors reach the domain as ``TransientError``."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and callable(member):
            setattr(cls, name, _transient(member))
    return cls


class _ReferenceCache:
    """Tenants and recipient addresses, read on every mail and every transition and changed
    rarely: kept for a minute in a warm container (a tenant change reaches every container
    within that; in this process at once, ``put_tenant`` clears it)."""

    TTL_S = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, key: str) -> object | None:
        with self._lock:
            found = self._entries.get(key)
        return found[1] if found and found[0] > time.monotonic() else None

    def put(self, key: str, value: object) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.TTL_S, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_REFERENCE = _ReferenceCache()


@_transient_errors
class DynamoCaseStore(DynamoKpiTables):
    """``CaseStore`` on DynamoDB. Every state change is a conditional write.

    ``shared/runtime/wiring.py`` makes it (``case_store``): the table bound from the settings, and the
    handlers' logger for what the store reports but cannot raise (KPI aggregates left behind)."""

    def __init__(self, logger: Logger) -> None:
        if not bound():
            raise ConfigurationError("the case table is not bound: shared.runtime.wiring.case_store makes the store")
        self._logger = logger

    # ----- tenants and reference data -------------------------------------------------
    def put_tenant(self, tenant_doc: dict[str, Any], vehicles: list[Vehicle]) -> None:
        tenant = Tenant.model_validate(tenant_doc)
        brand = tenant.brand.id
        Item(f"TENANT#{brand}", "#CONFIG", doc=json.dumps(tenant_doc, ensure_ascii=False)).save()
        _REFERENCE.clear()
        # The sender address too: customers' replies to our mail go there.
        for address in [*tenant.brand.intake_addresses, *(d.address for d in tenant.dealers),
                        tenant.brand.sender_address]:
            Item(f"ADDRESS#{address.lower()}", "#ADDRESS", ref=brand).save()
        for domain in tenant.brand.receiving_domains:
            Item(f"DOMAIN#{domain}", "#DOMAIN", ref=brand).save()
        for v in vehicles:
            Item(f"VIN#{brand}#{v.vin.upper()}", "#VEHICLE", doc=v.model_dump_json()).save()
            if v.plate:
                Item(f"PLATE#{brand}#{_norm_plate(v.plate)}", "#PLATE", ref=v.vin.upper()).save()

    def get_tenant(self, brand_id: str) -> Tenant:
        cached = _REFERENCE.get(f"tenant#{brand_id}")
        if isinstance(cached, Tenant):
            return cached
        try:
            item = Item.get(f"TENANT#{brand_id}", "#CONFIG")
        except Item.DoesNotExist as exc:
            raise ConfigurationError(f"no tenant {brand_id!r}") from exc
        tenant = Tenant.model_validate_json(item.doc or "{}")
        _REFERENCE.put(f"tenant#{brand_id}", tenant)
        return tenant

    def tenant_for_address(self, address: str) -> str | None:
        address = address.lower()
        return self._brand_of("ADDRESS", address) or self._brand_of("DOMAIN", address.rpartition("@")[2])

    @staticmethod
    def _brand_of(kind: str, value: str) -> str | None:
        key = f"{kind.lower()}#{value}"
        cached = _REFERENCE.get(key)
        if isinstance(cached, str):
            return cached
        try:
            brand = Item.get(f"{kind}#{value}", f"#{kind}").ref
        except Item.DoesNotExist:
            return None  # not cached: an address added a moment ago resolves at once
        if brand:
            _REFERENCE.put(key, brand)
        return brand

    def find_vehicle(self, brand_id: str, *, vin: str | None = None, plate: str | None = None) -> Vehicle | None:
        if vin is None and plate is not None:
            try:
                vin = Item.get(f"PLATE#{brand_id}#{_norm_plate(plate)}", "#PLATE").ref
            except Item.DoesNotExist:
                return None
        if vin is None:
            return None
        try:
            return Vehicle.model_validate_json(Item.get(f"VIN#{brand_id}#{vin.upper()}", "#VEHICLE").doc or "{}")
        except Item.DoesNotExist:
            return None

    # ----- cases -------------------------------------------------------------------------
    def next_case_sequence(self, brand_id: str, dealer_segment: str, month: str) -> int:
        item = Item(f"COUNTER#{brand_id}#{dealer_segment}#{month}", "#COUNTER")
        item.update(actions=[Item.counter.add(1)])  # atomic; creates the counter at 1
        return int(item.counter or 0)

    def _case_item(self, case: Case) -> Item:
        dealer = case.dealer or TRIAGE
        received = iso(case.received_at)
        return Item(
            f"CASE#{case.case_no}", "#CASE",
            doc=case.model_dump_json(), version=case.version, status=case.phase,
            gsi1pk=f"BRAND#{case.brand}#DEALER#{dealer}", gsi1sk=f"{case.phase}#{received}#{case.case_no}",
            gsi2pk=f"BRAND#{case.brand}", gsi2sk=f"{received}#{case.case_no}",
        )

    def create_case(self, case: Case) -> Case:
        """Lookup items first (idempotent), then the case (conditional). No transaction:
        a lookup left behind by a failed attempt points at no case and is skipped."""
        case = case.model_copy(update={"version": 1})
        kpi = self._kpi_prepare(case)  # KPI members first, aggregates after the case (kpi_dynamodb.py)
        received = iso(case.received_at)
        for lookup in repeat_lookup_keys(case):
            Item(lookup, f"CASE#{received}#{case.case_no}", ref=case.case_no).save()
        try:
            self._kpi_put_case(self._case_item(case), Item.pk.does_not_exist())
        except PutError as exc:
            if _failed_condition(exc):
                raise ConflictError(f"case {case.case_no} exists already") from exc
            raise
        self._kpi_finish(case.brand, kpi, None)
        self._keep_review_entry(case, None)
        return case

    def get_case(self, case_no: str) -> Case:
        try:
            item = Item.get(f"CASE#{case_no}", "#CASE", consistent_read=True)
        except Item.DoesNotExist as exc:
            raise CaseNotFoundError(case_no) from exc
        case = Case.model_validate_json(item.doc or "{}")
        self._kpi_seen(case_no, case.version, item.doc or "{}", item.kpi_version)  # its KPI months, for the next save
        return case

    def save_case(self, case: Case) -> Case:
        """Write the case if nobody else wrote it since we read it (optimistic lock)."""
        expected = case.version
        new = case.model_copy(update={"version": expected + 1})
        kpi = self._kpi_prepare(new)
        try:
            replaced = self._kpi_put_case(self._case_item(new), Item.version == expected)
        except PutError as exc:
            if _failed_condition(exc):
                raise ConflictError(f"case {case.case_no} changed concurrently") from exc
            raise
        self._kpi_finish(new.brand, kpi, replaced)
        self._keep_review_entry(new, str((replaced or {}).get("doc", {}).get("S") or "") or None)
        if new.phase == "closed":  # the case library keeps every closed case (library.py)
            self.put_library_entry(library_entry(new, self.get_tenant(new.brand)))
        return new

    def list_cases(self, brand_id: str, *, dealer: str | None = None, phase: str | None = None,
                   limit: int = 100) -> list[Case]:
        if dealer:
            cond = Item.gsi1sk.startswith(f"{phase}#") if phase else None
            items = Item.by_dealer.query(f"BRAND#{brand_id}#DEALER#{dealer}", cond, limit=limit)
        else:
            items = Item.by_brand.query(f"BRAND#{brand_id}", scan_index_forward=False, limit=limit)
        cases = [Case.model_validate_json(i.doc or "{}") for i in items]
        if phase and not dealer:
            cases = [c for c in cases if c.phase == phase]
        return cases

    def case_for(self, viewer: Viewer, case_no: str) -> Case:
        case = self.get_case(case_no)
        if not viewer.sees(case):
            raise CaseNotFoundError(case_no)  # another tenant's case does not exist for this viewer
        return case

    def cases_for(self, viewer: Viewer, *, dealer: str | None = None, phase: str | None = None,
                  limit: int = 200) -> list[Case]:
        partitions = viewer.partitions(dealer)
        if partitions is None:
            items = list(Item.by_brand.query(f"BRAND#{viewer.brand}", scan_index_forward=False, limit=limit,
                                             filter_condition=(Item.status == phase) if phase else None))
        else:
            items = []
            for partition in partitions:
                items += Item.by_dealer.query(f"BRAND#{viewer.brand}#DEALER#{partition}",
                                              Item.gsi1sk.startswith(f"{phase}#") if phase else None,
                                              scan_index_forward=False, limit=limit)
        cases = [c for c in (Case.model_validate_json(i.doc or "{}") for i in items) if viewer.sees(c)]
        return sorted(cases, key=lambda c: (c.received_at, c.case_no), reverse=True)[:limit]

    def recent_cases_of(self, brand_id: str, *, customer_email: str | None, vin: str | None,
                        since: datetime, phone: str | None = None) -> list[Case]:
        numbers: set[str] = set()
        for key in repeat_lookup_keys_for(brand_id, customer_email, vin, phone):
            for i in Item.query(key, Item.sk >= f"CASE#{iso(since)}"):
                if i.ref:
                    numbers.add(i.ref)
        cases = []
        for number in sorted(numbers):
            try:
                cases.append(self.get_case(number))
            except CaseNotFoundError:
                continue  # a lookup written by an attempt that never created its case
        return cases

    # ----- timeline and messages -------------------------------------------------------------
    def add_event(self, event: TimelineEvent) -> None:
        # Many events share a (virtual) second: the nanosecond counter keeps their order.
        Item(f"CASE#{event.case_no}", f"EVT#{iso(event.at)}#{time.time_ns():020d}#{uuid.uuid4().hex[:6]}",
             doc=event.model_dump_json()).save(condition=Item.pk.does_not_exist())

    def events(self, case_no: str) -> list[TimelineEvent]:
        return [TimelineEvent.model_validate_json(i.doc or "{}")
                for i in Item.query(f"CASE#{case_no}", Item.sk.startswith("EVT#"))]

    def add_message(self, message: MailMessage) -> None:
        if message.case_no:
            Item(f"CASE#{message.case_no}", f"MSG#{iso(message.at)}#{time.time_ns():020d}#{uuid.uuid4().hex[:6]}",
                 doc=message.model_dump_json()).save(condition=Item.pk.does_not_exist())
            if message.direction == "out":
                Item(f"MSGID#{message.message_id}", "#MSGID", ref=message.case_no).save()

    def messages(self, case_no: str) -> list[MailMessage]:
        return [MailMessage.model_validate_json(i.doc or "{}")
                for i in Item.query(f"CASE#{case_no}", Item.sk.startswith("MSG#"))]

    def case_for_message_id(self, message_id: str) -> str | None:
        try:
            return Item.get(f"MSGID#{message_id}", "#MSGID").ref
        except Item.DoesNotExist:
            return None

    # ----- human tasks ----------------------------------------------------------------------
    def arm_task(self, task: HumanTask) -> tuple[HumanTask, bool]:
        """Create the task, or give an open one its fresh token. Returns (task, created).

        A task already decided is returned untouched: the caller completes the new
        token with the stored decision (the decision raced a deadline timer)."""
        pk, sk = f"CASE#{task.case_no}", f"TASK#{task.key}"
        try:
            Item(pk, sk, doc=task.model_dump_json(), token=task.token, status="open", version=1).save(
                condition=Item.pk.does_not_exist())
            return task.model_copy(update={"version": 1}), True
        except PutError as exc:
            if not _failed_condition(exc):
                raise
        current = self.get_task(task.case_no, task.key)
        if current is None:
            raise ConflictError("task vanished while re-arming")
        if current.status != "open":
            return current, False
        rearmed = current.model_copy(update={"token": task.token, "version": current.version + 1})
        try:
            Item(pk, sk, doc=rearmed.model_dump_json(), token=task.token, status="open",
                 version=rearmed.version).save(condition=(Item.version == current.version) & (Item.status == "open"))
        except PutError as exc:
            if _failed_condition(exc):
                raise ConflictError("task changed while re-arming") from exc
            raise
        return rearmed, False

    def get_task(self, case_no: str, key: str) -> HumanTask | None:
        try:
            item = Item.get(f"CASE#{case_no}", f"TASK#{key}", consistent_read=True)
        except Item.DoesNotExist:
            return None
        task = HumanTask.model_validate_json(item.doc or "{}")
        # The item's own attributes are authoritative: conditions are written against them.
        return task.model_copy(update={"token": item.token or task.token, "version": int(item.version or 0),
                                       "status": item.status or task.status})

    def decide_task(self, case_no: str, key: str, decision: dict[str, Any], by: str, at: datetime) -> HumanTask:
        """Record the decision if the task is still open; returns it with the token current *now*."""
        for _ in range(5):
            current = self.get_task(case_no, key)
            if current is None or current.status != "open":
                raise TaskNotOpenError(f"{case_no} {key} is not waiting")
            decided = current.model_copy(update={
                "status": "decided", "decision": decision, "decided_by": by, "decided_at": at,
                "version": current.version + 1})
            try:
                Item(f"CASE#{case_no}", f"TASK#{key}", doc=decided.model_dump_json(), token=current.token,
                     status="decided", version=decided.version).save(
                    condition=(Item.version == current.version) & (Item.status == "open"))
                return decided
            except PutError as exc:
                if not _failed_condition(exc):
                    raise
        raise ConflictError(f"{case_no} {key}: too much contention")

    # ----- links ----------------------------------------------------------------------------
    def put_link(self, link: Link) -> None:
        Item(f"LINK#{link.link_hash}", "#LINK", doc=link.model_dump_json(),
             expires_at=int(link.expires_at.timestamp()) + 90 * 86400).save(condition=Item.pk.does_not_exist())

    def get_link(self, link_hash: str) -> Link | None:
        try:
            item = Item.get(f"LINK#{link_hash}", "#LINK", consistent_read=True)
        except Item.DoesNotExist:
            return None
        return Link.model_validate_json(item.doc or "{}")

    def claim_link(self, link_hash: str, by: str, at: datetime) -> Link:
        """Mark the link used; exactly one of concurrent claimants wins."""
        link = self.get_link(link_hash)
        if link is None:
            raise LinkGoneError("link vanished", reason="unknown")
        used = link.model_copy(update={"used_at": at, "used_by": by})
        try:
            Item(f"LINK#{link_hash}", "#LINK", doc=used.model_dump_json(), used_at=iso(at),
                 expires_at=int(link.expires_at.timestamp()) + 90 * 86400).save(
                condition=Item.pk.exists() & Item.used_at.does_not_exist())
        except PutError as exc:
            if _failed_condition(exc):
                again = self.get_link(link_hash)
                raise LinkGoneError("link already used", reason="used",
                                    decided_by=again.used_by if again else None,
                                    decided_at=iso(again.used_at) if again and again.used_at else None) from exc
            raise
        return used


    # ----- inbound bookkeeping ---------------------------------------------------------------------
    def claim_inbound(self, ses_message_id: str, raw_key: str, at: datetime) -> InboundRecord | None:
        """Start processing a received mail; None if we own it now, else what happened to it.

        Each attempt stamps its claim (``used_at``) with a conditional write, so two attempts
        that meet on one mail cannot both go on (the later gets ``ConflictError``), and the
        reconciler can tell a live attempt from a dead one by the claim's age."""
        try:
            Item(f"INBOUND#{ses_message_id}", "#INBOUND", status="processing", used_at=iso(at),
                 doc=json.dumps({"raw_key": raw_key, "at": iso(at)})).save(condition=Item.pk.does_not_exist())
            return None
        except PutError as exc:
            if not _failed_condition(exc):
                raise
        item = Item.get(f"INBOUND#{ses_message_id}", "#INBOUND", consistent_read=True)
        record = _inbound_record(ses_message_id, item)
        if record.status == "processing":
            same_claim = Item.used_at == item.used_at if item.used_at else Item.used_at.does_not_exist()
            try:
                item.update(actions=[Item.used_at.set(iso(at))], condition=same_claim)
            except UpdateError as exc:
                if _failed_condition(exc):
                    raise ConflictError(f"mail {ses_message_id} claimed by another attempt") from exc
                raise
        return record

    def inbound_record(self, ses_message_id: str) -> InboundRecord | None:
        try:
            item = Item.get(f"INBOUND#{ses_message_id}", "#INBOUND", consistent_read=True)
        except Item.DoesNotExist:
            return None
        return _inbound_record(ses_message_id, item)

    def finish_inbound(self, record: InboundRecord) -> None:
        # An update keeps the attempt's claim (``used_at``).
        Item(f"INBOUND#{record.ses_message_id}", "#INBOUND").update(actions=[
            Item.status.set(record.status),
            Item.ref.set(record.case_no) if record.case_no else Item.ref.remove(),
            Item.doc.set(json.dumps({"raw_key": record.raw_key, "disposition": record.disposition,
                                     "detail": record.detail}))])

    # ----- received mail by day, outgoing mail to re-send (the reconciler's) -----------------------
    def note_received(self, mail: ReceivedMail) -> None:
        doc = json.dumps({**asdict(mail), "received_at": iso(mail.received_at)}, ensure_ascii=False)
        try:
            Item(f"INBOX#{mail.received_at.astimezone(UTC):%Y-%m-%d}", mail.ses_message_id, status="received", ref=mail.raw_key,
                 doc=doc, counter=0, expires_at=int((mail.received_at + RECEIVED_KEPT).timestamp())).save(
                condition=Item.pk.does_not_exist())
        except PutError as exc:
            if not _failed_condition(exc):  # listed by an earlier attempt: keep its status
                raise

    def received_on(self, day: date, *, limit: int = 100) -> list[ReceivedMail]:
        items = Item.query(f"INBOX#{day:%Y-%m-%d}", filter_condition=Item.status == "received", limit=limit)
        return [_received(i) for i in items]

    def settle_received(self, mail: ReceivedMail) -> None:
        Item(f"INBOX#{mail.received_at.astimezone(UTC):%Y-%m-%d}", mail.ses_message_id).update(
            actions=[Item.status.set(mail.status), Item.counter.set(mail.attempts)])

    def defer_mail(self, pending: PendingMail) -> None:
        Item("OUTBOX#pending", pending.pending_id, status="pending", ref=pending.mail.case_no, counter=pending.attempts,
             doc=_pending_doc(pending)).save()

    def pending_mails(self, *, limit: int = 100) -> list[PendingMail]:
        return [_pending(i) for i in Item.query("OUTBOX#pending", limit=limit, consistent_read=True)]

    def settle_mail(self, pending: PendingMail, *, sent: bool) -> None:
        if sent:
            Item("OUTBOX#pending", pending.pending_id).delete()
        else:
            self.defer_mail(pending)

    def claim_message_id(self, brand_id: str, message_id: str, ses_message_id: str) -> str | None:
        """Remember a received Message-ID; returns the SES id that had it first, if another did."""
        key = f"RFCMSG#{brand_id}#{digest(message_id)}"
        try:
            Item(key, "#RFCMSG", ref=ses_message_id).save(condition=Item.pk.does_not_exist())
            return None
        except PutError as exc:
            if not _failed_condition(exc):
                raise
        first = Item.get(key, "#RFCMSG", consistent_read=True).ref
        return None if first == ses_message_id else first

    # ----- rate limits -------------------------------------------------------------------------------
    def count_hit(self, key: str, window: str, expires_at: int) -> int:
        item = Item(f"RATE#{key}", f"#{window}")
        item.update(actions=[Item.counter.add(1), Item.expires_at.set(expires_at)])  # one atomic update
        return int(item.counter or 0)

    # ----- held mail ---------------------------------------------------------------------------
    def hold(self, held: HeldMail) -> None:
        # Same id on a redelivery or retry: the write is idempotent.
        Item(f"HELD#{held.brand}", held.held_id, status=held.status, ref=held.case_no, doc=_held_doc(held)).save()

    def held_mail(self, brand_id: str, held_id: str) -> HeldMail | None:
        try:
            item = Item.get(f"HELD#{brand_id}", held_id, consistent_read=True)
        except Item.DoesNotExist:
            return None
        return _held(item.doc, item.status)

    def list_held(self, brand_id: str, *, status: str | None = None, limit: int = 100) -> list[HeldMail]:
        condition = Item.status == status if status else None
        items = Item.query(f"HELD#{brand_id}", filter_condition=condition, scan_index_forward=False, limit=limit)
        return [_held(i.doc, i.status) for i in items]

    def release_held(self, brand_id: str, held_id: str, *, case_no: str, by: str, at: datetime) -> None:
        held = self.held_mail(brand_id, held_id)
        if held is None:
            raise ConflictError(f"no held mail {held_id}")
        released = replace(held, status="released", case_no=case_no, released_by=by, released_at=at)
        Item(f"HELD#{brand_id}", held_id, status="released", ref=case_no, doc=_held_doc(released)).save()

    # ----- attachments -------------------------------------------------------------------------
    def add_attachment(self, attachment: StoredAttachment) -> None:
        Item(f"CASE#{attachment.case_no}", f"ATT#{attachment.key}", doc=json.dumps(
            {**asdict(attachment), "at": iso(attachment.at)}, ensure_ascii=False)).save()

    def attachments(self, case_no: str) -> list[StoredAttachment]:
        found = []
        for item in Item.query(f"CASE#{case_no}", Item.sk.startswith("ATT#")):
            data = json.loads(item.doc or "{}")
            found.append(StoredAttachment(**{**data, "at": parse_iso(data["at"])}))
        return found

    # ----- classification corrections ------------------------------------------------------------
    def count_correction(self, brand_id: str, month: str, fields: list[str], total: str = "corrected") -> None:
        for name in [total, *fields]:  # one count per correction, one per field it changed
            Item(f"CORRECTIONS#{brand_id}#{month}", name).update(actions=[Item.counter.add(1)])

    def correction_counts(self, brand_id: str, month: str) -> dict[str, int]:
        return {i.sk: int(i.counter or 0) for i in Item.query(f"CORRECTIONS#{brand_id}#{month}")}

    def note_corrected(self, brand_id: str, month: str, case_no: str) -> None:
        Item(f"CORRECTED#{brand_id}", f"{month}#{case_no}", ref=case_no).save()  # the same key again: no change

    def corrected_cases(self, brand_id: str, since: str = "") -> list[str]:
        items = Item.query(f"CORRECTED#{brand_id}", Item.sk >= since) if since else Item.query(f"CORRECTED#{brand_id}")
        return list(dict.fromkeys(i.ref or i.sk.partition("#")[2] for i in items))

    # ----- the review queue --------------------------------------------------------------------
    def _keep_review_entry(self, case: Case, old_doc: str | None) -> None:
        """After a case write: its queue entry as the new document makes it, when that differs
        from the replaced document's. Conditional on the case version, so that a slower writer
        of an older version never puts back what a newer one took out; an entry that leaves the
        queue keeps its item (with that version) and loses its index keys."""
        policy = self._kpi_tenant(case.brand).policy_for(None)
        entry = review_entry(case, policy)
        before = review_entry(Case.model_validate_json(old_doc), policy) if old_doc else None
        if entry == before:
            return
        item = Item(f"CASE#{case.case_no}", "#REVIEW", version=case.version, status="waiting" if entry else "reviewed",
                    doc=json.dumps(entry.as_json(), ensure_ascii=False) if entry else None)
        if entry is not None:
            item.gsi2pk, item.gsi2sk = f"REVIEW#{case.brand}", entry.key
        try:
            item.save(condition=Item.version.does_not_exist() | (Item.version < case.version))
        except PutError as exc:
            if not _failed_condition(exc):
                raise

    def review_queue(self, brand_id: str, *, limit: int = 200) -> list[ReviewEntry]:
        return [ReviewEntry.from_json(json.loads(i.doc or "{}"))
                for i in Item.by_brand.query(f"REVIEW#{brand_id}", limit=limit)]

    # ----- accountability tasks ----------------------------------------------------------------
    def put_accountability_task(self, task: AccountabilityTask) -> None:
        # One entry per case, found through a pointer on the case (no read of the brand's list):
        # a task re-recorded with another due date, or done, moves; the old entry goes.
        key, sk = f"ACCOUNTABILITY#{task.brand}", _accountability_sk(task)
        try:
            previous = Item.get(f"CASE#{task.case_no}", "#ACCOUNTABILITY").ref
        except Item.DoesNotExist:
            previous = None
        placed(Item(key, sk, ref=task.case_no, status="done" if task.done_at else "open", doc=_accountability_doc(task)),
               "ACCT", task.brand, task.region, task.dealer).save()
        Item(f"CASE#{task.case_no}", "#ACCOUNTABILITY", ref=sk).save()
        if previous and previous != sk:
            Item(key, previous).delete()

    def accountability_tasks(self, brand_id: str, *, due_before: datetime | None = None,
                             open_only: bool = True, limit: int | None = None,
                             scope: str = "brand") -> list[AccountabilityTask]:
        index, key, sort = place_query("ACCT", brand_id, scope)
        query = {"by_dealer": Item.by_dealer.query, "by_brand": Item.by_brand.query}.get(index or "", Item.query)
        attribute = getattr(Item, sort)
        found: list[AccountabilityTask] = []
        for state in ("open",) if open_only else ("open", "done"):
            if limit is not None and len(found) >= limit:
                break
            condition = (attribute.between(f"{state}#", f"{state}#{iso(due_before)}") if due_before
                         else attribute.startswith(f"{state}#"))
            found.extend(_accountability_task(i.doc) for i in query(
                key or f"ACCOUNTABILITY#{brand_id}", condition, limit=None if limit is None else limit - len(found)))
        if limit is not None:
            return found[:limit]
        return sorted(found, key=lambda t: (t.due_at, t.case_no))


    # ----- case library ------------------------------------------------------------------------
    def put_library_entry(self, entry: LibraryEntry) -> None:
        key = f"LIBRARY#{entry.brand}"
        sk = f"{entry.category}#{entry.root_cause}#{iso(entry.closed_at)}#{entry.case_no}"
        try:
            previous = Item.get(f"CASE#{entry.case_no}", "#LIBRARY", consistent_read=True).ref
        except Item.DoesNotExist:
            previous = None
        Item(key, sk, ref=entry.case_no, doc=entry.model_dump_json()).save()
        if previous and previous != sk:
            Item(key, previous).delete()
        if previous != sk:
            Item(f"CASE#{entry.case_no}", "#LIBRARY", ref=sk).save()

    def library_entries(self, brand_id: str, *, category: str | None = None, root_cause: str | None = None,
                        limit: int = 500) -> list[LibraryEntry]:
        if category:
            prefixes: list[str | None] = [f"{category}#{root_cause}#" if root_cause else f"{category}#"]
        elif root_cause:
            prefixes = [f"{c}#{root_cause}#" for c in get_args(Category)]
        else:
            prefixes = [None]
        entries: list[LibraryEntry] = []
        for prefix in prefixes:
            condition = Item.sk.startswith(prefix) if prefix else None
            entries += [LibraryEntry.model_validate_json(i.doc or "{}")
                        for i in Item.query(f"LIBRARY#{brand_id}", condition, scan_index_forward=False, limit=limit)]
        return sorted(entries, key=lambda e: e.closed_at, reverse=True)[:limit]


def _accountability_sk(task: AccountabilityTask) -> str:
    return f"{'done' if task.done_at else 'open'}#{iso(task.due_at)}#{task.case_no}"


def _accountability_doc(task: AccountabilityTask) -> str:
    return json.dumps({**asdict(task), "recorded_at": iso(task.recorded_at), "due_at": iso(task.due_at),
                       "done_at": iso(task.done_at) if task.done_at else None}, ensure_ascii=False)


def _accountability_task(doc: str | None) -> AccountabilityTask:
    data = json.loads(doc or "{}")
    return AccountabilityTask(**{**data, "recorded_at": parse_iso(data["recorded_at"]),
                                 "due_at": parse_iso(data["due_at"]),
                                 "done_at": parse_iso(data["done_at"]) if data.get("done_at") else None})


def _norm_plate(plate: str) -> str:
    return "".join(plate.split()).upper()


def _inbound_record(ses_message_id: str, item: Item) -> InboundRecord:
    data = json.loads(item.doc or "{}")
    return InboundRecord(ses_message_id, item.status or "processing", data.get("disposition"), item.ref,
                         data.get("raw_key"), data.get("detail"), parse_iso(item.used_at) if item.used_at else None)


def _received(item: Item) -> ReceivedMail:
    data = json.loads(item.doc or "{}")
    return ReceivedMail(**{**data, "received_at": parse_iso(data["received_at"]), "status": item.status or "received",
                           "attempts": int(item.counter or 0)})


def _pending_doc(pending: PendingMail) -> str:
    return json.dumps({"mail": outgoing_mail_doc(pending.mail), "failed_at": iso(pending.failed_at),
                       "error": pending.error}, ensure_ascii=False)


def _pending(item: Item) -> PendingMail:
    data = json.loads(item.doc or "{}")
    return PendingMail(item.sk, outgoing_mail(data["mail"]), parse_iso(data["failed_at"]), data["error"],
                       int(item.counter or 1))


def _held_doc(held: HeldMail) -> str:
    return json.dumps({**asdict(held), "received_at": iso(held.received_at),
                       "released_at": iso(held.released_at) if held.released_at else None}, ensure_ascii=False)


def _held(doc: str | None, status: str | None) -> HeldMail:
    data = json.loads(doc or "{}")
    data["received_at"] = parse_iso(data["received_at"])
    data["released_at"] = parse_iso(data["released_at"]) if data.get("released_at") else None
    return HeldMail(**{**data, "status": status or data["status"]})
