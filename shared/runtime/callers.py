"""Who is calling an HTTP API function on behalf of staff (the staff API, the console, reports): the
staff member a verified token names, in their tenant, as the ``Viewer`` every scoped read takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.complaints.errors import ConfigurationError
from shared.complaints.tenant import Staff, Tenant
from shared.complaints.views import Viewer

from .settings import settings
from .wiring import services


@dataclass(frozen=True)
class Caller:
    member: Staff
    tenant: Tenant
    viewer: Viewer


def caller_from_claims(claims: dict[str, Any]) -> Caller | None:
    """The staff member a verified token names (``email``, ``custom:brand``), if the brand has them."""
    email = str(claims.get("email") or "")
    brand = str(claims.get("custom:brand") or settings().brand_id)
    try:
        tenant = services().store.get_tenant(brand)
    except ConfigurationError:
        return None
    member = tenant.staff_member(email) if email else None
    if member is None:
        return None
    return Caller(member, tenant, Viewer.of(member, tenant))
