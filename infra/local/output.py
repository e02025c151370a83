"""What the in-process functions print: whole lines, one document per line.

On AWS each function's process has its own stdout and runs one invocation at a time, so
its log lines and EMF metric documents reach CloudWatch whole. Here every catalog
function shares this process and its stdout, from many threads at once, so two defects
would follow (both seen: ``JSONDecodeError: Extra data`` in a test that read the metrics):

- ``print`` writes a document and its newline as two writes, so two threads' documents
  could land on one line. Every write of the functions goes through ``FUNCTION_OUTPUT``,
  which keeps each thread's unfinished line to itself and writes only complete lines,
  one thread at a time.
- powertools keeps one set of metrics for the process: one invocation's flush would
  serialize, then clear, what another was adding. ``InvocationMetrics`` keeps a set per
  thread (an invocation runs in one thread), and clears it at every flush, also when
  metrics are disabled (powertools then keeps them, until 100 values of one metric
  overflow onto stdout regardless: the EMF lines between the benchmarks' tables).
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider


class WholeLines(io.TextIOBase):
    """A text stream shared by threads that writes only whole lines, one at a time, to its
    target: by default this process's ``sys.stdout`` at the moment of writing (so that a
    test's capture of stdout sees them, as CloudWatch would)."""

    def __init__(self, target: TextIO | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._unfinished = threading.local()
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending = getattr(self._unfinished, "text", "") + text
        lines, newline, rest = pending.rpartition("\n")
        self._unfinished.text = rest
        if newline:
            with self._lock:
                target = self._target or sys.stdout
                target.write(lines + newline)
                target.flush()
        return len(text)

    def flush(self) -> None:
        """An unfinished line waits for its newline: only whole lines go out."""

    @contextmanager
    def sent_to(self, target: TextIO) -> Iterator[None]:
        """Lines go to ``target`` for the duration: a benchmark's report or a command's output
        stays alone on stdout, as if the functions ran in a process of their own."""
        with self._lock:
            previous, self._target = self._target, target
        try:
            yield
        finally:
            with self._lock:
                self._target = previous


FUNCTION_OUTPUT = WholeLines()


class _InvocationSets(threading.local):
    """One thread's metrics, dimensions and metadata: what one invocation adds."""

    def __init__(self) -> None:
        self.metric_set: dict[str, Any] = {}
        self.dimension_set: dict[str, str] = {}
        self.metadata_set: dict[str, Any] = {}
        self.dimension_sets: list[dict[str, str]] = []
        self.timestamp: int | None = None


def _per_thread(name: str) -> Any:
    return property(lambda self: getattr(self._sets, name), lambda self, value: setattr(self._sets, name, value))


class InvocationMetrics(AmazonCloudWatchEMFProvider):
    """powertools' EMF provider with each thread's own metric set, flushed as one line."""

    metric_set = _per_thread("metric_set")
    dimension_set = _per_thread("dimension_set")
    metadata_set = _per_thread("metadata_set")
    dimension_sets = _per_thread("dimension_sets")
    timestamp = _per_thread("timestamp")

    def __init__(self, out: WholeLines, namespace: str | None, service: str | None) -> None:
        self._sets = _InvocationSets()
        self._out = out
        super().__init__(namespace=namespace, service=service)

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        try:
            if (self.metric_set or raise_on_empty_metrics) and not is_metrics_disabled():
                document = self.serialize_metric_set()  # with no metric: SchemaValidationError, as powertools
                self._out.write(json.dumps(document, separators=(",", ":")) + "\n")
        finally:
            self.clear_metrics()


def install(logger: Logger, metrics: Metrics) -> None:
    """The functions' logger and metrics write through ``FUNCTION_OUTPUT`` (idempotent)."""
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler) and handler.stream is not FUNCTION_OUTPUT:
        handler.setStream(FUNCTION_OUTPUT)
    if not isinstance(metrics.provider, InvocationMetrics):
        metrics.provider = InvocationMetrics(FUNCTION_OUTPUT, metrics.namespace, metrics.service)
