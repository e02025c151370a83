"""End to end, as a person would: start ``complaints run``, send a complaint over SMTP,
follow the links in the outbox, read the pages, submit the forms, move the clock, and
read the case from the staff API. Nothing but SMTP and HTTP."""

from __future__ import annotations

import smtplib
import time

import pytest

from tests.e2e.conftest import ROOT, Stack


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
    link = lambda step, to: stack.link(step, to, case_no)  # noqa: E731
    assert ack["headers"]["Auto-Submitted"] == "auto-replied" and ack["headers"]["X-Case-Number"] == case_no
    first_contact = link("first_contact", "cs.sh001@dealers.example")  # the workflow has run its triage
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

    stack.open_and_submit(link("investigation", "cs.sh001@dealers.example"),
                          findings="Brake booster vacuum hose cracked.", root_cause="product",
                          responsibility="none", preliminary_feedback="We found a cracked brake booster hose.")
    stack.open_and_submit(link("plan", "cs.sh001@dealers.example"),
                          measures="Replace the booster hose, full brake inspection, loan car for two days.",
                          comp_kind_1="free_service", comp_value_1="1800", comp_desc_1="repair",
                          comp_kind_2="loan_car", comp_value_2="600", comp_desc_2="loan car")
    approval = link("approval", "gm.sh001@dealers.example")  # ¥2,400 needs the GM
    status, page = stack.request("GET", approval)
    assert status == 200 and "Replace the booster hose" in page and "2,400.00" in page
    stack.open_and_submit(approval, decision="approve", comment="OK")
    stack.open_and_submit(link("customer_reply", "liu.wei@mail.example"), decision="accept")
    stack.open_and_submit(link("carry_out", "cs.sh001@dealers.example"), notes="Repaired and handed back.")

    # The survey goes out two working days after closing: move the clock.
    clock = stack.json("POST", "/_local/clock", {"advance_hours": 24 * 5})
    assert clock["mode"] == "manual"
    stack.open_and_submit(link("survey", "liu.wei@mail.example"), grade="very_satisfied", comment="Fast.")

    token = stack.json("POST", "/_local/token", {"email": "cs.sh001@dealers.example"})["token"]
    end = time.monotonic() + 30
    while True:
        case = stack.json("GET", f"/api/cases/{case_no}", headers={"Authorization": f"Bearer {token}"})
        recorded = {e["type"] for e in case["timeline"]}  # the event follows the saved answer
        if (case["phase"] == "closed" and case["survey"]["score"] is not None and "survey_recorded" in recorded) \
                or time.monotonic() > end:
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
