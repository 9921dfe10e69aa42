"""The request rules: screening examples, and property-based tests over generated requests
and review sequences, first on the pure rules, then through the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app import workflow
from app.config import Settings
from app.errors import ApiError
from app.models import Account, AgencyRequest
from app.rules import (
    LEVEL_ROLE,
    Decision,
    Facts,
    Level,
    Status,
    check_review,
    check_search,
    normalise_statute,
    required_levels,
    screen,
    status_after,
)
from app.schemas import NewRequest
from auth import Role
from tests.governance import COURT_ORDER, Staff, request_body

POLICY = Settings().request_policy
IMMIGRATION_CITATIONS = ["8 U.S.C. 1325", "8 USC § 1326(a)", "8 u.s.c. §1325(a)(1)"]
OTHER_CITATIONS = ["21 U.S.C. 841", "RCW 69.50.401", "18 U.S.C. § 1344", "RCW 9A.56.030"]
AGENCIES = ["OPD", "KCSO", "WSP", "FBI", "DEA", "ICE", "DHS", "CBP", "USCIS"]
CATEGORIES = [*sorted(POLICY.qualifying_crimes), "immigration", "traffic", "unspecified"]


@pytest.mark.parametrize(
    ("citation", "normal"),
    [
        ("8 U.S.C. § 1325(a)", "8 USC 1325"),
        ("8 usc 1326", "8 USC 1326"),
        ("  8  U.S.C.A.  sec. 1325 ", "8 USC 1325"),
        ("rcw  69.50.401", "RCW 69.50.401"),
    ],
)
def test_citations_are_normalised(citation: str, normal: str) -> None:
    assert normalise_statute(citation) == normal


def facts(**changes: object) -> Facts:
    base = dict(
        agency_code="OPD",
        declared_immigration_authority=False,
        crime_category="narcotics",
        statutes=["RCW 69.50.401"],
        judge_signed_court_order=False,
    )
    return Facts(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "passed", "rule", "related"),
    [
        ({}, True, "2", False),
        ({"crime_category": "traffic"}, False, "2", False),
        ({"statutes": []}, False, "2", False),
        ({"statutes": ["8 U.S.C. 1325"]}, False, "3", True),
        ({"statutes": ["8 U.S.C. 1325"], "judge_signed_court_order": True}, False, "3", True),
        ({"statutes": ["8 U.S.C. 1326", "21 U.S.C. 841"]}, False, "4", True),
        ({"agency_code": "ICE"}, False, "4", True),
        ({"declared_immigration_authority": True}, False, "4", True),
        ({"agency_code": "ICE", "judge_signed_court_order": True}, True, "4", True),
    ],
)
def test_screening_examples(changes: dict, passed: bool, rule: str, related: bool) -> None:
    result = screen(facts(**changes), POLICY)
    assert (result.passed, result.rule, result.immigration_related) == (passed, rule, related)
    assert result.reason


generated_facts = st.builds(
    Facts,
    agency_code=st.sampled_from(AGENCIES),
    declared_immigration_authority=st.booleans(),
    crime_category=st.sampled_from(CATEGORIES),
    statutes=st.lists(st.sampled_from(IMMIGRATION_CITATIONS + OTHER_CITATIONS), max_size=4),
    judge_signed_court_order=st.booleans(),
)


def is_related(f: Facts) -> bool:
    return (
        f.declared_immigration_authority
        or f.agency_code in POLICY.immigration_agencies
        or any(s in IMMIGRATION_CITATIONS for s in f.statutes)
    )


@given(generated_facts)
def test_screening_never_passes_what_the_rules_forbid(f: Facts) -> None:
    result = screen(f, POLICY)
    solely_immigration = bool(f.statutes) and all(s in IMMIGRATION_CITATIONS for s in f.statutes)
    assert result.immigration_related == is_related(f)
    if solely_immigration:
        assert not result.passed and result.rule == "3"
    if is_related(f) and not f.judge_signed_court_order:
        assert not result.passed
    if result.passed:
        assert f.crime_category in POLICY.qualifying_crimes and f.statutes


REVIEW_ROLES = list(LEVEL_ROLE.values())
# Reviewer ids 1-10 hold review roles two apiece; id 0 submitted the request.
POOL = {i: REVIEW_ROLES[(i - 1) // 2] for i in range(1, 11)}
SUBMITTER = 0


def _attempts(max_size: int) -> st.SearchStrategy[list[tuple[int, Decision]]]:
    return st.lists(
        st.tuples(
            st.sampled_from([SUBMITTER, *POOL]),
            st.sampled_from([Decision.approve] * 4 + [Decision.deny]),
        ),
        max_size=max_size,
    )


# One reviewer of each level in order, mostly approving: random attempts alone rarely get a
# request through, so half the sequences are such a chain with random attempts cut into it.
_in_order = st.tuples(
    st.lists(st.integers(0, 1), min_size=5, max_size=5),
    st.lists(st.sampled_from([Decision.approve] * 9 + [Decision.deny]), min_size=5, max_size=5),
).map(lambda t: [(1 + 2 * level + pick, d) for level, (pick, d) in enumerate(zip(*t))])
attempts = st.one_of(
    _attempts(12),
    st.builds(
        lambda chain, noise, cut: chain[:cut] + noise + chain[cut:],
        _in_order,
        _attempts(3),
        st.integers(0, 5),
    ),
)


@dataclass
class Chain:
    """A request's review state, moved on only by what check_review admits."""

    immigration_related: bool
    status: Status
    levels: list[Level] = field(default_factory=list)
    reviewers: list[int] = field(default_factory=list)

    def attempt(self, reviewer: int, role: Role, decision: Decision) -> bool:
        try:
            level = check_review(
                self.status,
                self.immigration_related,
                self.levels,
                set(self.reviewers),
                SUBMITTER,
                reviewer,
                role,
            )
        except ApiError:
            return False
        self.levels.append(level)
        self.reviewers.append(reviewer)
        self.status = status_after(decision, level, self.immigration_related)
        return True


def assert_chain_sound(
    passed: bool, related: bool, status: Status, levels: list, reviewers: list, decisions: list
) -> None:
    required = [level.value for level in required_levels(related)]
    assert [str(level) for level in levels] == required[: len(levels)], "a level was skipped"
    assert len(set(reviewers)) == len(reviewers), "someone reviewed twice"
    assert SUBMITTER not in reviewers, "the submitter reviewed"
    if not passed:
        assert not levels and status is Status.rejected
    if status is Status.approved:
        assert passed and len(levels) == len(required)
        assert all(d == Decision.approve for d in decisions)
    if Decision.deny in decisions:
        assert status is Status.denied and decisions[-1] == Decision.deny


# The whole chain approving, in order, once for each kind of request.
FULL_CHAIN = [(i, Decision.approve) for i in (1, 3, 5, 7, 9)]
LOCAL_CASE = facts()
IMMIGRATION_CASE = facts(agency_code="ICE", judge_signed_court_order=True)


@given(generated_facts, attempts)
@example(LOCAL_CASE, FULL_CHAIN[:3])
@example(IMMIGRATION_CASE, FULL_CHAIN)
@example(IMMIGRATION_CASE, FULL_CHAIN[:3] + [(7, Decision.deny)])
def test_no_review_sequence_skips_a_level_or_repeats_a_person(f: Facts, tried: list) -> None:
    result = screen(f, POLICY)
    chain = Chain(
        result.immigration_related, Status.in_review if result.passed else Status.rejected
    )
    decisions = []
    for reviewer, decision in tried:
        role = POOL.get(reviewer, Role.records_clerk)
        if chain.attempt(reviewer, role, decision):
            decisions.append(decision)
    assert_chain_sound(
        result.passed,
        result.immigration_related,
        chain.status,
        chain.levels,
        chain.reviewers,
        decisions,
    )
    if f.statutes and all(s in IMMIGRATION_CITATIONS for s in f.statutes):
        assert chain.status is not Status.approved
    if result.immigration_related and not f.judge_signed_court_order:
        assert chain.status is not Status.approved


def as_request(f: Facts) -> NewRequest:
    return NewRequest.model_validate(
        request_body(
            agency_code=f.agency_code,
            agency_kind="federal" if f.agency_code in AGENCIES[3:] else "local",
            immigration_authority=f.declared_immigration_authority,
            crime={"category": f.crime_category, "statutes": f.statutes},
            legal_process="court_order" if f.judge_signed_court_order else "subpoena",
            court_order=COURT_ORDER if f.judge_signed_court_order else None,
        )
    )


@pytest.fixture
def pool(sessions: sessionmaker[Session], settings: Settings) -> dict[int, int]:
    """Real accounts for the generated reviewer ids: index in POOL -> account id."""
    staff = Staff(sessions, settings)
    ids = {SUBMITTER: staff.add("rita.records", Role.records_clerk)}
    for i, role in POOL.items():
        ids[i] = staff.add(f"reviewer-{i}", role)
    return ids


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(f=generated_facts, tried=attempts)
@example(f=LOCAL_CASE, tried=FULL_CHAIN[:3])
@example(f=IMMIGRATION_CASE, tried=FULL_CHAIN)
def test_the_database_workflow_holds_the_same_invariants(
    sessions: sessionmaker[Session], settings: Settings, pool: dict[int, int], f: Facts, tried: list
) -> None:
    with sessions.begin() as session:
        request_id = workflow.submit(session, as_request(f), settings, pool[SUBMITTER]).id
    for reviewer, decision in tried:
        with sessions() as session:
            try:
                with session.begin():
                    account = session.get_one(Account, pool[reviewer])
                    workflow.review(session, request_id, account, None, decision, "r", settings)
            except ApiError:
                pass
    with sessions() as session:
        request = session.get_one(AgencyRequest, request_id)
        by_account = {account: i for i, account in pool.items()}
        assert_chain_sound(
            request.screening_outcome == "passed",
            request.immigration_related,
            Status(request.status),
            [r.level for r in request.reviews],
            [by_account[r.reviewer_id] for r in request.reviews],
            [Decision(r.decision) for r in request.reviews],
        )
        if request.status == Status.approved:
            assert request.searches_allowed == settings.authorised_searches
            assert request.authorised_until is not None


NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("status", "until", "used", "operator", "code"),
    [
        (Status.in_review, None, 0, 50, "request_not_approved"),
        (Status.denied, None, 0, 50, "request_not_approved"),
        (Status.approved, NOW - timedelta(seconds=1), 0, 50, "authorisation_expired"),
        (Status.approved, NOW, 0, 50, "authorisation_expired"),
        (Status.approved, LATER, 1, 50, "searches_exhausted"),
        (Status.approved, LATER, 0, SUBMITTER, "separation_of_duties"),
        (Status.approved, LATER, 0, 3, "separation_of_duties"),
        (Status.approved, LATER, 0, 50, None),
    ],
)
def test_what_a_search_needs(
    status: Status, until: datetime | None, used: int, operator: int, code: str | None
) -> None:
    involved = {SUBMITTER, 1, 3, 5}
    if code is None:
        check_search(status, until, used, 1, NOW, operator, involved)
        return
    with pytest.raises(ApiError) as refusal:
        check_search(status, until, used, 1, NOW, operator, involved)
    assert refusal.value.status == 403 and refusal.value.code == code
