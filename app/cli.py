"""The `facematch` command: serve, migrate, enrol, rebuild the index, purge, make demo data."""

from __future__ import annotations

import csv
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from app.config import Settings
from app.db import make_engine, migrate, session_factory
from app.demo import DEMO_COLUMNS, lfw_demo_rows
from app.enrolment import (
    Enrolment,
    ManifestError,
    count_rows,
    purge_record,
    read_manifest,
    write_rejects,
)
from app.gallery import GallerySpec, sync_index
from index import GalleryIndex
from matcher import FaceChoice
from matcher.dlib_engine import DIMENSION, MODEL_ID


class FaceOption(StrEnum):
    only = "only"
    central = "central"


cli = typer.Typer(
    help="facematch: the licensing agency's face match service.", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
index_cli = typer.Typer(help="The FAISS gallery index.", no_args_is_help=True)
records_cli = typer.Typer(help="Licence records.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(index_cli, name="index")
cli.add_typer(records_cli, name="records")


def _open(settings: Settings):  # type: ignore[no-untyped-def]
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    return session_factory(engine)


def _spec(settings: Settings) -> GallerySpec:
    return GallerySpec(settings.index_dir, MODEL_ID, DIMENSION)


@cli.callback()
def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Migrate the database, load the index and serve the API."""
    import uvicorn

    from app.main import create_app

    uvicorn.run(create_app(Settings()), host=host, port=port)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest migration."""
    _open(Settings())
    typer.echo("database is at the newest migration")


@cli.command()
def enroll(
    manifest: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV of licence rows")
    ],
    images: Annotated[
        Path,
        typer.Option(exists=True, file_okay=False, help="Folder the photo paths are relative to"),
    ],
    rejects: Annotated[Path, typer.Option(help="Rejects report to write (CSV)")] = Path(
        "rejects.csv"
    ),
    face: Annotated[
        FaceOption,
        typer.Option(
            help="only: reject photos with several faces; central: use the face nearest the centre"
        ),
    ] = FaceOption.only,
    workers: Annotated[
        int | None, typer.Option(help="Encoding processes (default: one per core)")
    ] = None,
) -> None:
    """Enrol licence photos: keeps the five identity fields of a row, drops every other column."""
    settings = Settings()
    sessions = _open(settings)
    choice: FaceChoice = "central" if face is FaceOption.central else "only"
    enrolment = Enrolment(
        sessions,
        MODEL_ID,
        settings.encoder(choice),
        workers=workers if workers is not None else settings.enroll_workers,
        batch_size=settings.enroll_batch_size,
    )
    try:
        total = count_rows(manifest)
        with tqdm(total=total, unit="photo", desc="enrolling") as progress:
            report = enrolment.run(read_manifest(manifest, images), progress)
    except ManifestError as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    write_rejects(rejects, report.rejects)
    index = sync_index(sessions, _spec(settings))
    typer.echo(
        f"{report.rows} rows: {report.enrolled} photos enrolled, {report.already_enrolled} "
        f"already enrolled, {len(report.rejects)} rejected (see {rejects}); "
        f"index holds {index.count} templates"
    )


@index_cli.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the index from the templates in the database."""
    settings = Settings()
    spec = _spec(settings)
    index = sync_index(_open(settings), spec, GalleryIndex(spec.model_id, spec.dimension))
    typer.echo(f"index rebuilt: {index.count} templates at revision {index.revision}")


@records_cli.command("purge")
def records_purge(
    license_number: Annotated[str, typer.Argument(help="Licence number to remove")],
) -> None:
    """Remove a licence record, its photos, its templates and its index entries."""
    settings = Settings()
    sessions = _open(settings)
    with sessions.begin() as session:
        found = purge_record(session, license_number)
    if not found:
        typer.echo("no such licence record", err=True)
        raise typer.Exit(1)
    sync_index(sessions, _spec(settings))
    typer.echo("licence record purged")


@cli.command("demo-manifest")
def demo_manifest(
    lfw: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="The LFW folder (holding images/)")
    ],
    out: Annotated[Path, typer.Argument(dir_okay=False, help="CSV to write")],
    min_photos: Annotated[int, typer.Option(help="Only people with at least this many photos")] = 1,
    limit: Annotated[int | None, typer.Option(help="At most this many people")] = None,
    photo: Annotated[
        int, typer.Option(help="Which of each person's photos to enrol (1-based)")
    ] = 1,
) -> None:
    """Write made-up licence records for LFW; enrol with --images LFW/images --face central."""
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=DEMO_COLUMNS)
        writer.writeheader()
        rows = 0
        for row in lfw_demo_rows(lfw / "images", min_photos, limit, photo):
            writer.writerow(row)
            rows += 1
    typer.echo(f"{rows} made-up licence records written to {out}")
