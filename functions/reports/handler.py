"""KPI reports (policy.md §10, ``shared/complaints/reports.py``):

- ``GET /api/reports/{period}`` (HTTP API, the staff JWT): a report for the caller, as HTML with
  charts, CSV or JSON. ``period`` is ``2026-11``, ``2026-Q4`` or ``2026``; ``?dealer=``, ``?region=``
  or ``?scope=brand`` choose the scope (default: the caller's own), ``?format=html|csv|json``.
  Dealer staff get their dealer's, regional managers their region's and its dealers', the brand CR
  center any: anything else is 403 (an unknown dealer or region 404).
- ``{"action": "monthly"}`` (EventBridge Scheduler, the 1st of the month): mail last month's
  reports to the brand CR center, each regional manager and each dealer's staff; ``"month"``
  overrides the month. Then the risk buckets of past months lose their zeros (``kpi_compact_risk``).
- ``{"action": "rebuild", "months": ["2026-11", "2026-Q4"], "open": true}`` (by hand, docs/decisions.md
  "KPI aggregates"): recompute months of aggregates from their cases and correct them; ``open``
  also rebuilds the open-case entries from the cases received in the last ``open_days`` (400).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.complaints import kpis
from shared.complaints.errors import InvalidInputError
from shared.complaints.reports import (
    RENDERERS,
    Period,
    ReportForbiddenError,
    ScopeNotFoundError,
    build_report,
    requested_scope,
    send_monthly,
)
from shared.runtime.callers import caller_from_claims
from shared.runtime.observability import logger, metrics, tracer
from shared.runtime.settings import settings
from shared.runtime.web import secured
from shared.runtime.wiring import services

app = APIGatewayHttpResolver()


@app.get("/api/reports/<period>")
def report(period: str) -> Response[str]:
    authorizer = app.current_event.request_context.authorizer
    caller = caller_from_claims((authorizer.jwt_claim if authorizer else None) or {})
    if caller is None:
        raise UnauthorizedError("not a member of this tenant's staff")
    params = app.current_event.query_string_parameters or {}
    fmt = params.get("format") or "html"
    if fmt not in RENDERERS:
        raise BadRequestError("format is html, csv or json")
    try:
        wanted = Period.parse(period)
        scope = requested_scope(caller.member, caller.viewer, caller.tenant, params)
    except ScopeNotFoundError as exc:
        raise NotFoundError(str(exc)) from exc
    except InvalidInputError as exc:
        raise BadRequestError(str(exc)) from exc
    except ReportForbiddenError as exc:
        raise ForbiddenError(str(exc)) from exc
    s = services()
    made = build_report(s.store, s.store, caller.tenant, scope, wanted, s.clock.now(),
                        language=params.get("lang") if params.get("lang") in ("zh", "en") else None)
    render, content_type = RENDERERS[fmt]
    headers: dict[str, str] = {}
    if fmt == "csv":
        name = f"report-{wanted.key}-{scope.dealer or scope.region or caller.tenant.brand.id}.csv"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    logger.info("report", extra={"period": wanted.key, "scope": scope.key, "format": fmt})
    return Response(200, content_type, render(made), headers)


def monthly(event: dict[str, Any]) -> dict[str, Any]:
    s = services()
    tenant = s.store.get_tenant(str(event.get("brand") or settings().brand_id))
    now = s.clock.now()
    month = Period.parse(str(event["month"])) if event.get("month") else \
        Period.month_before(now, tenant.brand.timezone)
    result = send_monthly(s.store, s.store, s.mailer, tenant, month, now)
    # The risk buckets of months before this one: counts that went back to 0 removed (the next
    # report's Query reads only what is still open).
    compacted = s.store.kpi_compact_risk(tenant.brand.id, kpis.month_of(now, tenant.brand.timezone))
    metrics.add_metric(name="ReportsMailed", unit="Count", value=len(result.sent))
    metrics.flush_metrics()  # the only metric of this function: the route and the rebuild publish none
    logger.info("monthly reports", extra={"month": result.month, "sent": len(result.sent),
                                          "skipped": len(result.skipped), "risk_counts_removed": compacted})
    return {"month": result.month, "sent": result.sent, "skipped": result.skipped, "risk_counts_removed": compacted}


def rebuild(event: dict[str, Any]) -> dict[str, Any]:
    s = services()
    brand = str(event.get("brand") or settings().brand_id)
    months = [m for text in event.get("months") or [event["month"]] for m in Period.parse(str(text)).months]
    done = []
    for month in months:
        result = kpis.rebuild_month(s.store, brand, month)
        done.append({"month": result.month, "cases": result.cases, "consistent": result.consistent,
                     "corrected": {scope: {m: str(v) for m, v in delta.items()} for scope, delta in result.corrected.items()},
                     "opinions_put": result.opinions_put, "opinions_deleted": result.opinions_deleted})
    out: dict[str, Any] = {"brand": brand, "months": done}
    if event.get("open"):
        now = s.clock.now()
        cases = s.store.cases_received(brand, now - timedelta(days=int(event.get("open_days") or 400)), now)
        written, removed = kpis.rebuild_open(s.store, cases, s.store.get_tenant(brand))
        out["open"] = {"written": written, "removed": removed}
    logger.info("kpi rebuild", extra={"brand": brand, "months": [d["month"] for d in done],
                                      "consistent": all(d["consistent"] for d in done)})
    return out


ACTIONS = {"monthly": monthly, "rebuild": rebuild}


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "requestContext" in event:  # the HTTP API
        return secured(app.resolve(event, context))
    action = ACTIONS.get(str(event.get("action")))
    if action is None:
        raise InvalidInputError(f"unknown reports action {event.get('action')!r}")
    return action(event)
