"""Accounts: making them, activating them, signing in (with lockout and the second factor),
TOTP set-up, passwords, disabling and resetting, training records, and dual control.

Nobody learns another person's password or second factor: a person's account starts with a
one-time activation code, with which the person sets both. No administrator learns a whole
code either: every change that gives someone the means to act — an account made, enabled or
reset, an operator's training — waits as an `AccountChange` until a second administrator
approves it, and the code's first half goes to the administrator who asked, its second to
the one who approved (only the person is given both). Disabling takes effect at once. Every
attempt and change goes to the audit log, one entry per call.

The races that matter are each one conditional write that only one caller wins: a one-time
code's step is spent by `UPDATE ... WHERE last_step < step`, an activation code by `UPDATE
... WHERE activation_hash = <the one checked>`, a change's approval by `UPDATE ... WHERE
status = 'pending'`, and a failed sign-in is counted by `failed_logins + 1` in SQL.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from app.accounts.models import Account, AccountChange, ChangeKind, ChangeStatus, TrainingRecord
from app.audit import trail
from app.core import metrics
from app.core.database import rows_changed
from app.core.refusals import Code, Refusal
from auth import (
    SERVICE_ROLES,
    LockoutPolicy,
    Role,
    SubjectKind,
    Throttle,
    accepted_step,
    canonical_code,
    certification_current,
    code_halves,
    hash_secret,
    is_locked,
    needs_rehash,
    new_code_half,
    new_secret,
    password_problem,
    provisioning_uri,
    training_problem,
    verify_secret,
)
from index import SealingError, TemplateKeys

TOTP_ISSUER = "facematch"
_COMPONENT = "accounts"


@dataclass(frozen=True)
class AccountPolicy:
    """What the account rules need from the settings."""

    lockout: LockoutPolicy
    activation_lifetime: timedelta
    training_max_validity_days: int
    # Seals TOTP seeds at rest, as templates are sealed.
    keys: TemplateKeys


class CodePart(StrEnum):
    """Which part of an activation code an administrator is shown."""

    first = "first"  # to the administrator who asked
    second = "second"  # to the one who approved
    whole = "whole"  # the first administrator's, on the command line


@dataclass(frozen=True)
class Credentials:
    """What a new or reset account is handed, once, to pass on to its holder: part of a
    person's activation code, or a system's client secret. Stored only as hashes."""

    activation_code: str | None = None
    activation_part: CodePart | None = None
    activation_expires_at: datetime | None = None
    client_secret: str | None = None


@dataclass(frozen=True)
class Outcome:
    """An account call's result: the account and its credentials where the change took
    effect, or the change waiting for a second administrator."""

    account: Account | None = None
    credentials: Credentials | None = None
    training: TrainingRecord | None = None
    change: AccountChange | None = None


def actor_of(account_id: int) -> str:
    return f"account:{account_id}"


def kind_of(role: Role) -> SubjectKind:
    return SubjectKind.system if role in SERVICE_ROLES else SubjectKind.person


def _seal_context(account_id: int) -> str:
    return f"totp:{account_id}"


def _totp_secret(account: Account, keys: TemplateKeys) -> str:
    assert account.totp_seed is not None
    return keys.open(account.totp_seed, _seal_context(account.id)).decode()


def _credentials(
    account: Account, policy: AccountPolicy, first_half_hash: str | None
) -> Credentials:
    """New credentials for `account`, replacing whatever it had: a person loses password
    and second factor until they activate with the code whose first half was shown when the
    change was asked for (`first_half_hash`; None: both halves are shown here); every token
    the account holds stops working."""
    _end_tokens(account)
    account.failed_logins, account.locked_until = 0, None
    if kind_of(account.role) is SubjectKind.system:
        secret = secrets.token_urlsafe(32)
        account.secret_hash = hash_secret(secret)
        return Credentials(client_secret=secret)
    second = new_code_half()
    first = None if first_half_hash is not None else new_code_half()
    expires = datetime.now(UTC) + policy.activation_lifetime
    account.secret_hash = None
    account.totp_seed, account.totp_active, account.totp_last_step = None, False, None
    first_hash = first_half_hash or hash_secret(canonical_code(first or ""))
    account.activation_hash = f"{first_hash} {hash_secret(canonical_code(second))}"
    account.activation_expires_at = expires
    if first is None:
        return Credentials(second, CodePart.second, expires)
    return Credentials(f"{first}-{second}", CodePart.whole, expires)


def _check_username_free(session: Session, username: str) -> None:
    if session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise Refusal(Code.username_taken, "An account with that username already exists.")


def _make(
    session: Session, username: str, role: Role, policy: AccountPolicy, first_half_hash: str | None
) -> tuple[Account, Credentials]:
    _check_username_free(session, username)
    account = Account(username=username, kind=kind_of(role), role=role)
    session.add(account)
    session.flush()
    return account, _credentials(account, policy, first_half_hash)


def first_administrator(
    session: Session, username: str, policy: AccountPolicy, actor: str
) -> tuple[Account, Credentials]:
    """The one account made without a second administrator: the first administrator, on the
    command line, while there is no administrator at all; its whole activation code is
    shown. The audit log says so. Made after every other writer (the audit trail's lock), so
    two at once cannot both be first."""
    trail.serialise(session)
    if administrator_accounts(session):
        raise Refusal(
            Code.administrator_exists,
            "An administrator exists already: administrators make every other account "
            "through the API, and a second administrator approves what confers power.",
        )
    account, credentials = _make(session, username, Role.admin, policy, None)
    trail.record(
        session,
        _COMPONENT,
        "account.create",
        actor,
        "success",
        actor_of(account.id),
        role=Role.admin,
        first_administrator=True,
    )
    return account, credentials


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise Refusal(Code.account_not_found, "There is no such account.")
    return account


def _pending(
    session: Session, kind: ChangeKind, requester: int, event: str, **fields: object
) -> Outcome:
    """Ask for a change; a person's new or reset account's first code half is shown now."""
    change = AccountChange(kind=kind, requested_by=requester, **fields)
    credentials = None
    if kind in (ChangeKind.create, ChangeKind.reset) and change.role is not None:
        if kind_of(change.role) is SubjectKind.person:
            first = new_code_half()
            change.first_half_hash = hash_secret(canonical_code(first))
            credentials = Credentials(first, CodePart.first)
    session.add(change)
    session.flush()
    trail.record(
        session,
        _COMPONENT,
        event,
        actor_of(requester),
        "pending",
        f"account_change:{change.id}",
        account=actor_of(change.account_id) if change.account_id else None,
        role=change.role,
    )
    return Outcome(credentials=credentials, change=change)


def create_account(
    session: Session, username: str, role: Role, requester: int, policy: AccountPolicy
) -> Outcome:
    """Ask a second administrator to make an account."""
    _check_username_free(session, username)
    return _pending(
        session, ChangeKind.create, requester, "account.create", username=username, role=role
    )


def set_active(
    session: Session, account_id: int, active: bool, requester: int, policy: AccountPolicy
) -> Outcome:
    """Disable an account at once (its tokens and any activation code stop working), or ask
    a second administrator to enable it (its old tokens stay dead)."""
    account = get_account(session, account_id)
    event = "account.enable" if active else "account.disable"
    if active:
        return _pending(
            session, ChangeKind.enable, requester, event, account_id=account.id, role=account.role
        )
    _set_active(account, active)
    trail.record(session, _COMPONENT, event, actor_of(requester), "success", actor_of(account.id))
    return Outcome(account)


def _end_tokens(account: Account) -> None:
    """Every token the account holds stops working: its epoch moves on, counted in the
    database for a stored account, so that two changes made at once both count."""
    account.token_epoch = 1 if account.token_epoch is None else Account.token_epoch + 1


def _set_active(account: Account, active: bool) -> None:
    account.active = active
    _end_tokens(account)
    if active:
        account.failed_logins, account.locked_until = 0, None
    else:
        account.activation_hash = account.activation_expires_at = None


def reset_credentials(
    session: Session, account_id: int, requester: int, policy: AccountPolicy
) -> Outcome:
    """Ask a second administrator for a reset: then a person gets a new activation code
    (password and second factor are gone), a system a new client secret, and the account's
    sessions end. Whoever held a whole new code could take the account over."""
    account = get_account(session, account_id)
    return _pending(
        session,
        ChangeKind.reset,
        requester,
        "account.reset",
        account_id=account.id,
        role=account.role,
    )


def _check_training(completed_on: date, expires_on: date, policy: AccountPolicy) -> None:
    problem = training_problem(
        completed_on, expires_on, date.today(), policy.training_max_validity_days
    )
    if problem is not None:
        raise Refusal(Code.invalid_training, f"The training record is not valid: {problem}.")


def _train(
    session: Session, account_id: int, course: str, completed_on: date, expires_on: date
) -> TrainingRecord:
    record = TrainingRecord(
        account_id=account_id, course=course, completed_on=completed_on, expires_on=expires_on
    )
    session.add(record)
    session.flush()
    return record


def add_training(
    session: Session,
    account_id: int,
    course: str,
    completed_on: date,
    expires_on: date,
    requester: int,
    policy: AccountPolicy,
) -> Outcome:
    """Record a course an account's holder completed; an operator's, which lets them search,
    only once a second administrator approves."""
    account = get_account(session, account_id)
    _check_training(completed_on, expires_on, policy)
    if account.role is Role.operator:
        return _pending(
            session,
            ChangeKind.training,
            requester,
            "training.add",
            account_id=account.id,
            role=account.role,
            course=course,
            completed_on=completed_on,
            expires_on=expires_on,
        )
    record = _train(session, account.id, course, completed_on, expires_on)
    trail.record(
        session,
        _COMPONENT,
        "training.add",
        actor_of(requester),
        "success",
        f"training_record:{record.id}",
        account=actor_of(account.id),
    )
    return Outcome(account, training=record)


def get_change(session: Session, change_id: int) -> AccountChange:
    change = session.get(AccountChange, change_id)
    if change is None:
        raise Refusal(Code.change_not_found, "There is no such account change.")
    return change


def _close(
    session: Session, change: AccountChange, status: ChangeStatus, decider: int | None
) -> None:
    """Close a pending change: one conditional write, so of two administrators deciding at
    once exactly one does; nobody approves their own (withdrawing it is a rejection)."""
    if status is ChangeStatus.approved and change.requested_by == decider:
        raise Refusal(
            Code.own_change, "A change you asked for must be approved by another administrator."
        )
    closed = rows_changed(
        session,
        update(AccountChange)
        .where(AccountChange.id == change.id, AccountChange.status == ChangeStatus.pending)
        .values(status=status, decided_by=decider, decided_at=datetime.now(UTC))
        .execution_options(synchronize_session=False),
    )
    if closed != 1:
        raise Refusal(Code.change_closed, "This change has already been approved or rejected.")
    session.refresh(change)


def approve_change(
    session: Session, change_id: int, approver: int | None, actor: str, policy: AccountPolicy
) -> Outcome:
    """A second administrator's approval: the change takes effect now, and a new or reset
    person's code's second half is shown. `approver` is None only for the command line's
    approval of the second administrator."""
    change = get_change(session, change_id)
    _close(session, change, ChangeStatus.approved, approver)
    kind = change.kind
    credentials, record = None, None
    if kind is ChangeKind.create:
        assert change.username is not None and change.role is not None
        account, credentials = _make(
            session, change.username, change.role, policy, change.first_half_hash
        )
        change.account_id = account.id
    else:
        assert change.account_id is not None
        account = get_account(session, change.account_id)
        if kind is ChangeKind.enable:
            _set_active(account, True)
        elif kind is ChangeKind.reset:
            credentials = _credentials(account, policy, change.first_half_hash)
        else:
            assert change.course and change.completed_on and change.expires_on
            _check_training(change.completed_on, change.expires_on, policy)
            record = _train(
                session, account.id, change.course, change.completed_on, change.expires_on
            )
    trail.record(
        session,
        _COMPONENT,
        "account_change.approve",
        actor,
        "success",
        f"account_change:{change.id}",
        kind=kind,
        account=actor_of(account.id),
        requested_by=actor_of(change.requested_by) if change.requested_by else None,
    )
    return Outcome(account, credentials, record, change)


def reject_change(session: Session, change_id: int, decider: int) -> AccountChange:
    """Reject a pending change; the administrator who asked for it may withdraw it."""
    change = get_change(session, change_id)
    _close(session, change, ChangeStatus.rejected, decider)
    trail.record(
        session,
        _COMPONENT,
        "account_change.reject",
        actor_of(decider),
        "success",
        f"account_change:{change.id}",
        kind=change.kind,
    )
    return change


def administrator_accounts(session: Session) -> int:
    """Administrator accounts, disabled ones too: the command line makes the first while
    there is none, and approves the second while there is one (disabling one does not make
    room for another)."""
    return session.scalar(select(func.count(Account.id)).where(Account.role == Role.admin)) or 0


# Signing in


def _bad_credentials() -> Refusal:
    # One answer for an unknown username, a wrong password or code, a locked account and an
    # account not yet activated: none of them tells an attacker that the account exists.
    return Refusal(
        Code.invalid_credentials,
        "The username, password or one-time code is not right, or the account is locked "
        "for a while after repeated failed sign-ins.",
    )


def _too_many_attempts(wait_s: int) -> Refusal:
    return Refusal(
        Code.too_many_attempts,
        f"Too many sign-in attempts for this account; try again in {wait_s} s.",
        retry_after_s=wait_s,
    )


def _spend_step(session: Session, account_id: int, step: int) -> bool:
    """Use a one-time code's step, unless this or a later one was used: of any number of
    sign-ins with one code at once, exactly one wins."""
    spent = rows_changed(
        session,
        update(Account)
        .where(
            Account.id == account_id,
            or_(Account.totp_last_step.is_(None), Account.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False),
    )
    return spent == 1


def _count_failure(session: Session, account_id: int, policy: LockoutPolicy) -> bool:
    """One more failed sign-in, counted in SQL so that failures sent at once all count; the
    count restarts when the account locks. Whether this one locked it."""
    failures = Account.failed_logins + 1
    locks = failures >= policy.max_failures
    counted = session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(
            failed_logins=case((locks, 0), else_=failures),
            locked_until=case(
                (locks, datetime.now(UTC) + policy.lock_for), else_=Account.locked_until
            ),
        )
        .returning(Account.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return counted == 0


class _Failure(StrEnum):
    wrong = "wrong"
    locked = "locked"


def _check_credentials(
    session: Session,
    account: Account | None,
    secret: str,
    totp_code: str | None,
    keys: TemplateKeys,
    now: datetime,
) -> tuple[_Failure | Refusal | None, bool]:
    """Why a sign-in attempt fails, if it does, and whether a second factor was used. The
    password is hashed every time, for unknown and locked accounts too, so the answer takes
    as long whatever the account."""
    matches = verify_secret(account.secret_hash if account is not None else None, secret)
    if account is None or not matches:
        return _Failure.wrong, False
    if is_locked(account.locked_until, now):
        return _Failure.locked, False
    mfa = False
    if account.totp_active:
        try:
            seed = _totp_secret(account, keys)
        except SealingError:
            return _Failure.wrong, False
        step = accepted_step(seed, totp_code or "", account.totp_last_step, now)
        if step is None or not _spend_step(session, account.id, step):
            return _Failure.wrong, False
        mfa = True
    if not account.active:
        return Refusal(Code.account_disabled, "This account is disabled."), mfa
    return None, mfa


def sign_in(
    session: Session,
    username: str,
    secret: str,
    totp_code: str | None,
    kind: SubjectKind,
    policy: AccountPolicy,
    throttle: Throttle,
) -> tuple[Account, bool]:
    """Check credentials and return the account and whether a second factor was used.

    Attempts on a username over the rate limit are refused without checking anything. The
    failure count, the lock and the audit entry are committed whether or not the attempt
    succeeds; then a failed attempt is refused.
    """
    now = datetime.now(UTC)
    wait = throttle.wait_s(kind, username)
    locked = False
    with session.begin():
        account = session.scalar(
            select(Account).where(Account.username == username, Account.kind == kind)
        )
        failure: _Failure | Refusal | None
        if wait is None:
            failure, mfa = _check_credentials(session, account, secret, totp_code, policy.keys, now)
        else:
            failure, mfa = _too_many_attempts(wait), False
        if account is not None and failure is None:
            account.failed_logins = 0
            if account.secret_hash is not None and needs_rehash(account.secret_hash):
                account.secret_hash = hash_secret(secret)
        elif account is not None and failure is _Failure.wrong:
            locked = _count_failure(session, account.id, policy.lockout)
        refusal = _bad_credentials() if isinstance(failure, _Failure) else failure
        trail.record(
            session,
            _COMPONENT,
            "login",
            actor_of(account.id) if account is not None else "unknown",
            "success" if refusal is None else f"refused:{refusal.code}",
            kind=kind,
            mfa=mfa,
            locked=failure is _Failure.locked,
        )
    if isinstance(failure, _Failure):
        metrics.SIGN_IN_FAILURES.inc()
    if locked:
        metrics.LOCKOUTS.inc()
    if refusal is not None:
        raise refusal
    assert account is not None
    session.refresh(account)
    return account, mfa


def _invalid_activation() -> Refusal:
    return Refusal(
        Code.invalid_activation,
        "The username or activation code is not right, or the code has expired or been used; "
        "ask an administrator for a new one.",
    )


def _weak_password(problem: str) -> Refusal:
    return Refusal(Code.weak_password, f"Choose another password: {problem}.")


def activate(
    session: Session,
    username: str,
    code: str,
    password: str,
    policy: AccountPolicy,
    throttle: Throttle,
) -> Account:
    """A person sets their own password with their activation code (both halves), which is
    then spent; the second factor is set up next, with the token this gives. Each half is
    checked against its hash whatever the account, so the answer takes as long for an
    account that does not exist, is disabled or has no code."""
    wait = throttle.wait_s("activate", username)
    if wait is not None:
        raise _too_many_attempts(wait)
    problem = password_problem(password, username, TOTP_ISSUER)
    if problem is not None:
        raise _weak_password(problem)
    now = datetime.now(UTC)
    with session.begin():
        account = session.scalar(
            select(Account).where(Account.username == username, Account.kind == SubjectKind.person)
        )
        stored = account.activation_hash if account is not None else None
        first_hash, _, second_hash = (stored or "").partition(" ")
        first, second = code_halves(code)
        # Both verified, always: one hash's work each, whatever the outcome.
        halves = [
            verify_secret(first_hash or None, first),
            verify_secret(second_hash or None, second),
        ]
        valid = all(halves)
        current = (
            account is not None
            and account.active
            and account.activation_expires_at is not None
            and now < account.activation_expires_at
        )
        refusal = None if valid and current else _invalid_activation()
        if refusal is None:
            assert account is not None
            spent = rows_changed(
                session,
                update(Account)
                .where(Account.id == account.id, Account.activation_hash == stored)
                .values(
                    activation_hash=None,
                    activation_expires_at=None,
                    secret_hash=hash_secret(password),
                    failed_logins=0,
                    locked_until=None,
                    token_epoch=Account.token_epoch + 1,
                )
                .execution_options(synchronize_session=False),
            )
            if spent != 1:
                refusal = _invalid_activation()
        trail.record(
            session,
            _COMPONENT,
            "account.activate",
            actor_of(account.id) if account is not None else "unknown",
            "success" if refusal is None else f"refused:{refusal.code}",
        )
    if refusal is not None:
        raise refusal
    assert account is not None
    session.refresh(account)
    return account


def change_password(
    session: Session,
    account: Account,
    current: str,
    new: str,
    throttle: Throttle,
) -> None:
    """A person changes their own password; every token of theirs stops working."""
    wait = throttle.wait_s(SubjectKind.person, account.username)
    if wait is not None:
        raise _too_many_attempts(wait)
    problem = password_problem(new, account.username, TOTP_ISSUER)
    if problem is not None:
        raise _weak_password(problem)
    if not verify_secret(account.secret_hash, current):
        raise Refusal(Code.wrong_password, "The current password is not right.")
    account.secret_hash = hash_secret(new)
    _end_tokens(account)
    trail.record(session, _COMPONENT, "password.change", actor_of(account.id), "success")


def start_totp(session: Session, account: Account, keys: TemplateKeys) -> str:
    """Give a person without an active second factor a new TOTP secret, as an otpauth URI;
    the seed is stored sealed."""
    if account.kind is not SubjectKind.person:
        raise Refusal(Code.not_a_person, "System accounts sign in with a client secret.")
    if account.totp_active:
        raise Refusal(Code.totp_already_active, "This account's second factor is already set up.")
    secret = new_secret()
    account.totp_seed = keys.seal(secret.encode(), _seal_context(account.id))
    trail.record(session, _COMPONENT, "totp.start", actor_of(account.id), "success")
    return provisioning_uri(secret, account.username, TOTP_ISSUER)


def confirm_totp(session: Session, account: Account, code: str, keys: TemplateKeys) -> None:
    """Turn the second factor on once the person shows a code from the new secret."""
    if account.totp_active or account.totp_seed is None:
        raise Refusal(
            Code.totp_not_pending, "There is no second-factor set-up waiting to be confirmed."
        )
    step = accepted_step(
        _totp_secret(account, keys), code, account.totp_last_step, datetime.now(UTC)
    )
    if step is None or not _spend_step(session, account.id, step):
        raise Refusal(Code.invalid_code, "That one-time code is not right; try the next one.")
    account.totp_active = True
    trail.record(session, _COMPONENT, "totp.confirm", actor_of(account.id), "success")


def reseal_totp_seeds(session: Session, keys: TemplateKeys) -> int:
    """Re-seal every second-factor seed not sealed under the current key (a key rotation)."""
    resealed = 0
    for account in session.scalars(select(Account).where(Account.totp_seed.is_not(None))):
        assert account.totp_seed is not None
        if not keys.is_current(account.totp_seed):
            account.totp_seed = keys.seal(
                _totp_secret(account, keys).encode(), _seal_context(account.id)
            )
            resealed += 1
    return resealed


def trained(session: Session, account_id: int, course: str) -> bool:
    records = session.scalars(select(TrainingRecord).where(TrainingRecord.account_id == account_id))
    return certification_current(records, course, date.today())
