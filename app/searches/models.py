"""Searches under approved requests, their candidates, and the disclosures they made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, Id64, enum_column, utc_now
from app.gallery.models import LicenseRecord, Photo
from app.requests.models import AgencyRequest
from app.searches.rules import Conclusion, SearchOutcome


class Search(Base):
    """One gallery search under an approved request. The probe photo is kept, sealed, only
    while its examiners compare it (KeptProbe); its SHA-256 stays."""

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
    # How many examiners' conclusions a release needs (FACEMATCH_EXAMINERS), as of the search.
    examiners_required: Mapped[int] = mapped_column(Integer, default=1)
    # The second, blind examiner, once one has taken the search on.
    verifier_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # Examinations recorded so far; the update that counts one serialises two examiners
    # concluding at once, so the second always sees the first's conclusions.
    examinations_recorded: Mapped[int] = mapped_column(Integer, default=0)
    # The human review's outcome: None until decided.
    decision: Mapped[SearchOutcome | None] = mapped_column(enum_column(SearchOutcome, 16))
    confirmed_rank: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None]
    # When the candidate list was deleted under the retention policy: none can be confirmed.
    candidates_purged_at: Mapped[datetime | None]

    candidates: Mapped[list[SearchCandidate]] = relationship(
        order_by="SearchCandidate.rank", cascade="all, delete-orphan"
    )


class SearchCandidate(Base):
    """A person the search found, known to the examiners only by rank, an opaque reference
    and their enrolled photos until a release names them."""

    __tablename__ = "search_candidates"

    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(32))
    # Kept when the licence record is purged, so the search stays accountable.
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("license_records.id", ondelete="SET NULL")
    )
    # The enrolled photo whose template matched.
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    distance: Mapped[float] = mapped_column(Float)

    record: Mapped[LicenseRecord | None] = relationship()
    photo: Mapped[Photo | None] = relationship()


class Examination(Base):
    """One examiner's comparison of the probe with every candidate."""

    __tablename__ = "examinations"

    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), primary_key=True)
    examiner_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    concluded_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)

    conclusions: Mapped[list[CandidateConclusion]] = relationship(
        order_by="CandidateConclusion.rank", cascade="all, delete-orphan"
    )


class CandidateConclusion(Base):
    """An examiner's conclusion on one candidate and its basis: the features compared."""

    __tablename__ = "candidate_conclusions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["search_id", "examiner_id"],
            ["examinations.search_id", "examinations.examiner_id"],
            ondelete="CASCADE",
        ),
    )

    search_id: Mapped[int] = mapped_column(Id64, primary_key=True)
    examiner_id: Mapped[int] = mapped_column(Id64, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    conclusion: Mapped[Conclusion] = mapped_column(enum_column(Conclusion, 16))
    basis: Mapped[str] = mapped_column(String(500))


class KeptProbe(Base):
    """The probe photo, sealed like templates, kept while the search is undecided so each
    examiner sees the same face; deleted in the transaction that decides the search."""

    __tablename__ = "kept_probes"

    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # The face searched with, left,top,right,bottom in the photo's pixels.
    face_box: Mapped[str] = mapped_column(String(64))


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
    # When the release was shown to the searching operator: once, never again.
    shown_at: Mapped[datetime | None]

    request: Mapped[AgencyRequest] = relationship()
