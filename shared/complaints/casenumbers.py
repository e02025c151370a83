"""Unified case numbers (统一编号): ``AUR-SH001-202611-00042``, gap-free per dealer and month."""

from __future__ import annotations

import re
from datetime import datetime

from .ports import CaseStore
from .tenant import TRIAGE, Tenant


def allocate(store: CaseStore, tenant: Tenant, dealer: str | None, received_at: datetime) -> str:
    """The next number for the dealer (or the brand's triage queue) in the month of
    receipt on the brand's calendar. The counter is one atomic update, so concurrent
    intakes never share a number and no number is skipped."""
    segment = dealer or TRIAGE
    month = tenant.calendar_for(dealer).local(received_at).strftime("%Y%m")
    seq = store.next_case_sequence(tenant.brand.id, segment, month)
    return f"{tenant.brand.case_prefix}-{segment}-{month}-{seq:05d}"


# A case number of any tenant (brand prefix, dealer segment, month, sequence): a reply naming
# another brand's case must be recognised as such, not read as plain text.
ANY = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-[A-Z0-9]{2,10}-\d{6}-\d{5}\b")
