"""Shared fixtures: the local runtime (moto + in-process Lambdas + virtual clock); each test
marked with its tier, the folder it lives in; no network in the unit tier."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.local.runtime import LocalConfig, LocalRuntime
from shared.adapters.table import Item

# The Tracer imports the X-Ray SDK, which opens a UDP socket (sending nothing: tracing is off): done
# here, before any test runs, so that the unit tier's rule (no socket) holds for what its tests do.
from shared.runtime import observability  # noqa: F401

EMAILS = Path(__file__).parent / "data" / "emails"
MONDAY_10AM_SHANGHAI = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TIERS = ("unit", "integration", "workflow", "security", "infra", "e2e")  # pyproject's markers, tests/<tier>/, `make <tier>`


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--screenshots", metavar="DIR", default=None,
                     help="the browser tests keep their screenshots in DIR (make screenshots: docs/screenshots); "
                          "by default in a temporary folder, so that a test run leaves the tree as it was")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(root).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: every test lives in the folder of its tier, one of {TIERS}")
        item.add_marker(tier)
        if tier == "unit":  # pytest-socket: a unit test that opens a socket fails (it belongs in another tier)
            item.add_marker(pytest.mark.disable_socket)


def sample(name: str) -> bytes:
    return (EMAILS / name).read_bytes()


@pytest.fixture(autouse=True)
def no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """No operational path may Scan the table: any test that makes one fails."""

    def scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("Scan on an operational path")

    monkeypatch.setattr(Item, "scan", scan)


@pytest.fixture
def warp_runtime() -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(LocalConfig(clock="warp", start=MONDAY_10AM_SHANGHAI)).start()
    yield runtime
    runtime.stop()


@pytest.fixture
def manual_runtime() -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(LocalConfig(clock="manual", start=MONDAY_10AM_SHANGHAI)).start()
    yield runtime
    runtime.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Until ``predicate()`` holds, for ``timeout`` seconds of this process's CPU: the same steps take
    more wall time on a machine busy with other work, not more work (60 s of wall time ran out under
    load). Ten times that on the wall clock stops a wait that nothing works towards."""
    cpu_end, wall_end = time.process_time() + timeout, time.monotonic() + 10 * timeout
    while time.process_time() < cpu_end and time.monotonic() < wall_end:
        if predicate():
            return
        time.sleep(0.02)
    if not predicate():
        raise AssertionError("condition not reached in time")


def finished(runtime: LocalRuntime, case_no: str) -> Callable[[], bool]:
    return lambda: runtime.execution(case_no)["status"] != "RUNNING"
