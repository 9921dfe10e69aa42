"""LFW verification, the standard 10-fold protocol on pairs.txt, for facematch's own pipeline and
for the reference face_recognition pipeline, measured in the same run on the same images.

For each fold, the distance threshold that maximises accuracy on the other nine folds is
applied to it; the result is the mean and standard deviation over the ten folds. A pair with
an image that yields no template is decided "different" (so a matched pair counts as an
error); accuracy over the pairs where both images yielded a template is printed too.

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
from matcher.dlib_engine import MODEL_ID, verified_weight

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


# The reference: what face_recognition.face_encodings(load_image_file(path))[0] computes,
# written against dlib directly because that package cannot be imported on current setuptools.
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
    descriptor = describer.compute_face_descriptor(rgb, landmarks(rgb, faces[0]), 1)
    return np.asarray(descriptor, dtype=np.float32).tobytes(), None


def encode_all(images: Path, names: list[str], reference: bool, workers: int) -> tuple[dict, float]:
    """Descriptors (or None) per image name, and images per second over all cores."""
    paths = [str(images / name) for name in names]
    start = time.perf_counter()
    if reference:
        with ProcessPoolExecutor(workers, initializer=_start_reference) as pool:
            results = list(pool.map(_reference_encode, paths, chunksize=16))
    else:
        # LFW crops centre their subject and often show other people behind: take the centre face.
        with EncoderPool(EncoderConfig(choice="central"), workers) as pool:
            results = [future.result() for future in [pool.submit(p) for p in paths]]
    elapsed = time.perf_counter() - start
    encoded = {
        name: (np.frombuffer(blob, dtype=np.float32) if blob is not None else code)
        for name, (blob, code) in zip(names, results, strict=True)
    }
    return encoded, len(names) / elapsed


def ten_fold(folds: list[list[tuple[str, str, bool]]], encoded: dict) -> dict:
    def distances(pairs: list) -> tuple[np.ndarray, np.ndarray]:
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
    accuracies, usable_accuracies, thresholds = [], [], []
    for k, (test_d, test_same) in enumerate(per_fold):
        train_d = np.concatenate([d for i, (d, _) in enumerate(per_fold) if i != k])
        train_same = np.concatenate([s for i, (_, s) in enumerate(per_fold) if i != k])
        candidates = np.unique(train_d[np.isfinite(train_d)])
        scores = [((train_d < t) == train_same).mean() for t in candidates]
        threshold = float(candidates[int(np.argmax(scores))])
        thresholds.append(threshold)
        accuracies.append(float(((test_d < threshold) == test_same).mean()))
        usable = np.isfinite(test_d)
        usable_accuracies.append(float(((test_d[usable] < threshold) == test_same[usable]).mean()))
    return {
        "mean_accuracy": float(np.mean(accuracies)),
        "std_accuracy": float(np.std(accuracies)),
        "mean_accuracy_usable_pairs": float(np.mean(usable_accuracies)),
        "thresholds": thresholds,
        "fold_accuracies": accuracies,
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
    for label, reference in (("facematch", False), ("face_recognition_reference", True)):
        encoded, rate = encode_all(args.lfw / "images", names, reference, args.workers)
        failures = Counter(v for v in encoded.values() if isinstance(v, str))
        summary = ten_fold(folds, encoded)
        summary.update(
            model_id=MODEL_ID,
            images_without_template=sum(failures.values()),
            failure_codes=dict(failures),
            images_per_second=rate,
        )
        result["pipelines"][label] = summary
        print(
            f"{label:28s} accuracy {summary['mean_accuracy']:.2%} ± {summary['std_accuracy']:.2%} "
            f"(usable pairs {summary['mean_accuracy_usable_pairs']:.2%}), "
            f"{summary['images_without_template']} of {len(names)} images without a template "
            f"{dict(failures)}, {rate:.1f} images/s on {args.workers} workers",
            flush=True,
        )
    ours, ref = result["pipelines"]["facematch"], result["pipelines"]["face_recognition_reference"]
    result["speed_ratio"] = ours["images_per_second"] / ref["images_per_second"]
    print(f"speed ratio facematch / reference: {result['speed_ratio']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
