"""Links in mails: opaque, unguessable, expiring, single use, bound to a recipient.

The link id (256 random bits) appears only in the mail. We store a SHA-256 of it, so
neither the table nor a log holds a working link. A page's ``form_token`` is an HMAC
over the link and a per-link secret: a POST must come from a page we rendered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from .clock import Clock
from .errors import LinkGoneError, LinkNotFoundError, RateLimitedError
from .models import Link
from .ports import CaseStore

LINK_ID_BYTES = 32


def link_hash(link_id: str) -> str:
    return hashlib.sha256(link_id.encode("ascii", "replace")).hexdigest()


class LinkService:
    def __init__(self, store: CaseStore, clock: Clock, secret: str, base_url: str, per_minute: int = 30) -> None:
        self._store = store
        self._clock = clock
        self._secret = secret.encode("utf-8")
        self._base_url = base_url.rstrip("/")
        self._per_minute = per_minute

    def issue(self, *, case_no: str, step: str, task_key: str | None, recipient: str,
              expires_at: datetime) -> str:
        link_id = secrets.token_urlsafe(LINK_ID_BYTES)
        self._store.put_link(Link(
            link_hash=link_hash(link_id), case_no=case_no, step=step,
            task_key=task_key, recipient=recipient.lower(), created_at=self._clock.now(),
            expires_at=expires_at, form_secret=secrets.token_urlsafe(16)))
        return f"{self._base_url}/a/{link_id}"

    def console_case(self, case_no: str) -> str:
        """The case's page in the staff console (staff sign in there; no token in the URL)."""
        return f"{self._base_url}/console/cases/{case_no}"

    def resolve(self, link_id: str) -> Link:
        """The link behind an id, if it exists and has not expired (used links resolve:
        their page says who decided and when)."""
        if not link_id or len(link_id) > 100:
            raise LinkNotFoundError("unknown link")
        link = self._store.get_link(link_hash(link_id))
        if link is None:
            raise LinkNotFoundError("unknown link")
        now = self._clock.now()
        window = now.strftime("%Y%m%d%H%M")
        if self._store.count_hit(link.link_hash, window, int(now.timestamp()) + 120) > self._per_minute:
            raise RateLimitedError("too many requests for this link")
        if self._clock.now() >= link.expires_at:
            raise LinkGoneError("link expired", reason="expired")
        return link

    def form_token(self, link: Link) -> str:
        mac = hmac.new(self._secret, f"{link.link_hash}:{link.form_secret}".encode(), hashlib.sha256)
        return mac.hexdigest()

    def form_token_valid(self, link: Link, token: object) -> bool:
        # Bytes: compare_digest refuses a str with non-ASCII characters (a hostile form's).
        return isinstance(token, str) and bool(token) and hmac.compare_digest(
            self.form_token(link).encode(), token.encode("utf-8", "surrogatepass"))
