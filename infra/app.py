"""CDK entry point (``cdk.json``: ``.venv/bin/python -m infra.app``).

Context: ``stage`` (default ``dev``; any other stage turns on deletion protection and
retains data), ``mail_domains`` (receipt-rule recipients and the SES identities the
functions may send from; a list or a comma-separated string), ``public_base_url``
(where mailed links point; default the HTTP API's endpoint).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import ComplaintsStack

DEFAULT_STAGE = "dev"
DEFAULT_MAIL_DOMAINS = ("aurora-motors.example", "complaints.aurora-motors.example")  # the demo brand


# Feature flags this app relies on, set here rather than in cdk.json so that tests
# (which build the app without the CLI) synthesise exactly what deploys.
FEATURE_FLAGS: dict[str, Any] = {
    # Server access logs delivered under a bucket policy, not the deprecated LogDeliveryWrite ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def _as_list(value: Any, default: tuple[str, ...]) -> list[str]:
    if value is None:
        return list(default)
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, ComplaintsStack]:
    app = App(context={**FEATURE_FLAGS, **(context or {})}, outdir=outdir)
    stage = str(app.node.try_get_context("stage") or DEFAULT_STAGE)
    stack = ComplaintsStack(
        app, f"complaints-{stage}",
        stage=stage,
        mail_domains=_as_list(app.node.try_get_context("mail_domains"), DEFAULT_MAIL_DOMAINS),
        public_base_url=app.node.try_get_context("public_base_url"),
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
