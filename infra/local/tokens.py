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
    if not body or not hmac.compare_digest(sig.encode("utf-8", "surrogatepass"), expected.encode()):
        return None
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if int(str(claims.get("exp", 0))) < time.time():
        return None
    return claims


class LocalSessions:
    """``shared.runtime.sessions.StaffSessions`` for the local runtime: the console signs staff
    in by e-mail alone (there is no Cognito here), with the tokens ``/_local/token`` issues."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def hosted_sign_in(self, *, state: str, code_challenge: str, redirect_uri: str) -> str | None:
        return None

    def token_for_email(self, email: str, brand: str) -> str | None:
        return issue(email, brand, self._secret)

    def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> str | None:
        return None

    def hosted_sign_out(self, return_to: str) -> str | None:
        return None

    def claims(self, token: str) -> dict[str, object] | None:
        return verify(token, self._secret)
