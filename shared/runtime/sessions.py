"""How staff sign in to the console, and how the console checks who is signed in.

The staff API under ``/api/`` is behind API Gateway's JWT authorizer (a bearer token). The
console is browsed: its session is an HttpOnly cookie, which that authorizer cannot read, so
the console's routes have no authorizer and the handler checks the cookie's token itself,
through a ``StaffSessions``:

* in AWS, ``CognitoSessions``: sign-in is Cognito's hosted UI (authorization code with PKCE,
  exchanged at the user pool domain's token endpoint); the session holds the access token,
  checked with Cognito's ``GetUser`` (which also refuses a revoked token) and remembered for
  a minute per warm Lambda;
* locally, ``infra.local.tokens.LocalSessions``: sign-in by e-mail alone, with the same
  HMAC tokens the local token server issues (``/_local/token``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Protocol

import boto3

from shared.complaints.errors import ConfigurationError

BRAND_CLAIM = "custom:brand"
SCOPES = "openid email profile aws.cognito.signin.user.admin"  # the last lets GetUser read the attributes


class StaffSessions(Protocol):
    def hosted_sign_in(self, *, state: str, code_challenge: str, redirect_uri: str) -> str | None:
        """The sign-in page to send the browser to; None: sign in by e-mail here (local only)."""
        ...

    def token_for_email(self, email: str, brand: str) -> str | None:
        """A session token for a staff e-mail, without a password: the local stand-in only."""
        ...

    def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> str | None:
        """The session token for an authorization code from the hosted sign-in page."""
        ...

    def claims(self, token: str) -> dict[str, object] | None:
        """``{"email", "custom:brand"}`` of a valid session token, else None."""
        ...

    def hosted_sign_out(self, return_to: str) -> str | None:
        """Where to end the hosted sign-in's own session too, if there is one."""
        ...


class CognitoSessions:
    CACHE_SECONDS = 60

    def __init__(self, domain_url: str, client_id: str, region: str, client: Any = None) -> None:
        if not domain_url or not client_id:
            raise ConfigurationError("the console needs COMPLAINTS_STAFF_SIGN_IN_URL and COMPLAINTS_STAFF_CLIENT_ID")
        self._domain = domain_url.rstrip("/")
        self._client_id = client_id
        self._cognito = client or boto3.client("cognito-idp", region_name=region)
        self._cache: dict[str, tuple[float, dict[str, object]]] = {}
        self._lock = threading.Lock()

    def hosted_sign_in(self, *, state: str, code_challenge: str, redirect_uri: str) -> str | None:
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self._client_id, "redirect_uri": redirect_uri, "scope": SCOPES,
            "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256"})
        return f"{self._domain}/oauth2/authorize?{query}"

    def token_for_email(self, email: str, brand: str) -> str | None:
        return None  # never without Cognito's sign-in (password and MFA)

    def hosted_sign_out(self, return_to: str) -> str | None:
        return f"{self._domain}/logout?" + urllib.parse.urlencode({"client_id": self._client_id,
                                                                   "logout_uri": return_to})

    def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> str | None:
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "client_id": self._client_id,
                                       "code": code, "code_verifier": code_verifier,
                                       "redirect_uri": redirect_uri}).encode()
        request = urllib.request.Request(f"{self._domain}/oauth2/token", data=body, method="POST",  # noqa: S310 - https, our own user pool domain
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                tokens = json.loads(response.read())
        except (OSError, ValueError):  # an invalid or replayed code answers 400; the sign-in starts again
            return None
        token = tokens.get("access_token")
        return str(token) if token else None

    def claims(self, token: str) -> dict[str, object] | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        try:
            user = self._cognito.get_user(AccessToken=token)
        except self._cognito.exceptions.NotAuthorizedException:
            return None
        attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        if not attributes.get("email"):
            return None
        found: dict[str, object] = {"email": attributes["email"], BRAND_CLAIM: attributes.get(BRAND_CLAIM, "")}
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}  # stays small
            self._cache[key] = (now + self.CACHE_SECONDS, found)
        return found
