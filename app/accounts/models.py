"""Accounts, the changes that wait for a second administrator, and training records."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, Id64, enum_column, utc_now
from auth import Role, SubjectKind


class Account(Base):
    """A person (password and TOTP second factor) or a system (client id and secret), with
    exactly one role: nobody holds two duties through one account.

    A person's account starts with neither password nor second factor, only a one-time
    activation code, with which the person sets both: nobody else ever learns them.
    """

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[SubjectKind] = mapped_column(enum_column(SubjectKind, 16))
    role: Mapped[Role] = mapped_column(enum_column(Role, 32))
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
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ChangeKind(StrEnum):
    create = "create_account"
    enable = "enable_account"
    reset = "reset_account"
    training = "add_training"


class ChangeStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class AccountChange(Base):
    """A change that confers power (an account with a powerful role made, re-enabled or
    reset; an operator's training recorded), waiting for a second administrator: it takes
    effect only when someone other than the administrator who asked approves it."""

    __tablename__ = "account_changes"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    kind: Mapped[ChangeKind] = mapped_column(enum_column(ChangeKind, 32))
    # The account changed; None for an account still to be made.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[Role | None] = mapped_column(enum_column(Role, 32))
    course: Mapped[str | None] = mapped_column(String(100))
    completed_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    # A person's new or reset account: the hash of the activation code's first half, shown
    # to the administrator who asked; the approval adds the second.
    first_half_hash: Mapped[str | None] = mapped_column(String(256))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utc_now)
    status: Mapped[ChangeStatus] = mapped_column(
        enum_column(ChangeStatus, 16), default=ChangeStatus.pending, index=True
    )
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None]


class TrainingRecord(Base):
    __tablename__ = "training_records"

    id: Mapped[int] = mapped_column(Id64, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    course: Mapped[str] = mapped_column(String(100))
    completed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
