"""Face templates sealed at rest (AES-GCM): in the database, bound to their row; in the saved
index; a key rotation that re-seals both; no service or enrolment without a key outside
development mode. (The shards of a distributed enrolment: tests/test_distributed.py.)"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.api.main import create_app
from app.audit.models import AuditEntry
from app.core.composition import StartupRefused, gallery_spec, request_policy, template_keys
from app.core.settings import Settings
from app.enrolment.local import read_manifest
from app.gallery.models import Template
from app.gallery.service import sync_index
from app.gallery.store import SealedTemplate, template_vector, templates_by_id
from app.requests.schemas import NewRequest
from app.requests.workflow import attach_court_order, court_order_document, submit
from auth import Role
from index import SealingError, TemplateKeys, new_key
from tests.support.commands import enrol, invoke
from tests.support.data import DATASETS, lfw_rows, write_manifest
from tests.support.gallery import enrolment
from tests.support.keys import TEST_TEMPLATE_KEY
from tests.support.requests import COURT_ORDER, COURT_ORDER_DOCUMENT, request_body
from tests.support.staff import Staff

# Version, key id and nonce before the ciphertext; the GCM tag after it.
SEAL_OVERHEAD = 1 + 8 + 12 + 16


def stored(sessions: sessionmaker[Session]) -> list[SealedTemplate]:
    with sessions() as session:
        return list(templates_by_id(session, list(session.scalars(select(Template.id)))))


def test_templates_are_sealed_in_the_database_and_bound_to_their_row(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", lfw_rows(3))
    enrolment(sessions, settings).run(read_manifest(manifest, DATASETS))
    keys, dimension = template_keys(settings), settings.engine_spec.dimension
    rows = stored(sessions)
    assert len(rows) == 3
    for row in rows:
        vector = template_vector(row, keys)
        assert len(row.descriptor) == 4 * dimension + SEAL_OVERHEAD and keys.is_current(
            row.descriptor
        )
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-3)  # a real SFace template
        assert vector.tobytes()[:64] not in row.descriptor
    if settings.sqlalchemy_url.startswith("sqlite"):
        database = Path(settings.sqlalchemy_url.removeprefix("sqlite:///")).read_bytes()
        assert all(template_vector(r, keys).tobytes()[:64] not in database for r in rows)

    # One person's sealed template copied onto another's row does not open there.
    first, second = rows[0], rows[1]
    with sessions.begin() as session:
        session.execute(
            update(Template).where(Template.id == second.id).values(descriptor=first.descriptor)
        )
    photos = gallery_spec(settings.model_copy(update={"gallery_templates": "photo"}))
    with pytest.raises(SealingError, match=f"template {second.id} cannot be opened"):
        sync_index(sessions, photos, photos.empty_index())


def test_rotation_reseals_every_template_the_saved_index_seeds_and_court_orders(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", lfw_rows(3))
    assert enrol(settings, manifest).exit_code == 0
    before = {row.id: template_vector(row, template_keys(settings)) for row in stored(sessions)}
    staff = Staff.in_process(sessions, settings)
    clerk = staff.add("rita.records", Role.records_clerk)
    with sessions.begin() as session:
        ordered = request_body(legal_process="court_order", court_order=COURT_ORDER)
        request = submit(
            session, NewRequest.model_validate(ordered), request_policy(settings), clerk
        )
        attach_court_order(
            session, request.id, clerk, COURT_ORDER_DOCUMENT, template_keys(settings)
        )
    fresh = new_key()
    rotating = {
        "FACEMATCH_TEMPLATE_KEY": fresh,
        "FACEMATCH_EARLIER_TEMPLATE_KEYS": json.dumps([TEST_TEMPLATE_KEY]),
    }
    rotated = invoke(settings, "keys", "rotate", "--chunk", "2", env=rotating)
    assert rotated.exit_code == 0, rotated.output
    assert (
        "6 templates, 1 saved indexes, 1 second-factor seeds and 1 court order documents re-sealed"
    ) in rotated.output

    # Under the new key alone: every template opens unchanged, and so does the saved index.
    only_new = settings.model_copy(
        update={"template_key": SecretStr(fresh), "earlier_template_keys": []}
    )
    keys = template_keys(only_new)
    after = {row.id: template_vector(row, keys) for row in stored(sessions)}
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[i], before[i]) for i in before)
    assert gallery_spec(only_new).saved_index().count == 3
    with pytest.raises(SealingError):
        template_vector(stored(sessions)[0], TemplateKeys.from_text(TEST_TEMPLATE_KEY))
    with sessions() as session:
        seed = session.get_one(Account, clerk).totp_seed
        assert seed is not None
        assert keys.open(seed, f"totp:{clerk}").decode() == staff.totp["rita.records"]
        document, _ = court_order_document(session, request.id, clerk, keys)
        assert document == COURT_ORDER_DOCUMENT
    again = invoke(settings, "keys", "rotate", env=rotating)
    assert "0 templates, 1 saved indexes, 0 second-factor seeds and 0 court" in again.output
    with sessions() as session:
        assert session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.event_type == "keys.rotate")
        ).all() == ["success", "success"]


def test_no_key_no_service_and_no_enrolment_outside_development(
    settings: Settings, tmp_path: Path
) -> None:
    keyless = settings.model_copy(update={"template_key": None})
    with pytest.raises(StartupRefused, match="FACEMATCH_TEMPLATE_KEY"):
        create_app(keyless)
    manifest = write_manifest(tmp_path / "m.csv", lfw_rows(1))
    refused = invoke(
        settings,
        "enroll",
        str(manifest),
        "--images",
        str(DATASETS),
        env={"FACEMATCH_TEMPLATE_KEY": ""},
    )
    assert refused.exit_code == 2 and "no template key is configured" in refused.output

    # Development mode keeps a key of its own, readable by its owner only, and reuses it.
    development = keyless.model_copy(update={"environment": "development"})
    create_app(development)
    key_file = development.data_dir / "development-template.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    sealed = template_keys(development).seal(b"template", "context")
    assert template_keys(development).open(sealed, "context") == b"template"
