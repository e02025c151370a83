"""People who answer the system's mails: for workflow tests and benchmarks on the warp clock.

A persona sees each mail that carries a link for its step and returns the form to
submit (or ``None`` to let the deadline pass). It is called inside the sending handler
and holds the clock until it has acted, so warp never jumps past a person who is
about to click. It acts as a browser would: GET the link page (JSON), then POST the
fields with the page's ``form_token``, through the same handler API Gateway invokes.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .http import api_event
from .outbox import SentMail
from .runtime import LocalRuntime

Decide = Callable[[SentMail], dict[str, Any] | None]


@dataclass
class Click:
    step: str
    case_no: str | None
    status: int
    outcome: str | None


@dataclass
class Personas:
    runtime: LocalRuntime
    decide: dict[str, Decide]
    clicks: list[Click] = field(default_factory=list)
    _queue: queue.Queue[tuple[str, str, str | None, dict[str, Any]]] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.runtime.outbox.subscribe(self._on_mail)
        threading.Thread(target=self._work, name="personas", daemon=True).start()

    def _on_mail(self, sent: SentMail) -> None:
        for link in sent.mail.links:
            decide = self.decide.get(link["step"])
            if decide is None:
                continue
            fields = decide(sent)
            if fields is not None:
                self.runtime.clock.hold()
                self._queue.put((link["step"], link["url"], sent.mail.case_no, fields))

    def _work(self) -> None:
        while True:
            step, url, case_no, fields = self._queue.get()
            try:
                self.clicks.append(self.click(step, url, case_no, fields))
            except Exception as exc:  # noqa: BLE001 - a failed click is recorded; the worker must live on
                self.clicks.append(Click(step, case_no, 0, f"{type(exc).__name__}: {exc}"[:200]))
            finally:
                self.runtime.clock.release()  # else warp would wait for this click for ever

    def click(self, step: str, url: str, case_no: str | None, fields: dict[str, Any]) -> Click:
        path = urlsplit(url).path
        headers = {"accept": "application/json", "user-agent": "persona/1.0", "host": "127.0.0.1"}
        page = self.runtime.invoke("link_actions", api_event("GET", path, headers, b"", "127.0.0.1", None))
        body = json.loads(page.get("body") or "{}")
        if page.get("statusCode") != 200:
            return Click(step, case_no, int(page.get("statusCode", 0)), body.get("reason"))
        data = json.dumps({**fields, "form_token": body["form_token"]}).encode()
        result = self.runtime.invoke("link_actions", api_event(
            "POST", path, {**headers, "content-type": "application/json"}, data, "127.0.0.1", None))
        answer = json.loads(result.get("body") or "{}")
        return Click(step, case_no, int(result.get("statusCode", 0)), answer.get("outcome") or answer.get("errors"))


def happy_path() -> dict[str, Decide]:
    """Everyone answers at once and agrees: the shortest lifecycle."""
    return {
        "first_contact": lambda m: {"notes": "Called the customer and apologised.", "dealer": "SH001"},
        "follow_up": lambda m: {"notes": "Called the customer again about the score."},
        "investigation": lambda m: {"findings": "Inspected the car with the customer.", "root_cause": "product",
                                    "responsibility": "none", "preliminary_feedback": "We found the cause."},
        "plan": lambda m: {"measures": "Repair free of charge and a loan car.",
                           "compensation": [{"kind": "free_service", "value": "1200", "description": "repair"}]},
        "approval": lambda m: {"decision": "approve", "comment": "ok"},
        "customer_reply": lambda m: {"decision": "accept"},
        "carry_out": lambda m: {"notes": "Repaired and handed back."},
        "survey": lambda m: {"score": 95, "comment": "Quick and friendly."},
    }
