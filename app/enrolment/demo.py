"""Made-up licence records for the LFW photos, so the public data set can stand in for a
gallery, and a made-up request to search them under."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from app.enrolment.local import PHOTO_COLUMN
from app.gallery.release import RELEASED_FIELDS

DEMO_COLUMNS = [*RELEASED_FIELDS, PHOTO_COLUMN]


def lfw_people(images: Path, min_photos: int) -> list[tuple[str, int]]:
    """(person, photo count) for every LFW folder with at least `min_photos` photos, by name."""
    people = []
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        count = sum(1 for _ in folder.glob("*.jpg"))
        if count >= min_photos:
            people.append((folder.name, count))
    return people


def lfw_demo_rows(
    images: Path, min_photos: int = 1, limit: int | None = None, photo: int = 1, seed: int = 0
) -> Iterator[dict[str, str]]:
    """One invented licence per person (random number and date of birth, name from the folder),
    with the person's photo number `photo`, as a path relative to `images`."""
    # Made-up demo records, reproducible from the seed: not a secret.
    rng = random.Random(seed)  # nosec B311
    issued: set[str] = set()
    for name, _count in lfw_people(images, max(min_photos, photo))[:limit]:
        number = ""
        while not number or number in issued:
            number = "WDL" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=9))
        issued.add(number)
        parts = name.split("_")
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        yield {
            "license_number": number,
            "first_name": parts[0],
            "middle_name": " ".join(parts[1:-1]),
            "last_name": parts[-1],
            "date_of_birth": born.isoformat(),
            "photo": f"{name}/{name}_{photo:04d}.jpg",
        }


def demo_request(**changes: Any) -> dict[str, Any]:
    """A request, as the review system submits it, that passes screening: a local police
    narcotics case with a subpoena; `changes` replace its fields."""
    body: dict[str, Any] = {
        "agency_name": "Olympia Police Department",
        "agency_code": "OPD",
        "agency_kind": "local",
        "case_number": "OPD-2026-0412",
        "requesting_officer": "Det. R. Alvarez",
        "crime": {"category": "narcotics", "statutes": ["RCW 69.50.401"]},
        "legal_process": "subpoena",
        "narrative": "Surveillance still from a controlled buy; suspect unidentified.",
    }
    body.update(changes)
    return body
