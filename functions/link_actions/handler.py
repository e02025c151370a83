"""Link pages behind the HTTP API: GET (and HEAD) only show, POST decides."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.complaints.actions import RequestMeta, View
from shared.complaints.bodies import BodyTooLargeError, MalformedBodyError, parse_body
from shared.complaints.errors import LinkForbiddenError, LinkGoneError, LinkNotFoundError, RateLimitedError
from shared.complaints.pages import error_view, render
from shared.runtime.observability import logger, tracer
from shared.runtime.settings import settings
from shared.runtime.web import secured
from shared.runtime.wiring import services

app = APIGatewayHttpResolver()


def _wants_json() -> bool:
    headers = app.current_event.headers or {}
    return "application/json" in (headers.get("content-type", "") + headers.get("accept", ""))


def _respond(view: View) -> Response[str]:
    if _wants_json():
        body = {"status": view.kind, **{k: v for k, v in view.data.items() if isinstance(v, (str, int, float, dict, list))}}
        if view.kind == "step":
            body = {"status": "step", "step": view.data["step"], "form_token": view.data["form_token"],
                    "errors": view.data.get("errors", {})}
        return Response(view.status, "application/json", json.dumps(body, ensure_ascii=False, default=str))
    return Response(view.status, "text/html; charset=utf-8", render(view))


def _guard(call: Any) -> Response[str]:
    try:
        view: View = call()
    except LinkNotFoundError:
        view = error_view(404)
    except LinkGoneError as exc:
        view = View(410, "gone", "zh", {"reason": exc.reason, "by": exc.decided_by, "at": exc.decided_at})
    except LinkForbiddenError:
        view = error_view(403)
    except RateLimitedError:
        view = error_view(429)
    return _respond(view)


def _refused(message: str) -> Response[str]:
    return Response(400, "application/json", json.dumps({"status": "error", "error": message}))


@app.get("/a/<link_id>")
def show(link_id: str) -> Response[str]:
    return _guard(lambda: services().actions.show(link_id))


@app.route("/a/<link_id>", method="HEAD")
def head(link_id: str) -> Response[str]:
    # Mail scanners probe links with HEAD: answer like GET, change nothing.
    response = _guard(lambda: services().actions.show(link_id))
    response.body = ""
    return response


@app.post("/a/<link_id>")
def decide(link_id: str) -> Response[str]:
    try:
        raw = app.current_event.decoded_body or ""
        data, _ = parse_body(raw, (app.current_event.headers or {}).get("content-type", ""), settings().body_limits,
                             form_by_default=True)
    except UnicodeDecodeError:  # API Gateway passes bytes that are not UTF-8 as base64
        return _refused("the body must be UTF-8 text")
    except BodyTooLargeError:
        return _respond(error_view(413))
    except MalformedBodyError as exc:
        return _refused(str(exc))
    http = app.current_event.request_context.http
    meta = RequestMeta(ip=http.source_ip or "", user_agent=http.user_agent or "")
    return _guard(lambda: services().actions.submit(link_id, data, meta))


@logger.inject_lambda_context(log_event=False)  # paths carry link ids: never log the event
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return secured(app.resolve(event, context))
