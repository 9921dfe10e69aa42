"""What a route needs, from the application's state: services, a database session, and the
caller, authenticated from a bearer token and checked against the role table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.accounts.service import actor_of
from app.audit import trail
from app.core.composition import Services
from app.core.refusals import Code, Refusal
from auth import Claims, Permission, Role, SubjectKind, TokenError, may


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_session(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


ServicesDep = Annotated[Services, Depends(get_services)]
SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Caller:
    """Who is calling, as of this request: the token's claims checked against the account."""

    id: int
    username: str
    role: Role
    kind: SubjectKind
    mfa: bool

    @property
    def actor(self) -> str:
        return actor_of(self.id)


_bearer = HTTPBearer(auto_error=False)


def _caller(services: Services, session: Session, token: str, principal: bool = True) -> Caller:
    """The caller a token names, checked against their account in the request's own session
    (in a transaction of its own, ended before the route begins one); the principal (not a
    system calling beside them) is the actor of the request's audit entry from here on."""
    try:
        claims: Claims = services.tokens.read(token)
    except TokenError as problem:
        raise Refusal(Code[problem.code], problem.message) from None
    scope = trail.current_scope()
    if principal and scope is not None:
        scope.actor = actor_of(claims.subject)
    with session.begin():
        account = session.get(Account, claims.subject)
        if account is None or not account.active:
            raise Refusal(Code.account_disabled, "This account is disabled.")
        if account.role != claims.role or account.kind != claims.kind:
            raise Refusal(Code.invalid_token, "The access token is not valid.")
        if claims.epoch != account.token_epoch:
            raise Refusal(
                Code.token_revoked,
                "This access token was ended (the account was disabled, enabled, reset or "
                "its password changed); sign in again.",
            )
        caller = Caller(account.id, account.username, claims.role, claims.kind, claims.mfa)
    # The route reads the account afresh in its own transaction, never this snapshot.
    session.expunge(account)
    return caller


def signed_in(
    services: ServicesDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Any valid token of an active account, with or without the second factor: only the
    second-factor set-up accepts the latter."""
    if credentials is None:
        raise Refusal(Code.not_authenticated, "Sign in and send the access token as a Bearer.")
    return _caller(services, session, credentials.credentials)


SignedIn = Annotated[Caller, Depends(signed_in)]


def _refuse(
    session: Session, caller: Caller, request: Request, refusal: Refusal, **details: str
) -> NoReturn:
    """Audit a refused access, then raise the refusal."""
    with session.begin():
        trail.record(
            session,
            "access",
            "access.denied",
            caller.actor,
            f"refused:{refusal.code}",
            path=request.url.path,
            **details,
        )
    raise refusal


def person(session: SessionDep, caller: SignedIn, request: Request) -> Caller:
    """A person signed in with the second factor: what every person's own change needs."""
    if caller.kind is not SubjectKind.person:
        refusal = Refusal(Code.forbidden, "Only a person may do this.")
        _refuse(session, caller, request, refusal)
    if not caller.mfa:
        refusal = Refusal(Code.mfa_required, "Sign in with your one-time code to do this.")
        _refuse(session, caller, request, refusal)
    return caller


Person = Annotated[Caller, Depends(person)]


def admit(session: Session, caller: Caller, request: Request, permission: Permission) -> Caller:
    """The caller, if their role has `permission`; people need the second factor for
    everything. Refusals are audited. The API and the console both admit with this."""
    if caller.kind is SubjectKind.person and not caller.mfa:
        refusal = Refusal(Code.mfa_required, "Sign in with your one-time code to do this.")
        _refuse(session, caller, request, refusal, permission=permission.value)
    if not may(caller.role, permission):
        refusal = Refusal(Code.forbidden, f"The {caller.role.value} role may not do this.")
        _refuse(session, caller, request, refusal, permission=permission.value)
    return caller


def require(permission: Permission) -> Callable[..., Caller]:
    """A dependency admitting bearer-token callers whose role has `permission`."""

    def dependency(session: SessionDep, caller: SignedIn, request: Request) -> Caller:
        return admit(session, caller, request, permission)

    return dependency


def calling_system(
    services: ServicesDep,
    session: SessionDep,
    x_calling_system: Annotated[
        str | None,
        Header(
            description="The request-review system's own access token, when it passes on "
            "a reviewer's decision or an operator's search beside that person's token"
        ),
    ] = None,
) -> Caller | None:
    """The system passing on a person's call, proven by its own token."""
    if x_calling_system is None:
        return None
    try:
        token = x_calling_system.removeprefix("Bearer ").strip()
        system = _caller(services, session, token, principal=False)
    except Refusal:
        system = None
    if system is None or not may(system.role, Permission.act_on_behalf):
        raise Refusal(
            Code.unknown_calling_system,
            "X-Calling-System does not carry the token of a known request-review system.",
        )
    return system


CallingSystem = Annotated[Caller | None, Depends(calling_system)]


async def single_form_fields(request: Request) -> None:
    """A form that sends a field twice (two probes, two face boxes) is refused whole, never
    half-read."""
    form = await request.form()
    counts = Counter(name for name, _ in form.multi_items())
    repeated = sorted(name for name, times in counts.items() if times > 1)
    if repeated:
        raise Refusal(
            Code.repeated_field,
            f"The form sends '{repeated[0]}' more than once; send each field once.",
        )
