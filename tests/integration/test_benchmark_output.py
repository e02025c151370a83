"""A benchmark prints its report alone: what the functions print while it runs (their logs,
their EMF metrics) goes to ``--function-output``, whole lines, not between its tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import intake


def test_the_intake_benchmark_report_is_not_interleaved_with_the_functions_output(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # so that the functions do print metrics
    function_output = tmp_path / "functions.jsonl"
    capfd.readouterr()
    assert intake.main(["--mails", "2", "--concurrency", "2", "--function-output", str(function_output)]) == 0
    report = capfd.readouterr().out.splitlines()
    assert report[0].split()[:2] == ["phase", "mails/s"] and report[-1].startswith("ratio without")
    assert not [line for line in report if line.startswith("{") or '"_aws"' in line]
    documents = [json.loads(line) for line in function_output.read_text("utf-8").splitlines()]
    assert sum(sum(d.get("Intake_new_case", [])) for d in documents) == 4  # 2 mails one by one, 2 at once
