"""The `facematch` command: serve, migrate, enrol, rebuild the index, purge, make demo data."""

from __future__ import annotations

import csv
import getpass
import json
import logging
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from app import audit
from app.accounts import (
    ChangeKind,
    Credentials,
    administrators,
    approve_change,
    first_administrator,
    get_change,
    reseal_totp_seeds,
)
from app.anchors import FileSink, SyslogSink, anchor_head
from app.config import KeyMissing, Settings
from app.db import make_engine, migrate, reseal_templates, session_factory
from app.demo import DEMO_COLUMNS, lfw_demo_rows
from app.enrolment import (
    Enrolment,
    EnrolmentReport,
    ManifestError,
    count_photos,
    count_rows,
    file_sha256,
    purge_record,
    read_manifest,
    stored_photos,
    write_rejects,
)
from app.errors import ApiError
from app.gallery import sync_index
from app.reports import transparency
from app.retention import purge
from app.schemas import NewAccount
from app.workflow import reseal_court_orders
from auth import Role
from index import GalleryIndex, IndexInvalid, new_key
from matcher import ENGINES, FaceChoice, engine_spec


class FaceOption(StrEnum):
    only = "only"
    central = "central"


cli = typer.Typer(
    help="facematch: the licensing agency's face match service.", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
index_cli = typer.Typer(help="The FAISS gallery index.", no_args_is_help=True)
records_cli = typer.Typer(help="Licence records.", no_args_is_help=True)
accounts_cli = typer.Typer(help="Accounts and training records.", no_args_is_help=True)
audit_cli = typer.Typer(help="The audit log.", no_args_is_help=True)
report_cli = typer.Typer(help="Published reports.", no_args_is_help=True)
keys_cli = typer.Typer(help="The key face templates are sealed with.", no_args_is_help=True)
retention_cli = typer.Typer(help="Deleting what is past its retention.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(index_cli, name="index")
cli.add_typer(records_cli, name="records")
cli.add_typer(accounts_cli, name="accounts")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(report_cli, name="report")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(retention_cli, name="retention")


def main() -> None:
    """`facematch`: a setting that is not valid is named in a sentence, not a traceback."""
    try:
        cli()
    except ValidationError as problem:
        if problem.title != Settings.__name__:
            raise
        for error in problem.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            typer.echo(f"error: FACEMATCH_{name}: {error['msg']}", err=True)
        raise SystemExit(2) from None


def _actor() -> str:
    """Who ran a command, as the audit log names them: the operating-system user."""
    return f"cli:{getpass.getuser()}"


def _refused(problem: ApiError) -> typer.Exit:
    typer.echo(f"error: {problem.message}", err=True)
    return typer.Exit(2)


def _with_keys(settings: Settings) -> Settings:
    """The settings, once it is known they give the template key (exit 2 if not)."""
    try:
        settings.template_keys
    except KeyMissing as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    return settings


def _open(settings: Settings) -> sessionmaker[Session]:
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    return session_factory(engine)


def _recorded(
    sessions: sessionmaker[Session],
    settings: Settings,
    report: EnrolmentReport,
    rejects: Path,
    event: str,
) -> GalleryIndex:
    """After an enrolment run: the rejects report, the audit entry, the index brought up to
    date."""
    write_rejects(rejects, report.rejects)
    with sessions.begin() as session:
        audit.record(
            session,
            "enrolment",
            event,
            _actor(),
            "success",
            model_id=settings.engine_spec.model_id,
            rows=report.rows,
            enrolled=report.enrolled,
            already_enrolled=report.already_enrolled,
            rejected=len(report.rejects),
        )
    return sync_index(sessions, settings.gallery_spec)


def _enrolment(
    settings: Settings, sessions: sessionmaker[Session], face: FaceOption, workers: int | None
) -> Enrolment:
    choice: FaceChoice = "central" if face is FaceOption.central else "only"
    return Enrolment(
        sessions,
        settings.encoder(choice),
        settings.template_keys,
        workers=workers if workers is not None else settings.enroll_workers,
        batch_size=settings.enroll_batch_size,
    )


@cli.callback()
def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@cli.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default FACEMATCH_HOST)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FACEMATCH_PORT)")] = None,
) -> None:
    """Migrate the database, load the index and serve the API."""
    import uvicorn

    from app.main import StartupRefused, create_app, server_config

    settings = Settings()
    try:
        app = create_app(settings, warm=True)
    except StartupRefused as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    uvicorn.Server(server_config(app, host or settings.host, port or settings.port)).run()


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
    settings = _with_keys(Settings())
    sessions = _open(settings)
    enrolment = _enrolment(settings, sessions, face, workers)
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
    index = _recorded(sessions, settings, report, rejects, "enrolment.run")
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
    from app.distributed import ClusterUnreachable, ShardedEnrolment, ShardsInUse, dask_client

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


@cli.command()
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
    settings = _with_keys(Settings().model_copy(update={"engine": engine}))
    sessions = _open(settings)
    enrolment = _enrolment(settings, sessions, face, workers)
    with tqdm(total=count_photos(sessions), unit="photo", desc="re-encoding") as progress:
        report = enrolment.run(stored_photos(sessions, images), progress)
    index = _recorded(sessions, settings, report, rejects, "enrolment.reenroll")
    typer.echo(
        f"{report.rows} photos: {report.enrolled} re-encoded for {enrolment.model_id}, "
        f"{report.already_enrolled} already were, {len(report.rejects)} rejected (see {rejects}); "
        f"its index holds {index.count} templates. Serve it with FACEMATCH_ENGINE={engine}."
    )


@cli.command()
def calibrate(
    photos: Annotated[
        list[Path],
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Calibration set: a CSV of path,person[,group], paths relative to it. "
            "Repeat for several sets; people are compared only within a set.",
        ),
    ],
    target_fpir: Annotated[
        float,
        typer.Option(
            min=1e-9,
            max=0.5,
            help="Share of searches for someone not enrolled that may return a candidate",
        ),
    ] = 0.001,
    gallery_size: Annotated[
        int | None,
        typer.Option(min=1, help="People enrolled (default: the most the photos support)"),
    ] = None,
    by_group: Annotated[
        bool, typer.Option(help="Hold the target for every group, not just overall")
    ] = False,
    extrapolate: Annotated[
        bool,
        typer.Option(help="Beyond what the photos support, use the stated tail model"),
    ] = False,
    engine: Annotated[
        str | None, typer.Option(help=f"{', '.join(ENGINES)} (default FACEMATCH_ENGINE)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Operating point file to write")] = None,
    review: Annotated[
        Path | None,
        typer.Option(help="Also write the 50 closest different-person pairs here (CSV)"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Encoding processes (default: one per core)")
    ] = None,
) -> None:
    """Choose the threshold from labelled photos and write the operating point (JSON).

    Encodes the photos as the service would (quality policy included); templates are cached
    under FACEMATCH_DATA_DIR/cache, so a second run encodes only new photos. Look at the
    --review pairs before trusting the result: a pair that shows one person is a labelling
    error, and such errors set the threshold at the low rates a large gallery needs.
    """
    # SciPy's statistics take most of a second to import: only this command needs them.
    from calibration.calibrate import CalibrationRefused, pairs_to_review
    from calibration.calibrate import calibrate as choose_operating_point
    from calibration.photos import CalibrationSetError, encode, read_set

    settings = Settings()
    if engine is not None:
        if engine not in ENGINES:
            typer.echo(f"error: no engine is called {engine!r}", err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(update={"engine": engine})
    try:
        sets = {
            path.stem: encode(
                read_set(path),
                settings.encoder("central"),
                workers or settings.enroll_workers,
                settings.data_dir / "cache",
            )
            for path in photos
        }
        point = choose_operating_point(
            sets,
            settings.engine_spec,
            settings.quality_policy,
            target_fpir,
            gallery_size,
            by_group,
            extrapolate,
        )
    except (CalibrationSetError, CalibrationRefused) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    if review is not None:
        pairs = pairs_to_review(sets, settings.engine_spec.metric, settings.quality_policy)
        with review.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["distance", "photo", "person", "other_photo", "other_person"])
            for distance, a, b in pairs:
                writer.writerow([f"{distance:.4f}", a.path, a.person, b.path, b.person])
    text = point.model_dump_json(indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    kind = "modelled" if point.modelled else "measured"
    typer.echo(
        f"threshold {point.threshold:.4f} ({kind}) for FPIR {point.target_fpir:g} with "
        f"{point.gallery_size:,} people enrolled "
        f"(the photos support {point.supported_gallery_size:,}); "
        f"binding group {point.binding_group}; it misses {point.fnir:.1%} of mated comparisons. "
        f"Written to {out}"
    )


@index_cli.command("rebuild")
def index_rebuild() -> None:
    """Rebuild the index from the templates in the database."""
    settings = _with_keys(Settings())
    spec = settings.gallery_spec
    sessions = _open(settings)
    index = sync_index(sessions, spec, spec.empty_index())
    with sessions.begin() as session:
        audit.record(session, "enrolment", "index.rebuild", _actor(), "success", count=index.count)
    typer.echo(f"index rebuilt: {index.count} templates at revision {index.revision}")


@records_cli.command("purge")
def records_purge(
    license_number: Annotated[str, typer.Argument(help="Licence number to remove")],
) -> None:
    """Remove a licence record, its photos, its templates and its index entries."""
    settings = _with_keys(Settings())
    sessions = _open(settings)
    with sessions.begin() as session:
        record_id = purge_record(session, license_number)
        if record_id is not None:
            audit.record(
                session,
                "enrolment",
                "record.purge",
                _actor(),
                "success",
                f"license_record:{record_id}",
            )
    if record_id is None:
        typer.echo("no such licence record", err=True)
        raise typer.Exit(1)
    sync_index(sessions, settings.gallery_spec)
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


@accounts_cli.command("first-admin")
def accounts_first_admin(
    username: Annotated[str, typer.Argument(help="Login name (lower case)")],
) -> None:
    """Make the first administrator, while there is none: the one account made without a
    second administrator's approval (the audit log says so). Prints its activation code,
    once; with it the administrator sets their own password and second factor
    (POST /v1/auth/activate)."""
    settings = _with_keys(Settings())
    try:
        body = NewAccount(username=username, role=Role.admin)
    except ValidationError as problem:
        typer.echo(f"error: username: {problem.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    sessions = _open(settings)
    try:
        with sessions.begin() as session:
            account, credentials = first_administrator(
                session, body.username, settings.account_policy, _actor()
            )
    except ApiError as problem:
        raise _refused(problem) from None
    typer.echo(f"account {account.id} created: {account.username} (admin)")
    _print_credentials(credentials)


def _print_credentials(credentials: Credentials | None) -> None:
    if credentials is None:
        return
    if credentials.activation_code is not None:
        assert credentials.activation_expires_at is not None
        expires = credentials.activation_expires_at.isoformat(timespec="minutes")
        typer.echo(f"activation code (shown once, until {expires}): {credentials.activation_code}")
    if credentials.client_secret is not None:
        typer.echo(f"client secret (shown once): {credentials.client_secret}")


@accounts_cli.command("approve")
def accounts_approve(
    change_id: Annotated[int, typer.Argument(help="The pending change's id")],
) -> None:
    """Approve, on the command line, the change making the second administrator, while the
    first is the only one: every later change is approved by a second administrator
    through the API. Prints the new administrator's activation code, once."""
    settings = _with_keys(Settings())
    sessions = _open(settings)
    try:
        with sessions.begin() as session:
            change = get_change(session, change_id)
            if administrators(session) != 1 or (change.kind, change.role) != (
                ChangeKind.create.value,
                Role.admin.value,
            ):
                typer.echo(
                    "error: the command line approves only the change making the second "
                    "administrator, while there is one; a second administrator approves "
                    "the rest through the API",
                    err=True,
                )
                raise typer.Exit(2)
            outcome = approve_change(session, change_id, None, _actor(), settings.account_policy)
    except ApiError as problem:
        raise _refused(problem) from None
    assert outcome.account is not None
    typer.echo(f"account {outcome.account.id} created: {outcome.account.username} (admin)")
    _print_credentials(outcome.credentials)


@audit_cli.command("verify")
def audit_verify(
    anchors: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Anchors to check against: an anchor file, or an export of the syslog sink "
            "(default: the anchor file, where FACEMATCH_AUDIT_ANCHOR_SINK is the file)",
        ),
    ] = None,
) -> None:
    """Check the audit log's hash chain, and against the anchors kept outside the database;
    exit 1 naming the first bad entry if it is broken."""
    settings = Settings()
    sink = FileSink(anchors) if anchors is not None else settings.anchor_sink
    if isinstance(sink, SyslogSink):
        typer.echo("note: anchors sent to syslog are checked from an export (--anchors)", err=True)
    lines = sink.read()
    sessions = _open(settings)
    with sessions.begin() as session:
        result = audit.verify(session, settings.audit_keys, lines)
        audit.record(
            session,
            "oversight",
            "audit.verify",
            _actor(),
            "intact" if result.intact else "broken",
            first_bad=result.first_bad_seq,
            anchored=result.anchored_seq,
        )
    if not result.intact:
        at = "" if result.first_bad_seq is None else f" at entry {result.first_bad_seq}"
        typer.echo(f"audit log BROKEN{at}: {result.problem}", err=True)
        raise typer.Exit(1)
    anchored = result.anchored_seq
    typer.echo(
        f"audit log intact: {result.entries} entries, "
        + (f"anchored up to entry {anchored}" if anchored else "no anchor checked")
    )


@audit_cli.command("anchor")
def audit_anchor() -> None:
    """Anchor the audit log's head now, outside the database, as the service does every
    FACEMATCH_AUDIT_ANCHOR_INTERVAL_S: for a cron job where the service is not running."""
    settings = Settings()
    keys = settings.audit_keys
    if keys.anchoring is None:
        typer.echo(
            "error: no audit anchor key is configured (FACEMATCH_AUDIT_ANCHOR_KEY; "
            "`facematch audit new-key` makes one)",
            err=True,
        )
        raise typer.Exit(2)
    sessions = _open(settings)
    try:
        anchor, problem = anchor_head(sessions, keys, settings.anchor_sink), None
    except OSError as failed:
        anchor, problem = None, failed
    with sessions.begin() as session:
        audit.record(
            session,
            "oversight",
            "audit.anchor",
            _actor(),
            "success" if problem is None else "failure",
            anchored=anchor.seq if anchor else None,
        )
    if problem is not None:
        typer.echo(f"error: the audit anchor was not written: {problem}", err=True)
        raise typer.Exit(1)
    if anchor is None:
        typer.echo("the audit log is empty: nothing to anchor")
        return
    typer.echo(f"audit log anchored at entry {anchor.seq}")


@audit_cli.command("new-key")
def audit_new_key() -> None:
    """Print a fresh checkpoint signing key, for FACEMATCH_AUDIT_SIGNING_KEY, and (on stderr)
    its public key, for FACEMATCH_AUDIT_VERIFY_KEYS once the key is retired."""
    key = audit.new_signing_key()
    typer.echo(key)
    public = audit.public_key_text(audit.read_signing_key(key).public_key())
    typer.echo(f"public key: {public}", err=True)


@retention_cli.command("purge")
def retention_purge() -> None:
    """Delete the candidate lists, probe hashes and audit entries older than their retention
    periods (README, "Retention"); the audit entries behind a signed checkpoint. Run daily."""
    settings = Settings()
    keys = settings.audit_keys
    if keys.signing is None:
        typer.echo(
            "error: no audit signing key is configured (FACEMATCH_AUDIT_SIGNING_KEY; "
            "`facematch audit new-key` makes one): audit entries are deleted only behind a "
            "signed checkpoint",
            err=True,
        )
        raise typer.Exit(2)
    sessions = _open(settings)
    with sessions.begin() as session:
        purged = purge(session, settings.retention_policy, keys, datetime.now(UTC), _actor())
    typer.echo(
        f"purged {purged.candidate_lists} candidate lists, {purged.probe_hashes} probe hashes, "
        f"{purged.audit_entries} audit entries"
    )


@report_cli.command("transparency")
def report_transparency(
    period_from: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day (UTC)")
    ],
    period_to: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Day after the last (UTC)")
    ],
) -> None:
    """Print the transparency report's figures as JSON."""
    if period_to <= period_from:
        typer.echo("error: --to must be a later day than --from", err=True)
        raise typer.Exit(2)
    sessions = _open(Settings())
    with sessions.begin() as session:
        report = transparency(session, period_from.date(), period_to.date())
        audit.record(session, "oversight", "report.transparency", _actor(), "success")
    typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))


@keys_cli.command("new")
def keys_new() -> None:
    """Print a fresh template key, for FACEMATCH_TEMPLATE_KEY."""
    typer.echo(new_key())


@keys_cli.command("rotate")
def keys_rotate(
    chunk: Annotated[int, typer.Option(min=1, help="Templates per transaction")] = 1000,
) -> None:
    """Re-seal every template, saved index, second-factor seed and court order document
    under FACEMATCH_TEMPLATE_KEY.

    Give the new key as FACEMATCH_TEMPLATE_KEY and the old one in
    FACEMATCH_EARLIER_TEMPLATE_KEYS, to the service and every command, then run this; a run
    stopped part-way resumes. When it has finished, drop the old key.
    """
    settings = _with_keys(Settings())
    keys = settings.template_keys
    sessions = _open(settings)
    resealed = reseal_templates(sessions, keys, chunk)
    indexes = 0
    for engine in ENGINES:
        spec = settings.model_copy(update={"engine": engine}).gallery_spec
        try:
            index = spec.saved_index()
        except IndexInvalid:
            continue  # none saved, or unreadable: the next sync rebuilds it from the database
        index.save(spec.index_dir, keys)
        indexes += 1
    with sessions.begin() as session:
        seeds = reseal_totp_seeds(session, keys)
        orders = reseal_court_orders(session, keys)
        audit.record(
            session,
            "enrolment",
            "keys.rotate",
            _actor(),
            "success",
            templates=resealed,
            indexes=indexes,
            totp_seeds=seeds,
            court_orders=orders,
        )
    typer.echo(
        f"{resealed} templates, {indexes} saved indexes, {seeds} second-factor seeds and "
        f"{orders} court order documents re-sealed under the current key"
    )
