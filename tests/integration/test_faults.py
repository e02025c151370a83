"""Fault injection in the local runtime (``infra/local/faults.py``): each kind of fault
reaches the code as AWS would send it, through botocore's retries, only on the system's
own calls, deterministically for a seed; and what the state machine makes of Lambda faults."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import GetError

from infra.local import faults
from infra.local.faults import FaultPlan, FaultRule
from infra.local.http import LocalHttpServer, recipients_of
from infra.local.runtime import LocalInvocationError, LocalRuntime
from infra.local.settings import LocalSettings
from shared.complaints.errors import ConflictError, TransientError, plain_reason
from shared.complaints.models import TimelineEvent
from shared.runtime.wiring import services
from tests.conftest import finished, sample, wait_until


@pytest.fixture(autouse=True)
def no_plan_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """No plan outlives its test, nor an execution still running into the next test's moto."""
    runtimes = [request.getfixturevalue(n) for n in ("manual_runtime", "warp_runtime") if n in request.fixturenames]
    yield
    faults.deactivate()
    for runtime in runtimes:
        runtime.clock.settle(30)


@contextmanager
def inside(function: str) -> Iterator[None]:
    """Code running as a function of the catalog: the calls a plan may fail."""
    token = faults.running_function.set(function)
    try:
        yield
    finally:
        faults.running_function.reset(token)


def register(runtime: LocalRuntime, name: str = "p02_wait_time_bj002_gb2312.eml", **kwargs: Any) -> str:
    raw = sample(name)
    result = runtime.deliver(raw, recipients_of(raw), **kwargs)
    assert result["disposition"] == "new_case", result
    return str(result["case_no"])


def test_aws_faults_arrive_with_their_real_codes_after_the_sdks_retries(manual_runtime: LocalRuntime) -> None:
    store, blobs = services().store, services().blobs
    blobs.put("raw/kept", b"mail")
    with inside("workflow"):
        # One throttle: botocore's standard retry absorbs it.
        plan = faults.activate(FaultPlan([FaultRule("dynamodb", "throttle", operation="GetItem", count=1)]))
        # (The recipient-address lookup: the tenant itself is cached in a warm container.)
        assert store.tenant_for_address("sh001@complaints.aurora-motors.example") == "aurora"
        assert plan.injected == {("dynamodb", "GetItem", "throttle", "workflow"): 1}
        # More throttles than pynamodb's attempts (1 + 3): the domain sees TransientError.
        faults.activate(FaultPlan([FaultRule("dynamodb", "throttle", operation="GetItem", count=4)]))
        with pytest.raises(TransientError) as caught:
            store.tenant_for_address("nobody@elsewhere.example")
        cause = caught.value.__cause__
        assert isinstance(cause, GetError) and cause.cause_response_code == "ProvisionedThroughputExceededException"
        # S3: 5xx on every attempt (1 + 3) of a read.
        faults.activate(FaultPlan([FaultRule("s3", "error", operation="GetObject", count=4)]))
        with pytest.raises(TransientError) as read:
            blobs.get("raw/kept")
        assert isinstance(read.value.__cause__, ClientError)
        assert read.value.__cause__.response["Error"]["Code"] == "InternalError"
        faults.activate(FaultPlan([FaultRule("s3", "throttle", operation="GetObject", count=3)]))
        assert blobs.get("raw/kept") == b"mail"  # SlowDown three times, then the object
        # Step Functions: throttled StartExecution past the client's retries.
        faults.activate(FaultPlan([FaultRule("sfn", "throttle", operation="StartExecution", count=4)]))
        with pytest.raises(TransientError):
            services().workflow.start("AUR-NONE-1", {"case_no": "AUR-NONE-1"})


def test_only_the_systems_own_calls_fail(manual_runtime: LocalRuntime) -> None:
    plan = faults.activate(FaultPlan([FaultRule("dynamodb", "throttle", rate=1.0), FaultRule("s3", "error", rate=1.0)]))
    # The test's own calls (and SES's S3 action in ``deliver``) run outside any function.
    assert services().store.get_tenant("aurora").brand.id == "aurora"
    services().blobs.put("raw/outside", b"x")
    assert plan.total() == 0 and not plan.calls
    with inside("staff_api"), pytest.raises(TransientError):
        services().store.tenant_for_address("nobody@elsewhere.example")  # not cached: always read
    assert plan.total() == 4


def test_conflicts_are_injected_only_where_an_optimistic_lock_can_lose(manual_runtime: LocalRuntime) -> None:
    no = register(manual_runtime)
    assert manual_runtime.clock.settle()  # the lifecycle's first steps have written the case: no real race
    store = services().store
    plan = faults.activate(FaultPlan([FaultRule("dynamodb", "conflict", rate=1.0)]))
    with inside("workflow"):
        case = store.get_case(no)
        with pytest.raises(ConflictError):
            store.save_case(case)  # conditioned on its version
        # Conditions on existence cannot be lost to a concurrent writer that does not exist.
        store.add_event(TimelineEvent(case_no=no, at=manual_runtime.clock.now(), type="note", actor="system",
                                      summary="written"))
    assert plan.total() == 1 and any(e.summary == "written" for e in store.events(no))
    faults.deactivate()
    assert store.save_case(case).version == case.version + 1


def test_decisions_are_deterministic_for_a_seed() -> None:
    calls = [("dynamodb", "PutItem", "workflow"), ("dynamodb", "GetItem", "intake_email"), ("s3", "GetObject", "workflow")]

    def decisions(seed: int, order: list[int]) -> dict[tuple[str, str, str], list[bool]]:
        plan = FaultPlan([FaultRule("dynamodb", "throttle", rate=0.3), FaultRule("s3", "error", rate=0.3)], seed)
        seen: dict[tuple[str, str, str], list[bool]] = {c: [] for c in calls}
        for i in order:
            seen[calls[i]].append(plan.decide(*calls[i]) is not None)
        return seen

    forward = [i % 3 for i in range(600)]
    interleaved = sorted(forward, key=lambda i: (i * 7919) % 13)  # the same calls in another order
    assert decisions(7, forward) == decisions(7, interleaved)
    assert decisions(7, forward) != decisions(8, forward)
    rates = [sum(v) / len(v) for v in decisions(7, forward).values()]
    assert all(0.2 < r < 0.4 for r in rates), rates
    with pytest.raises(ValueError, match="no fault"):
        FaultRule("s3", "conflict")


def test_lambda_throttles_errors_and_timeouts(manual_runtime: LocalRuntime) -> None:
    plan = faults.activate(FaultPlan([FaultRule("lambda", "throttle", function="reconciler", count=1)]))
    assert "redriven" in manual_runtime.invoke("reconciler", {})  # the SDK retried the 429
    assert plan.injected == {("lambda", "Invoke", "throttle", "reconciler"): 1}
    faults.activate(FaultPlan([FaultRule("lambda", "error", function="reconciler", count=10)]))
    with pytest.raises(ClientError) as failed:
        manual_runtime.invoke("reconciler", {})
    assert failed.value.response["Error"]["Code"] == "ServiceException"
    # A timeout: the intake did its work, its answer was lost; the same SES message again
    # finds the work done.
    faults.activate(FaultPlan([FaultRule("lambda", "timeout", function="intake_email", count=1)]))
    raw = sample("p02_wait_time_bj002_gb2312.eml")
    with pytest.raises(LocalInvocationError) as timed_out:
        manual_runtime.deliver(raw, recipients_of(raw), ses_message_id="ses-timeout")
    assert timed_out.value.payload["errorType"] == "Sandbox.Timedout"
    again = manual_runtime.deliver(raw, recipients_of(raw), ses_message_id="ses-timeout")
    assert again["disposition"] == "duplicate" and again["case_no"]
    assert len(services().store.list_cases("aurora")) == 1


def test_the_state_machine_retries_lambda_throttles(warp_runtime: LocalRuntime) -> None:
    faults.activate(FaultPlan([FaultRule("lambda", "throttle", function="workflow", count=2)]))
    no = register(warp_runtime)
    wait_until(lambda: services().store.get_task(no, "first_contact-1") is not None)
    errors = [e["taskFailedEventDetails"]["error"] for e in warp_runtime.history(no) if e["type"] == "TaskFailed"]
    assert errors == ["Lambda.TooManyRequestsException"] * 2
    assert services().store.get_case(no).phase == "first_contact"


def test_a_task_that_times_out_once_is_retried_and_the_case_goes_on(warp_runtime: LocalRuntime) -> None:
    plan = faults.activate(FaultPlan([FaultRule("lambda", "timeout", function="workflow", count=1)]))
    no = register(warp_runtime)
    wait_until(lambda: services().store.get_case(no).phase == "first_contact"
               and services().store.get_case(no).step_timer is not None)
    assert plan.total() == 1
    assert warp_runtime.execution(no)["status"] == "RUNNING"


def test_a_task_that_keeps_timing_out_parks_its_case_visibly_even_when_mail_fails(
        warp_runtime: LocalRuntime, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the state machine's retries (5) the case shows needs_attention, the brand CR center
    gets its mail (after the mail service refused it, from the reconciler) and the
    NeedsAttention metric counts it."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    plan = faults.activate(FaultPlan([FaultRule("lambda", "timeout", function="workflow", count=6),
                                      FaultRule("ses", "rejected", function="workflow", count=3)]))
    no = register(warp_runtime)
    wait_until(finished(warp_runtime, no))
    execution = warp_runtime.execution(no)
    assert execution["status"] == "FAILED" and execution.get("error") == "CaseNeedsAttention"
    case = services().store.get_case(no)
    # Staff read a plain reason; the raw error name stays in the timeline's details for operators.
    assert case.phase == "needs_attention" and case.attention_reason == plain_reason("Sandbox.Timedout", zh=True)
    parked = [e for e in services().store.events(no) if e.type == "needs_attention"]
    assert str(parked[-1].data["error"]).startswith("Sandbox.Timedout")
    assert plan.total() == 6 + 3
    cr = "cr.center@aurora-motors.example"
    assert not [m for m in warp_runtime.outbox.for_case(no) if cr in m.mail.to]
    assert [e.type for e in services().store.events(no)].count("mail_deferred") == 1
    faults.deactivate()
    report = warp_runtime.invoke("reconciler", {})
    assert report["mails_resent"] == 1
    alerts = [m for m in warp_runtime.outbox.for_case(no) if cr in m.mail.to]
    assert len(alerts) == 1 and "案件需人工处理" in alerts[0].mail.subject
    # Each line the functions print is one whole document (infra/local/output.py), whatever ran at once.
    documents = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    emitted = [d for d in documents if "_aws" in d]
    assert sum(sum(m["NeedsAttention"]) if isinstance(m["NeedsAttention"], list) else m["NeedsAttention"]
               for m in emitted if "NeedsAttention" in m) == 1


def test_plans_switch_on_and_off_over_http(manual_runtime: LocalRuntime) -> None:
    server = LocalHttpServer(manual_runtime, LocalSettings(http_port=0)).start()  # a port of its own, race-free
    base = f"http://127.0.0.1:{server.server.server_address[1]}/_local/faults"

    def post(body: bytes) -> tuple[int, Any]:
        req = urllib.request.Request(base, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        status, body = post(json.dumps({"seed": 3, "rules": [{"service": "ses", "kind": "rejected", "count": 1}]}).encode())
        assert status == 200 and body["rules"][0]["kind"] == "rejected" and faults.active() is not None
        assert post(b'{"rules": [{"service": "ses", "kind": "meltdown"}]}')[0] == 400
        assert post(b"{not json")[0] == 400
        status, body = post(b'{"rules": []}')
        assert status == 200 and body["rules"] == [] and faults.active() is None
    finally:
        server.stop()
