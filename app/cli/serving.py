"""Serving the API, and the database schema."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.error import HTTPError
from urllib.request import urlopen

import typer

from app.cli.common import open_database
from app.core import logs
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
    logs.configure(settings.log_format, replace=True)
    try:
        app = create_app(settings, warm=True)
    except StartupRefused as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    host, port = host or settings.host, port or settings.port
    typer.echo(f"facematch: the console is at http://{host}:{port}/console/ (the API under /v1)")
    uvicorn.Server(server_config(app, host, port)).run()


def health(
    port: Annotated[int | None, typer.Option(help="Port (default FACEMATCH_PORT)")] = None,
) -> None:
    """Exit 0 if the service on this machine answers (the image's health check).

    It asks GET /v1/health over loopback. Where loopback is outside FACEMATCH_ALLOWED_NETWORKS
    the service refuses it with client_not_allowed, which shows as much: it is up and
    answering. Widening the allow-list for a health check would let in whatever else comes
    from loopback (a proxy on the same host), so it is never needed."""
    url = f"http://127.0.0.1:{port or Settings().port}/v1/health"
    try:
        # A fixed http URL on loopback, never one from outside.
        with urlopen(url, timeout=4):  # nosec B310
            typer.echo("healthy")
    except HTTPError as refused:
        if refused.code == 403 and _refusal_code(refused) == "client_not_allowed":
            typer.echo("answering (loopback is outside the allowed networks)")
            return
        typer.echo(f"unhealthy: HTTP {refused.code}", err=True)
        raise typer.Exit(1) from None
    except OSError as problem:
        typer.echo(f"not answering: {problem}", err=True)
        raise typer.Exit(1) from None


def _refusal_code(refused: HTTPError) -> str | None:
    """The code of the service's refusal, if the answer is one."""
    try:
        code = json.load(refused).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest migration."""
    open_database(Settings())
    typer.echo("database is at the newest migration")
