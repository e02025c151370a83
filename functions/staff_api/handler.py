"""Staff API and console: cases (list, detail, classification corrections, safety reviews, dealer
assignment, accountability), the review queue, the case library, held mail (list, release) and manual intake, scoped to
the caller's place in the tenant.

``/api/`` callers carry a bearer token: a Cognito JWT verified by API Gateway's JWT authorizer
in AWS, the local token server's locally; the handler reads its e-mail and brand claims.
``/console/`` is the same for people with a browser (``console.py``): its session cookie
is checked here, by ``shared.runtime.sessions``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import (
    ForbiddenError,
    NotFoundError,
    ServiceError,
    UnauthorizedError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.staff_api import access, console
from functions.staff_api.access import FieldErrors
from shared.complaints import library
from shared.complaints.clock import iso
from shared.complaints.notifications import TEMPLATES, html_lang
from shared.complaints.review import awaits_safety_review
from shared.complaints.views import (
    CaseFilters,
    case_document,
    case_rows,
    classification_json,
    store_dealer,
    store_phase,
)
from shared.runtime.callers import Caller, caller_from_claims
from shared.runtime.observability import logger, tracer
from shared.runtime.web import secured
from shared.runtime.wiring import services

app = APIGatewayHttpResolver()
app.include_router(console.router)


def _caller() -> Caller:
    authorizer = app.current_event.request_context.authorizer
    claims = (authorizer.jwt_claim if authorizer else None) or {}
    caller = caller_from_claims(claims)
    if caller is None:
        raise UnauthorizedError("not a member of this tenant's staff")
    return caller


def _brand_cr() -> Caller:
    """Held mail and the triage queue are the brand CR center's."""
    caller = _caller()
    if caller.member.role != "brand_cr":
        raise ForbiddenError("only the brand's customer-relations center may do this")
    return caller


@app.exception_handler(FieldErrors)
def _invalid(exc: FieldErrors) -> Response[str]:
    if console.is_console():
        return console.invalid(exc)
    return Response(400, "application/json", json.dumps({"message": "invalid fields", "errors": exc.fields},
                                                        ensure_ascii=False))


@app.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response[str]:
    if console.is_console():
        return console.error_page(exc.status_code, str(exc.msg))
    return Response(exc.status_code, "application/json", json.dumps({"statusCode": exc.status_code,
                                                                     "message": exc.msg}))


# ----- cases ---------------------------------------------------------------------------------------
@app.get("/api/cases")
def list_cases() -> dict[str, Any]:
    caller = _caller()
    filters = access.validated(CaseFilters, dict(app.current_event.query_string_parameters or {}))
    cases = services().store.cases_for(caller.viewer, dealer=store_dealer(filters), phase=store_phase(filters))
    rows = case_rows(cases, caller.tenant, filters, services().clock.now())
    return {"cases": [{"case_no": r.case.case_no, "phase": r.case.phase, "dealer": r.case.dealer,
                       "severity": r.case.classification.severity, "category": r.case.classification.category,
                       "possible_safety": awaits_safety_review(r.case.classification),
                       "subject": r.case.subject, "received_at": r.case.received_at.isoformat(),
                       "deadline_state": r.sla.state, "next_deadline": r.sla.deadline,
                       "next_due_at": iso(r.sla.due_at) if r.sla.due_at else None} for r in rows]}


@app.get("/api/cases/<case_no>")
def get_case(case_no: str) -> dict[str, Any]:
    caller = _caller()
    store = services().store
    case = access.visible_case(caller, case_no)
    document = case_document(case, store.events(case_no))
    document["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                                "sha256": a.sha256, "key": a.key, "at": iso(a.at)} for a in store.attachments(case_no)]
    return document


@app.post("/api/cases/<case_no>/classification")
def correct_classification(case_no: str) -> dict[str, Any]:
    case = access.correct_classification(_caller(), case_no, access.body(app)[0])
    return {"case_no": case_no, **classification_json(case.classification)}


@app.post("/api/cases/<case_no>/safety-review")
def review_safety(case_no: str) -> dict[str, Any]:
    case = access.review_safety(_caller(), case_no, access.body(app)[0])
    return {"case_no": case_no, **classification_json(case.classification)}


@app.get("/api/review")
def review_queue() -> dict[str, Any]:
    return {"entries": [e.as_json() for e in access.review_queue(_caller())]}


@app.get("/api/corrections")
def list_corrections() -> dict[str, Any]:
    since = (app.current_event.query_string_parameters or {}).get("since")
    return {"examples": access.labelled_examples(_caller(), since)}


@app.get("/api/corrections/<case_no>/mail")
def correction_mail(case_no: str) -> Response[bytes]:
    return Response(200, "message/rfc822", access.example_mail(_caller(), case_no),
                    {"Content-Disposition": f'attachment; filename="{case_no}.eml"'})


@app.post("/api/cases/<case_no>/dealer")
def assign_dealer(case_no: str) -> dict[str, Any]:
    case = access.assign_dealer(_caller(), case_no, access.body(app)[0])
    return {"case_no": case_no, "dealer": case.dealer, "assignee": case.assignee}


@app.post("/api/cases/<case_no>/resume")
def resume_case(case_no: str) -> dict[str, Any]:
    execution = access.resume(_caller(), case_no)
    return {"case_no": case_no, "execution": execution}


@app.post("/api/cases/<case_no>/messages/<note_id>/promote")
def promote_note(case_no: str, note_id: str) -> dict[str, Any]:
    note = access.promote_note(_caller(), case_no, note_id)
    return {"case_no": case_no, "note_id": note_id, "sender": note.sender, "kind": "customer_mail"}


@app.post("/api/cases/<case_no>/accountability")
def record_accountability(case_no: str) -> dict[str, Any]:
    case = access.record_accountability(_caller(), case_no, access.body(app)[0])
    return {"case_no": case_no,
            "accountability": case.accountability.model_dump(mode="json") if case.accountability else None}


@app.post("/api/cases/<case_no>/accountability/done")
def accountability_done(case_no: str) -> dict[str, Any]:
    case = access.accountability_done(_caller(), case_no, access.body(app)[0])
    return {"case_no": case_no,
            "accountability": case.accountability.model_dump(mode="json") if case.accountability else None}


@app.get("/api/accountability")
def list_accountability() -> dict[str, Any]:
    caller = _caller()
    params = app.current_event.query_string_parameters or {}
    tasks = access.accountability_service().tasks(caller.viewer, overdue_only=params.get("overdue") == "true",
                                                  open_only=params.get("done") != "true")
    return {"tasks": [{"case_no": t.case_no, "dealer": t.dealer, "region": t.region,
                       "responsibility": t.responsibility, "measure": t.measure, "fine": t.fine,
                       "assignee": t.assignee, "recorded_at": iso(t.recorded_at), "due_at": iso(t.due_at),
                       "done_at": iso(t.done_at) if t.done_at else None} for t in tasks]}


# ----- the case library ----------------------------------------------------------------------------
@app.get("/api/library")
def search_library() -> dict[str, Any]:
    caller = _caller()
    query = access.validated(console.LibraryQuery, dict(app.current_event.query_string_parameters or {}))
    entries = library.search(services().store.library_entries(
        caller.viewer.brand, category=query.category, root_cause=query.root_cause), query.q)
    return {"entries": [console.library_json(e, caller) for e in entries]}


# ----- held mail -----------------------------------------------------------------------------------
@app.get("/api/held")
def list_held() -> dict[str, Any]:
    caller = _brand_cr()
    status = (app.current_event.query_string_parameters or {}).get("status") or None
    held = services().store.list_held(caller.tenant.brand.id, status=status, limit=200)
    return {"held": [{"held_id": h.held_id, "disposition": h.disposition, "detail": h.detail,
                      "received_at": iso(h.received_at), "sender": h.sender, "subject": h.subject,
                      "status": h.status, "case_no": h.case_no, "released_by": h.released_by} for h in held]}


@app.post("/api/held/<held_id>/release")
def release_held(held_id: str) -> dict[str, Any]:
    caller = _brand_cr()
    result = services().intake.release(caller.tenant.brand.id, held_id, caller.member.email)
    if result is None:
        raise NotFoundError(held_id)
    return result.as_dict()


# ----- manual intake -------------------------------------------------------------------------------
def intake_page(caller: Caller, status: int = 200, **context: Any) -> Response[str]:
    language = caller.tenant.brand.languages[0]
    zh = language.startswith("zh")
    page = {"zh": zh, "html_lang": html_lang(language),
            "brand_name": caller.tenant.brand.name_zh if zh and caller.tenant.brand.name_zh else caller.tenant.brand.name,
            **console.manual_intake_form(caller), "action": "/api/intake", "csrf": None, **context}
    html = TEMPLATES.get_template("pages/intake_form.html").render(page)
    return Response(status, "text/html; charset=utf-8", html)


@app.get("/api/intake")
def intake_form() -> Response[str]:
    return intake_page(_caller())


@app.post("/api/intake")
def manual_intake_route() -> Response[str] | dict[str, Any]:
    caller = _caller()
    data, from_form = access.body(app)
    try:
        result = access.register_complaint(caller, data)
    except FieldErrors as exc:
        if from_form:
            return intake_page(caller, 400, values=data, errors=exc.fields)
        raise
    if from_form:
        return intake_page(caller, case_no=result.case_no)
    return result.as_dict()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return secured(app.resolve(event, context))
