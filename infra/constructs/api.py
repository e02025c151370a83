"""The HTTP API: each catalog function's ``http_routes``, integrated with that function."""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_authorizers import HttpUserPoolAuthorizer
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra import catalog
from infra.constructs.functions import LOG_RETENTION, Functions
from infra.constructs.nag import acknowledge
from infra.constructs.staff import StaffDirectory

STAFF_PREFIX = "/api/"  # the staff API (Cognito JWT); everything else is a page reached from a mailed link
CONSOLE_PREFIX = "/console"  # the staff console: the handler checks its session cookie
THROTTLE_RATE = 50  # requests per second, steady
THROTTLE_BURST = 100

# Access log fields. Deliberately not $context.path (link paths carry link ids, which are
# credentials; routeKey names the route template instead), nor the query string, nor the
# caller's IP or identity (personal data the operations team does not need).
_ACCESS_LOG = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """IAccessLogSettings is a jsii interface, not a struct: it needs an implementing class."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


def parse_route(route: str) -> tuple[apigwv2.HttpMethod, str]:
    """``"GET /a/{link_id}"`` -> (HttpMethod.GET, "/a/{link_id}")."""
    method, _, path = route.partition(" ")
    return apigwv2.HttpMethod(method.upper()), path.strip()


class HttpApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, functions: Functions, staff: StaffDirectory,
                 stage: str) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(self, "Api", create_default_stage=False)
        log_group = logs.LogGroup(
            self, "AccessLogs", retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY if stage == "dev" else RemovalPolicy.RETAIN,
        )
        self.default_stage = apigwv2.HttpStage(
            self, "DefaultStage", http_api=self.api, stage_name="$default", auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=THROTTLE_RATE, burst_limit=THROTTLE_BURST),
            access_log_settings=_AccessLogSettings(apigwv2.LogGroupLogDestination(log_group),
                                                   apigw.AccessLogFormat.custom(json.dumps(_ACCESS_LOG))),
        )
        # API Gateway verifies the staff member's Cognito ID token (signature, expiry, issuer,
        # audience = the staff app client); the handler then reads its email and brand claims.
        staff_authorizer = HttpUserPoolAuthorizer("StaffAuthorizer", staff.user_pool,
                                                  user_pool_clients=[staff.client])
        for spec in catalog.FUNCTIONS:
            if not spec.http_routes:
                continue
            integration = HttpLambdaIntegration(f"{spec.name}Integration", functions.by_name[spec.name])
            for route in spec.http_routes:
                method, path = parse_route(route)
                for_staff = path.startswith(STAFF_PREFIX)
                for http_route in self.api.add_routes(path=path, methods=[method], integration=integration,
                                                      authorizer=staff_authorizer if for_staff else None):
                    if path.startswith(CONSOLE_PREFIX):
                        acknowledge(http_route, "AwsSolutions-APIG4",
                                    "The staff console is browsed: its session is an HttpOnly cookie, which the "
                                    "JWT authorizer cannot read. The handler checks it on every request (Cognito "
                                    "GetUser on the access token) and POSTs also need the session's CSRF token.")
                    elif not for_staff:
                        acknowledge(http_route, "AwsSolutions-APIG4",
                                    "Link pages are opened from mail by customers and dealer staff without an "
                                    "account: the unguessable, hashed, expiring, single-use link id is the "
                                    "credential, and POST also needs the page's form_token.")

    @property
    def url(self) -> str:
        url = self.default_stage.url
        assert url is not None
        return url
