"""Agencies' requests, their reviews, the operators an approval assigns, and the court
order's document."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Account
from app.core.database import Base, Id64, enum_column, utc_now
from app.requests.rules import AgencyKind, Decision, LegalProcess, Status
from app.requests.screening import ScreeningOutcome
from auth import Level


class AgencyRequest(Base):
    """An agency's request to identify a person from a photo (DESIGN.md rule 1), its
    screening result, its status, and once approved its authorisation."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    submitted_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)

    agency_name: Mapped[str] = mapped_column(String(200))
    agency_code: Mapped[str] = mapped_column(String(32))
    agency_kind: Mapped[AgencyKind] = mapped_column(enum_column(AgencyKind, 16))
    # The agency the information is for, when the requesting agency asks on another's
    # behalf: screening reads the request as that agency's.
    information_for_name: Mapped[str | None] = mapped_column(String(200))
    information_for_code: Mapped[str | None] = mapped_column(String(32))
    immigration_authority: Mapped[bool] = mapped_column(Boolean)
    case_number: Mapped[str] = mapped_column(String(100))
    requesting_officer: Mapped[str] = mapped_column(String(200))
    crime_category: Mapped[str] = mapped_column(String(64))
    statutes: Mapped[list[str]] = mapped_column(JSON)
    legal_process: Mapped[LegalProcess] = mapped_column(enum_column(LegalProcess, 16))
    court: Mapped[str | None] = mapped_column(String(200))
    judge: Mapped[str | None] = mapped_column(String(200))
    order_signed_on: Mapped[date | None] = mapped_column(Date)
    order_sha256: Mapped[str | None] = mapped_column(String(64))
    narrative: Mapped[str] = mapped_column(Text)

    immigration_related: Mapped[bool] = mapped_column(Boolean)
    screening_outcome: Mapped[ScreeningOutcome] = mapped_column(enum_column(ScreeningOutcome, 16))
    screening_rule: Mapped[str] = mapped_column(String(8))
    screening_reason: Mapped[str] = mapped_column(Text)

    status: Mapped[Status] = mapped_column(enum_column(Status, 16), index=True)
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
    uploaded_at: Mapped[datetime] = mapped_column(default=utc_now)


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
    level: Mapped[Level] = mapped_column(enum_column(Level, 32))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    # The request-review system, when it recorded a decision made there by the reviewer.
    via_system_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decision: Mapped[Decision] = mapped_column(enum_column(Decision, 16))
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=utc_now)

    request: Mapped[AgencyRequest] = relationship(back_populates="reviews")
    reviewer: Mapped[Account] = relationship(foreign_keys=[reviewer_id])
    via_system: Mapped[Account | None] = relationship(foreign_keys=[via_system_id])
