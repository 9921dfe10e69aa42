"""The match decision: which gallery neighbours become candidates for the operator to review."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

Identity = TypeVar("Identity", bound=Hashable)

# What the index holds for each enrolled person: "person", one template fused from all their
# enrolled photos (index.fuse); "photo", every enrolled photo's own template, the person
# ranked by the closest. An operating point holds only for the kind it was calibrated on.
GalleryTemplates = Literal["person", "photo"]


# Neighbours fetched per candidate wanted when the index holds photo templates: one person
# may hold several (renewals).
NEIGHBOUR_FANOUT = 10


def neighbours_to_fetch(limit: int, templates: GalleryTemplates) -> int:
    """How many nearest templates a search asks the index for to list `limit` people: one
    more than the list holds, so the margin always sees a second person."""
    return limit * (NEIGHBOUR_FANOUT if templates == "photo" else 1) + 1


@dataclass(frozen=True)
class MatchRule:
    """What makes a gallery neighbour a candidate: the operating point's threshold, the
    ambiguity margin and the length of the list."""

    threshold: float
    limit: int
    # When the nearest person is within `margin` of the next one, the search is ambiguous
    # and returns nobody (benchmarks/identify.py measures what that buys).
    margin: float = 0.0


def select_candidates(
    neighbours: Iterable[tuple[Identity, float]], rule: MatchRule
) -> list[tuple[Identity, float]]:
    """Best distance per identity, kept only under the threshold, nearest first, at most
    `rule.limit`; nobody when the nearest two people are within `rule.margin`.

    Neighbours are templates; several may belong to one person (renewal photos), and a
    person must appear once in the list, at the rank of their closest template.
    """
    best: dict[Identity, float] = {}
    for identity, distance in neighbours:
        if distance < best.get(identity, float("inf")):
            best[identity] = distance
    ranked = sorted(best.items(), key=lambda item: item[1])
    if len(ranked) > 1 and ranked[1][1] - ranked[0][1] < rule.margin:
        return []
    return [(who, distance) for who, distance in ranked if distance < rule.threshold][: rule.limit]
