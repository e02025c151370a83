"""EventBridge Scheduler: one schedule per catalog function that has a ``schedule``.

Adding ``schedule=Schedule("cron(0 8 1 * ? *)", timezone="Asia/Shanghai")`` to a catalog
entry is all it takes: the schedule, a role that may invoke that one function, retries,
and the failure queue as dead-letter queue. Without such entries this creates nothing.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra import catalog
from infra.constructs.functions import Functions
from infra.constructs.operations import Operations

RETRY_ATTEMPTS = 3
MAX_EVENT_AGE_S = 3600  # a schedule that could not run for an hour waits in the failure queue


class Schedules(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, functions: Functions,
                 operations: Operations) -> None:
        super().__init__(scope, construct_id)
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        scheduled = [spec for spec in catalog.FUNCTIONS if spec.schedule is not None]
        if not scheduled:
            return
        stack = Stack.of(self)
        group = scheduler.CfnScheduleGroup(self, "Group", name=stack.stack_name)
        for spec in scheduled:
            assert spec.schedule is not None
            fn = functions.by_name[spec.name]
            # One role per schedule, trusted by this account's Scheduler only: it can
            # invoke this function (unqualified: no version wildcard) and nothing else.
            role = iam.Role(self, f"{spec.name}Role", description=f"{stack.stack_name} {spec.name} schedule",
                            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                                "StringEquals": {"aws:SourceAccount": stack.account}}))
            role.add_to_principal_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                                             resources=[fn.function_arn]))
            operations.grant_failure_delivery(role)
            schedule = scheduler.CfnSchedule(
                self, spec.name,
                name=f"{stack.stack_name}-{spec.name}",
                group_name=group.name,
                description=spec.description,
                schedule_expression=spec.schedule.expression,
                schedule_expression_timezone=spec.schedule.timezone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=fn.function_arn, role_arn=role.role_arn, input=spec.schedule.payload,
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=RETRY_ATTEMPTS, maximum_event_age_in_seconds=MAX_EVENT_AGE_S),
                    dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                        arn=operations.failures.queue_arn),
                ),
            )
            schedule.add_dependency(group)
            # Its policy must exist before the first run; the role itself is referenced (RoleArn)
            # already, and a DependsOn on it would be redundant (cfn-lint W3005).
            policy = role.node.try_find_child("DefaultPolicy")
            assert policy is not None
            schedule.node.add_dependency(policy)
            self.schedules[spec.name] = schedule
