"""The database: the declarative base and column types every domain's tables use, the engine,
sessions, and migrations."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    CursorResult,
    DateTime,
    Engine,
    Executable,
    Integer,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Session,
    sessionmaker,
)

# SQLite assigns row ids only to INTEGER PRIMARY KEY columns; elsewhere ids are 64-bit, the
# width of FAISS ids.
Id64 = BigInteger().with_variant(Integer(), "sqlite")


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, always read back in UTC: SQLite keeps no zone, PostgreSQL does."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(kind: type[enum.Enum], length: int) -> sa.Enum:
    """An enum kept as its members' values in a VARCHAR of `length` (no database enum type,
    so a new member needs no migration), turned into the enum and back by SQLAlchemy."""
    return sa.Enum(
        kind,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            # What is deleted (a kept probe, a tester's photos) is overwritten, not left in
            # free pages of the file.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rows_changed(session: Session, statement: Executable) -> int:
    """How many rows an UPDATE or DELETE changed: the compare-and-set the workflows rely on
    to let only one of two racing calls through."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult)
    return result.rowcount


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest Alembic revision (or to `revision`, to test one)."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a table by copying it, and SQLite will not drop a
            # table others refer to while it enforces foreign keys: off for the migration
            # (it must be set outside a transaction), every reference checked after it, and
            # the connection never handed out again.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration left broken references: {broken[:5]}")
        if sqlite:
            connection.invalidate()
