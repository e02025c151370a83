"""The complaint lifecycle state machine, loaded from its ASL file.

The ASL is the same file the local runtime executes; only its ``${Placeholders}``
differ (catalog.substitutions fills them with the deployed functions' ARNs here).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import catalog
from infra.constructs.functions import LOG_RETENTION, Functions
from infra.constructs.nag import REDUNDANT_DEPENDS_ON, acknowledge, lint_ignore

TASK_RESPONSE_ACTIONS = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]


class Lifecycle(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, name: str, asl: Path, functions: Functions,
                 stage: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        arns = {spec_name: fn.function_arn for spec_name, fn in functions.by_name.items()}
        # The vendedlogs prefix keeps Step Functions' log delivery off the account's
        # CloudWatch Logs resource-policy size limit.
        log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-{name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY if stage == "dev" else RemovalPolicy.RETAIN,
        )
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=f"{stack.stack_name}-{name}",
            definition_body=sfn.DefinitionBody.from_file(str(asl)),
            definition_substitutions=catalog.substitutions(arns),
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Execution data holds customer names and addresses: keep it out of the logs
            # (the case timeline in DynamoDB is the readable record).
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
        )
        lint_ignore(self.state_machine, REDUNDANT_DEPENDS_ON)
        # Exactly the functions the ASL names, unqualified ARNs (no ":*" version wildcard).
        invoked = [functions.by_name[spec.name].function_arn for spec in catalog.FUNCTIONS if spec.substitution]
        self.state_machine.add_to_role_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                                                  resources=invoked))
        acknowledge(self.state_machine.role, "AwsSolutions-IAM5[Resource::*]",
                    "Only CloudWatch Logs delivery (logs:CreateLogDelivery, ...) and X-Ray statements that "
                    "logging and tracing add: neither service supports resource-level permissions there.")

        # Callers of the state machine get their grants as separate policies, not in the
        # function's default policy: a function the machine invokes (human_task) must
        # exist before the machine, and its default policy is part of its creation, so
        # naming the machine there would be a dependency cycle.
        for spec in catalog.FUNCTIONS:
            statements: list[iam.PolicyStatement] = []
            fn = functions.by_name[spec.name]
            if spec.starts_executions:
                statements.append(iam.PolicyStatement(actions=["states:StartExecution"],
                                                      resources=[self.state_machine.state_machine_arn]))
                fn.add_environment("COMPLAINTS_STATE_MACHINE_ARN", self.state_machine.state_machine_arn)
            if spec.sends_task_results:
                statements.append(iam.PolicyStatement(actions=TASK_RESPONSE_ACTIONS,
                                                      resources=[self.state_machine.state_machine_arn]))
            if statements and fn.role is not None:
                iam.Policy(self, f"{spec.name}Access", roles=[fn.role], statements=statements)
