"""The KPI tables on DynamoDB (``shared/complaints/kpis.py``), mixed into ``DynamoCaseStore``.

Key layout (pk / sk), in the one table whose schema ``table.py`` documents:
    AGG#<brand>#<YYYY-MM>   S#<scope>                  the month's counts for one scope (a dealer's: their
                                                       summary part, kpis.part_of): one number attribute per
                                                       metric, changed only by ADD
    AGG#<brand>#<YYYY-MM>   D#<scope>                  a dealer's detail part (composition, milestones, issues)
    AGG#<brand>#<YYYY-MM>   O#<region>#<dealer>#<no>   a customer opinion (the comment only)
    AGG#<brand>#<YYYY-MM>   M#<scope>                  the monthly report of that scope was mailed
    OPEN#<brand>            <next due>#<case_no>       an open case's next deadline (at risk of breach); listed
                                                       per dealer in index by_dealer (OPEN#<brand>#D#<dealer>)
                                                       and per region in by_brand (OPEN#<brand>#R#<region>)
    RISK#<brand>            <YYYY-MM>                  risk buckets of the month (kpis.risk_buckets): one number
                                                       attribute ``<metric>|<scope>`` each, changed only by ADD
    MEMBERS#<brand>#<YYYY-MM> <case_no>                the case contributes to the month (for rebuild_month); a
                                                       partition of its own: a report's key range never meets them
Scopes: ``brand``, ``region#<r>``, ``dealer#<r>#<d>``: one Query with a key prefix reads one part of a
brand's, a region's or a dealer's aggregates of a month, whatever the number of cases.

A case write: members (months the case newly contributes to) first, then the case with
``ReturnValues=ALL_OLD`` (the previous document, at no read cost), then the difference between the
facts of the two documents: ADDs on the aggregates, puts and deletes of entries. The months a case
contributed to before are known before the write from the document ``get_case`` returned for the
same version (kept here briefly), else every month of the new facts is recorded (idempotent).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.operand import Path

from shared.adapters.table import Item, place_query, placed, repeat_lookup_keys
from shared.complaints import kpis
from shared.complaints.clock import iso
from shared.complaints.kpis import CaseFacts, Counts, KpiChanges, OpenEntry, OpinionEntry, Part
from shared.complaints.models import Case
from shared.complaints.tenant import Tenant

_KEYS = ("pk", "sk")
_DOCS_KEPT = 512  # documents read by get_case, by (case_no, version): enough for the invocations in flight
_TENANT_TTL_S = 300.0
_PART_KEYS: dict[Part, str] = {"summary": "S#", "detail": "D#"}  # sort key prefixes of the two parts of the counts
_ADDS = 25  # ADD clauses per UpdateItem (moto parses long expressions in time that grows faster than their length)


def _agg(brand: str, month: str) -> str:
    return f"AGG#{brand}#{month}"


def _open(brand: str) -> str:
    return f"OPEN#{brand}"


def _risk(brand: str) -> str:
    return f"RISK#{brand}"


def _members(brand: str, month: str) -> str:
    return f"MEMBERS#{brand}#{month}"


def _open_item(brand: str, e: OpenEntry) -> Item:
    return placed(Item(_open(brand), e.key, doc=kpis.open_json(e)), "OPEN", brand, e.region, e.dealer)


@dataclass(frozen=True)
class Prepared:
    """A case about to be written: its new facts, and the previous facts if they are known already."""

    new: CaseFacts
    old_doc: str | None
    old: CaseFacts | None


class DynamoKpiTables:
    """The ``CaseStore`` KPI methods; ``DynamoCaseStore`` calls ``_kpi_prepare`` / ``_kpi_put_case`` /
    ``_kpi_finish`` around every case write and ``_kpi_seen`` on every case read."""

    _logger: Logger  # provided by DynamoCaseStore (the handlers' logger, given by the wiring)

    # provided by DynamoCaseStore
    def get_tenant(self, brand_id: str) -> Tenant:
        raise NotImplementedError

    # ----- around case writes --------------------------------------------------------------------
    def _kpi_state(self) -> tuple[threading.Lock, OrderedDict[tuple[str, int], str], dict[str, tuple[float, Tenant]]]:
        state = self.__dict__.get("_kpi")
        if state is None:
            state = self.__dict__.setdefault("_kpi", (threading.Lock(), OrderedDict(), {}))
        return state

    def _kpi_tenant(self, brand: str) -> Tenant:
        """The tenant (its time zone, its staff for anonymising opinions), read at most every few minutes."""
        lock, _, tenants = self._kpi_state()
        with lock:
            cached = tenants.get(brand)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        tenant = self.get_tenant(brand)
        with lock:
            tenants[brand] = (time.monotonic() + _TENANT_TTL_S, tenant)
        return tenant

    def _kpi_seen(self, case_no: str, version: int, doc: str, kpi_version: Any) -> None:
        """A case document read or written: kept if its facts are the ones applied (this KPI version)."""
        lock, docs, _ = self._kpi_state()
        with lock:
            if kpi_version is None or int(kpi_version) != kpis.KPI_VERSION:
                docs.pop((case_no, version), None)
                return
            docs[(case_no, version)] = doc
            docs.move_to_end((case_no, version))
            while len(docs) > _DOCS_KEPT:
                docs.popitem(last=False)

    def _kpi_prepare(self, case: Case) -> Prepared:
        """Before the case write: its facts, and the months it newly contributes to recorded."""
        tenant = self._kpi_tenant(case.brand)
        new = kpis.case_facts(case, tenant)
        lock, docs, _ = self._kpi_state()
        with lock:
            old_doc = docs.get((case.case_no, case.version - 1)) if case.version > 1 else None
        old = kpis.case_facts(Case.model_validate_json(old_doc), tenant) if old_doc else None
        months = sorted(set(new.counts) - set(old.counts if old else ()))
        if case.version > 1 and old_doc is None:
            months = sorted(new.counts)  # the previous document is unknown until the write returns it
        self.kpi_record_members(KpiChanges(case.brand, case.case_no, members=months))
        return Prepared(new, old_doc, old)

    def _kpi_put_case(self, item: Item, condition: Any) -> dict[str, Any] | None:
        """The conditional put of a case item; returns the item it replaced (raw), if any."""
        item.kpi_version = kpis.KPI_VERSION
        args, kwargs = item._get_save_args(condition=condition)  # what Model.save sends, plus ALL_OLD
        data = Item._get_connection().put_item(*args, **{**kwargs, "return_values": "ALL_OLD"})
        self._kpi_seen((item.pk or "").removeprefix("CASE#"), int(item.version or 0), item.doc or "{}", item.kpi_version)
        old: dict[str, Any] | None = (data or {}).get("Attributes")
        return old

    def _kpi_finish(self, brand: str, prepared: Prepared, old_item: dict[str, Any] | None) -> None:
        """After the case write: apply the difference from what the replaced document contributed."""
        old: CaseFacts | None = None
        if old_item and str(old_item.get("kpi_version", {}).get("N")) == str(kpis.KPI_VERSION):
            doc = str(old_item.get("doc", {}).get("S", "{}"))
            old = prepared.old if doc == prepared.old_doc else kpis.case_facts(
                Case.model_validate_json(doc), self._kpi_tenant(brand))
        # No marker: written before the KPIs were kept (or by another version): nothing was applied for it.
        changed = kpis.changes(brand, old, prepared.new)
        changed.members = []
        try:
            self.kpi_apply(changed)
        except Exception:
            # The case is written: a retry writes the same document again, a delta of nothing. Say
            # which months need ``rebuild_month`` (the alarm on errors in the logs sees it too).
            self._logger.exception("KPI aggregates not updated: rebuild these months",
                                   extra={"case_no": prepared.new.case_no, "brand": brand,
                                          "months": sorted({month for month, _ in changed.deltas})})
            raise

    # ----- the CaseStore methods ---------------------------------------------------------------------
    def kpi_record_members(self, changes: KpiChanges) -> None:
        for month in changes.members:
            Item(_members(changes.brand, month), changes.case_no).save()

    def kpi_apply(self, changes: KpiChanges) -> None:
        for (month, scope), delta in sorted(changes.deltas.items()):
            self.kpi_adjust(changes.brand, month, scope, delta)
        for o in changes.delete_opinions:
            Item(_agg(changes.brand, o.month), f"O#{o.key}").delete()
        for o in changes.put_opinions:
            Item(_agg(changes.brand, o.month), f"O#{o.key}", doc=kpis.opinion_json(o)).save()
        for e in changes.delete_open:
            Item(_open(changes.brand), e.key).delete()
        for e in changes.put_open:
            _open_item(changes.brand, e).save()
        self._kpi_add_risk(changes.brand, changes.risk)

    def _kpi_add_risk(self, brand: str, risk: dict[tuple[str, str], Counts]) -> None:
        """One UpdateItem per bucket month, ADDing ``<metric>|<scope>`` (a case change: one or two)."""
        by_month: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for (month, scope), values in risk.items():
            for metric, value in values.items():
                if value:
                    by_month[month][f"{metric}|{scope}"] = value
        for month, values in sorted(by_month.items()):
            actions = [Path([name]).add({"N": str(value)}) for name, value in sorted(values.items())]
            for start in range(0, len(actions), _ADDS):
                Item._get_connection().update_item(_risk(brand), range_key=month, actions=actions[start:start + _ADDS])

    def kpi_adjust(self, brand_id: str, month: str, scope: str, delta: Counts) -> None:
        """ADD each metric to the item of its part (the item and its attributes appear on first use), at
        most ``_ADDS`` metrics per UpdateItem: a case write changes a handful; a bulk load or a rebuild
        may change a hundred."""
        for part in kpis.PARTS:
            actions = [Path([metric]).add({"N": str(value)}) for metric, value in sorted(delta.items())
                       if value != 0 and kpis.part_of(metric, scope) == part]
            for start in range(0, len(actions), _ADDS):
                Item._get_connection().update_item(_agg(brand_id, month), range_key=f"{_PART_KEYS[part]}{scope}",
                                                   actions=actions[start:start + _ADDS])

    def kpi_counts(self, brand_id: str, month: str, prefix: str = "", part: Part = "summary") -> dict[str, Counts]:
        found: dict[str, Counts] = {}
        key = _PART_KEYS[part]
        for raw in self._kpi_query(_agg(brand_id, month), f"{key}{prefix}"):
            scope = str(raw["sk"]["S"]).removeprefix(key)
            values = {name: Decimal(str(value["N"])) for name, value in raw.items()
                      if name not in _KEYS and "N" in value and kpis.part_of(name, scope) == part}
            values = {name: value for name, value in values.items() if value}
            if values:
                found[scope] = values
        return found

    def kpi_opinions(self, brand_id: str, month: str, prefix: str = "",
                     limit: int | None = None) -> list[OpinionEntry]:
        return [kpis.opinion_from_json(str(raw["doc"]["S"]))
                for raw in self._kpi_query(_agg(brand_id, month), f"O#{prefix}", limit=limit)]

    def kpi_open(self, brand_id: str, due_before: datetime | None = None,
                 limit: int | None = None, scope: str = kpis.BRAND) -> list[OpenEntry]:
        index, pk, sort = place_query("OPEN", brand_id, scope)
        condition = getattr(Item, sort) < iso(due_before) if due_before is not None else None
        return [kpis.open_from_json(str(raw["doc"]["S"]))
                for raw in self._kpi_query(pk or _open(brand_id), condition=condition, limit=limit, index=index)]

    def kpi_risk_buckets(self, brand_id: str, upto: str | None = None) -> dict[tuple[str, str], Counts]:
        condition = Item.sk <= upto if upto is not None else None
        found: dict[tuple[str, str], Counts] = defaultdict(dict)
        for raw in self._kpi_query(_risk(brand_id), condition=condition):
            month = str(raw["sk"]["S"])
            for name, value in raw.items():
                if name in _KEYS or "N" not in value or "|" not in name:
                    continue
                metric, _, scope = name.partition("|")
                if Decimal(str(value["N"])):
                    found[(month, scope)][metric] = Decimal(str(value["N"]))
        return dict(found)

    def kpi_compact_risk(self, brand_id: str, before: str) -> int:
        """Remove the counts that went back to 0 from the risk buckets of months before ``before`` (a
        bucket's cases closed), so that the report's Query of the buckets reads what is still open, not
        every scope that was ever at risk. Each REMOVE is conditional on the counts still being 0: a
        concurrent ADD keeps its attribute (that batch is left for the next run). Returns the number removed."""
        connection = Item._get_connection()
        removed = 0
        for raw in self._kpi_query(_risk(brand_id), condition=Item.sk < before):
            zeros = sorted(name for name, value in raw.items()
                           if name not in _KEYS and "N" in value and Decimal(str(value["N"])) == 0)
            for start in range(0, len(zeros), _ADDS):
                names = zeros[start:start + _ADDS]
                condition = None
                for name in names:
                    check = Path([name]) == {"N": "0"}
                    condition = check if condition is None else condition & check
                try:
                    connection.update_item(_risk(brand_id), range_key=str(raw["sk"]["S"]),
                                           actions=[Path([name]).remove() for name in names], condition=condition)
                except UpdateError as exc:
                    if exc.cause_response_code != "ConditionalCheckFailedException":
                        raise
                    continue
                removed += len(names)
        return removed

    def kpi_risk(self, brand_id: str, month: str) -> dict[str, Counts]:
        return kpis.sum_risk((scope, values) for (_, scope), values in self.kpi_risk_buckets(brand_id, month).items())

    def kpi_members(self, brand_id: str, month: str) -> list[str]:
        return [str(raw["sk"]["S"]) for raw in self._kpi_query(_members(brand_id, month))]

    def report_mailed(self, brand_id: str, month: str, scope: str) -> bool:
        try:
            Item.get(_agg(brand_id, month), f"M#{scope}", consistent_read=True)
        except Item.DoesNotExist:
            return False
        return True

    def mark_report_mailed(self, brand_id: str, month: str, scope: str, at: datetime) -> None:
        Item(_agg(brand_id, month), f"M#{scope}", ref=iso(at)).save()

    def cases_received(self, brand_id: str, start: datetime, end: datetime) -> Iterator[Case]:
        """The brand's cases received in [start, end), through the by_brand index (repairs and checks)."""
        for found in Item.by_brand.query(f"BRAND#{brand_id}", Item.gsi2sk.between(iso(start), iso(end))):
            if found.gsi2sk and found.gsi2sk >= iso(start) and found.gsi2sk < iso(end):
                yield Case.model_validate_json(found.doc or "{}")

    def bulk_import(self, cases: Iterable[Case], on_progress: Any = None) -> int:
        """New cases (never written before: an import, a benchmark) with everything the KPIs keep, in
        batches: case items, repeat lookups, members and entries by BatchWriteItem, then one ADD per
        month and scope for all of them. No lifecycle is started. Returns the number of cases."""
        totals: dict[tuple[str, str, str], Counts] = defaultdict(lambda: defaultdict(Decimal))
        risk: dict[tuple[str, tuple[str, str]], Counts] = defaultdict(lambda: defaultdict(Decimal))
        count = 0
        with Item.batch_write() as batch:
            for case in cases:
                case = case.model_copy(update={"version": 1})
                changed = kpis.changes(case.brand, None, kpis.case_facts(case, self._kpi_tenant(case.brand)))
                row = self._case_item(case)
                row.kpi_version = kpis.KPI_VERSION
                batch.save(row)
                for lookup in repeat_lookup_keys(case):
                    batch.save(Item(lookup, f"CASE#{iso(case.received_at)}#{case.case_no}", ref=case.case_no))
                for month in changed.members:
                    batch.save(Item(_members(case.brand, month), case.case_no))
                for o in changed.put_opinions:
                    batch.save(Item(_agg(case.brand, o.month), f"O#{o.key}", doc=kpis.opinion_json(o)))
                for e in changed.put_open:
                    batch.save(_open_item(case.brand, e))
                for (month, scope), delta in changed.deltas.items():
                    for metric, value in delta.items():
                        totals[(case.brand, month, scope)][metric] += value
                for key, delta in changed.risk.items():
                    for metric, value in delta.items():
                        risk[(case.brand, key)][metric] += value
                count += 1
                if on_progress is not None:
                    on_progress(count)
        for (brand, month, scope), delta in sorted(totals.items()):
            self.kpi_adjust(brand, month, scope, dict(delta))
        for brand in sorted({brand for brand, _ in risk}):
            self._kpi_add_risk(brand, {key: dict(delta) for (b, key), delta in risk.items() if b == brand})
        return count

    # provided by DynamoCaseStore
    def _case_item(self, case: Case) -> Item:
        raise NotImplementedError

    @staticmethod
    def _kpi_query(pk: str, sk_prefix: str | None = None, *, condition: Any = None,
                   limit: int | None = None, index: str | None = None) -> Iterator[dict[str, Any]]:
        """Raw items of one partition of the table or of an index (the aggregates' attributes are not
        in the model), page by page."""
        if sk_prefix is not None:
            condition = Item.sk.startswith(sk_prefix)
        connection = Item._get_connection()
        start: dict[str, Any] | None = None
        returned = 0
        while True:
            page = connection.query(pk, range_key_condition=condition, exclusive_start_key=start, index_name=index,
                                    limit=None if limit is None else limit - returned)
            for raw in page.get("Items", []):
                returned += 1
                yield raw
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and returned >= limit):
                return
