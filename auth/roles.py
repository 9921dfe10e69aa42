"""The roles and what each may do: the one table every route checks (DESIGN.md: who uses it),
and the review chain's levels with the one role that decides each."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    operator = "operator"
    staff_reviewer = "staff_reviewer"
    manager = "manager"
    unit_administrator = "unit_administrator"
    director = "director"
    governor_office = "governor_office"
    auditor = "auditor"
    records_clerk = "records_clerk"
    admin = "admin"
    review_system = "review_system"
    # RCW 43.386.050: a legitimate, independent tester of accuracy and of differences between
    # subpopulations, who sends photos of their own and never sees the gallery.
    independent_tester = "independent_tester"


# Roles held by systems, which sign in with a client id and secret instead of a password and
# a second factor.
SERVICE_ROLES = frozenset({Role.review_system})


class Permission(StrEnum):
    submit_request = "submit_request"
    read_request = "read_request"
    review_request = "review_request"
    read_court_order = "read_court_order"
    search = "search"
    act_on_behalf = "act_on_behalf"
    examine = "examine"
    read_outcome = "read_outcome"
    lookup_disclosures = "lookup_disclosures"
    read_reports = "read_reports"
    read_audit = "read_audit"
    read_operating_point = "read_operating_point"
    manage_accounts = "manage_accounts"
    evaluate = "evaluate"


class Level(StrEnum):
    """A level of the review chain (DESIGN.md, rules 4 and 5)."""

    staff = "staff"
    manager = "manager"
    unit_administrator = "unit_administrator"
    director = "director"
    governor_office = "governor_office"


# Who decides each level: the person who holds its role, and nobody else.
LEVEL_ROLE: dict[Level, Role] = {
    Level.staff: Role.staff_reviewer,
    Level.manager: Role.manager,
    Level.unit_administrator: Role.unit_administrator,
    Level.director: Role.director,
    Level.governor_office: Role.governor_office,
}
_REVIEWERS = frozenset(LEVEL_ROLE.values())

PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.submit_request: frozenset({Role.review_system, Role.records_clerk}),
    Permission.read_request: frozenset(
        {Role.review_system, Role.records_clerk, Role.operator, Role.auditor, *_REVIEWERS}
    ),
    # Only the person who holds the level's role decides it, under their own second factor;
    # the review system may pass the decision on beside the reviewer's token, never alone.
    Permission.review_request: frozenset(_REVIEWERS),
    Permission.read_court_order: frozenset(_REVIEWERS),
    # Only a trained operator searches; admins and reviewers never do.
    Permission.search: frozenset({Role.operator}),
    # The review system may pass on a reviewer's decision or an operator's search, but only
    # beside that person's own token (X-Calling-System carries the system's).
    Permission.act_on_behalf: frozenset({Role.review_system}),
    # Only a trained operator examines a search's candidates: the one who searched, or a
    # second one verifying blind; only the system that passed a search on reads its outcome.
    Permission.examine: frozenset({Role.operator}),
    Permission.read_outcome: frozenset({Role.review_system}),
    Permission.lookup_disclosures: frozenset({Role.records_clerk, Role.auditor}),
    Permission.read_reports: frozenset({Role.auditor}),
    Permission.read_audit: frozenset({Role.auditor}),
    Permission.read_operating_point: frozenset({Role.auditor}),
    Permission.manage_accounts: frozenset({Role.admin}),
    # Only a tester evaluates, on their own photos; nobody else's evaluations are theirs.
    Permission.evaluate: frozenset({Role.independent_tester}),
}


def may(role: Role, permission: Permission) -> bool:
    return role in PERMISSIONS[permission]
