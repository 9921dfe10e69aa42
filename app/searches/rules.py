"""What a search needs (DESIGN.md, rule 7, and separation of duties), as a pure function."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum

from app.core.refusals import Code, Refusal
from app.requests.rules import Status


class SearchOutcome(StrEnum):
    """What the operator's human review of a search concluded."""

    confirmed = "confirmed"  # one candidate identified: that person's five fields released
    none = "none"  # nobody identified: nothing released


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
