"""The ASL files against the code: every ${Placeholder} resolves from the catalog, every
error name in Retry/Catch is a domain error (or a States./Lambda. name), every Next
exists, and every state is reachable."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra import catalog
from shared.complaints import errors

ASL_FILES = sorted(catalog.STATE_MACHINES.values())


def _load(path: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _walk_states(states: dict[str, Any]) -> dict[str, Any]:
    found = dict(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            found.update(_walk_states(branch["States"]))
        if "Iterator" in state:
            found.update(_walk_states(state["Iterator"]["States"]))
    return found


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_placeholder_resolves(path: Any) -> None:
    used = set(re.findall(r"\$\{(\w+)\}", path.read_text("utf-8")))
    provided = set(catalog.substitutions({spec.name: f"arn:{spec.name}" for spec in catalog.FUNCTIONS}))
    assert used, "the ASL names its functions through placeholders"
    assert used <= provided, f"unresolved: {used - provided}"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_error_name_exists(path: Any) -> None:
    states = _walk_states(_load(path)["States"])
    names = {name for s in states.values() for rule in s.get("Retry", []) + s.get("Catch", [])
             for name in rule["ErrorEquals"]}
    domain = {n for n in names if not n.startswith(("States.", "Lambda.", "Sandbox."))}
    for name in domain:
        cls = getattr(errors, name, None)
        assert isinstance(cls, type) and issubclass(cls, errors.ComplaintsError), f"{name} is not a domain error"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_graph_is_closed_and_reachable(path: Any) -> None:
    asl = _load(path)
    states = asl["States"]
    targets: dict[str, set[str]] = {}
    for name, s in states.items():
        nxt = {s["Next"]} if "Next" in s else set()
        nxt |= {c["Next"] for c in s.get("Choices", [])} | ({s["Default"]} if "Default" in s else set())
        nxt |= {c["Next"] for c in s.get("Catch", [])}
        assert nxt <= set(states), f"{name} points to a missing state: {nxt - set(states)}"
        targets[name] = nxt
    seen, todo = set(), [asl["StartAt"]]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(targets[n])
    assert seen == set(states), f"unreachable: {set(states) - seen}"


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_every_task_is_caught(path: Any) -> None:
    """No silently failed execution: every Task either retries transient errors and
    lands anything else in NeedsAttention, or is the NeedsAttention task itself."""
    for name, s in _load(path)["States"].items():
        if s["Type"] != "Task":
            continue
        caught = {n for c in s.get("Catch", []) for n in c["ErrorEquals"]}
        assert "States.ALL" in caught, name
        if name != "NeedsAttention":
            assert any("TransientError" in r["ErrorEquals"] for r in s.get("Retry", [])), name


@pytest.mark.parametrize("path", ASL_FILES, ids=lambda p: p.name)
def test_waits_use_seconds_not_timestamps(path: Any) -> None:
    """moto's Wait with Timestamp(Path) compares a UTC timestamp with naive local time
    (local-engine.md): our waits are computed as seconds by the workflow function."""
    for name, s in _load(path)["States"].items():
        if s["Type"] == "Wait":
            assert not {"Timestamp", "TimestampPath"} & set(s), name


def test_human_steps_wait_on_their_deadline() -> None:
    states = _load(catalog.STATE_MACHINES["complaint_lifecycle"])["States"]
    waits = {n: s for n, s in states.items() if s.get("Resource", "").endswith(".waitForTaskToken")}
    assert set(waits) == {"FirstContact", "Investigation", "Plan", "Approval", "CustomerReply", "CarryOut",
                          "Survey", "FollowUp"}
    for name, s in waits.items():
        assert s["TimeoutSecondsPath"] == "$.timer.seconds"
        assert any(c["ErrorEquals"] == ["States.Timeout"] and c["Next"] == f"{name}Timer" for c in s["Catch"])
        assert states[f"{name}Timer"]["Next"] in (name, "SurveyExpired")
        assert "$$.Task.Token" in json.dumps(s["Parameters"])
