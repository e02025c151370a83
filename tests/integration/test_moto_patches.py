"""Each change the local runtime makes to moto, tested on its own (local-engine.md)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local.moto_patches import prune_threads
from infra.local.runtime import ACCOUNT, LocalRuntime
from tests.conftest import wait_until


def _machine(runtime: LocalRuntime, name: str, definition: dict[str, Any]) -> str:
    sfn = boto3.client("stepfunctions", region_name=runtime.region)
    arn: str = sfn.create_state_machine(name=name, definition=json.dumps(definition), type="STANDARD",
                                        roleArn=f"arn:aws:iam::{ACCOUNT}:role/complaints-local-states")["stateMachineArn"]
    return arn


def _fn(runtime: LocalRuntime) -> str:
    return f"arn:aws:lambda:{runtime.region}:{ACCOUNT}:function:complaints-local-human_task"


def _run(runtime: LocalRuntime, arn: str, name: str, payload: dict[str, Any]) -> str:
    sfn = boto3.client("stepfunctions", region_name=runtime.region)
    execution: str = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))["executionArn"]
    return execution


def _status(runtime: LocalRuntime, execution: str) -> dict[str, Any]:
    result: dict[str, Any] = boto3.client("stepfunctions", region_name=runtime.region).describe_execution(
        executionArn=execution)
    return result


def test_callback_timeout_fires_at_the_virtual_deadline(manual_runtime: LocalRuntime, monkeypatch: Any) -> None:
    monkeypatch.setattr("shared.complaints.lifecycle.Lifecycle.open_task", lambda *a, **k: None)
    arn = _machine(manual_runtime, "timeout-test", {"StartAt": "Wait", "States": {
        "Wait": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                 "Parameters": {"FunctionName": _fn(manual_runtime),
                                "Payload": {"case_no": "x", "step": "first_contact", "token.$": "$$.Task.Token"}},
                 "TimeoutSeconds": 86400,
                 "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}], "End": True},
        "TimedOut": {"Type": "Succeed"}}})
    execution = _run(manual_runtime, arn, "t1", {})
    assert manual_runtime.clock.settle()
    manual_runtime.clock.advance(86399)
    assert manual_runtime.clock.settle()
    assert _status(manual_runtime, execution)["status"] == "RUNNING"
    manual_runtime.clock.advance(1)
    wait_until(lambda: _status(manual_runtime, execution)["status"] == "SUCCEEDED", 10)


def test_wait_state_runs_on_the_virtual_clock(warp_runtime: LocalRuntime) -> None:
    arn = _machine(warp_runtime, "wait-test", {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 3 * 86400, "End": True}}})
    before = warp_runtime.clock.now()
    execution = _run(warp_runtime, arn, "w1", {})
    wait_until(lambda: _status(warp_runtime, execution)["status"] == "SUCCEEDED", 10)
    assert warp_runtime.clock.now() - before >= timedelta(days=3)


def test_handler_errors_reach_catch_under_their_domain_name(manual_runtime: LocalRuntime) -> None:
    arn = _machine(manual_runtime, "error-test", {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                 "Parameters": {"FunctionName": _fn(manual_runtime).replace("human_task", "workflow"),
                                "Payload": {"action": "no-such-action"}},
                 "Catch": [{"ErrorEquals": ["InvalidInputError"], "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Succeed"}}})
    execution = _run(manual_runtime, arn, "e1", {})
    wait_until(lambda: _status(manual_runtime, execution)["status"] == "SUCCEEDED", 10)


def test_late_task_success_is_refused_as_in_aws(manual_runtime: LocalRuntime, monkeypatch: Any) -> None:
    tokens: list[str] = []
    monkeypatch.setattr("shared.complaints.lifecycle.Lifecycle.open_task",
                        lambda self, case_no, step, token: tokens.append(token))
    arn = _machine(manual_runtime, "late-test", {"StartAt": "Wait", "States": {
        "Wait": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                 "Parameters": {"FunctionName": _fn(manual_runtime),
                                "Payload": {"case_no": "x", "step": "plan", "token.$": "$$.Task.Token"}},
                 "TimeoutSeconds": 60, "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Later"}], "End": True},
        "Later": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    execution = _run(manual_runtime, arn, "l1", {})
    assert manual_runtime.clock.settle()
    manual_runtime.clock.advance(61)
    assert manual_runtime.clock.settle()
    assert _status(manual_runtime, execution)["status"] == "RUNNING"  # still running, past the task
    sfn = boto3.client("stepfunctions", region_name=manual_runtime.region)
    with pytest.raises(ClientError) as err:
        sfn.send_task_success(taskToken=tokens[0], output="{}")
    assert err.value.response["Error"]["Code"] == "TaskTimedOut", err.value.response


def test_finished_worker_threads_are_pruned(warp_runtime: LocalRuntime) -> None:
    from moto.stepfunctions.parser import utils

    arn = _machine(warp_runtime, "prune-test", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    before = set(map(id, utils.TMP_THREADS))
    for i in range(5):
        execution = _run(warp_runtime, arn, f"p{i}", {})
        wait_until(lambda ex=execution: _status(warp_runtime, ex)["status"] == "SUCCEEDED", 10)  # type: ignore[misc]
    ours = [t for t in utils.TMP_THREADS if id(t) not in before]
    assert len(ours) >= 5
    wait_until(lambda: not any(t.is_alive() for t in ours), 10)
    prune_threads()
    assert not any(t in utils.TMP_THREADS for t in ours)
    assert all(t.is_alive() for t in utils.TMP_THREADS)


def test_a_failed_persona_click_does_not_freeze_the_warp_clock(warp_runtime: LocalRuntime, monkeypatch: Any) -> None:
    from infra.local.personas import Personas, happy_path
    from tests.conftest import finished, sample

    calls: list[int] = []
    original = Personas.click

    def flaky(self: Personas, *args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the browser crashed")
        return original(self, *args)

    monkeypatch.setattr(Personas, "click", flaky)
    people = Personas(warp_runtime, happy_path())
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    no = str(warp_runtime.deliver(raw, ["bj002@complaints.aurora-motors.example"])["case_no"])
    wait_until(finished(warp_runtime, no), 60)  # the first contact escalated, someone acted later
    assert people.clicks[0].status == 0 and "browser crashed" in str(people.clicks[0].outcome)


def test_a_table_query_reads_its_partition_and_finds_what_a_walk_finds(manual_runtime: LocalRuntime) -> None:
    from moto.dynamodb.models.table import Table

    from shared.adapters.table import Item

    for pk in ("CASE#A", "CASE#B"):
        for n in range(5):
            Item(pk, f"EVT#{n}", gsi2pk="BRAND#x", gsi2sk=f"{pk}#{n}").save()
    walked: list[int] = []
    original = Table.all_items

    def counting(self: Any) -> Any:
        items = original(self)
        walked.append(len(items))
        return items

    Table.all_items = counting  # type: ignore[method-assign]
    try:
        found = [i.sk for i in Item.query("CASE#A", Item.sk >= "EVT#2", scan_index_forward=False)]
        indexed = [i.gsi2sk for i in Item.by_brand.query("BRAND#x")]
    finally:
        Table.all_items = original  # type: ignore[method-assign]
    assert found == ["EVT#4", "EVT#3", "EVT#2"]
    assert walked[0] == 5  # the partition, not the table
    assert indexed == sorted(f"CASE#{p}#{n}" for p in "AB" for n in range(5))  # indexes still see every item


def test_executions_share_one_parse_and_keep_their_own_retries(warp_runtime: LocalRuntime) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    parses: list[int] = []
    original = AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        parses.append(1)
        return original(definition)

    arn = _machine(warp_runtime, "retry-test", {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                 "Parameters": {"FunctionName": _fn(warp_runtime).replace("human_task", "workflow"),
                                "Payload": {"action": "no-such-action"}},
                 "Retry": [{"ErrorEquals": ["InvalidInputError"], "IntervalSeconds": 60, "MaxAttempts": 2}],
                 "End": True}}})
    AmazonStateLanguageParser.parse = staticmethod(counting)  # type: ignore[method-assign]
    try:
        executions = [_run(warp_runtime, arn, f"r{i}", {}) for i in range(3)]
        for execution in executions:
            wait_until(lambda ex=execution: _status(warp_runtime, ex)["status"] == "FAILED", 20)  # type: ignore[misc]
    finally:
        AmazonStateLanguageParser.parse = original  # type: ignore[method-assign]
    assert len(parses) <= 1  # parsed once for all three (or before: the definition was cached)
    sfn = boto3.client("stepfunctions", region_name=warp_runtime.region)
    for execution in executions:
        events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        assert sum(e["type"] == "TaskFailed" for e in events) == 3, execution  # 1 + 2 retries each
