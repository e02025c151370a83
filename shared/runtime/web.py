"""The security headers of every answer the HTTP API functions give (link pages, the staff API
and console, reports): one place, applied by each function's handler to whatever its routes
returned, so that no route can forget them.

Every answer is about a case or a person: none is stored by a cache or a browser
(``no-store``), none is sniffed into another type, none may be framed, and the address
(which may hold a link id) goes to no other site. HTML pages also get a policy that runs no
script and loads nothing from elsewhere; forms post only to us (and, for the console in AWS,
to Cognito's sign-in)."""

from __future__ import annotations

from typing import Any

COMMON = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on our own
    # forms, and the console's CSRF check reads the Origin.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def page_policy(form_action: str = "") -> str:
    """The Content-Security-Policy of an HTML page; ``form_action`` another place forms may post to."""
    targets = "'self'" + (f" {form_action}" if form_action else "")
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action {targets}; "
            f"frame-ancestors 'none'; base-uri 'none'")


def page_headers(form_action: str = "") -> dict[str, str]:
    return {**COMMON, "Content-Security-Policy": page_policy(form_action)}


def secured(result: dict[str, Any]) -> dict[str, Any]:
    """An HTTP API (payload 2.0) result with the headers above added where a route set none of
    its own (a route's own CSP, such as the console's, stands)."""
    headers = dict(result.get("headers") or {})
    present = {name.lower() for name in headers}
    content_type = str(headers.get("Content-Type", headers.get("content-type", "")))
    wanted = page_headers() if content_type.startswith("text/html") else {
        **COMMON, "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}
    headers.update({k: v for k, v in wanted.items() if k.lower() not in present})
    return {**result, "headers": headers}
