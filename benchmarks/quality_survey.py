"""How the quality measures are spread over LFW, and what the default policy refuses there.

The defaults of `matcher.quality.QualityPolicy` are meant to refuse almost none of LFW's
ordinary press photos; this survey is the evidence. Faces are measured with every quality
rule switched off (the face nearest the centre, as LFW centres its subject).

    python benchmarks/quality_survey.py [--engine dlib|sface|both] [--lfw ../shared/datasets/lfw]
        [--sample 1500] [--seed 1]

Each engine is measured against its own default policy (EngineSpec.quality): the measures
depend on its landmarks and its aligned crop.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np

from matcher import ENGINES, EngineName, FaceRefusal, Matcher, Quality, QualityPolicy, load_engine
from matcher.quality import check

ROOT = Path(__file__).resolve().parents[1]
MEASURES = ("inter_eye_px", "in_frame", "sharpness", "yaw_deg")
PERCENTILES = (0, 0.5, 1, 5, 50, 95, 99, 99.5, 100)


def survey(engine_name: EngineName, photos: list[Path]) -> dict:
    engine = load_engine(engine_name)
    measure_all = Matcher(engine, policy=QualityPolicy(0, 0, 0, 90))
    default = engine.spec.quality
    qualities: list[Quality] = []
    not_measured: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for photo in photos:
        try:
            quality = measure_all.encode(photo.read_bytes(), choice="central").quality
        except FaceRefusal as refusal:
            not_measured[refusal.code] += 1
            continue
        qualities.append(quality)
        try:
            check(quality, default)
        except FaceRefusal as refusal:
            refused[refusal.code] += 1
    return {
        "engine": engine_name,
        "model_id": engine.spec.model_id,
        "measured": len(qualities),
        "not_measured": dict(not_measured),
        "default_policy": vars(default),
        "refused_by_default_policy": dict(refused),
        "percentiles": {
            measure: dict(
                zip(
                    [str(p) for p in PERCENTILES],
                    np.percentile([getattr(q, measure) for q in qualities], PERCENTILES)
                    .round(2)
                    .tolist(),
                    strict=True,
                )
            )
            for measure in MEASURES
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--sample", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "quality_survey.json"
    )
    args = parser.parse_args()

    photos = sorted((args.lfw / "images").glob("*/*.jpg"))
    photos = random.Random(args.seed).sample(photos, min(args.sample, len(photos)))
    names = list(ENGINES) if args.engine == "both" else [args.engine]
    results = [survey(name, photos) for name in names]
    for result in results:
        print(
            f"{result['engine']}: {len(photos)} LFW photos, {result['measured']} measured; "
            f"no usable face: {result['not_measured']}"
        )
        for measure, values in result["percentiles"].items():
            print(f"  {measure:13s} " + "  ".join(f"p{p}={v}" for p, v in values.items()))
        print(
            f"  refused by its default policy {result['default_policy']}: "
            f"{result['refused_by_default_policy']} of {result['measured']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "quality_survey", "photos": len(photos), "seed": args.seed}
    args.out.write_text(json.dumps(report | {"engines": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
