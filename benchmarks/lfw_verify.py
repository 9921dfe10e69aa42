"""LFW verification, side by side: each facematch engine and the reference face_recognition
pipeline, measured in the same run on the same images.

For each fold, the distance threshold that maximises accuracy on the other nine folds is
applied to it; the result is the mean and standard deviation over the ten folds. Images that
yield no template (no face, or refused by the quality checks) are counted and reported, and
accuracy is given three ways: over the pairs where both images yielded a template (as the
published figures are), over the pairs both pipelines could use (the like-for-like
comparison), and over all pairs, a pair without a template being decided "different".

At the low false-match rates a 1:N search needs, 10-fold accuracy says little, so each
pipeline's false non-match rate (FNMR) is also given at a false-match rate (FMR) of 1e-4,
1e-5 and 1e-6: the threshold is set on every different-person pair of the images that
pairs.txt uses (about 29.6 million), and the misses counted over its 3,000 same-person pairs.
An image without a template matches nothing. LFW files a few people under two names; at
these rates the "impostors" nearest each other are those people, so the names are merged
first (IDENTITY_MERGES, each checked by eye).

Every pipeline takes the face nearest the centre when an image shows several: LFW centres
its subject, and its backgrounds often hold other people.

    python benchmarks/lfw_verify.py [--engine dlib|sface|both] [--lfw ../shared/datasets/lfw]
        [--out FILE] [--folds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dlib
import numpy as np
from PIL import Image

from index import distances as template_distances
from matcher import ENGINES, EncoderConfig, EncoderPool, EngineName, Metric, distance, engine_spec
from matcher.dlib_engine import verified_weight

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "face_recognition_reference"
FMRS = (1e-4, 1e-5, 1e-6)
# The same person filed under two names in LFW: each pair came up among the closest
# "different-person" pairs and was checked by eye on the photos. Name variants (spelling,
# transliteration, name order, married or titled name), and three whose only photo shows the
# other person (Shavon_Earp_0001 is Diana Taurasi; Gabrielle_Rose_0001 is the very photo
# Martha_Bowen_0002; John_Barnett_0001 is John Burnett). Twins (Carolina and Isabela Moraes)
# are two people and stay apart.
IDENTITY_MERGES: dict[str, str] = {
    "Sepp_Blatter": "Joseph_Blatter",
    "Hasan_Wirayuda": "Hassan_Wirajuda",
    "Mireya_Elisa_Moscoso_Rodriguez": "Mireya_Moscoso",
    "Dai_Chul_Chyung": "Chyung_Dai-chul",
    "Prince_Felipe": "Felipe_De_Borbon",
    "Cristina_Kirchner": "Cristina_Fernandez",
    "Odai_Hussein": "Uday_Hussein",
    "John_Gruden": "Jon_Gruden",
    "Wang_Nan": "Nan_Wang",
    "Shavon_Earp": "Diana_Taurasi",
    "Gabrielle_Rose": "Martha_Bowen",
    "John_Barnett": "John_Burnett",
    # Found among the closest pairs over all 13,233 photos (benchmarks/public_sets.py); twins
    # (Olsen, Mowry, Hentzen) and brothers (George W. and Jeb Bush) stay apart.
    "Sung_Hong_Choi": "Choi_Sung-hong",
    "Noer_Muis": "Noer_Moeis",
    "Glenn_Rivers": "Doc_Rivers",
    "Brian_Williams": "Bison_Dele",  # his name until 1998
    "Yingfan_Wang": "Wang_Yingfan",
    "William_Pryor_Jr": "Bill_Pryor",
    "Talisa_Bratt": "Talisa_Soto",  # her married name
    "Virgina_Ruano_Pascal": "Ruano_Pascual",
}


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


def start_reference() -> None:
    global _reference
    _reference = (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(verified_weight("shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(
            verified_weight("dlib_face_recognition_resnet_model_v1.dat")
        ),
    )


def reference_encode(path: str) -> tuple[bytes, None] | tuple[None, str]:
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


def encode_all(images: Path, names: list[str], pipeline: str, workers: int) -> tuple[dict, float]:
    """Descriptors (or the refusal code) per image name, and images per second over all
    workers."""
    paths = [str(images / name) for name in names]
    start = time.perf_counter()
    if pipeline == REFERENCE:
        with ProcessPoolExecutor(workers, initializer=start_reference) as pool:
            results = list(pool.map(reference_encode, paths, chunksize=16))
    else:
        spec = engine_spec(cast(EngineName, pipeline))
        config = EncoderConfig(engine=spec.name, policy=spec.quality, choice="central")
        with EncoderPool(config, workers) as pool:
            results = [future.result() for future in [pool.submit(p) for p in paths]]
    elapsed = time.perf_counter() - start
    encoded = {
        name: (np.frombuffer(blob, dtype=np.float32) if blob is not None else code)
        for name, (blob, code) in zip(names, results, strict=True)
    }
    return encoded, len(names) / elapsed


Pair = tuple[str, str, bool]


def pair_distance(encoded: dict, a: str, b: str, metric: Metric) -> float:
    """The distance of two images' descriptors; infinite when either has none."""
    x, y = encoded[a], encoded[b]
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
        return np.inf
    return distance(x, y, metric)


def ten_fold(
    folds: list[list[Pair]], encoded: dict, metric: Metric, use: set[str] | None = None
) -> dict:
    """Accuracy over the pairs whose images are both in `use` (all pairs when None); a pair
    whose image has no template gets an infinite distance, a "different" decision."""

    def distances(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [p for p in pairs if use is None or (p[0] in use and p[1] in use)]
        d = np.array([pair_distance(encoded, a, b, metric) for a, b, _ in pairs])
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


def identity(name: str) -> str:
    person = name.split("/")[0]
    return IDENTITY_MERGES.get(person, person)


def impostor_distances(
    encoded: dict, metric: Metric, closest: int = 10
) -> tuple[np.ndarray, int, list[tuple[float, str, str]]]:
    """The distances of every different-person pair of images that both have a template,
    the number of different-person pairs of all the images (the FMR's denominator), and the
    closest such pairs: where LFW's labelling errors show."""
    names = sorted(encoded)
    people = np.array([identity(n) for n in names])
    usable = np.array([isinstance(encoded[n], np.ndarray) for n in names])
    _, counts = np.unique(people, return_counts=True)
    total = len(names) * (len(names) - 1) // 2 - int((counts * (counts - 1) // 2).sum())
    kept = np.array(names)[usable]
    vectors = np.stack([encoded[n] for n in kept]).astype(np.float32)
    who = people[usable]
    found, nearest = [], []
    for start in range(0, len(vectors), 512):
        block = vectors[start : start + 512]
        d = template_distances(block, vectors, metric)
        rows = np.arange(start, start + len(block))[:, None]
        keep = (np.arange(len(vectors))[None, :] > rows) & (who[start : start + 512, None] != who)
        found.append(d[keep])
        rows_kept, cols_kept = np.nonzero(keep)
        values = d[rows_kept, cols_kept]
        for k in np.argsort(values)[:closest]:
            nearest.append(
                (float(values[k]), str(kept[start + rows_kept[k]]), str(kept[cols_kept[k]]))
            )
    return np.concatenate(found), total, sorted(nearest)[:closest]


def fnmr_at_fmr(folds: list[list[Pair]], encoded: dict, metric: Metric) -> dict:
    """FNMR over pairs.txt's same-person pairs at thresholds set for each FMR on every
    different-person pair, with the pairs that could not match counted in the denominator."""
    impostors, total, closest = impostor_distances(encoded, metric)
    impostors.sort()
    genuine = np.array(
        [pair_distance(encoded, a, b, metric) for pairs in folds for a, b, same in pairs if same]
    )
    result = {"impostor_pairs": total, "genuine_pairs": len(genuine), "closest": closest}
    for fmr in FMRS:
        allowed = int(fmr * total)  # impostor pairs that may fall under the threshold
        threshold = float(impostors[allowed]) if allowed < len(impostors) else np.inf
        result[f"{fmr:g}"] = {
            "threshold": threshold,
            "fnmr": float((genuine >= threshold).mean()),
        }
    return result


def table(result: dict) -> str:
    """The side-by-side table, in Markdown."""
    labels = list(result["pipelines"])
    rows = [
        ("model", lambda p: p["model_id"]),
        ("images without a template", lambda p: f"{p['images_without_template']}"),
        (
            "10-fold accuracy, pairs with templates",
            lambda p: (
                f"{p['usable_pairs']['mean_accuracy']:.2%} ± "
                f"{p['usable_pairs']['std_accuracy']:.2%}"
            ),
        ),
        (
            "10-fold accuracy, pairs all can use",
            lambda p: f"{p['common_pairs']['mean_accuracy']:.2%}",
        ),
        ("10-fold accuracy, all pairs", lambda p: f"{p['all_pairs']['mean_accuracy']:.2%}"),
        *(
            (
                f"FNMR at FMR {fmr:g}",
                lambda p, fmr=fmr: f"{p['fnmr_at_fmr'][f'{fmr:g}']['fnmr']:.1%}",
            )
            for fmr in FMRS
        ),
        ("ms per image, one core", lambda p: f"{p['ms_per_image']:.0f}"),
    ]
    lines = ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for title, cell in rows:
        lines.append(
            f"| {title} | " + " | ".join(cell(result["pipelines"][k]) for k in labels) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
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
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    result: dict[str, Any] = {
        "benchmark": "lfw_verify",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "images": len(names),
        "pairs": sum(len(p) for p in folds),
        "folds": len(folds),
        "identity_merges": IDENTITY_MERGES,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "workers": args.workers,
        },
        "pipelines": {},
    }
    encodings, metrics = {}, {}
    for label in [*engines, REFERENCE]:
        encoded, rate = encode_all(args.lfw / "images", names, label, args.workers)
        encodings[label] = encoded
        spec = None if label == REFERENCE else engine_spec(cast(EngineName, label))
        metrics[label] = spec.metric if spec is not None else "l2"
        failures = Counter(v for v in encoded.values() if isinstance(v, str))
        result["pipelines"][label] = {
            "model_id": spec.model_id if spec is not None else "dlib-resnet-v1",
            "metric": metrics[label],
            "images_without_template": sum(failures.values()),
            "failure_codes": dict(failures),
            "images_per_second": rate,
            "ms_per_image": 1000 * args.workers / rate,
        }
    usable = {
        label: {name for name, v in encoded.items() if isinstance(v, np.ndarray)}
        for label, encoded in encodings.items()
    }
    common = set.intersection(*usable.values())
    for label, encoded in encodings.items():
        summary = result["pipelines"][label]
        summary["usable_pairs"] = ten_fold(folds, encoded, metrics[label], usable[label])
        summary["common_pairs"] = ten_fold(folds, encoded, metrics[label], common)
        summary["all_pairs"] = ten_fold(folds, encoded, metrics[label])
        summary["fnmr_at_fmr"] = fnmr_at_fmr(folds, encoded, metrics[label])
        summary["speed_vs_reference"] = (
            summary["images_per_second"] / result["pipelines"][REFERENCE]["images_per_second"]
        )
    result["table"] = table(result)
    print(result["table"])
    for label, summary in result["pipelines"].items():
        print(
            f"{label}: failures {summary['failure_codes']}; "
            f"{summary['speed_vs_reference']:.2f}x the reference's speed"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
