"""The staff console: server-rendered pages on the staff API's function, for people with a
browser (phone first, no script, no external asset).

Sign-in: Cognito's hosted UI in AWS (authorization code + PKCE), an e-mail form locally
(``shared.runtime.sessions``). The session is an HttpOnly, SameSite=Strict cookie, checked
on every request; every POST also carries a CSRF token (an HMAC of the session) and, when
the browser sends one, an ``Origin`` of this host. A page reached from another site (a
link in a mail) arrives without the Strict cookie: the sign-in page first reloads itself
from here, which sends it, and goes on to the page asked for.

Reads go through the store's scoped methods with the caller's ``Viewer`` (access.py)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args
from urllib.parse import urlencode, urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import ForbiddenError, ServiceError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.staff_api import access
from functions.staff_api.access import FieldErrors
from shared.complaints import library, manual_intake, notes, reports
from shared.complaints.accountability import MEASURES, RESPONSIBILITIES, after_closure, label, may_act, proposal
from shared.complaints.calendar import WorkingCalendar
from shared.complaints.deadlines import warning_at
from shared.complaints.errors import InvalidInputError
from shared.complaints.library import LibraryEntry
from shared.complaints.models import Category, Phase, RootCause, Severity
from shared.complaints.notifications import PHASE_NAMES, TEMPLATES, compensation_name, html_lang
from shared.complaints.policy import Policy
from shared.complaints.review import awaits_safety_review, safety_evidence
from shared.complaints.tenant import TRIAGE, Tenant
from shared.complaints.views import (
    SLA_ORDER,
    CaseFilters,
    Sla,
    case_rows,
    export_csv,
    sla,
    store_dealer,
    store_phase,
)
from shared.runtime.callers import Caller, caller_from_claims
from shared.runtime.settings import settings
from shared.runtime.web import page_headers
from shared.runtime.wiring import services, staff_sessions

router = APIGatewayHttpRouter()

SESSION_COOKIE = "console_session"
SIGN_IN_COOKIE = "console_sign_in"
SESSION_SECONDS = 12 * 3600  # a working day; the token itself may end sooner (Cognito: 1 hour)
CALLBACK = "/console/callback"
LIST_LIMIT = 200  # cases a list shows; the dealer and phase filters narrow the index queries first

# ----- words --------------------------------------------------------------------------------------
TEXT: dict[str, tuple[str, str]] = {
    "console": ("投诉管理台", "Complaints console"), "sign_out": ("退出", "Sign out"), "cases": ("案件", "Cases"),
    "register": ("登记投诉", "Register a complaint"), "accountability": ("责任追究", "Accountability"),
    "library": ("案例库", "Case library"), "reports": ("月度报表", "Monthly report"), "filters": ("筛选", "Filters"),
    "dealer": ("门店", "Dealer"), "any": ("全部", "Any"), "phase": ("环节", "Phase"), "category": ("类别", "Category"),
    "severity": ("严重程度", "Severity"), "sla": ("时限", "Deadline"), "apply": ("筛选", "Apply"),
    "export": ("导出 CSV", "Export CSV"), "summary": ("概况", "Summary"), "cases_found": (" 件", " cases"),
    "sla.at_risk": ("即将超时", "About to breach"), "sla.breached": ("已超时", "Breached"),
    "sla.on_track": ("正常", "On track"), "sla.customer": ("等待客户", "Waiting on the customer"),
    "sla.none": ("无进行中时限", "No deadline running"), "case_no": ("案件编号", "Case"),
    "next_deadline": ("下一时限", "Next deadline"), "assignee": ("处理人", "Assignee"), "subject": ("主题", "Subject"),
    "limited": ("最多显示 200 件，请缩小筛选范围。", "At most 200 cases are shown: narrow the filters."),
    "no_cases": ("没有符合条件的案件。", "No case matches these filters."),
    "triage": ("品牌分派队列", "Brand triage queue"), "phase.open": ("未结案", "Open"),
    "no_subject": ("（无主题）", "(no subject)"), "needs_attention": ("需人工处理", "Needs attention"),
    "complaint": ("投诉内容", "The complaint"), "attachments": ("附件", "Attachments"),
    "milestones": ("时限节点", "Milestones"), "milestone": ("节点", "Milestone"), "due": ("期限", "Due"),
    "met": ("完成时间", "Met"), "state": ("状态", "State"), "cycle": ("轮次", "cycle"),
    "extended_from": ("原期限", "was"), "investigation": ("调查", "Investigation"),
    "root_cause": ("根本原因", "Root cause"), "responsibility": ("责任认定", "Responsibility"),
    "findings": ("调查结果", "Findings"), "plan": ("处理方案", "Plan"), "measures": ("措施", "Measures"),
    "compensation": ("补偿", "Compensation"), "approval": ("审批", "Approval"), "waiting": ("待审批", "waiting"),
    "timeline": ("处理记录", "Timeline"), "facts": ("案件信息", "Facts"), "channel": ("渠道", "Channel"),
    "level": ("级别", "Level"), "customer": ("客户", "Customer"), "vehicle": ("车辆", "Vehicle"),
    "survey": ("满意度", "Survey"), "correct_triage": ("更正分类", "Correct the triage"),
    "safety": ("安全隐患", "Safety risk"), "media": ("媒体/监管风险", "Media or regulator"),
    "reason": ("更正原因", "Reason"), "save": ("保存", "Save"), "assign": ("分派门店", "Assign a dealer"),
    "measure": ("处理措施", "Measure"), "person": ("责任人（工号或岗位）", "Person (staff id or role)"),
    "note": ("说明", "Note"), "done": ("已落实", "Done"), "overdue": ("已逾期", "Overdue"), "open": ("待落实", "Open"),
    "done_note": ("落实情况", "What was done"), "mark_done": ("标记已落实", "Mark done"),
    "no_responsibility": ("经认定无责任。", "No responsibility found."),
    "after_closure": ("结案后记录责任认定与处理措施。", "Recorded once the case is closed."),
    "gm_records": ("由门店总经理或品牌客户关系中心记录。",
                   "Recorded by the dealer's general manager or the brand's customer-relations center."),
    "correct_record": ("更正记录", "Correct the record"), "proposal": ("门店标准建议", "The dealer's schedule proposes"),
    "fine": ("罚款", "Fine"), "record": ("记录", "Record"), "registered": ("已登记，案件编号", "Registered as case"),
    "library_about": ("已结案案件，已去除个人信息（姓名、电话、邮箱、车架号、车牌、地址等），供培训使用。",
                      "Closed cases with personal data removed (names, phones, e-mail addresses, VINs, plates, "
                      "addresses), for training."),
    "keyword": ("关键词", "Keyword"), "search": ("搜索", "Search"), "entries": ("个案例", "entries"),
    "on_time": ("按时", "On time"), "late": ("有超时", "Late"), "how_handled": ("处理经过", "How it was handled"),
    "no_entries": ("暂无符合条件的案例。", "No entry matches."),
    "no_tasks": ("没有符合条件的责任追究事项。", "Nothing to show."),
    "show.overdue": ("已逾期", "Overdue"), "show.open": ("全部待落实", "All open"), "show.all": ("含已落实", "With done"),
    "sign_in": ("登录", "Sign in"), "email": ("邮箱", "E-mail"),
    "sign_in_local": ("本地环境：输入员工邮箱即可登录（AWS 上为 Cognito 登录页，需密码和验证码）。",
                      "Local stack: sign in with a staff e-mail (in AWS: Cognito's sign-in page, password and MFA)."),
    "not_staff": ("该邮箱不是本品牌的员工。", "That e-mail is not a staff member of this brand."),
    "signing_in": ("正在登录…", "Signing in…"), "sign_in_again": ("请重新登录", "Please sign in again"),
    "sign_in_expired": ("登录已过期，请重新登录。", "The sign-in expired: please sign in again."),
    "error": ("出错了", "Something went wrong"), "received": ("收到", "received"), "back": ("返回案件列表", "Back to the cases"),
    "error.403": ("无权执行此操作，或页面已过期：请刷新页面后重试。", "Not allowed, or the page expired: reload it and try again."),
    "error.404": ("没有这个案件，或您无权查看。", "No such case, or not one you may see."),
    "error.400": ("请检查填写的内容。", "Please check what you entered."),
    "resume": ("恢复处理", "Resume"), "resume_hint": ("问题排除后，从该环节重新开始（再次通知处理人）。",
                                                   "Once the cause is fixed: the step starts again, its assignee is asked again."),
    "flash.resume": ("已恢复处理。", "Resumed."),
    "promote": ("确认为客户来信", "Take as the customer's mail"),
    "flash.promote": ("已确认为客户来信。", "Taken as the customer's mail."),
    "flash.classification": ("分类已更正。", "Classification corrected."), "flash.dealer": ("已分派。", "Dealer assigned."),
    "flash.accountability": ("责任认定已记录。", "Accountability recorded."),
    "flash.done": ("已标记落实。", "Marked done."), "system": ("系统", "system"),
    "review": ("复核队列", "Review queue"), "possible_safety": ("可能存在安全隐患——请确认", "Possible safety risk — please confirm"),
    "review.possible_safety": ("可能存在安全隐患", "Possible safety risk"),
    "review.low_confidence": ("类别待确认", "Category unsure"), "confidence": ("把握", "Confidence"),
    "evidence": ("依据（客户原话）", "Evidence (the customer's words)"),
    "confirm_safety": ("确认有安全隐患", "Confirm the safety risk"),
    "dismiss_safety": ("排除：无安全隐患", "Dismiss: no safety risk"),
    "dismiss_hint": ("排除后按其余情况重定严重程度（仍有媒体/监管/诉讼风险为严重，有退换/赔偿诉求或属重复投诉为重大，"
                     "否则一般），时限随之调整。",
                     "Dismissed, the severity is what remains: critical for a media, regulator or legal threat, major "
                     "for a demand or a repeat complaint, else general; the deadlines follow."),
    "confirm_category": ("确认类别", "Confirm the category"), "note_optional": ("说明（可选）", "Note (optional)"),
    "review_about": ("可能的安全隐患，以及分类把握不足的案件，最早收到的在前；每件一步即可确认或更正。",
                     "Possible safety risks and categories the classifier was unsure of, oldest first: one action "
                     "settles each."),
    "no_review": ("没有待复核的案件。", "Nothing waits for review."),
    "safety_review.confirmed": ("安全隐患已确认", "Safety risk confirmed"),
    "safety_review.dismissed": ("安全隐患已排除", "Safety risk dismissed"),
    "flash.safety": ("已记录安全隐患复核结果。", "Safety review recorded."),
    "flash.category": ("类别已确认。", "Category settled."),
}
NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "category": {"product_quality": ("产品质量", "Product quality"), "service": ("服务", "Service"),
                 "price": ("价格", "Price"), "other": ("其他", "Other")},
    "severity": {"critical": ("严重", "Critical"), "major": ("重大", "Major"), "general": ("一般", "General")},
    "root_cause": {"product": ("产品", "Product"), "service": ("服务", "Service"),
                   "communication": ("沟通", "Communication"), library.UNKNOWN_ROOT_CAUSE: ("未调查", "Not investigated")},
    "milestone": {"acknowledgement": ("受理回执", "Acknowledgement"), "first_contact": ("首次联系", "First contact"),
                  "preliminary_feedback": ("初步反馈", "Preliminary feedback"), "solution": ("方案确认", "Solution"),
                  "result": ("调查结果", "Result"), "joint_plan": ("联合方案", "Joint plan"),
                  "approval": ("方案审批", "Approval"), "carry_out": ("方案执行", "Carrying out"),
                  "customer_reply": ("客户确认", "Customer's answer")},
    "role": {"cs_head": ("客服负责人", "CS head"), "service_manager": ("售后服务经理", "Service manager"),
             "general_manager": ("总经理", "General manager"), "regional_manager": ("区域经理", "Regional manager"),
             "brand_cr": ("品牌客户关系中心", "Brand customer relations")},
    "channel": {"email": ("邮件", "e-mail"), **manual_intake.CHANNEL_NAMES},
    "phase": PHASE_NAMES, "measure": MEASURES, "responsibility": RESPONSIBILITIES,
    "state": {"done": ("按时完成", "Met on time"), "late": ("超时完成", "Met late")},
}


class Words:
    """The console's words in the brand's language."""

    def __init__(self, zh: bool) -> None:
        self.zh = zh

    def __call__(self, key: str) -> str:
        zh, en = TEXT[key]
        return zh if self.zh else en

    def name(self, kind: str, key: str | None) -> str:
        return label(NAMES[kind], key, "zh" if self.zh else "en")

    def options(self, kind: str, keys: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
        return [(k, self.name(kind, k)) for k in keys]


def _words(tenant: Tenant | None) -> Words:
    return Words(tenant is None or tenant.brand.languages[0].startswith("zh"))


# ----- sessions, CSRF --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf: str


class SignInRequired(Exception):
    """A console page without a (valid) session: to the sign-in page, then back."""


def is_console() -> bool:
    return router.current_event.path.startswith("/console")


def _secret() -> bytes:
    secret = settings().link_secret
    if not secret:
        raise ServiceError(500, "no signing key configured")
    return secret.encode()


def _mac(purpose: str, value: str) -> str:
    return hmac.new(_secret(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _cookies() -> dict[str, str]:
    found: dict[str, str] = {}
    for cookie in router.current_event.cookies:
        name, _, value = cookie.partition("=")
        found[name.strip()] = value.strip()
    return found


def _cookie(name: str, value: str, *, max_age: int, path: str = "/console",
            same_site: SameSite = SameSite.STRICT_MODE) -> Cookie:
    return Cookie(name, value, path=path, secure=settings().public_base_url.startswith("https://"), http_only=True,
                  max_age=max_age, same_site=same_site)


def _session() -> Session | None:
    token = _cookies().get(SESSION_COOKIE)
    if not token:
        return None
    claims = staff_sessions().claims(token)
    caller = caller_from_claims(claims) if claims else None
    return Session(caller, _mac("console", token)) if caller else None


def _signed_in() -> Session:
    session = _session()
    if session is None:
        raise SignInRequired
    return session


def _same_origin() -> bool:
    headers = router.current_event.headers or {}
    origin = headers.get("origin")
    return not origin or urlsplit(origin).netloc == headers.get("host", "")


def _posted() -> tuple[Session, dict[str, Any]]:
    """A console POST: signed in, from a page of ours (CSRF token, same origin)."""
    session = _session()
    if session is None:
        raise ServiceError(401, "sign in again")
    data, _ = access.body(router)
    if not (_same_origin() and hmac.compare_digest(str(data.pop("csrf", "")), session.csrf)):
        raise ForbiddenError("the form's token does not match the session")
    return session, data


def _safe_next(value: str | None) -> str:
    """Only back into the console, never to another site."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/cases"


@router.exception_handler(SignInRequired)
def _to_sign_in(_: SignInRequired) -> Response[str]:
    event = router.current_event
    here = event.path + (f"?{event.raw_query_string}" if event.raw_query_string else "")
    return _redirect("/console/sign-in?" + urlencode({"next": here}))


# ----- rendering -------------------------------------------------------------------------------------
def _headers() -> dict[str, str]:
    return page_headers(form_action=settings().staff_sign_in_url)  # Cognito's sign-in page, in AWS


def _render(template: str, session: Session | None, *, status: int = 200, nav: str = "",
            cookies: list[Cookie] | None = None, tenant: Tenant | None = None, **context: Any) -> Response[str]:
    tenant = session.caller.tenant if session else tenant
    words = _words(tenant)
    brand = tenant.brand if tenant else None
    page = {
        "t": words, "zh": words.zh, "html_lang": html_lang("zh" if words.zh else "en"), "nav": nav,
        "brand_name": (brand.name_zh if words.zh and brand.name_zh else brand.name) if brand else "",
        "member": session.caller.member if session else None, "csrf": session.csrf if session else "",
        "role_name": words.name("role", session.caller.member.role) if session else "",
        "refresh": None, "link": None, "flash": None, **context,
    }
    html = TEMPLATES.get_template(f"console/{template}").render(page)
    return Response(status, "text/html; charset=utf-8", html, _headers(), cookies=cookies)


def _redirect(location: str, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(303, "text/html; charset=utf-8", "", {**_headers(), "Location": location}, cookies=cookies)


def error_page(status: int, message: str) -> Response[str]:
    session = _session() if status != 401 else None
    tenant = session.caller.tenant if session else _default_tenant()
    words = _words(tenant)
    if status == 401:
        return _render("message.html", None, status=401, tenant=tenant, heading=words("sign_in_again"),
                       message=words("sign_in_expired"), link="/console/sign-in", link_text=words("sign_in"))
    text = words(f"error.{status}") if f"error.{status}" in TEXT else message
    return _render("message.html", session, status=status, tenant=tenant, heading=words("error"), message=text,
                   link="/console/cases", link_text=words("back"))


def invalid(exc: FieldErrors) -> Response[str]:
    """A console form that did not validate: its page again, with what is wrong."""
    path = router.current_event.path
    session = _session()
    if session is not None and path.startswith("/console/cases/"):
        case_no = path.split("/")[3]
        form = path.split("/", 4)[4].split("/")[0] if path.count("/") >= 4 else ""
        return _case_page(session, case_no, status=400, errors={form: exc.fields})
    return error_page(400, "; ".join(f"{k}: {v}" for k, v in exc.fields.items()))


def _default_tenant() -> Tenant | None:
    try:
        return services().store.get_tenant(settings().brand_id)
    except Exception:  # noqa: BLE001 - only for the words of an error page
        return None


def _local(tenant: Tenant, at: datetime | None, dealer: str | None = None) -> str:
    return tenant.calendar_for(dealer).local(at).strftime("%Y-%m-%d %H:%M") if at else ""


def _relative(due: datetime, now: datetime, words: Words) -> str:
    minutes = int(abs((due - now).total_seconds()) // 60)
    if minutes < 120:
        amount = f"{minutes} 分钟" if words.zh else f"{minutes} min"
    elif minutes < 72 * 60:
        amount = f"{minutes // 60} 小时" if words.zh else f"{minutes // 60} h"
    else:
        amount = f"{minutes // 1440} 天" if words.zh else f"{minutes // 1440} days"
    if due > now:
        return f"还剩 {amount}" if words.zh else f"in {amount}"
    return f"已超时 {amount}" if words.zh else f"{amount} overdue"


def _due_class(state: str) -> str:
    return {"breached": "due-bad", "at_risk": "due-warn"}.get(state, "")


def _person(tenant: Tenant, email: str | None, words: Words) -> str:
    if not email:
        return ""
    if email == "system":
        return words("system")
    member = tenant.staff_member(email)
    return member.name if member else email


# ----- sign-in -------------------------------------------------------------------------------------
@router.get("/console")
def console_home() -> Response[str]:
    return _redirect("/console/cases")


@router.get("/console/sign-in")
def sign_in_page() -> Response[str]:
    params = router.current_event.query_string_parameters or {}
    nxt = _safe_next(params.get("next"))
    if _session() is not None:
        return _redirect(nxt)
    tenant = _default_tenant()
    words = _words(tenant)
    if params.get("probe") != "1":
        # Reached from another site, the Strict session cookie was withheld: reloading from
        # here sends it (and goes straight on when signed in).
        return _render("message.html", None, tenant=tenant, heading=words("signing_in"), message="",
                       refresh="/console/sign-in?" + urlencode({"next": nxt, "probe": "1"}))
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    hosted = staff_sessions().hosted_sign_in(state=state, code_challenge=challenge, redirect_uri=_callback_url())
    if hosted:
        pending = base64.urlsafe_b64encode(json.dumps({"state": state, "verifier": verifier, "next": nxt}).encode())
        # Lax: Cognito's redirect back is a navigation from another site.
        return _redirect(hosted, [_cookie(SIGN_IN_COOKIE, pending.decode(), max_age=600, path=CALLBACK,
                                          same_site=SameSite.LAX_MODE)])
    nonce = secrets.token_urlsafe(24)
    return _render("sign_in.html", None, tenant=tenant, csrf=_mac("sign-in", nonce), next=nxt, email="",
                   error=None, cookies=[_cookie(SIGN_IN_COOKIE, nonce, max_age=1800)])


@router.post("/console/sign-in")
def sign_in() -> Response[str]:
    """The local stand-in: a staff e-mail is enough (Cognito's page takes its place in AWS)."""
    data, _ = access.body(router)
    nonce = _cookies().get(SIGN_IN_COOKIE, "")
    if not (nonce and _same_origin() and hmac.compare_digest(str(data.get("csrf", "")), _mac("sign-in", nonce))):
        raise ForbiddenError("the sign-in form's token does not match")
    sessions = staff_sessions()
    email = str(data.get("email", "")).strip().lower()[:254]
    token = sessions.token_for_email(email, settings().brand_id) if email else None
    claims = sessions.claims(token) if token else None
    if token is None or claims is None or caller_from_claims(claims) is None:
        tenant = _default_tenant()
        return _render("sign_in.html", None, status=400, tenant=tenant, csrf=_mac("sign-in", nonce),
                       next=_safe_next(str(data.get("next", ""))), email=email, error=_words(tenant)("not_staff"))
    return _redirect(_safe_next(str(data.get("next", ""))),
                     [_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS), _cookie(SIGN_IN_COOKIE, "", max_age=0)])


@router.get(CALLBACK)
def sign_in_callback() -> Response[str]:
    """Cognito's hosted UI sends the browser back here with a code."""
    params = router.current_event.query_string_parameters or {}
    tenant = _default_tenant()
    words = _words(tenant)
    try:
        pending = json.loads(base64.urlsafe_b64decode(_cookies().get(SIGN_IN_COOKIE, "")))
    except (ValueError, binascii.Error):
        pending = {}
    expired = _render("message.html", None, status=400, tenant=tenant, heading=words("sign_in_again"),
                      message=words("sign_in_expired"), link="/console/sign-in?probe=1", link_text=words("sign_in"))
    if not (isinstance(pending, dict) and pending.get("state") and params.get("code")
            and hmac.compare_digest(str(pending["state"]), params.get("state", ""))):
        return expired
    sessions = staff_sessions()
    token = sessions.exchange_code(params["code"], str(pending.get("verifier", "")), _callback_url())
    claims = sessions.claims(token) if token else None
    if token is None or claims is None:
        return expired
    if caller_from_claims(claims) is None:
        return error_page(403, words("not_staff"))
    # A page, not a redirect: the navigation started on Cognito's site, and the Strict cookie
    # is only sent once a page of ours moves on.
    return _render("message.html", None, tenant=tenant, heading=words("signing_in"), message="",
                   refresh=_safe_next(str(pending.get("next", ""))),
                   cookies=[_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS),
                            _cookie(SIGN_IN_COOKIE, "", max_age=0, path=CALLBACK, same_site=SameSite.LAX_MODE)])


def _callback_url() -> str:
    return settings().public_base_url.rstrip("/") + CALLBACK


@router.post("/console/sign-out")
def sign_out() -> Response[str]:
    _posted()
    after = settings().public_base_url.rstrip("/") + "/console/sign-in?probe=1"
    return _redirect(staff_sessions().hosted_sign_out(after) or "/console/sign-in?probe=1",
                     [_cookie(SESSION_COOKIE, "", max_age=0)])


# ----- cases ---------------------------------------------------------------------------------------
def _filters() -> CaseFilters:
    return access.validated(CaseFilters, dict(router.current_event.query_string_parameters or {}))


def _dealer_options(caller: Caller, words: Words) -> list[tuple[str, str]]:
    viewer, tenant = caller.viewer, caller.tenant
    dealers = [d for d in tenant.dealers if viewer.sees_dealer(d.code)]
    if len(dealers) <= 1 and not viewer.whole_brand:
        return []  # dealer staff: one dealer, nothing to choose
    options = [(d.code, f"{d.code} {d.name_zh if words.zh and d.name_zh else d.name}") for d in dealers]
    return [*options, (TRIAGE, words("triage"))] if viewer.whole_brand else options


@router.get("/console/cases")
def cases_page() -> Response[str]:
    session = _signed_in()
    caller = session.caller
    words = _words(caller.tenant)
    filters = _filters()
    cases = services().store.cases_for(caller.viewer, dealer=store_dealer(filters), phase=store_phase(filters),
                                       limit=LIST_LIMIT)
    now = services().clock.now()
    rows = case_rows(cases, caller.tenant, filters, now)
    counts = {state: sum(1 for r in rows if r.sla.state == state) for state in SLA_ORDER}
    view = []
    for r in rows:
        c, tenant = r.case, caller.tenant
        dealer = tenant.dealer(c.dealer) if tenant.has_dealer(c.dealer) else None
        view.append({
            "case_no": c.case_no, "url": f"/console/cases/{c.case_no}", "received": _local(tenant, c.received_at),
            "sla": r.sla.state, "sla_name": words(f"sla.{r.sla.state}"),
            "deadline": words.name("milestone", r.sla.deadline) if r.sla.deadline else "",
            "due": _local(tenant, r.sla.due_at, c.dealer), "due_class": _due_class(r.sla.state),
            "due_rel": _relative(r.sla.due_at, now, words) if r.sla.due_at else "",
            "severity": c.classification.severity, "severity_name": words.name("severity", c.classification.severity),
            "possible_safety": awaits_safety_review(c.classification),
            "category": words.name("category", c.classification.category), "phase": words.name("phase", c.phase),
            "dealer": dealer.code if dealer else words("triage"),
            "dealer_name": (dealer.name_zh if words.zh and dealer.name_zh else dealer.name) if dealer else "",
            "dealer_city": (dealer.city_zh if words.zh and dealer.city_zh else dealer.city) if dealer else "",
            "due_short": tenant.calendar_for(c.dealer).local(r.sla.due_at).strftime("%m-%d %H:%M") if r.sla.due_at else "",
            "assignee": _person(tenant, c.assignee, words), "subject": c.subject})

    def sla_url(state: str) -> str:
        return "/console/cases?" + urlencode({**filters.query(), "sla": state})
    phases = [("open", words("phase.open")), *words.options("phase", list(get_args(Phase)))]
    return _render("cases.html", session, nav="cases", filters=filters, rows=view, counts=counts,
                   dealer_options=_dealer_options(caller, words), phase_options=phases,
                   category_options=words.options("category", get_args(Category)),
                   severity_options=words.options("severity", get_args(Severity)),
                   sla_options=[(s, words(f"sla.{s}")) for s in SLA_ORDER], sla_url=sla_url,
                   export_url="/console/export?" + urlencode(filters.query()),
                   limited=len(cases) >= LIST_LIMIT)


@router.get("/console/export")
def export() -> Response[str]:
    """The filtered list as CSV (viewer-scoped like the list; no customer contact data)."""
    session = _signed_in()
    caller = session.caller
    filters = _filters()
    cases = services().store.cases_for(caller.viewer, dealer=store_dealer(filters), phase=store_phase(filters))
    now = services().clock.now()
    text = "\ufeff" + export_csv(case_rows(cases, caller.tenant, filters, now), caller.tenant)  # the BOM: Excel reads UTF-8
    name = f"cases-{caller.tenant.calendar_for(None).local(now):%Y%m%d-%H%M}.csv"
    return Response(200, "text/csv; charset=utf-8", text,
                    {**_headers(), "Content-Disposition": f'attachment; filename="{name}"'})


def _milestone_state(m: Any, now: datetime, policy: Policy, start: datetime, cal: WorkingCalendar) -> str:
    if m.met_at is not None:
        return "late" if m.breached else "done"
    if m.breached or now >= m.due_at:
        return "breached"
    return "at_risk" if now >= warning_at(start, m.due_at, policy, cal) else "on_track"


def _case_page(session: Session, case_no: str, *, status: int = 200, errors: dict[str, dict[str, str]] | None = None,
               flash: str | None = None) -> Response[str]:
    caller = session.caller
    store = services().store
    case = access.visible_case(caller, case_no)
    tenant, words, now = caller.tenant, _words(caller.tenant), services().clock.now()
    events = store.events(case_no)
    risk: Sla = sla(case, tenant, now)
    policy = tenant.policy_for(case.dealer)
    milestones = []
    for m in case.milestones:
        start = case.received_at if m.cycle == 1 else (
            case.survey.answered_at if case.survey and case.survey.answered_at else case.received_at)
        state = _milestone_state(m, now, policy, start, tenant.calendar_for(case.dealer))
        milestones.append({"name": words.name("milestone", m.name), "cycle": m.cycle,
                           "due": _local(tenant, m.due_at, case.dealer), "met": _local(tenant, m.met_at, case.dealer),
                           "original_due": _local(tenant, m.original_due_at, case.dealer), "state": state,
                           "state_name": words.name("state", state) if state in ("done", "late")
                           else words(f"sla.{state}")})
    promoted = notes.promoted(events)
    timeline = [{"at": _local(tenant, e.at, case.dealer), "actor": _person(tenant, e.actor, words), "summary": e.summary,
                 "tone": "bad" if ("breach" in e.type or "escalat" in e.type or e.type == "needs_attention")
                 else "warn" if ("warn" in e.type or e.type == "critical_alert" or e.type == notes.NOTE_KIND) else "",
                 "note": e.data.get("note_id") if e.type == notes.NOTE_KIND and e.data.get("note_id") not in promoted
                 else None}
                for e in reversed(events)]
    dealer = tenant.dealer(case.dealer) if tenant.has_dealer(case.dealer) else None
    acc = case.accountability
    none_event = next((e for e in reversed(events) if e.type == "accountability_recorded"
                       and e.data.get("responsibility") == "none"), None) if acc is None else None
    found = proposal(tenant, case)
    inv_responsibility = case.investigation.responsibility if case.investigation else None
    acc_values = ({"responsibility": acc.responsibility, "measure": acc.measure, "fine": acc.fine or "",
                   "person": acc.person or "", "note": acc.note} if acc else
                  {"responsibility": inv_responsibility or "employee", "measure": found.measure if found else "",
                   "fine": (found.fine or "") if found else "", "person": "", "note": ""})
    return _render(
        "case.html", session, status=status, nav="cases", case=case, errors=errors or {},
        flash=flash, sla=risk, sla_name=words(f"sla.{risk.state}"), due=_local(tenant, risk.due_at, case.dealer),
        due_rel=_relative(risk.due_at, now, words) if risk.due_at else "", due_class=_due_class(risk.state),
        deadline_name=words.name("milestone", risk.deadline), received=_local(tenant, case.received_at, case.dealer),
        severity_name=words.name("severity", case.classification.severity),
        possible_safety=awaits_safety_review(case.classification), safety_evidence=safety_evidence(case.classification),
        safety_review_name=words(f"safety_review.{case.classification.safety_review}")
        if case.classification.safety_review else "",
        category_name=words.name("category", case.classification.category), phase_name=words.name("phase", case.phase),
        channel_name=words.name("channel", case.channel), assignee=_person(tenant, case.assignee, words),
        dealer_name=(f"{dealer.code} {dealer.name_zh if words.zh and dealer.name_zh else dealer.name}" if dealer
                     else words("triage")),
        milestones=milestones, timeline=timeline, attachments=store.attachments(case_no),
        root_cause_name=words.name("root_cause", case.investigation.root_cause) if case.investigation else "",
        responsibility_name=words.name("responsibility", inv_responsibility),
        compensation_name=lambda kind: compensation_name(kind, "zh" if words.zh else "en"),
        category_options=words.options("category", get_args(Category)),
        severity_options=words.options("severity", get_args(Severity)),
        can_assign=caller.member.role == "brand_cr" and case.dealer is None,
        may_resume=caller.member.role == "brand_cr", step_name=lambda step: words.name("phase", step),
        assign_options=[(d.code, f"{d.code} {d.name_zh if words.zh and d.name_zh else d.name}") for d in tenant.dealers],
        closed=after_closure(case), may_act=may_act(caller.member, case), acc=acc, acc_none=(
            f"{_person(tenant, none_event.actor, words)} · {_local(tenant, none_event.at, case.dealer)}"
            if none_event else None),
        acc_responsibility=words.name("responsibility", acc.responsibility) if acc else "",
        acc_measure=words.name("measure", acc.measure) if acc else "",
        acc_assignee=_person(tenant, acc.assignee, words) if acc else "",
        acc_due=_local(tenant, acc.due_at, case.dealer) if acc else "",
        acc_done=_local(tenant, acc.done_at, case.dealer) if acc else "",
        acc_overdue=bool(acc and acc.done_at is None and now > acc.due_at),
        acc_due_class="due-bad" if acc and acc.done_at is None and now > acc.due_at else "",
        proposal=(f"{words.name('measure', found.measure)}" + (f" · ¥{found.fine:,.2f}" if found.fine else ""))
        if found else None, acc_values=acc_values,
        responsibility_options=words.options("responsibility", list(RESPONSIBILITIES)),
        measure_options=words.options("measure", list(MEASURES)))


@router.get("/console/cases/<case_no>")
def case_page(case_no: str) -> Response[str]:
    session = _signed_in()
    done = (router.current_event.query_string_parameters or {}).get("done")
    words = _words(session.caller.tenant)
    return _case_page(session, case_no, flash=words(f"flash.{done}") if f"flash.{done}" in TEXT else None)


def _back_to_case(case_no: str, done: str) -> Response[str]:
    anchor = "#accountability" if done in ("accountability", "done") else ""
    return _redirect(f"/console/cases/{case_no}?done={done}{anchor}")


@router.post("/console/cases/<case_no>/classification")
def console_correct(case_no: str) -> Response[str]:
    session, data = _posted()
    access.correct_classification(session.caller, case_no, data)
    return _back_to_case(case_no, "classification")


@router.post("/console/cases/<case_no>/dealer")
def console_assign(case_no: str) -> Response[str]:
    session, data = _posted()
    access.assign_dealer(session.caller, case_no, data)
    return _back_to_case(case_no, "dealer")


@router.post("/console/cases/<case_no>/resume")
def console_resume(case_no: str) -> Response[str]:
    session, _ = _posted()
    access.resume(session.caller, case_no)
    return _back_to_case(case_no, "resume")


@router.post("/console/cases/<case_no>/notes/<note_id>/promote")
def console_promote(case_no: str, note_id: str) -> Response[str]:
    session, _ = _posted()
    access.promote_note(session.caller, case_no, note_id)
    return _back_to_case(case_no, "promote")


@router.post("/console/cases/<case_no>/accountability")
def console_record(case_no: str) -> Response[str]:
    session, data = _posted()
    access.record_accountability(session.caller, case_no, data)
    return _back_to_case(case_no, "accountability")


@router.post("/console/cases/<case_no>/accountability/done")
def console_done(case_no: str) -> Response[str]:
    session, data = _posted()
    access.accountability_done(session.caller, case_no, data)
    return _back_to_case(case_no, "done")


@router.post("/console/cases/<case_no>/safety-review")
def console_review_safety(case_no: str) -> Response[str]:
    session, data = _posted()
    access.review_safety(session.caller, case_no, data)
    return _back_to_case(case_no, "safety")


# ----- the review queue (shared/complaints/review.py) ----------------------------------------------
@router.get("/console/review")
def review_page() -> Response[str]:
    session = _signed_in()
    caller, words = session.caller, _words(session.caller.tenant)
    entries = access.review_queue(caller)
    done = (router.current_event.query_string_parameters or {}).get("done")
    rows = [{**e.as_json(), "url": f"/console/cases/{e.case_no}", "received": _local(caller.tenant, e.received_at),
             "dealer": e.dealer or words("triage"), "severity_name": words.name("severity", e.severity),
             "category_name": words.name("category", e.category),
             "confidence_pct": f"{e.confidence:.0%}" if e.confidence is not None else "",
             "reason_names": [(r, words(f"review.{r}")) for r in e.reasons]} for e in entries]
    return _render("review.html", session, nav="review", rows=rows,
                   flash=words(f"flash.{done}") if f"flash.{done}" in TEXT else None,
                   category_options=words.options("category", get_args(Category)))


@router.post("/console/review/<case_no>/safety")
def review_queue_safety(case_no: str) -> Response[str]:
    session, data = _posted()
    access.review_safety(session.caller, case_no, data)
    return _redirect("/console/review?done=safety")


@router.post("/console/review/<case_no>/category")
def review_queue_category(case_no: str) -> Response[str]:
    session, data = _posted()
    access.review_category(session.caller, case_no, data)
    return _redirect("/console/review?done=category")


# ----- manual intake -------------------------------------------------------------------------------
INTAKE_FIELDS = (  # name, Chinese label, English label, input type
    ("customer_name", "客户姓名", "Customer name", "text"),
    ("customer_phone", "客户电话", "Customer phone", "tel"),
    ("customer_email", "客户邮箱", "Customer e-mail", "email"),
    ("vin", "车架号 (VIN)", "VIN", "text"),
    ("plate", "车牌号", "Plate", "text"),
    ("received_at", "来电/到店时间（门店当地时间，空 = 现在）", "Received at (the dealer's local time; empty = now)",
     "datetime-local"),
    ("subject", "主题", "Subject", "text"),
    ("description", "投诉内容", "What the customer said", "textarea"),
)


def manual_intake_form(caller: Caller) -> dict[str, Any]:
    """What the intake form needs (``/api/intake``'s page and the console's)."""
    # The picker shows the dealer's wall clock (manual_intake reads a zone-less time in it); a call is never later than now.
    local_now = caller.tenant.calendar_for(caller.member.dealer).local(services().clock.now())
    return {"request_id": secrets.token_hex(16), "channels": manual_intake.CHANNEL_NAMES, "fields": INTAKE_FIELDS,
            "dealers": [] if caller.member.dealer else caller.tenant.dealers, "values": {}, "errors": {},
            "case_no": None, "latest": f"{local_now:%Y-%m-%dT%H:%M}", "zone": (local_now.tzname() or "") if caller.member.dealer else ""}


@router.get("/console/intake")
def console_intake_form() -> Response[str]:
    session = _signed_in()
    return _render("intake.html", session, nav="intake", **manual_intake_form(session.caller), action="/console/intake")


@router.post("/console/intake")
def console_intake() -> Response[str]:
    session, data = _posted()
    form = {**manual_intake_form(session.caller), "action": "/console/intake"}
    try:
        result = access.register_complaint(session.caller, data)
    except FieldErrors as exc:
        return _render("intake.html", session, status=400, nav="intake", **{**form, "values": data,
                                                                           "errors": exc.fields})
    return _render("intake.html", session, nav="intake", **{**form, "case_no": result.case_no})


# ----- accountability ------------------------------------------------------------------------------
@router.get("/console/accountability")
def accountability_page() -> Response[str]:
    session = _signed_in()
    caller, words, now = session.caller, _words(session.caller.tenant), services().clock.now()
    asked = (router.current_event.query_string_parameters or {}).get("show", "")
    show = asked if asked in ("open", "all") else "overdue"
    tasks = access.accountability_service().tasks(caller.viewer, overdue_only=show == "overdue",
                                                  open_only=show != "all")
    rows = []
    for task in tasks:
        state = "done" if task.done_at else ("breached" if task.due_at < now else "at_risk")
        rows.append({"case_no": task.case_no, "dealer": task.dealer or words("triage"),
                     "responsibility": words.name("responsibility", task.responsibility),
                     "measure": words.name("measure", task.measure),
                     "fine": f"¥{Decimal(task.fine):,.2f}" if Decimal(task.fine) else "—",
                     "assignee": _person(caller.tenant, task.assignee, words),
                     "due": _local(caller.tenant, task.due_at, task.dealer),
                     "due_class": "due-bad" if state == "breached" else "", "state": state,
                     "state_name": {"done": words("done"), "breached": words("overdue"), "at_risk": words("open")}[state]})
    return _render("accountability.html", session, nav="accountability", tasks=rows, show=show,
                   views=[(v, words(f"show.{v}")) for v in ("overdue", "open", "all")])


# ----- the case library ----------------------------------------------------------------------------
class LibraryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    category: Category | None = None
    root_cause: RootCause | Literal["unknown"] | None = None
    q: str | None = Field(default=None, max_length=100)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


def library_json(entry: LibraryEntry, caller: Caller) -> dict[str, Any]:
    """An entry as staff see it: the case number and dealer only for those who see the case."""
    shown = entry.model_dump(mode="json", exclude={"case_no", "dealer", "brand"})
    if caller.viewer.sees_dealer(entry.dealer):
        shown.update(case_no=entry.case_no, dealer=entry.dealer)
    return shown


@router.get("/console/library")
def library_page() -> Response[str]:
    session = _signed_in()
    caller, words = session.caller, _words(session.caller.tenant)
    query = access.validated(LibraryQuery, dict(router.current_event.query_string_parameters or {}))
    entries = library.search(services().store.library_entries(
        caller.viewer.brand, category=query.category, root_cause=query.root_cause), query.q)
    lang = "zh" if words.zh else "en"
    shown = [{**e.model_dump(), "closed_month": e.closed_month, "severity_code": e.severity,
              "category": words.name("category", e.category), "root_cause": words.name("root_cause", e.root_cause),
              "severity": words.name("severity", e.severity),
              "responsibility": words.name("responsibility", e.responsibility) if e.responsibility else "",
              "accountability_measure": words.name("measure", e.accountability_measure)
              if e.accountability_measure else "",
              "compensation": "；".join(f"{compensation_name(c['kind'], lang)} ¥{Decimal(c['value']):,.0f}"
                                       for c in e.compensation),
              "case_url": f"/console/cases/{e.case_no}" if caller.viewer.sees_dealer(e.dealer) else None}
             for e in entries]
    return _render("library.html", session, nav="library", entries=shown, query=query,
                   category_options=words.options("category", get_args(Category)),
                   root_cause_options=words.options("root_cause", [*get_args(RootCause), library.UNKNOWN_ROOT_CAUSE]))


# ----- the KPI report (shared/complaints/reports.py, as GET /api/reports/{period} serves it) ---------


@router.get("/console/reports")
def reports_home() -> Response[str]:
    """This month's report so far, for the caller's own scope."""
    session = _signed_in()
    local = session.caller.tenant.calendar_for(None).local(services().clock.now())
    return _redirect(f"/console/reports/{local.year}-{local.month:02d}")


@router.get("/console/reports/<period>")
def report_page(period: str) -> Response[str]:
    """The report as the staff API's reports route makes it (the same scope rules: the caller's
    own by default, ``?dealer=``/``?region=``/``?scope=brand`` within what they may see)."""
    caller = _signed_in().caller
    params = router.current_event.query_string_parameters or {}
    fmt = params.get("format") or "html"
    try:
        wanted = reports.Period.parse(period)
        scope = reports.requested_scope(caller.member, caller.viewer, caller.tenant, params)
    except reports.ScopeNotFoundError as exc:
        raise ServiceError(404, str(exc)) from exc
    except InvalidInputError as exc:
        raise FieldErrors(exc.fields) from exc
    except reports.ReportForbiddenError as exc:
        raise ForbiddenError(str(exc)) from exc
    if fmt not in reports.RENDERERS:
        raise ServiceError(400, "format is html, csv or json")
    s = services()
    made = reports.build_report(s.store, s.store, caller.tenant, scope, wanted, s.clock.now())
    render, content_type = reports.RENDERERS[fmt]
    return Response(200, content_type, render(made), _headers())

