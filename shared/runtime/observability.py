"""Powertools objects shared by every handler. Logs never carry personal data in clear:
``mask`` is what handlers use for addresses, phones and VINs."""

from __future__ import annotations

import re

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="complaints")
tracer = Tracer(service="complaints")
metrics = Metrics(namespace="Complaints", service="complaints")

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


def mask(value: str | None) -> str:
    """``liu.wei@mail.example`` -> ``l***@mail.example``; other identifiers keep 3 characters."""
    if not value:
        return ""
    if "@" in value:
        return _EMAIL.sub(r"\1***@\2", value)
    return value[:3] + "***" if len(value) > 3 else "***"
