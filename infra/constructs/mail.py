"""SES receipt: one rule that stores the raw mail, then hands its key to intake.

SES acts as itself (the ``ses.amazonaws.com`` service principal) on the bucket and the
function, so both grants name this account *and this rule* (``aws:SourceAccount`` and
``aws:SourceArn``): another rule set in the account cannot write mail into the bucket
or invoke intake. CDK's ``aws_ses_actions.S3`` grants on the account only, hence the
action below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_ses_actions as actions
from constructs import Construct

from infra.constructs.data import RAW_MAIL_PREFIX

INTAKE_RULE = "intake"


@jsii.implements(ses.IReceiptRuleAction)
class _StoreRawMail:
    """The S3 action without CDK's grant: the construct below grants, scoped to the rule."""

    def __init__(self, bucket: s3.IBucket, prefix: str) -> None:
        self._bucket = bucket
        self._prefix = prefix

    def bind(self, *_args: Any, **_kwargs: Any) -> ses.ReceiptRuleActionConfig:
        return ses.ReceiptRuleActionConfig(s3_action=ses.S3ActionConfig(
            bucket_name=self._bucket.bucket_name, object_key_prefix=self._prefix))


class MailIntake(Construct):
    """The receipt rule set. SES allows one active set per account and region:
    activating it (``aws ses set-active-receipt-rule-set``) and verifying the domains
    are deployment steps (docs/deploy.md), not part of this stack."""

    def __init__(self, scope: Construct, construct_id: str, *, recipients: Sequence[str], raw_bucket: s3.Bucket,
                 intake: lambda_.Function) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Named, so that the grants can name the rule before it exists (SES checks them
        # when the rule is created).
        rule_set_name = stack.stack_name
        self.rule_arn = stack.format_arn(service="ses", resource="receipt-rule-set",
                                         resource_name=f"{rule_set_name}:receipt-rule/{INTAKE_RULE}",
                                         arn_format=ArnFormat.SLASH_RESOURCE_NAME)
        from_this_rule = {"StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": self.rule_arn}}
        raw_bucket.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowSesToStoreReceivedMail",
            principals=[iam.ServicePrincipal("ses.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[raw_bucket.arn_for_objects(f"{RAW_MAIL_PREFIX}*")],
            conditions=from_this_rule,
        ))
        # actions.Lambda reuses a permission with this id instead of adding its own.
        intake.add_permission("AllowSes", principal=iam.ServicePrincipal("ses.amazonaws.com"),
                              action="lambda:InvokeFunction", source_account=stack.account,
                              source_arn=self.rule_arn)

        self.rule_set = ses.ReceiptRuleSet(self, "RuleSet", receipt_rule_set_name=rule_set_name)
        self.rule = self.rule_set.add_rule(
            "Intake",
            receipt_rule_name=INTAKE_RULE,
            recipients=list(recipients),
            tls_policy=ses.TlsPolicy.REQUIRE,
            scan_enabled=True,  # spam and virus verdicts reach intake in the event
            actions=[
                # Raw first: the mail is kept even if intake fails.
                _StoreRawMail(raw_bucket, RAW_MAIL_PREFIX),
                # Event: SES must not wait on (or time out with) the intake's work.
                actions.Lambda(function=intake, invocation_type=actions.LambdaInvocationType.EVENT),
                actions.Stop(),  # no later rule in the set sees mail this rule has handled
            ],
        )
        assert raw_bucket.policy is not None  # enforce_ssl made it; the grant above is in it
        self.rule.node.add_dependency(raw_bucket.policy)
