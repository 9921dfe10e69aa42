"""The gallery: enrolling licence photos (here or on a cluster), re-encoding them for another
engine, rebuilding the index, purging a record, and the LFW demo manifest."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from app.audit import trail
from app.cli.common import FaceOption, actor, keys_or_exit, open_database
from app.core.composition import encoder, every_gallery_spec, gallery_spec
from app.core.settings import Settings
from app.enrolment.demo import DEMO_COLUMNS, lfw_demo_rows
from app.enrolment.local import (
    Enrolment,
    EnrolmentReport,
    ManifestError,
    count_photos,
    count_rows,
    purge_record,
    read_manifest,
    stored_photos,
    write_rejects,
)
from app.gallery.photos import file_sha256
from app.gallery.service import sync_index
from index import GalleryIndex, IndexInvalid, TemplateKeys
from matcher import ENGINES, FaceChoice, engine_spec

index_cli = typer.Typer(help="The FAISS gallery index.", no_args_is_help=True)


records_cli = typer.Typer(help="Licence records.", no_args_is_help=True)


def record_enrolment(
    sessions: sessionmaker[Session],
    settings: Settings,
    keys: TemplateKeys,
    report: EnrolmentReport,
    rejects: Path,
    event: str,
) -> GalleryIndex:
    """After an enrolment run: the rejects report, the audit entry, the index brought up to
    date."""
    write_rejects(rejects, report.rejects)
    with sessions.begin() as session:
        trail.record(
            session,
            "enrolment",
            event,
            actor(),
            "success",
            model_id=settings.engine_spec.model_id,
            rows=report.rows,
            enrolled=report.enrolled,
            already_enrolled=report.already_enrolled,
            rejected=len(report.rejects),
        )
    return sync_index(sessions, gallery_spec(settings, keys))


def enrolment_for(
    settings: Settings,
    keys: TemplateKeys,
    sessions: sessionmaker[Session],
    face: FaceOption,
    workers: int | None,
) -> Enrolment:
    choice: FaceChoice = "central" if face is FaceOption.central else "only"
    return Enrolment(
        sessions,
        encoder(settings, choice),
        keys,
        workers=workers if workers is not None else settings.enroll_workers,
        batch_size=settings.enroll_batch_size,
    )


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
        int | None,
        typer.Option(help="Encoding processes, here or in a local cluster (default: one per core)"),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Encode on a Dask cluster: its scheduler's address (tls://host:8786), or "
            "'local' for a cluster of --workers processes on this machine"
        ),
    ] = None,
    shards: Annotated[
        Path | None,
        typer.Option(
            help="With --cluster: folder for the encoded shards, at the same path on every "
            "worker (default: under FACEMATCH_DATA_DIR, named after the manifest)"
        ),
    ] = None,
    shard_rows: Annotated[
        int, typer.Option(min=1, help="With --cluster: manifest rows per shard")
    ] = 1000,
) -> None:
    """Enrol licence photos: keeps the five identity fields of a row, drops every other column.
    A run stopped part-way resumes where it stopped when started again."""
    settings = Settings()
    keys = keys_or_exit(settings)
    sessions = open_database(settings)
    enrolment = enrolment_for(settings, keys, sessions, face, workers)
    shards_done = ""
    try:
        total = count_rows(manifest)
        if cluster is None:
            with tqdm(total=total, unit="photo", desc="enrolling") as progress:
                report = enrolment.run(read_manifest(manifest, images), progress)
        else:
            folder = shards or settings.data_dir / "shards" / file_sha256(manifest)[:16]
            report, shards_done = _enrol_on_cluster(
                enrolment, manifest, images, cluster, folder, shard_rows, total
            )
    except ManifestError as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    index = record_enrolment(sessions, settings, keys, report, rejects, "enrolment.run")
    typer.echo(
        f"{report.rows} rows: {report.enrolled} photos enrolled, {report.already_enrolled} "
        f"already enrolled, {len(report.rejects)} rejected (see {rejects}); "
        f"{shards_done}index holds {index.count} templates"
    )


def _enrol_on_cluster(
    enrolment: Enrolment,
    manifest: Path,
    images: Path,
    cluster: str,
    shards: Path,
    shard_rows: int,
    rows: int,
) -> tuple[EnrolmentReport, str]:
    """The encode step on a Dask cluster, through shards; Dask is imported only for this."""
    from app.enrolment.distributed import (
        ClusterUnreachable,
        ShardedEnrolment,
        ShardsInUse,
        dask_client,
    )

    sharded = ShardedEnrolment(enrolment, shards, shard_rows)
    try:
        with dask_client(cluster, enrolment.workers or os.cpu_count() or 1) as client:
            outcome = sharded.run(manifest, images, client, rows)
    except (ShardsInUse, ClusterUnreachable) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    return outcome.enrolment, (
        f"{outcome.shards_encoded} shards encoded, {outcome.shards_reused} reused; "
    )


def reenroll(
    model: Annotated[
        str,
        typer.Option(help=f"The engine to re-encode into: {', '.join(ENGINES)}, or its model id"),
    ],
    images: Annotated[
        Path,
        typer.Option(exists=True, file_okay=False, help="Folder the stored photo paths are under"),
    ],
    rejects: Annotated[Path, typer.Option(help="Rejects report to write (CSV)")] = Path(
        "reenroll-rejects.csv"
    ),
    face: Annotated[FaceOption, typer.Option(help="As at enrolment")] = FaceOption.only,
    workers: Annotated[
        int | None, typer.Option(help="Encoding processes (default: one per core)")
    ] = None,
) -> None:
    """Re-encode every enrolled photo with another engine, from the stored photo references.

    Resumable: photos that already have the engine's template are skipped. The other
    engine's templates are left as they are, so the gallery keeps working on the configured
    engine until FACEMATCH_ENGINE is switched to this one.
    """
    engine = next((n for n in ENGINES if model in (n, engine_spec(n).model_id)), None)
    if engine is None:
        typer.echo(f"error: no engine is called {model!r}", err=True)
        raise typer.Exit(2)
    settings = Settings().model_copy(update={"engine": engine})
    keys = keys_or_exit(settings)
    sessions = open_database(settings)
    enrolment = enrolment_for(settings, keys, sessions, face, workers)
    with tqdm(total=count_photos(sessions), unit="photo", desc="re-encoding") as progress:
        report = enrolment.run(stored_photos(sessions, images), progress)
    index = record_enrolment(sessions, settings, keys, report, rejects, "enrolment.reenroll")
    typer.echo(
        f"{report.rows} photos: {report.enrolled} re-encoded for {enrolment.model_id}, "
        f"{report.already_enrolled} already were, {len(report.rejects)} rejected (see {rejects}); "
        f"its index holds {index.count} templates. Serve it with FACEMATCH_ENGINE={engine}."
    )


@index_cli.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the index from the templates in the database."""
    settings = Settings()
    spec = gallery_spec(settings, keys_or_exit(settings))
    sessions = open_database(settings)
    index = sync_index(sessions, spec, spec.empty_index())
    with sessions.begin() as session:
        trail.record(session, "enrolment", "index.rebuild", actor(), "success", count=index.count)
    typer.echo(f"index rebuilt: {index.count} templates at revision {index.revision}")


@records_cli.command("purge")
def records_purge(
    license_number: Annotated[str, typer.Argument(help="Licence number to remove")],
) -> None:
    """Remove a licence record, its photos, its templates and its index entries."""
    settings = Settings()
    keys = keys_or_exit(settings)
    sessions = open_database(settings)
    with sessions.begin() as session:
        record_id = purge_record(session, license_number)
        if record_id is not None:
            trail.record(
                session,
                "enrolment",
                "record.purge",
                actor(),
                "success",
                f"license_record:{record_id}",
            )
    if record_id is None:
        typer.echo("no such licence record", err=True)
        raise typer.Exit(1)
    # Every saved index drops the person, not only the one searched now.
    searched = gallery_spec(settings, keys)
    sync_index(sessions, searched)
    for spec in every_gallery_spec(settings, keys):
        if spec.index_name == searched.index_name:
            continue
        try:
            sync_index(sessions, spec, spec.saved_index())
        except IndexInvalid:
            continue  # none saved: nothing holds the person
    typer.echo("licence record purged")


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
