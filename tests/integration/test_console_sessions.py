"""The console's sign-in in AWS (``shared/runtime/sessions.py``): the hosted UI's address, the
code exchanged with its PKCE verifier at the user pool domain's token endpoint (a stand-in
server here: moto has no hosted UI), and the session's access token checked with Cognito's
GetUser (moto's Cognito)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from shared.runtime.sessions import CognitoSessions

REGION = "ap-northeast-1"


@pytest.fixture
def cognito() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        client = boto3.client("cognito-idp", region_name=REGION)
        pool = client.create_user_pool(PoolName="staff", Schema=[
            {"Name": "brand", "AttributeDataType": "String", "Mutable": True}])["UserPool"]["Id"]
        app = client.create_user_pool_client(UserPoolId=pool, ClientName="console",
                                              ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH",
                                                                 "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
        client.admin_create_user(UserPoolId=pool, Username="cr.center@aurora-motors.example", UserAttributes=[
            {"Name": "email", "Value": "cr.center@aurora-motors.example"}, {"Name": "custom:brand", "Value": "aurora"}],
            MessageAction="SUPPRESS")
        client.admin_set_user_password(UserPoolId=pool, Username="cr.center@aurora-motors.example",
                                       Password="Correct-Horse-9!", Permanent=True)
        yield client, pool, app


def test_the_session_token_is_checked_with_cognito(cognito: tuple[Any, str, str]) -> None:
    client, pool, app = cognito
    token = client.admin_initiate_auth(UserPoolId=pool, ClientId=app, AuthFlow="ADMIN_USER_PASSWORD_AUTH", AuthParameters={
        "USERNAME": "cr.center@aurora-motors.example", "PASSWORD": "Correct-Horse-9!"})["AuthenticationResult"]["AccessToken"]
    sessions = CognitoSessions("https://complaints-dev.auth.ap-northeast-1.amazoncognito.com", app, REGION, client)
    assert sessions.claims(token) == {"email": "cr.center@aurora-motors.example", "custom:brand": "aurora"}
    assert sessions.claims(token[:-4] + "AAAA") is None
    assert sessions.token_for_email("cr.center@aurora-motors.example", "aurora") is None  # never without Cognito
    client.global_sign_out(AccessToken=token)
    sessions._cache.clear()  # what a minute does
    assert sessions.claims(token) is None  # a revoked token is refused


class _TokenEndpoint(BaseHTTPRequestHandler):
    """The user pool domain's /oauth2/token: a code is good once, with the verifier of its challenge."""

    codes: ClassVar[dict[str, str]] = {}  # code -> its PKCE challenge

    def do_POST(self) -> None:
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["content-length"])).decode()).items()}
        challenge = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        ok = challenge == expected and form.get("grant_type") == "authorization_code" and form.get("client_id") == "app"
        body = json.dumps({"access_token": "AT-1", "id_token": "ID-1"} if ok else {"error": "invalid_grant"}).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


def test_the_hosted_ui_code_is_exchanged_with_its_pkce_verifier() -> None:
    server = HTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        domain = f"http://127.0.0.1:{server.server_port}"
        sessions = CognitoSessions(domain, "app", REGION, client=object())
        url = sessions.hosted_sign_in(state="s1", code_challenge="c" * 43, redirect_uri="https://x.example/console/callback")
        assert url is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert url.startswith(f"{domain}/oauth2/authorize?") and query["code_challenge_method"] == "S256"
        assert (query["state"], query["client_id"], query["response_type"]) == ("s1", "app", "code")
        assert "aws.cognito.signin.user.admin" in query["scope"].split()

        verifier = "v" * 64
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        _TokenEndpoint.codes.update({"code-1": challenge, "code-2": challenge})
        assert sessions.exchange_code("code-1", "wrong-verifier", "https://x.example/console/callback") is None
        assert sessions.exchange_code("code-2", verifier, "https://x.example/console/callback") == "AT-1"
        assert sessions.exchange_code("code-2", verifier, "https://x.example/console/callback") is None  # used
        sign_out = sessions.hosted_sign_out("https://x.example/console/sign-in?probe=1")
        assert sign_out is not None and sign_out.startswith(f"{domain}/logout?client_id=app")
    finally:
        server.shutdown()
