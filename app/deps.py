"""What a route needs, from the application's state: services, a database session, and the
caller, authenticated from a bearer token and checked against the role table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app import audit
from app.accounts import AccountPolicy, actor_of
from app.config import Settings
from app.errors import ApiError
from app.gallery import Gallery
from app.models import Account
from app.rules import RequestPolicy
from auth import Claims, Permission, Role, SubjectKind, Throttle, TokenError, TokenIssuer, may
from matcher import Box, FaceTemplate, MatchRule, PipelineBusy, PipelineTimeout, ProbeEncoder
from matcher.operating_point import OperatingPoint


@dataclass
class Services:
    """Built once at start-up: loading the models and the index takes seconds."""

    settings: Settings
    sessions: sessionmaker[Session]
    probes: ProbeEncoder
    gallery: Gallery
    tokens: TokenIssuer
    accounts: AccountPolicy
    request_policy: RequestPolicy
    operating_point: OperatingPoint
    # The SHA-256 of the operating point file: every search records it.
    operating_point_sha256: str
    login_throttle: Throttle
    search_throttle: Throttle

    @property
    def rule(self) -> MatchRule:
        settings = self.settings
        return MatchRule(
            self.operating_point.threshold, settings.max_candidates, settings.match_margin
        )

    def throttle_search(self, operator: int) -> None:
        """Count a search attempt by the operator; 429 once they are over the rate limit."""
        wait = self.search_throttle.wait_s(operator)
        if wait is not None:
            raise ApiError(
                429,
                "too_many_searches",
                f"More searches than the limit of {self.settings.search_rate_limit} were tried "
                f"from this account; try again in {wait} s.",
                retry_after_s=wait,
            )

    def encode_probe(self, data: bytes, box: Box | None) -> FaceTemplate:
        try:
            return self.probes.encode(data, box)
        except PipelineBusy:
            raise ApiError(
                429,
                "face_matcher_busy",
                "The face matcher is busy with other searches; try again in a few seconds.",
                retry_after_s=5,
            ) from None
        except PipelineTimeout:
            raise ApiError(
                422,
                "photo_too_slow",
                f"The photo took longer than {self.probes.timeout_s:g} s to process; "
                "send a smaller or more ordinary photo.",
            ) from None


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


def _caller(services: Services, token: str, principal: bool = True) -> Caller:
    """The caller a token names, checked against their account; the principal (not a system
    calling beside them) is the actor of the request's audit entry from here on."""
    try:
        claims: Claims = services.tokens.read(token)
    except TokenError as problem:
        raise ApiError(401, problem.code, problem.message) from None
    scope = audit.current_scope()
    if principal and scope is not None:
        scope.actor = actor_of(claims.subject)
    with services.sessions() as session:
        account = session.get(Account, claims.subject)
        if account is None or not account.active:
            raise ApiError(401, "account_disabled", "This account is disabled.")
        if account.role != claims.role or account.kind != claims.kind:
            raise ApiError(401, "invalid_token", "The access token is not valid.")
        if claims.epoch != account.token_epoch:
            raise ApiError(
                401,
                "token_revoked",
                "This access token was ended (the account was disabled, enabled, reset or "
                "its password changed); sign in again.",
            )
        return Caller(account.id, account.username, claims.role, claims.kind, claims.mfa)


def signed_in(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Any valid token of an active account, with or without the second factor: only the
    second-factor set-up accepts the latter."""
    if credentials is None:
        raise ApiError(401, "not_authenticated", "Sign in and send the access token as a Bearer.")
    return _caller(services, credentials.credentials)


SignedIn = Annotated[Caller, Depends(signed_in)]


def _refuse(
    services: Services, caller: Caller, request: Request, refusal: ApiError, **details: str
) -> NoReturn:
    """Audit a refused access, then raise the refusal."""
    with services.sessions.begin() as session:
        audit.record(
            session,
            "access",
            "access.denied",
            caller.actor,
            f"refused:{refusal.code}",
            path=request.url.path,
            **details,
        )
    raise refusal


def person(services: ServicesDep, caller: SignedIn, request: Request) -> Caller:
    """A person signed in with the second factor: what every person's own change needs."""
    if caller.kind is not SubjectKind.person:
        refusal = ApiError(403, "forbidden", "Only a person may do this.")
        _refuse(services, caller, request, refusal)
    if not caller.mfa:
        refusal = ApiError(403, "mfa_required", "Sign in with your one-time code to do this.")
        _refuse(services, caller, request, refusal)
    return caller


Person = Annotated[Caller, Depends(person)]


def require(permission: Permission) -> Callable[..., Caller]:
    """A dependency admitting callers whose role has `permission`; people need the second
    factor for everything. Refusals are audited."""

    def dependency(services: ServicesDep, caller: SignedIn, request: Request) -> Caller:
        if caller.kind is SubjectKind.person and not caller.mfa:
            refusal = ApiError(403, "mfa_required", "Sign in with your one-time code to do this.")
            _refuse(services, caller, request, refusal, permission=permission.value)
        if not may(caller.role, permission):
            refusal = ApiError(403, "forbidden", f"The {caller.role.value} role may not do this.")
            _refuse(services, caller, request, refusal, permission=permission.value)
        return caller

    return dependency


def calling_system(
    services: ServicesDep,
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
        system = _caller(services, token, principal=False)
    except ApiError:
        system = None
    if system is None or not may(system.role, Permission.act_on_behalf):
        raise ApiError(
            403,
            "unknown_calling_system",
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
        raise ApiError(
            422,
            "repeated_field",
            f"The form sends '{repeated[0]}' more than once; send each field once.",
        )
