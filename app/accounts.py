"""Accounts: creating them, signing in (with lockout and the second factor), TOTP set-up,
disabling, and training records. Every attempt and change goes to the audit log."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.errors import ApiError
from app.models import Account, TrainingRecord
from auth import (
    MIN_PASSWORD_LENGTH,
    SERVICE_ROLES,
    LockoutPolicy,
    Role,
    SubjectKind,
    Throttle,
    accepted_step,
    certification_current,
    hash_secret,
    is_locked,
    needs_rehash,
    new_secret,
    provisioning_uri,
    verify_secret,
)

TOTP_ISSUER = "facematch"
_COMPONENT = "accounts"


def actor_of(account_id: int) -> str:
    return f"account:{account_id}"


def kind_of(role: Role) -> SubjectKind:
    return SubjectKind.system if role in SERVICE_ROLES else SubjectKind.person


def create_account(
    session: Session, username: str, role: Role, password: str | None, actor: str
) -> tuple[Account, str | None]:
    """A person gets the password given (the second factor is set up at first sign-in); a
    system gets a client secret, returned here once and stored only as a hash."""
    kind = kind_of(role)
    secret = None
    if kind is SubjectKind.system:
        if password is not None:
            raise ApiError(
                422, "password_not_allowed", "A system account gets a client secret, no password."
            )
        password = secret = secrets.token_urlsafe(32)
    elif password is None or len(password) < MIN_PASSWORD_LENGTH:
        raise ApiError(
            422,
            "password_required",
            f"A person's account needs a password of at least {MIN_PASSWORD_LENGTH} characters.",
        )
    if session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise ApiError(409, "username_taken", "An account with that username already exists.")
    account = Account(
        username=username, kind=kind.value, role=role.value, secret_hash=hash_secret(password)
    )
    session.add(account)
    session.flush()
    audit.record(
        session, _COMPONENT, "account.create", actor, "success", actor_of(account.id), role=role
    )
    return account, secret


def _bad_credentials() -> ApiError:
    return ApiError(
        401, "invalid_credentials", "The username, password or one-time code is not right."
    )


def _too_many_attempts(wait_s: int) -> ApiError:
    return ApiError(
        429,
        "too_many_attempts",
        f"Too many sign-in attempts for this account; try again in {wait_s} s.",
        retry_after_s=wait_s,
    )


def _check_credentials(
    account: Account | None, secret: str, totp_code: str | None, now: datetime
) -> tuple[ApiError | None, bool]:
    """The refusal of a sign-in attempt, if any, and whether a second factor was used."""
    if account is None:
        verify_secret(None, secret)  # the same work as for a real account
        return _bad_credentials(), False
    if is_locked(account.locked_until, now):
        return ApiError(
            403,
            "account_locked",
            "Too many failed sign-ins: the account is locked for a while. Try again later.",
        ), False
    if not verify_secret(account.secret_hash, secret):
        return _bad_credentials(), False
    mfa = False
    if account.totp_active:
        step = accepted_step(
            account.totp_secret or "", totp_code or "", account.totp_last_step, now
        )
        if step is None:
            return _bad_credentials(), False
        account.totp_last_step, mfa = step, True
    if not account.active:
        return ApiError(403, "account_disabled", "This account is disabled."), mfa
    return None, mfa


def sign_in(
    session: Session,
    username: str,
    secret: str,
    totp_code: str | None,
    kind: SubjectKind,
    policy: LockoutPolicy,
    throttle: Throttle,
) -> tuple[Account, bool]:
    """Check credentials and return the account and whether a second factor was used.

    Attempts on a username over the rate limit are refused without checking anything. The
    failure count, the lock and the audit entry are committed whether or not the attempt
    succeeds; then a failed attempt is refused.
    """
    now = datetime.now(UTC)
    wait = throttle.wait_s(kind, username)
    with session.begin():
        account = session.scalar(
            select(Account).where(Account.username == username, Account.kind == kind.value)
        )
        if wait is None:
            refusal, mfa = _check_credentials(account, secret, totp_code, now)
        else:
            refusal, mfa = _too_many_attempts(wait), False
        if account is not None and refusal is None:
            account.failed_logins = 0
            if needs_rehash(account.secret_hash):
                account.secret_hash = hash_secret(secret)
        elif account is not None and refusal.code == "invalid_credentials":
            account.failed_logins, account.locked_until = policy.after_failure(
                account.failed_logins, now
            )
        audit.record(
            session,
            _COMPONENT,
            "login",
            actor_of(account.id) if account is not None else "unknown",
            "success" if refusal is None else f"refused:{refusal.code}",
            kind=kind,
            mfa=mfa,
            locked=account is not None and is_locked(account.locked_until, now),
        )
    if refusal is not None:
        raise refusal
    assert account is not None
    return account, mfa


def start_totp(session: Session, account: Account) -> str:
    """Give a person without an active second factor a new TOTP secret, as an otpauth URI."""
    if account.kind != SubjectKind.person.value:
        raise ApiError(409, "not_a_person", "System accounts sign in with a client secret.")
    if account.totp_active:
        raise ApiError(
            409, "totp_already_active", "This account's second factor is already set up."
        )
    account.totp_secret = new_secret()
    audit.record(session, _COMPONENT, "totp.start", actor_of(account.id), "success")
    return provisioning_uri(account.totp_secret, account.username, TOTP_ISSUER)


def confirm_totp(session: Session, account: Account, code: str) -> None:
    """Turn the second factor on once the person shows a code from the new secret."""
    if account.totp_active or account.totp_secret is None:
        raise ApiError(
            409, "totp_not_pending", "There is no second-factor set-up waiting to be confirmed."
        )
    step = accepted_step(account.totp_secret, code, account.totp_last_step, datetime.now(UTC))
    if step is None:
        raise ApiError(422, "invalid_code", "That one-time code is not right; try the next one.")
    account.totp_active, account.totp_last_step = True, step
    audit.record(session, _COMPONENT, "totp.confirm", actor_of(account.id), "success")


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise ApiError(404, "account_not_found", "There is no such account.")
    return account


def set_active(session: Session, account_id: int, active: bool, actor: str) -> Account:
    account = get_account(session, account_id)
    account.active = active
    if active:
        account.failed_logins, account.locked_until = 0, None
    audit.record(
        session,
        _COMPONENT,
        "account.enable" if active else "account.disable",
        actor,
        "success",
        actor_of(account_id),
    )
    return account


def add_training(
    session: Session,
    account_id: int,
    course: str,
    completed_on: date,
    expires_on: date,
    actor: str,
) -> TrainingRecord:
    """Record a course an account's holder completed; the audit log says who recorded it."""
    account = get_account(session, account_id)
    record = TrainingRecord(
        account_id=account.id, course=course, completed_on=completed_on, expires_on=expires_on
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        _COMPONENT,
        "training.add",
        actor,
        "success",
        f"training_record:{record.id}",
        account=actor_of(account_id),
    )
    return record


def trained(session: Session, account_id: int, course: str) -> bool:
    records = session.scalars(select(TrainingRecord).where(TrainingRecord.account_id == account_id))
    return certification_current(records, course, date.today())
