"""KPI aggregates on DynamoDB (moto) and the ``reports`` function: the aggregates agree with the
cases after real lifecycles, a lost aggregate write is rebuilt, the report route is scoped to the
caller, the 1st's schedule mails every report once, and ``complaints report`` works end to end."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infra import catalog
from infra.local import cli
from infra.local.http import LocalHttpServer, api_event
from infra.local.output import FUNCTION_OUTPUT
from infra.local.runtime import LocalConfig, LocalRuntime
from infra.local.settings import LocalSettings
from shared.adapters.dynamodb import DynamoCaseStore
from shared.complaints import kpis
from shared.complaints.reports import Period, Scope, build_report, render_json
from shared.runtime import wiring
from tests.kpi_lifecycles import Driver, world_on

START = datetime(2026, 9, 20, 1, 0, tzinfo=UTC)
MONTHS = ("2026-09", "2026-10", "2026-11", "2026-12")
FIRST_OF_DECEMBER = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai: the monthly schedule's moment


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    """One runtime for the module, its clock after every case of the mix was received: each test
    passes in any order (a rebuild of the open entries reads the cases received until now; when
    the clock stood before the mix's last cases, it dropped their entries for every later test)."""
    started = LocalRuntime(LocalConfig(clock="manual", start=FIRST_OF_DECEMBER)).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def mixed(runtime: LocalRuntime) -> DynamoCaseStore:
    """Cases through every path of the mix, on the DynamoDB store (the lifecycle's own clock)."""
    store = wiring.case_store()
    Driver(world_on(store, START), seed=13).mix(16, START, 60)
    return store


def all_cases(store: DynamoCaseStore) -> list[Any]:
    return list(store.cases_received("aurora", START - timedelta(days=1), START + timedelta(days=200)))


def test_dynamodb_aggregates_agree_with_the_cases_after_real_lifecycles(mixed: DynamoCaseStore) -> None:
    cases = all_cases(mixed)
    assert len(cases) == 16 and {c.phase for c in cases} >= {"closed", "investigation", "needs_attention"}
    tenant = mixed.get_tenant("aurora")
    fresh = kpis.recompute(cases, tenant)
    for month in MONTHS:
        for part in kpis.PARTS:
            assert mixed.kpi_counts("aurora", month, "", part) == fresh.kpi_counts("aurora", month, "", part), month
        assert mixed.kpi_opinions("aurora", month) == fresh.kpi_opinions("aurora", month), month
        assert set(mixed.kpi_members("aurora", month)) >= set(fresh.kpi_members("aurora", month))
    assert mixed.kpi_open("aurora") == fresh.kpi_open("aurora")
    scopes = {kpis.dealer_scope(e.region, e.dealer or "") for e in fresh.kpi_open("aurora") if e.dealer}
    scopes |= {kpis.region_scope(e.region) for e in fresh.kpi_open("aurora") if e.region}
    assert len(scopes) >= 4
    for scope in sorted(scopes):  # each scope's entries from its own index partition
        due = fresh.kpi_open("aurora", scope=scope)[0].due_at + timedelta(seconds=1)
        assert mixed.kpi_open("aurora", scope=scope) == fresh.kpi_open("aurora", scope=scope) != []
        assert mixed.kpi_open("aurora", due, 5, scope) == fresh.kpi_open("aurora", due, 5, scope) != []
    assert mixed.kpi_counts("aurora", "2026-10", "dealer#east#") == fresh.kpi_counts("aurora", "2026-10", "dealer#east#")
    details = mixed.kpi_counts("aurora", "2026-10", "dealer#east#", "detail")
    assert details == fresh.kpi_counts("aurora", "2026-10", "dealer#east#", "detail") and details
    summaries = mixed.kpi_counts("aurora", "2026-10", "dealer#east#")
    assert all(m.startswith(kpis.DETAIL_PREFIXES) for v in details.values() for m in v)
    assert not any(m.startswith(kpis.DETAIL_PREFIXES) for v in summaries.values() for m in v)
    assert mixed.kpi_counts("aurora", "2026-10", "region#", "detail") == {}  # a region's counts: one item
    assert any(m.startswith("category:") for m in mixed.kpi_counts("aurora", "2026-10", "region#east")["region#east"])
    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    from_aggregates = build_report(mixed, mixed, tenant, Scope("brand"), Period.parse("2026-Q4"), now)
    from_cases = build_report(fresh, mixed, tenant, Scope("brand"), Period.parse("2026-Q4"), now)
    assert render_json(from_aggregates) == render_json(from_cases)


def get(runtime: LocalRuntime, path: str, email: str | None) -> tuple[int, str, dict[str, str]]:
    claims: dict[str, object] = {"email": email, "custom:brand": "aurora"} if email else {}
    result = runtime.invoke("reports", api_event("GET", path, {"host": "x"}, b"", "127.0.0.1", claims))
    return int(result["statusCode"]), str(result["body"]), dict(result.get("headers") or {})


def test_the_report_route_is_scoped_to_the_caller(runtime: LocalRuntime, mixed: DynamoCaseStore) -> None:
    cs, east, center = "cs.sh001@dealers.example", "east.region@aurora-motors.example", "cr.center@aurora-motors.example"
    status, html, headers = get(runtime, "/api/reports/2026-10", cs)
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "极光上海浦东4S店" in html
    assert "<svg" in html and "经销商排名" not in html
    for path in ("/api/reports/2026-10?dealer=BJ002", "/api/reports/2026-10?scope=brand",
                 "/api/reports/2026-10?region=east"):
        assert get(runtime, path, cs)[0] == 403, path
    assert get(runtime, "/api/reports/2026-Q4?region=east", east)[0] == 200
    assert get(runtime, "/api/reports/2026-Q4?dealer=HZ005", east)[0] == 200
    assert get(runtime, "/api/reports/2026-Q4?dealer=BJ002", east)[0] == 403
    assert get(runtime, "/api/reports/2026-Q4?scope=brand", east)[0] == 403
    status, body, _ = get(runtime, "/api/reports/2026?format=json", center)
    assert status == 200 and json.loads(body)["scope"]["key"] == "brand"
    status, body, headers = get(runtime, "/api/reports/2026-10?dealer=BJ002&format=csv", center)
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert {r["section"] for r in csv.DictReader(io.StringIO(body.removeprefix("\ufeff")))} >= {"summary", "trend"}
    assert get(runtime, "/api/reports/2026-10?dealer=XX999", center)[0] == 404
    assert get(runtime, "/api/reports/2026-13", center)[0] == 400
    assert get(runtime, "/api/reports/2026-10?format=pdf", center)[0] == 400
    assert get(runtime, "/api/reports/2026-10", "stranger@mail.example")[0] == 401


def test_risk_buckets_of_past_months_are_compacted_without_losing_a_concurrent_add(mixed: DynamoCaseStore,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def zeros() -> int:
        return sum(1 for raw in mixed._kpi_query("RISK#aurora") for name, value in raw.items()
                   if "|" in name and value.get("N") == "0")

    before = mixed.kpi_risk_buckets("aurora")
    # A case at risk in a past month has closed since: its count there went up, then back to 0. (Made
    # here: the monthly run, in another test, may have compacted the zeros the mix's own cases left.)
    month, scope, metric = next((m, s, k) for (m, s), counts in before.items() for k in kpis.RISK_METRICS
                                if k not in counts)
    for delta in (1, -1):
        mixed.kpi_apply(kpis.KpiChanges("aurora", "", risk={(month, scope): {metric: Decimal(delta)}}))
    assert zeros() > 0 and mixed.kpi_risk_buckets("aurora") == before
    # A stale read: the compaction sees a count at 0 that a case write has just made 1 again.
    stale_month, stale_scope = min(before)
    stale_name = f"{next(iter(before[(stale_month, stale_scope)]))}|{stale_scope}"
    real_query = mixed._kpi_query

    def stale(pk: str, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for raw in real_query(pk, *args, **kwargs):
            if raw["sk"]["S"] == stale_month and stale_name in raw:
                raw = {**raw, stale_name: {"N": "0"}}
            yield raw

    with monkeypatch.context() as m:
        m.setattr(mixed, "_kpi_query", stale)
        mixed.kpi_compact_risk("aurora", "2027-01")
    assert mixed.kpi_risk_buckets("aurora") == before  # the count read as 0 but not 0 was kept
    removed = mixed.kpi_compact_risk("aurora", "2027-01")
    assert zeros() == 0 and removed > 0
    assert mixed.kpi_risk_buckets("aurora") == before
    for month in MONTHS:
        assert mixed.kpi_risk("aurora", month) == kpis.recompute(all_cases(mixed), mixed.get_tenant("aurora")).kpi_risk(
            "aurora", month)


def test_the_schedule_mails_last_months_reports_once(runtime: LocalRuntime, mixed: DynamoCaseStore) -> None:
    spec = catalog.function("reports")
    assert spec.schedule is not None and spec.schedule.expression == "cron(0 8 1 * ? *)"
    assert runtime.clock.now() == FIRST_OF_DECEMBER
    runtime.outbox.clear()
    result = runtime.invoke("reports", json.loads(spec.schedule.payload))
    assert result["month"] == "2026-11" and len(result["sent"]) == 10
    mails = runtime.outbox.all()
    assert {tuple(m.mail.to) for m in mails} >= {("cr.center@aurora-motors.example",),
                                                 ("north.region@aurora-motors.example",),
                                                 ("cs.gz003@dealers.example", "service.gz003@dealers.example",
                                                  "gm.gz003@dealers.example")}
    assert all("<svg" in m.mail.html and "2026年11月" in m.mail.subject for m in mails)
    assert runtime.invoke("reports", json.loads(spec.schedule.payload))["sent"] == []  # a retry
    assert len(runtime.outbox.all()) == 10


@pytest.fixture
def http(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHttpServer]:
    """The stack for the CLI; its functions print elsewhere than the CLI's stdout, as they do
    from `complaints run`, a process of its own."""
    server = LocalHttpServer(runtime, LocalSettings(http_port=0, smtp_port=0)).start()
    monkeypatch.setenv("COMPLAINTS_HTTP_PORT", str(server.server.server_address[1]))
    with FUNCTION_OUTPUT.sent_to(io.StringIO()):
        yield server
    server.stop()


def test_the_cli_writes_reports_and_mails_them(http: LocalHttpServer, mixed: DynamoCaseStore, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sh001.csv"
    cli.main(["report", "--month", "2026-10", "--dealer", "SH001", "--format", "csv", "--out", str(out),
              "--as", "cs.sh001@dealers.example"])
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    received = next(r["value"] for r in rows if r["section"] == "summary" and r["metric"] == "received")
    fresh = kpis.recompute(all_cases(mixed), mixed.get_tenant("aurora"))
    assert int(received) == fresh.kpi_counts("aurora", "2026-10").get("dealer#east#SH001", {}).get("received", 0)
    with pytest.raises(SystemExit) as refused:
        cli.main(["report", "--month", "2026-10", "--dealer", "BJ002", "--as", "cs.sh001@dealers.example"])
    assert "403" in str(refused.value)
    capsys.readouterr()
    cli.main(["report", "--quarter", "2026-Q4", "--format", "html"])
    assert capsys.readouterr().out.startswith("<!doctype html>")
    cli.main(["report", "--send", "--month", "2026-10"])
    sent = json.loads(capsys.readouterr().out)
    assert sent["month"] == "2026-10" and len(sent["sent"]) == 10
    assert len([m for m in http.runtime.outbox.all() if "2026年10月" in m.mail.subject]) == 10


def test_a_lost_aggregate_write_is_rebuilt_by_the_reports_function(runtime: LocalRuntime,
                                                                   mixed: DynamoCaseStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    victim = next(c for c in all_cases(mixed) if c.phase == "closed")
    month = kpis.month_of(victim.closed_at, "Asia/Shanghai")
    with monkeypatch.context() as m:  # the Lambda dies between the case write and the aggregate writes
        m.setattr(mixed, "kpi_apply", lambda changes: (_ for _ in ()).throw(TimeoutError("Task timed out")))
        case = mixed.get_case(victim.case_no)
        with pytest.raises(TimeoutError):
            mixed.save_case(case.model_copy(update={"phase": "follow_up", "closed_at": None}))
    fresh = kpis.recompute(all_cases(mixed), mixed.get_tenant("aurora"))
    assert kpis.all_counts(mixed, "aurora", month) != kpis.all_counts(fresh, "aurora", month)

    result = runtime.invoke("reports", {"action": "rebuild", "months": [month], "open": True})
    (done,) = result["months"]
    assert done["month"] == month and not done["consistent"] and done["corrected"]["brand"]["closed"] == "-1"
    assert kpis.all_counts(mixed, "aurora", month) == kpis.all_counts(fresh, "aurora", month)
    again = runtime.invoke("reports", {"action": "rebuild", "months": [month]})
    assert again["months"][0]["consistent"]
