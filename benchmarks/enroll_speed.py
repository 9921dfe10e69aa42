"""Enrolment throughput: facematch's enrolment beside the loop a face_recognition user writes,
in the same run, on full-size portrait photos and on LFW's 250×250 crops.

The baseline is the naive loop: load the image, find faces with HOG upsampled once, describe
the face, one image at a time, in one process on one core (lfw_verify.py's reference pipeline).
facematch's enrolment (app.enrolment) detects on a copy at most 640 pixels a side, loads the
models once per worker process, keeps every worker busy and writes batches of templates to the
database (a fresh SQLite file here, so its writes are counted too). It runs pinned to one core,
then to every core, with the dlib engine (the baseline's model: the ratio is the pipeline's,
not a faster network's) and with SFace, the service's default.

    .venv/bin/python benchmarks/enroll_speed.py [--full-size 100] [--lfw 400]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lfw_verify import reference_encode, start_reference
from public_sets import DATASETS
from runner import ROOT, machine, write

from app.core.composition import encoder, template_keys
from app.core.database import make_engine, migrate, session_factory
from app.core.settings import Settings
from app.enrolment.demo import DEMO_COLUMNS
from app.enrolment.local import Enrolment, read_manifest
from index import new_key
from matcher import EngineName

# The samples' single-face portraits, several hundred to a few thousand pixels a side.
FULL_SIZE = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama-1080p.jpg"]


def photo_sets(full_size: int, lfw: int) -> dict[str, list[Path]]:
    samples = DATASETS / "samples"
    portraits = [samples / FULL_SIZE[i % len(FULL_SIZE)] for i in range(full_size)]
    crops = sorted((DATASETS / "lfw" / "images").glob("*/*.jpg"))[:lfw]
    return {"full_size": portraits, "lfw": crops}


def naive_loop(paths: list[Path]) -> float:
    """Images per second of the face_recognition-style loop in this process."""
    start_reference()
    start = time.perf_counter()
    for path in paths:
        reference_encode(str(path))
    return len(paths) / (time.perf_counter() - start)


def enrolment(paths: list[Path], engine: EngineName, workers: int) -> float:
    """Images per second of facematch's enrolment of `paths` into a fresh database, each
    photo under its own invented licence (so a repeated photo is enrolled again)."""
    with tempfile.TemporaryDirectory() as directory:
        manifest = Path(directory) / "manifest.csv"
        with open(manifest, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=DEMO_COLUMNS)
            writer.writeheader()
            for n, path in enumerate(paths):
                writer.writerow(
                    {
                        "license_number": f"WDL{n:09d}",
                        "first_name": "Test",
                        "middle_name": "",
                        "last_name": f"Person{n}",
                        "date_of_birth": "1980-01-01",
                        "photo": path.relative_to(DATASETS).as_posix(),
                    }
                )
        settings = Settings(data_dir=Path(directory), engine=engine, template_key=new_key())
        database = make_engine(settings.sqlalchemy_url)
        migrate(database)
        run = Enrolment(
            session_factory(database),
            encoder(settings, "central"),
            template_keys(settings),
            workers,
            64,
        )
        start = time.perf_counter()
        report = run.run(read_manifest(manifest, DATASETS))
        elapsed = time.perf_counter() - start
        database.dispose()
    if report.enrolled + len(report.rejects) != len(paths):
        raise RuntimeError(f"enrolment lost photos: {report}")
    return len(paths) / elapsed


def on_cores(cores: int, measure: Callable[..., float], *args: object) -> float:
    """Run `measure` with this process, and the workers it spawns, pinned to `cores` cores."""
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(everything)[:cores])
    try:
        return measure(*args)
    finally:
        os.sched_setaffinity(0, everything)


def measure_set(paths: list[Path], cores: int) -> dict:
    baseline = on_cores(1, naive_loop, paths)
    print(f"    naive loop, one core: {baseline:.2f} images/s", flush=True)
    row: dict = {"images": len(paths), "naive_one_core": round(baseline, 3), "engines": {}}
    for engine in ("dlib", "sface"):
        one = on_cores(1, enrolment, paths, engine, 1)
        every = on_cores(cores, enrolment, paths, engine, cores)
        row["engines"][engine] = {
            "one_core": round(one, 3),
            "every_core": round(every, 3),
            "vs_naive_one_core": round(one / baseline, 2),
            "every_core_vs_one_core": round(every / one, 2),
        }
        print(f"    {engine}: {row['engines'][engine]}", flush=True)
    return row


def table(result: dict) -> str:
    cores = result["machine"]["cores"]
    lines = [
        f"| photos | naive loop, 1 core | engine | facematch, 1 core | facematch, {cores} cores "
        f"| 1 core vs naive | {cores} cores vs 1 |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, row in result["sets"].items():
        for engine, measured in row["engines"].items():
            lines.append(
                f"| {name} ({row['images']}) | {row['naive_one_core']} | {engine} "
                f"| {measured['one_core']} | {measured['every_core']} "
                f"| {measured['vs_naive_one_core']}× | {measured['every_core_vs_one_core']}× |"
            )
    return "Images per second.\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-size", type=int, default=100, help="portrait photos")
    parser.add_argument("--lfw", type=int, default=400, help="LFW crops")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "enroll_speed.json"
    )
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    result: dict[str, Any] = {
        "benchmark": "enroll_speed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sets": {},
    }
    for name, paths in photo_sets(args.full_size, args.lfw).items():
        print(f"{name}: {len(paths)} photos", flush=True)
        result["sets"][name] = measure_set(paths, cores)
    write(result, table, args.out)


if __name__ == "__main__":
    main()
