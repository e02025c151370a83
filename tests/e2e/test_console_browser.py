"""The staff console in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
the brand's customer-relations center signs in, filters the cases, opens the one about to
breach, corrects its triage, opens the monthly report and searches the case library.
Screenshots (``make screenshots``: docs/screenshots/): console-list.png, console-case.png,
console-report.png, console-library.png, console-list-phone.png."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, ViewportSize, expect

from tests.e2e.conftest import Shot, Stack
from tests.e2e.test_browser import PHONE

DESKTOP: ViewportSize = {"width": 1280, "height": 860}
CR = "cr.center@aurora-motors.example"
CS = "cs.sh001@dealers.example"


def while_the_stores_are_open(stack: Stack) -> None:
    """Hour deadlines count the dealers' service hours (08:30-18:00, policy.md §5): the list's
    states below assume calls taken in opening hours, so the clock moves on to noon in Shanghai."""
    now = datetime.fromisoformat(stack.json("GET", "/_local/clock")["now"].replace("Z", "+00:00"))
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    if not time(12, 0) <= local.time() <= time(15, 0):
        day = local.date() + timedelta(days=1 if local.time() > time(15, 0) else 0)
        stack.json("POST", "/_local/clock", {"set": datetime.combine(day, time(12, 0), local.tzinfo).isoformat()})


def register(stack: Stack, token: str, minutes_ago: int, **fields: str) -> str:
    """A complaint taken by phone ``minutes_ago`` (the staff API's manual intake)."""
    now = datetime.fromisoformat(stack.json("GET", "/_local/clock")["now"].replace("Z", "+00:00"))
    received = (now - timedelta(minutes=minutes_ago)).isoformat()
    result = stack.json("POST", "/api/intake", {"channel": "hotline_400", "received_at": received, **fields},
                        {"Authorization": f"Bearer {token}"})
    return str(result["case_no"])


def close_through_the_links(stack: Stack, case_no: str, customer: str) -> None:
    """Walk a case from first contact to closed, as the dealer, its manager and the customer do."""
    def submit(step: str, to: str, **fields: str) -> None:
        stack.open_and_submit(stack.link(step, to, case_no), **fields)
    submit("first_contact", CS, notes="已致电客户，约好明天到店检查。", method="phone")
    submit("investigation", CS, findings="空调滤芯未按保养单更换，工单漏项。", root_cause="service",
           responsibility="employee", preliminary_feedback="经查是我店保养漏项，向您致歉，将免费补做。")
    submit("plan", CS, measures="免费更换空调滤芯并清洗蒸发箱；服务顾问培训。", comp_kind_1="free_service",
           comp_value_1="680", comp_desc_1="补做保养")
    submit("approval", "service.sh001@dealers.example", decision="approve", comment="同意")
    submit("customer_reply", customer, decision="accept")
    submit("carry_out", CS, notes="已补做并清洗，客户满意。")


def test_brand_staff_sign_in_filter_open_a_case_the_report_and_the_library(stack: Stack, browser: Browser,
                                                                           shot: Shot) -> None:
    while_the_stores_are_open(stack)
    token = stack.json("POST", "/_local/token", {"email": CR})["token"]
    phone = {"customer_name": "赵敏", "customer_phone": "13911112222"}
    soon = register(stack, token, 55, dealer="SH001", subject="新车刹车异响，担心安全",
                    description="客户来电：新车提车两周，低速刹车有明显金属摩擦声，担心刹车片有问题。", **phone)
    later = register(stack, token, 48, dealer="SH001", subject="保养后仪表盘报警",
                     description="客户来电：昨天在店里保养，今天仪表盘亮起胎压报警，怀疑保养时碰了传感器。",
                     customer_name="孙丽", customer_phone="13722223333")
    overdue = register(stack, token, 150, dealer="BJ002", subject="报价和结算金额不一致",
                       description="客户来电：钣金维修报价 1800 元，结算时收了 2600 元，没有事先告知。",
                       customer_name="马超", customer_phone="13633334444")
    fresh = register(stack, token, 5, dealer="GZ003", subject="试驾预约被放鸽子",
                     description="客户来电：预约周六上午试驾，到店后被告知车辆不在，销售也联系不上。",
                     customer_name="黄蕾", customer_phone="13544445555")
    done = register(stack, token, 30, dealer="SH001", subject="保养漏做空调滤芯",
                    description="客户来电：上周保养单写了更换空调滤芯，拆开看还是旧的。我叫周杰，电话 13812345678，"
                                "车牌沪B54321。", customer_name="周杰", customer_email="zhou.jie@mail.example")
    close_through_the_links(stack, done, "zhou.jie@mail.example")

    shots: list[Path] = []
    page = browser.new_page(viewport=DESKTOP)
    page.goto(stack.base + "/console")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    page.get_by_label("邮箱").fill(CR)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("link", name="案件", exact=True)).to_be_visible()

    # Open cases only: breached first (critical ones before the rest), then about to breach, nearest due first.
    page.get_by_label("环节").select_option("open")
    page.get_by_role("button", name="筛选").click()
    rows = page.locator("table.cases tbody tr")
    expect(page.locator("table.cases")).to_contain_text(later)
    order = [next((no for no in (overdue, soon, later) if no in text), "") for text in rows.all_inner_texts()]
    assert [no for no in order if no] == [overdue, soon, later]  # other tests' cases may sit around them
    expect(page.locator("tr", has_text=soon).locator(".badge").first).to_have_text("即将超时")
    expect(page.locator("tr", has_text=overdue).locator(".badge").first).to_have_text("已超时")
    expect(page.locator("tr", has_text=fresh).locator(".badge").first).to_have_text("正常")
    expect(page.locator("table.cases")).not_to_contain_text(done)  # closed
    shots.append(shot(page, "console-list"))

    phone_page = browser.new_page(viewport=PHONE, is_mobile=True)
    phone_page.context.add_cookies([{"name": c["name"], "value": c["value"], "url": stack.base + "/console"}
                                    for c in page.context.cookies()])
    phone_page.goto(page.url)
    expect(phone_page.locator("table.cases")).to_contain_text(soon)
    shots.append(shot(phone_page, "console-list-phone"))

    page.get_by_label("门店").select_option("BJ002")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("table.cases tbody tr")).to_have_count(
        page.locator("table.cases tbody tr", has_text="BJ002").count())
    expect(page.locator("table.cases")).to_contain_text(overdue)
    expect(page.locator("table.cases")).not_to_contain_text(soon)

    # Open the case about to breach; correct its triage (a safety risk is critical).
    page.goto(stack.base + "/console/cases?phase=open&sla=at_risk")
    page.get_by_role("link", name=soon).click()
    expect(page.get_by_role("heading", name="新车刹车异响，担心安全")).to_be_visible()
    expect(page.locator(".card", has_text="时限节点")).to_contain_text("首次联系")
    expect(page.locator("ol.timeline")).to_contain_text("Registered")
    page.get_by_label("安全隐患").check()
    page.get_by_label("更正原因").fill("刹车异响属安全隐患")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("status")).to_have_text("分类已更正。")
    expect(page.locator("ol.timeline")).to_contain_text("Classification corrected")
    shots.append(shot(page, "console-case"))

    # The monthly report (the reports function's, served to the console's session), then the case library.
    page.get_by_role("link", name="月度报表").click()
    expect(page).to_have_url(re.compile(r"/console/reports/\d{4}-\d{2}$"))
    expect(page.locator("body")).to_contain_text("极光汽车")
    shots.append(shot(page, "console-report"))
    page.go_back()
    page.get_by_role("link", name="案例库").click()
    page.get_by_label("关键词").fill("空调滤芯")
    page.get_by_role("button", name="搜索").click()
    entry = page.locator("article.entry", has_text="保养漏做空调滤芯")
    expect(entry).to_be_visible()
    for personal in ("周杰", "13812345678", "沪B54321", "zhou.jie"):
        expect(entry).not_to_contain_text(personal)
    entry.get_by_text("处理经过").click()
    expect(entry).to_contain_text("空调滤芯未按保养单更换")
    shots.append(shot(page, "console-library"))
    assert len(shots) == 5 and all(p.stat().st_size > 5000 for p in shots)
