"""Which dlib descriptor recipe identifies best: rank-1 on two disjoint sets of LFW people.

For each person with two or more photos, the first photo is the gallery and the second the
probe; a probe is a hit when its nearest gallery template (Euclidean) is its own and under
0.6. Recipes: the single descriptor of face_recognition; the mean with the mirrored chip (the
engine's recipe); the mean over chips at three paddings, each with its mirror. Detection,
landmarks and chips are the engine's; the quality rules are not applied, so the figures
isolate the descriptor.

    python benchmarks/descriptor_variants.py [--lfw ../shared/datasets/lfw] [--people 500]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import dlib
import numpy as np

from app.enrolment.demo import lfw_people
from matcher import DlibEngine, FaceRefusal, Matcher
from matcher.decode import decode_image
from matcher.dlib_engine import CHIP_SIZE, verified_weight

ROOT = Path(__file__).resolve().parents[1]
PADDINGS = (0.2, 0.25, 0.3)


def chips(matcher: Matcher, landmarks: dlib.shape_predictor, photo: Path) -> list | None:
    """Chips at each padding, each followed by its mirror; None when no face is found."""
    rgb = decode_image(photo.read_bytes(), matcher.limits)
    try:
        box = matcher.choose(rgb, matcher.engine.detect(rgb), None, "central").box
    except FaceRefusal:
        return None
    shape = landmarks(rgb, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
    result = []
    for padding in PADDINGS:
        chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=padding)
        result += [chip, np.ascontiguousarray(chip[:, ::-1])]
    return result


def rank1(gallery: np.ndarray, probes: np.ndarray) -> float:
    gallery = np.where(np.isnan(gallery), np.inf, gallery)
    hits = 0
    for i, probe in enumerate(probes):
        if np.isnan(probe[0]):
            continue
        distances = np.linalg.norm(gallery - probe, axis=1)
        nearest = int(np.argmin(distances))
        hits += nearest == i and distances[nearest] < 0.6
    return hits / len(probes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--people", type=int, default=500, help="people in each of the two sets")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "descriptor_variants.json"
    )
    args = parser.parse_args()

    matcher = Matcher(DlibEngine())
    landmarks = dlib.shape_predictor(verified_weight("shape_predictor_5_face_landmarks.dat"))
    network = dlib.face_recognition_model_v1(
        verified_weight("dlib_face_recognition_resnet_model_v1.dat")
    )
    middle = 2 * PADDINGS.index(0.25)
    recipes = {
        "single": lambda d: d[middle],
        "mirror": lambda d: d[middle : middle + 2].mean(axis=0),
        "three_paddings_mirror": lambda d: d.mean(axis=0),
    }
    people = [name for name, _ in lfw_people(args.lfw / "images", 2)][: 2 * args.people]
    sets = {"first": people[: args.people], "second": people[args.people :]}
    result: dict = {"benchmark": "descriptor_variants", "people_per_set": args.people, "sets": {}}
    for label, names in sets.items():
        descriptors: dict[str, list] = {"gallery": [], "probe": []}
        start = time.perf_counter()
        for name in names:
            for role, number in (("gallery", 1), ("probe", 2)):
                photo = args.lfw / "images" / name / f"{name}_{number:04d}.jpg"
                found = chips(matcher, landmarks, photo)
                descriptors[role].append(
                    np.asarray(network.compute_face_descriptor(found))
                    if found is not None
                    else np.full((2 * len(PADDINGS), 128), np.nan)
                )
        per_face_ms = (time.perf_counter() - start) / (2 * len(names)) * 1000
        result["sets"][label] = {
            recipe: rank1(
                np.stack([pick(d) for d in descriptors["gallery"]]),
                np.stack([pick(d) for d in descriptors["probe"]]),
            )
            for recipe, pick in recipes.items()
        }
        print(
            f"set {label} ({names[0]} .. {names[-1]}): "
            + ", ".join(f"{k} {v:.1%}" for k, v in result["sets"][label].items())
            + f"  ({per_face_ms:.0f} ms per face for all {2 * len(PADDINGS)} chips)",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
