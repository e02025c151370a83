"""A case driven by a second execution: re-opened by the customer's reply after closing,
or resumed by staff after it was parked in needs_attention. The old execution must end
without touching the case (``Superseded``), the new one must reach the end."""

from __future__ import annotations

from typing import Any

from infra.local.outbox import SentMail
from infra.local.personas import Personas, happy_path
from infra.local.runtime import LocalRuntime
from shared.complaints.lifecycle import Lifecycle
from shared.runtime.wiring import services
from tests.conftest import finished, wait_until
from tests.workflow.test_lifecycle_workflow import register


def states_entered(runtime: LocalRuntime, execution: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in runtime.history(execution)
            if "stateEnteredEventDetails" in e]


def test_a_reply_while_the_survey_waits_reopens_the_case_under_a_new_execution(warp_runtime: LocalRuntime) -> None:
    surveys: list[SentMail] = []

    def survey(m: SentMail) -> dict[str, Any] | None:
        if not surveys:  # the first survey: instead of answering, the customer writes back
            warp_runtime.clock.hold()
            surveys.append(m)
            return None
        return {"score": 92, "comment": "Fixed for good this time."}

    personas = happy_path()
    personas["survey"] = survey
    personas["follow_up"] = lambda m: {"notes": "Called the customer about the noise coming back."}
    people = Personas(warp_runtime, personas)
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(lambda: bool(surveys), timeout=60)
    first = surveys[0].mail
    reply = (f"From: liu.wei@mail.example\r\nTo: {first.sender}\r\nSubject: Re: {first.subject}\r\n"
             f"In-Reply-To: <{first.message_id.strip('<>')}>\r\nMessage-ID: <reply-1@mail.example>\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n\r\n刹车又开始响了，修了没用。\r\n").encode()
    try:
        result = warp_runtime.deliver(reply, [first.sender])
    finally:
        warp_runtime.clock.release()
    assert result["disposition"] == "append_to_case" and result["case_no"] == no, result
    new = f"{no}.r2"
    wait_until(finished(warp_runtime, no), timeout=60)
    wait_until(lambda: _exists(warp_runtime, new) and finished(warp_runtime, new)(), timeout=120)
    assert warp_runtime.execution(new)["status"] == "SUCCEEDED"
    # The old execution waited for the survey; at its next timer it found the case driven by another.
    assert warp_runtime.execution(no)["status"] == "SUCCEEDED"
    assert states_entered(warp_runtime, no)[-2:] == ["SurveyTimer", "Superseded"]
    case = services().store.get_case(no)
    assert (case.phase, case.level, case.cycle, case.execution) == ("closed", "II", 2, new)
    assert case.survey is not None and case.survey.score == 92
    assert [c.step for c in people.clicks].count("follow_up") == 1
    assert "EnterFollowUp" in states_entered(warp_runtime, new) and "Triage" not in states_entered(warp_runtime, new)
    kinds = [e.type for e in services().store.events(no)]
    assert kinds.index("reopened") < kinds.index("closed", kinds.index("reopened"))


def _exists(runtime: LocalRuntime, name: str) -> bool:
    try:
        runtime.execution(name)
        return True
    except Exception:
        return False


def test_staff_resume_a_parked_case_and_it_reaches_the_end(warp_runtime: LocalRuntime, monkeypatch: Any) -> None:
    original = Lifecycle.record
    failures = iter([True])

    def flaky_record(self: Lifecycle, case_no: str, step: Any, task_key: str) -> dict[str, Any]:
        if step == "plan" and next(failures, False):
            raise KeyError("simulated defect in applying the plan")
        return original(self, case_no, step, task_key)

    monkeypatch.setattr(Lifecycle, "record", flaky_record)
    people = Personas(warp_runtime, happy_path())
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no), timeout=60)
    assert warp_runtime.execution(no)["error"] == "CaseNeedsAttention"
    parked = services().store.get_case(no)
    assert parked.phase == "needs_attention" and parked.attention_step == "plan"
    execution = services().lifecycle.resume(no, "cr.center@aurora-motors.example")
    wait_until(lambda: _exists(warp_runtime, execution) and finished(warp_runtime, execution)(), timeout=120)
    assert warp_runtime.execution(execution)["status"] == "SUCCEEDED"
    case = services().store.get_case(no)
    assert case.phase == "closed" and case.survey is not None and case.survey.score == 95
    assert [c.step for c in people.clicks].count("plan") == 2  # the CS head was asked for the plan again
    assert states_entered(warp_runtime, execution)[:3] == ["Start", "ResumeAt", "EnterPlan"]
    assert "resumed" in [e.type for e in services().store.events(no)]
