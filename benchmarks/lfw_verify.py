"""LFW verification, the standard 10-fold protocol on pairs.txt, for facematch's own pipeline and
for the reference face_recognition pipeline, measured in the same run on the same images.

For each fold, the distance threshold that maximises accuracy on the other nine folds is
applied to it; the result is the mean and standard deviation over the ten folds. Images that
yield no template (no face, or refused by the quality checks) are counted and reported, and
accuracy is given three ways: over the pairs where both images yielded a template (as the
published figures are), over the pairs both pipelines could use (the like-for-like
comparison), and over all pairs, a pair without a template being decided "different".

Both pipelines take the face nearest the centre when an image shows several: LFW centres its
subject, and its backgrounds often hold other people.

    python benchmarks/lfw_verify.py [--lfw ../shared/datasets/lfw] [--out FILE] [--folds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from matcher import EncoderConfig, EncoderPool
from matcher.dlib_engine import SPEC, verified_weight

ROOT = Path(__file__).resolve().parents[1]


def read_pairs(path: Path, folds: int) -> list[list[tuple[str, str, bool]]]:
    """pairs.txt as folds of (image, image, same person); image paths relative to images/."""
    lines = path.read_text().split("\n")
    count, size = (int(n) for n in lines[0].split())
    result = []
    for fold in range(min(folds, count)):
        pairs = []
        for line in lines[1 + fold * 2 * size : 1 + (fold + 1) * 2 * size]:
            parts = line.split()
            if len(parts) == 3:
                name, i, j = parts
                pairs.append((photo(name, i), photo(name, j), True))
            else:
                name1, i, name2, j = parts
                pairs.append((photo(name1, i), photo(name2, j), False))
        result.append(pairs)
    return result


def photo(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


# The reference: face_recognition's load_image_file, face_locations (HOG, upsampled once) and
# face_encodings (5-point landmarks, one descriptor), written against dlib directly because
# that package cannot be imported on current setuptools.
_reference: tuple | None = None


def _start_reference() -> None:
    global _reference
    _reference = (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(verified_weight("shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(
            verified_weight("dlib_face_recognition_resnet_model_v1.dat")
        ),
    )


def _reference_encode(path: str) -> tuple[bytes, None] | tuple[None, str]:
    assert _reference is not None
    detector, landmarks, describer = _reference
    rgb = np.asarray(Image.open(path).convert("RGB"))
    faces = detector(rgb, 1)
    if not faces:
        return None, "no_face"
    cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
    face = min(faces, key=lambda f: (f.center().x - cx) ** 2 + (f.center().y - cy) ** 2)
    descriptor = describer.compute_face_descriptor(rgb, landmarks(rgb, face), 1)
    return np.asarray(descriptor, dtype=np.float32).tobytes(), None


def encode_all(images: Path, names: list[str], reference: bool, workers: int) -> tuple[dict, float]:
    """Descriptors (or None) per image name, and images per second over all cores."""
    paths = [str(images / name) for name in names]
    start = time.perf_counter()
    if reference:
        with ProcessPoolExecutor(workers, initializer=_start_reference) as pool:
            results = list(pool.map(_reference_encode, paths, chunksize=16))
    else:
        with EncoderPool(EncoderConfig(choice="central"), workers) as pool:
            results = [future.result() for future in [pool.submit(p) for p in paths]]
    elapsed = time.perf_counter() - start
    encoded = {
        name: (np.frombuffer(blob, dtype=np.float32) if blob is not None else code)
        for name, (blob, code) in zip(names, results, strict=True)
    }
    return encoded, len(names) / elapsed


Pair = tuple[str, str, bool]


def ten_fold(folds: list[list[Pair]], encoded: dict, use: set[str] | None = None) -> dict:
    """Accuracy over the pairs whose images are both in `use` (all pairs when None); a pair
    whose image has no template gets an infinite distance, a "different" decision."""

    def distances(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [p for p in pairs if use is None or (p[0] in use and p[1] in use)]
        d = np.array(
            [
                float(np.linalg.norm(encoded[a] - encoded[b]))
                if isinstance(encoded[a], np.ndarray) and isinstance(encoded[b], np.ndarray)
                else np.inf
                for a, b, _ in pairs
            ]
        )
        return d, np.array([same for _, _, same in pairs])

    per_fold = [distances(pairs) for pairs in folds]
    accuracies, thresholds = [], []
    for k, (test_d, test_same) in enumerate(per_fold):
        train_d = np.concatenate([d for i, (d, _) in enumerate(per_fold) if i != k])
        train_same = np.concatenate([s for i, (_, s) in enumerate(per_fold) if i != k])
        candidates = np.unique(train_d[np.isfinite(train_d)])
        scores = [((train_d < t) == train_same).mean() for t in candidates]
        thresholds.append(float(candidates[int(np.argmax(scores))]))
        accuracies.append(float(((test_d < thresholds[-1]) == test_same).mean()))
    return {
        "pairs": int(sum(len(d) for d, _ in per_fold)),
        "mean_accuracy": float(np.mean(accuracies)),
        "std_accuracy": float(np.std(accuracies)),
        "fold_accuracies": accuracies,
        "thresholds": thresholds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "lfw_verify.json"
    )
    parser.add_argument(
        "--folds", type=int, default=10, help="use only the first N folds (smoke runs)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if args.folds < 2:
        parser.error("--folds must be at least 2: each fold's threshold comes from the others")

    folds = read_pairs(args.lfw / "pairs.txt", args.folds)
    names = sorted({name for pairs in folds for a, b, _ in pairs for name in (a, b)})
    result = {
        "benchmark": "lfw_verify",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "images": len(names),
        "pairs": sum(len(p) for p in folds),
        "folds": len(folds),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "workers": args.workers,
        },
        "pipelines": {},
    }
    encodings = {}
    for label, reference in (("facematch", False), ("face_recognition_reference", True)):
        encoded, rate = encode_all(args.lfw / "images", names, reference, args.workers)
        encodings[label] = encoded
        failures = Counter(v for v in encoded.values() if isinstance(v, str))
        result["pipelines"][label] = {
            "model_id": SPEC.model_id if not reference else "dlib-resnet-v1",
            "images_without_template": sum(failures.values()),
            "failure_codes": dict(failures),
            "images_per_second": rate,
        }
    usable = {
        label: {name for name, v in encoded.items() if isinstance(v, np.ndarray)}
        for label, encoded in encodings.items()
    }
    common = set.intersection(*usable.values())
    for label, encoded in encodings.items():
        summary = result["pipelines"][label]
        summary["usable_pairs"] = ten_fold(folds, encoded, usable[label])
        summary["common_pairs"] = ten_fold(folds, encoded, common)
        summary["all_pairs"] = ten_fold(folds, encoded)
        print(
            f"{label}: {summary['images_without_template']} of {len(names)} images without a "
            f"template {summary['failure_codes']}; {summary['images_per_second']:.1f} images/s "
            f"on {args.workers} workers"
        )
        for view in ("usable_pairs", "common_pairs", "all_pairs"):
            v = summary[view]
            print(
                f"    {view:13s} {v['mean_accuracy']:.2%} ± {v['std_accuracy']:.2%} "
                f"over {v['pairs']} pairs"
            )
    ours, ref = result["pipelines"]["facematch"], result["pipelines"]["face_recognition_reference"]
    result["speed_ratio"] = ours["images_per_second"] / ref["images_per_second"]
    print(f"speed ratio facematch / reference: {result['speed_ratio']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
