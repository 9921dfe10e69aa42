"""What the service stores. Licence records hold the five releasable fields and nothing more:
what is not stored cannot leak."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite assigns row ids only to INTEGER PRIMARY KEY columns; elsewhere ids are 64-bit, the
# width of FAISS ids.
Id64 = BigInteger().with_variant(Integer(), "sqlite")


def _now() -> datetime:
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


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime}


class LicenseRecord(Base):
    __tablename__ = "license_records"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    license_number: Mapped[str] = mapped_column(String(32), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=_now)

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
    created_at: Mapped[datetime] = mapped_column(default=_now)

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
    created_at: Mapped[datetime] = mapped_column(default=_now)

    photo: Mapped[Photo] = relationship(back_populates="templates")


class GalleryRevision(Base):
    """Bumped in the same transaction as every change to a model's templates, so a saved
    index can say which state of the database it reflects."""

    __tablename__ = "gallery_revisions"

    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class Account(Base):
    """A person (password and TOTP second factor) or a system (client id and secret), with
    exactly one role: nobody holds two duties through one account.

    A person's account starts with neither password nor second factor, only a one-time
    activation code, with which the person sets both: nobody else ever learns them.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(32))
    # Argon2 hash of the password (a person) or the client secret (a system); None until a
    # person activates the account, and again after a reset.
    secret_hash: Mapped[str | None] = mapped_column(String(256))
    # Argon2 hash of the one-time activation code, and when it stops working.
    activation_hash: Mapped[str | None] = mapped_column(String(256))
    activation_expires_at: Mapped[datetime | None]
    # The TOTP seed, sealed like templates (bound to the account).
    totp_seed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_active: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Every token carries the epoch it was made in; disabling, enabling, a reset or a new
    # password moves it on, and older tokens are refused.
    token_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class AccountChange(Base):
    """A change that confers power (an account with a powerful role made, re-enabled or
    reset; an operator's training recorded), waiting for a second administrator: it takes
    effect only when someone other than the administrator who asked approves it."""

    __tablename__ = "account_changes"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # The account changed; None for an account still to be made.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    course: Mapped[str | None] = mapped_column(String(100))
    completed_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    requested_at: Mapped[datetime] = mapped_column(default=_now)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None]


class TrainingRecord(Base):
    __tablename__ = "training_records"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    course: Mapped[str] = mapped_column(String(100))
    completed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class AgencyRequest(Base):
    """An agency's request to identify a person from a photo (DESIGN.md rule 1), its
    screening result, its status, and once approved its authorisation."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    submitted_at: Mapped[datetime] = mapped_column(default=_now, index=True)

    agency_name: Mapped[str] = mapped_column(String(200))
    agency_code: Mapped[str] = mapped_column(String(32))
    agency_kind: Mapped[str] = mapped_column(String(16))
    # The agency the information is for, when the requesting agency asks on another's
    # behalf: screening reads the request as that agency's.
    information_for_name: Mapped[str | None] = mapped_column(String(200))
    information_for_code: Mapped[str | None] = mapped_column(String(32))
    immigration_authority: Mapped[bool] = mapped_column(Boolean)
    case_number: Mapped[str] = mapped_column(String(100))
    requesting_officer: Mapped[str] = mapped_column(String(200))
    crime_category: Mapped[str] = mapped_column(String(64))
    statutes: Mapped[list[str]] = mapped_column(JSON)
    legal_process: Mapped[str] = mapped_column(String(16))
    court: Mapped[str | None] = mapped_column(String(200))
    judge: Mapped[str | None] = mapped_column(String(200))
    order_signed_on: Mapped[date | None] = mapped_column(Date)
    order_sha256: Mapped[str | None] = mapped_column(String(64))
    narrative: Mapped[str] = mapped_column(Text)

    immigration_related: Mapped[bool] = mapped_column(Boolean)
    screening_outcome: Mapped[str] = mapped_column(String(16))
    screening_rule: Mapped[str] = mapped_column(String(8))
    screening_reason: Mapped[str] = mapped_column(Text)

    status: Mapped[str] = mapped_column(String(16), index=True)
    searches_allowed: Mapped[int] = mapped_column(Integer, default=0)
    searches_used: Mapped[int] = mapped_column(Integer, default=0)
    authorised_until: Mapped[datetime | None]

    reviews: Mapped[list[Review]] = relationship(
        back_populates="request", order_by="Review.id", cascade="all, delete-orphan"
    )
    operators: Mapped[list[AssignedOperator]] = relationship(
        order_by="AssignedOperator.operator_id", cascade="all, delete-orphan"
    )
    court_order_document: Mapped[CourtOrderDocument | None] = relationship(
        cascade="all, delete-orphan"
    )


class AssignedOperator(Base):
    """An operator the unit administrator's approval assigned: only they may search."""

    __tablename__ = "assigned_operators"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)

    operator: Mapped[Account] = relationship()


class CourtOrderDocument(Base):
    """The court order itself, as the requesting agency sent it, sealed like templates and
    bound to its request and hash; its SHA-256 is the one the request declared."""

    __tablename__ = "court_order_documents"

    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=_now)


class Review(Base):
    """One level's decision on a request. The unique constraints hold separation of duties
    in the database too: one decision per level, one per person."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("request_id", "level"),
        UniqueConstraint("request_id", "reviewer_id"),
    )

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    level: Mapped[str] = mapped_column(String(32))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    # The request-review system, when it recorded a decision made there by the reviewer.
    via_system_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=_now)

    request: Mapped[AgencyRequest] = relationship(back_populates="reviews")
    reviewer: Mapped[Account] = relationship(foreign_keys=[reviewer_id])
    via_system: Mapped[Account | None] = relationship(foreign_keys=[via_system_id])


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
    searched_at: Mapped[datetime] = mapped_column(default=_now, index=True)
    # The operator's human review: None until decided, then "confirmed" or "none".
    decision: Mapped[str | None] = mapped_column(String(16))
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
    released_at: Mapped[datetime] = mapped_column(default=_now)

    request: Mapped[AgencyRequest] = relationship()


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
    outcome: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[str] = mapped_column(Text)
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
