"""Bearer tokens for the staff API locally. In AWS the token is a Cognito JWT that API
Gateway's JWT authorizer verifies; here an HMAC-signed token plays that part, and the
HTTP server hands the handler the same claims shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


def issue(email: str, brand: str, secret: str, ttl_s: int = 12 * 3600) -> str:
    claims = {"email": email.lower(), "custom:brand": brand, "exp": int(time.time()) + ttl_s}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{sig}"


def verify(token: str, secret: str) -> dict[str, object] | None:
    body, _, sig = token.partition(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(sig, expected):
        return None
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if int(str(claims.get("exp", 0))) < time.time():
        return None
    return claims
