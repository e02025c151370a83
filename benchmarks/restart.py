"""A restart of the local stack with cases under way: what the clean stop (settle, save) and the
next start (restore the table and objects, a new execution for every open case) cost.

    python -m benchmarks.restart --cases 50

Cases are the sample complaint mails (``new_case``), cycled with Message-IDs of their own, on
the manual clock; each waits on its first human step when the stack stops. A plain start
(no data folder) in the same process is the baseline: the difference is what keeping the
data costs at start. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.lifecycles import EMAILS, new_case_samples, with_message_id
from infra.local.http import recipients_of
from infra.local.runtime import LocalConfig, LocalRuntime

START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai


def _waiting(case_numbers: list[str]) -> int:
    from shared.runtime.wiring import services

    store, count = services().store, 0
    for no in case_numbers:
        timer = store.get_case(no).step_timer
        task = store.get_task(no, timer.key) if timer else None
        count += task is not None and task.status == "open"
    return count


def _until_waiting(case_numbers: list[str], timeout: float = 600) -> int:
    end = time.monotonic() + timeout
    while (waiting := _waiting(case_numbers)) < len(case_numbers) and time.monotonic() < end:
        time.sleep(0.5)
    return waiting


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=50)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="complaints-restart-"))

    def config(data: Path | None) -> LocalConfig:
        return LocalConfig(clock="manual", start=START, data_dir=data)

    LocalRuntime(config(None)).start().stop()  # imports and first-use costs, out of the figures
    began = time.perf_counter()
    LocalRuntime(config(None)).start().stop()
    plain_start = time.perf_counter() - began

    first = LocalRuntime(config(data_dir)).start()
    samples = new_case_samples()
    cases: list[str] = []
    for n in range(args.cases):
        raw = with_message_id((EMAILS / samples[n % len(samples)]).read_bytes(), n)
        answer = first.deliver(raw, recipients_of(raw))
        if answer.get("case_no"):
            cases.append(str(answer["case_no"]))
    before = _until_waiting(cases)
    began = time.perf_counter()
    first.stop()
    stop_s = time.perf_counter() - began

    began = time.perf_counter()
    second = LocalRuntime(config(data_dir)).start()
    start_s = time.perf_counter() - began
    began = time.perf_counter()
    after = _until_waiting(cases)
    rearm_s = time.perf_counter() - began
    second.stop()
    result: dict[str, object] = {
        "cases": len(cases), "waiting_before": before, "waiting_after": after,
        "restarted_executions": len(second.restarted),
        "table_items": sum(1 for _ in (data_dir / "table.jsonl").open()),
        "data_bytes": sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file()),
        "plain_start_s": round(plain_start, 2), "stop_s": round(stop_s, 2),
        "start_with_data_s": round(start_s, 2), "until_all_wait_again_s": round(rearm_s, 2),
    }
    shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
