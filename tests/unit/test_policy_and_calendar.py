"""Policy as configuration, and the dealer's working-day calendar."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.complaints.calendar import WorkingCalendar
from shared.complaints.policy import Duration, build_policy, default_policy_document

SHANGHAI = WorkingCalendar("CN", "Asia/Shanghai")


def test_defaults_carry_policy_md_numbers() -> None:
    p = build_policy()
    # Hour deadlines count service hours (policy.md §5; changed 2026-12-04 from wall-clock hours).
    assert p.deadlines.first_contact == Duration(service_hours=1)
    assert p.deadlines.preliminary_feedback == Duration(service_hours=24)
    assert (p.service_hours.opens.isoformat(), p.service_hours.closes.isoformat()) == ("08:30:00", "18:00:00")
    assert p.deadlines.solution == Duration(working_days=3)
    assert p.deadlines.result == Duration(working_days=5)
    assert p.deadlines.joint_plan == Duration(working_days=7)
    assert p.warning_fraction == 0.75
    assert p.escalation_ladder == ["cs_head", "service_manager", "general_manager", "regional_manager", "brand_cr"]
    assert p.survey.follow_up_below == 70 and p.survey.grades["good"] == 85


@pytest.mark.parametrize(("total", "kinds", "roles"), [
    (Decimal("0"), set(), ["service_manager"]),
    (Decimal("2000"), {"money"}, ["service_manager"]),
    (Decimal("2000.01"), {"money"}, ["general_manager"]),
    (Decimal("20000"), {"free_service"}, ["general_manager"]),
    (Decimal("20001"), {"money"}, ["general_manager", "regional_manager"]),
    (Decimal("100"), {"buy_back"}, ["general_manager", "regional_manager"]),
    (Decimal("100"), {"vehicle_replacement"}, ["general_manager", "regional_manager"]),
])
def test_authority_matrix(total: Decimal, kinds: set[str], roles: list[str]) -> None:
    assert build_policy().approval.roles_for(total, kinds) == roles


def test_brand_and_dealer_overrides_merge_deeply() -> None:
    p = build_policy({"deadlines": {"solution": {"working_days": 2}}}, {"warning_fraction": 0.5})
    assert p.deadlines.solution.working_days == 2
    assert p.deadlines.result.working_days == 5  # untouched
    assert p.warning_fraction == 0.5


def test_invalid_policy_is_rejected_loudly() -> None:
    with pytest.raises(ValidationError):
        build_policy({"deadlines": {"solution": {"hours": 1, "working_days": 2}}})
    with pytest.raises(ValidationError):
        build_policy({"warning_fraction": 1.5})


def test_no_deadline_number_lives_in_code() -> None:
    doc = default_policy_document()
    assert json.dumps(doc)  # the numbers are data


def test_make_up_saturday_counts_as_working_day() -> None:
    # policy.md / local-engine.md: 2026-09-30 17:30 + 3 working days = Saturday 2026-10-10 17:30
    start = datetime(2026, 9, 30, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai
    due = SHANGHAI.add_working_days(start, 3)
    local = SHANGHAI.local(due)
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2026, 10, 10, 17, 30)
    assert local.weekday() == 5


def test_spring_festival_2026_is_skipped() -> None:
    # Received Friday 2026-02-13 10:00; the holiday runs 15-23 Feb, with make-up days 14 Feb and 28 Feb:
    # +1 = Sat 14 (make-up), +2 = Tue 24, +3 = Wed 25, +4 = Thu 26, +5 = Fri 27.
    start = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)
    due = SHANGHAI.local(SHANGHAI.add_working_days(start, 5))
    assert due.date().isoformat() == "2026-02-27"


def test_other_country_and_timezone() -> None:
    berlin = WorkingCalendar("DE", "Europe/Berlin", "BE")
    start = datetime(2026, 12, 23, 15, 0, tzinfo=UTC)  # Wednesday 16:00 in Berlin
    due = berlin.local(berlin.add_working_days(start, 3))
    # 24 Dec is a working day in DE; 25/26 Dec are holidays; the weekend is skipped.
    assert due.date().isoformat() == "2026-12-29" and due.hour == 16


def test_hours_are_wall_clock() -> None:
    start = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # a public holiday
    assert SHANGHAI.add(start, Duration(hours=24)) == datetime(2026, 10, 2, 1, 0, tzinfo=UTC)


def test_estimated_year_is_flagged() -> None:
    assert not SHANGHAI.is_estimated(2026)
    assert SHANGHAI.is_estimated(2031)
