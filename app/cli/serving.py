"""Serving the API, and the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import open_database
from app.core.settings import Settings

db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default FACEMATCH_HOST)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FACEMATCH_PORT)")] = None,
) -> None:
    """Migrate the database, load the index and serve the API."""
    import uvicorn

    from app.api.main import create_app, server_config
    from app.core.composition import StartupRefused

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
    open_database(Settings())
    typer.echo("database is at the newest migration")
