"""Which catalog function serves an API path: API Gateway's routing, for the local HTTP server."""

from __future__ import annotations

import re
from functools import lru_cache

from infra import catalog

DEFAULT = "staff_api"  # the staff API answers every other /api/ path (with its 404)


@lru_cache(maxsize=1)
def _routes() -> list[tuple[str, re.Pattern[str], str]]:
    found = []
    for spec in catalog.FUNCTIONS:
        for route in spec.http_routes:
            method, _, template = route.partition(" ")
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template.strip()))
            found.append((method.upper(), re.compile(f"{pattern}$"), spec.name))
    return found


def api_function(method: str, path: str) -> str:
    """The function whose ``http_routes`` has this method and path (``GET /api/reports/{period}``)."""
    for route_method, pattern, name in _routes():
        if route_method in (method.upper(), "ANY") and pattern.match(path):
            return name
    return DEFAULT
