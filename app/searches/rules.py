"""What a search needs (DESIGN.md, rule 7, and separation of duties), and what its human
review must conclude before anything is released, as pure functions."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from app.core.refusals import Code, Refusal
from app.requests.rules import Status


class SearchOutcome(StrEnum):
    """What the human review of a search concluded."""

    confirmed = "confirmed"  # one candidate identified: that person's five fields released
    none = "none"  # nobody identified: nothing released
    disagreement = "disagreement"  # the examiners did not identify the same one: nothing


class Conclusion(StrEnum):
    """An examiner's conclusion on one candidate, from comparing the two faces (FISWG)."""

    identification = "identification"
    exclusion = "exclusion"
    inconclusive = "inconclusive"


def check_conclusions(ranks: Collection[int], concluded: Sequence[tuple[int, Conclusion]]) -> None:
    """An examination concludes on every candidate of the search, once each, and identifies
    at most one: a release names one person, and only one the examiner compared."""
    given = [rank for rank, _ in concluded]
    if sorted(given) != sorted(ranks):
        raise Refusal(
            Code.conclusions_incomplete,
            f"Record one conclusion for each of the search's {len(ranks)} candidate(s), "
            "no more and no fewer.",
        )
    if sum(c is Conclusion.identification for _, c in concluded) > 1:
        raise Refusal(
            Code.several_identifications,
            "At most one candidate can be an identification; conclude the others as "
            "exclusions or inconclusive.",
        )


def identified(conclusions: Mapping[int, Conclusion]) -> int | None:
    """The rank an examination identified, if it identified one."""
    return next((r for r, c in conclusions.items() if c is Conclusion.identification), None)


def review_outcome(
    examinations: Sequence[Mapping[int, Conclusion]], required: int
) -> tuple[SearchOutcome, int | None] | None:
    """What the examinations decide, once `required` examiners have concluded (None until
    then): a release only when every one of them identified the same candidate."""
    if len(examinations) < required:
        return None
    ranks = {identified(e) for e in examinations}
    if len(ranks) > 1:
        return SearchOutcome.disagreement, None
    (rank,) = ranks
    return (SearchOutcome.none, None) if rank is None else (SearchOutcome.confirmed, rank)


def check_search(
    status: Status,
    authorised_until: datetime | None,
    searches_used: int,
    searches_allowed: int,
    now: datetime,
    operator: int,
    involved: Collection[int],
    assigned: Collection[int],
) -> None:
    """Rule 7 and separation of duties: an approved, unexpired request with searches left,
    searched by an operator its approval assigned, who neither submitted nor reviewed it."""
    if status is not Status.approved:
        raise Refusal(Code.request_not_approved, f"The request is {status.value}, not approved.")
    if authorised_until is None or now >= authorised_until:
        raise Refusal(Code.authorisation_expired, "The request's authorisation has expired.")
    if searches_used >= searches_allowed:
        raise Refusal(
            Code.searches_exhausted, "The request's authorised searches have all been used."
        )
    if operator in involved:
        raise Refusal(
            Code.separation_of_duties,
            "The operator who searches may not have submitted or reviewed the request.",
        )
    if operator not in assigned:
        raise Refusal(
            Code.not_assigned,
            "The unit administrator's approval assigned this request to another operator.",
        )
