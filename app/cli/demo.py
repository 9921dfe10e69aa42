"""`facematch demo`: a gallery and an agency to walk the whole path in a browser, in
development mode only. Everything it makes goes through the same services as the API, the
two administrators' rule included: Ada is the first administrator, the command line approves
Ben, and Ben approves what Ada asks for."""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session
from tqdm import tqdm

from app.accounts.service import (
    AccountPolicy,
    Outcome,
    add_training,
    administrator_accounts,
    approve_change,
    create_account,
    first_administrator,
)
from app.cli.common import actor, keys_or_exit, open_database
from app.cli.gallery import FaceOption, enrolment_for, record_enrolment
from app.core.composition import account_policy, request_policy
from app.core.settings import Settings
from app.enrolment.demo import DEMO_COLUMNS, demo_request, lfw_demo_rows
from app.enrolment.local import read_manifest
from app.requests.schemas import NewRequest
from app.requests.workflow import attach_court_order, submit
from auth import Role

# One person for every role, and a second operator for blind verification.
PEOPLE = {
    "sam.staff": Role.staff_reviewer,
    "mia.manager": Role.manager,
    "uma.unitadmin": Role.unit_administrator,
    "dan.director": Role.director,
    "gail.governor": Role.governor_office,
    "olga.operator": Role.operator,
    "otto.operator": Role.operator,
    "aldo.auditor": Role.auditor,
    "rita.records": Role.records_clerk,
}
ORDER = b"%PDF-1.7\n% Demo order of the U.S. District Court, W.D. Wash., 2:26-mj-00113\n%%EOF\n"


def _whole_code(asked: Outcome, approved: Outcome) -> str:
    assert asked.credentials and approved.credentials
    return f"{asked.credentials.activation_code}-{approved.credentials.activation_code}"


def _agency(
    session: Session, policy: AccountPolicy, course: str
) -> tuple[dict[str, str], int, str]:
    """The accounts, with each person's whole activation code, and the review system's id
    and client secret."""
    ada, first = first_administrator(session, "ada.admin", policy, actor())
    codes = {"ada.admin": str(first.activation_code)}
    asked = create_account(session, "ben.admin", Role.admin, ada.id, policy)
    assert asked.change is not None
    approved = approve_change(session, asked.change.id, None, actor(), policy)
    codes["ben.admin"] = _whole_code(asked, approved)
    assert approved.account is not None
    ben = approved.account.id

    def agreed(outcome: Outcome) -> Outcome:
        assert outcome.change is not None
        return approve_change(session, outcome.change.id, ben, f"account:{ben}", policy)

    for username, role in PEOPLE.items():
        asked = create_account(session, username, role, ada.id, policy)
        made = agreed(asked)
        codes[username] = _whole_code(asked, made)
        if role is Role.operator:
            assert made.account is not None
            today = date.today()
            agreed(
                add_training(
                    session,
                    made.account.id,
                    course,
                    today,
                    today + timedelta(days=365),
                    ada.id,
                    policy,
                )
            )
    system = agreed(create_account(session, "review-system", Role.review_system, ada.id, policy))
    assert system.account and system.credentials and system.credentials.client_secret
    return codes, system.account.id, system.credentials.client_secret


def demo(
    lfw: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="The LFW folder (holding images/)")
    ],
    people: Annotated[int, typer.Option(min=2, help="LFW people to enrol")] = 60,
) -> None:
    """Development mode only: enrol a small LFW gallery (each person's first photo, under a
    made-up licence), make one account per role and print their activation codes, and
    submit one request to review. Serve with FACEMATCH_PHOTO_STORE=LFW/images."""
    settings = Settings()
    if settings.environment != "development":
        typer.echo("error: the demo runs only with FACEMATCH_ENVIRONMENT=development", err=True)
        raise typer.Exit(2)
    keys = keys_or_exit(settings)
    sessions = open_database(settings)
    with sessions() as session:
        if administrator_accounts(session):
            typer.echo(
                f"error: the demo makes a new agency, and {settings.data_dir} holds one already; "
                "remove it or set FACEMATCH_DATA_DIR to another folder",
                err=True,
            )
            raise typer.Exit(2)
    images = lfw / "images"
    rows = list(lfw_demo_rows(images, min_photos=2, limit=people))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    manifest = settings.data_dir / "demo.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEMO_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    enrolment = enrolment_for(settings, keys, sessions, FaceOption.central, None)
    with tqdm(total=len(rows), unit="photo", desc="enrolling") as progress:
        report = enrolment.run(read_manifest(manifest, images), progress)
    record_enrolment(
        sessions, settings, keys, report, settings.data_dir / "demo-rejects.csv", "enrolment.run"
    )

    policy = account_policy(settings, keys)
    with sessions.begin() as session:
        codes, system, secret = _agency(session, policy, settings.operator_course)
        order = {
            "court": "Thurston County Superior Court",
            "judge": "Hon. M. Chen",
            "signed_on": str(date.today() - timedelta(days=2)),
            "document_sha256": hashlib.sha256(ORDER).hexdigest(),
        }
        body = NewRequest.model_validate(
            demo_request(legal_process="court_order", court_order=order)
        )
        request = submit(session, body, request_policy(settings), system)
        attach_court_order(session, request.id, system, ORDER, keys)

    name = rows[0]["photo"].split("/")[0]
    typer.echo(
        f"\n{report.enrolled} people enrolled; request {request.id} awaits review.\n"
        f"Serve with FACEMATCH_PHOTO_STORE={images} (make demo does), then open the console at "
        f"http://{settings.host}:{settings.port}/console/ and activate each account with its "
        f"code (every password is your own choice):\n"
    )
    for username, code in codes.items():
        role = PEOPLE.get(username, Role.admin)
        typer.echo(f"  {username:15} {role.value:20} {code}")
    typer.echo(
        f"\nThe review system's client secret (for the API): {secret}\n"
        f"A probe to search with once the request is approved: {images / name / f'{name}_0002.jpg'}"
        f" (its first photo is enrolled; made at {datetime.now(UTC):%H:%M} UTC)"
    )
