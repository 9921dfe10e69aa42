"""Licence records, their photos and face templates, and the gallery's revision counter.
Licence records hold the five releasable fields and nothing more: what is not stored cannot
leak."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, Id64, utc_now


class LicenseRecord(Base):
    __tablename__ = "license_records"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    license_number: Mapped[str] = mapped_column(String(32), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    photos: Mapped[list[Photo]] = relationship(
        back_populates="record", cascade="all, delete-orphan", passive_deletes=True
    )


class Photo(Base):
    """A licence photo, known by its content hash; the image itself stays where it was found."""

    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("record_id", "sha256"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("license_records.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    record: Mapped[LicenseRecord] = relationship(back_populates="photos")
    templates: Mapped[list[Template]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True
    )


class Template(Base):
    """One engine's descriptor of one photo (float32 bytes). Never changed once written:
    its id is its FAISS id."""

    __tablename__ = "templates"
    # AUTOINCREMENT: SQLite would otherwise reuse a deleted highest id, and a stale index
    # would take the new template for the old one.
    __table_args__ = (UniqueConstraint("photo_id", "model_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    photo: Mapped[Photo] = relationship(back_populates="templates")


class PersonTemplate(Base):
    """One engine's template of one licence holder, fused from the templates of all their
    enrolled photos (index.fuse). Replaced, under a new id, in the transaction that changes
    the person's photos, and never changed in place: its id is its FAISS id."""

    __tablename__ = "person_templates"
    __table_args__ = (UniqueConstraint("record_id", "model_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("license_records.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)
    # How many photo templates it fuses.
    photos: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class GalleryRevision(Base):
    """Bumped in the same transaction as every change to a model's templates (photo and
    person templates alike), so a saved
    index can say which state of the database it reflects."""

    __tablename__ = "gallery_revisions"

    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
