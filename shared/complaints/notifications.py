"""Mails to customers and staff: zh/en templates, links, threading headers.

Every mail carries ``X-Case-Number`` and a Message-ID we record, so that a reply
threads back into its case; and ``Auto-Submitted`` plus
``X-Auto-Response-Suppress`` so that auto-responders do not answer it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
import opencc

from .clock import Clock
from .models import Case, MailMessage
from .ports import CaseStore, Mailer, OutgoingMail
from .review import safety_evidence
from .tenant import Tenant

STEP_NAMES: dict[str, tuple[str, str]] = {
    "first_contact": ("首次联系客户", "first contact with the customer"),
    "follow_up": ("回访不满意跟进", "follow-up of a poor survey score"),
    "investigation": ("调查与初步反馈", "investigation and preliminary feedback"),
    "plan": ("制定处理方案", "resolution plan"),
    "approval": ("方案审批", "plan approval"),
    "customer_reply": ("客户确认方案", "customer's answer to the plan"),
    "carry_out": ("方案执行", "carrying out the plan"),
    "survey": ("满意度回访", "satisfaction survey"),
    "extension_consent": ("同意延期", "an extension of the deadline"),
    "accountability": ("责任追究", "accountability"),  # a console link, not a step: the button of its mails
    "console": ("在控制台打开案件", "open the case in the console"),  # a console link too
}

PHASE_NAMES: dict[str, tuple[str, str]] = {
    **STEP_NAMES,
    "closed": ("已结案", "closed"),
    "needs_attention": ("需人工处理", "needs attention"),
}


# What the customer's status page says for each timeline event it shows.
CUSTOMER_EVENTS: dict[str, tuple[str, str]] = {
    "registered": ("我们收到了您的投诉并已登记", "We received and registered your complaint"),
    "first_contact_recorded": ("客服人员已与您联系", "Our customer service contacted you"),
    "investigation_recorded": ("调查完成，已给您初步答复", "Investigation done; we sent you a first answer"),
    "customer_reply_recorded": ("您已答复处理方案", "You answered our plan"),
    "closed": ("方案已执行，案件已结案", "The plan was carried out and the case closed"),
    "survey_recorded": ("感谢您的评价", "Thank you for your rating"),
    "follow_up_opened": ("我们将再次跟进您的意见", "We are following up on your feedback"),
    "customer_mail": ("收到您的来信", "We received your mail"),
}


COMPENSATION_KINDS: dict[str, tuple[str, str]] = {
    "money": ("现金补偿", "cash compensation"), "free_service": ("免费维修/保养", "free repair or service"),
    "product": ("产品/配件", "product or parts"), "loan_car": ("代步车", "loan car"), "coupon": ("代金券", "voucher"),
    "buy_back": ("车辆回购", "buy-back of the car"), "vehicle_replacement": ("换车", "vehicle replacement"),
}


def compensation_name(kind: str, language: str) -> str:
    zh, en = COMPENSATION_KINDS.get(kind, (kind, kind))
    return zh if language.startswith("zh") else en


CUSTOMER_FACING = frozenset({"first_contact", "investigation", "plan", "customer_reply", "carry_out", "survey", "follow_up"})


_TO_TRADITIONAL = opencc.OpenCC("s2t")


def localize(text: str, language: str) -> str:
    """Traditional Chinese for customers who wrote in it: one set of Chinese templates,
    converted by OpenCC, rather than a second copy of every template to keep in step."""
    return str(_TO_TRADITIONAL.convert(text)) if language == "zh-Hant" else text


def html_lang(language: str) -> str:
    return {"zh": "zh-CN", "zh-Hant": "zh-Hant"}.get(language, "en")


ROLE_NAMES: dict[str, tuple[str, str]] = {
    "cs_head": ("客服部门负责人", "the head of customer service"), "service_manager": ("售后服务经理", "the service manager"),
    "general_manager": ("总经理", "the general manager"), "regional_manager": ("区域经理", "the regional manager"),
    "brand_cr": ("品牌客户关系中心", "the brand's customer-relations center"),
}


def role_name(role: str, language: str) -> str:
    zh, en = ROLE_NAMES.get(role, (role, role.replace("_", " ")))
    return zh if language.startswith("zh") else en


def step_name(step: str, language: str) -> str:
    zh, en = PHASE_NAMES.get(step, (step, step))
    return zh if language.startswith("zh") else en


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    language: str
    customer: bool = False


@dataclass
class MailLinks:
    """Links for one mail: (step, url), in the order they are shown."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, step: str, url: str) -> MailLinks:
        self.items.append((step, url))
        return self


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shared.complaints", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["step_name"] = step_name
    env.filters["compensation_name"] = compensation_name
    env.globals["safety_evidence"] = safety_evidence
    return env


TEMPLATES = _templates()


class Notifier:
    def __init__(self, store: CaseStore, mailer: Mailer, clock: Clock) -> None:
        self._store = store
        self._mailer = mailer
        self._clock = clock
        self._held = threading.local()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Mails composed in the block go out when it ends without error — after the state
        they announce is saved, so nobody can act on a mail before the case says so."""
        held: list[Callable[[], None]] = []
        self._held.mails = held
        try:
            yield
        finally:
            self._held.mails = None
        for send in held:
            send()

    def local_time(self, tenant: Tenant, case: Case, at: datetime | None) -> str:
        if at is None:
            return ""
        cal = tenant.calendar_for(case.dealer)
        return cal.local(at).strftime("%Y-%m-%d %H:%M")

    def send(self, *, tenant: Tenant, case: Case, kind: str, to: Recipient,
             links: MailLinks | None = None, event: str | None = None, **context: Any) -> None:
        """Compose and send one mail. With ``event`` (the case event it announces) a person
        gets it once: a second mail for the same event and recipient is dropped, whether in
        the same batch or sent before (a resumed case, a retried call)."""
        held = getattr(self._held, "mails", None)
        if held is not None:
            held.append(lambda: self._send_now(tenant, case, kind, to, links, context, event))
            return
        self._send_now(tenant, case, kind, to, links, context, event)

    def already_sent(self, case_no: str, event: str, email: str) -> bool:
        return any(m.direction == "out" and m.event == event and email.lower() in (r.lower() for r in m.recipients)
                   for m in self._store.messages(case_no))

    def _send_now(self, tenant: Tenant, case: Case, kind: str, to: Recipient, links: MailLinks | None,
                  context: dict[str, Any], event: str | None = None) -> None:
        if event is not None and self.already_sent(case.case_no, event, to.email):
            return
        language = to.language
        zh = language.startswith("zh")
        dealer = tenant.dealer(case.dealer) if tenant.has_dealer(case.dealer) else None
        ctx = {
            "zh": zh, "case": case, "to": to, "tenant": tenant,
            "brand_name": (tenant.brand.name_zh if zh and tenant.brand.name_zh else tenant.brand.name),
            "dealer_name": ((dealer.name_zh if zh and dealer.name_zh else dealer.name) if dealer
                            else ("品牌客户关系中心" if zh else "brand customer-relations center")),
            "links": dict((links or MailLinks()).items),
            "fmt": lambda at: self.local_time(tenant, case, at),
            # A moment the mail may promise: only one still ahead (policy.md §5, truthful dates).
            "ahead": lambda at: at is not None and at > self._clock.now(),
            "step_label": lambda s: step_name(s, language),
            **context,
        }
        rendered = TEMPLATES.get_template(f"mail/{kind}.txt").render(ctx).strip()
        subject_line, _, body = rendered.partition("\n")
        subject = f"[{case.case_no}] {subject_line.removeprefix('Subject:').strip()}"
        body = body.strip() + "\n"
        html = TEMPLATES.get_template("mail/layout.html").render(
            subject=subject, paragraphs=[p for p in body.split("\n\n") if p.strip()],
            links=(links or MailLinks()).items, zh=zh, html_lang=html_lang(language), brand_name=ctx["brand_name"],
            case_no=case.case_no, footer=_footer(tenant, zh))
        text = localize(body + "\n" + _footer(tenant, zh) + "\n", language)
        subject, html = localize(subject, language), localize(html, language)
        domain = tenant.brand.sender_address.partition("@")[2] or "localhost"
        message_id = f"<{uuid.uuid4().hex}@{domain}>"
        headers = {
            "X-Case-Number": case.case_no,
            "Auto-Submitted": "auto-replied" if kind == "acknowledgement" else "auto-generated",
            "X-Auto-Response-Suppress": "All",
        }
        now = self._clock.now()
        link_list = [{"step": s, "url": u} for s, u in (links or MailLinks()).items]
        self._mailer.send(OutgoingMail(
            sender=tenant.brand.sender_address, sender_name=tenant.sender_name(language), to=[to.email],
            subject=subject, text=text, html=html, message_id=message_id, headers=headers,
            case_no=case.case_no, links=link_list, sent_at=now))
        # A mail with the link of the step the case waits on is that task's mail: a reply
        # answering it (In-Reply-To/References) may decide the task (``LinkActions.decide_by_mail``).
        timer = case.step_timer
        task_key = timer.key if timer is not None and any(step == timer.step for step, _ in (links or MailLinks()).items) else None
        message = MailMessage(case_no=case.case_no, direction="out", message_id=message_id.strip("<>"), at=now,
                              sender=tenant.brand.sender_address, recipients=[to.email], subject=subject,
                              text=text, kind=kind, links=[], task_key=task_key, event=event)
        self._store.add_message(message)


def _footer(tenant: Tenant, zh: bool) -> str:
    if zh:
        return (f"—— {tenant.brand.name_zh or tenant.brand.name} 客户关爱中心\n"
                "本邮件由投诉处理系统发送。如需补充信息，回复本邮件即可，您的回复会归入同一案件。")
    return (f"— {tenant.brand.name} Customer Care\n"
            "You can reply to this mail to add information: your reply is filed with the same case.")
