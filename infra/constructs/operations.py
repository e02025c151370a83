"""Where the stack reports trouble, and what it watches.

``Operations`` is created first: its failure queue is where asynchronous invocations
(intake from SES, scheduled functions) end up after their retries. ``watch`` is called
last, when everything it alarms on exists. docs/deploy.md has a runbook entry per alarm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.nag import acknowledge

# The powertools Metrics of shared/runtime/observability.py: namespace, and the one
# dimension it adds to every metric (service).
METRICS_NAMESPACE = "Complaints"
METRICS_DIMENSIONS = {"service": "complaints"}
# Custom metrics the alarms read. Emitted by the handlers (one data point of 1 per event).
NEEDS_ATTENTION_METRIC = "NeedsAttention"  # a case was parked in needs_attention
DEADLINE_BREACHED_METRIC = "DeadlineBreached"  # a milestone's deadline passed unmet
FAILED_INVOCATION_RETENTION = Duration.days(14)  # SQS's maximum: two weeks to look at a failure


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: what it watches and when it fires (at or above ``threshold``)."""

    name: str
    description: str
    metric: cloudwatch.IMetric
    threshold: float = 1


class Operations(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarm_emails: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Failed events carry what the function was given (an SES event names sender and
        # subject): a customer-managed key, used through SNS and SQS only.
        self.key = kms.Key(self, "Key", description=f"{stack.stack_name} alarms and failed invocations",
                           enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY)
        # CloudWatch publishes alarms to the encrypted topic as itself: it needs the key.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        ))
        self.topic = sns.Topic(self, "Alarms", display_name=f"{stack.stack_name} alarms", master_key=self.key,
                               enforce_ssl=True)
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowThisAccountsAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account},
                        "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm",
                                                                      resource_name="*",
                                                                      arn_format=ArnFormat.COLON_RESOURCE_NAME)}},
        ))
        for address in alarm_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))

        self.failures = sqs.Queue(
            self, "FailedInvocations",
            encryption=sqs.QueueEncryption.KMS, encryption_master_key=self.key,
            enforce_ssl=True, retention_period=FAILED_INVOCATION_RETENTION,
        )
        acknowledge(self.failures, "AwsSolutions-SQS3",
                    "This queue is itself the end of the line: the failure destination of asynchronous "
                    "invocations and the dead-letter queue of schedules. Messages are examined and replayed "
                    "by an operator (docs/deploy.md runbook); a further DLQ would only move them.")
        self.alarms: list[cloudwatch.Alarm] = []

    def grant_failure_delivery(self, role: iam.IRole) -> None:
        """Let a Lambda (failure destination) or a schedule (DLQ) put a failed event on the queue."""
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["sqs:SendMessage"], resources=[self.failures.queue_arn]))
        # SQS encrypts with the key as the sender: only through SQS.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"sqs.{Stack.of(self).region}.amazonaws.com"}}))

    def watch(self, *, state_machine: sfn.StateMachine, functions: Mapping[str, lambda_.Function],
              api: apigwv2.HttpApi, table: dynamodb.Table) -> None:
        """Alarms to the topic, and one dashboard with the same figures."""
        five_minutes = Duration.minutes(5)
        specs = [
            AlarmSpec("ExecutionsFailed",
                      "A complaint's execution failed: a case parked in needs_attention ends this way, "
                      "and so does any error the state machine did not catch.",
                      state_machine.metric_failed(period=five_minutes, statistic="Sum")),
            AlarmSpec("ExecutionsTimedOut", "A complaint's execution reached its time limit (a Standard "
                      "execution's year: the lifecycle sets none of its own).",
                      state_machine.metric_timed_out(period=five_minutes, statistic="Sum")),
            AlarmSpec("FailedInvocations",
                      "An asynchronous invocation (mail intake, a schedule) failed after its retries and its "
                      "event is waiting in the failed-invocations queue.",
                      self.failures.metric_approximate_number_of_messages_visible(period=five_minutes,
                                                                                 statistic="Maximum")),
            AlarmSpec("NeedsAttention", "A case was parked in needs_attention; the brand CR center was mailed.",
                      _custom_metric(NEEDS_ATTENTION_METRIC, five_minutes)),
            AlarmSpec("DeadlineBreached", "A case missed a deadline in the last hour and was escalated.",
                      _custom_metric(DEADLINE_BREACHED_METRIC, Duration.hours(1))),
            AlarmSpec("ApiServerErrors", "The HTTP API (link pages, staff API) answered 5xx at least 5 times "
                      "in 5 minutes.",
                      api.metric_server_error(period=five_minutes, statistic="Sum"), threshold=5),
        ]
        action = cloudwatch_actions.SnsAction(self.topic)
        stack_name = Stack.of(self).stack_name
        for spec in specs:
            alarm = cloudwatch.Alarm(
                self, f"{spec.name}Alarm", alarm_name=f"{stack_name}-{spec.name}",
                alarm_description=f"{spec.description} Runbook: docs/deploy.md, section 'Alarms', {spec.name}.",
                metric=spec.metric, threshold=spec.threshold, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms.append(alarm)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=stack_name, default_interval=Duration.days(1),
            widgets=_dashboard(self.alarms, state_machine, functions, api, table, self.failures))


def _custom_metric(name: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map=METRICS_DIMENSIONS,
                             statistic="Sum", period=period)


def _dashboard(alarms: Sequence[cloudwatch.IAlarm], state_machine: sfn.StateMachine,
               functions: Mapping[str, lambda_.Function], api: apigwv2.HttpApi, table: dynamodb.Table,
               failures: sqs.Queue) -> list[list[cloudwatch.IWidget]]:
    five_minutes = Duration.minutes(5)
    by_function = functions.items()
    return [
        [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=3)],
        [
            cloudwatch.GraphWidget(title="Complaint executions", width=8, left=[
                state_machine.metric_started(period=five_minutes, statistic="Sum"),
                state_machine.metric_succeeded(period=five_minutes, statistic="Sum"),
                state_machine.metric_failed(period=five_minutes, statistic="Sum"),
                state_machine.metric_timed_out(period=five_minutes, statistic="Sum"),
            ]),
            cloudwatch.GraphWidget(title="Cases needing attention, deadlines breached", width=8, left=[
                _custom_metric(NEEDS_ATTENTION_METRIC, five_minutes),
                _custom_metric(DEADLINE_BREACHED_METRIC, five_minutes),
            ]),
            cloudwatch.GraphWidget(title="Mail received, by disposition", width=8, left=[
                # Every Intake_<disposition> metric intake emits, without listing them here: an
                # unquoted term matches a token of the name (quotes would mean the exact name).
                cloudwatch.MathExpression(
                    expression=f"SEARCH('{{{METRICS_NAMESPACE},service}} Intake', 'Sum', 300)",
                    using_metrics={}, label="", period=five_minutes),
            ]),
        ],
        [
            cloudwatch.GraphWidget(title="Lambda errors", width=8, left=[
                fn.metric_errors(period=five_minutes, statistic="Sum", label=name) for name, fn in by_function]),
            cloudwatch.GraphWidget(title="Lambda throttles", width=8, left=[
                fn.metric_throttles(period=five_minutes, statistic="Sum", label=name) for name, fn in by_function]),
            cloudwatch.GraphWidget(title="Lambda duration p95", width=8, left=[
                fn.metric_duration(period=five_minutes, statistic="p95", label=name) for name, fn in by_function]),
        ],
        [
            cloudwatch.GraphWidget(title="HTTP API requests and errors", width=8, left=[
                api.metric_count(period=five_minutes, statistic="Sum"),
                api.metric_client_error(period=five_minutes, statistic="Sum"),
                api.metric_server_error(period=five_minutes, statistic="Sum"),
            ]),
            cloudwatch.GraphWidget(title="HTTP API latency p95", width=8, left=[
                api.metric_latency(period=five_minutes, statistic="p95"),
                api.metric_integration_latency(period=five_minutes, statistic="p95"),
            ]),
            cloudwatch.GraphWidget(title="Failed invocations waiting; table throttling", width=8, left=[
                failures.metric_approximate_number_of_messages_visible(period=five_minutes, statistic="Maximum"),
            ], right=[
                table.metric("ReadThrottleEvents", period=five_minutes, statistic="Sum"),
                table.metric("WriteThrottleEvents", period=five_minutes, statistic="Sum"),
            ]),
        ],
    ]
