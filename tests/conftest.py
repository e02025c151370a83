"""Shared fixtures: the local runtime (moto + in-process Lambdas + virtual clock)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.local.runtime import LocalConfig, LocalRuntime

EMAILS = Path(__file__).parent / "data" / "emails"
MONDAY_10AM_SHANGHAI = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def sample(name: str) -> bytes:
    return (EMAILS / name).read_bytes()


@pytest.fixture(autouse=True)
def no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """No operational path may Scan the table: any test that makes one fails."""
    from shared.adapters.dynamodb import Item

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
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def finished(runtime: LocalRuntime, case_no: str) -> Callable[[], bool]:
    return lambda: runtime.execution(case_no)["status"] != "RUNNING"
