"""Open-set 1:N search on LFW with the service's own pipeline and index, shared by the
threshold benchmarks (identify, techniques, quality_gate).

People (LFW's names, with lfw_verify's identity merges) are split by a hash of the name:
half are enrolled, one photo each (the first the quality gate accepts: a licence office
retakes a refused photo), and their other photos, where they have more, are the mated
probes; 40 % are never enrolled, and all their photos are the non-mated probes; the
remaining 10 % are a cohort of strangers for score normalisation. A probe the quality gate
refuses returns nothing: a miss when mated, no false positive when not.

Terms are NIST FRTE's: FPIR, the share of non-mated searches that return any candidate;
FNIR, the share of mated searches whose mate is not among the candidates (rank at most
`ranks`, distance under the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from public_sets import CACHE, lfw_photos, share

from app.core import composition
from app.core.composition import encoder
from app.core.settings import Settings
from calibration.photos import Encoded, encode
from index import GalleryIndex
from matcher import EngineName, MatchRule, Metric, QualityPolicy, select_candidates

FPIRS = (0.1, 0.01, 0.003, 0.001)
# Neighbours fetched per search: enough to rank the mate in the top 50.
DEPTH = 50


def role(person: str) -> str:
    value = share(person, "identify")
    return "gallery" if value < 0.5 else "cohort" if value < 0.6 else "non-mated"


@dataclass(frozen=True)
class Protocol:
    """Which rows of the encoded LFW photos play which part."""

    gallery: np.ndarray  # row per enrolled person
    mated: np.ndarray  # rows of mated probes
    mate: np.ndarray  # for each mated probe, its person's position in `gallery`
    non_mated: np.ndarray
    cohort: np.ndarray
    failed_to_enrol: int  # people whose first photo the gate refused


def lfw_encoded(engine: EngineName, workers: int, limit: int = 0) -> Encoded:
    """LFW's photos (its first `limit`, or all) encoded as the service would."""
    settings = Settings(engine=engine)
    photos = lfw_photos()[:limit] if limit else lfw_photos()
    return encode(photos, encoder(settings, "central"), workers, CACHE)


def protocol(encoded: Encoded, usable: np.ndarray) -> Protocol:
    persons = encoded.persons
    roles = np.array([role(p) for p in persons])
    gallery, mated, mate = [], [], []
    failed = 0
    for person in sorted(set(persons[roles == "gallery"])):
        rows = np.flatnonzero(persons == person)  # photos in file order
        accepted = rows[usable[rows]]
        failed += int(not usable[rows[0]])
        if len(accepted) == 0:
            continue  # nothing to enrol
        gallery.append(accepted[0])
        probes = rows[rows != accepted[0]]
        mated.extend(probes)
        mate.extend([len(gallery) - 1] * len(probes))
    return Protocol(
        np.array(gallery),
        np.array(mated),
        np.array(mate),
        np.flatnonzero(roles == "non-mated"),
        np.flatnonzero((roles == "cohort") & usable),
        failed,
    )


@dataclass(frozen=True)
class Searches:
    """Per probe: the distances of the nearest DEPTH gallery people, nearest first, and for
    mated probes the mate's rank (1-based; DEPTH + 1 when not among them). Refused probes
    have infinite distances."""

    mated_distances: np.ndarray  # (mated, DEPTH)
    mate_rank: np.ndarray
    mate_distance: np.ndarray
    non_mated_distances: np.ndarray  # (non-mated, DEPTH)


def search_people(
    vectors: np.ndarray, owners: np.ndarray, probes: np.ndarray, usable: np.ndarray, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """For each usable probe, the DEPTH nearest distinct people of a gallery whose template i
    belongs to person owners[i], as the service ranks them (FAISS index, best template per
    person): (distances, people), infinite and -1 past the end and for refused probes."""
    index = GalleryIndex("benchmark", vectors.shape[1], metric)
    index.add(np.arange(len(vectors)), vectors)
    fetch = DEPTH * int(np.bincount(owners).max())
    everyone = MatchRule(threshold=np.inf, limit=DEPTH)
    distances = np.full((len(probes), DEPTH), np.inf)
    people = np.full((len(probes), DEPTH), -1)
    for i in np.flatnonzero(usable):
        found = select_candidates(
            ((int(owners[t]), d) for t, d in index.search(probes[i], fetch)), everyone
        )
        people[i, : len(found)] = [who for who, _ in found]
        distances[i, : len(found)] = [d for _, d in found]
    return distances, people


def searches_of(
    vectors: np.ndarray,
    owners: np.ndarray,
    probes: np.ndarray,
    usable: np.ndarray,
    mate: np.ndarray,
    non_mated: np.ndarray,
    non_mated_usable: np.ndarray,
    metric: Metric,
) -> Searches:
    """Mated probes (their mate's person number in `mate`) and non-mated probes searched."""
    mated_d, mated_p = search_people(vectors, owners, probes, usable, metric)
    non_mated_d, _ = search_people(vectors, owners, non_mated, non_mated_usable, metric)
    hit = mated_p == mate[:, None]
    found = hit.any(axis=1)
    rank = np.where(found, hit.argmax(axis=1) + 1, DEPTH + 1)
    mate_distance = np.where(found, mated_d[np.arange(len(rank)), hit.argmax(axis=1)], np.inf)
    return Searches(mated_d, rank, mate_distance, non_mated_d)


def run_searches(encoded: Encoded, usable: np.ndarray, proto: Protocol, metric: Metric) -> Searches:
    """The protocol's searches: one template per enrolled person."""
    vectors = encoded.descriptors
    return searches_of(
        vectors[proto.gallery],
        np.arange(len(proto.gallery)),
        vectors[proto.mated],
        usable[proto.mated],
        proto.mate,
        vectors[proto.non_mated],
        usable[proto.non_mated],
        metric,
    )


def fpir(searches: Searches, threshold: float) -> float:
    return float((searches.non_mated_distances[:, 0] < threshold).mean())


def fnir(searches: Searches, threshold: float, ranks: int) -> float:
    hit = (searches.mate_rank <= ranks) & (searches.mate_distance < threshold)
    return float(1 - hit.mean())


def threshold_at(searches: Searches, target_fpir: float) -> float:
    """The largest threshold whose FPIR is at most the target."""
    nearest = np.sort(searches.non_mated_distances[:, 0])
    return float(nearest[int(np.floor(target_fpir * len(nearest)))])


def quality_policy(engine: EngineName) -> QualityPolicy:
    """The engine's quality limits as the service applies them, settings included."""
    return composition.quality_policy(Settings(engine=engine))
