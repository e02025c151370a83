"""The complaint-handling stack: data, functions, lifecycle, mail intake, HTTP API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import catalog
from infra.constructs.api import HttpApi
from infra.constructs.data import DataStore
from infra.constructs.functions import Functions
from infra.constructs.mail import MailIntake
from infra.constructs.workflow import Lifecycle

LIFECYCLE = "complaint_lifecycle"
INTAKE = "intake_email"


class ComplaintsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, mail_domains: Sequence[str],
                 public_base_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.data = DataStore(self, "Data", stage=stage)
        self.functions = Functions(self, "Functions", data=self.data, mail_domains=mail_domains, stage=stage)
        self.lifecycle = Lifecycle(self, "Lifecycle", name=LIFECYCLE, asl=catalog.STATE_MACHINES[LIFECYCLE],
                                   functions=self.functions, stage=stage)
        self.mail = MailIntake(self, "Mail", recipients=mail_domains, raw_bucket=self.data.raw_bucket,
                               intake=self.functions.by_name[INTAKE])
        self.api = HttpApi(self, "Http", functions=self.functions, stage=stage)

        # Links in mail point at the API unless a custom domain is configured.
        base_url = public_base_url or self.api.api.api_endpoint
        for spec in catalog.FUNCTIONS:
            if spec.sends_mail:
                self.functions.by_name[spec.name].add_environment("COMPLAINTS_PUBLIC_BASE_URL", base_url)

        CfnOutput(self, "TableName", value=self.data.table.table_name)
        CfnOutput(self, "RawMailBucket", value=self.data.raw_bucket.bucket_name)
        CfnOutput(self, "StateMachineArn", value=self.lifecycle.state_machine.state_machine_arn)
        CfnOutput(self, "ApiUrl", value=self.api.url)
        # SES has one active rule set per account and region; activating this one is a deploy step.
        CfnOutput(self, "ReceiptRuleSetName", value=self.mail.rule_set.receipt_rule_set_name)
