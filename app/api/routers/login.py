"""Signing in: people with a password and a TOTP code, systems with client credentials; a
person's activation of their account (their own password, then their own second factor),
and changing their password."""

from __future__ import annotations

from fastapi import APIRouter

from app.accounts.models import Account
from app.accounts.schemas import (
    AccessToken,
    Activation,
    ClientCredentials,
    Login,
    PasswordChange,
    TotpCode,
    TotpSetup,
)
from app.accounts.service import (
    activate,
    change_password,
    confirm_totp,
    get_account,
    sign_in,
    start_totp,
)
from app.api.deps import Person, Services, ServicesDep, SessionDep, SignedIn
from app.api.schemas import problems
from auth import SubjectKind

router = APIRouter(
    prefix="/v1/auth",
    tags=["sign-in"],
    responses=problems(401, 403, 409, 422, 429),
)


def _token(services: Services, account: Account, kind: SubjectKind, mfa: bool) -> AccessToken:
    lifetime = services.tokens.lifetime
    return AccessToken(
        access_token=services.tokens.issue(
            account.id, account.role, kind, mfa, account.token_epoch
        ),
        expires_in=int(lifetime.total_seconds()),
        mfa=mfa,
    )


@router.post("/login", response_model=AccessToken, name="login")
def login(body: Login, services: ServicesDep, session: SessionDep) -> AccessToken:
    """A person signs in. Without a TOTP code set up yet, the token (mfa: false) is good only
    for setting one up; every other route needs a token made with the code."""
    account, mfa = sign_in(
        session,
        body.username,
        body.password,
        body.totp_code,
        SubjectKind.person,
        services.accounts,
        services.login_throttle,
    )
    return _token(services, account, SubjectKind.person, mfa)


@router.post("/token", response_model=AccessToken, name="login")
def client_token(
    body: ClientCredentials, services: ServicesDep, session: SessionDep
) -> AccessToken:
    """A system (the request-review system) signs in with its client id and secret."""
    account, _ = sign_in(
        session,
        body.client_id,
        body.client_secret,
        None,
        SubjectKind.system,
        services.accounts,
        services.login_throttle,
    )
    return _token(services, account, SubjectKind.system, mfa=False)


@router.post("/activate", response_model=AccessToken, name="account.activate")
def activate_account(body: Activation, services: ServicesDep, session: SessionDep) -> AccessToken:
    """A person sets their own password with the activation code they were given (once,
    before it expires). The token (mfa: false) is good only for setting up the second
    factor, next."""
    account = activate(
        session,
        body.username,
        body.activation_code,
        body.password,
        services.accounts,
        services.login_throttle,
    )
    return _token(services, account, SubjectKind.person, mfa=False)


@router.post("/totp", response_model=TotpSetup, name="totp.start")
def set_up_totp(caller: SignedIn, services: ServicesDep, session: SessionDep) -> TotpSetup:
    """Start the second factor: the otpauth URI is shown this once."""
    with session.begin():
        uri = start_totp(session, get_account(session, caller.id), services.keys)
    return TotpSetup(otpauth_uri=uri)


@router.post("/totp/confirm", status_code=204, name="totp.confirm")
def confirm_totp_code(
    body: TotpCode, caller: SignedIn, services: ServicesDep, session: SessionDep
) -> None:
    """Turn the second factor on with a first code; then sign in again with a code."""
    with session.begin():
        confirm_totp(session, get_account(session, caller.id), body.code, services.keys)


@router.post("/password", status_code=204, name="password.change")
def new_password(
    body: PasswordChange, caller: Person, services: ServicesDep, session: SessionDep
) -> None:
    """A person changes their own password; every token of theirs, this one too, stops
    working: sign in again."""
    with session.begin():
        change_password(
            session,
            get_account(session, caller.id),
            body.current_password,
            body.new_password,
            services.login_throttle,
        )
