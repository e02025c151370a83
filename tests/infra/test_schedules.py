"""EventBridge Scheduler from the catalog: a ``schedule`` on an entry is all it takes.

Checked on the monthly reports' entry (``reports``: the 1st, 08:00 in Shanghai); every
scheduled entry is built by the same code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks

from infra import catalog
from infra.app import build_app
from infra.stack import ComplaintsStack
from tests.infra.support import Synth, allowed_actions, as_list

REPORTS = catalog.function("reports")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth[ComplaintsStack]]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(context={"bundle": False}, outdir=str(outdir))
    yield Synth.of(app, stack, outdir)


def reports_schedule(synth: Synth[ComplaintsStack]) -> dict[str, Any]:
    schedules = synth.of_type("AWS::Scheduler::Schedule").values()
    assert len(schedules) == sum(1 for spec in catalog.FUNCTIONS if spec.schedule), "one schedule per scheduled entry"
    (schedule,) = [s for s in schedules if s["Properties"]["Name"].endswith(f"-{REPORTS.name}")]
    return schedule


def test_a_scheduled_entry_gets_its_schedule(synth: Synth[ComplaintsStack]) -> None:
    assert REPORTS.schedule is not None
    function_id = synth.function_ids()[REPORTS.name]
    schedule = reports_schedule(synth)
    props = schedule["Properties"]
    assert props["Name"] == f"{synth.stack.stack_name}-{REPORTS.name}"
    assert props["ScheduleExpression"] == REPORTS.schedule.expression
    assert props["ScheduleExpressionTimezone"] == "Asia/Shanghai"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["State"] == "ENABLED"
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert json.loads(target["Input"]) == {"action": "monthly"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"] == {"Arn": synth.resolve(synth.stack.operations.failures.queue_arn)}
    (group,) = synth.of_type("AWS::Scheduler::ScheduleGroup").values()
    assert props["GroupName"] == group["Properties"]["Name"]


def test_a_schedule_may_invoke_its_function_and_nothing_else(synth: Synth[ComplaintsStack]) -> None:
    schedule = reports_schedule(synth)
    role_id = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    policies = [d for d in schedule["DependsOn"] if synth.resources[d]["Type"] == "AWS::IAM::Policy"]
    assert [synth.resources[p]["Properties"]["Roles"] for p in policies] == [[{"Ref": role_id}]], \
        "the role's policy exists before the first run"
    assert role_id not in schedule["DependsOn"], "RoleArn references the role already (cfn-lint W3005)"
    (trust,) = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = synth.role_statements(role_id)
    assert allowed_actions(statements) == {"lambda:InvokeFunction", "sqs:SendMessage", "kms:Decrypt",
                                           "kms:GenerateDataKey"}
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert as_list(invoke["Resource"]) == [{"Fn::GetAtt": [synth.function_ids()[REPORTS.name], "Arn"]}]


def test_a_scheduled_function_fails_into_the_queue(synth: Synth[ComplaintsStack]) -> None:
    function_id = synth.function_ids()[REPORTS.name]
    configs = [c["Properties"] for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
               if c["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert [c["DestinationConfig"]["OnFailure"]["Destination"] for c in configs] == [
        synth.resolve(synth.stack.operations.failures.queue_arn)]


def test_cdk_nag_accepts_the_schedules(synth: Synth[ComplaintsStack]) -> None:
    report = AwsSolutionsChecks().validate_scope(synth.app)
    assert [f"{v.rule_name} at {[r.construct_path for r in v.violating_resources]}"
            for v in report.violations] == []
