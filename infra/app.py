"""CDK entry point (``cdk.json``: ``.venv/bin/python -m infra.app``).

Context (``-c key=value``; docs/deploy.md shows them in use):
  ``stage``               default ``dev``; any other stage turns on deletion protection and retains data
  ``mail_domains``        receipt-rule recipients and the SES identities the functions may send from
                          (a list or a comma-separated string)
  ``brand_id``            the tenant a staff token without a ``custom:brand`` claim belongs to
  ``public_base_url``     where mailed links point; default the HTTP API's endpoint
  ``alarm_emails``        addresses subscribed to the alarm topic (each confirms by mail)
  ``invitation_sender``   the SES-verified address Cognito mails staff invitations from
                          (without it Cognito's own mail, capped at 50 a day)
  ``threat_protection``   default true; false where the region lacks Cognito threat protection
  ``link_secret_version`` the link HMAC key's version id, after a rotation
  ``bundle``              default true: install the runtime dependencies into the Lambda
                          package (pip, from PyPI or its cache); false packages our code only
                          (offline template checks; such a package cannot run)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.constructs.bundling import lambda_code
from infra.stack import ComplaintsStack

DEFAULT_STAGE = "dev"
DEFAULT_MAIL_DOMAINS = ("aurora-motors.example", "complaints.aurora-motors.example")  # the demo brand
DEFAULT_BRAND_ID = "aurora"


# Feature flags this app relies on, set here rather than in cdk.json so that tests
# (which build the app without the CLI) synthesise exactly what deploys.
FEATURE_FLAGS: dict[str, Any] = {
    # Server access logs delivered under a bucket policy, not the deprecated LogDeliveryWrite ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def _as_list(value: Any, default: tuple[str, ...] = ()) -> list[str]:
    if value is None:
        return list(default)
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def as_bool(value: Any, default: bool) -> bool:
    """Context from the CLI arrives as text: ``-c bundle=false``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, got {value!r}")
    return text == "true"


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, ComplaintsStack]:
    app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)

    def ctx(key: str) -> Any:
        return app.node.try_get_context(key)

    stage = str(ctx("stage") or DEFAULT_STAGE)
    stack = ComplaintsStack(
        app, f"complaints-{stage}",
        stage=stage,
        mail_domains=_as_list(ctx("mail_domains"), DEFAULT_MAIL_DOMAINS),
        code=lambda_code(with_dependencies=as_bool(ctx("bundle"), default=True)),
        brand_id=str(ctx("brand_id") or DEFAULT_BRAND_ID),
        public_base_url=ctx("public_base_url"),
        alarm_emails=_as_list(ctx("alarm_emails")),
        threat_protection=as_bool(ctx("threat_protection"), default=True),
        invitation_sender=ctx("invitation_sender"),
        link_secret_version=ctx("link_secret_version"),
        # The CLI sets these from the profile; without them the stack is environment-agnostic.
        env=Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
        description="Complaint handling: SES intake, Step Functions lifecycle, DynamoDB cases, HTTP API",
    )
    Tags.of(stack).add("project", "complaints")
    Tags.of(stack).add("stage", stage)
    # cdk-nag 3.x is a policy-validation plugin: synth fails on any unacknowledged finding.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
