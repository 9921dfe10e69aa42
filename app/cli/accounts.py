"""The first administrators: the one account made by one person alone, and the second,
approved here while there is one."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from app.accounts.schemas import NewAccount
from app.accounts.service import (
    ChangeKind,
    CodePart,
    Credentials,
    administrator_accounts,
    approve_change,
    first_administrator,
    get_change,
)
from app.audit import trail
from app.cli.common import actor, keys_or_exit, open_database, refused
from app.core.composition import account_policy
from app.core.refusals import Refusal
from app.core.settings import Settings
from auth import Role

accounts_cli = typer.Typer(help="Accounts and training records.", no_args_is_help=True)


@accounts_cli.command("first-admin")
def accounts_first_admin(
    username: Annotated[str, typer.Argument(help="Login name (lower case)")],
) -> None:
    """Make the first administrator, while there is none: the one account made without a
    second administrator's approval (the audit log says so). Prints its activation code,
    once; with it the administrator sets their own password and second factor
    (POST /v1/auth/activate)."""
    settings = Settings()
    keys = keys_or_exit(settings)
    try:
        body = NewAccount(username=username, role=Role.admin)
    except ValidationError as problem:
        typer.echo(f"error: username: {problem.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    sessions = open_database(settings)
    try:
        with sessions.begin() as session:
            account, credentials = first_administrator(
                session, body.username, account_policy(settings, keys), actor()
            )
    except Refusal as problem:
        raise refused(problem) from None
    typer.echo(f"account {account.id} created: {account.username} (admin)")
    _print_credentials(credentials)


def _print_credentials(credentials: Credentials | None) -> None:
    if credentials is None:
        return
    if credentials.activation_code is not None:
        assert credentials.activation_expires_at is not None
        expires = credentials.activation_expires_at.isoformat(timespec="minutes")
        part = "" if credentials.activation_part is CodePart.whole else " (second half)"
        typer.echo(
            f"activation code{part} (shown once, until {expires}): {credentials.activation_code}"
        )
    if credentials.client_secret is not None:
        typer.echo(f"client secret (shown once): {credentials.client_secret}")


@accounts_cli.command("approve")
def accounts_approve(
    change_id: Annotated[int, typer.Argument(help="The pending change's id")],
) -> None:
    """Approve, on the command line, the change making the second administrator, while the
    first is the only administrator account there has ever been: every later change is
    approved by a second administrator through the API. Prints the second half of the new
    administrator's activation code, once (the first administrator was shown the first)."""
    settings = Settings()
    keys = keys_or_exit(settings)
    sessions = open_database(settings)
    try:
        with sessions.begin() as session:
            trail.serialise(session)  # no other administrator appears while this decides
            change = get_change(session, change_id)
            if administrator_accounts(session) != 1 or (change.kind, change.role) != (
                ChangeKind.create,
                Role.admin,
            ):
                typer.echo(
                    "error: the command line approves only the change making the second "
                    "administrator, while there is one; a second administrator approves "
                    "the rest through the API",
                    err=True,
                )
                raise typer.Exit(2)
            outcome = approve_change(
                session, change_id, None, actor(), account_policy(settings, keys)
            )
    except Refusal as problem:
        raise refused(problem) from None
    assert outcome.account is not None
    typer.echo(f"account {outcome.account.id} created: {outcome.account.username} (admin)")
    _print_credentials(outcome.credentials)
