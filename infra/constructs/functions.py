"""One Lambda per catalog entry, each with its own role granted only what its spec asks for."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra import catalog
from infra.catalog import FunctionSpec
from infra.constructs.data import RAW_MAIL_PREFIX, DataStore
from infra.constructs.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_11  # the interpreter the project is tested on (pyproject: >=3.11)
SERVICE_NAME = "complaints"
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS  # operational logs; the case timeline is the record

# What the Lambda package must not carry: tooling, tests, local state, the CDK output
# itself (staging cdk.out into cdk.out would recurse).
ASSET_EXCLUDES = [
    ".venv", ".git", ".ci", "tests", "cdk.out", "node_modules", "docs", "benchmarks",
    "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".local-state",
    "*.egg-info", "infra", "stepfunctions", "cdk.json", "cdk.context.json", "Makefile",
    "pyproject.toml", "README.md", ".gitignore", ".env*",
]

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
    """The catalog's Lambdas. ``by_name`` maps each spec's logical name to its function."""

    def __init__(self, scope: Construct, construct_id: str, *, data: DataStore, mail_domains: Sequence[str],
                 stage: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # One asset for all functions: functions/ + shared/. Third-party packages
        # (pynamodb, powertools, pydantic, ...) are not bundled yet: a local
        # `pip install --platform manylinux2014_x86_64 --only-binary=:all: --target`
        # bundling step (no Docker) is a later issue; until then the functions only
        # have what the Lambda runtime ships (boto3).
        code = lambda_.Code.from_asset(str(catalog.ROOT), exclude=ASSET_EXCLUDES)
        self.link_secret = secretsmanager.Secret(
            self, "LinkSecret", description="HMAC key of link form tokens",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64,
                                                                        exclude_punctuation=True),
            removal_policy=RemovalPolicy.DESTROY if stage == "dev" else RemovalPolicy.RETAIN,
        )
        acknowledge(self.link_secret, "AwsSolutions-SMG4",
                    "Rotating the HMAC key invalidates every form token of every link in flight; rotation "
                    "with a grace period for the previous key is a later issue.")
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
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                environment={
                    "COMPLAINTS_TABLE_NAME": data.table.table_name,
                    "COMPLAINTS_RAW_BUCKET": data.raw_bucket.bucket_name,
                    "COMPLAINTS_RAW_PREFIX": RAW_MAIL_PREFIX,  # where the receipt rule stores mail
                    "COMPLAINTS_REGION": stack.region,
                    "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                    # Settings require it in every function (validated at cold start). A
                    # CloudFormation dynamic reference: the value never enters the template.
                    "COMPLAINTS_LINK_SECRET": self.link_secret.secret_value.unsafe_unwrap(),
                },
            )
            for statement in _statements(spec, data, mail_domains):
                role.add_to_principal_policy(statement)
            acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                        "Only the X-Ray statement that active tracing adds (xray:PutTraceSegments, "
                        "xray:PutTelemetryRecords): X-Ray has no resource-level permissions.")
            if spec.needs_raw_bucket_read or spec.needs_raw_bucket_write:
                acknowledge(role, f"AwsSolutions-IAM5[Resource::<{_logical_id(data.raw_bucket)}.Arn>/*]",
                            "Object actions (s3:GetObject/PutObject) on the raw-mail bucket's objects: "
                            "each received mail is its own key, named by SES.")
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
