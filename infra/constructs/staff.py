"""Staff sign-in: a Cognito user pool whose ID tokens the HTTP API's JWT authorizer checks.

The staff API reads two claims of the ID token: ``email`` (who, looked up in the
tenant's staff) and ``custom:brand`` (which tenant). Accounts are created by an
administrator (no self sign-up); a staff member can change neither claim.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.constructs.nag import acknowledge

BRAND_ATTRIBUTE = "brand"  # the token claim is custom:brand


class StaffDirectory(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: str, threat_protection: bool,
                 invitation_sender: str | None = None) -> None:
        super().__init__(scope, construct_id)
        disposable = stage == "dev"
        self.user_pool = cognito.UserPool(
            self, "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True),
                fullname=cognito.StandardAttribute(required=False, mutable=True)),
            custom_attributes={BRAND_ATTRIBUTE: cognito.StringAttribute(min_len=1, max_len=64, mutable=True)},
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),  # an authenticator app; no SMS costs
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=Duration.days(3)),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Threat protection (formerly advanced security) needs the Plus feature plan.
            feature_plan=cognito.FeaturePlan.PLUS if threat_protection else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=(cognito.StandardThreatProtectionMode.FULL_FUNCTION
                                             if threat_protection else None),
            # Cognito's own mail is capped at 50 a day: onboarding a brand's staff needs SES
            # (the sender's domain verified in this region, as the mail domains are).
            email=(cognito.UserPoolEmail.with_ses(from_email=invitation_sender, ses_region=Stack.of(self).region,
                                                  ses_verified_domain=invitation_sender.split("@", 1)[1])
                   if invitation_sender else None),
            deletion_protection=not disposable,
            removal_policy=RemovalPolicy.DESTROY if disposable else RemovalPolicy.RETAIN,
        )
        if not threat_protection:
            acknowledge(self.user_pool, "AwsSolutions-COG8",
                        "Deployed with threat_protection=false: the region does not offer Cognito threat "
                        "protection (Plus plan). MFA is still required of every staff member.")
        self.client = self.user_pool.add_client(
            "StaffApp",
            auth_flows=cognito.AuthFlow(user_srp=True),  # the password never leaves the browser
            generate_secret=False,  # a browser app cannot keep a secret
            disable_o_auth=True,  # no hosted sign-in pages or redirect URLs until a staff UI needs them
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12),  # a working day; then sign in (and MFA) again
            read_attributes=cognito.ClientAttributes()
            .with_standard_attributes(email=True, email_verified=True, fullname=True)
            .with_custom_attributes(BRAND_ATTRIBUTE),
            # Not email, not brand: those decide what a staff member may see.
            write_attributes=cognito.ClientAttributes().with_standard_attributes(fullname=True),
        )

    def add_console(self, base_url: str) -> None:
        """The console's sign-in (functions/staff_api/console.py): Cognito's hosted UI on a user
        pool domain, and an app client of its own whose only redirect is the console's callback
        (authorization code with PKCE; the access token lets the handler call GetUser)."""
        stack = Stack.of(self)
        self.domain = self.user_pool.add_domain("ConsoleDomain", cognito_domain=cognito.CognitoDomainOptions(
            domain_prefix=f"{stack.stack_name}-{stack.account}"))  # unique per account and region
        base = base_url.rstrip("/")
        self.console_client = self.user_pool.add_client(
            "Console",
            generate_secret=False,  # PKCE instead: the code is exchanged by the handler, no secret to keep
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE,
                        cognito.OAuthScope.COGNITO_ADMIN],
                callback_urls=[f"{base}/console/callback"],
                logout_urls=[f"{base}/console/sign-in?probe=1"]),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12),
            read_attributes=cognito.ClientAttributes()
            .with_standard_attributes(email=True, email_verified=True, fullname=True)
            .with_custom_attributes(BRAND_ATTRIBUTE),
            write_attributes=cognito.ClientAttributes().with_standard_attributes(fullname=True),
        )
