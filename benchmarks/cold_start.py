"""Cold start of each Lambda function: what a fresh process spends importing its handler
module (settings validated, powertools objects built, the domain loaded) before the first
event, the part of a cold start the code controls. The runtime's own start (about 100-200 ms
on AWS for Python) comes on top; so does the first request's connection set-up.

    python -m benchmarks.cold_start [--runs 7] [--json PATH]

Each figure is the median of ``--runs`` fresh interpreters (``-X importtime`` would add its own
cost); the largest imports of the slowest function are listed, so that a change can be aimed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from infra.catalog import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str, runs: int) -> list[float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    timings = []
    for _ in range(runs + 1):  # the first run compiles the byte code: not a cold start on AWS, left out
        out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True).stdout
        timings.append(float(out.strip().splitlines()[-1]))
    return timings[1:]


def largest_imports(module: str, top: int = 8) -> list[tuple[str, float]]:
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if name.count(" ") <= 4:  # top-level and second-level imports only: the ones a change can move
            rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda row: -row[1])[1 : top + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    modules: dict[str, str] = {}
    print(f"{'function':<26}{'median ms':>10}{'min ms':>9}{'max ms':>9}")
    for spec in FUNCTIONS:
        module = spec.handler.rpartition(".")[0]
        timings = import_seconds(module, args.runs)
        modules[spec.name] = module
        results[spec.name] = {"median_ms": round(statistics.median(timings) * 1000, 1),
                              "min_ms": round(min(timings) * 1000, 1), "max_ms": round(max(timings) * 1000, 1)}
        r = results[spec.name]
        print(f"{spec.name:<26}{r['median_ms']:>10}{r['min_ms']:>9}{r['max_ms']:>9}")
    slowest = max(results, key=lambda name: results[name]["median_ms"])
    print(f"\nlargest imports of {slowest} (cumulative ms, one run):")
    for name, seconds in largest_imports(modules[slowest]):
        print(f"  {seconds * 1000:8.1f}  {name}")
    if args.json:
        args.json.write_text(json.dumps({n: {"module": modules[n], **r} for n, r in results.items()}, indent=2),
                             "utf-8")


if __name__ == "__main__":
    main()
