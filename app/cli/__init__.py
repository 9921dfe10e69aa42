"""The `facematch` command: serve, migrate, enrol, calibrate, the first administrators, the
audit log, reports, keys and retention. One module per command group."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from app.cli import accounts, audit, calibrate, demo, gallery, keys, reports, serving
from app.core import logs
from app.core.settings import Settings

cli = typer.Typer(
    help="facematch: the licensing agency's face match service.", no_args_is_help=True
)


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


@cli.callback()
def _logging() -> None:
    logs.configure()


cli.command()(serving.serve)
cli.command()(serving.health)
cli.command()(gallery.enroll)
cli.command()(gallery.reenroll)
cli.command()(calibrate.calibrate)
cli.command("demo-manifest")(gallery.demo_manifest)
cli.command()(demo.demo)
cli.add_typer(serving.db_cli, name="db")
cli.add_typer(gallery.index_cli, name="index")
cli.add_typer(gallery.records_cli, name="records")
cli.add_typer(accounts.accounts_cli, name="accounts")
cli.add_typer(audit.audit_cli, name="audit")
cli.add_typer(reports.report_cli, name="report")
cli.add_typer(keys.keys_cli, name="keys")
cli.add_typer(audit.retention_cli, name="retention")
