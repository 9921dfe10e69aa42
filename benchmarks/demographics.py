"""False matches per demographic group, on photos the thresholds were not calibrated on.

For each engine's shipped operating point, on the held-out half of UTKFace (gender x race,
one photo per person) and of LFW (its gender lists): every non-mated comparison within a
set, counted by the groups of its two photos. Reported per group: the false-match rate (FMR)
at the operating threshold beside the per-comparison FMR the operating point promises (the
check that the threshold holds out of sample), with two 95 % intervals: Clopper-Pearson over
comparisons, which takes them as independent, and one from resampling people, which does not
(calibration.rates.people_bootstrap); and the same-group and cross-group rates. At FMR 1e-6 a
handful of false matches at most, too few to compare groups, so the groups are also compared
at the thresholds that give an overall FMR of 1e-3 and 1e-4: the ratio of the worst group's
rate to the best's, and a chart. A contact sheet of 24 false matches per set and engine,
drawn at random, lets a person check what they show (benchmarks/results/, not committed).

    python benchmarks/demographics.py [--engine dlib|sface|both] [--out FILE] [--figure FILE]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from public_sets import CACHE, lfw_photos, split, utkface_photos
from runner import run_per_engine

from app.core.composition import encoder, quality_policy
from app.core.settings import Settings
from calibration.calibrate import usable_templates
from calibration.photos import encode
from calibration.rates import Templates, interval, non_mated_pairs, people_bootstrap
from matcher import EngineName, Metric, engine_spec
from matcher.operating_point import load_operating_point, shipped

ROOT = Path(__file__).resolve().parents[1]
SHEETS = ROOT / "benchmarks" / "results"
REFERENCE_FMRS = (1e-3, 1e-4)


def group_counts(templates: Templates, metric: Metric, thresholds: list[float]) -> dict:
    """Non-mated comparisons and false matches under each threshold, per pair of groups."""
    names = sorted(set(templates.groups) - {""})
    code = np.array([names.index(g) if g else -1 for g in templates.groups])
    size = len(names)
    comparisons = np.zeros((size, size), dtype=np.int64)
    matches = np.zeros((len(thresholds), size, size), dtype=np.int64)
    people, person = np.unique(templates.persons, return_inverse=True)
    matched = []  # (photo, photo) per false match under the first threshold
    for distances, rows, columns in non_mated_pairs(templates, metric):
        under_first = distances < thresholds[0]
        matched.append(np.stack([rows[under_first], columns[under_first]], 1))
        a, b = code[rows], code[columns]
        labelled = (a >= 0) & (b >= 0)
        low, high = np.minimum(a, b)[labelled], np.maximum(a, b)[labelled]
        cell = low * size + high
        comparisons += np.bincount(cell, minlength=size * size).reshape(size, size)
        for k, threshold in enumerate(thresholds):
            under = distances[labelled] < threshold
            matches[k] += np.bincount(cell[under], minlength=size * size).reshape(size, size)
    first_photo = np.unique(person, return_index=True)[1]
    photos = np.concatenate(matched)
    return {
        "groups": names,
        "comparisons": comparisons,
        "matches": matches,
        "photos_per_person": np.bincount(person, minlength=len(people)),
        "person_group": code[first_photo],
        "matched_photos": photos,
        "matched_people": person[photos],
    }


def per_group(counts: dict, k: int) -> dict:
    """FMR per group (comparisons with a photo of the group), same-group and cross-group."""
    names, comparisons, matches = counts["groups"], counts["comparisons"], counts["matches"][k]
    result: dict[str, dict[str, Any]] = {}
    for g, name in enumerate(names):
        involved = np.zeros_like(comparisons, dtype=bool)
        involved[g, :] = involved[:, g] = True
        trials, errors = int(comparisons[involved].sum()), int(matches[involved].sum())
        same_trials, same_errors = int(comparisons[g, g]), int(matches[g, g])
        result[name] = {
            "comparisons": trials,
            "false_matches": errors,
            "fmr": errors / trials,
            "fmr_interval": list(interval(errors, trials)),
            "same_group_fmr": same_errors / same_trials if same_trials else None,
            "cross_group_fmr": (errors - same_errors) / (trials - same_trials),
        }
    same = np.trace(matches) / max(np.trace(comparisons), 1)
    cross = (matches.sum() - np.trace(matches)) / max(comparisons.sum() - np.trace(comparisons), 1)
    rates = [g["fmr"] for g in result.values()]
    return {
        "groups": result,
        "same_group_fmr": float(same),
        "cross_group_fmr": float(cross),
        "worst_to_best": max(rates) / min(rates) if min(rates) > 0 else None,
    }


def reference_thresholds(templates: Templates, metric: Metric) -> list[float]:
    """Thresholds giving overall FMRs of REFERENCE_FMRS in this set."""
    everything = np.concatenate([d for d, _, _ in non_mated_pairs(templates, metric)])
    return [
        float(np.partition(everything, int(f * everything.size))[int(f * everything.size)])
        for f in REFERENCE_FMRS
    ]


def measure(engine: EngineName, workers: int) -> dict:
    spec = engine_spec(engine)
    settings = Settings(engine=engine)
    point, digest = load_operating_point(shipped(engine))
    result: dict[str, Any] = {
        "model_id": spec.model_id,
        "operating_point_sha256": digest,
        "threshold": point.threshold,
        "promised_fmr": point.fmr,
        "gallery_size": point.gallery_size,
        "sets": {},
    }
    for name, photos in (("utkface", utkface_photos()), ("lfw", lfw_photos())):
        held_out = split(photos, "held-out")
        encoded = encode(held_out, encoder(settings, "central"), workers, CACHE)
        templates = usable_templates(name, encoded, quality_policy(settings))
        references = reference_thresholds(templates, spec.metric)
        counts = group_counts(templates, spec.metric, [point.threshold, *references])
        at_point = per_group(counts, 0)
        for g, group in enumerate(at_point["groups"].values()):
            group["people_interval"] = people_bootstrap(
                counts["photos_per_person"],
                counts["person_group"] == g,
                counts["matched_people"],
            )
            # The promise holds when the measured rate is consistent with it.
            group["holds"] = group["people_interval"][0] <= point.fmr
        result["sets"][name] = {
            "photos": len(held_out),
            "templates": len(templates.vectors),
            "at_operating_point": at_point,
            **{
                f"at_overall_fmr_{fmr:g}": {"threshold": t, **per_group(counts, k + 1)}
                for k, (fmr, t) in enumerate(zip(REFERENCE_FMRS, references, strict=True))
            },
        }
        paths = [p.path for p, ok in zip(held_out, encoded.usable(quality_policy(settings))) if ok]
        contact_sheet(
            paths, counts["matched_photos"], SHEETS / f"false-matches-{engine}-{name}.png"
        )
        print(
            f"{engine} {name}: at the operating point, same-group FMR "
            f"{at_point['same_group_fmr']:.2g}, cross-group {at_point['cross_group_fmr']:.2g}",
            flush=True,
        )
    return result


def contact_sheet(paths: list[Path], matched: np.ndarray, target: Path, count: int = 24) -> None:
    """Photos of `count` false matches drawn at random, side by side, for a person to look at:
    the check that a "false match" is not the same person under two labels. Written beside
    the results, never into the repository: the photos are the data set's."""
    rng = np.random.default_rng(0)
    chosen = matched[rng.choice(len(matched), min(count, len(matched)), replace=False)]
    side = 100
    sheet = Image.new("RGB", (4 * side, side * ((len(chosen) + 1) // 2)), "white")
    for k, (a, b) in enumerate(chosen):
        for offset, row in enumerate((a, b)):
            with Image.open(paths[row]) as photo:
                face = photo.convert("RGB").resize((side, side))
            sheet.paste(face, ((k % 2) * 2 * side + offset * side, (k // 2) * side))
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)


def table(result: dict) -> str:
    lines = [
        "| engine | set | group | FMR at the operating point | 95 % interval, comparisons "
        "/ people resampled | promised | holds | FMR at the overall-"
        f"{REFERENCE_FMRS[0]:g} threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine in result["engines"].values():
        for name, measured in engine["sets"].items():
            at_point = measured["at_operating_point"]["groups"]
            reference = measured[f"at_overall_fmr_{REFERENCE_FMRS[0]:g}"]
            for group, rates in at_point.items():
                low, high = rates["fmr_interval"]
                people_low, people_high = rates["people_interval"]
                lines.append(
                    f"| {engine['model_id']} | {name} | {group} | {rates['fmr']:.1e} "
                    f"({rates['false_matches']} of {rates['comparisons']:,}) | "
                    f"{low:.0e} to {high:.0e} / {people_low:.0e} to {people_high:.0e} | "
                    f"{engine['promised_fmr']:.1e} | {'yes' if rates['holds'] else 'no'} | "
                    f"{reference['groups'][group]['fmr']:.1e} |"
                )
            lines.append(
                f"| | {name} | worst / best at overall {REFERENCE_FMRS[0]:g} | | | | | "
                f"{reference['worst_to_best']:.1f}x |"
            )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = f"at_overall_fmr_{REFERENCE_FMRS[0]:g}"
    engines = list(result["engines"].values())
    sets = list(engines[0]["sets"])
    figure, axes = plt.subplots(1, len(sets), figsize=(11, 4.5), dpi=120, squeeze=False)
    for column, name in enumerate(sets):
        ax = axes[0, column]
        groups = list(engines[0]["sets"][name][key]["groups"])
        width = 0.8 / len(engines)
        for e, engine in enumerate(engines):
            rates = [engine["sets"][name][key]["groups"][g]["fmr"] for g in groups]
            ax.bar(np.arange(len(groups)) + e * width, rates, width, label=engine["model_id"])
        ax.axhline(REFERENCE_FMRS[0], color="grey", linewidth=0.7, linestyle=":")
        ax.set_xticks(np.arange(len(groups)) + width * (len(engines) - 1) / 2)
        ax.set_xticklabels(groups, rotation=45, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(f"{name}, held out: FMR per group at overall FMR {REFERENCE_FMRS[0]:g}")
        ax.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


if __name__ == "__main__":
    run_per_engine("demographics", __doc__.split("\n\n")[0], measure, table, plot)
