"""The review chain (DESIGN.md, rules 5 and 6) as pure functions: the levels a request needs,
their order, separation of duties, and what a decision leaves the request in."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from enum import StrEnum

from app.core.refusals import Code, Refusal
from auth import LEVEL_ROLE, Level, Role


class AgencyKind(StrEnum):
    local = "local"
    state = "state"
    tribal = "tribal"
    federal = "federal"


class LegalProcess(StrEnum):
    court_order = "court_order"
    subpoena = "subpoena"
    none = "none"


class Status(StrEnum):
    rejected = "rejected"  # by screening, at submission
    in_review = "in_review"
    approved = "approved"
    denied = "denied"  # by a reviewer


class Decision(StrEnum):
    approve = "approve"
    deny = "deny"


INTERNAL_LEVELS = (Level.staff, Level.manager, Level.unit_administrator)


IMMIGRATION_LEVELS = (Level.director, Level.governor_office)


def required_levels(immigration_related: bool) -> tuple[Level, ...]:
    """Rule 5, and rule 4's two extra reviews."""
    return INTERNAL_LEVELS + (IMMIGRATION_LEVELS if immigration_related else ())


def awaiting(status: Status, immigration_related: bool, decided: int) -> Level | None:
    """The level whose review a request waits for, if it is still in review."""
    if status is not Status.in_review:
        return None
    return required_levels(immigration_related)[decided]


def check_review(
    status: Status,
    immigration_related: bool,
    decided: Sequence[Level],
    reviewer_ids: Collection[int],
    submitted_by: int,
    reviewer: int,
    role: Role,
) -> Level:
    """The level the reviewer decides at, or the refusal: reviews go in order, each person
    reviews a request at most once, never one they submitted, and never after screening
    rejected it or a decision ended it."""
    if status is Status.rejected:
        raise Refusal(
            Code.screening_rejected,
            "Screening rejected this request; it cannot be reviewed or approved.",
        )
    if status is not Status.in_review:
        raise Refusal(Code.review_closed, f"This request is already {status.value}.")
    if reviewer == submitted_by or reviewer in reviewer_ids:
        raise Refusal(
            Code.separation_of_duties,
            "Nobody may review a request twice or review a request they submitted.",
        )
    level = required_levels(immigration_related)[len(decided)]
    if LEVEL_ROLE[level] is not role:
        raise Refusal(
            Code.not_your_level,
            f"This request awaits the {level.value.replace('_', ' ')} review.",
        )
    return level


def status_after(decision: Decision, level: Level, immigration_related: bool) -> Status:
    """Any denial is final; the last required approval approves."""
    if decision is Decision.deny:
        return Status.denied
    if level is required_levels(immigration_related)[-1]:
        return Status.approved
    return Status.in_review
