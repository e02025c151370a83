"""CDK template assertions: the synthesised stack agrees with the model, the catalog and the ASL.

The app is built and synthesised once per module (about 4 s, most of it jsii start-up and
staging the Lambda asset); every test reads that one template.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from pynamodb.attributes import Attribute
from pynamodb.indexes import GlobalSecondaryIndex

from infra import catalog
from infra.app import DEFAULT_MAIL_DOMAINS, build_app
from infra.constructs.data import DataStore, case_model
from infra.stack import INTAKE, LIFECYCLE, ComplaintsStack

Item: Any = case_model()  # shared.adapters.dynamodb.Item, imported without runtime settings

PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
TASK_RESPONSES = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
# The only statements allowed on Resource "*": services without resource-level permissions.
UNSCOPABLE_PREFIXES = ("xray:", "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                       "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                       "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")


@dataclass(frozen=True)
class Synth:
    app: App
    stack: ComplaintsStack
    template: Template
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    outdir: Path

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == cfn_type}

    def function_ids(self) -> dict[str, str]:
        """Catalog name -> logical id of its Lambda (the function name is '<stack>-<name>')."""
        prefix = f"{self.stack.stack_name}-"
        return {r["Properties"]["FunctionName"].removeprefix(prefix): lid
                for lid, r in self.of_type("AWS::Lambda::Function").items()}


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
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    with pytest.MonkeyPatch.context() as patch:
        asl = catalog.STATE_MACHINES[LIFECYCLE]
        if not asl.exists():
            stand_in = tmp_path_factory.mktemp("asl") / asl.name
            stand_in.write_text(json.dumps(_stand_in_asl()), encoding="utf-8")
            patch.setitem(catalog.STATE_MACHINES, LIFECYCLE, stand_in)
        outdir = tmp_path_factory.mktemp("cdk.out")
        app, stack = build_app(outdir=str(outdir))
        # from_stack synthesises the whole app: it runs cdk-nag (a validation plugin,
        # failing on any unacknowledged finding) and catches dependency cycles.
        template = Template.from_stack(stack)
        as_json = template.to_json()
        yield Synth(app, stack, template, as_json["Resources"], as_json["Outputs"], outdir)


def _statements(policy_document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy_document["Statement"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    """Every identity-policy statement attached to one role (inline and separate policies)."""
    role = synth.resources[role_id]["Properties"]
    statements = [s for p in role.get("Policies", []) for s in _statements(p["PolicyDocument"])]
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += _statements(policy["Properties"]["PolicyDocument"])
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in _as_list(s["Action"])}


# ----- table ----------------------------------------------------------------------------------------

def _key_schema(attributes: dict[str, Attribute[Any]]) -> list[dict[str, str]]:
    hash_key = next(a for a in attributes.values() if a.is_hash_key)
    range_keys = [a for a in attributes.values() if a.is_range_key]
    return [{"AttributeName": hash_key.attr_name, "KeyType": "HASH"},
            *({"AttributeName": a.attr_name, "KeyType": "RANGE"} for a in range_keys)]


def test_table_keys_and_indexes_are_the_models(synth: Synth) -> None:
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


def test_table_is_on_demand_recoverable_encrypted_and_expires_items(synth: Synth) -> None:
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    sse = props["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    key_id = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    assert synth.resources[key_id]["Type"] == "AWS::KMS::Key"
    assert synth.resources[key_id]["Properties"]["EnableKeyRotation"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": Item.expires_at.attr_name, "Enabled": True}
    assert props["DeletionProtectionEnabled"] is False  # the default stage is dev


def test_data_outside_dev_is_protected() -> None:
    # Only the data construct: no Lambda asset to stage, so this costs a fraction of a second.
    stack = Stack(App(), "prod")
    DataStore(stack, "Data", stage="prod")
    (table,) = Template.from_stack(stack).find_resources("AWS::DynamoDB::Table").values()
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


# ----- raw mail ----------------------------------------------------------------------------------

def test_raw_mail_bucket_is_private_encrypted_and_versioned(synth: Synth) -> None:
    raw_id = synth.stack.resolve(synth.stack.data.raw_bucket.bucket_name)["Ref"]
    props = synth.resources[raw_id]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert synth.resources[raw_id]["DeletionPolicy"] == "Retain"

    (policy,) = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": raw_id}]
    statements = _statements(policy)
    assert any(s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    ses_puts = [s for s in statements if s.get("Principal") == {"Service": "ses.amazonaws.com"}]
    assert ses_puts, "SES must be allowed to store received mail"
    for s in ses_puts:
        assert s["Action"] == "s3:PutObject"
        assert s["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_receipt_rule_stores_then_invokes_intake_then_stops(synth: Synth) -> None:
    (rule,) = synth.of_type("AWS::SES::ReceiptRule").values()
    props = rule["Properties"]["Rule"]
    assert [next(iter(action)) for action in props["Actions"]] == ["S3Action", "LambdaAction", "StopAction"]
    s3_action, lambda_action, _ = (next(iter(action.values())) for action in props["Actions"])
    assert s3_action["BucketName"] == synth.stack.resolve(synth.stack.data.raw_bucket.bucket_name)
    assert s3_action["ObjectKeyPrefix"] == "raw/"
    assert lambda_action["FunctionArn"] == {"Fn::GetAtt": [synth.function_ids()[INTAKE], "Arn"]}
    assert lambda_action["InvocationType"] == "Event"
    assert props["TlsPolicy"] == "Require"
    assert props["ScanEnabled"] is True
    assert props["Recipients"] == list(DEFAULT_MAIL_DOMAINS)


# ----- functions -----------------------------------------------------------------------------------

def test_one_lambda_per_catalog_entry_with_its_handler(synth: Synth) -> None:
    ids = synth.function_ids()
    assert sorted(ids) == sorted(spec.name for spec in catalog.FUNCTIONS)
    sm_id = synth.stack.resolve(synth.stack.lifecycle.state_machine.state_machine_arn)["Ref"]
    for spec in catalog.FUNCTIONS:
        props = synth.resources[ids[spec.name]]["Properties"]
        module, attribute = spec.handler.rsplit(".", 1)
        assert props["Handler"] == f"{module.replace('.', '/')}.{attribute}"
        assert (catalog.ROOT / f"{module.replace('.', '/')}.py").is_file(), f"{spec.name}: no handler module"
        assert props["Runtime"] == "python3.11"
        assert (props["MemorySize"], props["Timeout"]) == (spec.memory_mb, spec.timeout_s)
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        assert {"COMPLAINTS_TABLE_NAME", "COMPLAINTS_RAW_BUCKET", "COMPLAINTS_REGION",
                "POWERTOOLS_SERVICE_NAME"} <= set(env)
        assert env["COMPLAINTS_RAW_PREFIX"] == "raw/"  # what the receipt rule's S3 action uses
        # The HMAC key arrives as a CloudFormation dynamic reference, never as a literal.
        assert "{{resolve:secretsmanager:" in json.dumps(env["COMPLAINTS_LINK_SECRET"])
        if spec.starts_executions:
            assert env["COMPLAINTS_STATE_MACHINE_ARN"] == {"Ref": sm_id}
        else:
            assert "COMPLAINTS_STATE_MACHINE_ARN" not in env


def test_each_function_gets_exactly_what_its_spec_asks_for(synth: Synth) -> None:
    ids = synth.function_ids()
    for spec in catalog.FUNCTIONS:
        role_id = synth.resources[ids[spec.name]]["Properties"]["Role"]["Fn::GetAtt"][0]
        actions = _actions(_role_statements(synth, role_id))
        granted = {
            "needs_table": any(a.startswith("dynamodb:") for a in actions),
            "needs_raw_bucket_read": "s3:GetObject" in actions,
            "needs_raw_bucket_write": "s3:PutObject" in actions,
            "sends_mail": "ses:SendRawEmail" in actions,
            "starts_executions": "states:StartExecution" in actions,
            "sends_task_results": actions >= TASK_RESPONSES,
        }
        assert granted == {flag: getattr(spec, flag) for flag in granted}, spec.name
        assert not (TASK_RESPONSES & actions) or spec.sends_task_results, spec.name
        assert "dynamodb:Scan" not in actions, "operational reads are key or index queries"


def test_no_wildcard_actions_and_no_needless_wildcard_resources(synth: Synth) -> None:
    documents = [p["Properties"]["PolicyDocument"] for p in synth.of_type("AWS::IAM::Policy").values()]
    documents += [p["PolicyDocument"] for r in synth.of_type("AWS::IAM::Role").values()
                  for p in r["Properties"].get("Policies", [])]
    assert documents
    for statement in (s for d in documents for s in _statements(d)):
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], statement
        if statement["Resource"] == "*":
            assert all(a.startswith(UNSCOPABLE_PREFIXES) for a in actions), statement


# ----- workflow --------------------------------------------------------------------------------------

def _resolved_definition(synth: Synth) -> tuple[str, dict[str, Any]]:
    """The ASL as CloudFormation will see it: the staged asset with its substitutions applied."""
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    text = (synth.outdir / f"asset.{props['DefinitionS3Location']['Key']}").read_text(encoding="utf-8")
    for name, value in props["DefinitionSubstitutions"].items():
        logical_id, attribute = value["Fn::GetAtt"]
        text = text.replace(f"${{{name}}}", f"<{logical_id}.{attribute}>")
    return text, props


def test_state_machine_definition_resolves_every_placeholder(synth: Synth) -> None:
    text, props = _resolved_definition(synth)
    assert PLACEHOLDER.findall(text) == []
    json.loads(text)
    ids = synth.function_ids()
    for spec in catalog.FUNCTIONS:
        if spec.substitution:
            assert f"<{ids[spec.name]}.Arn>" in text, f"the ASL never invokes {spec.name}"
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_may_invoke_exactly_the_functions_it_names(synth: Synth) -> None:
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invokes = [s for s in _role_statements(synth, role_id) if "lambda:InvokeFunction" in _as_list(s["Action"])]
    ids = synth.function_ids()
    expected = [{"Fn::GetAtt": [ids[spec.name], "Arn"]} for spec in catalog.FUNCTIONS if spec.substitution]
    assert [r for s in invokes for r in _as_list(s["Resource"])] == expected


# ----- HTTP API --------------------------------------------------------------------------------------

def test_http_routes_are_the_catalogs(synth: Synth) -> None:
    ids = synth.function_ids()
    integrations = synth.of_type("AWS::ApiGatewayV2::Integration")
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in synth.of_type("AWS::ApiGatewayV2::Route").values()}
    expected = {route: spec.name for spec in catalog.FUNCTIONS for route in spec.http_routes}
    assert sorted(routes) == sorted(expected)
    for route, name in expected.items():
        integration_id = routes[route]["Target"]["Fn::Join"][1][1]["Ref"]
        assert integrations[integration_id]["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [ids[name], "Arn"]}
        staff = route.split(" ", 1)[1].startswith("/api/")
        assert routes[route]["AuthorizationType"] == ("AWS_IAM" if staff else "NONE"), route
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["StageName"] == "$default"
    assert stage["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert "$context.path" not in stage["Properties"]["AccessLogSettings"]["Format"], "paths carry link ids"


def test_outputs(synth: Synth) -> None:
    assert set(synth.outputs) >= {"TableName", "RawMailBucket", "StateMachineArn", "ApiUrl",
                                 "ReceiptRuleSetName"}


# ----- cdk-nag -------------------------------------------------------------------------------------

def test_cdk_nag_reports_nothing_unacknowledged(synth: Synth) -> None:
    # validate_scope is cdk-nag's direct entry point; it honours Validations.acknowledge.
    report = AwsSolutionsChecks().validate_scope(synth.app)
    findings = [f"{v.severity} {v.rule_name} at {[r.construct_path for r in v.violating_resources]}"
                for v in report.violations]
    assert [f for f in findings if f.startswith("error")] == []
    # Synth fails on warnings too (cdk-nag marks the report failed on any finding).
    assert findings == []
    errors = Annotations.from_stack(synth.stack).find_error("*", Match.any_value())
    assert errors == []

