"""Open-set 1:N identification on LFW, each engine through the service's own pipeline and
FAISS index, beside the reference face_recognition pipeline at its fixed tolerance of 0.6;
then per photo condition, LFW's held-out people and CelebA's in-the-wild photos, each kind of
gallery template and the shipped operating point (calibration/check.py's protocol).

The protocol is benchmarks/openset.py's. Reported per pipeline: FNIR at FPIR 10 %, 1 %,
0.3 % and 0.1 % with the threshold at each, rank-1 and rank-5 hit rates, failures to enrol,
FPIR and FNIR at the shipped operating point and (the peer) at 0.6, what the ambiguity
margin buys, and the DET curves (FNIR against FPIR, log axes) as a PNG. Then the gallery is
extended with synthetic identities (benchmarks/synthetic.py) to show how the threshold for a
fixed FPIR moves with the number of people enrolled.

    python benchmarks/identify.py [--engine dlib|sface|both] [--sizes 10000,100000,1000000]
        [--out FILE] [--figure FILE] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import faiss
import numpy as np
import synthetic
from lfw_verify import REFERENCE, encode_all
from openset import (
    FPIRS,
    Protocol,
    Searches,
    fnir,
    fpir,
    lfw_encoded,
    protocol,
    quality_policy,
    run_searches,
    threshold_at,
)
from public_sets import CACHE, DATASETS, celeba_photos, lfw_photos, split
from runner import write

from app.core.composition import encoder
from app.core.settings import Settings
from calibration.calibrate import calibrate
from calibration.check import check_point, fnir_at_fpir, search_set
from calibration.photos import Encoded, encode
from index.metrics import FAISS_METRIC, from_scores
from matcher import ENGINES, EngineName, GalleryTemplates, MatchRule, Metric, engine_spec
from matcher.operating_point import load_operating_point, shipped

ROOT = Path(__file__).resolve().parents[1]
PEER_TOLERANCE = 0.6
MARGINS = {"l2": (0.0, 0.01, 0.02, 0.04, 0.08), "cosine": (0.0, 0.01, 0.02, 0.04, 0.08)}
CANDIDATES = Settings().max_candidates
PARTS = ("calibration", "held-out")


def reference_encoded(encoded: Encoded, workers: int) -> Encoded:
    """The reference pipeline's descriptors of the same photos (cached; it has no quality
    measures, and no quality gate)."""
    images = DATASETS / "lfw" / "images"
    names = [str(p.path.relative_to(images)) for p in encoded.photos]
    key = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    cache = CACHE / f"reference-{key}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            descriptors, codes = saved["descriptors"], saved["codes"].tolist()
    else:
        found, _ = encode_all(images, names, REFERENCE, workers)
        descriptors = np.zeros((len(names), 128), dtype=np.float32)
        codes = []
        for i, name in enumerate(names):
            value = found[name]
            codes.append("" if isinstance(value, np.ndarray) else value)
            if isinstance(value, np.ndarray):
                descriptors[i] = value
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, descriptors=descriptors, codes=np.array(codes))
    return Encoded(encoded.photos, descriptors, codes, np.full((len(names), 6), np.nan))


def det_curve(searches: Searches) -> dict:
    """FPIR and FNIR at every threshold where FPIR changes."""
    nearest = np.sort(searches.non_mated_distances[:, 0])
    thresholds = np.unique(nearest[np.isfinite(nearest)])
    listed = np.sort(searches.mate_distance[searches.mate_rank <= CANDIDATES])
    return {
        "threshold": thresholds.tolist(),
        "fpir": (np.searchsorted(nearest, thresholds) / len(nearest)).tolist(),
        "fnir": (1 - np.searchsorted(listed, thresholds) / len(searches.mate_rank)).tolist(),
    }


def with_margin(searches: Searches, margin: float) -> Searches:
    """The searches as the margin rule leaves them: a search whose nearest person is within
    `margin` of the next is ambiguous and returns nobody."""
    with np.errstate(invalid="ignore"):  # refused probes: inf - inf
        mated_ambiguous = np.diff(searches.mated_distances[:, :2], axis=1)[:, 0] < margin
        non_mated_ambiguous = np.diff(searches.non_mated_distances[:, :2], axis=1)[:, 0] < margin
    dropped_non_mated = searches.non_mated_distances.copy()
    dropped_non_mated[non_mated_ambiguous] = np.inf
    dropped_mated = searches.mated_distances.copy()
    dropped_mated[mated_ambiguous] = np.inf
    return Searches(
        dropped_mated,
        searches.mate_rank,
        np.where(mated_ambiguous, np.inf, searches.mate_distance),
        dropped_non_mated,
    )


def margin_table(searches: Searches, metric: Metric) -> list[dict]:
    """FNIR at each FPIR with and without the margin rule (thresholds re-chosen each time),
    and FPIR and FNIR at the no-margin threshold for FPIR 0.1 %."""
    fixed = threshold_at(searches, 0.001)
    rows = []
    for margin in MARGINS[metric]:
        ruled = with_margin(searches, margin)
        rows.append(
            {
                "margin": margin,
                "fnir_at_fpir": {
                    f"{target:g}": fnir(ruled, threshold_at(ruled, target), CANDIDATES)
                    for target in FPIRS
                },
                "at_fixed_threshold": {
                    "threshold": fixed,
                    "fpir": fpir(ruled, fixed),
                    "fnir": fnir(ruled, fixed, CANDIDATES),
                },
            }
        )
    return rows


def evaluate(encoded: Encoded, usable: np.ndarray, metric: Metric) -> tuple:
    proto = protocol(encoded, usable)
    searches = run_searches(encoded, usable, proto, metric)
    summary: dict[str, Any] = {
        "gallery_people": len(proto.gallery),
        "failed_to_enrol": proto.failed_to_enrol,
        "mated_probes": len(proto.mated),
        "non_mated_probes": len(proto.non_mated),
        "mated_probes_refused": int((~usable[proto.mated]).sum()),
        "non_mated_probes_refused": int((~usable[proto.non_mated]).sum()),
        "rank_1": float((searches.mate_rank <= 1).mean()),
        "rank_5": float((searches.mate_rank <= 5).mean()),
        "candidates": CANDIDATES,
        "at_fpir": {},
    }
    for target in FPIRS:
        threshold = threshold_at(searches, target)
        summary["at_fpir"][f"{target:g}"] = {
            "threshold": threshold,
            "fpir": fpir(searches, threshold),
            "fnir": fnir(searches, threshold, CANDIDATES),
        }
    summary["det"] = det_curve(searches)
    summary["margin"] = margin_table(searches, metric)
    return proto, searches, summary


def at_threshold(searches: Searches, threshold: float) -> dict:
    return {
        "threshold": threshold,
        "fpir": fpir(searches, threshold),
        "fnir": fnir(searches, threshold, CANDIDATES),
    }


def scaling(
    encoded: Encoded,
    usable: np.ndarray,
    proto: Protocol,
    searches: Searches,
    metric: Metric,
    sizes: list[int],
) -> dict:
    """Thresholds at FPIR 1 % and 0.1 % as synthetic people extend the gallery, and the
    model's check: a synthetic gallery as large as the real one, on the same probes."""
    gallery_people = np.isin(np.arange(len(usable)), proto.gallery) | np.isin(
        np.arange(len(usable)), proto.mated
    )
    fit_rows = np.flatnonzero(gallery_people & usable)
    model = synthetic.fit(encoded.descriptors[fit_rows], encoded.persons[fit_rows], metric)
    rng = np.random.default_rng(20261121)
    vectors = encoded.descriptors
    real = len(proto.gallery)
    own = _synthetic_nearest(model, real, rng, vectors[proto.non_mated], metric)
    own = np.where(usable[proto.non_mated], own, np.inf)
    result: dict = {
        "real_gallery": real,
        "model": synthetic.__doc__,
        "synthetic_only_check": {
            f"{target:g}": {
                "real_threshold": threshold_at(searches, target),
                "synthetic_threshold": float(np.sort(own)[int(target * len(own))]),
            }
            for target in (0.1, 0.01)
        },
    }
    rows = []
    for size in sizes:
        extra = size - real
        if extra <= 0:
            continue
        non_mated_synth = _synthetic_nearest(model, extra, rng, vectors[proto.non_mated], metric)
        mated_synth = _synthetic_nearest(
            model, extra, rng, vectors[proto.mated], metric, k=CANDIDATES
        )
        nearest = np.minimum(searches.non_mated_distances[:, 0], non_mated_synth)
        nearest = np.where(usable[proto.non_mated], nearest, np.inf)
        outranked = (mated_synth < searches.mate_distance[:, None]).sum(axis=1)
        rank = searches.mate_rank + outranked
        at_fpir: dict[str, dict[str, float]] = {}
        row = {"gallery_size": size, "at_fpir": at_fpir}
        for target in (0.01, 0.001):
            threshold = float(np.sort(nearest)[int(target * len(nearest))])
            hit = (rank <= CANDIDATES) & (searches.mate_distance < threshold)
            at_fpir[f"{target:g}"] = {"threshold": threshold, "fnir": float(1 - hit.mean())}
        rows.append(row)
        print(f"  synthetic gallery of {size:,}: {row['at_fpir']}", flush=True)
    result["sizes"] = rows
    return result


def _synthetic_nearest(
    model: synthetic.IdentityModel,
    people: int,
    rng: np.random.Generator,
    probes: np.ndarray,
    metric: Metric,
    k: int = 1,
) -> np.ndarray:
    """The k smallest distances from each probe to `people` synthetic identities."""
    index = faiss.IndexFlat(probes.shape[1], FAISS_METRIC[metric])
    for start in range(0, people, 100_000):
        index.add(model.templates(min(100_000, people - start), rng))
    scores, _ = index.search(np.ascontiguousarray(probes, dtype=np.float32), k)
    distances = from_scores(scores, metric)
    return distances if k > 1 else distances[:, 0]


def conditions(engine: EngineName, workers: int) -> dict:
    """Per photo condition (LFW's held-out people; CelebA's in-the-wild photos), each kind
    of gallery template at equal FPIR, and the shipped operating point checked as
    `facematch calibrate --check` checks it (calibration/check.py's protocol)."""
    spec = engine_spec(engine)
    settings = Settings(engine=engine)
    policy = quality_policy(engine)
    point, _ = load_operating_point(shipped(engine))
    rule = MatchRule(point.threshold, CANDIDATES, settings.match_margin)
    sets = {"lfw-held-out": split(lfw_photos(), "held-out"), "celeba": celeba_photos()}
    found: dict = {}
    for name, photos in sets.items():
        encoded = encode(photos, encoder(settings, "central"), workers, CACHE)
        row: dict = {}
        # One measurement of quality-weighted fusion: each photo weighted by the distance
        # between its eyes, the resolution the face was taken at.
        arms: dict[str, tuple[GalleryTemplates, np.ndarray | None]] = {
            "person": ("person", None),
            "photo": ("photo", None),
            "person, weighted by eye distance": ("person", encoded.quality[:, 2]),
        }
        for title, (kind, weights) in arms.items():
            searched = search_set(encoded, policy, spec.metric, rule, kind, weights)
            arm: dict = {
                "people_enrolled": len(searched.gallery.persons),
                "mated_searches": len(searched.mate),
                "non_mated_searches": len(searched.non_mated_nearest),
                "refused": searched.refused,
                "rank_1": float((searched.mate_rank == 1).mean()),
                "at_fpir": {},
            }
            for target in (0.01, 0.001):
                threshold, fnir_there = fnir_at_fpir(searched, target, CANDIDATES)
                arm["at_fpir"][f"{target:g}"] = {
                    "threshold": threshold,
                    "fnir": fnir_there.model_dump(),
                }
            row[title] = arm
        checked = check_point(encoded, point, policy, rule, by_group=True)
        row["operating_point"] = checked.model_dump(mode="json")
        found[name] = row
        print(f"{engine} {name}: FNIR at the operating point {checked.fnir}", flush=True)
    return found


def calibrated_kinds(engine: EngineName, workers: int) -> list[dict]:
    """Each kind of template calibrated by the shipped recipe (FPIR 0.1 % for every gender,
    at the largest gallery the photos support) on one half of LFW's people, and checked on
    the other half and on CelebA; both ways round, since the threshold rests on the few
    closest comparisons of whichever people the calibration half holds."""
    settings = Settings(engine=engine)
    spec, policy = engine_spec(engine), quality_policy(engine)
    config = encoder(settings, "central")
    halves = {part: encode(split(lfw_photos(), part), config, workers, CACHE) for part in PARTS}
    celeba = encode(celeba_photos(), config, workers, CACHE)
    rows = []
    for kind in get_args(GalleryTemplates):
        for calibrated_on, checked_on in (PARTS, PARTS[::-1]):
            point = calibrate(
                {f"lfw-{calibrated_on}": halves[calibrated_on]},
                spec,
                policy,
                0.001,
                by_group=True,
                kind=kind,
            )
            rule = MatchRule(point.threshold, CANDIDATES, settings.match_margin)
            checks = {
                f"lfw-{checked_on}": check_point(halves[checked_on], point, policy, rule),
                "celeba": check_point(celeba, point, policy, rule),
            }
            rows.append(
                {
                    "templates": kind,
                    "calibrated_on": f"lfw-{calibrated_on}",
                    "threshold": point.threshold,
                    "gallery_size": point.gallery_size,
                    "binding_group": point.binding_group,
                    "fnir": {name: c.fnir.model_dump() for name, c in checks.items()},
                }
            )
    return rows


def conditions_table(result: dict) -> str:
    lines = [
        "| engine, photos | templates | rank-1 | FNIR at FPIR 1 % | FNIR at FPIR 0.1 % "
        "| probes refused |",
        "|---|---|---|---|---|---|",
    ]
    for engine, sets in result.get("conditions", {}).items():
        for name, row in sets.items():
            for title, arm in row.items():
                if title == "operating_point":
                    continue
                cells = [f"{engine}, {name}", title, f"{arm['rank_1']:.1%}"]
                for target in ("0.01", "0.001"):
                    rate = arm["at_fpir"][target]["fnir"]
                    cells.append(f"{rate['value']:.1%} [{rate['low']:.1%}, {rate['high']:.1%}]")
                searches = arm["mated_searches"] + arm["non_mated_searches"]
                cells.append(f"{sum(arm['refused'].values())} of {searches}")
                lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| engine | templates | calibrated on | threshold (people) | FNIR on the other half "
        "| FNIR on CelebA |",
        "|---|---|---|---|---|---|",
    ]
    for engine, rows in result.get("calibrated_kinds", {}).items():
        for row in rows:
            other, celeba = (
                row["fnir"][name] for name in sorted(row["fnir"], key=lambda n: n == "celeba")
            )
            lines.append(
                f"| {engine} | {row['templates']} | {row['calibrated_on']} "
                f"| {row['threshold']:.3f} ({row['gallery_size']:,}) "
                f"| {other['value']:.1%} [{other['low']:.1%}, {other['high']:.1%}] "
                f"| {celeba['value']:.1%} [{celeba['low']:.1%}, {celeba['high']:.1%}] |"
            )
    lines += [
        "",
        "| engine, photos | FNIR at the operating point | FPIR at its gallery size | rank-1 |",
        "|---|---|---|---|",
    ]
    for engine, sets in result.get("conditions", {}).items():
        for name, row in sets.items():
            point = row["operating_point"]
            fnir, fpir = point["fnir"], point["fpir"]
            lines.append(
                f"| {engine}, {name} | {fnir['value']:.1%} [{fnir['low']:.1%}, {fnir['high']:.1%}] "
                f"| {fpir['value']:.2%} [{fpir['low']:.2%}, {fpir['high']:.2%}] "
                f"| {point['rank_1']:.1%} |"
            )
    return "\n".join(lines)


def table(result: dict) -> str:
    labels = list(result["pipelines"])
    rows = [
        ("failures to enrol", lambda p: f"{p['failed_to_enrol']} of {p['gallery_people']}"),
        (
            "probes refused (mated / non-mated)",
            lambda p: f"{p['mated_probes_refused']} / {p['non_mated_probes_refused']}",
        ),
        ("rank-1 / rank-5", lambda p: f"{p['rank_1']:.1%} / {p['rank_5']:.1%}"),
        *(
            (
                f"FNIR at FPIR {target:g} (threshold)",
                lambda p, t=f"{target:g}": (
                    f"{p['at_fpir'][t]['fnir']:.1%} ({p['at_fpir'][t]['threshold']:.3f})"
                ),
            )
            for target in FPIRS
        ),
        (
            "FPIR / FNIR at the operating point (threshold)",
            lambda p: (
                f"{p['operating_point']['fpir']:.2%} / {p['operating_point']['fnir']:.1%} "
                f"({p['operating_point']['threshold']:.3f})"
                if "operating_point" in p
                else "-"
            ),
        ),
    ]
    lines = ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for title, cell in rows:
        lines.append(
            f"| {title} | " + " | ".join(cell(result["pipelines"][k]) for k in labels) + " |"
        )
    return "\n".join(lines) + "\n\n" + conditions_table(result)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5), dpi=120)
    for label, summary in result["pipelines"].items():
        det = summary["det"]
        line = axes.plot(det["fpir"], det["fnir"], label=label)[0]
        point = summary.get("operating_point")
        if point:
            axes.plot(point["fpir"], point["fnir"], "o", color=line.get_color())
    for target in FPIRS:
        axes.axvline(target, color="grey", linewidth=0.5, linestyle=":")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(1e-3 / 2, 1)
    axes.set_xlabel("FPIR: searches for someone not enrolled that return a candidate")
    axes.set_ylabel(f"FNIR: enrolled people not among the top {CANDIDATES}")
    enrolled = next(iter(result["pipelines"].values()))["gallery_people"]
    axes.set_title(f"LFW open-set 1:N, {enrolled:,} people enrolled; dots: operating points")
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "identify.json"
    )
    parser.add_argument("--figure", type=Path, default=ROOT / "benchmarks" / "results" / "det.png")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    result: dict = {
        "benchmark": "identify",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "pipelines": {},
        "scaling": {},
        "conditions": {},
        "calibrated_kinds": {},
    }
    reference_source = None
    for engine in engines:
        spec = engine_spec(engine)
        encoded = lfw_encoded(engine, args.workers)
        reference_source = encoded
        usable = encoded.usable(quality_policy(engine))
        proto, searches, summary = evaluate(encoded, usable, spec.metric)
        point, _ = load_operating_point(shipped(engine))
        # As the service decides: the threshold and the engine's margin.
        ruled = with_margin(searches, spec.margin)
        summary["operating_point"] = at_threshold(ruled, point.threshold)
        summary["operating_point"]["margin"] = spec.margin
        result["pipelines"][spec.model_id] = summary
        print(f"{engine}: scaling the gallery", flush=True)
        result["scaling"][spec.model_id] = scaling(
            encoded, usable, proto, searches, spec.metric, sizes
        )
        result["conditions"][spec.model_id] = conditions(engine, args.workers)
        result["calibrated_kinds"][spec.model_id] = calibrated_kinds(engine, args.workers)
    assert reference_source is not None
    reference = reference_encoded(reference_source, args.workers)
    usable = np.array([code == "" for code in reference.codes])
    _, searches, summary = evaluate(reference, usable, "l2")
    summary["operating_point"] = at_threshold(searches, PEER_TOLERANCE)
    result["pipelines"]["face_recognition 0.6 (peer)"] = summary
    write(result, table, args.out)
    plot(result, args.figure)
    print(f"and {args.figure}")


if __name__ == "__main__":
    main()
