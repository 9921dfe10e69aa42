"""Published reports."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from app.audit import trail
from app.cli.common import actor, open_database
from app.core.settings import Settings
from app.oversight.reports import transparency

report_cli = typer.Typer(help="Published reports.", no_args_is_help=True)


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
    sessions = open_database(Settings())
    with sessions.begin() as session:
        report = transparency(session, period_from.date(), period_to.date())
        trail.record(session, "oversight", "report.transparency", actor(), "success")
    typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
