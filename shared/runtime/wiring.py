"""Builds the domain services from settings: the one place where adapters meet the
domain. The local runtime swaps the clock and the mailer through ``configure``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.complaints.actions import LinkActions
from shared.complaints.clock import Clock, SystemClock
from shared.complaints.errors import ConfigurationError
from shared.complaints.intake import Intake
from shared.complaints.lifecycle import Lifecycle
from shared.complaints.links import LinkService
from shared.complaints.notifications import Notifier
from shared.complaints.outbound import ReliableMailer, RetryRules
from shared.complaints.ports import BlobStore, CaseStore, Mailer, Workflow
from shared.complaints.reconcile import Reconciler, ReconcileRules

from .observability import logger
from .sessions import CognitoSessions, StaffSessions
from .settings import settings

if TYPE_CHECKING:
    from shared.adapters.dynamodb import DynamoCaseStore


@dataclass
class Services:
    store: CaseStore
    blobs: BlobStore
    mailer: Mailer
    workflow: Workflow
    clock: Clock
    links: LinkService
    lifecycle: Lifecycle
    intake: Intake
    actions: LinkActions


_overrides: dict[str, Any] = {}
_services: Services | None = None
_sessions: StaffSessions | None = None


def configure(**overrides: Any) -> None:
    """Replace adapters (clock, mailer, ...) before the first use; used by the local runtime and tests."""
    global _services
    _overrides.update(overrides)
    _services = None


def reset(**overrides: Any) -> None:
    """Forget every adapter replaced so far, then replace these: a new local runtime starts from its
    own, not from what an earlier one in this process left (a benchmark's state machine)."""
    global _sessions
    _overrides.clear()
    _sessions = None
    configure(**overrides)


def staff_sessions() -> StaffSessions:
    """How the console signs staff in: Cognito in AWS; the local runtime configures its stand-in."""
    global _sessions
    configured: StaffSessions | None = _overrides.get("staff_sessions")
    if configured is not None:
        return configured
    if _sessions is None:
        s = settings()
        _sessions = CognitoSessions(s.staff_sign_in_url, s.staff_client_id, s.region)
    return _sessions


def services() -> Services:
    global _services
    if _services is None:
        _services = _build()
    return _services


def bind_table() -> None:
    """Point the table model at this deployment's table (settings): the store, and the local runtime
    creating the table, call it before the table is used; the adapter reads no settings itself."""
    from shared.adapters import table

    s = settings()
    table.bind(s.table_name, s.region, s.dynamodb_endpoint)


def case_store() -> DynamoCaseStore:
    """The case store on this deployment's table, reporting through the handlers' logger."""
    from shared.adapters.dynamodb import DynamoCaseStore

    bind_table()
    return DynamoCaseStore(logger)


def _build() -> Services:
    from shared.adapters.aws import S3BlobStore, SesMailer, StepFunctionsWorkflow

    s = settings()
    clock: Clock = _overrides.get("clock") or SystemClock()
    store: CaseStore = _overrides.get("store") or case_store()
    blobs: BlobStore = _overrides.get("blobs") or S3BlobStore(s.raw_bucket, s.region)
    mailer: Mailer = _overrides.get("mailer") or SesMailer(s.region)
    workflow: Workflow = _overrides.get("workflow") or StepFunctionsWorkflow(s.state_machine_arn, s.region)
    if not s.link_secret:
        raise ConfigurationError("COMPLAINTS_LINK_SECRET is not set: links cannot be signed")
    links = LinkService(store, clock, s.link_secret, s.public_base_url, s.link_requests_per_minute)
    # A mail the service refuses is retried, then kept for the reconciler: no step fails on it.
    mailer = ReliableMailer(mailer, store, clock, RetryRules(s.mail_send_attempts, s.mail_retry_base_s,
                                                             s.mail_retry_cap_s))
    notifier = Notifier(store, mailer, clock)
    lifecycle = Lifecycle(store, workflow, clock, links, notifier)
    actions = LinkActions(lifecycle, links)
    intake = Intake(store, blobs, workflow, clock, lifecycle, decide_by_mail=actions.decide_by_mail,
                    fallback_brand=s.brand_id)
    return Services(store, blobs, mailer, workflow, clock, links, lifecycle, intake, actions)


def reconciler() -> Reconciler:
    """The scheduled reconciler (``functions/reconciler``), on the services every handler uses."""
    svc, s = services(), settings()
    mailer = svc.mailer
    if not isinstance(mailer, ReliableMailer):  # _build wraps every mailer
        raise ConfigurationError("the reconciler re-sends through the ReliableMailer")
    rules = ReconcileRules(timedelta(minutes=s.reconcile_grace_minutes), s.reconcile_lookback_days,
                           s.reconcile_max_attempts, s.reconcile_batch)
    return Reconciler(svc.store, svc.intake, mailer, svc.clock, rules)
