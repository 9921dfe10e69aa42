"""What every command shares: who ran it, how a refusal ends it, the database, the keys."""

from __future__ import annotations

import getpass
from enum import StrEnum

import typer
from sqlalchemy.orm import Session, sessionmaker

from app.core.composition import KeyMissing, template_keys
from app.core.database import make_engine, migrate, session_factory
from app.core.refusals import Refusal
from app.core.settings import Settings
from index import TemplateKeys


class FaceOption(StrEnum):
    only = "only"
    central = "central"


def actor() -> str:
    """Who ran a command, as the audit log names them: the operating-system user."""
    return f"cli:{getpass.getuser()}"


def refused(problem: Refusal) -> typer.Exit:
    typer.echo(f"error: {problem.message}", err=True)
    return typer.Exit(2)


def keys_or_exit(settings: Settings) -> TemplateKeys:
    """The keys what is sealed at rest is sealed with; exit 2 naming the setting if there
    is none."""
    try:
        return template_keys(settings)
    except KeyMissing as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None


def open_database(settings: Settings) -> sessionmaker[Session]:
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    return session_factory(engine)
