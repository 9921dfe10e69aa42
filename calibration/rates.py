"""False-match and false-non-match rates of labelled templates, the thresholds they imply,
and a stated model for rates below what the data can show.

A search compares a probe with every enrolled person, so the chance that a probe of someone
not enrolled returns a candidate (FPIR) grows with the gallery size N: with a per-comparison
false-match rate FMR, FPIR = 1 - (1 - FMR)^N, about N x FMR. Holding FPIR at a target in a
gallery of N people therefore needs FMR at target / N, and data can show a rate that low only
with enough non-mated comparisons: at least 3 / FMR (with none observed, 3 / M is the 95 %
upper bound on a rate measured over M comparisons, "the rule of three").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats

from index import Metric, distances, fuse
from matcher import GalleryTemplates

# Comparisons behind a rate: the data support FMR f only when they hold at least 3 / f.
RULE_OF_THREE = 3
ALL = "all"
# Photos a person's template is fused from, where the gallery holds person templates: a
# licence photo and one renewal. A person with fewer photos keeps at least one as a probe.
ENROLLED_PHOTOS = 2


def fmr_for(target_fpir: float, gallery_size: int) -> float:
    """The per-comparison false-match rate that gives `target_fpir` over `gallery_size`
    independent comparisons."""
    return -math.expm1(math.log1p(-target_fpir) / gallery_size)


def fpir_for(fmr: np.ndarray, gallery_size: int) -> np.ndarray:
    """The FPIR over `gallery_size` independent comparisons at false-match rate `fmr` (the
    inverse of fmr_for)."""
    fpir: np.ndarray = -np.expm1(gallery_size * np.log1p(-np.minimum(fmr, 1 - 1e-12)))
    return fpir


def supported_gallery_size(target_fpir: float, comparisons: int) -> int:
    """The largest gallery for which `comparisons` non-mated comparisons can show the FMR
    that `target_fpir` needs."""
    if comparisons < RULE_OF_THREE:
        return 0
    return math.floor(math.log1p(-target_fpir) / math.log1p(-RULE_OF_THREE / comparisons))


def interval(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Clopper-Pearson interval of a rate."""
    tail = (1 - confidence) / 2
    low = 0.0 if errors == 0 else float(stats.beta.ppf(tail, errors, trials - errors + 1))
    high = 1.0 if errors == trials else float(stats.beta.ppf(1 - tail, errors + 1, trials - errors))
    return low, high


def people_bootstrap(
    photos: np.ndarray,
    in_group: np.ndarray,
    matches: np.ndarray,
    replicates: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """The interval of a group's FMR when people, not comparisons, are drawn again.

    Comparisons are not independent: two lookalikes with hundreds of photos each (LFW holds
    530 of George W. Bush, whose brother is in it too) add a block of false matches that
    stands or falls together. Resampling people with replacement (`photos[p]` photos each,
    `in_group[p]` whether they count for the group; `matches` one row (a, b) of people per
    false match) gives an interval that allows for that.
    """
    rng = np.random.default_rng(0)
    draws = rng.multinomial(len(photos), np.full(len(photos), 1 / len(photos)), replicates)
    weighted = draws * photos

    def pairs(w: np.ndarray) -> np.ndarray:  # photo pairs between distinct people
        counted: np.ndarray = (w.sum(axis=1) ** 2 - (w**2).sum(axis=1)) / 2
        return counted

    comparisons = pairs(weighted) - pairs(weighted[:, ~in_group])
    counted = matches[in_group[matches[:, 0]] | in_group[matches[:, 1]]]
    errors = (draws[:, counted[:, 0]] * draws[:, counted[:, 1]]).sum(axis=1)
    rates = errors / np.maximum(comparisons, 1)
    tail = (1 - confidence) / 2
    return float(np.quantile(rates, tail)), float(np.quantile(rates, 1 - tail))


@dataclass(frozen=True)
class Templates:
    """One data set's usable templates with their person and group labels. Comparisons are
    made only within a set: two sets may hold the same person under different names."""

    name: str
    vectors: np.ndarray
    persons: np.ndarray
    groups: np.ndarray


def chosen_for_enrolment(own: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The rows a person is enrolled with: their first ENROLLED_PHOTOS accepted photos,
    fewer where that would leave none of their photos to search with (a person with one
    photo is enrolled with it)."""
    accepted = own[usable[own]]
    chosen: np.ndarray = accepted[: max(1, min(ENROLLED_PHOTOS, len(own) - 1))]
    return chosen


@dataclass(frozen=True)
class Enrolled:
    """People as a gallery holds them: each person's chosen photos (chosen_for_enrolment)
    fused into one template ("person"), or each its own template, the person at their
    closest ("photo")."""

    vectors: np.ndarray  # the templates searched
    owner: np.ndarray  # each template's person, by position; a person's are contiguous
    persons: np.ndarray  # each position's person
    groups: np.ndarray  # the group of each person's first enrolled photo
    rows: list[np.ndarray]  # the rows each person was enrolled with

    def distances_to(self, probes: np.ndarray, metric: Metric) -> np.ndarray:
        """Each probe's distance to each person: to their template, or to their closest."""
        found = distances(probes, self.vectors, metric)
        if len(self.vectors) == len(self.persons):
            return found
        starts = np.flatnonzero(np.r_[True, self.owner[1:] != self.owner[:-1]])
        closest: np.ndarray = np.minimum.reduceat(found, starts, axis=1)
        return closest


def enrolled(
    vectors: np.ndarray,
    persons: np.ndarray,
    groups: np.ndarray,
    usable: np.ndarray,
    metric: Metric,
    kind: GalleryTemplates,
    people: list[str],
    weights: np.ndarray | None = None,
) -> Enrolled:
    """The gallery of `people` (each with an accepted photo) built from a set's rows;
    `weights`, one per row, weight the fusion of person templates."""
    templates: list[np.ndarray] = []
    owner: list[int] = []
    names: list[str] = []
    first_groups: list[str] = []
    rows: list[np.ndarray] = []
    for person in people:
        chosen = chosen_for_enrolment(np.flatnonzero(persons == person), usable)
        if len(chosen) == 0:
            continue  # nothing to enrol: a licence office retakes the photo
        if kind == "person":
            own_weights = None if weights is None else weights[chosen]
            parts = [fuse(vectors[chosen], metric, own_weights)]
        else:
            parts = list(vectors[chosen])
        templates += parts
        owner += [len(names)] * len(parts)
        names.append(person)
        first_groups.append(groups[chosen[0]])
        rows.append(chosen)
    return Enrolled(
        np.array(templates, dtype=np.float32).reshape(-1, vectors.shape[1]),
        np.array(owner, dtype=int),
        np.array(names),
        np.array(first_groups),
        rows,
    )


def enrolled_set(templates: Templates, metric: Metric, kind: GalleryTemplates) -> Enrolled:
    """Every person of a set of usable templates enrolled."""
    people = sorted(set(templates.persons.tolist()))
    everyone = np.ones(len(templates.vectors), dtype=bool)
    return enrolled(
        templates.vectors, templates.persons, templates.groups, everyone, metric, kind, people
    )


@dataclass(frozen=True)
class NonMated:
    """Non-mated comparisons per group: their number and their lowest distances, sorted.

    A comparison counts for the group of each of its two photos (the probe may be either),
    and for ALL. Groups are named "set:group".
    """

    comparisons: dict[str, int]
    lowest: dict[str, np.ndarray]

    def threshold(self, group: str, fmr: float) -> float:
        """The largest threshold under which at most a share `fmr` of the group's
        comparisons fall (a distance counts as a match when strictly below it)."""
        allowed = math.floor(fmr * self.comparisons[group])
        lowest = self.lowest[group]
        if allowed >= len(lowest):
            raise ValueError(f"keep more than {len(lowest)} distances for an FMR of {fmr:g}")
        return float(lowest[allowed])

    def supported_gallery_size(self, group: str, target_fpir: float) -> int:
        return supported_gallery_size(target_fpir, self.comparisons[group])


def non_mated_pairs(
    templates: Templates, metric: Metric, block: int = 1024
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every non-mated pair of photos in a set once, in blocks: (distances, rows, columns)."""
    n = len(templates.vectors)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d = distances(templates.vectors[start:stop], templates.vectors, metric)
        pairs = (np.arange(n)[None, :] > np.arange(start, stop)[:, None]) & (
            templates.persons[start:stop, None] != templates.persons[None, :]
        )
        rows, columns = np.nonzero(pairs)
        yield d[rows, columns], rows + start, columns


def non_mated_to_people(
    templates: Templates, gallery: Enrolled, metric: Metric, block: int = 1024
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every photo of a set against every other person enrolled, in blocks: (distances,
    photo rows, person positions)."""
    n = len(templates.vectors)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d = gallery.distances_to(templates.vectors[start:stop], metric)
        rows, columns = np.nonzero(templates.persons[start:stop, None] != gallery.persons[None, :])
        yield d[rows, columns], rows + start, columns


def non_mated(
    sets: list[Templates],
    metric: Metric,
    kind: GalleryTemplates = "photo",
    keep: int = 50_000,
) -> NonMated:
    """Every non-mated comparison within each set, reduced to counts and the `keep` lowest
    distances per group: each photo against every other person as the gallery holds them
    (enrolled_set), which is what a search compares."""
    comparisons: dict[str, int] = {}
    kept: dict[str, list[np.ndarray]] = {}

    def add(group: str, distances: np.ndarray) -> None:
        comparisons[group] = comparisons.get(group, 0) + distances.size
        if distances.size > keep:
            distances = np.partition(distances, keep)[:keep]
        kept.setdefault(group, []).append(distances)

    for templates in sets:
        labels = np.array([f"{templates.name}:{g}" if g else "" for g in templates.groups])
        named = sorted(set(labels) - {""})
        gallery = enrolled_set(templates, metric, kind)
        gallery_labels = labels[[rows[0] for rows in gallery.rows]]
        for pair_distances, rows, columns in non_mated_to_people(templates, gallery, metric):
            add(ALL, pair_distances)
            for group in named:
                chosen = (labels[rows] == group) | (gallery_labels[columns] == group)
                add(group, pair_distances[chosen])
    lowest = {}
    for group, parts in kept.items():
        merged = np.concatenate(parts)
        if merged.size > keep:
            merged = np.partition(merged, keep)[:keep]
        lowest[group] = np.sort(merged)
    return NonMated(comparisons, lowest)


def closest_non_mated(
    templates: Templates, metric: Metric, count: int
) -> list[tuple[float, int, int]]:
    """The `count` closest non-mated pairs as (distance, row, row): where labelling errors
    (one person under two names, one photo filed twice) show first, and set the threshold
    if left in."""
    closest: list[tuple[float, int, int]] = []
    for pair_distances, rows, columns in non_mated_pairs(templates, metric):
        nearest = np.argsort(pair_distances)[:count]
        closest += zip(
            pair_distances[nearest].tolist(), rows[nearest].tolist(), columns[nearest].tolist()
        )
        closest = sorted(closest)[:count]
    return closest


def mated(sets: list[Templates], metric: Metric, kind: GalleryTemplates = "photo") -> np.ndarray:
    """Each photo a person was not enrolled with against that person as the gallery holds
    them (enrolled_set): what a search of an enrolled person compares."""
    found = []
    for templates in sets:
        gallery = enrolled_set(templates, metric, kind)
        for position, rows in enumerate(gallery.rows):
            own_rows = np.flatnonzero(templates.persons == gallery.persons[position])
            probes = np.setdiff1d(own_rows, rows)
            if len(probes):
                own = gallery.vectors[gallery.owner == position]
                found.append(distances(templates.vectors[probes], own, metric).min(axis=1))
    return np.concatenate(found) if found else np.empty(0)


@dataclass(frozen=True)
class Tail:
    """The lower tail of a non-mated distance distribution, beyond the data: below the
    distance `anchor`, which a share `anchor_fmr` of comparisons fall under, the distances'
    shortfall from it follows a generalised Pareto distribution (peaks over threshold, the
    standard model of extremes)."""

    anchor: float
    anchor_fmr: float
    shape: float
    scale: float
    points: int

    MODEL = "generalised Pareto tail fitted to the lowest non-mated distances"

    def threshold(self, fmr: float) -> float:
        if fmr >= self.anchor_fmr:
            raise ValueError("within the data: use the empirical threshold")
        return self.anchor - float(
            stats.genpareto.isf(fmr / self.anchor_fmr, self.shape, 0, self.scale)
        )


def fit_tail(lowest: np.ndarray, comparisons: int, points: int = 1000) -> Tail:
    """Fit the tail model to the `points` lowest of `comparisons` non-mated distances."""
    points = min(points, len(lowest) - 1)
    anchor = float(lowest[points])
    shape, _, scale = stats.genpareto.fit(anchor - lowest[:points], floc=0)
    return Tail(anchor, points / comparisons, float(shape), float(scale), points)
