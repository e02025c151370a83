"""Writes the lifecycle's state machine from the table of steps (shared/complaints/steps).

    python -m infra.asl           # write stepfunctions/complaint_lifecycle.asl.json and README.md
    python -m infra.asl --check   # exit 1 when the committed files differ from what this writes

Every human step becomes four states — Enter<Step> (assign, start the clock), <Step> (the
callback task whose timeout is the next deadline), <Step>Timer (warn, escalate, remind),
Record<Step> (apply the decision) — plus a RouteAfter<Step> Choice when a decision can lead
to more than one place. One Retry and one Catch are written here, once, for every task.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.complaints.steps import FIRST, STEPS, StepSpec, Target

STEPFUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "stepfunctions"
ASL_PATH = STEPFUNCTIONS_DIR / "complaint_lifecycle.asl.json"
README_PATH = STEPFUNCTIONS_DIR / "README.md"
SAMPLE_INPUT = STEPFUNCTIONS_DIR / "complaint_lifecycle.sample-input.json"

COMMENT = (
    "The lifecycle of one complaint (policy.md): triage, first contact, investigation, plan, approval, "
    "the customer's answer, carrying out, close, survey, follow-up. Every human step is a callback task "
    "whose timeout is its next deadline."
)
WORKFLOW = "${WorkflowFunctionArn}"
HUMAN_TASK = "${HumanTaskFunctionArn}"

# Transient failures of the platform or of our own optimistic writes: retried with backoff.
RETRY: list[dict[str, Any]] = [{
    "ErrorEquals": [
        "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException", "Sandbox.Timedout", "Lambda.ClientExecutionTimeoutException",
        "Lambda.Unknown", "TransientError", "ConflictError", "MailDeliveryError",
    ],
    "IntervalSeconds": 2,
    "BackoffRate": 2,
    "MaxAttempts": 5,
    "JitterStrategy": "FULL",
}]


def catch(*, timeout_to: str | None = None, otherwise: str = "NeedsAttention",
          error_path: str = "$.error") -> list[dict[str, Any]]:
    """A newer execution ends this one quietly; a step's timeout goes to its timer; anything else
    parks the case in needs_attention."""
    rules: list[dict[str, Any]] = [{"ErrorEquals": ["SupersededError"], "ResultPath": "$.error", "Next": "Superseded"}]
    if timeout_to:
        rules.append({"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": timeout_to})
    rules.append({"ErrorEquals": ["States.ALL"], "ResultPath": error_path, "Next": otherwise})
    return rules


def state_name(step: str) -> str:
    return "".join(part.capitalize() for part in step.split("_"))


def entry_state(target: Target) -> str:
    return {"close": "Close", "closed": "Closed"}.get(target) or f"Enter{state_name(target)}"


def task(comment: str | None, payload: dict[str, Any], *, function: str = WORKFLOW, **fields: Any) -> dict[str, Any]:
    nxt = fields.pop("Next")
    timeout_to = fields.pop("timeout_to", None)
    state: dict[str, Any] = {"Comment": comment} if comment else {}
    state |= {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke" + (".waitForTaskToken" if function == HUMAN_TASK else ""),
        "Parameters": {"FunctionName": function, "Payload": {**payload, "execution.$": "$$.Execution.Name"}},
        **fields,
        "Retry": RETRY,
        "Catch": catch(timeout_to=timeout_to),
        "Next": nxt,
    }
    return state


def choice(choices: list[dict[str, Any]], default: str, comment: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Comment": comment} if comment else {}
    return state | {"Type": "Choice", "Choices": choices, "Default": default}


def when(variable: str, test: str, value: Any, nxt: str) -> dict[str, Any]:
    return {"Variable": variable, test: value, "Next": nxt}


def step_states(step: StepSpec) -> dict[str, Any]:
    name, case_no = state_name(step.name), "$.case_no"
    states: dict[str, Any] = {}
    states[f"Enter{name}"] = task(
        f"{step.purpose}: assign it, start its deadline clock",
        {"action": "enter", "case_no.$": case_no, "step": step.name, "entered.$": "$$.State.EnteredTime"},
        ResultSelector={"seconds.$": "$.Payload.seconds"}, ResultPath="$.timer", Next=name)
    states[name] = task(
        f"Waits for the {step.words} decision (a link or a reply). The timeout is the next warning or deadline "
        "of this step.",
        {"case_no.$": case_no, "step": step.name, "token.$": "$$.Task.Token"}, function=HUMAN_TASK,
        TimeoutSecondsPath="$.timer.seconds", ResultPath="$.decision", Next=f"Record{name}",
        timeout_to=f"{name}Timer")
    states[f"{name}Timer"] = task(
        "A deadline timer fired: warn, escalate or remind, then wait again with a fresh token",
        {"action": "timer", "case_no.$": case_no, "step": step.name},
        ResultSelector={"seconds.$": "$.Payload.seconds", "expired.$": "$.Payload.expired"}, ResultPath="$.timer",
        Next=f"{name}Expired" if step.unanswered else name)
    states[f"Record{name}"] = task(
        f"Apply the {step.words} decision to the case",
        {"action": "record", "case_no.$": case_no, "step": step.name, "decision.$": "$.decision"},
        ResultSelector={"next.$": "$.Payload.next"}, ResultPath="$.route",
        Next=f"RouteAfter{name}" if step.routes else entry_state(step.then))
    if step.unanswered:
        states[f"{name}Expired"] = choice([when("$.timer.expired", "BooleanEquals", True, f"{name}Unrated")], name)
        states[f"{name}Unrated"] = task(
            step.unanswered_note, {"action": f"{step.name}_unrated", "case_no.$": case_no},
            ResultPath=None, Next=entry_state(step.unanswered))
    if step.routes:
        states[f"RouteAfter{name}"] = choice(
            [when("$.route.next", "StringEquals", target, entry_state(target)) for target in step.routes],
            entry_state(step.then))
    return states


def definition() -> dict[str, Any]:
    states: dict[str, Any] = {
        "Start": choice(
            [when("$.entry", "IsPresent", True, "ResumeAt")], "Triage",
            "Where an execution begins: $.entry names it (triage for a new case; the step to re-enter for a "
            "re-opened or resumed one)"),
        "ResumeAt": choice(
            [when("$.entry", "StringEquals", step.name, entry_state(step.name)) for step in STEPS]
            + [when("$.entry", "StringEquals", "close", entry_state("close"))], "Triage",
            "The step a re-opened, resumed or restarted case re-enters (close: a closed case waits for its "
            "survey again); anything else (triage) starts at Triage"),
        "Triage": task("Critical cases: notify the dealer GM and the brand CR center at once",
                       {"action": "triage", "case_no.$": "$.case_no"}, ResultPath=None, Next=entry_state(FIRST)),
    }
    for step in STEPS:
        if step.after_close:
            states["Close"] = task(
                "Close the case; the survey goes out after the policy's delay in working days",
                {"action": "close", "case_no.$": "$.case_no"},
                ResultSelector={"seconds.$": "$.Payload.seconds"}, ResultPath="$.survey_wait",
                Next="WaitBeforeSurvey")
            states["WaitBeforeSurvey"] = {"Type": "Wait", "SecondsPath": "$.survey_wait.seconds",
                                          "Next": entry_state(step.name)}
        states |= step_states(step)
    states["Closed"] = {"Type": "Succeed"}
    states["NeedsAttention"] = task(
        "Anything unexpected: the case shows needs_attention and the brand CR center is alerted",
        {"action": "needs_attention", "case_no.$": "$.case_no", "error.$": "$.error"}, ResultPath=None,
        Next="Parked")
    # Parking itself failed: the execution still ends visibly failed, keeping the first error.
    states["NeedsAttention"]["Catch"] = catch(otherwise="Parked", error_path="$.attention_error")
    states["Parked"] = {"Type": "Fail", "Error": "CaseNeedsAttention",
                        "Cause": "The case was parked in needs_attention; staff were alerted and take it from here."}
    states["Superseded"] = {
        "Comment": "A newer execution drives the case (re-opened by a reply or resumed by staff): this one ends",
        "Type": "Succeed"}
    return {"Comment": COMMENT, "StartAt": "Start", "States": states}


def asl_text() -> str:
    return json.dumps(definition(), indent=2, ensure_ascii=False) + "\n"


def mermaid(asl: dict[str, Any]) -> str:
    """The flow without the plumbing: every state and where it can go (Catch edges to the two
    end states are left out; every task has them)."""
    lines = ["flowchart TD"]
    for name, state in asl["States"].items():
        targets = [state["Next"]] if "Next" in state else []
        targets += [c["Next"] for c in state.get("Choices", [])] + ([state["Default"]] if "Default" in state else [])
        targets += [c["Next"] for c in state.get("Catch", []) if c["Next"] not in ("Superseded", "NeedsAttention",
                                                                                    "Parked")]
        shapes = {"Choice": "{{{}}}", "Succeed": "([{}])", "Fail": "([{}])"}
        shape = shapes.get(state["Type"], "[{}]").format(name)
        lines.append(f"  {name}{shape}")
        lines += [f"  {name} --> {target}" for target in dict.fromkeys(targets)]
    return "\n".join(lines)


def readme_text() -> str:
    asl = definition()
    examples = {
        "a new case (intake starts it, named after the case number)":
            {"case_no": "AUR-SH001-202611-00001", "entry": "triage"},
        "a re-opened case (a customer's reply after closing, within the policy's window)":
            {"case_no": "AUR-SH001-202611-00001", "entry": "follow_up"},
        "a case resumed by staff from needs_attention, at the step it was parked in":
            {"case_no": "AUR-SH001-202611-00001", "entry": "plan"},
    }
    parts = [
        "# Step Functions",
        "",
        "Generated by `python -m infra.asl` (`make asl`) from the table of steps in "
        "`shared/complaints/steps/`; do not edit `complaint_lifecycle.asl.json` by hand — a test fails "
        "when it differs from what the generator writes.",
        "",
        "`complaint_lifecycle.asl.json`: one Standard execution per complaint. Every human step is "
        "Enter → callback task (timeout = its next deadline) → Timer (warn, escalate, remind) → Record "
        "(→ RouteAfter when a decision can lead to more than one place). Every task retries transient "
        "errors and sends anything else to NeedsAttention (the case is parked and staff alerted), or to "
        "Superseded when a newer execution drives the case.",
        "",
        "```mermaid",
        mermaid(asl),
        "```",
        "",
        "## Example inputs",
        "",
    ]
    for what, payload in examples.items():
        parts += [f"- {what}:", "", "  ```json", f"  {json.dumps(payload)}", "  ```", ""]
    parts += [f"`{SAMPLE_INPUT.name}` holds one without `entry` (it starts at Triage too), for a run "
              "started by hand.", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the committed files are not current")
    args = parser.parse_args(argv)
    wanted = {ASL_PATH: asl_text(), README_PATH: readme_text()}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text("utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.name} is not what `python -m infra.asl` writes: run `make asl`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], "utf-8")
        print(f"wrote {path.relative_to(STEPFUNCTIONS_DIR.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
