"""The complaint-handling stack: data, functions, lifecycle, mail intake, staff sign-in,
HTTP API, schedules, alarms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import catalog
from infra.constructs.api import HttpApi
from infra.constructs.data import DataStore
from infra.constructs.functions import Functions
from infra.constructs.mail import MailIntake
from infra.constructs.operations import Operations
from infra.constructs.schedules import Schedules
from infra.constructs.staff import StaffDirectory
from infra.constructs.workflow import Lifecycle

LIFECYCLE = "complaint_lifecycle"
INTAKE = "intake_email"
STAFF_API = "staff_api"


class ComplaintsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, mail_domains: Sequence[str],
                 code: lambda_.Code, brand_id: str, public_base_url: str | None = None,
                 alarm_emails: Sequence[str] = (), threat_protection: bool = True,
                 invitation_sender: str | None = None, link_secret_version: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.operations = Operations(self, "Operations", alarm_emails=alarm_emails)
        self.data = DataStore(self, "Data", stage=stage)
        # SES invokes intake, Scheduler its functions, both asynchronously: they need a
        # failure destination. The others are invoked synchronously (state machine, API).
        asynchronous = {INTAKE, *(spec.name for spec in catalog.FUNCTIONS if spec.schedule)}
        self.functions = Functions(self, "Functions", code=code, data=self.data, operations=self.operations,
                                   asynchronous=asynchronous, mail_domains=mail_domains, stage=stage,
                                   brand_id=brand_id, link_secret_version=link_secret_version)
        self.lifecycle = Lifecycle(self, "Lifecycle", name=LIFECYCLE, asl=catalog.STATE_MACHINES[LIFECYCLE],
                                   functions=self.functions, stage=stage)
        self.mail = MailIntake(self, "Mail", recipients=mail_domains, raw_bucket=self.data.raw_bucket,
                               intake=self.functions.by_name[INTAKE])
        self.staff = StaffDirectory(self, "Staff", stage=stage, threat_protection=threat_protection,
                                    invitation_sender=invitation_sender)
        self.api = HttpApi(self, "Http", functions=self.functions, staff=self.staff, stage=stage)
        self.schedules = Schedules(self, "Schedules", functions=self.functions, operations=self.operations)
        self.operations.watch(state_machine=self.lifecycle.state_machine, functions=self.functions.by_name,
                              api=self.api.api, table=self.data.table)

        # Links in mail point at the API unless a custom domain is configured.
        base_url = public_base_url or self.api.api.api_endpoint
        for spec in catalog.FUNCTIONS:
            if spec.sends_mail:
                self.functions.by_name[spec.name].add_environment("COMPLAINTS_PUBLIC_BASE_URL", base_url)
        # The console signs staff in through Cognito's hosted UI (shared/runtime/sessions.py).
        self.staff.add_console(base_url)
        staff_api = self.functions.by_name[STAFF_API]
        staff_api.add_environment("COMPLAINTS_STAFF_SIGN_IN_URL", self.staff.domain.base_url())
        staff_api.add_environment("COMPLAINTS_STAFF_CLIENT_ID", self.staff.console_client.user_pool_client_id)

        CfnOutput(self, "TableName", value=self.data.table.table_name)
        CfnOutput(self, "RawMailBucket", value=self.data.raw_bucket.bucket_name)
        CfnOutput(self, "StateMachineArn", value=self.lifecycle.state_machine.state_machine_arn)
        CfnOutput(self, "ApiUrl", value=self.api.url)
        # SES has one active rule set per account and region; activating this one is a deploy step.
        CfnOutput(self, "ReceiptRuleSetName", value=self.mail.rule_set.receipt_rule_set_name)
        CfnOutput(self, "StaffUserPoolId", value=self.staff.user_pool.user_pool_id)
        CfnOutput(self, "StaffAppClientId", value=self.staff.client.user_pool_client_id)
        CfnOutput(self, "ConsoleUrl", value=f"{base_url.rstrip('/')}/console")
        CfnOutput(self, "AlarmTopicArn", value=self.operations.topic.topic_arn)
        CfnOutput(self, "FailedInvocationsQueueUrl", value=self.operations.failures.queue_url)
        CfnOutput(self, "LinkSecretArn", value=self.functions.link_secret.secret_arn)
        CfnOutput(self, "DashboardName", value=self.operations.dashboard.dashboard_name)
