"""Short versions of ``make load`` and ``make soak`` (``benchmarks/load.py``): the same code
with 50 mails over SMTP and 12 lifecycles in flight on the warp clock, without and with 5 %
injected faults. Nothing lost, nothing duplicated, every case closed or in needs_attention."""

from __future__ import annotations

import pytest

from benchmarks.load import render, run_intake_load, run_lifecycle_load, soak_plan

MAILS = 50
SENDERS = 10
LIFECYCLES = 12
FAULT_RATE = 0.05


def test_mail_over_smtp_under_load_becomes_exactly_one_case_each() -> None:
    result = run_intake_load(MAILS, SENDERS)
    assert result.ok, render(result, None, None)
    assert result.cases == MAILS and result.raw_mails == MAILS and not result.held
    assert len(result.smtp_ms) == MAILS and len(result.intake_ms) == MAILS


def test_lifecycles_in_flight_at_once_all_end_closed() -> None:
    result = run_lifecycle_load(LIFECYCLES, timeout_s=300)
    assert result.ok, render(None, result, None)
    assert result.closed == LIFECYCLES and result.needs_attention == 0


@pytest.mark.parametrize("seed", [11])
def test_soak_mail_under_faults_loses_and_duplicates_nothing(seed: int) -> None:
    plan = soak_plan(FAULT_RATE, seed)
    result = run_intake_load(MAILS, SENDERS, plan)
    assert result.ok, render(result, None, FAULT_RATE)
    assert plan.total() > 0 and result.faults["total_injected"] == plan.total()
    assert result.cases == MAILS


@pytest.mark.parametrize("seed", [12])
def test_soak_lifecycles_under_faults_all_end_closed_or_in_needs_attention(seed: int) -> None:
    plan = soak_plan(FAULT_RATE, seed)
    result = run_lifecycle_load(LIFECYCLES, plan, timeout_s=300)
    assert result.ok, render(None, result, FAULT_RATE)
    assert plan.total() > 0 and result.closed + result.needs_attention == LIFECYCLES
