"""Reports (shared/complaints/reports.py): periods, scopes, the report as data from the aggregates,
its HTML (charts with the right numbers), CSV and JSON, and the monthly mail."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shared.complaints import kpis
from shared.complaints.errors import InvalidInputError
from shared.complaints.reports import (
    Figures,
    Period,
    Scope,
    ScopeNotFoundError,
    build_report,
    deliveries,
    may_read,
    render_csv,
    render_html,
    render_json,
    scope_of,
    send_monthly,
)
from shared.complaints.views import Viewer
from tests.fakes import Domain, MemoryMailer
from tests.kpi_lifecycles import Driver, World

START = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 08:30 on 1 December in Shanghai
NOV = Period.parse("2026-11")


@pytest.fixture(scope="module")
def d() -> Domain:
    domain = Domain(START)
    Driver(World(domain.store, domain.clock, domain.lifecycle, domain.mailer), seed=5).mix(70, START, 88)
    domain.clock.set(NOW)
    return domain


def viewer(d: Domain, email: str) -> Viewer:
    member = d.tenant.staff_member(email)
    assert member is not None
    return Viewer.of(member, d.tenant)


# ----- periods and scopes -----------------------------------------------------------------------------
def test_periods() -> None:
    assert Period.parse("2026-11").months == ["2026-11"]
    assert Period.parse("2026-q4").months == ["2026-10", "2026-11", "2026-12"]
    assert Period.parse("2026").months == [f"2026-{m:02d}" for m in range(1, 13)]
    assert Period.parse("2026-Q1").label(True) == "2026年第1季度" and NOV.label(False) == "November 2026"
    for bad in ("2026-13", "2026-Q5", "26-11", "november", "2026-11-01"):
        with pytest.raises(InvalidInputError):
            Period.parse(bad)
    # The 1st's run reports the month before, in the brand's time zone (UTC is still in November's last day).
    assert Period.month_before(datetime(2026, 11, 30, 23, 0, tzinfo=UTC), "Asia/Shanghai").key == "2026-11"
    assert Period.month_before(datetime(2027, 1, 1, 1, 0, tzinfo=UTC), "Asia/Shanghai").key == "2026-12"


def test_who_may_read_which_report(d: Domain) -> None:
    t = d.tenant
    brand, east, sh001, bj002 = Scope("brand"), scope_of(t, region="east"), scope_of(t, dealer="SH001"), \
        scope_of(t, dealer="BJ002")
    cs = viewer(d, "cs.sh001@dealers.example")
    assert [may_read(cs, t, s) for s in (brand, east, sh001, bj002)] == [False, False, True, False]
    manager = viewer(d, "east.region@aurora-motors.example")
    assert [may_read(manager, t, s) for s in (brand, east, sh001, bj002)] == [False, True, True, False]
    assert not may_read(manager, t, scope_of(t, region="north"))
    center = viewer(d, "cr.center@aurora-motors.example")
    assert all(may_read(center, t, s) for s in (brand, east, sh001, bj002))
    with pytest.raises(ScopeNotFoundError):
        scope_of(t, dealer="XX999")
    with pytest.raises(ScopeNotFoundError):
        scope_of(t, region="atlantis")


# ----- the report as data --------------------------------------------------------------------------------
def test_the_report_reads_the_aggregates_of_its_scope_and_period(d: Domain) -> None:
    q4 = build_report(d.store, d.store, d.tenant, Scope("brand"), Period.parse("2026-Q4"), NOW)
    months = [build_report(d.store, d.store, d.tenant, Scope("brand"), Period.parse(m), NOW)
              for m in ("2026-10", "2026-11", "2026-12")]
    assert q4.summary.received == sum(m.summary.received for m in months) > 0
    assert q4.summary.closed == sum(m.summary.closed for m in months) > 0
    assert q4.summary.compensation == sum((m.summary.compensation for m in months), Decimal(0))
    nov = months[1]
    fresh = kpis.recompute(d.store.cases.values(), d.tenant).kpi_counts("aurora", "2026-11")["brand"]
    assert nov.summary == Figures.of(fresh, d.tenant.policy_for(None))
    assert sum(r.value for r in nov.by_category) == nov.summary.received == sum(r.value for r in nov.by_channel)
    assert sum(r.value for r in nov.by_root_cause) == nov.summary.received
    assert [p.month for p in nov.trend] == [f"2025-{m}" for m in ("12",)] + [f"2026-{m:02d}" for m in range(1, 12)]
    assert nov.trend[-1].received == nov.summary.received and nov.trend[-2].received == months[0].summary.received
    assert {p.code for p in nov.dealers} == {"SH001", "BJ002", "GZ003", "CD004", "HZ005"}
    assert sum(p.figures.received for p in nov.dealers) + sum(
        1 for c in d.store.cases.values() if c.dealer is None and kpis.month_of(c.received_at, "Asia/Shanghai") == "2026-11"
    ) == nov.summary.received
    ranked = [p.figures.on_time_rate for p in nov.dealers if p.figures.on_time_rate is not None]
    assert ranked == sorted(ranked, reverse=True)
    assert nov.at_risk_overdue > 0 and all(c.overdue for c in nov.at_risk[: nov.at_risk_overdue])
    assert nov.overdue_tasks and all(t.days_overdue >= 0 for t in nov.overdue_tasks)


def test_at_risk_when_a_period_ended_is_counted_from_buckets_as_the_entries_would_count_it(d: Domain) -> None:
    for period in (Period.parse("2026-10"), NOV, Period.parse("2026-Q3")):
        report = build_report(d.store, d.store, d.tenant, Scope("brand"), period, NOW)
        end = kpis.month_start(kpis.next_month(period.months[-1]), "Asia/Shanghai")
        window = d.tenant.calendar_for(None).add(end, d.tenant.policy_for(None).kpis.at_risk_within)
        entries = d.store.kpi_open("aurora", window)
        assert report.at_risk_overdue == sum(1 for e in entries if e.due_at < end)
        assert report.at_risk_due_soon == sum(1 for e in entries if e.due_at >= end)
        assert [c.case_no for c in report.at_risk] == [e.case_no for e in entries][: len(report.at_risk)]
        tasks = d.store.accountability_tasks("aurora", due_before=end)
        assert report.overdue_tasks_total == len(tasks)
        assert [t.case_no for t in report.overdue_tasks] == [t.case_no for t in tasks][: len(report.overdue_tasks)]
        by_dealer = {p.code: p.at_risk for p in report.dealers}
        for code in by_dealer:
            assert by_dealer[code] == sum(1 for e in entries if e.dealer == code), (period.key, code)
    # A period still running: as of now.
    running = build_report(d.store, d.store, d.tenant, Scope("brand"), Period.parse("2026-12"), NOW)
    assert running.at_risk_as_of == "2026-12-01 08:30"


def test_a_dealers_report_holds_only_its_own_cases(d: Domain) -> None:
    report = build_report(d.store, d.store, d.tenant, scope_of(d.tenant, dealer="SH001"), NOV, NOW)
    assert report.dealers == [] and report.regions == [] and report.corrections == []
    assert all(c.dealer == "SH001" for c in report.at_risk)
    assert all(t.dealer == "SH001" for t in report.overdue_tasks)
    assert all(o.case_no.startswith("AUR-SH001-") for o in report.opinions)
    brand = build_report(d.store, d.store, d.tenant, Scope("brand"), NOV, NOW)
    sh001 = next(p for p in brand.dealers if p.code == "SH001")
    assert report.summary == sh001.figures


# ----- HTML, CSV, JSON ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def november(d: Domain):  # type: ignore[no-untyped-def]
    return build_report(d.store, d.store, d.tenant, Scope("brand"), NOV, NOW)


def test_the_html_report_draws_its_figures_as_svg_charts(november) -> None:  # type: ignore[no-untyped-def]
    html = render_html(november)
    assert html.startswith("<!doctype html>") and 'lang="zh-CN"' in html
    assert "<script" not in html and not re.search(r'(src|href)="https?://', html)  # standalone: no external asset
    charts = re.findall(r"<svg[^>]*>.*?</svg>", html, flags=re.S)
    assert len(charts) >= 8
    def bars(title: str) -> dict[str, float]:
        (chart,) = [c for c in charts if f'aria-label="{title}"' in c]
        return {k: float(v) for k, v in re.findall(r'<rect class="bar"[^>]*data-label="([^"]+)" data-value="([^"]+)"', chart)}

    assert bars("按类别") == {r.label: r.value for r in november.by_category}
    assert bars("按根本原因") == {r.label: r.value for r in november.by_root_cause}
    assert bars("各节点及时率") == pytest.approx({m.label: m.rate for m in november.milestones})
    for m in november.milestones:
        assert f"({m.on_time}/{m.settled})" in html
    points = re.findall(r'<circle class="point"[^>]*data-series="满意度" data-label="([^"]+)" data-value="([^"]+)"', html)
    assert [float(v) for _, v in points] == pytest.approx([p.satisfaction for p in november.trend if p.satisfaction])
    s = november.summary
    assert f"{s.on_time_rate * 100:.1f}%" in html and f"{s.satisfaction:.1f}" in html
    for p in november.dealers:
        assert f'data-dealer="{p.code}"' in html
    for o in november.opinions:
        assert o.comment in html


def test_the_html_report_speaks_english_when_asked(d: Domain) -> None:
    html = render_html(build_report(d.store, d.store, d.tenant, Scope("brand"), NOV, NOW, language="en"))
    assert 'lang="en"' in html and "On-time rate per milestone" in html and "按类别" not in html


def test_csv_and_json_parse_and_carry_the_same_figures(november) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.DictReader(io.StringIO(render_csv(november).removeprefix("\ufeff"))))
    summary = {r["metric"]: r["value"] for r in rows if r["section"] == "summary"}
    assert int(summary["received"]) == november.summary.received
    assert float(summary["on_time_rate"]) == pytest.approx(november.summary.on_time_rate, abs=1e-4)
    assert Decimal(summary["compensation"]) == november.summary.compensation
    assert {r["key"] for r in rows if r["section"] == "dealer"} == {p.code for p in november.dealers}
    data = json.loads(render_json(november))
    assert data["summary"]["received"] == november.summary.received
    assert data["period"]["months"] == ["2026-11"] and data["scope"]["key"] == "brand"
    assert len(data["trend"]) == 12 and Decimal(data["summary"]["compensation"]) == november.summary.compensation


def test_no_personal_data_in_any_form_of_the_report(d: Domain, november) -> None:  # type: ignore[no-untyped-def]
    text = render_html(november) + render_csv(november) + render_json(november)
    for case in d.store.cases.values():
        for personal in (case.customer.email, case.customer.phone, case.customer.name):
            assert personal and personal not in text
    assert "13912345678" not in text and "LAUR0A1B2C3000001" not in text and "沪A12345" not in text


# ----- the monthly mail ------------------------------------------------------------------------------------
def test_the_monthly_reports_go_to_the_brand_each_region_and_each_dealer_once(d: Domain) -> None:
    mailer = MemoryMailer()
    result = send_monthly(d.store, d.store, mailer, d.tenant, NOV, NOW)
    assert len(result.sent) == len(deliveries(d.tenant)) == 1 + 4 + 5 and result.skipped == []
    by_to = {tuple(m.to): m for m in mailer.sent}
    brand = by_to[("cr.center@aurora-motors.example",)]
    assert "2026年11月" in brand.subject and "<svg" in brand.html and "经销商排名" in brand.html
    east = by_to[("east.region@aurora-motors.example",)]
    assert "east 大区" in east.subject and 'data-dealer="SH001"' in east.html and 'data-dealer="BJ002"' not in east.html
    sh001 = by_to[("cs.sh001@dealers.example", "service.sh001@dealers.example", "gm.sh001@dealers.example")]
    assert "极光上海浦东4S店" in sh001.subject and "经销商排名" not in sh001.html
    report = build_report(d.store, d.store, d.tenant, scope_of(d.tenant, dealer="SH001"), NOV, NOW)
    assert f"受理: {report.summary.received}" in sh001.text
    assert sh001.headers["Auto-Submitted"] == "auto-generated"

    again = send_monthly(d.store, d.store, mailer, d.tenant, NOV, NOW)  # a retried run
    assert again.sent == [] and len(again.skipped) == 10 and len(mailer.sent) == 10
