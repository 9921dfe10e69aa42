"""The command line the per-engine threshold benchmarks share: which engines, how many
workers, where the JSON (and the figure, if any) go; run, print the table, write."""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matcher import ENGINES, EngineName

ROOT = Path(__file__).resolve().parents[1]


def run_per_engine(
    name: str,
    description: str,
    measure: Callable[[EngineName, int], dict[str, Any]],
    table: Callable[[dict], str],
    plot: Callable[[dict, Path], None] | None = None,
) -> None:
    """Parse the arguments, measure each engine, then print and write the results."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / f"{name}.json"
    )
    if plot is not None:
        parser.add_argument(
            "--figure", type=Path, default=ROOT / "benchmarks" / "results" / f"{name}.png"
        )
    args = parser.parse_args()
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    result: dict[str, Any] = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "engines": {engine: measure(engine, args.workers) for engine in engines},
    }
    write(result, table, args.out)
    if plot is not None:
        plot(result, args.figure)
        print(f"and {args.figure}")


def machine() -> dict:
    """Where a speed figure was measured: it means little without the machine."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
    }


def write(result: dict, table: Callable[[dict], str], out: Path) -> None:
    result["table"] = table(result)
    print(result["table"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")
