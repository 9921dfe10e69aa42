"""Photo sets as an independent tester sends them: LFW people with their gender, zipped with
a manifest."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from calibration.photos import share
from tests.support.data import LFW


@dataclass(frozen=True)
class SetPhoto:
    path: Path
    person: str
    labels: dict[str, str] = field(default_factory=dict)


def lfw_gendered(people: int, per_person: int = 4) -> list[SetPhoto]:
    """`people` of LFW's held-out people (the half no operating point was calibrated on)
    with two photos or more and one gender in its lists, up to `per_person` photos each."""
    gender: dict[str, str] = {}
    for label in ("male", "female"):
        for name in (LFW / f"{label}_names.txt").read_text().split():
            gender[name] = "" if gender.get(name, label) != label else label
    photos: list[SetPhoto] = []
    chosen = 0
    for folder in sorted((LFW / "images").iterdir()):
        own = sorted(folder.glob("*.jpg"))[:per_person]
        genders = {gender.get(photo.name, "") for photo in own}
        if len(own) < 2 or share(folder.name, "calibration") < 0.5 or len(genders) != 1:
            continue
        (label,) = genders
        if not label:
            continue
        photos += [SetPhoto(photo, folder.name, {"gender": label}) for photo in own]
        chosen += 1
        if chosen == people:
            break
    return photos


def zipped(photos: list[SetPhoto], manifest: str | None = None) -> bytes:
    """The archive a tester sends: the photos under their own names, and the manifest."""
    labels = sorted({name for photo in photos for name in photo.labels})
    if manifest is None:
        rows = io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(["photo", "person", *labels])
        for photo in photos:
            writer.writerow(
                [f"photos/{photo.path.name}", photo.person, *(photo.labels[n] for n in labels)]
            )
        manifest = rows.getvalue()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as written:
        written.writestr("manifest.csv", manifest)
        for photo in photos:
            written.write(photo.path, f"photos/{photo.path.name}")
    return archive.getvalue()
