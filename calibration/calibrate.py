"""Choosing the threshold from labelled photos: the operating point for a target FPIR at a
gallery size, held by every group when asked, and refused when the data cannot show it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import numpy as np

from calibration.photos import Encoded, Photo
from calibration.rates import (
    ALL,
    NonMated,
    Tail,
    Templates,
    closest_non_mated,
    fit_tail,
    fmr_for,
    mated,
    non_mated,
)
from matcher import EngineSpec, GalleryTemplates, Metric, QualityPolicy
from matcher.operating_point import Estimate, GroupMeasure, OperatingPoint

# Gallery sizes whose modelled thresholds every operating point lists: up to a state's
# licence and ID-card holders.
MODELLED_SIZES = (10_000, 100_000, 1_000_000, 8_000_000)
# Non-mated comparisons a group needs before its tail can be fitted at all.
MIN_TAIL_POINTS = 100


class CalibrationRefused(ValueError):
    """The data cannot support the operating point asked for."""


def usable_templates(name: str, encoded: Encoded, policy: QualityPolicy) -> Templates:
    keep = encoded.usable(policy)
    return Templates(name, encoded.descriptors[keep], encoded.persons[keep], encoded.groups[keep])


def pairs_to_review(
    sets: dict[str, Encoded], metric: Metric, policy: QualityPolicy, count: int = 50
) -> list[tuple[float, Photo, Photo]]:
    """The closest non-mated pairs over all sets, for a person to look at before trusting
    the threshold: each one that shows one person is a labelling error to correct."""
    found = []
    for name, encoded in sets.items():
        photos = [p for p, ok in zip(encoded.photos, encoded.usable(policy)) if ok]
        templates = usable_templates(name, encoded, policy)
        found += [
            (d, photos[a], photos[b]) for d, a, b in closest_non_mated(templates, metric, count)
        ]
    return sorted(found, key=lambda pair: pair[0])[:count]


def calibrate(
    sets: dict[str, Encoded],
    spec: EngineSpec,
    policy: QualityPolicy,
    target_fpir: float,
    gallery_size: int | None = None,
    by_group: bool = False,
    extrapolate: bool = False,
    kind: GalleryTemplates = "photo",
) -> OperatingPoint:
    """The largest threshold that keeps FPIR at or under `target_fpir` in a gallery of
    `gallery_size` people (by default the largest the data support), for every group in
    the data when `by_group`, else over all comparisons.

    Refuses a gallery size the data cannot support (fewer than 3 / FMR non-mated comparisons
    in some group) unless `extrapolate`, when the threshold of each group short of data comes
    from its tail model (calibration.rates.Tail), and the point says so.

    `kind` is what the gallery searched holds: comparisons are made against person templates
    (calibration.rates.enrolled) or photo templates, as the index will make them.
    """
    templates = [usable_templates(name, encoded, policy) for name, encoded in sets.items()]
    rates = non_mated(templates, spec.metric, kind)
    groups = sorted(g for g in rates.comparisons if g != ALL) if by_group else [ALL]
    if not groups:
        raise CalibrationRefused("--by-group needs photos with a group label.")
    supported = min(rates.supported_gallery_size(g, target_fpir) for g in groups)
    short = min(groups, key=lambda g: rates.comparisons[g])
    size = gallery_size or supported
    if size < 1:
        raise CalibrationRefused(
            f"The photos cannot show FPIR {target_fpir:g} even with one person enrolled: that "
            f"needs {3 / target_fpir:,.0f} non-mated comparisons in every group, and group "
            f"{short!r} has {rates.comparisons[short]:,}. Add photos, or pass --gallery-size "
            f"and --extrapolate to use the stated tail model ({Tail.MODEL})."
        )
    if size > supported and not extrapolate:
        raise CalibrationRefused(
            f"The photos support FPIR {target_fpir:g} for a gallery of at most {supported:,} "
            f"people: a gallery of {size:,} needs a false-match rate of "
            f"{fmr_for(target_fpir, size):.2g} per comparison, which only "
            f"{3 / fmr_for(target_fpir, size):,.0f} non-mated comparisons can show, and group "
            f"{short!r} has {rates.comparisons[short]:,}. Add photos, or pass --extrapolate "
            f"to use the stated tail model ({Tail.MODEL})."
        )
    if any(len(rates.lowest[g]) < MIN_TAIL_POINTS for g in groups):
        raise CalibrationRefused(
            f"Group {short!r} has {rates.comparisons[short]:,} non-mated comparisons; at least "
            f"{MIN_TAIL_POINTS} per group are needed. Add photos."
        )
    fmr = fmr_for(target_fpir, size)
    tails = {g: fit_tail(rates.lowest[g], rates.comparisons[g]) for g in groups}
    measures = {g: _group_measure(rates, tails[g], g, target_fpir, size, fmr) for g in groups}
    binding = min(groups, key=lambda g: measures[g].threshold)
    threshold = measures[binding].threshold
    if threshold <= 0:
        raise CalibrationRefused(
            f"The tail model puts the threshold for {size:,} people at {threshold:.3f}: no "
            f"threshold holds FPIR {target_fpir:g} in a gallery that large."
        )
    genuine = mated(templates, spec.metric, kind)
    larger = {}
    for n in MODELLED_SIZES:
        if n > supported:
            estimate = min(tails[g].threshold(fmr_for(target_fpir, n)) for g in groups)
            larger[n] = Estimate(threshold=estimate, fnir=_missed(genuine, estimate))
    return OperatingPoint(
        model_id=spec.model_id,
        metric=spec.metric,
        gallery_templates=kind,
        threshold=threshold,
        target_fpir=target_fpir,
        gallery_size=size,
        fmr=fmr,
        supported_gallery_size=supported,
        modelled=size > supported,
        model=Tail.MODEL if size > supported else None,
        by_group=by_group,
        binding_group=binding,
        groups=measures,
        data_sets=sorted(sets),
        photos=sum(len(e.photos) for e in sets.values()),
        photos_with_template=sum(len(t.vectors) for t in templates),
        non_mated_comparisons=rates.comparisons[ALL],
        mated_comparisons=len(genuine),
        fnir=_missed(genuine, threshold),
        quality_policy=asdict(policy),
        modelled_for_larger_galleries=larger,
        date=datetime.now(UTC).replace(microsecond=0),
    )


def _missed(genuine: np.ndarray, threshold: float) -> float:
    return float((genuine >= threshold).mean()) if len(genuine) else 1.0


def _group_measure(
    rates: NonMated, tail: Tail, group: str, target_fpir: float, size: int, fmr: float
) -> GroupMeasure:
    supported = rates.supported_gallery_size(group, target_fpir)
    threshold = rates.threshold(group, fmr) if size <= supported else tail.threshold(fmr)
    return GroupMeasure(
        comparisons=rates.comparisons[group],
        supported_gallery_size=supported,
        threshold=threshold,
        modelled=size > supported,
    )
