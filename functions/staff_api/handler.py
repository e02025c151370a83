"""Staff API: case list and case detail, scoped to the caller's place in the tenant.

The caller is the e-mail claim of a verified JWT (Cognito behind API Gateway's JWT
authorizer in AWS; the local runtime's token server locally)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, UnauthorizedError
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.complaints.errors import CaseNotFoundError
from shared.complaints.tenant import Staff, Tenant
from shared.complaints.views import can_see, case_document
from shared.runtime.observability import logger, tracer
from shared.runtime.settings import settings
from shared.runtime.wiring import services

app = APIGatewayHttpResolver()


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
    try:
        case = store.get_case(case_no)
    except CaseNotFoundError as exc:
        raise NotFoundError(case_no) from exc
    if not can_see(member, tenant, case):
        raise NotFoundError(case_no)  # not 403: do not confirm that another dealer's case exists
    return case_document(case, store.events(case_no))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
