"""The `facematch` command's maintenance verbs, run as an administrator would."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.models import Base, LicenseRecord
from index import GalleryIndex
from matcher.dlib_engine import DIMENSION, MODEL_ID
from tests.conftest import DATASETS
from tests.test_enrolment import lfw_rows, write_manifest

runner = CliRunner()


def invoke(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    env = {
        "FACEMATCH_DATA_DIR": str(settings.data_dir),
        "FACEMATCH_DATABASE_URL": settings.sqlalchemy_url,
    }
    return runner.invoke(cli, list(args), env=env)


def test_migrations_create_exactly_the_models(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        context = MigrationContext.configure(session.connection())
        assert compare_metadata(context, Base.metadata) == []


def test_enroll_purge_and_rebuild(settings: Settings, tmp_path: Path) -> None:
    rows = lfw_rows(2)
    manifest = write_manifest(tmp_path / "m.csv", rows)
    rejects = tmp_path / "rejects.csv"
    enrolled = invoke(
        settings,
        "enroll",
        str(manifest),
        "--images",
        str(DATASETS),
        "--face",
        "central",
        "--workers",
        "1",
        "--rejects",
        str(rejects),
    )
    assert enrolled.exit_code == 0, enrolled.output
    assert "2 photos enrolled" in enrolled.output and "index holds 2 templates" in enrolled.output
    assert rejects.read_text().splitlines() == ["row,photo,reason"]

    purged = invoke(settings, "records", "purge", rows[0]["license_number"])
    assert purged.exit_code == 0 and "purged" in purged.output
    assert invoke(settings, "records", "purge", rows[0]["license_number"]).exit_code == 1

    index_file = settings.index_dir / f"{MODEL_ID}.faiss"
    index_file.write_bytes(b"damaged")
    rebuilt = invoke(settings, "index", "rebuild")
    assert rebuilt.exit_code == 0 and "1 templates" in rebuilt.output
    assert GalleryIndex.load(settings.index_dir, MODEL_ID, DIMENSION).count == 1


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
