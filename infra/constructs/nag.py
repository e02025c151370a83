"""Acknowledged findings of the two template checkers, each with its reason.

cdk-nag 3.x: an acknowledgement names one finding (``Rule`` or ``Rule[Finding]``) on one
construct and its children, with the reason a reviewer should read. cfn-lint: the check
is ignored on that one resource through its ``Metadata`` (cfn-lint reads it from the
template, so every run of it agrees); the reason stays here, in the code.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct

# W3005 "dependency already enforced by GetAtt": CDK's Function and StateMachine add an
# explicit DependsOn on their role (to order it with the role's policy) although they
# also reference the role. Redundant, harmless, and not ours to remove.
REDUNDANT_DEPENDS_ON = "W3005"


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def lint_ignore(scope: IConstruct, check: str) -> None:
    resource = scope.node.default_child
    assert isinstance(resource, CfnResource), f"{scope.node.path} has no CloudFormation resource"
    resource.add_metadata("cfn-lint", {"config": {"ignore_checks": [check]}})
