"""Settings, validated once at cold start. The only place that reads the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
