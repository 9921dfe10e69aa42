"""Labelled photos for calibration, and their templates made by the service's own pipeline.

A calibration set is a CSV with a header and the columns `path` (relative to the CSV's
folder), `person` (any identifier that is the same for every photo of one person) and,
optionally, `group` (a demographic group label). Photos of one person give mated
comparisons; photos of different people give non-mated ones.

Each photo is encoded once with every quality limit off, and its quality measures kept, so a
quality policy can be applied afterwards, exactly as the service's check would apply it,
without encoding again. The results can be cached per photo file and engine configuration.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from matcher import EncoderConfig, EncoderPool, FaceRefusal, Quality, QualityPolicy, engine_spec
from matcher.pool import Measurement
from matcher.quality import check

# Every face the detector finds is described; policies are applied to the measures later.
NO_LIMITS = QualityPolicy(min_inter_eye_px=0, min_in_frame=0, min_sharpness=0, max_yaw_deg=90)
_QUALITY_FIELDS = [f.name for f in fields(Quality)]


class CalibrationSetError(ValueError):
    """A calibration set that cannot be read as a whole."""


@dataclass(frozen=True)
class Photo:
    path: Path
    person: str
    group: str = ""


def read_set(csv_path: Path) -> list[Photo]:
    """The photos a calibration CSV lists; paths are taken relative to the CSV's folder."""
    try:
        with csv_path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", "person"} - set(reader.fieldnames or [])
            if missing:
                raise CalibrationSetError(
                    f"{csv_path} lacks the column(s) {', '.join(sorted(missing))}."
                )
            photos = [
                Photo(csv_path.parent / row["path"], row["person"], row.get("group") or "")
                for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as problem:
        raise CalibrationSetError(f"{csv_path} cannot be read: {problem}") from None
    if not photos:
        raise CalibrationSetError(f"{csv_path} lists no photos.")
    absent = [p.path for p in photos if not p.path.is_file()]
    if absent:
        raise CalibrationSetError(f"{len(absent)} photo(s) listed are missing, e.g. {absent[0]}.")
    return photos


def share(person: str, salt: str) -> float:
    """A stable number in [0, 1) for a person: the same split on every run and machine."""
    digest = hashlib.sha256(f"{salt}:{person}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def write_set(csv_path: Path, photos: list[Photo]) -> None:
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "person", "group"])
        for photo in photos:
            path = os.path.relpath(photo.path.resolve(), csv_path.parent.resolve())
            writer.writerow([path, photo.person, photo.group])


@dataclass(frozen=True)
class Encoded:
    """One calibration set's templates: row i belongs to photos[i]."""

    photos: list[Photo]
    descriptors: np.ndarray  # (n, dimension) float32; zeros where there is no template
    codes: list[str]  # "" where a template was made, else the refusal code
    quality: np.ndarray  # (n, len(Quality fields)); NaN where there is no template

    def usable(self, policy: QualityPolicy) -> np.ndarray:
        """Which photos yield a template the service would accept under `policy`."""
        return np.array([code == "" for code in self.refusals(policy)])

    def refusals(self, policy: QualityPolicy) -> list[str]:
        """Each photo's refusal code under `policy` as the service would give it ("" for a
        photo that yields a template)."""
        return [code or _refusal(row, policy) for code, row in zip(self.codes, self.quality)]

    @property
    def persons(self) -> np.ndarray:
        return np.array([p.person for p in self.photos])

    @property
    def groups(self) -> np.ndarray:
        return np.array([p.group for p in self.photos])


def _refusal(row: np.ndarray, policy: QualityPolicy) -> str:
    """The service's quality check's refusal code for a face with these measures, or ""."""
    try:
        check(Quality(*row.tolist()), policy)
    except FaceRefusal as refusal:
        return refusal.code
    return ""


def encode(
    photos: list[Photo], config: EncoderConfig, workers: int = 0, cache_dir: Path | None = None
) -> Encoded:
    """Every photo's template and quality measures, encoded as the service would with
    `config` but with no quality limit, on `workers` processes (0: one per core).

    With `cache_dir`, results are kept per photo content (its SHA-256) and per engine
    configuration, and only photos not encoded before are encoded.
    """
    config = replace(config, policy=NO_LIMITS)
    keys = [_photo_key(photo.path) for photo in photos]
    cache = cache_dir / f"{config.engine}-{_config_key(config)}.npz" if cache_dir else None
    known = _read_cache(cache)
    todo = sorted({key: photo.path for key, photo in zip(keys, photos) if key not in known}.items())
    if todo:
        with EncoderPool(config, workers) as pool:
            futures = [(key, pool.measure(str(path))) for key, path in todo]
            for key, future in tqdm(futures, desc=f"encoding ({config.engine})", unit="photo"):
                known[key] = entry(future.result())
        if cache is not None:
            _write_cache(cache, known, engine_spec(config.engine).dimension)
    return encoded(photos, [known[key] for key in keys], engine_spec(config.engine).dimension)


# A photo's template, its refusal code ("" for none) and its quality measures.
Entry = tuple[np.ndarray | None, str, tuple[float, ...] | None]


def encoded(photos: list[Photo], entries: list[Entry], dimension: int) -> Encoded:
    """The set, from each photo's entry in turn."""
    descriptors = np.zeros((len(photos), dimension), dtype=np.float32)
    quality = np.full((len(photos), len(_QUALITY_FIELDS)), np.nan)
    codes = []
    for i, (descriptor, code, measures) in enumerate(entries):
        codes.append(code)
        if descriptor is not None:
            descriptors[i], quality[i] = descriptor, measures
    return Encoded(photos, descriptors, codes, quality)


def entry(measurement: Measurement) -> Entry:
    """A worker's measurement of one photo as an entry."""
    blob, outcome = measurement
    if blob is None:
        return None, str(outcome), None
    assert isinstance(outcome, Quality)
    return np.frombuffer(blob, dtype=np.float32), "", astuple(outcome)


def _read_cache(cache: Path | None) -> dict[str, Entry]:
    if cache is None or not cache.is_file():
        return {}
    with np.load(cache) as saved:
        return {
            str(key): (descriptor if code == "" else None, str(code), tuple(measures))
            for key, descriptor, code, measures in zip(
                saved["keys"], saved["descriptors"], saved["codes"], saved["quality"], strict=True
            )
        }


def _write_cache(cache: Path, known: dict[str, Entry], dimension: int) -> None:
    keys = sorted(known)
    descriptors = np.zeros((len(keys), dimension), dtype=np.float32)
    quality = np.full((len(keys), len(_QUALITY_FIELDS)), np.nan)
    for i, key in enumerate(keys):
        descriptor, _, measures = known[key]
        if descriptor is not None:
            descriptors[i], quality[i] = descriptor, measures
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(cache.stem + ".partial.npz")
    np.savez(
        partial,
        keys=np.array(keys),
        descriptors=descriptors,
        codes=np.array([known[k][1] for k in keys]),
        quality=quality,
    )
    partial.replace(cache)


def _photo_key(path: Path) -> str:
    """The photo's content, not its path or time: a data set copied or unpacked again keeps
    its cache."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _config_key(config: EncoderConfig) -> str:
    text = json.dumps([engine_spec(config.engine).model_id, repr(config)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
