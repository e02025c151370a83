"""HTML for link pages: small, mobile-first, no external assets, zh and en."""

from __future__ import annotations

from typing import Any

from .actions import View
from .notifications import CUSTOMER_EVENTS, TEMPLATES, html_lang, localize, step_name

T: dict[str, tuple[str, str]] = {
    "status.title": ("投诉处理进度", "Your complaint"),
    "gone.decided": ("此事项已由 {by} 于 {at} 处理，无需再次操作。", "This was already decided by {by} at {at}; nothing more to do."),
    "gone.used": ("此链接已于 {at} 使用过。", "This link was already used at {at}."),
    "gone.expired": ("此链接已过期。如需帮助，请直接回复我们的邮件。", "This link has expired. If you need help, just reply to our mail."),
    "gone.closed": ("此步骤已结束，案件已进入下一环节。", "This step is over; the case has moved on."),
    "gone.reassigned": ("此审批因超时已转交 {by} 处理，原链接已失效。", "This approval was passed on to {by} after its deadline; this link no longer works."),
    "error.404": ("链接无效。请检查链接是否完整。", "This link is not valid. Please check that it is complete."),
    "error.403": ("无法验证此次提交，请重新打开邮件中的链接后再提交。", "We could not verify this submission. Please open the link from the mail again and resubmit."),
    "error.405": ("此页面只能查看。", "This page can only be viewed."),
    "error.413": ("提交的内容过大。", "What you sent is too large."),
    "error.429": ("请求过于频繁，请稍后再试。", "Too many requests; please try again in a minute."),
    "error.500": ("系统暂时无法处理，请稍后重试。您的信息没有丢失。", "Something went wrong on our side; please try again shortly. Nothing you sent was lost."),
}


def customer_event(event_type: str, step: str | None, language: str) -> str:
    if event_type == "step_opened" and step:
        zh, en = ("处理中：" + step_name(step, "zh"), "In progress: " + step_name(step, "en"))
    else:
        zh, en = CUSTOMER_EVENTS.get(event_type, (event_type, event_type.replace("_", " ")))
    return zh if language.startswith("zh") else en


def t(key: str, zh: bool, **kw: Any) -> str:
    text = T[key][0 if zh else 1]
    return text.format(**{k: (v if v is not None else "—") for k, v in kw.items()})


def render(view: View) -> str:
    zh = view.language.startswith("zh")
    ctx = {"zh": zh, "html_lang": html_lang(view.language), "t": lambda key, **kw: t(key, zh, **kw), "step_name": lambda s: step_name(s, view.language),
           "event_text": lambda e: customer_event(e.type, e.data.get("step"), view.language),
           **view.data}
    if view.kind in ("gone", "error"):
        key = f"gone.{view.data.get('reason')}" if view.kind == "gone" else f"error.{view.status}"
        ctx["message"] = t(key if key in T else "error.500", zh, by=view.data.get("by"), at=view.data.get("at"))
    html = TEMPLATES.get_template(f"pages/{view.kind if view.kind != 'error' else 'gone'}.html").render(ctx)
    return localize(html, view.language)


def error_view(status: int, language: str = "zh") -> View:
    return View(status, "error", language, {})
