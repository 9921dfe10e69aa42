"""The `facematch` command's maintenance verbs, run as an administrator would."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, func, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account, AccountChange
from app.accounts.service import create_account
from app.audit.keys import public_key_text, read_signing_key
from app.audit.models import AuditEntry
from app.core.composition import (
    account_policy,
    encoder,
    gallery_spec,
    quality_policy,
    template_keys,
)
from app.core.database import make_engine, migrate, session_factory
from app.core.settings import Settings
from app.core.tables import metadata
from app.enrolment.local import Enrolment, Reject, stored_photos
from app.gallery.models import LicenseRecord, PersonTemplate, Template
from app.gallery.service import Gallery, sync_index
from app.searches.models import Disclosure, Search
from auth import Role
from matcher import Matcher, MatchRule, load_engine
from tests.support.commands import FACEMATCH, enrol, invoke, reenroll, service_environment
from tests.support.data import DATASETS, lfw_rows, write_manifest


def test_migrations_create_exactly_the_models(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        context = MigrationContext.configure(session.connection())
        assert compare_metadata(context, metadata) == []


def test_a_database_of_the_unit_admin_spelling_is_migrated_to_the_levels(
    database_url: str,
) -> None:
    """0006 renames the role where 0005's databases hold it, in accounts and in the changes
    waiting for a second administrator, so every such account still loads and signs in."""
    engine = make_engine(database_url)
    migrate(engine, "0005")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (id, username, kind, role, totp_active, failed_logins,"
                " active, created_at, token_epoch) VALUES (1, 'uma.unitadmin', 'person',"
                " 'unit_admin', false, 0, true, :now, 0)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO account_changes (id, kind, username, role, requested_at, status)"
                " VALUES (1, 'create_account', 'ulf.unitadmin', 'unit_admin', :now, 'pending')"
            ),
            {"now": now},
        )
    migrate(engine)
    with session_factory(engine)() as session:
        assert session.get_one(Account, 1).role is Role.unit_administrator
        assert session.get_one(AccountChange, 1).role is Role.unit_administrator
    engine.dispose()


def test_searches_made_before_human_review_get_references_and_count_as_shown(
    database_url: str,
) -> None:
    """0007 gives the candidates of a 0006 search a reference each, and marks the releases
    made then as shown: they were, when the operator confirmed them."""
    engine = make_engine(database_url)
    migrate(engine, "0006")
    tables = MetaData()
    tables.reflect(engine)
    now = datetime.now(UTC)

    def filled(table: str, **given: object) -> dict[str, object]:
        """A row of `table` at 0006: `given`, and a plain value in every other required column."""
        row = dict(given)
        for column in tables.tables[table].columns:
            if column.name in row or column.nullable or column.primary_key:
                continue
            kind = column.type.python_type
            plain = {str: "x", int: 1, bool: False, float: 0.5, datetime: now, date: now.date()}
            row[column.name] = plain.get(kind, b"x")
        return row

    with engine.begin() as connection:
        for table, given in (
            ("accounts", {"id": 1, "username": "olga.operator", "role": "operator"}),
            ("requests", {"id": 1, "submitted_by": 1, "status": "approved", "statutes": "[]"}),
            ("license_records", {"id": 1, "license_number": "WDL0OLD00001"}),
            ("searches", {"id": 1, "request_id": 1, "operator_id": 1, "decision": "confirmed"}),
            ("search_candidates", {"search_id": 1, "rank": 1, "record_id": 1}),
            ("search_candidates", {"search_id": 1, "rank": 2, "record_id": 1}),
            ("disclosures", {"id": 1, "search_id": 1, "request_id": 1, "released_by": 1}),
        ):
            connection.execute(insert(tables.tables[table]).values(filled(table, **given)))
    migrate(engine)
    with session_factory(engine)() as session:
        refs = [c.ref for c in session.get_one(Search, 1).candidates]
        assert len(set(refs)) == 2 and all(len(ref) >= 16 for ref in refs)
        disclosure = session.get_one(Disclosure, 1)
        assert disclosure.shown_at == disclosure.released_at
    # SQLite's tables were rebuilt with references unenforced; every later connection
    # enforces them again.
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_enroll_purge_and_rebuild(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = lfw_rows(2)
    manifest = write_manifest(tmp_path / "m.csv", rows)
    rejects = tmp_path / "rejects.csv"
    enrolled = enrol(settings, manifest, "--rejects", str(rejects))
    assert enrolled.exit_code == 0, enrolled.output
    assert "2 photos enrolled" in enrolled.output and "index holds 2 templates" in enrolled.output
    assert rejects.read_text().splitlines() == ["row,photo,reason"]

    # An index of the other kind, saved when the service last searched photo templates.
    photos = gallery_spec(settings.model_copy(update={"gallery_templates": "photo"}))
    assert sync_index(sessions, photos).count == 2
    purged = invoke(settings, "records", "purge", rows[0]["license_number"])
    assert purged.exit_code == 0 and "purged" in purged.output
    assert invoke(settings, "records", "purge", rows[0]["license_number"]).exit_code == 1
    assert photos.saved_index().count == 1  # every saved index dropped the person

    index_file = settings.index_dir / f"{gallery_spec(settings).index_name}.faiss"
    index_file.write_bytes(b"damaged")
    rebuilt = invoke(settings, "index", "rebuild")
    assert rebuilt.exit_code == 0 and "1 templates" in rebuilt.output
    assert gallery_spec(settings).saved_index().count == 1
    with sessions() as session:
        events = session.scalars(select(AuditEntry.event_type).order_by(AuditEntry.seq)).all()
    assert events == ["enrolment.run", "record.purge", "index.rebuild"]


def test_manifest_without_the_identity_columns_is_refused(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("license_number,photo\nWDL123,samples/obama.jpg\n")
    result = invoke(settings, "enroll", str(manifest), "--images", str(DATASETS))
    assert result.exit_code == 2
    assert "date_of_birth, first_name, last_name" in result.output
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(LicenseRecord)) == 0


def test_a_manifest_that_is_not_utf8_csv_is_refused(settings: Settings, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(b"license_number,first_name\n\xff\xfe\x00garbage\n")
    result = invoke(settings, "enroll", str(manifest), "--images", str(DATASETS))
    assert result.exit_code == 2 and "not a UTF-8 CSV file" in result.output


def test_the_first_administrator_and_the_second_are_made_on_the_command_line_and_no_more(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    invalid = invoke(settings, "accounts", "first-admin", "Ada Admin")
    assert invalid.exit_code == 2 and "username" in invalid.output
    first = invoke(settings, "accounts", "first-admin", "ada.admin")
    assert first.exit_code == 0 and "ada.admin (admin)" in first.output
    # The first administrator's code is shown whole: six groups, no second half to come.
    whole = r"activation code \(shown once, until .+\): ([A-Z2-7]{4}-){5}[A-Z2-7]{4}$"
    assert re.search(whole, first.output, re.MULTILINE)
    again = invoke(settings, "accounts", "first-admin", "eve.admin")
    assert again.exit_code == 2 and "An administrator exists already" in again.output
    with sessions.begin() as session:
        ada = session.scalar(select(Account.id).where(Account.username == "ada.admin"))
        assert ada is not None
        policy = account_policy(settings)
        second = create_account(session, "ben.admin", Role.admin, ada, policy).change
        operator = create_account(session, "olga.operator", Role.operator, ada, policy).change
        assert second is not None and operator is not None
    not_an_admin = invoke(settings, "accounts", "approve", str(operator.id))
    assert not_an_admin.exit_code == 2 and "second administrator" in not_an_admin.output
    approved = invoke(settings, "accounts", "approve", str(second.id))
    assert approved.exit_code == 0 and "ben.admin (admin)" in approved.output
    assert "activation code (second half)" in approved.output
    # Two administrators now: every further change is approved by one of them, in the API,
    # even once one of them is disabled (the command line approves the second only, ever).
    with sessions.begin() as session:
        session.execute(update(Account).where(Account.username == "ben.admin").values(active=False))
        third = create_account(session, "cai.admin", Role.admin, ada, policy).change
        assert third is not None
    for change in (operator, third):
        refused = invoke(settings, "accounts", "approve", str(change.id))
        assert refused.exit_code == 2
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    made = [(e.event_type, e.actor, json.loads(e.details)) for e in entries]
    assert made[0][0] == "account.create" and made[0][2]["first_administrator"] is True
    assert ("account_change.approve", made[0][1]) in [entry[:2] for entry in made]


def test_audit_and_report_commands(settings: Settings, sessions: sessionmaker[Session]) -> None:
    assert invoke(settings, "accounts", "first-admin", "ada.admin").exit_code == 0
    report = invoke(
        settings, "report", "transparency", "--from", "2026-01-01", "--to", "2027-01-01"
    )
    assert report.exit_code == 0 and json.loads(report.output)["requests"] == 0

    verified = invoke(settings, "audit", "verify")
    assert verified.exit_code == 0 and "intact" in verified.output
    with sessions.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="cli:mallory"))
    broken = invoke(settings, "audit", "verify")
    assert broken.exit_code == 1 and "entry 2" in broken.output


def test_retention_purge_needs_a_signing_key_and_records_itself(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    made = invoke(settings, "audit", "new-key")
    key, public = made.stdout.strip(), made.stderr.removeprefix("public key: ").strip()
    assert made.exit_code == 0
    assert public_key_text(read_signing_key(key).public_key()) == public

    unsigned = invoke(settings, "retention", "purge", env={"FACEMATCH_AUDIT_SIGNING_KEY": None})
    assert unsigned.exit_code == 2 and "FACEMATCH_AUDIT_SIGNING_KEY" in unsigned.output
    short = subprocess.run(
        [*FACEMATCH, "retention", "purge"],
        env=service_environment(settings, audit_retention_days="30"),
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2
    assert (
        short.stderr.startswith("error: FACEMATCH_AUDIT_RETENTION_DAYS: ") and "365" in short.stderr
    )
    done = invoke(settings, "retention", "purge", env={"FACEMATCH_AUDIT_SIGNING_KEY": key})
    assert done.exit_code == 0, done.output
    assert "purged 0 candidate lists, 0 probe hashes, 0 audit entries" in done.output
    with sessions() as session:
        events = session.scalars(select(AuditEntry.event_type)).all()
    assert events == ["retention.purge"]


def test_reenroll_into_the_other_engine_resumes_and_leaves_a_working_gallery(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = lfw_rows(6)
    manifest = write_manifest(tmp_path / "m.csv", rows)
    dlib = settings.model_copy(update={"engine": "dlib"})
    enrolled = enrol(dlib, manifest)
    assert enrolled.exit_code == 0, enrolled.output
    sface = settings.model_copy(update={"engine": "sface"})
    # A first run stopped after three photos.
    Enrolment(sessions, encoder(sface, "central"), template_keys(sface), workers=1).run(
        islice(stored_photos(sessions, DATASETS), 3)
    )
    resumed = reenroll(dlib, sface.engine_spec.model_id, tmp_path / "r.csv")
    assert resumed.exit_code == 0, resumed.output
    assert "3 re-encoded for sface-2021dec-int8bq, 3 already were, 0 rejected" in resumed.output
    with sessions() as session:
        per_model = dict(
            session.execute(
                select(Template.model_id, func.count()).group_by(Template.model_id)
            ).all()
        )
    assert per_model == {dlib.engine_spec.model_id: 6, sface.engine_spec.model_id: 6}
    with sessions() as session:
        people = dict(
            session.execute(
                select(PersonTemplate.model_id, func.count()).group_by(PersonTemplate.model_id)
            ).all()
        )
    assert people == per_model  # one person template per licence holder and engine

    # Switched to SFace, the gallery finds each person from another photo of them.
    gallery = Gallery(sessions, gallery_spec(sface))
    matcher = Matcher(load_engine("sface"), policy=quality_policy(sface))
    # Nearest first whatever the threshold: the re-enrolled gallery ranks the right person.
    rule = MatchRule(threshold=float("inf"), limit=5)
    for row in rows:
        probe = DATASETS / row["photo"].replace("_0001.jpg", "_0002.jpg")
        descriptor = matcher.encode(probe.read_bytes(), choice="central").descriptor
        with sessions() as session:
            hits = gallery.search(session, descriptor, rule)
        assert hits.matches[0].record.license_number == row["license_number"]

    again = reenroll(dlib, "sface", tmp_path / "r.csv")
    assert "0 re-encoded for sface-2021dec-int8bq, 6 already were" in again.output
    assert invoke(settings, "reenroll", "--model", "nope", "--images", str(DATASETS)).exit_code == 2

    # A photo whose file changed since enrolment, or is gone, is not re-encoded.
    moved = tmp_path / "moved"
    changed = moved / rows[0]["photo"]
    changed.parent.mkdir(parents=True)
    changed.write_bytes((DATASETS / rows[0]["photo"]).read_bytes() + b"\0")
    reasons = {r.reason for r in stored_photos(sessions, moved) if isinstance(r, Reject)}
    assert reasons == {"photo_changed", "photo_not_found"}
