"""The local HTTP server: what API Gateway does in AWS, plus the ``/_local/`` tools.

``/a/...`` and ``/api/...`` become HTTP API (v2) events for the very handlers that run
behind API Gateway, invoked through moto's Lambda; ``rawPath`` stays encoded as API
Gateway sends it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra import catalog
from shared.complaints.bodies import BodyTooLargeError, MalformedBodyError, parse_json
from shared.complaints.clock import iso, parse_iso
from shared.runtime.settings import settings as function_settings

from . import faults, tokens
from .routes import api_function
from .runtime import ACCOUNT, LocalInvocationError, LocalRuntime
from .settings import LocalSettings

MAX_INBOUND = 40 * 1024 * 1024  # SES's receiving limit
MAX_API_BODY = 1024 * 1024
DRAINED = 10 * 1024 * 1024  # what a refused body is read of before the answer (API Gateway's payload limit)


def api_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str,
              claims: dict[str, object] | None) -> dict[str, Any]:
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    now = time.time()
    context: dict[str, Any] = {
        "accountId": ACCOUNT, "apiId": "local", "domainName": headers.get("host", "127.0.0.1"),
        "domainPrefix": "local", "requestId": uuid.uuid4().hex, "routeKey": "$default", "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                 "userAgent": headers.get("user-agent", "")},
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": []}}
    # Payload 2.0 hands the Cookie header over as a list of "name=value", not as a header.
    cookies = [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()]
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": parts.path, "rawQueryString": parts.query,
        "headers": {k: v for k, v in headers.items() if k != "cookie"},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "requestContext": context, "body": text, "isBase64Encoded": is_b64, **({"cookies": cookies} if cookies else {}),
    }


def recipients_of(raw: bytes) -> list[str]:
    """The To/Cc addresses of a mail, for /_local/inbound without an explicit envelope."""
    try:
        headers = BytesHeaderParser().parsebytes(raw)
        values = [str(v) for name in ("to", "cc", "delivered-to") for v in (headers.get_all(name) or [])]
    except Exception:  # noqa: BLE001 - a broken header leaves the intake to decide
        return []
    return [addr.lower() for _, addr in getaddresses(values) if "@" in addr]


class LocalHttpServer:
    def __init__(self, runtime: LocalRuntime, settings: LocalSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.server = ThreadingHTTPServer((settings.host, settings.http_port), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="local-http", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on: the one asked for, or the one the system gave for port 0."""
        return int(self.server.server_address[1])

    def start(self) -> LocalHttpServer:
        from shared.runtime import wiring

        wiring.configure(staff_sessions=tokens.LocalSessions(self.settings.token_secret))  # the console's sign-in
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for serve_forever, which a server never started lacks
            self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "complaints-local"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no request logs: paths hold link ids
                return

            def do_GET(self) -> None:
                outer.dispatch(self, "GET")

            def do_HEAD(self) -> None:
                outer.dispatch(self, "HEAD")

            def do_POST(self) -> None:
                outer.dispatch(self, "POST")

        return Handler

    # ----- dispatch ---------------------------------------------------------------------------
    def dispatch(self, req: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(req.path).path
        length = int(req.headers.get("content-length") or 0)
        limit = MAX_INBOUND if path == "/_local/inbound" else MAX_API_BODY
        if length > limit:
            # Read what was sent (up to API Gateway's own 10 MB limit) so that the client, still sending,
            # gets the 413 and not a broken pipe; a larger body is answered as it comes.
            remaining = min(length, DRAINED)
            while remaining > 0 and (chunk := req.rfile.read(min(65536, remaining))):
                remaining -= len(chunk)
            self._send(req, 413, "application/json", json.dumps({"error": "body too large"}).encode())
            return
        body = req.rfile.read(length) if length else b""
        try:
            if path.startswith("/a/"):
                with self.runtime.clock.busy():  # a person acting: warp waits for them
                    self._lambda(req, method, body, "link_actions", None)
            elif path.startswith("/api/"):
                claims = self._claims(req)
                if claims is None:
                    self._json(req, 401, {"message": "Unauthorized"})
                else:
                    self._lambda(req, method, body, api_function(method, path), claims)
            elif path == "/console" or path.startswith("/console/"):
                with self.runtime.clock.busy():  # the console checks its session cookie itself
                    self._lambda(req, method, body, "staff_api", None)
            elif path.startswith("/_local/"):
                self._local(req, method, path, body)
            elif path == "/":
                self._send(req, 200, "text/html; charset=utf-8", self._index().encode())
            else:
                self._json(req, 404, {"message": "Not Found"})
        except LocalInvocationError as exc:
            self._json(req, 502, {"message": "handler failed", "error": exc.payload.get("errorType")})

    def _claims(self, req: BaseHTTPRequestHandler) -> dict[str, object] | None:
        auth = req.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        return tokens.verify(auth[7:].strip(), self.settings.token_secret)

    def _lambda(self, req: BaseHTTPRequestHandler, method: str, body: bytes, function: str,
                claims: dict[str, object] | None) -> None:
        headers = {k.lower(): v for k, v in req.headers.items()}
        event = api_event(method, req.path, headers, body, req.client_address[0], claims)
        result = self.runtime.invoke(function, event)
        status = int(result.get("statusCode", 200))
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        out_headers = dict(result.get("headers") or {})
        content_type = out_headers.pop("Content-Type", out_headers.pop("content-type", "application/json"))
        self._send(req, status, content_type, b"" if method == "HEAD" else data, out_headers,
                   length=len(data), cookies=list(result.get("cookies") or []))

    # ----- /_local/ tools ---------------------------------------------------------------------
    def _local(self, req: BaseHTTPRequestHandler, method: str, path: str, body: bytes) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(req.path).query).items()}
        if path == "/_local/inbound" and method == "POST":
            recipients = [r.strip().lower() for r in query["recipient"].split(",")] if "recipient" in query \
                else recipients_of(body)
            verdicts: dict[str, str] = {k: query[k] for k in ("spam", "virus", "spf", "dkim", "dmarc") if k in query}
            result = self.runtime.deliver(body, recipients, query.get("sender"), verdicts,
                                          dkim_domain=query.get("dkim_domain") or None)
            self._json(req, 200, result)
        elif path == "/_local/mail.json":
            case = query.get("case")
            mails = [m.as_dict() for m in self.runtime.outbox.all() if not case or m.mail.case_no == case]
            self._json(req, 200, mails)
        elif path == "/_local/mail":
            self._send(req, 200, "text/html; charset=utf-8", self._outbox_page(query.get("case")).encode())
        elif path == "/_local/clock" and method == "GET":
            self._json(req, 200, self._clock())
        elif path == "/_local/clock" and method == "POST":
            data = self._body(req, body)
            if data is None:
                return
            self.runtime.clock.settle(10)  # what was already under way happens before time moves
            try:
                if "advance_hours" in data:
                    self.runtime.clock.advance(float(data["advance_hours"]) * 3600)
                elif "set" in data:
                    self.runtime.clock.set(parse_iso(str(data["set"])))
                else:
                    raise ValueError("give advance_hours or set")
            except (ValueError, TypeError) as exc:
                self._json(req, 400, {"error": str(exc)})
                return
            self.runtime.clock.settle(10)
            self._json(req, 200, self._clock())
        elif path == "/_local/faults":
            self._faults(req, method, body)
        elif path.startswith("/_local/invoke/") and method == "POST":  # aws lambda invoke (schedules, repairs)
            function = path.removeprefix("/_local/invoke/")
            if function not in {spec.name for spec in catalog.FUNCTIONS}:
                self._json(req, 404, {"error": f"no function {function!r}"})
                return
            event = self._body(req, body)
            if event is None:
                return
            with self.runtime.clock.busy():
                self._json(req, 200, self.runtime.invoke(function, event))
        elif path == "/_local/token" and method == "POST":
            data = self._body(req, body)
            if data is None:
                return
            email = str(data.get("email", "")).lower()
            from shared.runtime.wiring import services

            tenant = services().store.get_tenant(str(data.get("brand", "aurora")))
            if tenant.staff_member(email) is None:
                self._json(req, 404, {"error": "no staff member with that e-mail"})
                return
            self._json(req, 200, {"token": tokens.issue(email, tenant.brand.id, self.settings.token_secret)})
        else:
            self._json(req, 404, {"message": "Not Found"})

    def _faults(self, req: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        """GET: the fault plan in force and what it injected. POST a plan (``faults.plan_from_json``)
        to switch it on; ``{"rules": []}`` switches faults off."""
        if method == "POST":
            data = self._body(req, body)
            if data is None:
                return
            try:
                plan = faults.plan_from_json(data)
            except (ValueError, TypeError) as exc:
                self._json(req, 400, {"error": str(exc)})
                return
            faults.activate(plan) if plan.rules else faults.deactivate()
        current = faults.active()
        self._json(req, 200, current.summary() if current else {"rules": [], "total_injected": 0})

    def _body(self, req: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any] | None:
        """A tool's JSON body, read as the functions read theirs; None when refused (400 sent)."""
        try:
            return parse_json(body, function_settings().body_limits)
        except BodyTooLargeError as exc:
            self._json(req, 413, {"error": str(exc)})
            return None
        except MalformedBodyError as exc:
            self._json(req, 400, {"error": str(exc)})
            return None

    def _clock(self) -> dict[str, Any]:
        clock = self.runtime.clock
        nxt = clock.next_deadline()
        return {"now": iso(clock.now()), "mode": clock.mode, "next_deadline": iso(nxt) if nxt else None}

    def _json(self, req: BaseHTTPRequestHandler, status: int, data: Any) -> None:
        self._send(req, status, "application/json", json.dumps(data, ensure_ascii=False, default=str).encode())

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, content_type: str, data: bytes,
              headers: dict[str, str] | None = None, length: int | None = None,
              cookies: list[str] | None = None) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(data) if length is None else length))
        for key, value in (headers or {}).items():
            req.send_header(key, value)
        for cookie in cookies or []:  # what API Gateway makes of a payload 2.0 response's "cookies"
            req.send_header("Set-Cookie", cookie)
        req.end_headers()
        if data:
            req.wfile.write(data)

    # ----- pages ------------------------------------------------------------------------------
    def _outbox_page(self, case: str | None) -> str:
        mails = [m for m in self.runtime.outbox.all() if not case or m.mail.case_no == case]
        rows = []
        for m in reversed(mails):
            d = m.as_dict()
            links = "".join(f'<a class="btn" href="{escape(link["url"])}">{escape(link["step"])}</a>'
                            for link in d["links"])
            rows.append(
                f'<article><header><b>{escape(d["subject"])}</b><span>#{d["id"]} · {escape(d["sent_at"])}</span></header>'
                f'<div class="meta">to {escape(", ".join(d["to"]))} · case '
                f'<a href="/_local/mail?case={escape(d["case_no"] or "")}">{escape(d["case_no"] or "-")}</a></div>'
                f'<div class="links">{links}</div><details><summary>text</summary><pre>{escape(d["text"])}</pre></details>'
                f"</article>")
        title = f"Outbox · {escape(case)}" if case else "Outbox"
        return f"""<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>
body{{font:15px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",Arial,sans-serif;margin:0;background:#f4f5f7;color:#1f2933}}
h1{{font-size:18px;margin:0;padding:14px 18px;background:#1f2933;color:#fff}} h1 a{{color:#9fb3c8;font-size:13px;margin-left:12px}}
main{{max-width:860px;margin:0 auto;padding:12px}} article{{background:#fff;border-radius:8px;padding:12px 14px;margin:0 0 10px}}
header{{display:flex;justify-content:space-between;gap:8px;flex-wrap:wrap}} header span,.meta{{color:#616e7c;font-size:13px}}
.btn{{display:inline-block;background:#0b5394;color:#fff;padding:6px 12px;border-radius:5px;text-decoration:none;margin:6px 6px 0 0;font-size:14px}}
pre{{white-space:pre-wrap;font:inherit;background:#f9fafb;padding:8px}}</style></head>
<body><h1>{title} ({len(mails)})<a href="/_local/mail">all mail</a><a href="/_local/clock">clock: {escape(iso(self.runtime.clock.now()))}</a></h1>
<main>{"".join(rows) or "<p>No mail sent yet. Send a complaint: <code>complaints send tests/data/emails/p01_brake_failure_sh001.eml</code></p>"}</main></body></html>"""

    def _index(self) -> str:
        return (f'<!doctype html><meta charset="utf-8"><title>complaints (local)</title>'
                f'<h1>Complaint handling — local stack</h1><ul>'
                f'<li><a href="/console">Staff console</a></li>'
                f'<li><a href="/_local/mail">Outbox</a> (<a href="/_local/mail.json">JSON</a>)</li>'
                f'<li><a href="/_local/clock">Clock</a> ({escape(self.runtime.clock.mode)})</li>'
                f'<li>SMTP: {escape(self.settings.host)}:{self.settings.smtp_port}</li></ul>')
