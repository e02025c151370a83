"""The case table and the raw-mail bucket.

The table is built from the pynamodb model (``shared.adapters.table.Item``): keys,
attribute types and indexes come from the same create-table schema that pynamodb sends
to moto locally, so the deployed table cannot drift from what the code queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.aws_dynamodb import Attribute, AttributeType, ProjectionType
from constructs import Construct
from pynamodb.models import Model

from infra.constructs.nag import acknowledge

_ATTRIBUTE_TYPES = {"S": AttributeType.STRING, "N": AttributeType.NUMBER, "B": AttributeType.BINARY}
_PROJECTIONS = {"ALL": ProjectionType.ALL, "KEYS_ONLY": ProjectionType.KEYS_ONLY, "INCLUDE": ProjectionType.INCLUDE}
RAW_MAIL_PREFIX = "raw/"  # the receipt rule stores mail here; functions get it as COMPLAINTS_RAW_PREFIX
# Retention (architecture.md: raw mail is evidence, kept for ever). Nothing in the system
# reads a mail after its case is registered except on request, so after half a year it
# moves to Glacier Instant Retrieval (still read in milliseconds; S3 leaves objects under
# 128 KB where they are). The system never overwrites or deletes a mail: a previous
# version exists only after an operator deleted one (an erasure request), and stays a
# year as the undo window.
RAW_MAIL_ARCHIVE_AFTER = Duration.days(180)
RAW_MAIL_DELETED_KEPT = Duration.days(365)
ACCESS_LOGS_KEPT = Duration.days(365)


@cache
def case_model() -> type[Model]:
    """The pynamodb model of the case table (``shared.adapters.table.Item``)."""
    from shared.adapters.table import Item

    return Item


@dataclass(frozen=True)
class GlobalIndex:
    name: str
    partition_key: Attribute
    sort_key: Attribute | None
    projection: ProjectionType
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSchema:
    partition_key: Attribute
    sort_key: Attribute | None
    global_indexes: tuple[GlobalIndex, ...]


def table_schema(model: type[Model]) -> TableSchema:
    """Keys and GSIs of ``model`` as CDK attributes.

    ``_get_schema`` is the create-table request pynamodb builds from the model itself
    (``Model.create_table`` sends it): reading it rather than re-deriving the schema
    keeps one translation of the model, the one DynamoDB already accepts.
    """
    schema = model._get_schema()
    types = {d["AttributeName"]: _ATTRIBUTE_TYPES[d["AttributeType"]] for d in schema["attribute_definitions"]}

    def keys(key_schema: Sequence[Mapping[str, object]]) -> tuple[Attribute, Attribute | None]:
        by_role = {str(k["KeyType"]): str(k["AttributeName"]) for k in key_schema}
        hash_name, range_name = by_role["HASH"], by_role.get("RANGE")
        return (Attribute(name=hash_name, type=types[hash_name]),
                Attribute(name=range_name, type=types[range_name]) if range_name else None)

    partition_key, sort_key = keys(schema["key_schema"])
    indexes = []
    for gsi in sorted(schema["global_secondary_indexes"], key=lambda g: g["index_name"]):
        gsi_pk, gsi_sk = keys(gsi["key_schema"])
        projection = gsi["projection"]
        indexes.append(GlobalIndex(
            name=gsi["index_name"], partition_key=gsi_pk, sort_key=gsi_sk,
            projection=_PROJECTIONS[projection["ProjectionType"]],
            non_key_attributes=tuple(projection.get("NonKeyAttributes", ())),
        ))
    if schema["local_secondary_indexes"]:
        raise ValueError("the model declares LSIs; teach table_schema to build them before deploying")
    return TableSchema(partition_key, sort_key, tuple(indexes))


class DataStore(Construct):
    """Table (system of record) and raw-mail bucket (claim check, kept for ever)."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str) -> None:
        super().__init__(scope, construct_id)
        disposable = stage == "dev"  # a dev stack may be torn down with its data; others may not

        # Two keys: SES may use the mail key, and nothing but our functions touches the table key.
        self.table_key = kms.Key(
            self, "TableKey", description="Complaint case table", enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY if disposable else RemovalPolicy.RETAIN,
        )
        self.mail_key = kms.Key(
            self, "MailKey", description="Raw received mail", enable_key_rotation=True,
            # Retained mail stays readable only while its key lives.
            removal_policy=RemovalPolicy.RETAIN,
        )
        # SES writes as itself into an SSE-KMS bucket, so it needs the key; only for this
        # account. Encrypt only: reading mail back takes kms:Decrypt, which SES never gets.
        self.mail_key.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowSesToStoreReceivedMail",
            principals=[iam.ServicePrincipal("ses.amazonaws.com")],
            actions=["kms:Encrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy "*" means this key
            conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
        ))

        model = case_model()
        schema = table_schema(model)
        self.index_names = tuple(i.name for i in schema.global_indexes)
        self.table = dynamodb.Table(
            self, "Table",
            partition_key=schema.partition_key,
            sort_key=schema.sort_key,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.table_key,
            time_to_live_attribute=model.expires_at.attr_name,  # type: ignore[attr-defined]
            deletion_protection=not disposable,
            removal_policy=RemovalPolicy.DESTROY if disposable else RemovalPolicy.RETAIN,
        )
        for index in schema.global_indexes:
            self.table.add_global_secondary_index(
                index_name=index.name, partition_key=index.partition_key, sort_key=index.sort_key,
                projection_type=index.projection,
                non_key_attributes=list(index.non_key_attributes) or None,
            )

        # S3 server access logs may only go to an SSE-S3 bucket.
        access_logs = s3.Bucket(
            self, "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            lifecycle_rules=[s3.LifecycleRule(id="Expire", expiration=ACCESS_LOGS_KEPT)],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(access_logs, "AwsSolutions-S1",
                    "This is the access-log sink of the raw-mail bucket; logging it into itself would loop.")
        self.raw_bucket = s3.Bucket(
            self, "RawMail",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.mail_key,
            bucket_key_enabled=True,  # one KMS call per bucket key, not per mail
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="Archive", transitions=[s3.Transition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                    transition_after=RAW_MAIL_ARCHIVE_AFTER)]),
                s3.LifecycleRule(id="ForgetDeleted", noncurrent_version_expiration=RAW_MAIL_DELETED_KEPT,
                                 expired_object_delete_marker=True,
                                 abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="raw-mail/",
            removal_policy=RemovalPolicy.RETAIN,  # raw mail is evidence: kept for ever
        )

    def index_arns(self) -> list[str]:
        """The table's GSI ARNs by name: grants name each index rather than ``index/*``."""
        return [f"{self.table.table_arn}/index/{name}" for name in self.index_names]
