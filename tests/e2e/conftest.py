"""The running local stack (``complaints run`` in a subprocess), reached only over SMTP and HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    base: str
    smtp_port: int

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str]:
        url = path if path.startswith("http") else self.base + path
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8")

    def json(self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        status, text = self.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        assert status == 200, (status, text)
        return json.loads(text)

    def mails(self, case_no: str | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.json("GET", "/_local/mail.json" + (f"?case={case_no}" if case_no else ""))
        return result

    def link(self, step: str, to: str, case_no: str | None = None, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for mail in reversed(self.mails(case_no)):
                if to in mail["to"]:
                    for link in mail["links"]:
                        if link["step"] == step:
                            return str(link["url"])
            time.sleep(0.1)
        raise AssertionError(f"no {step} link for {to}")

    def open_and_submit(self, url: str, **fields: str) -> str:
        status, page = self.request("GET", url)
        assert status == 200, page
        token = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
        assert token, "the page carries a form token"
        form = urllib.parse.urlencode({**fields, "form_token": token.group(1)}).encode()
        status, done = self.request("POST", url, form, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, done
        return done


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tempfile.mkdtemp(prefix="complaints-e2e-")  # a fresh stack, and nothing left in the repository
    # Port 0: the stack binds ports the system gives and its banner says which (no pick-then-bind race).
    env = {**os.environ, "COMPLAINTS_HTTP_PORT": "0", "COMPLAINTS_SMTP_PORT": "0",
           "COMPLAINTS_CLOCK": "manual", "COMPLAINTS_DATA_DIR": data_dir}
    # Its output to a file: a pipe nobody reads fills up (64 KB of log lines) and stops the stack.
    output = tmp_path_factory.mktemp("stack") / "output.log"
    with output.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "infra.local.cli", "run"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 120
        while True:  # the banner is printed once both servers listen
            text = output.read_text("utf-8")
            http = re.search(r"^  HTTP +(http://\S+)", text, re.M)
            smtp = re.search(r"^  SMTP +\S+:(\d+)", text, re.M)
            if http and smtp:
                break
            assert proc.poll() is None, text
            assert time.monotonic() < end, "the stack did not start:\n" + text
            time.sleep(0.2)
        stack = Stack(http.group(1), int(smtp.group(1)))
        stack.request("GET", "/_local/clock")
        yield stack
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(data_dir, ignore_errors=True)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through playwright, one per test module."""
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is required (make test installs it)"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


Shot = Callable[[Page, str], Path]


@pytest.fixture(scope="session")
def shot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Shot:
    """A full-page screenshot as ``<name>.png``, its path returned: in a temporary folder, or in
    ``--screenshots DIR`` (``make screenshots`` refreshes docs/screenshots, which the README shows)."""
    chosen = request.config.getoption("screenshots")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
