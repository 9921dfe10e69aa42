"""Database engine, sessions, migrations, and the gallery revision counter."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from app.models import GalleryRevision, Photo, Template


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def bump_revision(session: Session, model_id: str) -> None:
    """Count one more change to a model's templates, in the caller's transaction."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(GalleryRevision).values(model_id=model_id, revision=1)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[GalleryRevision.model_id],
            set_={"revision": GalleryRevision.revision + 1},
        )
    )


def gallery_revision(session: Session, model_id: str) -> int:
    revision = session.scalar(
        select(GalleryRevision.revision).where(GalleryRevision.model_id == model_id)
    )
    return revision or 0


def template_ids(session: Session, model_id: str) -> set[int]:
    return set(session.scalars(select(Template.id).where(Template.model_id == model_id)))


def template_count(session: Session, model_id: str) -> int:
    return session.scalar(select(func.count(Template.id)).where(Template.model_id == model_id)) or 0


def people_enrolled(session: Session, model_id: str) -> int:
    """Licence records with at least one of the engine's templates: a search's N."""
    enrolled = select(func.count(func.distinct(Photo.record_id))).join(Template)
    return session.scalar(enrolled.where(Template.model_id == model_id)) or 0


def templates_by_id(session: Session, ids: list[int]) -> list[tuple[int, bytes]]:
    rows = session.execute(select(Template.id, Template.descriptor).where(Template.id.in_(ids)))
    return [(row.id, row.descriptor) for row in rows]


def record_ids_of_templates(session: Session, ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(Template.id, Photo.record_id).join(Photo).where(Template.id.in_(ids))
    )
    return {row.id: row.record_id for row in rows}
