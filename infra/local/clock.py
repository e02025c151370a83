"""The local runtime's clock: one ``now`` for the state machine and the handlers.

Modes (``COMPLAINTS_CLOCK``):
- ``real``: wall-clock time plus an offset that ``advance`` grows.
- ``manual``: virtual time stands still until advanced (scripted demos, acceptance runs).
- ``warp``: virtual time jumps to the next pending deadline whenever nothing is running
  (tests, benchmarks): a month of deadlines passes in seconds, exactly.

Every timed wait of moto's interpreter is routed through ``wait``, and its threads
are ``TrackedThread``s (see ``moto_patches``). Warp jumps only when every live
interpreter thread is blocked in a wait, no handler or request runs, and nobody holds
the clock: then the next *deadline* (a callback timeout, a Wait state, a retry
interval) is the next thing that can happen. A Lambda task's own timeout (moto's
default, ~3 years) is never a deadline to jump to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

Mode = Literal["real", "manual", "warp"]
WORK_TIMEOUT_S = 10**6  # longer than any deadline we set: a Task with moto's default timeout
QUIET_S = 0.005


@dataclass(eq=False)
class _Waiter:
    deadline: datetime
    event: threading.Event
    work: bool
    wake: threading.Event = field(default_factory=threading.Event)


class VirtualClock:
    def __init__(self, mode: Mode = "real", start: datetime | None = None) -> None:
        self.mode: Mode = mode
        self._lock = threading.RLock()
        self._virtual = (start or datetime.now(UTC)).astimezone(UTC)
        self._offset = timedelta(0)
        self._waiters: set[_Waiter] = set()
        self._busy = 0
        self._threads = 0  # live interpreter threads
        self._blocked = 0  # ... of which blocked in a wait or a join
        self._last_activity = time.monotonic()
        self.jumps = 0
        self._stop = threading.Event()
        if mode == "warp":
            threading.Thread(target=self._warp_loop, name="virtual-clock-warp", daemon=True).start()

    # ----- reading and moving time ----------------------------------------------------------
    def now(self) -> datetime:
        if self.mode == "real":
            return datetime.now(UTC) + self._offset
        with self._lock:
            return self._virtual

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            if self.mode == "real":
                self._offset += timedelta(seconds=seconds)
            else:
                self._virtual += timedelta(seconds=seconds)
            self._wake_due()
            return self.now()

    def set(self, at: datetime) -> datetime:
        delta = (at.astimezone(UTC) - self.now()).total_seconds()
        if delta < 0:
            raise ValueError("the clock only moves forward")
        return self.advance(delta)

    @property
    def offset(self) -> timedelta:
        """How far ``real`` mode runs ahead of the wall clock."""
        return self._offset

    def continue_from(self, saved_now: datetime, saved_offset: timedelta) -> None:
        """Carry on where an earlier run's clock stood: ``real`` keeps its offset, ``manual``
        and ``warp`` their time; never earlier than the saved time (deadlines do not un-pass)."""
        with self._lock:
            saved_now = saved_now.astimezone(UTC)
            if self.mode == "real":
                self._offset = max(saved_offset, saved_now - datetime.now(UTC))
            else:
                self._virtual = saved_now
            self._touch()

    # ----- activity -------------------------------------------------------------------------
    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Work in progress (a handler, an HTTP request, a person acting): warp waits."""
        self.hold()
        try:
            yield
        finally:
            self.release()

    def hold(self) -> None:
        with self._lock:
            self._busy += 1
            self._touch()

    def release(self) -> None:
        with self._lock:
            self._busy -= 1
            self._touch()

    def thread_started(self) -> None:
        with self._lock:
            self._threads += 1
            self._touch()

    def thread_ended(self) -> None:
        with self._lock:
            self._threads -= 1
            self._touch()

    @contextmanager
    def blocked(self) -> Iterator[None]:
        """The calling thread waits on something: if it is an interpreter thread, it is not working."""
        current = threading.current_thread()
        tracked = isinstance(current, TrackedThread) and current.owner is self
        if tracked:
            with self._lock:
                self._blocked += 1
        try:
            yield
        finally:
            if tracked:
                with self._lock:
                    self._blocked -= 1
                    self._touch()

    def idle(self) -> bool:
        with self._lock:
            # A waiter whose event was set (or that was woken) has work pending until it runs.
            pending = any(w.event.is_set() or w.wake.is_set() for w in self._waiters)
            working = self._busy > 0 or self._threads > self._blocked or pending
            return not working and time.monotonic() - self._last_activity >= QUIET_S

    def settle(self, timeout: float = 30.0) -> bool:
        """Block until nothing runs (everything waits on a deadline or has ended)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.idle():
                return True
            time.sleep(0.003)
        return False

    def next_deadline(self) -> datetime | None:
        with self._lock:
            deadlines = [w.deadline for w in self._waiters if not w.work]
            return min(deadlines) if deadlines else None

    # ----- waiting ------------------------------------------------------------------------
    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds of *this clock* have passed."""
        if timeout is None:
            with self.blocked():
                return threading.Event.wait(event)
        waiter = _Waiter(self.now() + timedelta(seconds=timeout), event, work=timeout >= WORK_TIMEOUT_S)
        with self._lock:
            self._waiters.add(waiter)
            self._touch()
        try:
            with self.blocked():
                return self._wait_for(waiter)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
                self._touch()

    def _wait_for(self, waiter: _Waiter) -> bool:
        event = waiter.event
        while True:
            if event.is_set():
                return True
            now = self.now()
            if now >= waiter.deadline:
                return event.is_set()
            if self.mode == "real":
                waiter.wake.wait(min((waiter.deadline - now).total_seconds(), 0.5))
            else:
                waiter.wake.wait(1.0)
            waiter.wake.clear()

    def sleep(self, seconds: float) -> None:
        self.wait(threading.Event(), seconds)

    def event_set(self, event: threading.Event) -> None:
        with self._lock:
            for w in self._waiters:
                if w.event is event:
                    w.wake.set()
            self._touch()

    def _wake_due(self) -> None:
        now = self.now()
        for w in self._waiters:
            if w.deadline <= now:
                w.wake.set()
        self._touch()

    def _warp_loop(self) -> None:
        while not self._stop.is_set():
            time.sleep(0.002)
            with self._lock:
                if not self.idle():
                    continue
                target = self.next_deadline()
                if target is None:
                    continue
                if target > self._virtual:
                    self._virtual = target
                    self.jumps += 1
                self._wake_due()

    def stop(self) -> None:
        self._stop.set()


class VirtualEvent(threading.Event):
    """A ``threading.Event`` whose timed waits run on the clock current when it was made
    (a later runtime in the same process has a clock of its own)."""

    clock: VirtualClock | None = None

    def __init__(self) -> None:
        super().__init__()
        self.owner = VirtualEvent.clock

    def set(self) -> None:
        super().set()
        if self.owner is not None:
            self.owner.event_set(self)

    def wait(self, timeout: float | None = None) -> bool:
        if self.owner is None:
            return super().wait(timeout)
        return self.owner.wait(self, timeout)


class TrackedThread(threading.Thread):
    """An interpreter thread: the clock knows when it runs and when it waits."""

    clock: VirtualClock | None = None
    owner: VirtualClock | None = None

    def start(self) -> None:
        self.owner = TrackedThread.clock
        if self.owner is not None:
            self.owner.thread_started()
        super().start()

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.owner is not None:
                self.owner.thread_ended()

    def join(self, timeout: float | None = None) -> None:
        current = threading.current_thread()
        owner = current.owner if isinstance(current, TrackedThread) else None
        if owner is None:
            return super().join(timeout)
        with owner.blocked():
            super().join(timeout)
