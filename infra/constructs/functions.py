"""One Lambda per catalog entry, each with its own role granted only what its spec asks for."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from aws_cdk import CfnElement, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import catalog
from infra.catalog import FunctionSpec
from infra.constructs.bundling import RUNTIME
from infra.constructs.data import RAW_MAIL_PREFIX, DataStore
from infra.constructs.nag import REDUNDANT_DEPENDS_ON, acknowledge, lint_ignore
from infra.constructs.operations import Operations

SERVICE_NAME = "complaints"
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS  # operational logs; the case timeline is the record
# Asynchronous invocations (SES, schedules): Lambda retries twice, keeps an event up to
# six hours (a throttled intake waits rather than drops mail), then the failure queue.
ASYNC_RETRIES = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)

# Item-level reads and writes only: the design forbids Scan, and nothing at run time
# creates, changes or deletes tables. Transactions are authorised per item action.
TABLE_ACTIONS = [
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
]


def lambda_handler(dotted: str) -> str:
    """``functions.x.handler.handler`` -> ``functions/x/handler.handler`` (Lambda's form)."""
    module, _, attribute = dotted.rpartition(".")
    if not module or not attribute:
        raise ValueError(f"handler {dotted!r} is not 'package.module.callable'")
    return f"{module.replace('.', '/')}.{attribute}"


class Functions(Construct):
    """The catalog's Lambdas. ``by_name`` maps each spec's logical name to its function.

    ``asynchronous`` names the functions invoked with ``InvocationType=Event`` (by SES, by
    a schedule): only those get a failure destination, and the right to use it.
    """

    def __init__(self, scope: Construct, construct_id: str, *, code: lambda_.Code, data: DataStore,
                 operations: Operations, asynchronous: Collection[str], mail_domains: Sequence[str], stage: str,
                 brand_id: str, link_secret_version: str | None = None) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # The HMAC key is an environment variable: with a customer-managed key, only principals
        # that may decrypt with this key can read the functions' configuration (or the secret)
        # in clear.
        self.environment_key = kms.Key(
            self, "EnvironmentKey", description=f"{stack.stack_name} Lambda environment and link HMAC key",
            enable_key_rotation=True,
            # A retained secret stays readable only while its key lives.
            removal_policy=RemovalPolicy.DESTROY if stage == "dev" else RemovalPolicy.RETAIN,
        )
        self.link_secret = secretsmanager.Secret(
            self, "LinkSecret", description="HMAC key of link form tokens", encryption_key=self.environment_key,
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64,
                                                                        exclude_punctuation=True),
            removal_policy=RemovalPolicy.DESTROY if stage == "dev" else RemovalPolicy.RETAIN,
        )
        acknowledge(self.link_secret, "AwsSolutions-SMG4",
                    "The functions receive the key at deployment (a CloudFormation dynamic reference), so an "
                    "automatic rotation would not reach them. It is rotated by hand: put a new value, then "
                    "deploy with link_secret_version set to its version id (docs/deploy.md). Rotation only "
                    "invalidates link pages open at that moment; the links in mails keep working.")
        # Resolved by CloudFormation at deployment: the value never enters the template.
        # Naming a version makes a rotation a template change, which redeploys the functions.
        link_secret = (SecretValue.secrets_manager(self.link_secret.secret_arn, version_id=link_secret_version)
                       if link_secret_version else self.link_secret.secret_value)
        self.by_name: dict[str, lambda_.Function] = {}
        for spec in catalog.FUNCTIONS:
            scope_ = Construct(self, spec.name)
            log_group = logs.LogGroup(
                scope_, "Logs", retention=LOG_RETENTION,
                removal_policy=RemovalPolicy.DESTROY if stage == "dev" else RemovalPolicy.RETAIN,
            )
            # An own role rather than AWSLambdaBasicExecutionRole: logs go to this
            # function's log group only, not to any log group in the account.
            role = iam.Role(scope_, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                            description=f"{stack.stack_name} {spec.name} Lambda")
            log_group.grant_write(role)
            fn = lambda_.Function(
                scope_, "Function",
                function_name=f"{stack.stack_name}-{spec.name}",
                description=spec.description,
                runtime=RUNTIME,
                handler=lambda_handler(spec.handler),
                code=code,
                memory_size=spec.memory_mb,
                timeout=Duration.seconds(spec.timeout_s),
                reserved_concurrent_executions=spec.reserved_concurrency,
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                environment_encryption=self.environment_key,
                environment={
                    "COMPLAINTS_TABLE_NAME": data.table.table_name,
                    "COMPLAINTS_RAW_BUCKET": data.raw_bucket.bucket_name,
                    "COMPLAINTS_RAW_PREFIX": RAW_MAIL_PREFIX,  # where the receipt rule stores mail
                    "COMPLAINTS_REGION": stack.region,
                    "COMPLAINTS_BRAND_ID": brand_id,
                    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                    # Settings require it in every function (validated at cold start).
                    "COMPLAINTS_LINK_SECRET": link_secret.unsafe_unwrap(),
                },
            )
            for statement in _statements(spec, data, mail_domains):
                role.add_to_principal_policy(statement)
            # Lambda decrypts the environment as the function's role.
            role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:Decrypt"],
                                                             resources=[self.environment_key.key_arn]))
            if spec.name in asynchronous:
                operations.grant_failure_delivery(role)
                config = lambda_.CfnEventInvokeConfig(
                    scope_, "AsyncInvokeConfig",
                    function_name=fn.function_name, qualifier="$LATEST",
                    maximum_retry_attempts=ASYNC_RETRIES,
                    maximum_event_age_in_seconds=int(ASYNC_MAX_EVENT_AGE.to_seconds()),
                    destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                        on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                            destination=operations.failures.queue_arn)),
                )
                # Lambda checks the role may send to the destination when the config is made.
                config.node.add_dependency(role)
            acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                        "Only the X-Ray statement that active tracing adds (xray:PutTraceSegments, "
                        "xray:PutTelemetryRecords): X-Ray has no resource-level permissions.")
            if spec.needs_raw_bucket_read or spec.needs_raw_bucket_write:
                acknowledge(role, f"AwsSolutions-IAM5[Resource::<{_logical_id(data.raw_bucket)}.Arn>/*]",
                            "Object actions (s3:GetObject/PutObject) on the raw-mail bucket's objects: "
                            "each received mail is its own key, named by SES.")
            lint_ignore(fn, REDUNDANT_DEPENDS_ON)
            acknowledge(fn, "AwsSolutions-L1",
                        "Pinned to Python 3.11, the interpreter the code base and its tests target; "
                        "moving runtimes is a deliberate upgrade, not a side effect of a CDK bump.")
            self.by_name[spec.name] = fn


def _statements(spec: FunctionSpec, data: DataStore, mail_domains: Sequence[str]) -> list[iam.PolicyStatement]:
    """The permissions a spec's flags ask for, each scoped to named resources."""
    stack = Stack.of(data)
    statements: list[iam.PolicyStatement] = []
    if spec.needs_table:
        statements.append(iam.PolicyStatement(
            actions=TABLE_ACTIONS, resources=[data.table.table_arn, *data.index_arns()]))
        statements.append(_key_use(data.table_key.key_arn, "dynamodb", stack,
                                   ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]))
    mail_key_actions: list[str] = []
    if spec.needs_raw_bucket_read:
        statements.append(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[data.raw_bucket.arn_for_objects("*")]))
        mail_key_actions.append("kms:Decrypt")
    if spec.needs_raw_bucket_write:
        statements.append(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[data.raw_bucket.arn_for_objects("*")]))
        mail_key_actions.append("kms:GenerateDataKey")
    if mail_key_actions:
        statements.append(_key_use(data.mail_key.key_arn, "s3", stack, sorted(set(mail_key_actions))))
    if spec.sends_mail:
        # Out of the SES sandbox SES authorises the sending identity only (in the sandbox it
        # also checks verified recipients, which this policy deliberately does not list).
        statements.append(iam.PolicyStatement(
            actions=["ses:SendRawEmail"],
            resources=[stack.format_arn(service="ses", resource="identity", resource_name=domain)
                       for domain in mail_domains]))
    return statements


def _logical_id(construct: Construct) -> str:
    """How cdk-nag names a resource in a finding: its CloudFormation logical id."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnElement)
    return str(Stack.of(construct).resolve(resource.logical_id))


def _key_use(key_arn: str, via: str, stack: Stack, actions: list[str]) -> iam.PolicyStatement:
    # kms:ViaService: the key serves this function only through the data service, never directly.
    return iam.PolicyStatement(
        actions=actions, resources=[key_arn],
        conditions={"StringEquals": {"kms:ViaService": f"{via}.{stack.region}.amazonaws.com"}})
