"""The key what is sealed at rest is sealed with: a new one, and rotating to it."""

from __future__ import annotations

from typing import Annotated

import typer

from app.accounts.service import reseal_totp_seeds
from app.audit import trail
from app.cli.common import actor, keys_or_exit, open_database
from app.core.composition import every_gallery_spec
from app.core.settings import Settings
from app.gallery.store import reseal_templates
from app.requests.workflow import reseal_court_orders
from index import IndexInvalid, new_key

keys_cli = typer.Typer(help="The key face templates are sealed with.", no_args_is_help=True)


@keys_cli.command("new")
def keys_new() -> None:
    """Print a fresh template key, for FACEMATCH_TEMPLATE_KEY."""
    typer.echo(new_key())


@keys_cli.command("rotate")
def keys_rotate(
    chunk: Annotated[int, typer.Option(min=1, help="Templates per transaction")] = 1000,
) -> None:
    """Re-seal every template (of photos and of people), saved index, second-factor seed
    and court order document under FACEMATCH_TEMPLATE_KEY.

    Give the new key as FACEMATCH_TEMPLATE_KEY and the old one in
    FACEMATCH_EARLIER_TEMPLATE_KEYS, to the service and every command, then run this; a run
    stopped part-way resumes. When it has finished, drop the old key.
    """
    settings = Settings()
    keys = keys_or_exit(settings)
    sessions = open_database(settings)
    resealed = reseal_templates(sessions, keys, chunk)
    indexes = 0
    for spec in every_gallery_spec(settings, keys):
        try:
            index = spec.saved_index()
        except IndexInvalid:
            continue  # none saved, or unreadable: the next sync rebuilds it from the database
        index.save(spec.index_dir, keys)
        indexes += 1
    with sessions.begin() as session:
        seeds = reseal_totp_seeds(session, keys)
        orders = reseal_court_orders(session, keys)
        trail.record(
            session,
            "enrolment",
            "keys.rotate",
            actor(),
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
