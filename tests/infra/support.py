"""Reading a synthesised template: resources by type, a role's statements, acknowledgements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from aws_cdk import App, Stack, Validations
from aws_cdk.assertions import Template
from constructs import IConstruct

# What cdk-nag 3.x records on a construct for each acknowledgement: {rule id: reason}.
ACKNOWLEDGEMENTS = Validations.ACKNOWLEDGED_RULES_METADATA_KEY

S = TypeVar("S", bound=Stack)


@dataclass(frozen=True)
class Synth(Generic[S]):
    app: App
    stack: S
    template: Template
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    outdir: Path

    @staticmethod
    def of(app: App, stack: S, outdir: Path) -> Synth[S]:
        # from_stack synthesises the whole app: it runs cdk-nag (a validation plugin,
        # failing on any unacknowledged finding) and catches dependency cycles.
        template = Template.from_stack(stack)
        as_json = template.to_json()
        return Synth(app, stack, template, as_json["Resources"], as_json.get("Outputs", {}), outdir)

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == cfn_type}

    def function_ids(self) -> dict[str, str]:
        """Catalog name -> logical id of its Lambda (the function name is '<stack>-<name>')."""
        prefix = f"{self.stack.stack_name}-"
        return {r["Properties"]["FunctionName"].removeprefix(prefix): lid
                for lid, r in self.of_type("AWS::Lambda::Function").items()}

    def role_of(self, function_id: str) -> str:
        return str(self.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0])

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every identity-policy statement attached to one role (inline and separate policies)."""
        role = self.resources[role_id]["Properties"]
        statements = [s for p in role.get("Policies", []) for s in statements_of(p["PolicyDocument"])]
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += statements_of(policy["Properties"]["PolicyDocument"])
        return statements

    def identity_statements(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(role logical id, statement) for every statement of every role."""
        for role_id in self.of_type("AWS::IAM::Role"):
            for statement in self.role_statements(role_id):
                yield role_id, statement

    def resolve(self, value: Any) -> Any:
        return self.stack.resolve(value)


def statements_of(policy_document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy_document["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def acknowledgements(scope: IConstruct) -> dict[str, dict[str, str]]:
    """Construct path -> {rule id: reason} for every cdk-nag acknowledgement under ``scope``."""
    found: dict[str, dict[str, str]] = {}
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACKNOWLEDGEMENTS:
                found.setdefault(construct.node.path, {}).update(entry.data)
    return found
