"""cdk-nag 3.x acknowledgements, in one call shape.

Each acknowledgement names one finding (``Rule`` or ``Rule[Finding]``) on one construct
and its children, with the reason a reviewer should read.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
