"""Each speed benchmark once at a tiny size, so they cannot rot: it runs from the command
line docs/speed.md gives and writes its JSON. Timings are the benchmarks' business, not the
tests'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, out: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("engine", ["sface", "dlib"])
def test_search_speed(tmp_path: Path, engine: str) -> None:
    result = run(
        "search_speed.py",
        tmp_path / "search.json",
        *("--engine", engine, "--sizes", "3000", "--probes", "200", "--timed", "10"),
        *("--fit-photos", "200"),
    )
    [size] = result["engines"][engine]["sizes"]
    assert size["gallery_size"] == 3000 and size["service"]["index"] == "service: exact (default)"
    names = [row["index"] for row in size["indexes"]]
    assert {name.split()[0] for name in names} == {"Flat", "IVF256,Flat", "HNSW32", "service:"}
    assert "service: shortlist of 16-byte codes, 40× k, re-ranked exactly" in names
    exact = size["indexes"][0]
    assert exact["within_threshold"] == 1.0 and exact["recall_at_10"] == 1.0
    assert size["service"]["start_up"]["resident_mb"] > 0
    assert "| Flat (exact) |" in result["table"]


def test_search_speed_at_state_scale_holds_the_gallery_once(tmp_path: Path) -> None:
    """--huge's lean path, at a size CI can afford: exact truth, the service's index, and
    the sealed file loaded in a fresh process after the index is dropped."""
    result = run(
        "search_speed.py",
        tmp_path / "huge.json",
        *("--engine", "sface", "--huge", "3000", "--probes", "200", "--timed", "10"),
        *("--fit-photos", "200"),
    )
    [size] = result["engines"]["sface"]["sizes"]
    assert size["gallery_size"] == 3000 and len(size["indexes"]) == 2
    assert size["service"]["within_threshold"] == 1.0
    assert (
        size["service"]["start_up"]["resident_mb"] > 0
        and size["service"]["start_up"]["save_s"] >= 0
    )


def test_enroll_speed(tmp_path: Path) -> None:
    result = run("enroll_speed.py", tmp_path / "enroll.json", "--full-size", "1", "--lfw", "2")
    for name in ("full_size", "lfw"):
        measured = result["sets"][name]
        assert measured["naive_one_core"] > 0
        assert set(measured["engines"]) == {"dlib", "sface"}
    assert result["machine"]["cores"] >= 1


def test_load(tmp_path: Path) -> None:
    result = run(
        "load.py",
        tmp_path / "load.json",
        *("--gallery", "20", "--clients", "2", "--seconds", "2", "--idle-searches", "2"),
    )
    # 20 photos of LFW's first 15 people with photos, in order: one person template each.
    assert result["gallery"]["templates"] == 15
    assert result["idle"]["outcomes"] == {"201": 2}
    assert result["load"]["searches"] >= 1 and result["load"]["errors"] == 0
    # The ceiling, the pool alone, measured in the same run with the same probes.
    assert result["ceiling"]["idle"]["outcomes"] == {"201": 2}
    assert result["ceiling"]["load"]["errors"] == 0
    for name in ("idle", "load"):
        share = result[name]["per_second"] / result["ceiling"][name]["per_second"]
        assert result["of_ceiling"][name] == round(share, 3)
