"""Published reports."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from app.audit import trail
from app.cli.common import actor, open_database
from app.console.render import STATIC, templates
from app.core.composition import configured_operating_point
from app.core.refusals import Refusal
from app.core.settings import Settings
from app.oversight.accountability import accountability, report_period
from app.oversight.reports import transparency
from app.oversight.schemas import AccountabilityReport
from matcher.operating_point import OperatingPointError

report_cli = typer.Typer(help="Published reports.", no_args_is_help=True)


def _period(period_from: datetime | None, period_to: datetime | None) -> tuple[date, date]:
    """The days asked for (defaults as the report's own); exit 2 when they are no period."""
    try:
        return report_period(
            period_from.date() if period_from else None,
            period_to.date() if period_to else None,
            datetime.now(UTC).date(),
        )
    except Refusal:
        typer.echo("error: --to must be a later day than --from", err=True)
        raise typer.Exit(2) from None


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
    start, end = _period(period_from, period_to)
    sessions = open_database(Settings())
    with sessions.begin() as session:
        report = transparency(session, start, end)
        trail.record(session, "oversight", "report.transparency", actor(), "success")
    typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))


def accountability_document(report: AccountabilityReport) -> str:
    """The report as one HTML file that loads nothing: the console's own template, with the
    console's style sheet (print layout included) inside it."""
    css = (STATIC / "console.css").read_text()
    return templates.get_template("accountability_file.html").render(report=report, css=css)


@report_cli.command("accountability")
def report_accountability(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write accountability.html and .json to")
    ],
    period_from: Annotated[
        datetime | None,
        typer.Option(
            "--from",
            formats=["%Y-%m-%d"],
            help="First day (UTC) of the transparency figures; default a year before --to",
        ),
    ] = None,
    period_to: Annotated[
        datetime | None,
        typer.Option(
            "--to", formats=["%Y-%m-%d"], help="Day after the last (UTC); default tomorrow"
        ),
    ] = None,
) -> None:
    """Write the accountability report of the service these settings configure (RCW
    43.386.020): OUT/accountability.html, printable, and its figures as accountability.json."""
    start, end = _period(period_from, period_to)
    settings = Settings()
    try:
        point, digest = configured_operating_point(settings)
    except OperatingPointError as problem:
        typer.echo(f"error: {problem}; the service would not start with it", err=True)
        raise typer.Exit(2) from None
    if out.exists() and not out.is_dir():
        typer.echo(f"error: --out {out} is a file, not a folder", err=True)
        raise typer.Exit(2)
    sessions = open_database(settings)
    try:
        # Audited first: a report the log cannot record is not written.
        with sessions.begin() as session:
            report = accountability(session, settings, point, digest, start, end)
            trail.record(
                session,
                "oversight",
                "report.accountability",
                actor(),
                "success",
                period_from=start.isoformat(),
                period_to=end.isoformat(),
            )
    except Refusal as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "accountability.json").write_text(report.model_dump_json(indent=2))
    (out / "accountability.html").write_text(accountability_document(report))
    typer.echo(f"wrote {out / 'accountability.html'} and {out / 'accountability.json'}")
