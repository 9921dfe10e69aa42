"""The shared datasets (../shared/datasets, or FACEMATCH_DATASETS), their photos, and the
enrolment manifests the tests make from LFW: each row carries sentinel values in columns the
service must never keep."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from app.enrolment.demo import DEMO_COLUMNS, lfw_demo_rows

DATASETS = Path(
    os.environ.get(
        "FACEMATCH_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"
    )
)
SAMPLES = DATASETS / "samples"
LFW = DATASETS / "lfw"

# What a licensing agency's export holds beside the five fields: none of it may be kept.
SENTINELS = {
    "ssn": "987-65-4321",
    "mothers_maiden_name": "Quillfeather",
    "place_of_birth": "Sentinelburg",
    "address": "77 Nowhere Lane",
    "voter_indicator": "VOTERFLAG99",
}
MANIFEST_COLUMNS = [*DEMO_COLUMNS, *SENTINELS]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def lfw_photo(person: str, number: int) -> Path:
    return LFW / "images" / person / f"{person}_{number:04d}.jpg"


def lfw_rows(count: int) -> list[dict[str, str]]:
    """Manifest rows for `count` LFW people with two photos or more, each under an invented
    licence, the photo their first (relative to DATASETS), the sentinels filled in."""
    rows = list(lfw_demo_rows(LFW / "images", min_photos=2, limit=count))
    for row in rows:
        row["photo"] = f"lfw/images/{row['photo']}"
        row.update(SENTINELS)
    return rows


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path
