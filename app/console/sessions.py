"""Console sessions: opened by a full sign-in (password and second factor), locked after the
idle limit, ended after the maximum lifetime, by signing out, or when the account's tokens
are ended (disabled, reset, new password). Every form carries a CSRF token derived from the
session's own secret, so a page elsewhere cannot post as the person."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.accounts.service import actor_of
from app.audit import trail
from app.console.models import ConsoleSession
from app.core.refusals import Code, Refusal

COMPONENT = "console"
COOKIE = "facematch_session"


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    lifetime: timedelta


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token of the session whose cookie is `token`: nothing to store, and nobody
    without the cookie can make it."""
    return hmac.new(token.encode(), b"facematch console csrf", hashlib.sha256).hexdigest()


def check_csrf(token: str | None, sent: str | None) -> None:
    """The form's token is the one of the cookie it came with; no cookie, no form."""
    if not token or not sent or not hmac.compare_digest(csrf_token(token), sent):
        raise Refusal(
            Code.csrf_failed,
            "This form did not come from your console session; reload the page and try again.",
        )


def open_session(session: Session, account: Account, epoch: int) -> str:
    """A new session for an account that has just signed in in full, under the token epoch
    its sign-in was issued in (a reset in between leaves the session dead); its cookie's
    token."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    opened = ConsoleSession(
        token_sha256=_digest(token),
        account_id=account.id,
        token_epoch=epoch,
        started_at=now,
        last_seen_at=now,
    )
    session.add(opened)
    session.flush()
    trail.record(
        session,
        COMPONENT,
        "console.session",
        actor_of(account.id),
        "opened",
        f"console_session:{opened.id}",
    )
    return token


def session_account(
    session: Session, token: str | None, policy: SessionPolicy, now: datetime
) -> Account:
    """The account whose live session `token` is, its idle clock restarted. A session idle
    too long, too old, or whose account's tokens were ended is refused, now and for good:
    nothing moves its clock again."""
    opened = (
        session.scalar(select(ConsoleSession).where(ConsoleSession.token_sha256 == _digest(token)))
        if token
        else None
    )
    if opened is None or opened.ended_at is not None:
        raise Refusal(Code.console_signed_out, "Sign in to use the console.")
    account = session.get(Account, opened.account_id)
    if account is None or not account.active or account.token_epoch != opened.token_epoch:
        raise Refusal(Code.console_signed_out, "Your account changed; sign in again.")
    if now - opened.last_seen_at > policy.idle:
        minutes = int(policy.idle.total_seconds() // 60)
        raise Refusal(
            Code.console_locked,
            f"Your session locked after {minutes} minutes without use; sign in again.",
        )
    if now - opened.started_at > policy.lifetime:
        raise Refusal(
            Code.console_locked, "Your session reached its maximum length; sign in again."
        )
    opened.last_seen_at = now
    return account


def close_session(session: Session, token: str | None, now: datetime) -> None:
    """Sign out: the session ends now, whatever state it is in."""
    if not token:
        return
    opened = session.scalar(
        select(ConsoleSession).where(ConsoleSession.token_sha256 == _digest(token))
    )
    if opened is None or opened.ended_at is not None:
        return
    session.execute(
        update(ConsoleSession).where(ConsoleSession.id == opened.id).values(ended_at=now)
    )
    trail.record(
        session,
        COMPONENT,
        "console.session",
        actor_of(opened.account_id),
        "signed_out",
        f"console_session:{opened.id}",
    )
