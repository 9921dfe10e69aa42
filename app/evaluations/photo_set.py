"""A tester's labelled photo set, as they send it: one ZIP archive holding `manifest.csv` and
the photos it lists.

The manifest's columns are `photo` (the photo's path inside the archive), `person` (the
tester's own identifier, the same for every photo of one person) and any labels the tester
cares about (`gender`, `age_band`, `skin_tone`...), one column each. The archive is read
within its limits whatever it declares: members are counted, each photo is named once and
read to at most the photo limit, and all of them together to at most `Limits.total_bytes`,
so a ZIP bomb is refused, not unpacked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import lzma
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from app.core.refusals import Code, Refusal

MANIFEST = "manifest.csv"
MAX_LABELS = 8
# A label is a subpopulation, not an identifier: a label with more values measures nothing.
MAX_LABEL_VALUES = 32
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_VALUE_CHARACTERS = 64
# Enough people to enrol some and search with the rest (calibration.check splits them in two).
MIN_PEOPLE_WITH_TWO_PHOTOS = 4


@dataclass(frozen=True)
class Limits:
    photos: int
    photo_bytes: int
    total_bytes: int  # the photos unpacked, all together


@dataclass(frozen=True)
class SubmittedPhoto:
    person: str
    labels: dict[str, str]
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class PhotoSet:
    sha256: str  # the archive's
    labels: list[str]
    photos: list[SubmittedPhoto]

    @property
    def people(self) -> int:
        return len({photo.person for photo in self.photos})


def _invalid(message: str) -> Refusal:
    return Refusal(Code.invalid_photo_set, message)


def read_photo_set(archive: BinaryIO, limits: Limits) -> PhotoSet:
    """The photo set in `archive`, or `invalid_photo_set` saying what is wrong with it."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: archive.read(1 << 20), b""):
        digest.update(chunk)
    archive.seek(0)
    try:
        with zipfile.ZipFile(archive) as opened:
            members = {info.filename: info for info in opened.infolist() if not info.is_dir()}
            if len(members) > limits.photos + 1:
                raise _invalid(
                    f"The archive holds {len(members)} files; a set holds at most "
                    f"{limits.photos} photos and its manifest."
                )
            if MANIFEST not in members:
                raise _invalid(f"The archive holds no {MANIFEST} at its top.")
            rows = _manifest(_member(opened, members[MANIFEST], 1 << 20), limits)
            labels = [name for name in rows[0] if name not in ("photo", "person")]
            photos = []
            budget = limits.total_bytes
            for number, row in enumerate(rows[1:], 2):
                info = members.get(row["photo"])
                if info is None:
                    raise _invalid(
                        f"Line {number} of the manifest names {row['photo']!r}, which the "
                        "archive does not hold."
                    )
                data = _member(opened, info, min(limits.photo_bytes, budget))
                budget -= len(data)
                photos.append(
                    SubmittedPhoto(
                        person=row["person"],
                        labels={name: row[name] for name in labels},
                        data=data,
                    )
                )
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        RuntimeError,  # an encrypted member
        OSError,
        zlib.error,
        lzma.LZMAError,
    ):
        raise _invalid("The photo set is not a ZIP archive that can be read.") from None
    _enough(photos)
    return PhotoSet(digest.hexdigest(), labels, photos)


def _member(opened: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, read to at most `limit`, whatever the archive says of its size."""
    if info.flag_bits & 0x1:
        raise _invalid(f"{info.filename!r} in the archive is encrypted; send it as it is.")
    with opened.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise Refusal(
            Code.photo_set_too_large,
            f"{info.filename!r} takes the photo set past its limit: each photo is at most "
            "FACEMATCH_MAX_IMAGE_BYTES, and all of them together at most "
            "FACEMATCH_EVALUATION_MAX_BYTES.",
        )
    return data


def _manifest(data: bytes, limits: Limits) -> list[dict[str, str]]:
    """The manifest's header (as a row of itself) and its rows, every field checked."""
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")), strict=True)
        header = reader.fieldnames or []
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as problem:
        raise _invalid(f"{MANIFEST} cannot be read as UTF-8 CSV: {problem}.") from None
    missing = {"photo", "person"} - set(header)
    if missing:
        raise _invalid(f"{MANIFEST} lacks the column(s) {', '.join(sorted(missing))}.")
    labels = [name for name in header if name not in ("photo", "person")]
    if len(set(header)) != len(header):
        raise _invalid(f"{MANIFEST} names a column twice.")
    if len(labels) > MAX_LABELS:
        raise _invalid(f"{MANIFEST} has {len(labels)} label columns; at most {MAX_LABELS}.")
    bad = [name for name in labels if not _NAME.fullmatch(name)]
    if bad:
        raise _invalid(
            f"The label column {bad[0]!r} is not a name of lowercase letters, digits and "
            "underscores (at most 32, starting with a letter)."
        )
    if not rows:
        raise _invalid(f"{MANIFEST} lists no photos.")
    if len(rows) > limits.photos:
        raise Refusal(
            Code.photo_set_too_large,
            f"{MANIFEST} lists {len(rows)} photos; a set holds at most {limits.photos}.",
        )
    named: set[str] = set()
    for number, row in enumerate(rows, 2):
        if None in row or any(row[name] is None for name in header):
            raise _invalid(f"Line {number} of {MANIFEST} does not have one field per column.")
        if row["photo"] in named:
            raise _invalid(f"Line {number} of {MANIFEST} names {row['photo']!r} again.")
        named.add(row["photo"])
        if not row["person"].strip() or not row["photo"].strip():
            raise _invalid(f"Line {number} of {MANIFEST} gives no photo or no person.")
        if any(len(row[name]) > _VALUE_CHARACTERS for name in ("person", *labels)):
            raise _invalid(
                f"Line {number} of {MANIFEST} has a person or label longer than "
                f"{_VALUE_CHARACTERS} characters."
            )
    for name in labels:
        values = {row[name] for row in rows} - {""}
        if len(values) > MAX_LABEL_VALUES:
            raise _invalid(
                f"The label {name!r} has {len(values)} values; a label names subpopulations, "
                f"at most {MAX_LABEL_VALUES}."
            )
    return [{name: name for name in header}, *rows]


def _enough(photos: list[SubmittedPhoto]) -> None:
    per_person: dict[str, int] = {}
    for photo in photos:
        per_person[photo.person] = per_person.get(photo.person, 0) + 1
    twice = sum(1 for n in per_person.values() if n >= 2)
    if twice < MIN_PEOPLE_WITH_TWO_PHOTOS:
        raise _invalid(
            f"{twice} of the set's people have two photos or more; at least "
            f"{MIN_PEOPLE_WITH_TWO_PHOTOS} must, for mated searches to be made."
        )
