"""The local stack keeps its data across a restart (COMPLAINTS_DATA_DIR): cases, timelines,
mail, held mail, KPIs, links and the clock come back, and a case that waited on a person
waits again — the link mailed before the restart still decides, and deadlines still fire."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.local import cli
from infra.local.http import recipients_of
from infra.local.persistence import DataDir, DataDirInUseError
from infra.local.personas import Personas
from infra.local.runtime import LocalConfig, LocalRuntime
from shared.runtime.wiring import services
from tests.conftest import MONDAY_10AM_SHANGHAI, sample, wait_until

FIRST_CONTACT = {"notes": "Called the customer and apologised.", "dealer": "SH001"}
INVESTIGATION = {"findings": "Inspected the car with the customer.", "root_cause": "product",
                 "responsibility": "none", "preliminary_feedback": "We found the cause."}


def _runtime(data_dir: Path) -> LocalRuntime:
    return LocalRuntime(LocalConfig(clock="manual", start=MONDAY_10AM_SHANGHAI, data_dir=data_dir)).start()


def _register(runtime: LocalRuntime, name: str) -> str:
    raw = sample(name)
    result = runtime.deliver(raw, recipients_of(raw))
    assert result["disposition"] == "new_case", result
    return str(result["case_no"])


def _link(runtime: LocalRuntime, case_no: str, step: str) -> str | None:
    for sent in reversed(runtime.outbox.for_case(case_no)):
        for link in sent.mail.links:
            if link["step"] == step:
                return link["url"]
    return None


def _waiting(case_no: str, step: str) -> bool:
    case = services().store.get_case(case_no)
    timer = case.step_timer
    task = services().store.get_task(case_no, timer.key) if timer else None
    return timer is not None and timer.step == step and task is not None and task.status == "open"


def test_a_restart_keeps_everything_and_the_waiting_step_still_decides(tmp_path: Path) -> None:
    first = _runtime(tmp_path)
    try:
        a = _register(first, "p01_brake_failure_sh001.eml")
        b = _register(first, "p23_big5_maintenance_price_sh001.eml")
        held = first.deliver(sample("p20_newsletter_bulk.eml"), ["complaints@aurora-motors.example"])
        assert held["disposition"] != "new_case"
        wait_until(lambda: _waiting(a, "first_contact") and _waiting(b, "first_contact"))
        link = _link(first, a, "first_contact")
        assert link
        assert Personas(first, {}).click("first_contact", link, a, FIRST_CONTACT).status == 200
        wait_until(lambda: _waiting(a, "investigation") and _link(first, a, "investigation") is not None)
        first.clock.advance(600)
        assert first.clock.settle()
        investigation_link = _link(first, a, "investigation")
        store = services().store
        before = {
            "now": first.clock.now(),
            "mails": [(m.id, m.mail.message_id, m.raw) for m in first.outbox.all()],
            "events": {no: [e.type for e in store.events(no)] for no in (a, b)},
            "messages": {no: len(store.messages(no)) for no in (a, b)},
            "held": [h.held_id for h in store.list_held("aurora")],
            "kpis": store.kpi_counts("aurora", "2026-11"),
            "raw": first._client("s3").get_object(Bucket="complaints-local-raw-mail",
                                                   Key=store.get_case(a).raw_mail_key)["Body"].read(),
        }
        assert before["held"]
    finally:
        first.stop()
    assert (tmp_path / "table.jsonl").exists() and (tmp_path / "outbox.jsonl").exists()

    second = _runtime(tmp_path)
    try:
        store = services().store
        assert second.clock.now() == before["now"]  # the manual clock stands where it stood
        assert [(m.id, m.mail.message_id, m.raw) for m in second.outbox.all()] == before["mails"]
        assert [h.held_id for h in store.list_held("aurora")] == before["held"]
        assert store.kpi_counts("aurora", "2026-11") == before["kpis"]
        raw_key = store.get_case(a).raw_mail_key
        assert second._client("s3").get_object(Bucket="complaints-local-raw-mail", Key=raw_key)["Body"].read() \
            == before["raw"]
        assert sorted(second.restarted) == sorted(str(store.get_case(no).execution) for no in (a, b))
        assert second.clock.settle()
        for no in (a, b):
            assert [e.type for e in store.events(no)] == before["events"][no]
            assert len(store.messages(no)) == before["messages"][no]
        assert _waiting(a, "investigation") and _waiting(b, "first_contact")
        assert len(second.outbox.all()) == len(before["mails"])  # waiting again mails nobody twice

        # The investigation link mailed before the restart decides, and the case moves on.
        assert investigation_link
        click = Personas(second, {}).click("investigation", investigation_link, a, INVESTIGATION)
        assert (click.status, click.outcome) == (200, "done")
        wait_until(lambda: _waiting(a, "plan") and _link(second, a, "plan") is not None)

        # B's first-contact deadline (one hour) still fires on the restored clock.
        second.clock.advance(2 * 3600)
        wait_until(lambda: "deadline_breached" in [e.type for e in store.events(b)])
        # A later case continues the dealer's numbering.
        c = _register(second, "p11_refund_demand_sh001_code_pdf.eml")
        assert int(c.rsplit("-", 1)[1]) > max(int(no.rsplit("-", 1)[1]) for no in (a, b))
    finally:
        second.stop()


def test_one_folder_one_stack_and_reset_empties_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    runtime = _runtime(tmp_path)
    try:
        _register(runtime, "p01_brake_failure_sh001.eml")
    finally:
        runtime.stop()
    assert not (tmp_path / "stack.pid").exists()
    # Another live process's stack on the folder: neither a second stack nor a reset may touch it
    # (the running one would write everything back at its stop).
    (tmp_path / "stack.pid").write_text(str(os.getppid()))
    with pytest.raises(DataDirInUseError):
        DataDir(tmp_path).claim()
    with pytest.raises(DataDirInUseError):
        DataDir(tmp_path).reset()
    (tmp_path / "stack.pid").unlink()
    (tmp_path / "notes.txt").write_text("not the stack's")
    monkeypatch.setenv("COMPLAINTS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    cli.main(["reset"])
    assert "Nothing deleted" in capsys.readouterr().out and (tmp_path / "table.jsonl").exists()
    cli.main(["reset", "--yes"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # only what the stack keeps is deleted
    assert "emptied" in capsys.readouterr().out
