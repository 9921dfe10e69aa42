"""Every shape the API returns, and the five identity fields that are all a match may release."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.rules import AgencyKind, Decision, LegalProcess, Level, Status
from auth import MAX_PASSWORD_LENGTH, Role
from matcher.operating_point import OperatingPoint

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
LicenseNumber = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9*-]+$",
    ),
]


class Release(BaseModel):
    """The only identity fields that ever leave the service: a whitelist, extra fields refused.

    Enrolment parses manifest rows into this model too, so the database never holds more.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)

    first_name: Name
    middle_name: Name | None = None
    last_name: Name
    date_of_birth: date
    license_number: LicenseNumber

    @field_validator("middle_name", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("date_of_birth")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("date of birth must be between 1900-01-01 and today")
        return value


RELEASED_FIELDS = tuple(Release.model_fields)


class Candidate(Release):
    """A possible match for the operator to review: a rank and the five fields, no score."""

    rank: int = Field(ge=1)


class SearchResult(BaseModel):
    """What the operator sees: candidates for human review, nearest first, no scores."""

    model_config = ConfigDict(extra="forbid")

    search_id: int
    request_id: int
    candidates: list[Candidate]


class FaceBox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    left: int
    top: int
    right: int
    bottom: int


class Problem(BaseModel):
    """Every refusal: a stable machine-readable code and a sentence for a person."""

    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    faces: list[FaceBox] | None = None


# A row's id in a path, or an audit entry's number in a query: 64-bit database numbers, so
# one past that range is refused as invalid rather than reaching the database.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a router documents, each a Problem (every status it can answer)."""
    return {status: {"model": Problem} for status in statuses}


class Input(BaseModel):
    """Every request body: no unknown fields, and no text a database cannot store."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: object) -> object:
        _refuse_unstorable(data)
        return data


def _refuse_unstorable(value: object) -> None:
    """NUL characters (PostgreSQL's text cannot hold them) and unpaired surrogates (no UTF-8
    form) are refused as invalid, anywhere in a body."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode") from None
    elif isinstance(value, dict):
        for item in (*value.keys(), *value.values()):
            _refuse_unstorable(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_unstorable(item)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Username = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9._-]{2,63}$")]
Sha256 = Annotated[str, StringConstraints(to_lower=True, pattern=r"^[0-9a-fA-F]{64}$")]


# Accounts and signing in


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
    the response carries; a system gets a client secret."""

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
    """Shown once, to the administrator who made the change take effect, to hand to the
    person (or to configure in the system); stored only as hashes."""

    activation_code: str | None
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
    status: Literal["pending", "approved", "rejected"]
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


# Requests and reviews


class CourtOrder(Input):
    court: Text
    judge: Text
    signed_on: date
    document_sha256: Sha256


class Crime(Input):
    category: Annotated[str, StringConstraints(to_lower=True, min_length=1, max_length=64)]
    statutes: list[Text] = Field(default_factory=list, max_length=20)


AgencyCode = Annotated[str, StringConstraints(to_upper=True, min_length=1, max_length=32)]


class Agency(Input):
    name: Text
    code: AgencyCode


class NewRequest(Input):
    """An agency's request (rule 1). Screening reads it as submitted; it is kept as is."""

    agency_name: Text
    agency_code: AgencyCode
    agency_kind: AgencyKind
    immigration_authority: bool = False
    # The agency the information is for, when the requesting agency asks on another's behalf
    # (a task force for ICE, say): the request is screened as that agency's.
    information_for: Agency | None = None
    case_number: Text
    requesting_officer: Text
    crime: Crime
    legal_process: LegalProcess
    court_order: CourtOrder | None = None
    narrative: str = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _court_order_matches(self) -> NewRequest:
        if (self.legal_process is LegalProcess.court_order) != (self.court_order is not None):
            raise ValueError(
                "court_order is required with, and only with, legal_process court_order"
            )
        return self


class ScreeningView(BaseModel):
    passed: bool
    rule: str
    reason: str
    immigration_authority: bool
    immigration_related: bool


class ReviewView(BaseModel):
    level: Level
    reviewer: str
    via_system: str | None
    decision: Decision
    reason: str
    decided_at: datetime


class Authorisation(BaseModel):
    searches_allowed: int
    searches_used: int
    expires_at: datetime


class CourtOrderView(BaseModel):
    court: str
    judge: str
    signed_on: date
    document_sha256: str
    # Whether the document itself is on file (GET /v1/requests/{id}/court-order).
    document_on_file: bool


class RequestView(BaseModel):
    """Every fact of a request a reviewer decides on, the screening result and the rule
    that decided it, the review trail, and what an approval authorised."""

    id: int
    status: Status
    submitted_at: datetime
    agency_name: str
    agency_code: str
    agency_kind: AgencyKind
    information_for: Agency | None
    case_number: str
    requesting_officer: str
    crime_category: str
    # As submitted, and as screening read them.
    statutes: list[str]
    citations: list[str]
    legal_process: LegalProcess
    court_order: CourtOrderView | None
    narrative: str
    screening: ScreeningView
    awaiting: Level | None
    reviews: list[ReviewView]
    assigned_operators: list[str]
    authorisation: Authorisation | None


class NewReview(Input):
    decision: Decision
    reason: str = Field(min_length=1, max_length=2000)
    # The unit administrator's approval names the operators who may search (usernames).
    operators: list[Username] = Field(default_factory=list, max_length=10)


# Human review of a search, and what is released


class SearchDecision(Input):
    """The operator's conclusion: the rank of the one candidate confirmed, or null for none."""

    confirmed_rank: int | None = Field(ge=1)


class DecisionView(BaseModel):
    search_id: int
    decision: Literal["confirmed", "none"]
    release: Release | None


class DisclosureView(BaseModel):
    released_at: datetime
    agency_name: str
    request_id: int
    case_number: str


class Disclosures(BaseModel):
    disclosures: list[DisclosureView]


# Oversight


class ScreeningFigures(BaseModel):
    passed: int
    rejected: int
    rejected_by_rule: dict[str, int]


class ReviewFigures(BaseModel):
    approved: int
    denied: int
    in_review: int


class TransparencyReport(BaseModel):
    """The figures the agency publishes: requests submitted in [from, to) and what became of
    them, and the searches, confirmations and releases made in the same period."""

    period_from: date
    period_to: date
    requests: int
    by_agency_kind: dict[str, int]
    immigration_related: int
    immigration_authority: int
    court_order_present: int
    screening: ScreeningFigures
    reviews: ReviewFigures
    forwarded_to_governor_office: int
    approval_rate: float | None
    searches: int
    confirmations: int
    releases: int


class OperatingPointView(BaseModel):
    """The threshold searches use, the measurement behind it, and the rest of the decision
    rule: what an auditor checks a search's recorded threshold against."""

    sha256: str
    operating_point: OperatingPoint
    margin: float
    max_candidates: int
    # A gallery larger than the one the threshold was calibrated for returns more false
    # candidates than the target: time to calibrate again (README, "Thresholds").
    people_enrolled: int
    within_calibrated_gallery: bool


class AuditVerification(BaseModel):
    intact: bool
    entries: int
    first_bad_seq: int | None
    problem: str | None
    # The newest anchor (outside the database) the log matched: entries up to it are as
    # they were when anchored.
    anchored_seq: int | None


class AuditEntryView(BaseModel):
    seq: int
    at: datetime
    component: str
    event_type: str
    actor: str
    outcome: str
    object_id: str | None
    details: dict[str, Any]
    hash: str

    @field_validator("details", mode="before")
    @classmethod
    def _stored_as_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    model_id: str
    templates: int
    index_revision: int
