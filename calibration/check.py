"""An operating point tried on labelled photos it was not calibrated on, as the service would
use it: what it misses and how many innocent people it would name, with intervals that
resample people.

Half the set's people (by a hash of their identifier) are enrolled as the index holds them
(calibration.rates.enrolled: their first accepted photos, fused into a person template or
kept as photo templates); their other photos are the mated searches, and every photo of the
other half a non-mated one. A mated search misses when the service's own FAISS index and
decision rule (threshold, margin, length of the list) do not list its person; a refused
probe is a miss.

FPIR is stated for the point's gallery size, which a set of a few thousand people cannot
show by its searches alone; so it comes from the false-match rate over every comparison of
a stranger's photo with an enrolled person, as the calibration counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from calibration.photos import Encoded, share
from calibration.rates import Enrolled, enrolled, fpir_for, interval
from index import GalleryIndex
from matcher import (
    GalleryTemplates,
    MatchRule,
    Metric,
    QualityPolicy,
    neighbours_to_fetch,
    select_candidates,
)
from matcher.operating_point import Check, GroupCheck, OperatingPoint, Rate

ENROLLED_SHARE = 0.5
REPLICATES = 2000
_BLOCK = 1024


class CheckRefused(ValueError):
    """A labelled set that cannot check a point: nobody with a photo left to search."""


@dataclass(frozen=True)
class Searched:
    """A labelled set searched. Per mated search: its person's place in the gallery, the
    person's rank among everyone enrolled (0 when the probe was refused), their distance,
    and whether the decision rule listed them. Per non-mated search: the nearest person's
    distance (inf when refused). Per pair of a stranger and an enrolled person: how many of
    the stranger's photos fall under the rule's threshold."""

    gallery: Enrolled
    mate: np.ndarray
    mate_rank: np.ndarray
    mate_distance: np.ndarray
    listed: np.ndarray
    mated_groups: np.ndarray
    non_mated_nearest: np.ndarray
    non_mated_groups: np.ndarray  # the group of each non-mated search's photo
    strangers: np.ndarray
    stranger_groups: np.ndarray
    stranger_probes: np.ndarray  # usable probes per stranger
    false_pairs: np.ndarray  # (stranger, enrolled person) with a false match under threshold
    false_counts: np.ndarray  # the stranger's photos that matched that person
    refused: dict[str, int]
    photos: int


def search_set(
    encoded: Encoded,
    policy: QualityPolicy,
    metric: Metric,
    rule: MatchRule,
    kind: GalleryTemplates,
    weights: np.ndarray | None = None,
) -> Searched:
    """The protocol's searches. `weights`, one per photo, weight the fusion of person
    templates (for measuring weighted fusion)."""
    codes = np.array(encoded.refusals(policy))
    usable = codes == ""
    persons, groups, vectors = encoded.persons, encoded.groups, encoded.descriptors
    people = sorted(set(persons.tolist()))
    enrolled_side = [p for p in people if share(p, "check") < ENROLLED_SHARE]
    gallery = enrolled(vectors, persons, groups, usable, metric, kind, enrolled_side, weights)
    mated: list[int] = []
    mate: list[int] = []
    for position, rows in enumerate(gallery.rows):
        probes = np.setdiff1d(np.flatnonzero(persons == gallery.persons[position]), rows)
        mated += probes.tolist()
        mate += [position] * len(probes)
    if not mated:
        raise CheckRefused("nobody enrolled has a photo left to search with")
    mated_rows, mate_of = np.array(mated), np.array(mate)
    index = GalleryIndex("check", vectors.shape[1], metric)
    index.add(np.arange(len(gallery.vectors)), gallery.vectors)
    fetch = neighbours_to_fetch(rule.limit, kind)

    mate_rank = np.zeros(len(mated_rows), dtype=int)
    mate_distance = np.full(len(mated_rows), np.inf)
    listed = np.zeros(len(mated_rows), dtype=bool)
    searchable = np.flatnonzero(usable[mated_rows])
    for start in range(0, len(searchable), _BLOCK):
        block = searchable[start : start + _BLOCK]
        to_people = gallery.distances_to(vectors[mated_rows[block]], metric)
        own = to_people[np.arange(len(block)), mate_of[block]]
        mate_distance[block] = own
        mate_rank[block] = 1 + (to_people < own[:, None]).sum(axis=1)
    for i in searchable:
        found = index.search(vectors[mated_rows[i]], fetch)
        candidates = select_candidates(((int(gallery.owner[t]), d) for t, d in found), rule)
        listed[i] = any(who == mate_of[i] for who, _ in candidates)

    stranger_rows = np.flatnonzero(~np.isin(persons, enrolled_side))
    strangers = np.array(sorted(set(persons[stranger_rows].tolist())))
    nearest = np.full(len(stranger_rows), np.inf)
    searched_rows = np.flatnonzero(usable[stranger_rows])
    pairs: dict[tuple[int, int], int] = {}
    for start in range(0, len(searched_rows), _BLOCK):
        block = searched_rows[start : start + _BLOCK]
        to_people = gallery.distances_to(vectors[stranger_rows[block]], metric)
        nearest[block] = to_people.min(axis=1, initial=np.inf)
        who = np.searchsorted(strangers, persons[stranger_rows[block]])
        for probe, person in np.argwhere(to_people < rule.threshold):
            key = (int(who[probe]), int(person))
            pairs[key] = pairs.get(key, 0) + 1
    first_group = {p: groups[np.flatnonzero(persons == p)[0]] for p in strangers}
    of_stranger = np.searchsorted(strangers, persons[stranger_rows[searched_rows]])
    return Searched(
        gallery=gallery,
        mate=mate_of,
        mate_rank=mate_rank,
        mate_distance=mate_distance,
        listed=listed,
        mated_groups=groups[mated_rows],
        non_mated_nearest=nearest,
        non_mated_groups=groups[stranger_rows],
        strangers=strangers,
        stranger_groups=np.array([first_group[p] for p in strangers]),
        stranger_probes=np.bincount(of_stranger, minlength=len(strangers)),
        false_pairs=np.array(list(pairs), dtype=int).reshape(-1, 2),
        false_counts=np.array(list(pairs.values()), dtype=int),
        refused=_count(codes[np.r_[mated_rows, stranger_rows]]),
        photos=len(encoded.photos),
    )


def check_point(
    encoded: Encoded,
    point: OperatingPoint,
    policy: QualityPolicy,
    rule: MatchRule,
    by_group: bool = False,
) -> Check:
    """The point's FNIR and FPIR on a labelled set, overall and per group, each with its
    interval from resampling people."""
    searched = search_set(encoded, policy, point.metric, rule, point.gallery_templates)
    return checked(searched, point, rule, by_group)


def checked(searched: Searched, point: OperatingPoint, rule: MatchRule, by_group: bool) -> Check:
    """What the searches show of the point: FNIR and FPIR, overall and per group."""
    people = len(searched.gallery.persons)
    everyone = np.ones(len(searched.mate), dtype=bool)
    groups = {}
    if by_group:
        names = set(searched.gallery.groups.tolist()) | set(searched.stranger_groups.tolist())
        for group in sorted(names - {""}):
            in_group = searched.mated_groups == group
            comparisons, fpir = false_positive_rate(
                searched,
                searched.stranger_groups == group,
                searched.gallery.groups == group,
                point.gallery_size,
            )
            groups[group] = GroupCheck(
                mated_searches=int(in_group.sum()),
                fnir=missed_rate(searched, ~searched.listed, in_group) if in_group.any() else None,
                non_mated_comparisons=comparisons,
                fpir=fpir,
            )
    comparisons, fpir = false_positive_rate(
        searched,
        np.ones(len(searched.strangers), dtype=bool),
        np.ones(people, dtype=bool),
        point.gallery_size,
    )
    return Check(
        photos=searched.photos,
        people_enrolled=people,
        max_candidates=rule.limit,
        margin=rule.margin,
        mated_searches=len(searched.mate),
        non_mated_searches=len(searched.non_mated_nearest),
        refused=searched.refused,
        rank_1=float((searched.mate_rank == 1).mean()),
        fnir=missed_rate(searched, ~searched.listed, everyone),
        fpir=fpir,
        non_mated_comparisons=comparisons,
        groups=groups,
        date=datetime.now(UTC).replace(microsecond=0),
    )


def missed_rate(searched: Searched, missed: np.ndarray, in_group: np.ndarray) -> Rate:
    """The share of mated searches (those `in_group`) that `missed` their person, with its
    interval from drawing the enrolled people again."""
    people = len(searched.gallery.persons)
    weights = _people_drawn(people, 0)
    mate, miss = searched.mate[in_group], missed[in_group]
    per_person = np.bincount(mate, minlength=people)
    misses = np.bincount(mate, miss, minlength=people)
    replicated = (weights @ misses) / np.maximum(weights @ per_person, 1)
    low, high = np.quantile(replicated, [0.025, 0.975])
    return Rate(value=float(miss.mean()), low=float(low), high=float(high))


def fnir_at_fpir(searched: Searched, target: float, ranks: int) -> tuple[float, Rate]:
    """The threshold whose FPIR among the set's own non-mated searches is at most `target`,
    and the FNIR at it (the person among the first `ranks`, under it; no margin)."""
    nearest = np.sort(searched.non_mated_nearest)
    threshold = float(nearest[int(np.floor(target * len(nearest)))])
    found = (searched.mate_rank >= 1) & (searched.mate_rank <= ranks)
    missed = ~(found & (searched.mate_distance < threshold))
    return threshold, missed_rate(searched, missed, np.ones(len(missed), dtype=bool))


def false_positive_rate(
    searched: Searched, stranger_in: np.ndarray, gallery_in: np.ndarray, gallery_size: int
) -> tuple[int, Rate]:
    """FPIR at `gallery_size` people from the false-match rate of the comparisons with a
    stranger in the group or an enrolled person in it: its comparisons, and the rate with an
    interval from drawing strangers and enrolled people again. Resampling cannot show a rate
    above zero where none was seen, so the comparisons' Clopper-Pearson interval bounds it
    too."""
    probes = searched.stranger_probes

    def compared(w: np.ndarray, v: np.ndarray) -> np.ndarray:
        everything = (w @ probes) * v.sum(axis=-1)
        outside = (w[..., ~stranger_in] @ probes[~stranger_in]) * v[..., ~gallery_in].sum(axis=-1)
        counted: np.ndarray = everything - outside
        return counted

    pairs, counts = searched.false_pairs, searched.false_counts
    kept = stranger_in[pairs[:, 0]] | gallery_in[pairs[:, 1]]
    pairs, counts = pairs[kept], counts[kept]
    comparisons = int(compared(np.ones(len(probes)), np.ones(len(gallery_in))))
    errors = int(counts.sum())
    strangers = _people_drawn(len(probes), 1)
    enrolled_people = _people_drawn(len(gallery_in), 0)
    drawn_errors = np.zeros(REPLICATES)
    for start in range(0, len(pairs), _BLOCK):  # a block of pairs at a time bounds the memory
        part, part_counts = pairs[start : start + _BLOCK], counts[start : start + _BLOCK]
        drawn_errors += (strangers[:, part[:, 0]] * enrolled_people[:, part[:, 1]]) @ part_counts
    fmr = drawn_errors / np.maximum(compared(strangers, enrolled_people), 1)
    low, high = np.quantile(fpir_for(fmr, gallery_size), [0.025, 0.975])
    bounds = fpir_for(np.array(interval(errors, max(comparisons, 1))), gallery_size)
    value = float(fpir_for(np.array(errors / max(comparisons, 1)), gallery_size))
    return comparisons, Rate(
        value=value, low=float(min(low, bounds[0])), high=float(max(high, bounds[1]))
    )


def broken_promises(point: OperatingPoint, check: Check) -> list[str]:
    """Where the set shows more false positives than the point states: overall or in any
    group, the stated FPIR below the interval. (A point stricter than stated is not a broken
    promise: a point held by every group sits below its target overall.)"""
    measured = {"overall": check.fpir} | {f"group {g}": c.fpir for g, c in check.groups.items()}
    return [
        f"{name} FPIR {rate.value:.3g} [{rate.low:.3g}, {rate.high:.3g}]"
        for name, rate in measured.items()
        if rate.low > point.target_fpir
    ]


def _people_drawn(people: int, seed: int) -> np.ndarray:
    """REPLICATES draws of `people` people with replacement: how often each is drawn."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(people, np.full(people, 1 / max(people, 1)), REPLICATES)


def _count(codes: np.ndarray) -> dict[str, int]:
    found, counts = np.unique(codes[codes != ""], return_counts=True)
    return {str(code): int(n) for code, n in zip(found, counts, strict=True)}
