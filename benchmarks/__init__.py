"""Measured figures of the local runtime (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def function_output_option(parser: argparse.ArgumentParser) -> None:
    """``--function-output``: the functions' logs and metrics go there, not between the report's lines."""
    parser.add_argument("--function-output", type=Path, default=Path(os.devnull), metavar="PATH",
                        help="append what the functions print (logs, EMF metrics) to PATH (default: discard it)")
