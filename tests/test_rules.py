"""The request rules: screening examples, and property-based tests over generated requests
and review sequences, first on the pure rules, then through the database."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.core.composition import approval_policy, request_policy, template_keys
from app.core.refusals import Code, Refusal
from app.core.settings import Settings
from app.requests import workflow
from app.requests.models import AgencyRequest
from app.requests.rules import (
    Decision,
    Status,
    check_review,
    required_levels,
    status_after,
)
from app.requests.schemas import NewRequest
from app.requests.screening import AgencyFacts, CourtOrderFacts, Facts, court_order_problem, screen
from app.searches.rules import (
    Conclusion,
    SearchOutcome,
    check_conclusions,
    check_search,
    review_outcome,
)
from app.searches.workflow import spend_search
from auth import LEVEL_ROLE, Level, Role
from tests.support.requests import COURT_ORDER, COURT_ORDER_DOCUMENT, request_body
from tests.support.staff import Staff

POLICY = request_policy(Settings())
TODAY = date.today()
ORDER = CourtOrderFacts("U.S. District Court, W.D. Wash.", "Hon. M. Chen", TODAY - timedelta(9))
# Immigration violations, spelt as agencies spell them (the grammar's own tests spell them
# every way: tests/test_citations.py).
IMMIGRATION_CITATIONS = [
    "8 U.S.C. 1325",
    "8 USC § 1326(a)",
    "8 U.S.C. 1325.",
    "INA 275",
    "8 U.S.C. 1324",
    "Title 8, Section 1326",
]
RELATED_CITATIONS = ["18 U.S.C. 1546", "18 U.S.C. § 911"]
OTHER_CITATIONS = ["21 U.S.C. 841", "RCW 69.50.401", "18 U.S.C. § 1344", "RCW 9A.56.030"]
NOT_CITATIONS = ["x", "N/A", "none"]
AGENCIES = ["OPD", "KCSO", "WSP", "FBI", "DEA", "ICE", "DHS", "CBP", "USCIS", "HSI", "US-ICE"]
IMMIGRATION_AGENCIES = set(AGENCIES[5:])
CATEGORIES = [*sorted(POLICY.qualifying_crimes), "immigration", "traffic", "unspecified"]
BAD_ORDERS = [
    CourtOrderFacts("Superior Court", "none", TODAY - timedelta(9)),
    CourtOrderFacts("-", "Hon. M. Chen", TODAY - timedelta(9)),
    CourtOrderFacts("U.S. District Court", "Hon. M. Chen", TODAY + timedelta(1500)),
    CourtOrderFacts("U.S. District Court", "Hon. M. Chen", TODAY - timedelta(400)),
    CourtOrderFacts("ICE Seattle Field Office", "SDDO K. Lund", TODAY - timedelta(9)),
    CourtOrderFacts("Immigration Court", "Immigration Judge A. Roe", TODAY - timedelta(9)),
    CourtOrderFacts("King County Superior Court", "Deputy Clerk B. Moss", TODAY - timedelta(9)),
    CourtOrderFacts("U.S. District Court", "Hon.", TODAY - timedelta(9)),
]
# Placeholders behind a title, executive-branch judges and officers by their abbreviations,
# court staff: none of them a judge's signature.
NOT_JUDGES = [
    ("Unknown Court", "Judge None"), ("Superior Court", "Hon. Unknown"), ("Court", "Hon. N/A"),
    ("N/A", "N/A N/A"), ("TBD", "TBD TBD"), ("Superior Court", "Judge Pending"),
    ("Superior Court", "Hon. Redacted"), ("Superior Court", "No judge"),
    ("Superior Court", "Not signed"), ("Superior Court", "Unsigned order"),
    ("Tacoma EOIR", "IJ J. Smith"), ("BIA", "Hon. A. Roe"),
    ("Office of the Chief Imm. Judge", "Hon. B. Roe"), ("Superior Court", "Det. Smith"),
    ("Superior Court", "Sgt. Smith"), ("Superior Court", "SAC Jones"),
    ("Superior Court", "AUSA Smith"), ("Superior Court", "Asst. U.S. Atty Smith"),
    ("Superior Court", "Deputy Registrar"), ("Superior Court", "Court Administrator"),
    ("Superior Court", "Bailiff"), ("Superior Court", "Clerks Office"),
]  # fmt: skip
JUDGES = [
    ("U.S. District Court, W.D. Wash.", "Hon. M. Chen"),
    ("King County Superior Court", "Judge Sean P. O'Donnell"),
    ("U.S. District Court", "Magistrate Judge Brian A. Tsuchida"),
    ("Thurston County Superior Court", "Commissioner Jane Doe"),
]


@pytest.mark.parametrize(("court", "judge"), NOT_JUDGES + JUDGES)
def test_a_court_order_counts_only_in_a_judges_form(court: str, judge: str) -> None:
    order = CourtOrderFacts(court, judge, TODAY - timedelta(9))
    problem = court_order_problem(order, TODAY, timedelta(days=365), POLICY.immigration_authorities)
    assert (problem is None) == ((court, judge) in JUDGES), problem


ICE = AgencyFacts("ICE", "U.S. Immigration and Customs Enforcement")


def facts(**changes: Any) -> Facts:
    base = Facts(
        agency=AgencyFacts("OPD", "Olympia Police Department"),
        information_for=None,
        declared_immigration_authority=False,
        crime_category="narcotics",
        statutes=["RCW 69.50.401"],
        court_order=None,
        today=TODAY,
    )
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "passed", "rule", "related"),
    [
        ({}, True, "2", False),
        ({"crime_category": "traffic"}, False, "2", False),
        ({"statutes": []}, False, "2", False),
        ({"statutes": ["8 U.S.C. 1325"]}, False, "3", True),
        ({"statutes": ["8 U.S.C. 1325"], "court_order": ORDER}, False, "3", True),
        ({"statutes": ["8 U.S.C. 1326", "21 U.S.C. 841"]}, False, "4", True),
        ({"agency": ICE}, False, "4", True),
        ({"declared_immigration_authority": True}, False, "4", True),
        ({"agency": ICE, "court_order": ORDER}, True, "4", True),
        # The attacks screening once let through.
        ({"statutes": ["8 U.S.C. 1325."]}, False, "3", True),
        ({"statutes": ["INA 275"]}, False, "3", True),
        ({"statutes": ["8 U.S.C. 1324"]}, False, "3", True),
        ({"statutes": ["8 U.S.C. 1325", "x"]}, False, "3", True),
        ({"statutes": ["N/A"]}, False, "2", False),
        ({"statutes": ["21 U.S.C. 841", "none"]}, False, "2", False),
        ({"agency": AgencyFacts("HSI", "Special agent's office")}, False, "4", True),
        ({"agency": AgencyFacts("SEA-1", "Homeland Security Investigations")}, False, "4", True),
        ({"information_for": ICE}, False, "4", True),
        ({"information_for": ICE, "court_order": ORDER}, True, "4", True),
        ({"statutes": ["18 U.S.C. 1546"]}, False, "4", True),
        ({"statutes": ["18 U.S.C. 1546"], "court_order": ORDER}, True, "4", True),
        *[({"agency": ICE, "court_order": order}, False, "4", True) for order in BAD_ORDERS],
    ],
)
def test_screening_examples(changes: dict, passed: bool, rule: str, related: bool) -> None:
    result = screen(facts(**changes), POLICY)
    assert (result.passed, result.rule, result.immigration_related) == (passed, rule, related)
    assert result.reason


def test_a_refusal_names_the_citation_it_could_not_read() -> None:
    result = screen(facts(statutes=["21 U.S.C. 841", "see narrative"]), POLICY)
    assert not result.passed and "'see narrative' is not a statute citation" in result.reason


generated_facts = st.builds(
    Facts,
    agency=st.sampled_from(AGENCIES).map(lambda code: AgencyFacts(code, f"Agency {code}")),
    information_for=st.none() | st.sampled_from([ICE, AgencyFacts("KCSO", "Sheriff")]),
    declared_immigration_authority=st.booleans(),
    crime_category=st.sampled_from(CATEGORIES),
    statutes=st.lists(
        st.sampled_from(
            IMMIGRATION_CITATIONS + RELATED_CITATIONS + OTHER_CITATIONS + NOT_CITATIONS
        ),
        max_size=4,
    ),
    court_order=st.none() | st.sampled_from([ORDER, *BAD_ORDERS]),
    today=st.just(TODAY),
)


def is_authority(f: Facts) -> bool:
    return (
        f.declared_immigration_authority
        or f.agency.code in IMMIGRATION_AGENCIES
        or f.information_for == ICE
    )


def is_related(f: Facts) -> bool:
    listed = IMMIGRATION_CITATIONS + RELATED_CITATIONS
    return is_authority(f) or any(s in listed for s in f.statutes)


@given(generated_facts)
def test_screening_never_passes_what_the_rules_forbid(f: Facts) -> None:
    result = screen(f, POLICY)
    readable = [s for s in f.statutes if s not in NOT_CITATIONS]
    solely_immigration = bool(readable) and all(s in IMMIGRATION_CITATIONS for s in readable)
    assert result.immigration_authority == is_authority(f)
    assert result.immigration_related == is_related(f)
    if solely_immigration:
        assert not result.passed and result.rule == "3"
    if is_related(f) and f.court_order != ORDER:
        assert not result.passed
    if result.passed:
        assert f.crime_category in POLICY.qualifying_crimes
        assert readable and not set(f.statutes) & set(NOT_CITATIONS)
        assert set(readable) - set(IMMIGRATION_CITATIONS)


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
        except Refusal:
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
IMMIGRATION_CASE = facts(agency=ICE, court_order=ORDER)


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
    if result.immigration_related and f.court_order != ORDER:
        assert chain.status is not Status.approved


def as_request(f: Facts) -> NewRequest:
    order = f.court_order
    return NewRequest.model_validate(
        request_body(
            agency_code=f.agency.code,
            agency_name=f.agency.name,
            agency_kind="federal" if f.agency.code in AGENCIES[3:] else "local",
            information_for=vars(f.information_for) if f.information_for else None,
            immigration_authority=f.declared_immigration_authority,
            crime={"category": f.crime_category, "statutes": f.statutes},
            legal_process="court_order" if order else "subpoena",
            court_order=COURT_ORDER
            | {"court": order.court, "judge": order.judge, "signed_on": str(order.signed_on)}
            if order
            else None,
        )
    )


@pytest.fixture
def pool(sessions: sessionmaker[Session], settings: Settings) -> dict[int, int]:
    """Real accounts for the generated reviewer ids: index in POOL -> account id."""
    staff = Staff.in_process(sessions, settings)
    staff.add("olga.operator", Role.operator)
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
        request = workflow.submit(session, as_request(f), request_policy(settings), pool[SUBMITTER])
        request_id = request.id
        if f.court_order is not None:
            workflow.attach_court_order(
                session, request_id, pool[SUBMITTER], COURT_ORDER_DOCUMENT, template_keys(settings)
            )
    for reviewer, decision in tried:
        role = POOL.get(reviewer)
        operators = ["olga.operator"] if role is Role.unit_administrator else []
        with sessions() as session:
            try:
                with session.begin():
                    account = session.get_one(Account, pool[reviewer])
                    workflow.review(
                        session,
                        request_id,
                        account,
                        None,
                        decision,
                        "r",
                        operators,
                        approval_policy(settings),
                    )
            except Refusal:
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
        (Status.approved, LATER, 0, 52, "not_assigned"),
        (Status.approved, LATER, 0, 50, None),
    ],
)
def test_what_a_search_needs(
    status: Status, until: datetime | None, used: int, operator: int, code: str | None
) -> None:
    involved, assigned = {SUBMITTER, 1, 3, 5}, {50, 51}
    if code is None:
        check_search(status, until, used, 1, NOW, operator, involved, assigned)
        return
    with pytest.raises(Refusal) as refusal:
        check_search(status, until, used, 1, NOW, operator, involved, assigned)
    assert refusal.value.code is Code[code] and refusal.value.code.status == 403


RULE_7 = {"request_not_approved", "authorisation_expired", "searches_exhausted"}


def test_rule_7s_enforcement_and_its_explanation_agree(
    sessions: sessionmaker[Session], pool: dict[int, int]
) -> None:
    """The guarded update that spends a search refuses exactly the requests the pure rule
    explains a refusal for, in every state a request can be in: one decision, written
    twice, would drift."""
    now = datetime.now(UTC)
    # Authorised until: never set, or a day, a second or no time at all either side of now.
    offsets = [None, *(timedelta(**{unit: n}) for unit in ("days", "seconds") for n in (-1, 1))]
    states = itertools.product(list(Status), [*offsets, timedelta(0)], range(3), range(3))
    with sessions() as session:
        request = workflow.submit(session, as_request(facts()), POLICY, pool[SUBMITTER])
        session.flush()
        for status, left, used, allowed in states:
            until = None if left is None else now + left
            request.status, request.authorised_until = status, until
            request.searches_used, request.searches_allowed = used, allowed
            session.flush()
            nested = session.begin_nested()
            enforced = spend_search(session, request.id, now)
            nested.rollback()
            try:
                check_search(status, until, used, allowed, now, 99, set(), {99})
                explained = None
            except Refusal as refusal:
                explained = refusal.code.name
            state = (status, left, used, allowed)
            assert enforced == (explained is None), state
            assert explained is None or explained in RULE_7, state
        session.rollback()


# The human review: a conclusion on every candidate, and a release only when every examiner
# identified the same one.

CONCLUSIONS = list(Conclusion)


@given(
    st.integers(min_value=0, max_value=4).flatmap(
        lambda n: st.tuples(
            st.just(list(range(1, n + 1))),
            st.lists(
                st.tuples(st.integers(min_value=0, max_value=5), st.sampled_from(CONCLUSIONS)),
                max_size=6,
            ),
        )
    )
)
def test_an_examination_concludes_once_on_every_candidate_and_identifies_at_most_one(
    case: tuple[list[int], list[tuple[int, Conclusion]]],
) -> None:
    ranks, concluded = case
    complete = sorted(rank for rank, _ in concluded) == ranks
    identifications = sum(c is Conclusion.identification for _, c in concluded)
    try:
        check_conclusions(ranks, concluded)
    except Refusal as refusal:
        expected = Code.conclusions_incomplete if not complete else Code.several_identifications
        assert refusal.code is expected
        assert not complete or identifications > 1
    else:
        assert complete and identifications <= 1


def test_only_the_same_identification_by_every_examiner_releases() -> None:
    def identifying(rank: int | None) -> dict[int, Conclusion]:
        return {r: Conclusion.identification if r == rank else Conclusion.exclusion for r in (1, 2)}

    choices = [None, 1, 2]
    for required in (1, 2):
        for picks in itertools.product(choices, repeat=required):
            examinations = [identifying(p) for p in picks]
            assert review_outcome(examinations[:-1], required) is None
            expected: tuple[SearchOutcome, int | None]
            if len(set(picks)) > 1:
                expected = (SearchOutcome.disagreement, None)
            elif picks[0] is None:
                expected = (SearchOutcome.none, None)
            else:
                expected = (SearchOutcome.confirmed, picks[0])
            assert review_outcome(examinations, required) == expected
    inconclusive = {1: Conclusion.inconclusive, 2: Conclusion.exclusion}
    assert review_outcome([identifying(1), inconclusive], 2) == (SearchOutcome.disagreement, None)
