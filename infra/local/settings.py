"""Settings of the local runtime (ports, clock, where its data lives), from the environment."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .clock import Mode


class LocalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTS_", extra="ignore")

    smtp_port: int = 2525
    http_port: int = 8080
    host: str = "127.0.0.1"
    clock: Mode = "real"
    data_dir: Path = Path(".local-data")  # what the stack keeps between runs (persistence.py)
    # Signs staff tokens; ``complaints run`` keeps it with the data, so sessions outlive a restart.
    token_secret: str = Field(default_factory=lambda: secrets.token_hex(32))

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"
