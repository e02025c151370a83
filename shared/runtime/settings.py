"""Settings, validated once at cold start. The only place that reads the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.complaints.bodies import BodyLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTS_", extra="ignore")

    region: str = "ap-northeast-1"
    table_name: str = "complaints"
    raw_bucket: str = "complaints-raw-mail"
    raw_prefix: str = "raw/"  # the SES receipt rule's S3 action writes raw/<SES message id>
    state_machine_arn: str = ""
    public_base_url: str = "http://127.0.0.1:8080"
    brand_id: str = "aurora"  # the tenant a single-brand deployment serves by default
    # HMAC key for link form tokens: required, never in the repo (the stack passes it from a
    # secret; the local runtime makes a fresh one per run).
    link_secret: str | None = Field(default=None, min_length=32)
    dynamodb_endpoint: str | None = None
    link_requests_per_minute: int = 30  # per link: a person needs a few; more is a script
    # What a POST body may be (shared/complaints/bodies.py, docs/security.md): the longest form
    # is a plan of ~30 KB; nothing we read nests deeper than 3 or has a number of 20 characters.
    body_max_bytes: int = 64 * 1024
    json_max_depth: int = 20
    json_max_number_length: int = 40
    # Reliability (docs/reliability.md): how hard the system tries, not policy.
    mail_send_attempts: int = 3  # sends of one mail, with jittered exponential backoff, before it waits for the reconciler
    mail_retry_base_s: float = 0.2  # backoff before the 2nd send: a random wait up to this, doubling, capped below
    mail_retry_cap_s: float = 2.0
    # A received mail whose latest attempt claimed it this long ago (or that none claimed) and
    # that is not done is re-driven: far beyond the intake's timeout and Lambda's retries of a
    # failed event (after 1 and 3 minutes).
    reconcile_grace_minutes: int = 15
    reconcile_lookback_days: int = 3  # days of received mail the reconciler accounts for
    reconcile_max_attempts: int = 5  # failed re-drives of one mail before it is held for staff
    reconcile_batch: int = 200  # mails (and pending sends) per run: a run stays far inside its timeout
    # The console's sign-in in AWS (shared/runtime/sessions.py): the user pool domain of Cognito's
    # hosted UI (https://<prefix>.auth.<region>.amazoncognito.com) and the console's app client.
    staff_sign_in_url: str = ""
    staff_client_id: str = ""

    @property
    def body_limits(self) -> BodyLimits:
        return BodyLimits(self.body_max_bytes, self.json_max_depth, self.json_max_number_length)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
