"""The match decision: which gallery neighbours become candidates for the operator to review."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

Identity = TypeVar("Identity", bound=Hashable)


def select_candidates(
    neighbours: Iterable[tuple[Identity, float]], threshold: float, limit: int
) -> list[tuple[Identity, float]]:
    """Best distance per identity, kept only under `threshold`, nearest first, at most `limit`.

    Neighbours are templates; several may belong to one person (renewal photos), and a
    person must appear once in the list, at the rank of their closest template.
    """
    best: dict[Identity, float] = {}
    for identity, distance in neighbours:
        if distance < threshold and distance < best.get(identity, float("inf")):
            best[identity] = distance
    return sorted(best.items(), key=lambda item: item[1])[:limit]
