"""No race changes an outcome: each call that must happen once is sent ten or more times at
the same moment, over real HTTP, on SQLite and on PostgreSQL, and exactly one wins."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial

import httpx
import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account, AccountChange
from app.accounts.service import administrator_accounts, first_administrator
from app.api.main import create_app
from app.audit.models import AuditEntry
from app.core.composition import account_policy
from app.core.refusals import Code, Refusal
from app.core.settings import Settings
from app.gallery.models import LicenseRecord
from app.requests.models import AgencyRequest
from app.searches.models import Disclosure, Search, SearchCandidate
from app.searches.rules import Conclusion
from app.searches.workflow import examine
from auth import Role
from tests.support.requests import request_body
from tests.support.searches import BASIS
from tests.support.service import at_once, served_in_thread
from tests.support.staff import PASSWORD, Staff

TIMES = 12


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The rate limits are not what these tests try: every call gets through to the race."""
    return settings.model_copy(
        update={"login_rate_limit": "1000/minute", "search_rate_limit": "1000/minute"}
    )


@pytest.fixture
def served(settings: Settings) -> Iterator[httpx.Client]:
    with served_in_thread(create_app(settings)) as client:
        yield client


def outcomes(sessions: sessionmaker[Session], event: str) -> Counter[str]:
    with sessions() as session:
        return Counter(
            session.scalars(select(AuditEntry.outcome).where(AuditEntry.event_type == event))
        )


def undecided_search(
    sessions: sessionmaker[Session], staff: Staff, examiners: int = 1, verifier: bool = True
) -> int:
    """A search with one candidate, waiting for its examination (written as the search route
    would leave it: the race is in the examination); with two examiners, Vera verifies."""
    clerk = staff.add("rita.records", Role.records_clerk)
    operator = staff.add("olga.operator", Role.operator)
    verifying = staff.add("vera.verifier", Role.operator) if examiners > 1 and verifier else None
    with sessions.begin() as session:
        record = LicenseRecord(
            license_number="WDL0RACE001",
            first_name="Ann",
            last_name="Example",
            date_of_birth=date(1980, 1, 1),
        )
        body = request_body()
        request = AgencyRequest(
            submitted_by=clerk,
            agency_name=body["agency_name"],
            agency_code=body["agency_code"],
            agency_kind="local",
            immigration_authority=False,
            case_number=body["case_number"],
            requesting_officer=body["requesting_officer"],
            crime_category="narcotics",
            statutes=body["crime"]["statutes"],
            legal_process="subpoena",
            narrative=body["narrative"],
            immigration_related=False,
            screening_outcome="passed",
            screening_rule="2",
            screening_reason="a criminal investigation of a specific crime",
            status="approved",
        )
        session.add_all([record, request])
        session.flush()
        search = Search(
            request_id=request.id,
            operator_id=operator,
            probe_sha256="0" * 64,
            model_id="sface",
            index_revision=1,
            threshold=0.5,
            margin=0.0,
            operating_point_sha256="0" * 64,
            examiners_required=examiners,
            verifier_id=verifying,
            examinations_recorded=0,
            candidates=[
                SearchCandidate(rank=1, ref="the-candidate", record_id=record.id, distance=0.3)
            ],
        )
        session.add(search)
        session.flush()
        return search.id


def examination(identify: bool) -> dict:
    conclusion = "identification" if identify else "exclusion"
    return {
        "conclusions": [{"candidate": "the-candidate", "conclusion": conclusion, "basis": BASIS}]
    }


def test_one_decision_on_a_search_whatever_is_sent_at_once(
    served: httpx.Client, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("aldo.auditor", Role.auditor)
    search_id = undecided_search(sessions, staff)
    olga = staff.headers("olga.operator")
    path = f"/v1/searches/{search_id}/examination"
    bodies = [examination(False), examination(True)] * (TIMES // 2)
    answers = at_once([partial(served.post, path, headers=olga, json=b) for b in bodies])
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 1, 409: TIMES - 1}, statuses
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"already_decided"}
    [won] = [a.json() for a in answers if a.status_code == 200]
    with sessions() as session:
        search = session.get_one(Search, search_id)
        disclosures = session.scalars(select(Disclosure)).all()
    assert search.decision == won["decision"]
    assert len(disclosures) == (1 if won["decision"] == "confirmed" else 0)
    assert outcomes(sessions, "search.decision") == {won["decision"]: 1}
    assert outcomes(sessions, "search.examination") == {"refused:already_decided": TIMES - 1}
    today = date.today()
    report = served.get(
        "/v1/reports/transparency",
        params={"from": str(today), "to": str(today + timedelta(days=1))},
        headers=staff.headers("aldo.auditor"),
    ).json()
    assert report["confirmations"] == report["releases"] == len(disclosures)


def test_an_examination_that_read_the_search_before_it_was_decided_is_told_it_was_decided(
    served: httpx.Client, sessions: sessionmaker[Session], staff: Staff, settings: Settings
) -> None:
    """The race above, slowed down: a call reads the search undecided, the examiner's other
    call decides it, and only then does the first look for their conclusions. It finds them,
    but the answer is the decision, as for every call that loses that race."""
    search_id = undecided_search(sessions, staff)
    with sessions() as session:
        read_first = session.get_one(Search, search_id)
        assert read_first.decision is None
        decided = served.post(
            f"/v1/searches/{search_id}/examination",
            headers=staff.headers("olga.operator"),
            json=examination(False),
        )
        assert decided.status_code == 200, decided.json()
        concluded = [("the-candidate", Conclusion.exclusion, BASIS)]
        with pytest.raises(Refusal) as refused:
            examine(session, search_id, read_first.operator_id, concluded, settings.operator_course)
    assert refused.value.code == Code.already_decided


def test_two_examiners_concluding_at_once_decide_the_search_once(
    served: httpx.Client, sessions: sessionmaker[Session], staff: Staff
) -> None:
    """Neither examiner's conclusions are lost to the other's: whichever commits second sees
    the first's and decides, exactly once."""
    search_id = undecided_search(sessions, staff, examiners=2)
    path = f"/v1/searches/{search_id}/examination"
    examiners = [staff.headers("olga.operator"), staff.headers("vera.verifier")] * (TIMES // 2)
    answers = at_once(
        [partial(served.post, path, headers=h, json=examination(True)) for h in examiners]
    )
    assert Counter(a.status_code for a in answers) == {200: 2, 409: TIMES - 2}
    assert sorted(str(a.json()["decision"]) for a in answers if a.status_code == 200) == [
        "None",
        "confirmed",
    ]
    with sessions() as session:
        assert session.get_one(Search, search_id).decision == "confirmed"
        assert len(session.scalars(select(Disclosure)).all()) == 1
    assert outcomes(sessions, "search.decision") == {"confirmed": 1}
    assert outcomes(sessions, "search.examination")["success"] == 1


def test_a_one_time_code_signs_in_once_however_many_sign_ins_carry_it(
    served: httpx.Client, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("aldo.auditor", Role.auditor)
    code = pyotp.TOTP(staff.totp["aldo.auditor"]).now()
    login = {"username": "aldo.auditor", "password": PASSWORD, "totp_code": code}
    answers = at_once([lambda: served.post("/v1/auth/login", json=login)] * TIMES)
    assert Counter(a.status_code for a in answers) == {200: 1, 401: TIMES - 1}
    assert outcomes(sessions, "login") == {
        "success": 1,
        "refused:invalid_credentials": TIMES - 1,
    }


@pytest.mark.parametrize("max_failures", [100, 5])
def test_every_failed_sign_in_sent_at_once_is_counted(
    settings: Settings, sessions: sessionmaker[Session], max_failures: int
) -> None:
    lenient = settings.model_copy(update={"lockout_failures": max_failures})
    staff = Staff.in_process(sessions, lenient)
    account_id = staff.add("aldo.auditor", Role.auditor)
    wrong = {"username": "aldo.auditor", "password": "not the password", "totp_code": "000000"}
    with served_in_thread(create_app(lenient)) as served:
        answers = at_once([lambda: served.post("/v1/auth/login", json=wrong)] * TIMES)
    assert {a.status_code for a in answers} == {401}
    with sessions() as session:
        account = session.get_one(Account, account_id)
    if max_failures > TIMES:
        assert account.failed_logins == TIMES and account.locked_until is None
    else:
        # Locked, and the count restarted at each lock: every failure still counted.
        assert account.locked_until is not None and account.locked_until > datetime.now(UTC)
        assert account.failed_logins == TIMES % max_failures


def test_an_activation_code_activates_once(
    served: httpx.Client, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("ada.admin", Role.admin)
    staff.add("ben.admin", Role.admin)
    asked = served.post(
        "/v1/accounts",
        headers=staff.headers("ada.admin"),
        json={"username": "nia.new", "role": "auditor"},
    ).json()
    approved = served.post(
        f"/v1/account-changes/{asked['pending_change']['id']}/approve",
        headers=staff.headers("ben.admin"),
    ).json()
    halves = (asked["credentials"], approved["credentials"])
    code = "-".join(half["activation_code"] for half in halves)
    passwords = [f"lilac orbit fennel {n}" for n in range(TIMES)]
    answers = at_once(
        [
            partial(
                served.post,
                "/v1/auth/activate",
                json={"username": "nia.new", "activation_code": code, "password": p},
            )
            for p in passwords
        ]
    )
    assert Counter(a.status_code for a in answers) == {200: 1, 401: TIMES - 1}
    assert outcomes(sessions, "account.activate") == {
        "success": 1,
        "refused:invalid_activation": TIMES - 1,
    }


def test_a_pending_change_is_approved_once(
    served: httpx.Client, sessions: sessionmaker[Session], staff: Staff
) -> None:
    staff.add("ada.admin", Role.admin)
    staff.add("ben.admin", Role.admin)
    staff.add("cai.admin", Role.admin)
    asked = served.post(
        "/v1/accounts",
        headers=staff.headers("ada.admin"),
        json={"username": "oli.operator", "role": "operator"},
    )
    assert asked.status_code == 202
    path = f"/v1/account-changes/{asked.json()['pending_change']['id']}/approve"
    approvers = [staff.headers("ben.admin"), staff.headers("cai.admin")] * (TIMES // 2)
    answers = at_once([partial(served.post, path, headers=h) for h in approvers])
    assert Counter(a.status_code for a in answers) == {200: 1, 409: TIMES - 1}
    with sessions() as session:
        operators = session.scalars(select(Account).where(Account.username == "oli.operator")).all()
        change = session.scalars(select(AccountChange)).one()
    assert len(operators) == 1 and change.status == "approved"
    assert outcomes(sessions, "account_change.approve") == {
        "success": 1,
        "refused:change_closed": TIMES - 1,
    }


def test_the_first_administrator_is_made_once_however_many_commands_ask_at_once(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Whoever runs `facematch accounts first-admin` several times at once makes one
    administrator, not several that no second one approved."""
    policy = account_policy(settings)

    def first(username: str) -> str:
        try:
            with sessions.begin() as session:
                first_administrator(session, username, policy, "cli:root")
        except Refusal as refusal:
            return refusal.code.name
        return "made"

    start = threading.Barrier(TIMES)

    def at_the_same_moment(username: str) -> str:
        start.wait()
        return first(username)

    with ThreadPoolExecutor(TIMES) as pool:
        results = Counter(pool.map(at_the_same_moment, [f"admin{n}" for n in range(TIMES)]))
    assert results == {"made": 1, "administrator_exists": TIMES - 1}
    with sessions() as session:
        assert administrator_accounts(session) == 1


def test_one_verifier_takes_a_search_whoever_asks_at_once(
    served: httpx.Client, sessions: sessionmaker[Session], staff: Staff
) -> None:
    search_id = undecided_search(sessions, staff, examiners=2, verifier=False)
    operators = [f"op{n}.operator" for n in range(TIMES // 2)]
    for username in operators:
        staff.add(username, Role.operator)
    path = f"/v1/searches/{search_id}/verification"
    answers = at_once([partial(served.post, path, headers=staff.headers(u)) for u in operators * 2])
    taken = [a for a in answers if a.status_code == 200]
    assert taken and {a.json()["examiner"] for a in taken} == {"verifier"}
    with sessions() as session:
        verifier = session.get_one(Search, search_id).verifier_id
    # Only the one who took it hears yes (again, if they asked twice); every other is refused.
    assert {staff.ids[u] for u in operators} >= {verifier}
    assert len(taken) <= 2
    refused = [a.json()["code"] for a in answers if a.status_code != 200]
    assert set(refused) == {"verifier_taken"} and len(refused) >= TIMES - 2
    assert outcomes(sessions, "search.verification")["success"] == 1
