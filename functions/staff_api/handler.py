"""Staff API: cases (list, detail, classification corrections, dealer assignment), held
mail (list, release) and manual intake, scoped to the caller's place in the tenant.

The caller is the e-mail claim of a verified JWT (Cognito behind API Gateway's JWT
authorizer in AWS; the local runtime's token server locally)."""

from __future__ import annotations

import json
import secrets
from typing import Any, TypeVar
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    ServiceError,
    UnauthorizedError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from shared.complaints import manual_intake
from shared.complaints.casework import Casework, ClassificationCorrection, DealerAssignment
from shared.complaints.clock import iso
from shared.complaints.errors import CaseNotFoundError, InvalidInputError, InvalidTransitionError
from shared.complaints.models import Case
from shared.complaints.notifications import TEMPLATES, html_lang
from shared.complaints.tenant import Staff, Tenant
from shared.complaints.views import can_see, case_document
from shared.runtime.observability import logger, tracer
from shared.runtime.settings import settings
from shared.runtime.wiring import services

MAX_BODY = 64 * 1024
app = APIGatewayHttpResolver()
M = TypeVar("M", bound=BaseModel)


def _caller() -> tuple[Staff, Tenant]:
    authorizer = app.current_event.request_context.authorizer
    claims = (authorizer.jwt_claim if authorizer else None) or {}
    email = str(claims.get("email", ""))
    brand = str(claims.get("custom:brand", settings().brand_id))
    tenant = services().store.get_tenant(brand)
    member = tenant.staff_member(email) if email else None
    if member is None:
        raise UnauthorizedError("not a member of this tenant's staff")
    return member, tenant


def _brand_cr() -> tuple[Staff, Tenant]:
    """Held mail and the triage queue are the brand CR center's."""
    member, tenant = _caller()
    if member.role != "brand_cr":
        raise ForbiddenError("only the brand's customer-relations center may do this")
    return member, tenant


def _visible_case(case_no: str, member: Staff, tenant: Tenant) -> Case:
    try:
        case = services().store.get_case(case_no)
    except CaseNotFoundError as exc:
        raise NotFoundError(case_no) from exc
    if not can_see(member, tenant, case):
        raise NotFoundError(case_no)  # not 403: do not confirm that another dealer's case exists
    return case


def _form_or_json() -> tuple[dict[str, Any], bool]:
    """The request's fields, and whether they came from a browser form."""
    raw = app.current_event.decoded_body or ""
    if len(raw.encode("utf-8")) > MAX_BODY:
        raise ServiceError(413, "body too large")
    if "application/x-www-form-urlencoded" in (app.current_event.headers or {}).get("content-type", ""):
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}, True
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise BadRequestError("the body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    return data, False


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Invalid(_field_errors(exc)) from exc


def _field_errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]) or "_": e["msg"] for e in exc.errors()}


class _Invalid(Exception):
    """Fields that do not validate: 400 with what is wrong with each."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("invalid fields")
        self.fields = fields


@app.exception_handler(_Invalid)
def _invalid(exc: _Invalid) -> Response[str]:
    return Response(400, "application/json", json.dumps({"message": "invalid fields", "errors": exc.fields},
                                                        ensure_ascii=False))


# ----- cases ---------------------------------------------------------------------------------------
@app.get("/api/cases")
def list_cases() -> dict[str, Any]:
    member, tenant = _caller()
    params = app.current_event.query_string_parameters or {}
    dealer = params.get("dealer") or (member.dealer if member.role in ("cs_head", "service_manager", "general_manager") else None)
    phase = params.get("phase")
    cases = services().store.list_cases(tenant.brand.id, dealer=dealer, phase=phase, limit=200)
    visible = [c for c in cases if can_see(member, tenant, c)]
    return {"cases": [{"case_no": c.case_no, "phase": c.phase, "dealer": c.dealer, "severity": c.classification.severity,
                       "category": c.classification.category, "subject": c.subject,
                       "received_at": c.received_at.isoformat()} for c in visible]}


@app.get("/api/cases/<case_no>")
def get_case(case_no: str) -> dict[str, Any]:
    member, tenant = _caller()
    store = services().store
    case = _visible_case(case_no, member, tenant)
    document = case_document(case, store.events(case_no))
    document["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                                "sha256": a.sha256, "key": a.key, "at": iso(a.at)} for a in store.attachments(case_no)]
    return document


@app.post("/api/cases/<case_no>/classification")
def correct_classification(case_no: str) -> dict[str, Any]:
    member, tenant = _caller()
    _visible_case(case_no, member, tenant)
    correction = _validated(ClassificationCorrection, _form_or_json()[0])
    try:
        case = Casework(services().lifecycle).correct_classification(case_no, correction, member.email)
    except InvalidInputError as exc:
        raise _Invalid(exc.fields) from exc
    c = case.classification
    return {"case_no": case_no, "category": c.category, "severity": c.severity, "safety": c.safety,
            "media_or_regulator": c.media_or_regulator, "classification_reasons": c.reasons}


@app.post("/api/cases/<case_no>/dealer")
def assign_dealer(case_no: str) -> dict[str, Any]:
    member, tenant = _brand_cr()
    _visible_case(case_no, member, tenant)
    assignment = _validated(DealerAssignment, _form_or_json()[0])
    try:
        case = Casework(services().lifecycle).assign_dealer(case_no, assignment.dealer, member.email)
    except InvalidInputError as exc:
        raise _Invalid(exc.fields) from exc
    except InvalidTransitionError as exc:
        raise ServiceError(409, str(exc)) from exc
    return {"case_no": case_no, "dealer": case.dealer, "assignee": case.assignee}


# ----- held mail -----------------------------------------------------------------------------------
@app.get("/api/held")
def list_held() -> dict[str, Any]:
    _, tenant = _brand_cr()
    status = (app.current_event.query_string_parameters or {}).get("status") or None
    held = services().store.list_held(tenant.brand.id, status=status, limit=200)
    return {"held": [{"held_id": h.held_id, "disposition": h.disposition, "detail": h.detail,
                      "received_at": iso(h.received_at), "sender": h.sender, "subject": h.subject,
                      "status": h.status, "case_no": h.case_no, "released_by": h.released_by} for h in held]}


@app.post("/api/held/<held_id>/release")
def release_held(held_id: str) -> dict[str, Any]:
    member, tenant = _brand_cr()
    result = services().intake.release(tenant.brand.id, held_id, member.email)
    if result is None:
        raise NotFoundError(held_id)
    return result.as_dict()


# ----- manual intake -------------------------------------------------------------------------------
_FORM_FIELDS = (  # name, Chinese label, English label, input type
    ("customer_name", "客户姓名", "Customer name", "text"),
    ("customer_phone", "客户电话", "Customer phone", "tel"),
    ("customer_email", "客户邮箱", "Customer e-mail", "email"),
    ("vin", "车架号 (VIN)", "VIN", "text"),
    ("plate", "车牌号", "Plate", "text"),
    ("received_at", "来电/到店时间 (ISO 8601, 空 = 现在)", "Received at (ISO 8601, empty = now)", "text"),
    ("subject", "主题", "Subject", "text"),
    ("description", "投诉内容", "What the customer said", "textarea"),
)


def _form_page(member: Staff, tenant: Tenant, status: int = 200, **context: Any) -> Response[str]:
    language = tenant.brand.languages[0]
    zh = language.startswith("zh")
    page = {"zh": zh, "html_lang": html_lang(language),
            "brand_name": tenant.brand.name_zh if zh and tenant.brand.name_zh else tenant.brand.name,
            "request_id": secrets.token_hex(16), "channels": manual_intake.CHANNEL_NAMES, "fields": _FORM_FIELDS,
            "dealers": [] if member.dealer else tenant.dealers, "values": {}, "errors": {}, "case_no": None}
    html = TEMPLATES.get_template("pages/intake_form.html").render({**page, **context})
    return Response(status, "text/html; charset=utf-8", html, {"Cache-Control": "no-store"})


@app.get("/api/intake")
def intake_form() -> Response[str]:
    member, tenant = _caller()
    return _form_page(member, tenant)


@app.post("/api/intake")
def manual_intake_route() -> Response[str] | dict[str, Any]:
    member, tenant = _caller()
    data, from_form = _form_or_json()
    try:
        entered = manual_intake.ManualComplaint.model_validate(data)
        result = manual_intake.register(services().intake, tenant, entered, member)
    except ValidationError as exc:
        if from_form:
            return _form_page(member, tenant, 400, values=data, errors=_field_errors(exc))
        raise _Invalid(_field_errors(exc)) from exc
    except InvalidInputError as exc:
        if from_form:
            return _form_page(member, tenant, 400, values=data, errors=exc.fields)
        raise _Invalid(exc.fields) from exc
    if from_form:
        return _form_page(member, tenant, case_no=result.case_no)
    return result.as_dict()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
