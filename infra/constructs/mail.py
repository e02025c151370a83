"""SES receipt: one rule that stores the raw mail, then hands its key to intake."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ses as ses
from aws_cdk import aws_ses_actions as actions
from constructs import Construct

from infra.constructs.data import RAW_MAIL_PREFIX


class MailIntake(Construct):
    """The receipt rule set. SES allows one active set per account and region:
    activating it (``aws ses set-active-receipt-rule-set``) and verifying the domains
    are deployment steps, not part of this stack."""

    def __init__(self, scope: Construct, construct_id: str, *, recipients: Sequence[str], raw_bucket: s3.IBucket,
                 intake: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.rule_set = ses.ReceiptRuleSet(self, "RuleSet")
        self.rule = self.rule_set.add_rule(
            "Intake",
            recipients=list(recipients),
            tls_policy=ses.TlsPolicy.REQUIRE,
            scan_enabled=True,  # spam and virus verdicts reach intake in the event
            actions=[
                # Raw first: the mail is kept even if intake fails. The S3 action also adds
                # the bucket policy statement letting SES put objects under the prefix,
                # conditioned on aws:SourceAccount (no other account's SES can write).
                actions.S3(bucket=raw_bucket, object_key_prefix=RAW_MAIL_PREFIX),
                # Event: SES must not wait on (or time out with) the intake's work.
                actions.Lambda(function=intake, invocation_type=actions.LambdaInvocationType.EVENT),
                actions.Stop(),  # no later rule in the set sees mail this rule has handled
            ],
        )
