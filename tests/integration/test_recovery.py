"""Recovery: a mail the mail service refuses is retried, kept, shown and sent later; a
received mail that no intake attempt finished is re-driven by the reconciler, once; one that
keeps failing is held for staff. All on the local runtime with injected faults."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from benchmarks.lifecycles import with_message_id
from infra.local import faults
from infra.local.faults import FaultPlan, FaultRule
from infra.local.http import recipients_of
from infra.local.runtime import LocalInvocationError, LocalRuntime
from infra.local.smtp import start_smtp
from shared.runtime.settings import settings
from shared.runtime.wiring import services
from tests.conftest import sample

CUSTOMER = "zhang.min@mail.example"  # the sender of p02


@pytest.fixture(autouse=True)
def settled(manual_runtime: LocalRuntime) -> Iterator[None]:
    """No plan outlives its test, nor an execution still running into the next test's moto."""
    yield
    faults.deactivate()
    manual_runtime.clock.settle(30)


def past_grace(runtime: LocalRuntime) -> None:
    runtime.clock.advance(timedelta(minutes=settings().reconcile_grace_minutes + 1).total_seconds())


def acknowledgements(runtime: LocalRuntime) -> list[str]:
    return [m.mail.message_id for m in runtime.outbox.all()
            if CUSTOMER in m.mail.to and m.mail.headers.get("Auto-Submitted") == "auto-replied"]


def deliver(runtime: LocalRuntime, ses_id: str, copy: int = 0) -> dict[str, object]:
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    raw = with_message_id(raw, copy) if copy else raw
    return runtime.deliver(raw, recipients_of(raw), ses_message_id=ses_id)


def test_a_refused_mail_is_retried_then_kept_shown_and_sent_by_the_reconciler(manual_runtime: LocalRuntime) -> None:
    store = services().store
    # Refused twice: the third send (jittered backoff) goes out; nothing is kept.
    plan = faults.activate(FaultPlan([FaultRule("ses", "throttle", function="intake_email", count=2)]))
    first = deliver(manual_runtime, "ses-a")
    assert plan.total() == 2 and len(acknowledgements(manual_runtime)) == 1 and not store.pending_mails()
    # Refused on every attempt: the case is registered all the same, the mail waits, the timeline says so.
    faults.activate(FaultPlan([FaultRule("ses", "rejected", function="intake_email", count=3)]))
    second = deliver(manual_runtime, "ses-b", copy=2)  # another mail (its own Message-ID)
    assert second["disposition"] == "new_case" and second["case_no"] != first["case_no"]
    no = str(second["case_no"])
    assert len(acknowledgements(manual_runtime)) == 1
    [pending] = store.pending_mails()
    assert pending.error == "MessageRejected" and pending.mail.case_no == no
    deferred = [e for e in store.events(no) if e.type == "mail_deferred"]
    assert len(deferred) == 1 and "MessageRejected" in deferred[0].summary
    # The message was recorded when it was composed: a reply to it threads even before it goes out.
    assert store.case_for_message_id(pending.mail.message_id.strip("<>")) == no
    faults.deactivate()
    report = manual_runtime.invoke("reconciler", {})
    assert report["mails_resent"] == 1 and report["mails_pending"] == 0
    assert acknowledgements(manual_runtime)[-1] == pending.mail.message_id  # the same Message-ID
    assert not store.pending_mails()
    assert [e.type for e in store.events(no)].count("mail_resent") == 1


def test_a_mail_still_refused_stays_pending_with_its_attempts(manual_runtime: LocalRuntime) -> None:
    faults.activate(FaultPlan([FaultRule("ses", "error", function=f, rate=1.0) for f in ("intake_email", "reconciler")]))
    deliver(manual_runtime, "ses-c")
    manual_runtime.clock.settle(30)
    report = manual_runtime.invoke("reconciler", {})
    assert report["mails_pending"] == 1 and report["mails_resent"] == 0
    [pending] = services().store.pending_mails()
    assert pending.attempts == 2 and pending.error == "ServiceUnavailable"
    assert not acknowledgements(manual_runtime)


def test_a_mail_numbered_but_not_started_is_resumed_once_after_the_grace(manual_runtime: LocalRuntime) -> None:
    store = services().store
    # StartExecution throttled past the client's retries: the case exists, its lifecycle does not.
    faults.activate(FaultPlan([FaultRule("sfn", "throttle", function="intake_email", count=4)]))
    with pytest.raises(LocalInvocationError):
        deliver(manual_runtime, "ses-d")
    faults.deactivate()
    record = store.inbound_record("ses-d")
    assert record is not None and record.status == "processing" and record.case_no
    no = record.case_no
    # Within the grace period the attempt may still be running: left alone.
    assert manual_runtime.invoke("reconciler", {})["in_flight"] == 1
    past_grace(manual_runtime)
    report = manual_runtime.invoke("reconciler", {})
    assert report["redriven"] == {"new_case": 1}
    assert manual_runtime.execution(no)["status"] == "RUNNING"
    assert [c.case_no for c in store.list_cases("aurora")] == [no]
    assert len(acknowledgements(manual_runtime)) == 1
    past_grace(manual_runtime)
    assert manual_runtime.invoke("reconciler", {}) == {"accounted": 0, "in_flight": 0, "redriven": {}, "failed": 0,
                                                        "held": 0, "mails_resent": 0, "mails_pending": 0,
                                                        "more": False}


def test_a_mail_whose_intake_died_before_numbering_becomes_one_case(manual_runtime: LocalRuntime) -> None:
    faults.activate(FaultPlan([FaultRule("s3", "error", operation="GetObject", function="intake_email", count=4)]))
    with pytest.raises(LocalInvocationError):
        deliver(manual_runtime, "ses-e")
    faults.deactivate()
    assert services().store.list_cases("aurora") == []
    past_grace(manual_runtime)
    assert manual_runtime.invoke("reconciler", {})["redriven"] == {"new_case": 1}
    assert len(services().store.list_cases("aurora")) == 1 and len(acknowledgements(manual_runtime)) == 1
    # The same SES message delivered late (Lambda's retry) changes nothing.
    assert deliver(manual_runtime, "ses-e")["disposition"] == "duplicate"


def test_a_mail_that_keeps_failing_is_held_for_staff_with_its_raw_mail(manual_runtime: LocalRuntime) -> None:
    store = services().store
    faults.activate(FaultPlan([FaultRule("s3", "error", operation="GetObject", rate=1.0)]))
    with pytest.raises(LocalInvocationError):
        deliver(manual_runtime, "ses-f")
    reports = []
    for _ in range(settings().reconcile_max_attempts):
        past_grace(manual_runtime)
        reports.append(manual_runtime.invoke("reconciler", {}))
    assert [r["failed"] for r in reports[:-1]] == [1] * (settings().reconcile_max_attempts - 1)
    assert reports[-1]["held"] == 1
    [held] = store.list_held("aurora")
    assert held.inbound_id == "ses-f" and held.raw_key == "raw/ses-f" and held.disposition == "quarantine_malformed"
    assert "TransientError" in (held.detail or "")
    record = store.inbound_record("ses-f")
    assert record is not None and record.status == "done"
    faults.deactivate()
    # Staff release it once the store answers again: one case, from the raw mail kept.
    result = services().intake.release("aurora", held.held_id, "cr.center@aurora-motors.example")
    assert result is not None and result.disposition == "new_case"
    assert len(store.list_cases("aurora")) == 1


def test_smtp_retries_a_failed_intake_with_the_same_ses_message(manual_runtime: LocalRuntime) -> None:
    """As Lambda retries an SES event: the same message id, so the retry resumes the mail."""
    smtp = start_smtp(manual_runtime, "127.0.0.1", 0)  # a port of its own, race-free
    port = smtp.port
    try:
        plan = faults.activate(FaultPlan([FaultRule("lambda", "timeout", function="intake_email", count=1),
                                          FaultRule("sfn", "throttle", function="intake_email", count=4)]))
        raw = sample("p02_wait_time_bj002_gb2312.eml")
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            client.sendmail(CUSTOMER, recipients_of(raw), raw)
        assert plan.total() == 5
    finally:
        smtp.stop()
    store = services().store
    [case] = store.list_cases("aurora")
    assert manual_runtime.execution(case.case_no)["status"] == "RUNNING"
    assert store.list_held("aurora") == [] and len(acknowledgements(manual_runtime)) == 1
