"""The append-only audit log, its head, and the checkpoints retention deletes behind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, Id64


class AuditEntry(Base):
    """One entry of the append-only audit log, chained to the one before by SHA-256.

    Identifiers only: never a template, a photo or an identity field.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    component: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[str] = mapped_column(Text)
    # The HTTP request that wrote it (app.core.logs), to join it to the service's log.
    request_id: Mapped[str | None] = mapped_column(String(32))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The newest entry's number and hash, in one row that every append locks first: appends
    from any number of processes then form one chain, and a cut-off tail is detected."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed statement that entry `seq` of the audit log had hash `hash`, written by the
    retention purge before it deletes the entries up to it: the rest still verify from it."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))
