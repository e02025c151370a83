"""The pages in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
the manager approves from the link in his mail, the customer follows the case, answers
the plan and the survey. Screenshots at phone width (``make screenshots``: docs/screenshots/)."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.conftest import ROOT, Shot, Stack

PHONE: ViewportSize = {"width": 390, "height": 844}
def phone_page(browser: Browser) -> Page:
    return browser.new_page(viewport=PHONE, device_scale_factor=1, is_mobile=True)


def test_manager_and_customer_act_in_a_real_browser(stack: Stack, browser: Browser, shot: Shot) -> None:
    raw = (ROOT / "tests" / "data" / "emails" / "p04_battery_smell_en_html_vin.eml").read_bytes()
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
        smtp.sendmail("john.miller@mail.example", ["complaints@aurora-motors.example"], raw)
    status_url = stack.link("status", "john.miller@mail.example")
    case_no = next(m["case_no"] for m in stack.mails() if "john.miller@mail.example" in m["to"])

    def link(step: str, to: str) -> str:
        return stack.link(step, to, case_no)

    cs = "cs.sh001@dealers.example"
    stack.open_and_submit(link("first_contact", cs), notes="Called Mr Miller; asked him not to drive the car.")
    stack.open_and_submit(link("investigation", cs), findings="Cooling-pump connector overheated.",
                          root_cause="product", responsibility="none",
                          preliminary_feedback="We found an overheated connector near the battery cooling pump.")
    stack.open_and_submit(link("plan", cs),
                          measures="Replace the connector and harness, full battery check, loan car for the repair.",
                          comp_kind_1="free_service", comp_value_1="3500", comp_kind_2="loan_car", comp_value_2="1200")

    shots: list[Path] = []
    # The GM opens the approval link from his mail on his phone, reads the plan and approves.
    page = phone_page(browser)
    page.goto(link("approval", "gm.sh001@dealers.example"))
    expect(page.locator("pre", has_text="Replace the connector and harness")).to_be_visible()
    expect(page.get_by_text("¥4,700.00")).to_be_visible()
    shots.append(shot(page, "approval"))
    page.get_by_label("批准").check()
    page.get_by_role("button", name="提交").click()
    expect(page.get_by_role("status")).to_contain_text("已提交")
    shots.append(shot(page, "approval-done"))

    # The customer follows the case, then answers the plan.
    page = phone_page(browser)
    page.goto(status_url)
    expect(page.get_by_text(f"Case number {case_no}")).to_be_visible()
    shots.append(shot(page, "status"))
    page.goto(link("customer_reply", "john.miller@mail.example"))
    expect(page.get_by_role("heading", name="Our proposal to you")).to_be_visible()
    expect(page.get_by_text("loan car", exact=True)).to_be_visible()
    shots.append(shot(page, "plan-answer"))
    page.get_by_label("Accept").check()
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you")

    stack.open_and_submit(link("carry_out", cs), notes="Repaired; car returned to Mr Miller.")
    stack.json("POST", "/_local/clock", {"advance_hours": 24 * 5})

    page.goto(link("survey", "john.miller@mail.example"))
    shots.append(shot(page, "survey"))
    page.get_by_label("Your rating").select_option("satisfied")
    page.get_by_label("Anything you want to tell us (optional)").fill("Quick and honest, thank you.")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you")

    page.goto(status_url)
    expect(page.get_by_text("Where it stands: closed")).to_be_visible()
    shots.append(shot(page, "status-closed"))

    token = stack.json("POST", "/_local/token", {"email": "cr.center@aurora-motors.example"})["token"]
    end = time.monotonic() + 20
    while True:
        case = stack.json("GET", f"/api/cases/{case_no}", headers={"Authorization": f"Bearer {token}"})
        if case["survey"]["score"] is not None or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert case["phase"] == "closed" and case["survey"]["score"] == 95 and case["survey"]["opinion"]
    approvals = [e for e in case["timeline"] if e["type"] == "approval_recorded"]
    assert approvals and approvals[0]["actor"] == "gm.sh001@dealers.example"
    assert len(shots) == 6 and all(p.stat().st_size > 5000 for p in shots)
