"""The ASL file on the local runtime, warp clock: whole lifecycles, driven by personas
who answer the mails the system sends."""

from __future__ import annotations

from typing import Any

from infra.local.http import recipients_of
from infra.local.outbox import SentMail
from infra.local.personas import Personas, happy_path
from infra.local.runtime import LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import finished, sample, wait_until


def register(runtime: LocalRuntime, name: str) -> str:
    raw = sample(name)
    result = runtime.deliver(raw, recipients_of(raw))
    assert result["disposition"] == "new_case", result
    return str(result["case_no"])


def case_json(case_no: str) -> Any:
    return services().store.get_case(case_no)


def test_happy_path_ends_closed_and_surveyed(warp_runtime: LocalRuntime) -> None:
    people = Personas(warp_runtime, happy_path())
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no))
    assert warp_runtime.execution(no)["status"] == "SUCCEEDED"
    case = case_json(no)
    assert case.phase == "closed" and case.survey.score == 95
    assert all(m.met_at for m in case.milestones), case.milestones
    assert case.on_time
    assert all(c.status == 200 for c in people.clicks if c.outcome != "decided")
    kinds = [m.mail.subject for m in warp_runtime.outbox.for_case(no)]
    assert any("紧急" in s for s in kinds)  # critical: GM and brand told at once
    steps = [s for s in (c.step for c in people.clicks)]
    assert steps == ["first_contact", "investigation", "plan", "approval", "customer_reply", "carry_out", "survey"], (
        people.clicks, [(m.mail.to, m.mail.subject, m.mail.links) for m in warp_runtime.outbox.for_case(no)])


def test_rejected_plan_is_revised_and_approved(warp_runtime: LocalRuntime) -> None:
    decisions = iter(["reject", "approve"])
    personas = happy_path()
    personas["approval"] = lambda m: {"decision": next(decisions), "comment": "Add a loan car, please."}
    people = Personas(warp_runtime, personas)
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no))
    case = case_json(no)
    assert case.phase == "closed" and case.plan.revision == 2
    assert [(a.plan_revision, a.decision) for a in case.approvals] == [(1, "reject"), (2, "approve")]
    revision_mail = [m for m in warp_runtime.outbox.for_case(no) if "Add a loan car" in m.mail.text]
    assert revision_mail and "cs.sh001@dealers.example" in revision_mail[0].mail.to
    assert [c.step for c in people.clicks].count("plan") == 2


def test_silent_cs_head_is_warned_then_escalated_up_the_ladder(warp_runtime: LocalRuntime, monkeypatch: Any) -> None:
    acted: list[str] = []
    emitted: list[str] = []
    monkeypatch.setattr("functions.workflow.handler.metrics.add_metric",
                        lambda name, unit, value: emitted.append(name))

    def first_contact(m: SentMail) -> dict[str, Any] | None:
        # The CS head ignores everything; the GM acts when the escalation reaches him.
        if "gm.hz005@dealers.example" in m.mail.to:
            acted.append("gm")
            return {"notes": "GM called the customer himself."}
        return None

    personas = happy_path()
    personas["first_contact"] = first_contact
    people = Personas(warp_runtime, personas)
    no = register(warp_runtime, "p27_oddly_folded_headers_en_hz005.eml")
    wait_until(finished(warp_runtime, no), timeout=60)
    subjects = [(m.mail.to[0], m.mail.subject) for m in warp_runtime.outbox.for_case(no)]
    warnings = [s for s in subjects if "Reminder" in s[1] or "即将超时" in s[1]]
    escalations = [to for to, s in subjects if "Escalated" in s or "超时升级" in s]
    assert warnings and warnings[0][0].startswith("cs.")
    assert escalations[:2] == ["service.hz005@dealers.example", "gm.hz005@dealers.example"]
    case = case_json(no)
    assert case.milestone("first_contact", 1).breached
    assert not case.on_time
    assert acted == ["gm"] and [c.status for c in people.clicks if c.step == "first_contact"] == [200]
    assert emitted.count("DeadlineBreached") == 1  # once per milestone, however often it escalates


def test_poor_survey_opens_a_level_two_follow_up(warp_runtime: LocalRuntime) -> None:
    scores = iter([65, 90])
    personas = happy_path()
    personas["survey"] = lambda m: {"score": next(scores), "comment": "Still not fixed properly."}
    people = Personas(warp_runtime, personas)
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no), timeout=120)
    case = case_json(no)
    assert case.level == "II" and case.cycle == 2 and case.follow_ups == 1
    assert case.phase == "closed" and case.survey.score == 90
    assert [c.step for c in people.clicks].count("follow_up") == 1
    assert {m.name for m in case.milestones if m.cycle == 2} == {"first_contact", "preliminary_feedback", "result"}


def test_unexpected_error_parks_the_case_in_needs_attention(warp_runtime: LocalRuntime, monkeypatch: Any) -> None:
    from shared.complaints.lifecycle import Lifecycle

    def broken(self: Lifecycle, case_no: str) -> dict[str, Any]:
        raise KeyError("simulated defect")

    monkeypatch.setattr(Lifecycle, "triage", broken)
    emitted: list[str] = []
    monkeypatch.setattr("functions.workflow.handler.metrics.add_metric",
                        lambda name, unit, value: emitted.append(name))
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no))
    execution = warp_runtime.execution(no)
    assert execution["status"] == "FAILED" and execution.get("error") == "CaseNeedsAttention"
    case = case_json(no)
    # A plain reason for staff (no error name); the raw error in the timeline's details.
    assert case.phase == "needs_attention" and "KeyError" not in case.attention_reason
    assert [e for e in services().store.events(no) if e.type == "needs_attention"][-1].data["error"] == "KeyError"
    alert = warp_runtime.outbox.all()[-1].mail
    assert alert.to == ["cr.center@aurora-motors.example"] and "需人工处理" in alert.subject
    assert emitted.count("NeedsAttention") == 1  # the metrics object is shared: intake counts its mail too


def test_customer_declines_then_accepts_the_revised_plan(warp_runtime: LocalRuntime) -> None:
    answers = iter([{"decision": "decline", "reason": "I want a loan car while it is repaired."},
                    {"decision": "accept"}])
    personas = happy_path()
    personas["customer_reply"] = lambda m: next(answers)
    people = Personas(warp_runtime, personas)
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no))
    case = case_json(no)
    assert case.phase == "closed" and case.plan.revision == 2 and case.customer_decision == "accept"
    assert [c.step for c in people.clicks].count("plan") == 2
    revise = [m.mail for m in warp_runtime.outbox.for_case(no) if "I want a loan car" in m.mail.text]
    assert revise and revise[0].to == ["cs.sh001@dealers.example"]
    assert case.milestone("result", 1).met_at is not None


def test_silent_customer_gets_a_phone_confirmation_task(warp_runtime: LocalRuntime) -> None:
    def customer_reply(m: SentMail) -> dict[str, Any] | None:
        if m.mail.to == ["cs.sh001@dealers.example"]:  # the CS head called and records the answer
            return {"decision": "accept"}
        return None  # the customer never answers the mail

    personas = happy_path()
    personas["customer_reply"] = customer_reply
    people = Personas(warp_runtime, personas)
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no))
    phone = [m.mail for m in warp_runtime.outbox.for_case(no) if "电话确认" in m.mail.subject]
    assert phone and phone[0].to == ["cs.sh001@dealers.example"]
    assert case_json(no).phase == "closed"
    assert [c.status for c in people.clicks if c.step == "customer_reply"] == [200]
    events = [e.type for e in services().store.events(no)]
    assert "phone_confirmation_requested" in events


def test_survey_by_grade(warp_runtime: LocalRuntime) -> None:
    personas = happy_path()
    personas["survey"] = lambda m: {"grade": "fairly_satisfied", "comment": ""}
    Personas(warp_runtime, personas)
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no))
    survey = case_json(no).survey
    assert (survey.score, survey.grade) == (90, "fairly_satisfied")


def test_unanswered_survey_is_reminded_once_then_closed_unrated(warp_runtime: LocalRuntime) -> None:
    personas = happy_path()
    del personas["survey"]
    Personas(warp_runtime, personas)
    no = register(warp_runtime, "p01_brake_failure_sh001.eml")
    wait_until(finished(warp_runtime, no))
    case = case_json(no)
    assert case.phase == "closed" and case.survey.unrated and case.survey.score is None
    surveys = [m.mail.subject for m in warp_runtime.outbox.for_case(no) if "liu.wei@mail.example" in m.mail.to]
    assert sum("评价" in s for s in surveys) == 2 and sum("提醒" in s for s in surveys) == 1
    assert warp_runtime.execution(no)["status"] == "SUCCEEDED"
