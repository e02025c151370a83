"""End to end, as a person would: start ``complaints run``, send a complaint over SMTP,
follow the links in the outbox, read the pages, submit the forms, move the clock, and
read the case from the staff API. Nothing but SMTP and HTTP."""

from __future__ import annotations

import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    base: str
    smtp_port: int

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str]:
        url = path if path.startswith("http") else self.base + path
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")

    def json(self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        status, text = self.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        assert status == 200, (status, text)
        return json.loads(text)

    def mails(self, case_no: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.json("GET", "/_local/mail.json" + (f"?case={case_no}" if case_no else ""))
        return result

    def link(self, step: str, to: str, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for mail in reversed(self.mails()):
                if to in mail["to"]:
                    for link in mail["links"]:
                        if link["step"] == step:
                            return str(link["url"])
            time.sleep(0.1)
        raise AssertionError(f"no {step} link for {to}")

    def open_and_submit(self, url: str, **fields: str) -> str:
        status, page = self.request("GET", url)
        assert status == 200, page
        token = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
        assert token, "the page carries a form token"
        form = urllib.parse.urlencode({**fields, "form_token": token.group(1)}).encode()
        status, done = self.request("POST", url, form, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, done
        return done


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    http_port, smtp_port = _free_port(), _free_port()
    env = {**os.environ, "COMPLAINTS_HTTP_PORT": str(http_port), "COMPLAINTS_SMTP_PORT": str(smtp_port),
           "COMPLAINTS_CLOCK": "manual"}
    proc = subprocess.Popen([sys.executable, "-m", "infra.local.cli", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stack = Stack(f"http://127.0.0.1:{http_port}", smtp_port)
    try:
        end = time.monotonic() + 60
        while True:
            try:
                stack.request("GET", "/_local/clock")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < end, "the stack did not start"
                time.sleep(0.2)
        yield stack
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_complaint_from_mail_to_survey(stack: Stack) -> None:
    raw = (ROOT / "tests" / "data" / "emails" / "p01_brake_failure_sh001.eml").read_bytes()
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
        refused = smtp.sendmail("liu.wei@mail.example", ["sh001@complaints.aurora-motors.example"], raw)
        assert refused == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("x@mail.example", ["nobody@elsewhere.example"], raw)

    # The customer is acknowledged with a status link; the GM and the brand hear of a critical case at once.
    ack_link = stack.link("status", "liu.wei@mail.example")
    ack = next(m for m in stack.mails() if "liu.wei@mail.example" in m["to"])
    case_no = ack["case_no"]
    assert ack["headers"]["Auto-Submitted"] == "auto-replied" and ack["headers"]["X-Case-Number"] == case_no
    first_contact = stack.link("first_contact", "cs.sh001@dealers.example")  # the workflow has run its triage
    critical = {m["to"][0] for m in stack.mails(case_no) if "【重大/紧急投诉】" in m["subject"]}
    assert critical == {"gm.sh001@dealers.example", "cr.center@aurora-motors.example"}
    status, page = stack.request("GET", ack_link)
    assert status == 200 and case_no in page and "首次联系客户" in page

    # The dealer's CS head: a scanner's GET and HEAD change nothing; a POST without the page's token is refused.
    for method in ("GET", "HEAD", "GET"):
        assert stack.request(method, first_contact)[0] == 200
    assert stack.request("POST", first_contact, b"notes=called", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 403
    done = stack.open_and_submit(first_contact, notes="Called Mr Liu, apologised, car towed to the workshop.")
    assert "已提交" in done
    replay = stack.request("GET", first_contact)
    assert replay[0] == 410 and "cs.sh001@dealers.example" in replay[1]

    stack.open_and_submit(stack.link("investigation", "cs.sh001@dealers.example"),
                          findings="Brake booster vacuum hose cracked.", root_cause="product",
                          responsibility="none", preliminary_feedback="We found a cracked brake booster hose.")
    stack.open_and_submit(stack.link("plan", "cs.sh001@dealers.example"),
                          measures="Replace the booster hose, full brake inspection, loan car for two days.",
                          comp_kind_1="free_service", comp_value_1="1800", comp_desc_1="repair",
                          comp_kind_2="loan_car", comp_value_2="600", comp_desc_2="loan car")
    approval = stack.link("approval", "gm.sh001@dealers.example")  # ¥2,400 needs the GM
    status, page = stack.request("GET", approval)
    assert status == 200 and "Replace the booster hose" in page and "2,400.00" in page
    stack.open_and_submit(approval, decision="approve", comment="OK")
    stack.open_and_submit(stack.link("customer_reply", "liu.wei@mail.example"), decision="accept")
    stack.open_and_submit(stack.link("carry_out", "cs.sh001@dealers.example"), notes="Repaired and handed back.")

    # The survey goes out two working days after closing: move the clock.
    clock = stack.json("POST", "/_local/clock", {"advance_hours": 24 * 5})
    assert clock["mode"] == "manual"
    stack.open_and_submit(stack.link("survey", "liu.wei@mail.example"), grade="very_satisfied", comment="Fast.")

    token = stack.json("POST", "/_local/token", {"email": "cs.sh001@dealers.example"})["token"]
    end = time.monotonic() + 30
    while True:
        case = stack.json("GET", f"/api/cases/{case_no}", headers={"Authorization": f"Bearer {token}"})
        if (case["phase"] == "closed" and case["survey"]["score"] is not None) or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert case["phase"] == "closed" and case["survey"]["score"] == 100
    assert case["severity"] == "critical" and case["safety"] is True and case["dealer"] == "SH001"
    assert all(m["met_at"] for m in case["milestones"]) and not any(m["breached"] for m in case["milestones"])
    assert {"registered", "critical_alert", "first_contact_recorded", "survey_recorded"} <= {e["type"] for e in case["timeline"]}

    # Another dealer's staff cannot see it; no token, no API.
    other = stack.json("POST", "/_local/token", {"email": "cs.bj002@dealers.example"})["token"]
    assert stack.request("GET", f"/api/cases/{case_no}", headers={"Authorization": f"Bearer {other}"})[0] == 404
    assert stack.request("GET", f"/api/cases/{case_no}")[0] == 401
