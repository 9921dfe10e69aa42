"""Signing in, activation, and accounts as administrators manage them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from app.accounts.models import ChangeStatus
from app.accounts.service import CodePart
from app.core.schemas import Input, Text, Username
from auth import MAX_PASSWORD_LENGTH, Role


class Login(Input):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    totp_code: str | None = Field(default=None, max_length=10)


class Activation(Input):
    """A person's first step: their own password, with the one-time code they were given."""

    username: str = Field(max_length=64)
    activation_code: str = Field(max_length=64)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(Input):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class ClientCredentials(Input):
    client_id: str = Field(max_length=64)
    client_secret: str = Field(max_length=1024)


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    mfa: bool


class TotpSetup(BaseModel):
    """Shown once: the URI an authenticator app reads (usually as a QR code)."""

    otpauth_uri: str


class TotpCode(Input):
    code: str = Field(max_length=10)


class NewAccount(Input):
    """An account, one role. No password: a person sets their own with the activation code
    the two administrators hand them; a system gets a client secret."""

    username: Username
    role: Role


class AccountView(BaseModel):
    id: int
    username: str
    kind: str
    role: Role
    active: bool
    # A person who has not yet set their own password with an activation code.
    awaiting_activation: bool
    totp_active: bool
    locked_until: datetime | None


class CredentialsView(BaseModel):
    """Shown once, to pass on to the account's holder: part of a person's activation code
    (`first` to the administrator who asked, `second` to the one who approved; the person
    types both, first then second), or a system's client secret. Stored only as hashes."""

    activation_code: str | None
    activation_part: CodePart | None
    activation_expires_at: datetime | None
    client_secret: str | None


class AccountChangeView(BaseModel):
    """A change waiting for (or decided by) a second administrator."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    account_id: int | None
    username: str | None
    role: Role | None
    course: str | None
    completed_on: date | None
    expires_on: date | None
    requested_by: int | None
    requested_at: datetime
    status: ChangeStatus
    decided_by: int | None
    decided_at: datetime | None


class ActiveChange(Input):
    active: bool


class NewTraining(Input):
    course: Text
    completed_on: date
    expires_on: date


class TrainingView(BaseModel):
    id: int
    account_id: int
    course: str
    completed_on: date
    expires_on: date


class AccountOutcome(BaseModel):
    """What an account call did: the account as it is now and, once, its new credentials;
    or the change that waits for a second administrator (status 202)."""

    account: AccountView | None
    credentials: CredentialsView | None
    training: TrainingView | None
    pending_change: AccountChangeView | None
