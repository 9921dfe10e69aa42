"""An independent tester's labelled photos measured at an operating point (RCW 43.386.050): for
each subpopulation label the tester gave, and each of its values, the rates and the score
distributions a tester needs to judge accuracy and differences between groups.

The searches are those `facematch calibrate --check` runs (calibration.check): half the
people enrolled as the index holds them, searched with their other photos and with every
photo of the other half, through the service's FAISS index, quality gate and decision rule.
Per comparison too: a mated comparison is an enrolled person's other photo against them
(FNMR: at or past the threshold, a refused photo counted as one), a non-mated one a
stranger's photo against an enrolled person (FMR: under the threshold), both with
Clopper-Pearson intervals. The distances behind them, binned, draw the DET curves.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pydantic import BaseModel, ConfigDict

from calibration.check import Searched, checked, false_positive_rate, search_set
from calibration.photos import Encoded, Photo
from calibration.rates import interval
from matcher import MatchRule, QualityPolicy
from matcher.operating_point import GroupCheck, OperatingPoint

# Distances binned from 0 to 2 (cosine distance's range; dlib's Euclidean ones fall inside).
SCORE_EDGES = np.round(np.linspace(0.0, 2.0, 201), 3)


class Comparisons(BaseModel):
    """Errors among comparisons at the threshold, with the 95 % Clopper-Pearson interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    errors: int
    comparisons: int
    rate: float | None  # None: no comparison
    low: float
    high: float


class Scores(BaseModel):
    """Distances binned by the evaluation's `score_edges` (a bin holds [edge, next edge)):
    each mated search's
    distance to its own person, each non-mated search's to its nearest person. A DET curve
    at threshold t is the share of mated below t against the share of non-mated below t
    (identification: the FPIR of this set's own searches, at this set's gallery size)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mated: list[int]
    non_mated: list[int]
    # Searches that have no distance: their photo was refused by the quality gate.
    mated_refused: int
    non_mated_refused: int


class GroupEvaluation(BaseModel):
    """One value of one label (or everyone): its photos, its comparisons and searches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    photos: int
    people: int
    refused: dict[str, int]
    fmr: Comparisons
    fnmr: Comparisons
    # Identification at the operating point (as calibration.check states it): FNIR of the
    # mated searches, FPIR at the point's gallery size from the comparisons' FMR.
    search: GroupCheck
    scores: Scores


class Evaluation(BaseModel):
    """A photo set measured at an operating point: everyone, and each label's values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    threshold: float
    gallery_size: int
    max_candidates: int
    margin: float
    people_enrolled: int
    mated_searches: int
    non_mated_searches: int
    score_edges: list[float]
    everyone: GroupEvaluation
    labels: dict[str, dict[str, GroupEvaluation]]


def evaluate(
    encoded: Encoded,
    labels: list[dict[str, str]],
    point: OperatingPoint,
    policy: QualityPolicy,
    rule: MatchRule,
) -> Evaluation:
    """`labels[i]` holds photo i's value of each label (every photo has every label; "" for
    none). CheckRefused where nobody enrolled has a photo left to search with."""
    names = sorted({name for photo in labels for name in photo})
    codes = np.array(encoded.refusals(policy))
    everyone = search_set(encoded, policy, point.metric, rule, point.gallery_templates)
    result: dict[str, dict[str, GroupEvaluation]] = {}
    for name in names:
        grouped = replace(
            encoded,
            photos=[
                Photo(photo.path, photo.person, values.get(name, ""))
                for photo, values in zip(encoded.photos, labels, strict=True)
            ],
        )
        searched = search_set(grouped, policy, point.metric, rule, point.gallery_templates)
        check = checked(searched, point, rule, by_group=True)
        result[name] = {
            value: _group(searched, grouped, codes, point, rule, value, group)
            for value, group in check.groups.items()
        }
    overall = checked(everyone, point, rule, by_group=False)
    return Evaluation(
        model_id=point.model_id,
        threshold=rule.threshold,
        gallery_size=point.gallery_size,
        max_candidates=rule.limit,
        margin=rule.margin,
        people_enrolled=overall.people_enrolled,
        mated_searches=overall.mated_searches,
        non_mated_searches=overall.non_mated_searches,
        score_edges=SCORE_EDGES.tolist(),
        everyone=_group(
            everyone,
            encoded,
            codes,
            point,
            rule,
            None,
            GroupCheck(
                mated_searches=overall.mated_searches,
                fnir=overall.fnir,
                non_mated_comparisons=overall.non_mated_comparisons,
                fpir=overall.fpir,
            ),
        ),
        labels=result,
    )


def _group(
    searched: Searched,
    encoded: Encoded,
    codes: np.ndarray,
    point: OperatingPoint,
    rule: MatchRule,
    value: str | None,
    search: GroupCheck,
) -> GroupEvaluation:
    """The group whose label is `value` (None: everyone); `codes`, each photo's refusal
    under the quality gate ("" for none)."""

    def of(groups: np.ndarray) -> np.ndarray:
        return np.ones(len(groups), dtype=bool) if value is None else groups == value

    rows = of(encoded.groups)
    mated = of(searched.mated_groups)
    stranger_in, gallery_in = of(searched.stranger_groups), of(searched.gallery.groups)
    comparisons, _ = false_positive_rate(searched, stranger_in, gallery_in, point.gallery_size)
    pairs = searched.false_pairs
    chosen = stranger_in[pairs[:, 0]] | gallery_in[pairs[:, 1]]
    false_matches = int(searched.false_counts[chosen].sum())
    mate_distance = searched.mate_distance[mated]
    nearest = searched.non_mated_nearest[of(searched.non_mated_groups)]
    found, counts = np.unique(codes[rows & (codes != "")], return_counts=True)
    return GroupEvaluation(
        photos=int(rows.sum()),
        people=len(set(encoded.persons[rows].tolist())),
        refused={str(code): int(n) for code, n in zip(found, counts, strict=True)},
        fmr=_comparisons(false_matches, comparisons),
        fnmr=_comparisons(int((mate_distance >= rule.threshold).sum()), len(mate_distance)),
        search=search,
        scores=Scores(
            mated=_binned(mate_distance),
            non_mated=_binned(nearest),
            mated_refused=int(np.isinf(mate_distance).sum()),
            non_mated_refused=int(np.isinf(nearest).sum()),
        ),
    )


def _comparisons(errors: int, comparisons: int) -> Comparisons:
    low, high = interval(errors, comparisons) if comparisons else (0.0, 1.0)
    return Comparisons(
        errors=errors,
        comparisons=comparisons,
        rate=errors / comparisons if comparisons else None,
        low=low,
        high=high,
    )


def _binned(distances: np.ndarray) -> list[int]:
    finite = np.clip(distances[np.isfinite(distances)], 0.0, 2.0 - 1e-9)
    counts, _ = np.histogram(finite, bins=SCORE_EDGES)
    return [int(n) for n in counts]
