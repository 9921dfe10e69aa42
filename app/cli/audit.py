"""The audit log: verifying it, anchoring its head, its keys, and retention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from app.audit import trail
from app.audit.anchors import FileSink, anchor_head
from app.audit.keys import new_signing_key, public_key_text, read_signing_key
from app.audit.retention import purge
from app.cli.common import actor, open_database
from app.core.composition import anchor_sink, audit_keys, retention_policy
from app.core.settings import Settings

audit_cli = typer.Typer(help="The audit log.", no_args_is_help=True)


retention_cli = typer.Typer(help="Deleting what is past its retention.", no_args_is_help=True)


@audit_cli.command("verify")
def audit_verify(
    anchors: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Anchors to check against: an anchor file, or an export of the anchors sent "
            "to syslog (default: the anchor file)",
        ),
    ] = None,
) -> None:
    """Check the audit log's hash chain, and against the anchors kept outside the database;
    exit 1 naming the first bad entry if it is broken."""
    settings = Settings()
    lines = (FileSink(anchors) if anchors is not None else anchor_sink(settings)).read()
    sessions = open_database(settings)
    with sessions.begin() as session:
        result = trail.verify(session, audit_keys(settings), lines)
        trail.record(
            session,
            "oversight",
            "audit.verify",
            actor(),
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
    keys = audit_keys(settings)
    if keys.anchoring is None:
        typer.echo(
            "error: no audit anchor key is configured (FACEMATCH_AUDIT_ANCHOR_KEY; "
            "`facematch audit new-key` makes one)",
            err=True,
        )
        raise typer.Exit(2)
    sessions = open_database(settings)
    try:
        anchor, problem = anchor_head(sessions, keys, anchor_sink(settings)), None
    except OSError as failed:
        anchor, problem = None, failed
    with sessions.begin() as session:
        trail.record(
            session,
            "oversight",
            "audit.anchor",
            actor(),
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
    key = new_signing_key()
    typer.echo(key)
    public = public_key_text(read_signing_key(key).public_key())
    typer.echo(f"public key: {public}", err=True)


@retention_cli.command("purge")
def retention_purge() -> None:
    """Delete the candidate lists, probe hashes and audit entries older than their retention
    periods (docs/operations.md, "Retention"); the audit entries behind a signed checkpoint.
    Run daily."""
    settings = Settings()
    keys = audit_keys(settings)
    if keys.signing is None:
        typer.echo(
            "error: no audit signing key is configured (FACEMATCH_AUDIT_SIGNING_KEY; "
            "`facematch audit new-key` makes one): audit entries are deleted only behind a "
            "signed checkpoint",
            err=True,
        )
        raise typer.Exit(2)
    sessions = open_database(settings)
    with sessions.begin() as session:
        purged = purge(session, retention_policy(settings), keys, datetime.now(UTC), actor())
    typer.echo(
        f"purged {purged.candidate_lists} candidate lists, {purged.probe_hashes} probe hashes, "
        f"{purged.audit_entries} audit entries"
    )
