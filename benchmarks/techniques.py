"""Beyond one global threshold: what the published techniques buy on the open-set protocol
(benchmarks/openset.py), each as FNIR at FPIR 1 % and 0.1 % beside the plain search.

- Several enrolled photos per person (licence renewals): the two first photos of everyone
  with three or more, fused as the service does (each person at their closest template) or
  as one mean template; the probes are the later photos, the same in every arm.
- Jittered enrolment: each enrolled template the mean of the descriptors of its aligned crop
  shifted, scaled and mirrored.
- Cohort score normalisation (Z-norm): each distance a probe scores is standardised by the
  mean and spread of its distances to a cohort of strangers (the protocol's cohort people),
  and the threshold applies to the standardised score.

    python benchmarks/techniques.py [--engine dlib|sface|both] [--out FILE] [--workers N]
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from openset import (
    Protocol,
    Searches,
    fnir,
    lfw_encoded,
    protocol,
    quality_policy,
    role,
    run_searches,
    searches_of,
    threshold_at,
)
from runner import run_per_engine

from app.core.settings import Settings
from calibration.photos import Encoded
from index import distances
from matcher import EngineName, Matcher, Metric, engine_spec, load_engine
from matcher.decode import decode_image

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = Settings().max_candidates
TARGETS = (0.01, 0.001)


def fnir_at(searches: Searches) -> dict:
    return {
        f"{target:g}": fnir(searches, threshold_at(searches, target), CANDIDATES)
        for target in TARGETS
    }


def several_photos(encoded: Encoded, usable: np.ndarray, metric: Metric) -> dict:
    """One, two fused at the closest, and two averaged enrolled photos per person."""
    persons = encoded.persons
    vectors = encoded.descriptors
    enrolled: list[list[int]] = []
    probe_list: list[int] = []
    mate_list: list[int] = []
    for person in sorted({p for p in persons if role(p) == "gallery"}):
        accepted = np.flatnonzero((persons == person) & usable)
        if len(accepted) == 0:
            continue
        enrolled.append(list(accepted[:2]) if len(accepted) >= 3 else [accepted[0]])
        if len(accepted) >= 3:
            rest = np.flatnonzero(persons == person)
            rest = rest[~np.isin(rest, accepted[:2])]
            probe_list.extend(rest)
            mate_list.extend([len(enrolled) - 1] * len(rest))
    probes, mate = np.array(probe_list), np.array(mate_list)
    non_mated = np.flatnonzero([role(p) == "non-mated" for p in persons])

    def arm(gallery: np.ndarray, owners: np.ndarray) -> Searches:
        return searches_of(
            gallery,
            owners,
            vectors[probes],
            usable[probes],
            mate,
            vectors[non_mated],
            usable[non_mated],
            metric,
        )

    first = np.stack([vectors[rows[0]] for rows in enrolled])
    both = np.concatenate([vectors[rows] for rows in enrolled])
    owners = np.concatenate([[i] * len(rows) for i, rows in enumerate(enrolled)])
    mean = np.stack([_mean(vectors[rows], metric) for rows in enrolled])
    return {
        "people_enrolled": len(enrolled),
        "people_with_two_photos": int(sum(len(rows) == 2 for rows in enrolled)),
        "mated_probes": len(probes),
        "one_photo": fnir_at(arm(first, np.arange(len(enrolled)))),
        "two_photos_closest": fnir_at(arm(both, owners)),
        "two_photos_mean": fnir_at(arm(mean, np.arange(len(enrolled)))),
    }


def _mean(rows: np.ndarray, metric: Metric) -> np.ndarray:
    mean = rows.mean(axis=0)
    return mean / np.linalg.norm(mean) if metric == "cosine" else mean


def cohort_normalised(
    encoded: Encoded, proto: Protocol, searches: Searches, metric: Metric
) -> dict:
    """Z-norm against the cohort: the plain search's distances standardised per probe."""
    cohort = encoded.descriptors[proto.cohort]

    def statistics(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = distances(encoded.descriptors[rows], cohort, metric)
        return scores.mean(axis=1), scores.std(axis=1)

    mated_mean, mated_spread = statistics(proto.mated)
    other_mean, other_spread = statistics(proto.non_mated)
    with np.errstate(divide="ignore", invalid="ignore"):  # refused probes stay infinite
        normalised = Searches(
            (searches.mated_distances - mated_mean[:, None]) / mated_spread[:, None],
            searches.mate_rank,
            (searches.mate_distance - mated_mean) / mated_spread,
            (searches.non_mated_distances - other_mean[:, None]) / other_spread[:, None],
        )
    return {"cohort_photos": len(proto.cohort), "z_norm": fnir_at(normalised)}


_engine = None
# The aligned crop as it is, shifted by 3 px, scaled by 5 %; and mirrored.
_JITTERS = [
    (0, 0, 1.0),
    (3, 0, 1.0),
    (-3, 0, 1.0),
    (0, 3, 1.0),
    (0, -3, 1.0),
    (0, 0, 1.05),
    (0, 0, 0.95),
]


def _start(engine: EngineName) -> None:
    global _engine
    _engine = Matcher(load_engine(engine))


def _jittered(path: str) -> np.ndarray | None:
    """The mean descriptor of the jittered crops of the photo's central face."""
    assert _engine is not None
    engine = _engine.engine
    with open(path, "rb") as handle:
        rgb = decode_image(handle.read(), _engine.limits)
    faces = engine.detect(rgb)
    if not faces:
        return None
    _, chip = engine.align(rgb, Matcher.choose(rgb, faces, None, "central"))
    size = chip.shape[0]
    descriptors = [engine.describe(np.ascontiguousarray(chip[:, ::-1]))]
    for dx, dy, scale in _JITTERS:
        warp = cv2.getRotationMatrix2D((size / 2, size / 2), 0, scale)
        warp[:, 2] += (dx, dy)
        moved = cv2.warpAffine(chip, warp, (size, size), borderMode=cv2.BORDER_REPLICATE)
        descriptors.append(engine.describe(moved))
    return _mean(np.stack(descriptors), engine.spec.metric)


def jittered_enrolment(
    engine: EngineName, encoded: Encoded, usable: np.ndarray, proto: Protocol, workers: int
) -> dict:
    paths = [str(encoded.photos[i].path) for i in proto.gallery]
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(engine,),
    ) as pool:
        templates = list(pool.map(_jittered, paths, chunksize=8))
    vectors = encoded.descriptors.copy()
    for row, template in zip(proto.gallery, templates, strict=True):
        if template is not None:
            vectors[row] = template
    jittered = Encoded(encoded.photos, vectors, encoded.codes, encoded.quality)
    metric = engine_spec(engine).metric
    return {
        "variants_per_template": len(_JITTERS) + 1,
        "jittered": fnir_at(run_searches(jittered, usable, proto, metric)),
    }


def measure(engine: EngineName, workers: int) -> dict:
    spec = engine_spec(engine)
    encoded = lfw_encoded(engine, workers)
    usable = encoded.usable(quality_policy(engine))
    proto = protocol(encoded, usable)
    plain = run_searches(encoded, usable, proto, spec.metric)
    result = {
        "model_id": spec.model_id,
        "plain": fnir_at(plain),
        "several_photos": several_photos(encoded, usable, spec.metric),
        "cohort": cohort_normalised(encoded, proto, plain, spec.metric),
        "jitter": jittered_enrolment(engine, encoded, usable, proto, workers),
    }
    print(json.dumps(result, indent=1), flush=True)
    return result


def table(result: dict) -> str:
    rows = [
        ("one enrolled photo, plain", lambda r: r["plain"]),
        ("cohort Z-norm", lambda r: r["cohort"]["z_norm"]),
        ("jittered enrolment", lambda r: r["jitter"]["jittered"]),
        ("people with 3+ photos: one enrolled", lambda r: r["several_photos"]["one_photo"]),
        ("... two enrolled, closest", lambda r: r["several_photos"]["two_photos_closest"]),
        ("... two enrolled, mean template", lambda r: r["several_photos"]["two_photos_mean"]),
    ]
    engines = list(result["engines"].values())
    header = "| FNIR at FPIR 1 % / 0.1 % | " + " | ".join(e["model_id"] for e in engines) + " |"
    lines = [header, "|---" * (len(engines) + 1) + "|"]
    for title, pick in rows:
        cells = [f"{pick(e)['0.01']:.1%} / {pick(e)['0.001']:.1%}" for e in engines]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_per_engine("techniques", __doc__.split("\n\n")[0], measure, table)
