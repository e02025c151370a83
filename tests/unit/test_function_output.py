"""What the local runtime's in-process functions print (``infra/local/output.py``): whole
lines from any number of threads at once, and each invocation's own metrics, as on AWS
where every function has its own stdout and runs one invocation at a time."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest
from aws_lambda_powertools import Metrics

from infra.local.output import InvocationMetrics, WholeLines


class YieldingStream(io.StringIO):
    """A stdout that lets another thread run after every write: where a document and its
    newline are two writes (``print``), another thread's write lands between them."""

    def write(self, text: str) -> int:
        written = super().write(text)
        time.sleep(0)
        return written


def run_together(*targets: threading.Thread) -> None:
    for thread in targets:
        thread.start()
    for thread in targets:
        thread.join(timeout=60)
        assert not thread.is_alive()


def test_prints_and_log_records_from_many_threads_arrive_one_document_per_line() -> None:
    stdout = YieldingStream()
    out = WholeLines(stdout)
    log = logging.getLogger("tests.function_output")
    handler = logging.StreamHandler(out)  # what powertools' Logger writes through
    log.addHandler(handler)
    log.propagate = False
    start = threading.Barrier(8)

    def printing(thread: int) -> None:
        start.wait()
        for n in range(150):
            print(json.dumps({"_aws": {}, "thread": thread, "n": n, "pad": "x" * (n % 7) * 40}), file=out)

    def logging_(thread: int) -> None:
        start.wait()
        for n in range(150):
            log.warning(json.dumps({"level": "WARNING", "thread": thread, "n": n}))

    try:
        run_together(*(threading.Thread(target=printing, args=(t,)) for t in range(4)),
                     *(threading.Thread(target=logging_, args=(t,)) for t in range(4, 8)))
    finally:
        log.removeHandler(handler)
    lines = stdout.getvalue().splitlines()
    documents = [json.loads(line) for line in lines]  # a line holding two documents fails here
    assert len(documents) == 8 * 150
    assert {(d["thread"], d["n"]) for d in documents} == {(t, n) for t in range(8) for n in range(150)}


def test_an_unfinished_line_waits_for_its_newline() -> None:
    stdout = io.StringIO()
    out = WholeLines(stdout)
    out.write('{"a": ')
    out.flush()
    assert stdout.getvalue() == ""
    out.write('1}\n{"b": 2}\n{"c"')
    assert stdout.getvalue() == '{"a": 1}\n{"b": 2}\n'


def metrics_into(stdout: io.StringIO) -> Metrics:
    return Metrics(provider=InvocationMetrics(WholeLines(stdout), namespace="Complaints", service="complaints"))


def test_each_invocation_flushes_only_its_own_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two invocations at once: the first to finish must not publish, nor clear, the other's."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    stdout = io.StringIO()
    metrics = metrics_into(stdout)
    added = threading.Barrier(2)
    first_flushed = threading.Event()

    def intake() -> None:
        metrics.add_metric(name="Intake_new_case", unit="Count", value=1)
        added.wait()
        metrics.flush_metrics()
        first_flushed.set()

    def workflow() -> None:
        metrics.add_metric(name="NeedsAttention", unit="Count", value=1)
        added.wait()
        assert first_flushed.wait(30)
        metrics.flush_metrics()

    run_together(threading.Thread(target=intake), threading.Thread(target=workflow))
    documents = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [sorted(k for k in d if k not in ("_aws", "service")) for d in documents] == [
        ["Intake_new_case"], ["NeedsAttention"]]
    assert all(d["service"] == "complaints" and d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Complaints"
               for d in documents)


def test_disabled_metrics_are_dropped_at_each_flush_not_piled_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """powertools keeps disabled metrics, and prints them anyway once one metric holds 100
    values: a thousand mails through the intake then littered the benchmark's report."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    stdout = io.StringIO()
    metrics = metrics_into(stdout)
    for _ in range(250):
        metrics.add_metric(name="Intake_new_case", unit="Count", value=1)
        metrics.flush_metrics()
    assert stdout.getvalue() == ""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.add_metric(name="Intake_new_case", unit="Count", value=1)
    metrics.flush_metrics()
    assert json.loads(stdout.getvalue())["Intake_new_case"] == [1.0]
