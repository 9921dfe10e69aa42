"""Cheap levers on the probe side, each measured against the plain pipeline on LFW's held-out
people and on CelebA, with calibration/check.py's protocol and the service's index and
decision rule:

- mirrored average: each template the mean of the descriptors of the aligned crop and of its
  mirror image (dlib's recipe already does this; for the engine that does not);
- small faces let through: the quality gate's face-size limit off, so what its
  `face_too_small` refusals cost in misses and save in false candidates shows;
- small faces detected again at twice the size: those faces found, aligned and described on
  the photo upscaled 2x, the limit off for them.

Reported per arm: FNIR at FPIR 1 % and 0.1 % (thresholds chosen from each arm's own
non-mated searches), and at the shipped threshold FNIR with its interval and how many
searches of strangers returned a candidate.

    python benchmarks/probe_levers.py [--engine sface|dlib|both] [--out FILE] [--workers N]
"""

from __future__ import annotations

import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, replace

import cv2
import numpy as np
from public_sets import CACHE, celeba_photos, lfw_photos, split
from runner import run_per_engine

from app.core.composition import encoder, quality_policy
from app.core.settings import Settings
from calibration.check import fnir_at_fpir, missed_rate, search_set
from calibration.photos import Encoded, Photo, encode
from matcher import (
    EngineName,
    FaceRefusal,
    Matcher,
    MatchRule,
    Metric,
    QualityPolicy,
    engine_spec,
    load_engine,
)
from matcher.decode import decode_image
from matcher.operating_point import load_operating_point, shipped
from matcher.quality import assess

CANDIDATES = Settings().max_candidates
TARGETS = (0.01, 0.001)
UPSCALE = 2.0

_matcher: Matcher | None = None


def _start(engine: EngineName) -> None:
    global _matcher
    cv2.setNumThreads(1)
    _matcher = Matcher(load_engine(engine))


def _central(image: np.ndarray) -> tuple[np.ndarray, tuple] | None:
    """The central face's aligned crop and quality measures, or None without a face."""
    assert _matcher is not None
    engine = _matcher.engine
    try:
        face = Matcher.choose(image, engine.detect(image), None, "central")
    except FaceRefusal:
        return None
    landmarks, chip = engine.align(image, face)
    return chip, astuple(assess(face.box, image.shape[:2], landmarks, chip))


def _variants(
    job: tuple[str, bool, bool],
) -> tuple[np.ndarray | None, np.ndarray | None, tuple | None]:
    """For one photo, as asked: the central face's mirrored-average descriptor; the face
    found again on the photo upscaled UPSCALE times, its descriptor and its quality measures
    in the photo's own pixels. None where no face is found."""
    assert _matcher is not None
    path, want_mirrored, want_larger = job
    engine = _matcher.engine
    with open(path, "rb") as handle:
        rgb = decode_image(handle.read(), _matcher.limits)
    mirrored = large = in_photo = None
    found = _central(rgb) if want_mirrored else None
    if found is not None:
        chip = found[0]
        pair = [engine.describe(chip), engine.describe(np.ascontiguousarray(chip[:, ::-1]))]
        mean = np.mean(pair, axis=0)
        mirrored = (mean / np.linalg.norm(mean)).astype(np.float32)
    upscaled = cv2.resize(rgb, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    larger = _central(upscaled) if want_larger else None
    if larger is not None:
        large = engine.describe(larger[0])
        # Box sizes and eye distance back in the photo's own pixels, as the gate measures them.
        in_photo = tuple(v / UPSCALE for v in larger[1][:3]) + tuple(larger[1][3:])
    return mirrored, large, in_photo


def variants(
    engine: EngineName, photos: list[Photo], small: np.ndarray, workers: int
) -> dict[str, np.ndarray]:
    """The mirrored average of every photo (for an engine that does not already make it),
    and the small faces found again upscaled; cached under var/cache."""
    mirror = not engine_spec(engine).model_id.endswith("-mirror")
    key = hashlib.sha256(
        "\n".join([engine_spec(engine).model_id, *(str(p.path) for p in photos)]).encode()
    ).hexdigest()[:16]
    cache = CACHE / f"levers-{engine}-{key}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            return dict(saved)
    jobs = [(str(p.path), mirror, bool(s)) for p, s in zip(photos, small, strict=True)]
    wanted = [i for i, (_, m, large) in enumerate(jobs) if m or large]
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(engine,),
    ) as pool:
        results = dict(zip(wanted, pool.map(_variants, [jobs[i] for i in wanted], chunksize=16)))
    dimension = engine_spec(engine).dimension
    found = {
        "mirrored_found": np.zeros(len(photos), dtype=bool),
        "mirrored": np.zeros((len(photos), dimension), dtype=np.float32),
        "large_found": np.zeros(len(photos), dtype=bool),
        "large": np.zeros((len(photos), dimension), dtype=np.float32),
        "large_quality": np.full((len(photos), 6), np.nan),
    }
    for i, (mirrored, large, large_quality) in results.items():
        if mirrored is not None:
            found["mirrored_found"][i], found["mirrored"][i] = True, mirrored
        if large is not None:
            found["large_found"][i], found["large"][i] = True, large
            found["large_quality"][i] = large_quality
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        mirrored_found=found["mirrored_found"],
        mirrored=found["mirrored"],
        large_found=found["large_found"],
        large=found["large"],
        large_quality=found["large_quality"],
    )
    return found


def arm(encoded: Encoded, policy: QualityPolicy, metric: Metric, rule: MatchRule) -> dict:
    searched = search_set(encoded, policy, metric, rule, Settings().gallery_templates)
    everyone = np.ones(len(searched.mate), dtype=bool)
    return {
        "refused": searched.refused,
        "fnir_at_fpir": {
            f"{target:g}": fnir_at_fpir(searched, target, CANDIDATES)[1].value for target in TARGETS
        },
        "at_operating_point": {
            "fnir": missed_rate(searched, ~searched.listed, everyone).model_dump(),
            "strangers_with_a_candidate": int((searched.non_mated_nearest < rule.threshold).sum()),
            "non_mated_searches": len(searched.non_mated_nearest),
        },
    }


def measure(engine: EngineName, workers: int) -> dict:
    settings = Settings(engine=engine)
    spec = engine_spec(engine)
    policy = quality_policy(settings)
    point, _ = load_operating_point(shipped(engine))
    rule = MatchRule(point.threshold, CANDIDATES, settings.match_margin)
    any_size = replace(policy, min_inter_eye_px=0)
    result: dict = {"model_id": spec.model_id, "threshold": point.threshold, "sets": {}}
    for name, photos in (
        ("lfw-held-out", split(lfw_photos(), "held-out")),
        ("celeba", celeba_photos()),
    ):
        plain = encode(photos, encoder(settings, "central"), workers, CACHE)
        inter_eye = plain.quality[:, 2]  # NaN where there is no template
        small = (np.array(plain.codes) == "") & (inter_eye < policy.min_inter_eye_px)
        extra = variants(engine, photos, small, workers)
        redetected = small & extra["large_found"]
        large = plain.descriptors.copy()
        large[redetected] = extra["large"][redetected]
        large_quality = plain.quality.copy()
        large_quality[redetected] = extra["large_quality"][redetected]
        arms = {
            "plain": arm(plain, policy, spec.metric, rule),
            "small faces let through": arm(plain, any_size, spec.metric, rule),
            "small faces detected again at 2x": arm(
                Encoded(plain.photos, large, plain.codes, large_quality),
                any_size,
                spec.metric,
                rule,
            ),
        }
        if spec.model_id.endswith("-mirror"):
            arms["mirrored average"] = {"already": "the engine's own recipe"}
        else:
            mirrored = np.where(
                extra["mirrored_found"][:, None], extra["mirrored"], plain.descriptors
            )
            arms["mirrored average"] = arm(
                Encoded(plain.photos, mirrored, plain.codes, plain.quality),
                policy,
                spec.metric,
                rule,
            )
        result["sets"][name] = {
            "small_faces": int(small.sum()),
            "small_faces_detected_again": int(redetected.sum()),
            "arms": arms,
        }
        print(f"{engine} {name}: {result['sets'][name]}", flush=True)
    return result


def table(result: dict) -> str:
    lines = [
        "| engine, photos | arm | FNIR at FPIR 1 % / 0.1 % | FNIR at the operating point "
        "| strangers with a candidate | probes refused |",
        "|---|---|---|---|---|---|",
    ]
    for measured in result["engines"].values():
        for name, found in measured["sets"].items():
            for title, row in found["arms"].items():
                if "already" in row:
                    continue
                fnir = row["at_operating_point"]["fnir"]
                point = row["at_operating_point"]
                lines.append(
                    f"| {measured['model_id']}, {name} | {title} "
                    f"| {row['fnir_at_fpir']['0.01']:.1%} / {row['fnir_at_fpir']['0.001']:.1%} "
                    f"| {fnir['value']:.1%} [{fnir['low']:.1%}, {fnir['high']:.1%}] "
                    f"| {point['strangers_with_a_candidate']} of {point['non_mated_searches']} "
                    f"| {sum(row['refused'].values())} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    run_per_engine("probe_levers", __doc__.split("\n\n")[0], measure, table)
