"""CDK template assertions: the synthesised stack agrees with the model, the catalog and the ASL,
and grants nothing it does not need.

The app is built and synthesised once per module (without installing the Lambda
dependencies: no network); every test reads that one template. cdk-nag runs as part of
the synthesis, and cfn-lint reads the template file it wrote.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnElement, Stack
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from constructs import Construct
from pynamodb.attributes import Attribute
from pynamodb.indexes import GlobalSecondaryIndex

from infra import catalog
from infra.app import DEFAULT_BRAND_ID, DEFAULT_MAIL_DOMAINS, build_app
from infra.constructs import operations
from infra.constructs.data import RAW_MAIL_PREFIX, DataStore, case_model
from infra.constructs.staff import StaffDirectory
from infra.stack import INTAKE, LIFECYCLE, ComplaintsStack
from tests.infra.support import Synth, acknowledgements, allowed_actions, as_list, statements_of

Item: Any = case_model()  # shared.adapters.table.Item, which reads no settings

PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
TASK_RESPONSES = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
# The only statements allowed on Resource "*": services without resource-level permissions.
UNSCOPABLE_PREFIXES = ("xray:", "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                       "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                       "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")
# What an access log line may hold: no path (link ids), no query string, no caller identity.
ACCESS_LOG_VARIABLES = {"$context.requestId", "$context.requestTime", "$context.routeKey", "$context.status",
                        "$context.responseLength", "$context.integrationLatency",
                        "$context.integrationErrorMessage", "$context.authorizer.error"}
LINT_REGION = "ap-northeast-1"  # settings' default region; `make cfn-lint` checks every SES receiving region


def _stand_in_asl() -> dict[str, Any]:
    """A minimal lifecycle using every catalog placeholder, for when the real ASL is absent."""
    placeholders = [spec.substitution for spec in catalog.FUNCTIONS if spec.substitution]
    states: dict[str, Any] = {}
    for i, name in enumerate(placeholders):
        state: dict[str, Any] = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                 "Parameters": {"FunctionName": f"${{{name}}}", "Payload.$": "$"}}
        if i + 1 < len(placeholders):
            state["Next"] = placeholders[i + 1]
        else:
            state["End"] = True
        states[name] = state
    return {"Comment": "stand-in for tests", "StartAt": placeholders[0], "States": states}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth[ComplaintsStack]]:
    with pytest.MonkeyPatch.context() as patch:
        asl = catalog.STATE_MACHINES[LIFECYCLE]
        if not asl.exists():
            stand_in = tmp_path_factory.mktemp("asl") / asl.name
            stand_in.write_text(json.dumps(_stand_in_asl()), encoding="utf-8")
            patch.setitem(catalog.STATE_MACHINES, LIFECYCLE, stand_in)
        outdir = tmp_path_factory.mktemp("cdk.out")
        app, stack = build_app(context={"bundle": False}, outdir=str(outdir))
        yield Synth.of(app, stack, outdir)


def _asynchronous() -> set[str]:
    return {INTAKE, *(spec.name for spec in catalog.FUNCTIONS if spec.schedule)}


# ----- table ----------------------------------------------------------------------------------------

def _key_schema(attributes: dict[str, Attribute[Any]]) -> list[dict[str, str]]:
    hash_key = next(a for a in attributes.values() if a.is_hash_key)
    range_keys = [a for a in attributes.values() if a.is_range_key]
    return [{"AttributeName": hash_key.attr_name, "KeyType": "HASH"},
            *({"AttributeName": a.attr_name, "KeyType": "RANGE"} for a in range_keys)]


def test_table_keys_and_indexes_are_the_models(synth: Synth[ComplaintsStack]) -> None:
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    # Expected values read from the model's public surface, independently of table_schema().
    model_attributes = Item.get_attributes()
    indexes = [i for _, i in inspect.getmembers(Item, lambda m: isinstance(m, GlobalSecondaryIndex))]
    assert indexes, "the model declares GSIs; the lookup must find them"
    key_attributes = {a.attr_name: a.attr_type for a in model_attributes.values() if a.is_hash_key or a.is_range_key}
    for index in indexes:
        key_attributes |= {a.attr_name: a.attr_type for a in index.Meta.attributes.values()}

    assert props["KeySchema"] == _key_schema(model_attributes)
    assert {(d["AttributeName"], d["AttributeType"]) for d in props["AttributeDefinitions"]} == set(
        key_attributes.items())
    expected_gsis = {}
    for index in indexes:
        projection: dict[str, Any] = {"ProjectionType": index.Meta.projection.projection_type}
        if getattr(index.Meta.projection, "non_key_attributes", None):
            projection["NonKeyAttributes"] = list(index.Meta.projection.non_key_attributes)
        expected_gsis[index.Meta.index_name] = {"KeySchema": _key_schema(index.Meta.attributes),
                                                "Projection": projection}
    assert {g["IndexName"]: {"KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]} == expected_gsis


def test_table_is_on_demand_recoverable_encrypted_and_expires_items(synth: Synth[ComplaintsStack]) -> None:
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    sse = props["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    key_id = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert synth.resources[key_id]["Type"] == "AWS::KMS::Key"
    assert props["TimeToLiveSpecification"] == {"AttributeName": Item.expires_at.attr_name, "Enabled": True}
    assert props["DeletionProtectionEnabled"] is False  # the default stage is dev


def test_data_and_staff_outside_dev_are_protected() -> None:
    # Only these constructs: no Lambda asset to stage, so this costs a fraction of a second.
    stack = Stack(App(), "prod")
    DataStore(stack, "Data", stage="prod")
    StaffDirectory(stack, "Staff", stage="prod", threat_protection=True)
    resources = Template.from_stack(stack).to_json()["Resources"]
    (table,) = (r for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table")
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    (pool,) = (r for r in resources.values() if r["Type"] == "AWS::Cognito::UserPool")
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"
    assert pool["DeletionPolicy"] == "Retain"
    keys = [r for r in resources.values() if r["Type"] == "AWS::KMS::Key"]
    assert keys and all(k["DeletionPolicy"] == "Retain" for k in keys), "retained data needs its key"


# ----- raw mail ----------------------------------------------------------------------------------

def test_raw_mail_bucket_is_private_encrypted_versioned_and_kept(synth: Synth[ComplaintsStack]) -> None:
    raw_id = synth.resolve(synth.stack.data.raw_bucket.bucket_name)["Ref"]
    props = synth.resources[raw_id]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert synth.resources[raw_id]["DeletionPolicy"] == "Retain"
    # Retention: current mail is archived, never expired; deleted versions are forgotten after a while.
    rules = props["LifecycleConfiguration"]["Rules"]
    assert not [r for r in rules if "ExpirationInDays" in r or "ExpirationDate" in r], "raw mail is kept for ever"
    assert any(t["StorageClass"] == "GLACIER_IR" for r in rules for t in r.get("Transitions", []))
    assert any("NoncurrentVersionExpiration" in r for r in rules)


def test_only_this_accounts_intake_rule_may_store_mail(synth: Synth[ComplaintsStack]) -> None:
    raw_id = synth.resolve(synth.stack.data.raw_bucket.bucket_name)["Ref"]
    (policy,) = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": raw_id}]
    statements = statements_of(policy)
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    rule_arn = synth.resolve(synth.stack.mail.rule_arn)
    from_the_rule = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}, "aws:SourceArn": rule_arn}}
    ses_grants = [s for s in statements if s.get("Principal") == {"Service": "ses.amazonaws.com"}]
    assert ses_grants, "SES must be allowed to store received mail"
    for s in ses_grants:
        assert (s["Effect"], s["Action"], s["Condition"]) == ("Allow", "s3:PutObject", from_the_rule)
        assert s["Resource"]["Fn::Join"][1][-1] == f"/{RAW_MAIL_PREFIX}*", "only under the rule's prefix"
    # SES may encrypt with the mail key (SSE-KMS), never decrypt.
    mail_key_id = synth.resolve(synth.stack.data.mail_key.key_arn)["Fn::GetAtt"][0]
    key_grants = [s for s in synth.resources[mail_key_id]["Properties"]["KeyPolicy"]["Statement"]
                  if s["Principal"] == {"Service": "ses.amazonaws.com"}]
    assert [sorted(as_list(s["Action"])) for s in key_grants] == [["kms:Encrypt", "kms:GenerateDataKey"]]
    assert key_grants[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_receipt_rule_stores_then_invokes_intake_then_stops(synth: Synth[ComplaintsStack]) -> None:
    ((rule_id, rule),) = synth.of_type("AWS::SES::ReceiptRule").items()
    props = rule["Properties"]["Rule"]
    assert [next(iter(action)) for action in props["Actions"]] == ["S3Action", "LambdaAction", "StopAction"]
    s3_action, lambda_action, _ = (next(iter(action.values())) for action in props["Actions"])
    assert s3_action["BucketName"] == synth.resolve(synth.stack.data.raw_bucket.bucket_name)
    assert s3_action["ObjectKeyPrefix"] == RAW_MAIL_PREFIX
    intake_id = synth.function_ids()[INTAKE]
    assert lambda_action["FunctionArn"] == {"Fn::GetAtt": [intake_id, "Arn"]}
    assert lambda_action["InvocationType"] == "Event"
    assert props["TlsPolicy"] == "Require"
    assert props["ScanEnabled"] is True
    assert props["Recipients"] == list(DEFAULT_MAIL_DOMAINS)
    # SES checks its permissions when the rule is created: they come first, scoped to this rule.
    (permission_id,) = [lid for lid, p in synth.of_type("AWS::Lambda::Permission").items()
                        if p["Properties"]["Principal"] == "ses.amazonaws.com"]
    permission = synth.resources[permission_id]["Properties"]
    assert permission["FunctionName"] == {"Fn::GetAtt": [intake_id, "Arn"]}
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert permission["SourceArn"] == synth.resolve(synth.stack.mail.rule_arn)
    assert permission_id in synth.resources[rule_id]["DependsOn"]


# ----- functions -----------------------------------------------------------------------------------

def test_one_lambda_per_catalog_entry_with_its_handler(synth: Synth[ComplaintsStack]) -> None:
    ids = synth.function_ids()
    assert sorted(ids) == sorted(spec.name for spec in catalog.FUNCTIONS)
    sm_id = synth.resolve(synth.stack.lifecycle.state_machine.state_machine_arn)["Ref"]
    env_key = synth.resolve(synth.stack.functions.environment_key.key_arn)
    for spec in catalog.FUNCTIONS:
        props = synth.resources[ids[spec.name]]["Properties"]
        module, attribute = spec.handler.rsplit(".", 1)
        assert props["Handler"] == f"{module.replace('.', '/')}.{attribute}"
        assert (catalog.ROOT / f"{module.replace('.', '/')}.py").is_file(), f"{spec.name}: no handler module"
        assert props["Runtime"] == "python3.11"
        assert (props["MemorySize"], props["Timeout"]) == (spec.memory_mb, spec.timeout_s)
        assert props.get("ReservedConcurrentExecutions") == spec.reserved_concurrency
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["KmsKeyArn"] == env_key, "the environment holds the link key: customer-managed key"
        env = props["Environment"]["Variables"]
        assert {"COMPLAINTS_TABLE_NAME", "COMPLAINTS_RAW_BUCKET", "COMPLAINTS_REGION",
                "POWERTOOLS_SERVICE_NAME"} <= set(env)
        assert env["COMPLAINTS_RAW_PREFIX"] == RAW_MAIL_PREFIX  # what the receipt rule's S3 action uses
        assert env["COMPLAINTS_BRAND_ID"] == DEFAULT_BRAND_ID
        # The HMAC key arrives as a CloudFormation dynamic reference, never as a literal.
        assert "{{resolve:secretsmanager:" in json.dumps(env["COMPLAINTS_LINK_SECRET"])
        if spec.starts_executions:
            assert env["COMPLAINTS_STATE_MACHINE_ARN"] == {"Ref": sm_id}
        else:
            assert "COMPLAINTS_STATE_MACHINE_ARN" not in env
    assert next(s for s in catalog.FUNCTIONS if s.name == INTAKE).reserved_concurrency, "intake is capped"


def test_each_function_gets_exactly_what_its_spec_asks_for(synth: Synth[ComplaintsStack]) -> None:
    ids = synth.function_ids()
    for spec in catalog.FUNCTIONS:
        actions = allowed_actions(synth.role_statements(synth.role_of(ids[spec.name])))
        granted = {
            "needs_table": any(a.startswith("dynamodb:") for a in actions),
            "needs_raw_bucket_read": "s3:GetObject" in actions,
            "needs_raw_bucket_write": "s3:PutObject" in actions,
            "sends_mail": "ses:SendRawEmail" in actions,
            "starts_executions": "states:StartExecution" in actions,
            "sends_task_results": actions >= TASK_RESPONSES,
        }
        assert granted == {flag: getattr(spec, flag) for flag in granted}, spec.name
        assert ("sqs:SendMessage" in actions) == (spec.name in _asynchronous()), spec.name
        assert "dynamodb:Scan" not in actions, "operational reads are key or index queries"


def test_task_token_permissions_only_where_needed(synth: Synth[ComplaintsStack]) -> None:
    """SendTaskSuccess can move any waiting case on: only the functions that answer tokens hold it,
    only on this state machine."""
    ids = synth.function_ids()
    answering = {synth.role_of(ids[spec.name]) for spec in catalog.FUNCTIONS if spec.sends_task_results}
    sm_ref = synth.resolve(synth.stack.lifecycle.state_machine.state_machine_arn)
    holders = set()
    for role_id, statement in synth.identity_statements():
        if TASK_RESPONSES & set(as_list(statement["Action"])):
            holders.add(role_id)
            assert as_list(statement["Resource"]) == [sm_ref], statement
    assert holders == answering


def test_no_wildcard_actions_and_no_needless_wildcard_resources(synth: Synth[ComplaintsStack]) -> None:
    statements = [s for _, s in synth.identity_statements()]
    assert statements
    for statement in statements:
        actions = as_list(statement["Action"])
        assert not [a for a in actions if "*" in a], statement
        if statement["Resource"] == "*":
            assert all(a.startswith(UNSCOPABLE_PREFIXES) for a in actions), statement


def test_key_use_by_functions_goes_through_the_data_services(synth: Synth[ComplaintsStack]) -> None:
    """A function may use the table and mail keys only through DynamoDB and S3 (kms:ViaService),
    the alarm key only through SQS; the environment key only to decrypt its own configuration."""
    env_key = synth.resolve(synth.stack.functions.environment_key.key_arn)
    ids = synth.function_ids()
    for spec in catalog.FUNCTIONS:
        for statement in synth.role_statements(synth.role_of(ids[spec.name])):
            actions = as_list(statement["Action"])
            if not any(a.startswith("kms:") for a in actions):
                continue
            if statement["Resource"] == env_key:
                assert actions == ["kms:Decrypt"]
            else:
                assert "kms:ViaService" in statement["Condition"]["StringEquals"], statement


# ----- asynchronous invocations, alarms --------------------------------------------------------------

def test_asynchronous_functions_end_in_the_failure_queue(synth: Synth[ComplaintsStack]) -> None:
    ids = synth.function_ids()
    queue = synth.resolve(synth.stack.operations.failures.queue_arn)
    configs = {c["Properties"]["FunctionName"]["Ref"]: c for c in
               synth.of_type("AWS::Lambda::EventInvokeConfig").values()}
    assert set(configs) == {ids[name] for name in _asynchronous()}
    for function_id, config in configs.items():
        props = config["Properties"]
        assert props["DestinationConfig"] == {"OnFailure": {"Destination": queue}}
        assert props["MaximumRetryAttempts"] == 2
        # Lambda checks the destination permission when the config is created.
        role_id = synth.role_of(function_id)
        assert role_id in config["DependsOn"]


def test_alarms_reach_the_encrypted_topic(synth: Synth[ComplaintsStack]) -> None:
    topic_ref = synth.resolve(synth.stack.operations.topic.topic_arn)
    alarms = {a["Properties"]["AlarmName"].removeprefix(f"{synth.stack.stack_name}-"): a["Properties"]
              for a in synth.of_type("AWS::CloudWatch::Alarm").values()}
    assert set(alarms) >= {"ExecutionsFailed", "ExecutionsTimedOut", "FailedInvocations", "NeedsAttention",
                           "DeadlineBreached"}
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [topic_ref] and alarm["OKActions"] == [topic_ref], name
        assert alarm["TreatMissingData"] == "notBreaching", name
    # The metrics the handlers emit through powertools (namespace Complaints, dimension service).
    for name in (operations.NEEDS_ATTENTION_METRIC, operations.DEADLINE_BREACHED_METRIC):
        alarm = alarms[name]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("Complaints", name)
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "complaints"}]
    (topic,) = synth.of_type("AWS::SNS::Topic").values()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key_grants = [s for s in synth.resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
                  if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert key_grants, "CloudWatch must be able to publish to the encrypted topic"
    (topic_policy,) = synth.of_type("AWS::SNS::TopicPolicy").values()
    publishers = [s for s in statements_of(topic_policy["Properties"]["PolicyDocument"]) if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in publishers] == [{"Service": "cloudwatch.amazonaws.com"}]
    assert "aws:SourceAccount" in publishers[0]["Condition"]["StringEquals"]
    assert synth.of_type("AWS::CloudWatch::Dashboard")


def test_encryption_everywhere(synth: Synth[ComplaintsStack]) -> None:
    keys = synth.of_type("AWS::KMS::Key")
    assert keys and all(k["Properties"]["EnableKeyRotation"] is True for k in keys.values())

    def customer_key(ref: Any) -> bool:
        return isinstance(ref, dict) and ref.get("Fn::GetAtt", [None])[0] in keys

    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    assert customer_key(table["Properties"]["SSESpecification"]["KMSMasterKeyId"])
    for bucket in synth.of_type("AWS::S3::Bucket").values():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
    for queue in synth.of_type("AWS::SQS::Queue").values():
        assert customer_key(queue["Properties"]["KmsMasterKeyId"])
    for topic in synth.of_type("AWS::SNS::Topic").values():
        assert customer_key(topic["Properties"]["KmsMasterKeyId"])
    for secret in synth.of_type("AWS::SecretsManager::Secret").values():
        assert customer_key(secret["Properties"]["KmsKeyId"])
    for function in synth.of_type("AWS::Lambda::Function").values():
        assert customer_key(function["Properties"]["KmsKeyArn"])
    # Everything that accepts requests refuses them without TLS.
    for policy_type in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
        for policy in synth.of_type(policy_type).values():
            assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                       for s in statements_of(policy["Properties"]["PolicyDocument"])), policy_type


# ----- workflow --------------------------------------------------------------------------------------

def _resolved_definition(synth: Synth[ComplaintsStack]) -> tuple[str, dict[str, Any]]:
    """The ASL as CloudFormation will see it: the staged asset with its substitutions applied."""
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    text = (synth.outdir / f"asset.{props['DefinitionS3Location']['Key']}").read_text(encoding="utf-8")
    for name, value in props["DefinitionSubstitutions"].items():
        logical_id, attribute = value["Fn::GetAtt"]
        text = text.replace(f"${{{name}}}", f"<{logical_id}.{attribute}>")
    return text, props


def test_state_machine_definition_resolves_every_placeholder(synth: Synth[ComplaintsStack]) -> None:
    text, props = _resolved_definition(synth)
    assert PLACEHOLDER.findall(text) == []
    json.loads(text)
    ids = synth.function_ids()
    for spec in catalog.FUNCTIONS:
        if spec.substitution:
            assert f"<{ids[spec.name]}.Arn>" in text, f"the ASL never invokes {spec.name}"
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False  # customer data stays out of logs
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_may_invoke_exactly_the_functions_it_names(synth: Synth[ComplaintsStack]) -> None:
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invokes = [s for s in synth.role_statements(role_id) if "lambda:InvokeFunction" in as_list(s["Action"])]
    ids = synth.function_ids()
    expected = [{"Fn::GetAtt": [ids[spec.name], "Arn"]} for spec in catalog.FUNCTIONS if spec.substitution]
    assert [r for s in invokes for r in as_list(s["Resource"])] == expected


# ----- HTTP API, staff sign-in -----------------------------------------------------------------------

def test_http_routes_are_the_catalogs_and_staff_routes_need_a_cognito_token(synth: Synth[ComplaintsStack]) -> None:
    ids = synth.function_ids()
    integrations = synth.of_type("AWS::ApiGatewayV2::Integration")
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.of_type("AWS::ApiGatewayV2::Route").values()}
    expected = {route: spec.name for spec in catalog.FUNCTIONS for route in spec.http_routes}
    assert sorted(routes) == sorted(expected)
    ((authorizer_id, authorizer),) = synth.of_type("AWS::ApiGatewayV2::Authorizer").items()
    staff = synth.stack.staff
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    jwt = authorizer["Properties"]["JwtConfiguration"]
    assert jwt["Audience"] == [synth.resolve(staff.client.user_pool_client_id)]
    assert synth.resolve(staff.user_pool.user_pool_id) in jwt["Issuer"]["Fn::Join"][1]
    for route, name in expected.items():
        integration_id = routes[route]["Target"]["Fn::Join"][1][1]["Ref"]
        assert integrations[integration_id]["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [ids[name], "Arn"]}
        if route.split(" ", 1)[1].startswith("/api/"):
            assert routes[route]["AuthorizationType"] == "JWT", route
            assert routes[route]["AuthorizerId"] == {"Ref": authorizer_id}, route
        else:
            assert routes[route]["AuthorizationType"] == "NONE", route  # link pages: the link id is the credential


def test_api_is_throttled_and_logs_no_link_ids_query_strings_or_callers(synth: Synth[ComplaintsStack]) -> None:
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    log_format = props["AccessLogSettings"]["Format"]
    assert set(re.findall(r"\$context\.[A-Za-z.]+", log_format)) <= ACCESS_LOG_VARIABLES


def test_staff_pool_is_invitation_only_with_mfa_and_fixed_claims(synth: Synth[ComplaintsStack]) -> None:
    (pool,) = synth.of_type("AWS::Cognito::UserPool").values()
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert props["UsernameAttributes"] == ["email"]
    assert props["MfaConfiguration"] == "ON" and props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert props["UserPoolTier"] == "PLUS" and props["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    clients = synth.of_type("AWS::Cognito::UserPoolClient")
    client_props = clients[_logical_id(synth, synth.stack.staff.client)]["Properties"]
    assert client_props["GenerateSecret"] is False
    assert client_props["AllowedOAuthFlowsUserPoolClient"] is False  # no redirect URLs to abuse
    assert client_props["ExplicitAuthFlows"] == ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert {"email", "custom:brand"} <= set(client_props["ReadAttributes"])
    # The claims the staff API trusts cannot be changed by the staff member.
    assert not {"email", "custom:brand"} & set(client_props["WriteAttributes"])


def _logical_id(synth: Synth[ComplaintsStack], construct: Construct) -> str:
    resource = construct.node.default_child
    assert isinstance(resource, CfnElement)
    return str(synth.resolve(resource.logical_id))


def test_the_console_signs_in_through_the_hosted_ui_with_one_redirect(synth: Synth[ComplaintsStack]) -> None:
    staff = synth.stack.staff
    clients = synth.of_type("AWS::Cognito::UserPoolClient")
    assert len(clients) == 2
    console = clients[_logical_id(synth, staff.console_client)]["Properties"]
    assert console["GenerateSecret"] is False and console["AllowedOAuthFlows"] == ["code"]  # with PKCE
    assert console["AllowedOAuthFlowsUserPoolClient"] is True and console["SupportedIdentityProviders"] == ["COGNITO"]
    assert "aws.cognito.signin.user.admin" in console["AllowedOAuthScopes"]  # GetUser reads the claims
    [callback] = console["CallbackURLs"]
    assert synth.resolve(callback)["Fn::Join"][1][-1] == "/console/callback"
    assert not {"email", "custom:brand"} & set(console["WriteAttributes"])
    (domain,) = synth.of_type("AWS::Cognito::UserPoolDomain").values()
    assert domain["Properties"]["UserPoolId"] == synth.resolve(staff.user_pool.user_pool_id)
    staff_api = synth.resources[synth.function_ids()["staff_api"]]["Properties"]["Environment"]["Variables"]
    assert staff_api["COMPLAINTS_STAFF_CLIENT_ID"] == synth.resolve(staff.console_client.user_pool_client_id)
    assert "COMPLAINTS_STAFF_SIGN_IN_URL" in staff_api


def test_outputs(synth: Synth[ComplaintsStack]) -> None:
    assert set(synth.outputs) >= {"TableName", "RawMailBucket", "StateMachineArn", "ApiUrl", "ReceiptRuleSetName",
                                 "StaffUserPoolId", "StaffAppClientId", "AlarmTopicArn",
                                 "FailedInvocationsQueueUrl", "LinkSecretArn", "DashboardName", "ConsoleUrl"}


# ----- checkers --------------------------------------------------------------------------------------

def test_cdk_nag_reports_nothing_unacknowledged(synth: Synth[ComplaintsStack]) -> None:
    # validate_scope is cdk-nag's direct entry point; it honours Validations.acknowledge.
    report = AwsSolutionsChecks().validate_scope(synth.app)
    findings = [f"{v.severity} {v.rule_name} at {[r.construct_path for r in v.violating_resources]}"
                for v in report.violations]
    # Synth fails on warnings too (cdk-nag marks the report failed on any finding).
    assert findings == []
    errors = Annotations.from_stack(synth.stack).find_error("*", Match.any_value())
    assert errors == []


def test_every_acknowledgement_says_why(synth: Synth[ComplaintsStack]) -> None:
    acknowledged = acknowledgements(synth.app)
    assert acknowledged
    for path, rules in acknowledged.items():
        for rule, reason in rules.items():
            assert len(reason.split()) >= 8, f"{path} {rule}: give the reviewer a reason"


def test_cfn_lint_accepts_the_template(synth: Synth[ComplaintsStack]) -> None:
    from cfnlint.api import ManualArgs, lint_file

    template = synth.outdir / f"{synth.stack.stack_name}.template.json"
    matches = lint_file(Path(template), ManualArgs(regions=[LINT_REGION]))
    assert [str(m) for m in matches] == []
