"""Settings of the local runtime (ports, clock), from the environment."""

from __future__ import annotations

import secrets

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .clock import Mode


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTS_", extra="ignore")

    smtp_port: int = 2525
    http_port: int = 8080
    host: str = "127.0.0.1"
    clock: Mode = "real"
    token_secret: str = Field(default_factory=lambda: secrets.token_hex(32))  # lives only in the server process

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"
