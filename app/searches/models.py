"""Searches under approved requests, their candidates, and the disclosures they made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, Id64, enum_column, utc_now
from app.gallery.models import LicenseRecord
from app.requests.models import AgencyRequest
from app.searches.rules import SearchOutcome


class Search(Base):
    """One gallery search under an approved request. The probe photo is not kept: its
    SHA-256 is."""

    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    via_system_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # None once the retention period for probe hashes has passed (`facematch retention purge`).
    probe_sha256: Mapped[str | None] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(64))
    index_revision: Mapped[int] = mapped_column(BigInteger)
    threshold: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float)
    # The operating point file the threshold came from (GET /v1/operating-point).
    operating_point_sha256: Mapped[str] = mapped_column(String(64))
    searched_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    # The operator's human review: None until decided.
    decision: Mapped[SearchOutcome | None] = mapped_column(enum_column(SearchOutcome, 16))
    confirmed_rank: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None]
    # When the candidate list was deleted under the retention policy: none can be confirmed.
    candidates_purged_at: Mapped[datetime | None]

    candidates: Mapped[list[SearchCandidate]] = relationship(
        order_by="SearchCandidate.rank", cascade="all, delete-orphan"
    )


class SearchCandidate(Base):
    __tablename__ = "search_candidates"

    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Kept when the licence record is purged, so the search stays accountable.
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("license_records.id", ondelete="SET NULL")
    )
    distance: Mapped[float] = mapped_column(Float)

    record: Mapped[LicenseRecord | None] = relationship()


class Disclosure(Base):
    """Which person's five fields went to which agency, under which request, when, by whom.

    The licence number is kept (and nothing else of the person) so the hotline can still
    answer "was my information shared?" after the licence record is purged.
    """

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("license_records.id", ondelete="SET NULL")
    )
    license_number: Mapped[str] = mapped_column(String(32), index=True)
    agency_name: Mapped[str] = mapped_column(String(200))
    released_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    released_at: Mapped[datetime] = mapped_column(default=utc_now)

    request: Mapped[AgencyRequest] = relationship()
