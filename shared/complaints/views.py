"""The case as JSON for staff and scripts (architecture.md, "Local interface")."""

from __future__ import annotations

from typing import Any

from .clock import iso
from .models import Case, TimelineEvent
from .tenant import Staff, Tenant


def case_document(case: Case, events: list[TimelineEvent]) -> dict[str, Any]:
    c = case.classification
    return {
        "case_no": case.case_no,
        "phase": case.phase,
        "dealer": case.dealer,
        "region": case.region,
        "channel": case.channel,
        "level": case.level,
        "category": c.category,
        "severity": c.severity,
        "safety": c.safety,
        "media_or_regulator": c.media_or_regulator,
        "repeat_of": c.repeat_of,
        "classification_reasons": c.reasons,
        "language": case.language,
        "subject": case.subject,
        "received_at": iso(case.received_at),
        "closed_at": iso(case.closed_at) if case.closed_at else None,
        "assignee": case.assignee,
        "escalation_level": case.escalation_level,
        "customer": {"email": case.customer.email, "name": case.customer.name, "phone": case.customer.phone},
        "vehicle": case.vehicle.model_dump() if case.vehicle else None,
        "reporter": case.reporter,
        "on_time": case.on_time,
        "milestones": [
            {"name": m.name, "cycle": m.cycle, "due_at": iso(m.due_at), "met_at": iso(m.met_at) if m.met_at else None,
             "breached": m.breached, "original_due_at": iso(m.original_due_at) if m.original_due_at else None,
             "extensions": [{"reason": e.reason, "until": iso(e.until), "answer": e.answer,
                             "requested_by": e.requested_by}
                            for e in case.extensions if e.milestone == m.name and e.cycle == m.cycle]}
            for m in case.milestones
        ],
        "calendar_warning": case.calendar_warning,
        "investigation": case.investigation.model_dump(mode="json") if case.investigation else None,
        "plan": case.plan.model_dump(mode="json") if case.plan else None,
        "approvals": [a.model_dump(mode="json") for a in case.approvals],
        "customer_decision": case.customer_decision,
        "timeline": [{"at": iso(e.at), "type": e.type, "actor": e.actor, "summary": e.summary} for e in events],
        "survey": {"score": case.survey.score if case.survey else None,
                   "grade": case.survey.grade if case.survey else None,
                   "comment": case.survey.comment if case.survey else None,
                   "unrated": case.survey.unrated if case.survey else False,
                   "opinion": case.survey.opinion if case.survey else False},
        "attention_reason": case.attention_reason,
    }


def can_see(member: Staff, tenant: Tenant, case: Case) -> bool:
    """Brand staff see every case of the brand, regional managers their region, dealer staff their dealer."""
    if case.brand != tenant.brand.id:
        return False
    if member.role == "brand_cr":
        return True
    if member.role == "regional_manager":
        return case.region is not None and case.region == member.region
    return case.dealer is not None and case.dealer == member.dealer
