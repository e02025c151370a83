"""The committed state machine is what the generator writes from the table of steps, and the
table and the lifecycle agree on the steps."""

from __future__ import annotations

import json
import typing

from infra import asl
from shared.complaints.models import Step
from shared.complaints.steps import STEPS


def test_the_committed_asl_and_its_readme_are_what_the_generator_writes() -> None:
    assert asl.ASL_PATH.read_text("utf-8") == asl.asl_text(), "run `make asl` and commit the result"
    assert asl.README_PATH.read_text("utf-8") == asl.readme_text(), "run `make asl` and commit the result"
    assert asl.main(["--check"]) == 0


def test_every_step_of_the_domain_is_in_the_table_once_and_has_its_four_states() -> None:
    names = [step.name for step in STEPS]
    assert sorted(names) == sorted(typing.get_args(Step)) and len(set(names)) == len(names)
    states = json.loads(asl.asl_text())["States"]
    for step in STEPS:
        base = asl.state_name(step.name)
        for name in (f"Enter{base}", base, f"{base}Timer", f"Record{base}"):
            assert name in states, name
        assert states[base]["Resource"].endswith(".waitForTaskToken")
        assert {c["ErrorEquals"][0] for c in states[base]["Catch"]} == {"SupersededError", "States.Timeout",
                                                                         "States.ALL"}


def test_a_route_in_the_table_is_a_choice_in_the_state_machine() -> None:
    states = json.loads(asl.asl_text())["States"]
    for step in STEPS:
        record = states[f"Record{asl.state_name(step.name)}"]
        if not step.routes:
            assert record["Next"] == asl.entry_state(step.then)
            continue
        route = states[record["Next"]]
        assert {c["StringEquals"]: c["Next"] for c in route["Choices"]} == {
            target: asl.entry_state(target) for target in step.routes}
        assert route["Default"] == asl.entry_state(step.then)


def test_every_task_retries_and_catches_the_same_way() -> None:
    tasks = [s for s in json.loads(asl.asl_text())["States"].values() if s["Type"] == "Task"]
    assert len({json.dumps(s["Retry"]) for s in tasks}) == 1
    assert all(s["Catch"][0]["Next"] == "Superseded" and s["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
               for s in tasks)
