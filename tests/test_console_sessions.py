"""The console's sessions and forms, attacked over HTTP in process, on SQLite and PostgreSQL:
a form without its session's CSRF token, a cookie replayed after signing out, a session left
idle or kept past its lifetime, an account disabled while signed in, a page of another
role. (tests/test_console.py walks the pages themselves in a real browser.)"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.console.models import ConsoleSession
from app.console.render import CONTENT_SECURITY_POLICY
from app.console.sessions import csrf_token
from app.core.settings import Settings
from auth import Role
from tests.support.console import sign_in
from tests.support.data import sample
from tests.support.requests import approved_request, request_body
from tests.support.searches import BASIS
from tests.support.staff import PASSWORD, Staff


@pytest.fixture
def staff(staff: Staff) -> Staff:
    staff.add("aldo.auditor", Role.auditor)
    staff.add("rita.records", Role.records_clerk)
    return staff


def test_every_page_carries_a_strict_policy_and_loads_nothing_from_elsewhere(
    client: TestClient, staff: Staff
) -> None:
    page = client.get("/console/sign-in")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert re.findall(r'(?:src|href)="([^"]+)"', page.text) == [
        "/console/static/console.css",
        "/console/static/console.js",
        "/console/activate",
    ]
    for asset in ("/console/static/console.css", "/console/static/console.js"):
        assert client.get(asset).status_code == 200
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie


def test_a_form_without_its_token_is_refused_and_a_cookie_outlives_no_sign_out(
    client: TestClient, staff: Staff
) -> None:
    client.get("/console/sign-in")
    code = pyotp.TOTP(staff.totp["aldo.auditor"]).now()
    forged = {"username": "aldo.auditor", "password": PASSWORD, "totp_code": code}
    for sent in ({}, {"csrf": "0" * 64}):
        refused = client.post("/console/sign-in", data=forged | sent)
        assert refused.status_code == 403 and "csrf_failed" in refused.text
    # Without the form's cookie, not even the token an empty cookie would have is taken.
    client.cookies.clear()
    emptied = {"csrf": csrf_token("")}
    assert client.post("/console/sign-in", data=forged | emptied).status_code == 403

    csrf = sign_in(client, staff, "aldo.auditor")
    cookie = client.cookies["facematch_session"]
    assert client.post("/console/sign-out", data={}).status_code == 403
    assert client.get("/console/audit").status_code == 200
    out = client.post("/console/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"].endswith("notice=signed_out")
    spoofed = client.get("/console/sign-in", params={"notice": "Your password expired; call"})
    assert "password expired" not in spoofed.text
    client.cookies.set("facematch_session", cookie, path="/console")
    replayed = client.get("/console/audit", follow_redirects=False)
    assert replayed.status_code == 303 and "/console/sign-in" in replayed.headers["location"]


@pytest.mark.parametrize("ended_by", ["idle", "lifetime", "disabled"])
def test_a_session_idle_too_long_too_old_or_of_a_disabled_account_is_refused(
    client: TestClient, staff: Staff, sessions: sessionmaker[Session], ended_by: str
) -> None:
    sign_in(client, staff, "rita.records")
    assert client.get("/console/disclosures").status_code == 200
    now = datetime.now(UTC)
    with sessions.begin() as session:
        if ended_by == "idle":
            session.execute(update(ConsoleSession).values(last_seen_at=now - timedelta(minutes=31)))
        elif ended_by == "lifetime":
            session.execute(update(ConsoleSession).values(started_at=now - timedelta(hours=13)))
        else:
            session.execute(
                update(Account)
                .where(Account.username == "rita.records")
                .values(active=False, token_epoch=Account.token_epoch + 1)
            )
    refused = client.get("/console/disclosures", follow_redirects=False)
    assert refused.status_code == 303 and "/console/sign-in" in refused.headers["location"]
    # Nothing moves a refused session's clock again: it stays refused.
    assert client.get("/console/disclosures", follow_redirects=False).status_code == 303


def test_a_page_of_another_role_is_refused_in_plain_words_and_audited(
    client: TestClient, staff: Staff
) -> None:
    sign_in(client, staff, "rita.records")
    for path in ("/console/audit", "/console/accounts", "/console/operator", "/console/reviews"):
        refused = client.get(path)
        assert refused.status_code == 403 and "forbidden" in refused.text, path
        assert "The records_clerk role may not do this." in refused.text
    auditor = staff.headers("aldo.auditor")
    denied = client.get("/v1/audit", params={"event_type": "access.denied"}, headers=auditor)
    assert len(denied.json()) == 4


def test_what_an_agency_writes_is_shown_as_text_never_run(client: TestClient, staff: Staff) -> None:
    staff.add_agency()
    hostile = '<script src="https://evil.example/x.js"></script><img src=x onerror=alert(1)>'
    body = request_body(narrative=hostile, requesting_officer='Det. "><b>Bold</b>')
    submitted = client.post("/v1/requests", headers=staff.headers("review-system"), json=body)
    assert submitted.status_code == 201
    sign_in(client, staff, "sam.staff")
    page = client.get(f"/console/requests/{submitted.json()['id']}")
    assert page.status_code == 200
    assert "evil.example/x.js&#34;&gt;&lt;/script&gt;" in page.text
    assert '<script src="https' not in page.text and "<b>Bold</b>" not in page.text


def test_a_photo_with_several_faces_is_searched_with_the_face_picked(
    client: TestClient, staff: Staff, gallery_rows: list[dict]
) -> None:
    staff.add_agency()
    request_id = approved_request(client, staff)
    csrf = sign_in(client, staff, "olga.operator")
    path = f"/console/requests/{request_id}/search"
    files = {"probe": ("group.jpg", sample("two_people.jpg"), "image/jpeg")}
    picking = client.post(path, data={"csrf": csrf}, files=files)
    assert picking.status_code == 200 and "The photo shows 2 faces" in picking.text
    marked = client.get(f"/console/requests/{request_id}/faces")
    assert marked.status_code == 200 and marked.headers["content-type"] == "image/jpeg"
    face = client.get(f"/console/requests/{request_id}/faces/2")
    assert face.status_code == 200 and face.headers["cache-control"] == "no-store"
    picked = client.post(path, data={"csrf": csrf, "face": "2"}, follow_redirects=False)
    assert picked.status_code == 303
    assert re.fullmatch(r"/console/searches/\d+", picked.headers["location"])
    again = client.post(path, data={"csrf": csrf, "face": "2"})
    assert again.status_code == 422, "the photo is held only until it is searched"


def test_a_second_examiner_verifies_blind_and_the_operator_reads_the_release_once(
    client: TestClient, staff: Staff, settings: Settings, gallery_rows: list[dict]
) -> None:
    staff.add_agency()
    staff.add("otto.operator", Role.operator)
    services = client.app.state.services  # type: ignore[attr-defined]
    services.settings = settings.model_copy(update={"examiners": 2})
    request_id = approved_request(client, staff)

    def conclude(csrf: str, review: str) -> str:
        page = client.get(review).text
        [ref] = re.findall(r'name="conclusion-([^"]+)" value="identification"', page)
        form = {"csrf": csrf, f"conclusion-{ref}": "identification", f"basis-{ref}": BASIS}
        done = client.post(f"{review}/examination", data=form)
        assert done.status_code == 200, done.text
        return done.text

    csrf = sign_in(client, staff, "olga.operator")
    files = {"probe": ("probe.jpg", sample("obama2.jpg"), "image/jpeg")}
    searched = client.post(
        f"/console/requests/{request_id}/search", data={"csrf": csrf}, files=files
    )
    review = searched.url.path
    assert "decided when the second examiner" in conclude(csrf, review)
    client.post("/console/sign-out", data={"csrf": csrf})

    csrf = sign_in(client, staff, "otto.operator")
    queue = client.get("/console/operator").text
    assert f'action="{review}/verification"' in queue
    taken = client.post(f"{review}/verification", data={"csrf": csrf})
    # Blind: nothing of the first examiner's conclusions on the verifier's page.
    assert "verifying examiner" in taken.text
    assert BASIS not in taken.text and "checked" not in taken.text
    verified = conclude(csrf, review)
    assert "Both examiners identified" in verified
    assert gallery_rows[0]["license_number"] not in verified
    client.post("/console/sign-out", data={"csrf": csrf})

    csrf = sign_in(client, staff, "olga.operator", step=1)
    assert f'action="{review}/release"' in client.get("/console/operator").text
    assert client.post(f"{review}/release", data={}).status_code == 403
    shown = client.post(f"{review}/release", data={"csrf": csrf})
    assert gallery_rows[0]["license_number"] in shown.text
    again = client.post(f"{review}/release", data={"csrf": csrf})
    assert again.status_code == 409 and "release_already_shown" in again.text


def test_administrators_ask_and_approve_each_others_changes_in_the_console(
    client: TestClient, staff: Staff
) -> None:
    staff.add("ada.admin", Role.admin)
    staff.add("ben.admin", Role.admin)
    olga = staff.add("olga.operator", Role.operator, trained=False)
    csrf = sign_in(client, staff, "ada.admin")
    asked = client.post(
        "/console/accounts", data={"csrf": csrf, "username": "nia.new", "role": "auditor"}
    )
    assert "Activation code (first half)" in asked.text and "waits for a second" in asked.text
    training = {
        "csrf": csrf,
        "course": "facial-recognition-operator",
        "completed_on": str(date.today()),
        "expires_on": str(date.today() + timedelta(days=300)),
    }
    assert (
        "waits for a second"
        in client.post(f"/console/accounts/{olga}/training", data=training).text
    )
    bad = client.post(f"/console/accounts/{olga}/training", data=training | {"expires_on": "x"})
    assert bad.status_code == 422 and "invalid_request" in bad.text
    assert (
        "waits for a second"
        in client.post(f"/console/accounts/{olga}/reset", data={"csrf": csrf}).text
    )
    pending = [
        int(n)
        for n in re.findall(
            r"/console/account-changes/(\d+)/approve", client.get("/console/accounts").text
        )
    ]
    assert len(pending) == 3
    own = client.post(f"/console/account-changes/{pending[0]}/approve", data={"csrf": csrf})
    assert own.status_code == 403
    client.post("/console/sign-out", data={"csrf": csrf})

    csrf = sign_in(client, staff, "ben.admin")
    made = client.post(f"/console/account-changes/{pending[0]}/approve", data={"csrf": csrf})
    assert "Activation code (second half)" in made.text
    trained = client.post(f"/console/account-changes/{pending[1]}/approve", data={"csrf": csrf})
    assert "Training recorded" in trained.text
    rejected = client.post(f"/console/account-changes/{pending[2]}/reject", data={"csrf": csrf})
    assert "is rejected" in rejected.text
    assert client.get("/console/accounts").text.count("/approve") == 0
