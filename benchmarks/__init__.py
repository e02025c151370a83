"""Measured figures of the local runtime (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.local.output import FUNCTION_OUTPUT


def function_output_option(parser: argparse.ArgumentParser) -> None:
    """``--function-output``: the functions' logs and metrics go there, not between the report's lines."""
    parser.add_argument("--function-output", type=Path, default=Path(os.devnull), metavar="PATH",
                        help="append what the functions print (logs, EMF metrics) to PATH (default: discard it)")


@contextmanager
def function_output(path: Path) -> Iterator[None]:
    with path.open("a", encoding="utf-8") as file, FUNCTION_OUTPUT.sent_to(file):
        yield
