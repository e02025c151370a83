"""What happens behind a link: GET shows, POST decides.

A POST is accepted only with the page's ``form_token``; the fields are validated
*before* the link is claimed (a typo does not burn a link); the link is claimed by a
conditional write (one of two concurrent submissions wins); the task's decision is
recorded by a conditional write; only then is the state machine told, with the
task token that is current at that moment (it never leaves the server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from . import notes
from .deadlines import governing_milestone
from .errors import InvalidInputError, LinkForbiddenError, TaskNotOpenError
from .forms import ExtensionRequestForm, FirstContactForm, parse_form
from .lifecycle import Ctx, Lifecycle, outlook
from .links import LinkService
from .masking import mask_phone, mask_text
from .models import Case, Extension, Link, TimelineEvent
from .notifications import CUSTOMER_EVENTS, CUSTOMER_FACING, Recipient, role_name, step_name
from .replies import WORDS, MailReply, parse_reply
from .senders import counter_key


@dataclass(frozen=True)
class RequestMeta:
    ip: str = ""
    user_agent: str = ""


@dataclass
class View:
    """What a page shows; ``pages.render`` turns it into HTML, the API into JSON."""

    status: int
    kind: str  # step | status | done | gone | error
    language: str
    data: dict[str, Any] = field(default_factory=dict)


class LinkActions:
    def __init__(self, lifecycle: Lifecycle, links: LinkService) -> None:
        self.lifecycle = lifecycle
        self.links = links

    def show(self, link_id: str) -> View:
        link = self.links.resolve(link_id)
        ctx = self.lifecycle.load(link.case_no)
        if link.step == "status":
            return View(200, "status", ctx.tenant.brand.reply_language(ctx.case.language), self._status(ctx))
        if link.step == "extension_consent":
            return self._extension_view(ctx, link)
        gone = self._gone(ctx, link)
        if gone is not None:
            return gone
        return View(200, "step", self._language(ctx, link), self._step(ctx, link))

    def submit(self, link_id: str, data: dict[str, Any], meta: RequestMeta) -> View:
        link = self.links.resolve(link_id)
        if link.step == "status":
            raise LinkForbiddenError("this page only shows the case")
        if not self.links.form_token_valid(link, str(data.get("form_token") or "")):
            raise LinkForbiddenError("the form token is missing or does not match this link")
        ctx = self.lifecycle.load(link.case_no)
        if link.step == "extension_consent":
            return self._answer_extension(ctx, link, data)
        gone = self._gone(ctx, link)
        if gone is not None:
            return gone
        language = self._language(ctx, link)
        if data.get("intent") == "extension":
            return self._ask_extension(ctx, link, data)
        try:
            form = parse_form(link.step, data, ctx.tenant.policy_for(ctx.case.dealer))
            if isinstance(form, FirstContactForm) and ctx.case.dealer is None and not ctx.tenant.has_dealer(form.dealer):
                raise InvalidInputError("a dealer must be assigned", {"dealer": "choose the dealer that will handle it"})
        except InvalidInputError as exc:
            view = self._step(ctx, link)
            view.update(errors=exc.fields, values={k: v for k, v in data.items() if k != "form_token"})
            return View(400, "step", language, view)
        self.lifecycle.store.claim_link(link.link_hash, link.recipient, self.lifecycle.clock.now())
        try:
            outcome = self._decide(link.case_no, link.task_key or "", link.step, form.model_dump(mode="json"),
                                   link.recipient, {"via": "link", "ip": meta.ip, "user_agent": meta.user_agent[:200]})
        except TaskNotOpenError:
            return self._gone(self.lifecycle.load(link.case_no), link) or View(410, "gone", language, {})
        return View(200, "done", language, {"case_no": link.case_no, "step": link.step,
                                            "step_name": step_name(link.step, language), "outcome": outcome})

    # ----- extensions: staff ask from their step page, the customer answers from a link ------
    def _ask_extension(self, ctx: Ctx, link: Link, data: dict[str, Any]) -> View:
        language = self._language(ctx, link)
        try:
            form = ExtensionRequestForm.model_validate({k: v for k, v in data.items() if k in ("reason", "until")})
            self.lifecycle.request_extension(link.case_no, link.recipient, form.reason, form.until)
        except (ValidationError, InvalidInputError) as exc:
            errors = exc.fields if isinstance(exc, InvalidInputError) else {
                str(e["loc"][0]) if e["loc"] else "form": e["msg"] for e in exc.errors()}
            view = self._step(ctx, link)
            view.update(extension_errors=errors, values={k: v for k, v in data.items() if k != "form_token"})
            return View(400, "step", language, view)
        return View(200, "done", language, {"case_no": link.case_no, "step": link.step,
                                            "step_name": step_name(link.step, language),
                                            "outcome": "延期申请已发给客户" if language.startswith("zh")
                                            else "extension asked of the customer"})

    def _extension(self, ctx: Ctx, link: Link) -> Extension | None:
        number = (link.task_key or "").removeprefix("extension-")
        return next((e for e in ctx.case.extensions if str(e.id) == number), None)

    def _extension_view(self, ctx: Ctx, link: Link) -> View:
        ext = self._extension(ctx, link)
        language = ctx.tenant.brand.reply_language(ctx.case.language)
        if ext is None or ext.answer is not None or link.used_at is not None:
            return View(410, "gone", language, {"reason": "used", "at": self.lifecycle.notifier.local_time(
                ctx.tenant, ctx.case, ext.answered_at if ext else None), "case_no": link.case_no})
        milestone = ctx.case.milestone(ext.milestone, ext.cycle)
        return View(200, "step", language, {**self._step(ctx, link), "extension": ext,
                                            "current_due": milestone.due_at if milestone else None})

    def _answer_extension(self, ctx: Ctx, link: Link, data: dict[str, Any]) -> View:
        view = self._extension_view(ctx, link)
        if view.status != 200:
            return view
        ext = view.data["extension"]
        try:
            form = parse_form("extension_consent", data)
        except InvalidInputError as exc:
            view.data.update(errors=exc.fields)
            return View(400, "step", view.language, view.data)
        self.lifecycle.store.claim_link(link.link_hash, link.recipient, self.lifecycle.clock.now())
        decision = str(form.model_dump()["decision"])
        self.lifecycle.answer_extension(link.case_no, ext.id, decision, link.recipient)
        return View(200, "done", view.language, {"case_no": link.case_no, "step": link.step,
                                                 "step_name": step_name(link.step, view.language),
                                                 "outcome": decision})

    def _decide(self, case_no: str, task_key: str, step: str, form: dict[str, Any], by: str,
                how: dict[str, str]) -> str:
        """The one decision path of links and replies: record on the task (conditional),
        then tell the state machine with the token current now. If that token timed
        out meanwhile, the re-armed task hands the recorded decision over."""
        decision = {"outcome": _outcome(step, form), "form": form, **how}
        task = self.lifecycle.store.decide_task(case_no, task_key, decision, by, self.lifecycle.clock.now())
        self.lifecycle.workflow.succeed(task.token, {"task_key": task.key, "outcome": decision["outcome"]})
        return str(decision["outcome"])

    def decide_by_mail(self, case_no: str, mail: MailReply) -> str | None:
        """A reply whose first line is a decision ("同意", "APPROVE", "不接受 …") on the step the
        case waits for. Applied only when it comes from the person the step waits on, from a
        sender verified for its From domain (DMARC, or DKIM aligned with it: SPF alone never),
        in answer to the mail we sent for that very task. Otherwise nothing is applied, the
        attempt is on the timeline, and the sender, when the case's customer or staff, gets at
        most the policy's number of explanations a day. Returns the outcome, or None when the
        mail decides nothing (it stays an appended message)."""
        ctx = self.lifecycle.load(case_no)
        timer = ctx.case.step_timer
        if timer is None or timer.step not in WORDS:
            return None
        reply = parse_reply(timer.step, mail.text)
        if reply is None:
            return None
        expected = timer.assignee if timer.step == "approval" else (ctx.case.customer.email or "")
        field = "comment" if timer.step == "approval" else "reason"
        problem = None
        if mail.sender.lower() != expected.lower():
            problem = "sender"
        elif not mail.verified:
            problem = "unverified"
        elif not self._answers_task(case_no, timer.key, mail.answers):
            problem = "not_an_answer"
        else:
            try:
                form = parse_form(timer.step, {"decision": reply.decision, field: reply.comment})
            except InvalidInputError:
                problem = "incomplete"
        if problem is None:
            try:
                return self._decide(case_no, timer.key, timer.step, form.model_dump(mode="json"), mail.sender.lower(),
                                    {"via": "mail", "message_id": mail.message_id})
            except TaskNotOpenError:
                problem = "decided"
        now = self.lifecycle.clock.now()
        self.lifecycle.store.add_event(TimelineEvent(
            case_no=case_no, at=now, type="decision_by_mail_refused", actor=mail.sender.lower(),
            summary=f"A decision by reply mail ({reply.decision}) was not applied: {_REFUSALS[problem]}",
            data={"step": timer.step, "problem": problem, "message_id": mail.message_id}))
        allowance = ctx.policy.intake.refused_decision_replies_per_day
        if mail.may_be_told and allowance and self._may_explain(ctx, mail.sender, allowance):
            language = ctx.tenant.brand.reply_language(ctx.case.language) if timer.step == "customer_reply" else ctx.tenant.brand.languages[0]
            self.lifecycle.notifier.send(tenant=ctx.tenant, case=ctx.case, kind="reply_not_applied",
                                         to=Recipient(mail.sender, None, language), step=timer.step,
                                         problem=problem if problem == "incomplete" else "")
        return None

    def _answers_task(self, case_no: str, task_key: str, answers: tuple[str, ...]) -> bool:
        """Whether the mail answers a mail we sent for this very task (unguessable Message-IDs)."""
        ours = {m.message_id for m in self.lifecycle.store.messages(case_no)
                if m.direction == "out" and m.task_key == task_key}
        return any(mid in ours for mid in answers)

    def _may_explain(self, ctx: Ctx, sender: str, allowance: int) -> bool:
        now = self.lifecycle.clock.now()
        count = self.lifecycle.store.count_hit(counter_key("refused", ctx.tenant.brand.id, sender),
                                               now.strftime("%Y%m%d"), int(now.timestamp()) + 2 * 86400)
        return count <= allowance

    # ----- views ------------------------------------------------------------------------------
    def _language(self, ctx: Ctx, link: Link) -> str:
        if link.recipient == (ctx.case.customer.email or "").lower():
            return ctx.tenant.brand.reply_language(ctx.case.language)
        return ctx.tenant.brand.languages[0]

    def _gone(self, ctx: Ctx, link: Link) -> View | None:
        language = self._language(ctx, link)
        task = self.lifecycle.store.get_task(link.case_no, link.task_key or "")
        if task is not None and task.status == "decided":
            return View(410, "gone", language, {"reason": "decided", "by": task.decided_by,
                                                "at": self.lifecycle.notifier.local_time(ctx.tenant, ctx.case, task.decided_at),
                                                "case_no": link.case_no})
        if link.used_at is not None:
            return View(410, "gone", language, {"reason": "used", "by": link.used_by,
                                                "at": self.lifecycle.notifier.local_time(ctx.tenant, ctx.case, link.used_at),
                                                "case_no": link.case_no})
        timer = ctx.case.step_timer
        if task is None or timer is None or timer.key != link.task_key:
            return View(410, "gone", language, {"reason": "closed", "case_no": link.case_no})
        if link.step == "approval" and link.recipient != timer.assignee.lower():
            return View(410, "gone", language, {"reason": "reassigned", "by": timer.assignee,
                                                "case_no": link.case_no})
        return None

    def _step(self, ctx: Ctx, link: Link) -> dict[str, Any]:
        case, tenant = ctx.case, ctx.tenant
        customer_view = link.recipient == (case.customer.email or "").lower()
        fmt = lambda at: self.lifecycle.notifier.local_time(tenant, case, at)  # noqa: E731
        data: dict[str, Any] = {
            "step": link.step, "case": case, "customer_view": customer_view, "fmt": fmt,
            "form_token": self.links.form_token(link), "errors": {}, "values": {}, "extension_errors": {},
            "can_extend": not customer_view and self._extendable(ctx),
            "grades": list(ctx.policy.survey.grades), "dealers": tenant.dealers,
            "brand_name": tenant.brand.name_zh if self._language(ctx, link).startswith("zh") else tenant.brand.name,
        }
        if not customer_view:
            data["events"] = self.lifecycle.store.events(case.case_no)[-12:]
            data["dealer"] = tenant.dealer(case.dealer) if tenant.has_dealer(case.dealer) else None
            data["rejections"] = [a for a in case.approvals if a.decision == "reject"]
            data["approved"] = [a for a in case.approvals if case.plan and a.plan_revision == case.plan.revision
                                and a.decision == "approve"]
        return data

    def _exchanged(self, case: Case, events: list[TimelineEvent]) -> list[dict[str, Any]]:
        """The mails between us and this customer, oldest first; nobody else's."""
        email = (case.customer.email or "").lower()
        promoted_notes = notes.promoted(events)
        shown = []
        for m in self.lifecycle.store.messages(case.case_no):
            ours = m.direction == "out" and email in [r.lower() for r in m.recipients]
            # A note under the customer's address is not theirs until staff say so.
            theirs = m.direction == "in" and m.sender.lower() == email and notes.is_customers(m, promoted_notes)
            if ours or theirs:
                body = _without_links(m.text)
                shown.append({"at": m.at, "from_us": ours, "subject": masked(case, m.subject),
                              "text": masked(case, body[:800]) + ("…" if len(body) > 800 else "")})
        return shown

    def _extendable(self, ctx: Ctx) -> bool:
        timer = ctx.case.step_timer
        milestone = governing_milestone(ctx.case, timer.step) if timer else None
        return milestone is not None and milestone.met_at is None and self.lifecycle.clock.now() < milestone.due_at

    def _status(self, ctx: Ctx) -> dict[str, Any]:
        case, tenant = ctx.case, ctx.tenant
        fmt = lambda at: self.lifecycle.notifier.local_time(tenant, case, at)  # noqa: E731
        timeline = self.lifecycle.store.events(case.case_no)
        events = [e for e in timeline
                  if e.type in CUSTOMER_EVENTS or (e.type == "step_opened" and e.data.get("step") in CUSTOMER_FACING)]
        seen = outlook(ctx, self.lifecycle.clock.now())  # a past moment is never shown as a promise
        language = tenant.brand.reply_language(case.language)
        return {"case": case, "events": events, "next": seen.milestone, "late": seen.late, "promise": seen.promise,
                "handler": role_name(seen.handler, language) if seen.handler else None, "new_due": seen.new_due,
                "fmt": fmt, "messages": self._exchanged(case, timeline),
                "brand_name": tenant.brand.name_zh if language.startswith("zh") else tenant.brand.name,
                "dealer": tenant.dealer(case.dealer) if tenant.has_dealer(case.dealer) else None,
                "phone_masked": mask_phone(case.customer.phone) if case.customer.phone else None,
                "subject": masked(case, case.subject),
                "plan_measures": masked(case, case.plan.measures) if case.plan else ""}


_URL = re.compile(r"https?://\S+")
# Why a decision by mail was not applied, for staff (the sender is never told which).
_REFUSALS = {
    "sender": "not from the person this step waits for",
    "unverified": "the sender is not verified for its From domain (neither DMARC nor aligned DKIM passed)",
    "not_an_answer": "not in answer to the mail we sent for this step",
    "incomplete": "the decision lacks its reason",
    "decided": "the step was already decided",
}


def _without_links(text: str) -> str:
    """Mail text for the status page: links removed, so a forwarded status link opens no other step."""
    return _URL.sub("", text).strip()


def _outcome(step: str, form: dict[str, Any]) -> str:
    if step in ("approval", "customer_reply"):
        return str(form["decision"])
    return {"plan": "submitted", "survey": "rated"}.get(step, "done")


def masked(case: Case, text: str) -> str:
    """Text for the customer's status page: the case's contact data, and any other, masked."""
    vehicle = case.vehicle
    return mask_text(text, (case.customer.email, case.customer.phone, vehicle.vin if vehicle else None,
                            vehicle.plate if vehicle else None))


