"""The request rules (DESIGN.md, rules 1-7), as pure functions: screening at submission, the
order of the review chain, separation of duties, and what an approval authorises.

Every refusal is an ApiError with a stable code; nothing here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.errors import ApiError
from auth import Role


class AgencyKind(StrEnum):
    local = "local"
    state = "state"
    tribal = "tribal"
    federal = "federal"


class LegalProcess(StrEnum):
    court_order = "court_order"
    subpoena = "subpoena"
    none = "none"


class Level(StrEnum):
    staff = "staff"
    manager = "manager"
    unit_administrator = "unit_administrator"
    director = "director"
    governor_office = "governor_office"


class Status(StrEnum):
    rejected = "rejected"  # by screening, at submission
    in_review = "in_review"
    approved = "approved"
    denied = "denied"  # by a reviewer


class Decision(StrEnum):
    approve = "approve"
    deny = "deny"


LEVEL_ROLE: dict[Level, Role] = {
    Level.staff: Role.staff_reviewer,
    Level.manager: Role.manager,
    Level.unit_administrator: Role.unit_admin,
    Level.director: Role.director,
    Level.governor_office: Role.governor_office,
}
INTERNAL_LEVELS = (Level.staff, Level.manager, Level.unit_administrator)
IMMIGRATION_LEVELS = (Level.director, Level.governor_office)


@dataclass(frozen=True)
class RequestPolicy:
    """The configurable lists behind rules 2-4."""

    qualifying_crimes: frozenset[str]
    immigration_statutes: frozenset[str]
    immigration_agencies: frozenset[str]


@dataclass(frozen=True)
class Facts:
    """What screening reads from a request."""

    agency_code: str
    declared_immigration_authority: bool
    crime_category: str
    statutes: Sequence[str]
    judge_signed_court_order: bool


@dataclass(frozen=True)
class Screening:
    passed: bool
    rule: str
    reason: str
    immigration_authority: bool
    immigration_related: bool


_USC = re.compile(
    r"^(\d+)\s*U\.?\s*S\.?\s*C\.?\s*A?\.?\s*(?:§+|sec\.?|section)?\s*(\d+[a-z]?)\s*(\(.*)?$",
    re.IGNORECASE,
)


def normalise_statute(citation: str) -> str:
    """'8 U.S.C. § 1325(a)' -> '8 USC 1325': federal citations to title and section, other
    citations (state codes) to single-spaced upper case."""
    text = " ".join(citation.split())
    match = _USC.match(text)
    if match:
        return f"{match[1]} USC {match[2].lower()}"
    return text.upper()


def is_immigration_statute(citation: str, policy: RequestPolicy) -> bool:
    return normalise_statute(citation) in policy.immigration_statutes


def screen(facts: Facts, policy: RequestPolicy) -> Screening:
    """Rules 2-4, in the order that gives the most specific reason for a rejection."""
    authority = (
        facts.declared_immigration_authority
        or facts.agency_code.strip().upper() in policy.immigration_agencies
    )
    immigration = [s for s in facts.statutes if is_immigration_statute(s, policy)]
    related = authority or bool(immigration)

    def outcome(passed: bool, rule: str, reason: str) -> Screening:
        return Screening(passed, rule, reason, authority, related)

    if facts.statutes and len(immigration) == len(facts.statutes):
        return outcome(
            False,
            "3",
            "every statute cited is an immigration violation; the crime cannot be "
            "solely an immigration violation",
        )
    if facts.crime_category not in policy.qualifying_crimes:
        return outcome(
            False, "2", f"'{facts.crime_category}' is not a specific crime that qualifies"
        )
    if not facts.statutes:
        return outcome(False, "2", "no statute is cited, so no specific crime is named")
    if related and not facts.judge_signed_court_order:
        why = (
            "the agency is an immigration authority"
            if authority
            else ("an immigration statute is cited")
        )
        return outcome(
            False,
            "4",
            f"potentially immigration-related ({why}) and no court order signed by "
            "a judge or magistrate",
        )
    if related:
        return outcome(
            True,
            "4",
            "potentially immigration-related with a judge-signed court order: needs "
            "the Director's and the Governor's Office's reviews after the internal three",
        )
    return outcome(
        True, "2", f"a criminal investigation of a specific crime ({facts.crime_category})"
    )


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
        raise ApiError(
            409,
            "screening_rejected",
            "Screening rejected this request; it cannot be reviewed or approved.",
        )
    if status is not Status.in_review:
        raise ApiError(409, "review_closed", f"This request is already {status.value}.")
    if reviewer == submitted_by or reviewer in reviewer_ids:
        raise ApiError(
            403,
            "separation_of_duties",
            "Nobody may review a request twice or review a request they submitted.",
        )
    level = required_levels(immigration_related)[len(decided)]
    if LEVEL_ROLE[level] is not role:
        raise ApiError(
            409,
            "not_your_level",
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


def check_search(
    status: Status,
    authorised_until: datetime | None,
    searches_used: int,
    searches_allowed: int,
    now: datetime,
    operator: int,
    involved: Collection[int],
) -> None:
    """Rule 7 and separation of duties: an approved, unexpired request with searches left,
    searched by someone who neither submitted nor reviewed it."""
    if status is not Status.approved:
        raise ApiError(403, "request_not_approved", f"The request is {status.value}, not approved.")
    if authorised_until is None or now >= authorised_until:
        raise ApiError(403, "authorisation_expired", "The request's authorisation has expired.")
    if searches_used >= searches_allowed:
        raise ApiError(
            403, "searches_exhausted", "The request's authorised searches have all been used."
        )
    if operator in involved:
        raise ApiError(
            403,
            "separation_of_duties",
            "The operator who searches may not have submitted or reviewed the request.",
        )
