"""The review queue in a real headless Chromium at 1280 and 390 px: the brand CR center signs in,
sees a possible safety risk and a low-confidence category with their evidence, dismisses the one
and settles the other, one click each.

The stack runs in this process (the local runtime and its HTTP server on a free port) because
the two cases need a classification the classifier is unsure of: it is written over what intake
decided, as the integration tests do. Everything after that goes through the browser only.
Screenshots go to ``.local-state/screenshots/`` (ignored by git): review-desktop.png,
review-case-flag.png, review-phone.png, review-phone-done.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from infra.local.http import LocalHttpServer
from infra.local.runtime import LocalRuntime
from infra.local.settings import LocalSettings
from shared.runtime.wiring import services
from tests.integration.test_review_queue import flag_possible_safety, register, unsure_of_category

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".local-state" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
CR = "cr.center@aurora-motors.example"


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def base(manual_runtime: LocalRuntime) -> Iterator[str]:
    server = LocalHttpServer(manual_runtime, LocalSettings(http_port=0, smtp_port=0)).start()
    yield f"http://127.0.0.1:{server.server.server_address[1]}"
    server.stop()


def test_review_queue_at_1280_and_390_px(manual_runtime: LocalRuntime, base: str, browser: Browser) -> None:
    safety = register(manual_runtime, "p01_brake_failure_sh001.eml")
    unsure = register(manual_runtime, "p23_big5_maintenance_price_sh001.eml")
    flag_possible_safety(safety)
    unsure_of_category(unsure)

    page = browser.new_page(viewport=DESKTOP)
    page.goto(base + "/console")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    page.get_by_label("邮箱").fill(CR)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("link", name="复核队列").click()
    rows = page.locator("section.review-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(safety)  # the older one first
    expect(rows.first).to_contain_text("可能存在安全隐患——请确认")
    expect(rows.first).to_contain_text("刹车踩到底")
    expect(rows.nth(1)).to_contain_text("类别待确认")
    expect(rows.nth(1)).to_contain_text("多收了工时费")
    assert shot(page, "review-desktop").stat().st_size > 5000
    # The case page and the list show the flag where they show the severity.
    page.get_by_role("link", name=safety).click()
    expect(page.locator("#safety-review")).to_contain_text("刹车踩到底")
    expect(page.locator("#safety-review").get_by_role("button", name="确认有安全隐患")).to_be_visible()
    assert shot(page, "review-case-flag").stat().st_size > 5000
    page.get_by_role("link", name="案件", exact=True).click()
    expect(page.locator("tr", has_text=safety)).to_contain_text("可能存在安全隐患——请确认")

    phone = browser.new_page(viewport=PHONE, is_mobile=True)
    phone.context.add_cookies([{"name": c["name"], "value": c["value"], "url": base + "/console"}
                               for c in page.context.cookies()])
    phone.goto(base + "/console/review")
    expect(phone.locator("section.review-row")).to_have_count(2)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing runs off the screen
    assert shot(phone, "review-phone").stat().st_size > 5000

    phone.locator("section.review-row", has_text=safety).get_by_role("button", name="排除：无安全隐患").click()
    expect(phone.get_by_role("status")).to_have_text("已记录安全隐患复核结果。")
    row = phone.locator("section.review-row", has_text=unsure)
    row.get_by_label("类别").select_option("service")
    row.get_by_role("button", name="确认类别").click()
    expect(phone.get_by_role("status")).to_have_text("类别已确认。")
    expect(phone.locator("section.review-row")).to_have_count(0)
    expect(phone.locator("main")).to_contain_text("没有待复核的案件。")
    assert shot(phone, "review-phone-done").stat().st_size > 3000

    store = services().store
    assert store.get_case(safety).classification.safety_review == "dismissed"
    assert store.get_case(unsure).classification.category == "service"
    # The case page no longer asks; the list shows no flag.
    page.goto(base + f"/console/cases/{safety}")
    expect(page.locator("body")).not_to_contain_text("可能存在安全隐患——请确认")
    expect(page.locator("body")).to_contain_text("安全隐患已排除")
