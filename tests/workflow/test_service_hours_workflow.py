"""A case parked for days, then resumed, on the real state machine (warp clock): the rungs of
the escalation ladder that fell due meanwhile go out as one escalation, not one per level in
the same second (issue 17, policy.md §5)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infra.local.runtime import LocalRuntime
from shared.complaints.lifecycle import Lifecycle
from shared.runtime.wiring import services
from tests.conftest import finished, wait_until
from tests.workflow.test_lifecycle_workflow import register

CR = "cr.center@aurora-motors.example"


def test_resuming_a_case_parked_for_days_escalates_once(warp_runtime: LocalRuntime, monkeypatch: Any) -> None:
    original = Lifecycle.enter
    failures = iter([True])

    def flaky_enter(self: Lifecycle, case_no: str, step: Any, entered_ref: str | None = None) -> dict[str, Any]:
        if step == "first_contact" and next(failures, False):
            raise KeyError("simulated defect entering the first contact")
        return original(self, case_no, step, entered_ref)

    monkeypatch.setattr(Lifecycle, "enter", flaky_enter)
    no = register(warp_runtime, "p02_wait_time_bj002_gb2312.eml")
    wait_until(finished(warp_runtime, no), timeout=60)
    assert services().store.get_case(no).phase == "needs_attention"
    warp_runtime.clock.advance(timedelta(days=4).total_seconds())  # parked from Monday to Friday
    execution = services().lifecycle.resume(no, CR)

    def breaches() -> list[Any]:
        return [e for e in services().store.events(no) if e.type == "deadline_breached"]
    wait_until(lambda: bool(breaches()), timeout=60)
    first = breaches()[0]
    assert int(first.data["rungs"]) >= 3  # Monday to Friday: four rungs were due at once
    assert [e.at for e in breaches()].count(first.at) == 1

    def escalations() -> list[Any]:
        return [m.mail for m in warp_runtime.outbox.for_case(no) if "超时升级" in m.mail.subject]
    wait_until(lambda: bool(escalations()), timeout=30)
    mail = escalations()[0]  # the one mail of the resume: it says the levels came together
    assert mail.to == [str(first.data["to"])] and f"已累计 {first.data['rungs']} 级" in mail.text
    assert execution.startswith(no)
