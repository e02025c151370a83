"""The local runtime shares one process with whatever ran before it, and its functions share
one stdout: a runtime starts from its own adapters, and what the functions print arrives
whole, each invocation's metrics its own, however many run at once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks.lifecycles import new_case_samples, with_message_id
from infra.local.http import recipients_of
from infra.local.runtime import LocalConfig, LocalRuntime, state_machine_arn
from shared.adapters.aws import StepFunctionsWorkflow
from shared.runtime import wiring
from shared.runtime.wiring import services
from tests.conftest import MONDAY_10AM_SHANGHAI, sample


def test_a_runtime_starts_lifecycles_whatever_an_earlier_one_in_the_process_left() -> None:
    """The intake benchmark points the workflow at a one-state machine of its own: every later
    runtime of the process then started no lifecycle (its executions never existed)."""
    earlier = LocalRuntime(LocalConfig(clock="manual", start=MONDAY_10AM_SHANGHAI)).start()
    wiring.configure(workflow=StepFunctionsWorkflow(state_machine_arn(earlier.region) + "-benchmark", earlier.region))
    earlier.stop()
    runtime = LocalRuntime(LocalConfig(clock="manual", start=MONDAY_10AM_SHANGHAI)).start()
    try:
        raw = sample("p02_wait_time_bj002_gb2312.eml")
        case_no = str(runtime.deliver(raw, recipients_of(raw))["case_no"])
        assert runtime.execution(case_no)["status"] == "RUNNING"
        assert services().store.get_case(case_no).phase == "first_contact"
    finally:
        runtime.stop()


def test_mails_taken_in_at_once_print_whole_lines_and_count_each_mail_once(
        manual_runtime: LocalRuntime, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    mails = [with_message_id(sample(name), n) for n, name in enumerate(new_case_samples()[:4] * 3)]
    capfd.readouterr()
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda raw: manual_runtime.deliver(raw, recipients_of(raw)), mails))
    assert all(r.get("disposition") for r in results)
    out = capfd.readouterr().out
    documents = [json.loads(line) for line in out.splitlines() if line.startswith("{")]  # one document a line
    intake = [{k: v for k, v in d.items() if k.startswith("Intake_")} for d in documents if "_aws" in d]
    intake = [counts for counts in intake if counts]
    # One flush per invocation, holding that invocation's one metric: never two mails', never none.
    assert len(intake) == len(mails) and all(list(c.values()) == [[1.0]] for c in intake), intake
