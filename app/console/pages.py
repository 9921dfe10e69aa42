"""The console's pages, one group per kind of person. Each page admits its caller with the
API's own permission check and calls the API's own route function, so every rule, refusal
and audit entry is the API's; a page only reads a form and draws the answer."""

from __future__ import annotations

import io
import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from app.accounts.models import Account, ChangeStatus
from app.accounts.schemas import Activation, ActiveChange, Login, NewAccount, NewTraining, TotpCode
from app.api.deps import Caller, ServicesDep, SessionDep, admit, signed_in
from app.api.routers import accounts as accounts_api
from app.api.routers import disclosures as disclosures_api
from app.api.routers import login as login_api
from app.api.routers import oversight as oversight_api
from app.api.routers import requests as requests_api
from app.api.routers import searches as searches_api
from app.api.schemas import RowId
from app.audit import trail
from app.console.render import NOTICES, go, page
from app.console.sessions import (
    COOKIE,
    SessionPolicy,
    check_csrf,
    close_session,
    csrf_token,
    open_session,
    session_account,
)
from app.core.composition import Services
from app.core.refusals import Code, Refusal
from app.gallery.release import LicenseNumber
from app.requests.schemas import NewReview
from app.requests.workflow import assigned_to, awaiting_review
from app.searches.rules import Conclusion
from app.searches.schemas import Examination
from app.searches.workflow import undecided_searches_of, unshown_releases_of
from auth import LEVEL_ROLE, Permission, Role, SubjectKind
from matcher import Box, FaceRefusal
from matcher.framing import faces_marked, framed_face

router = APIRouter(prefix="/console", include_in_schema=False)

# Before a session exists (signing in, activating) forms are tied to this cookie instead.
FORM_COOKIE = "facematch_form"
Model = TypeVar("Model", bound=BaseModel)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, only for the console's paths, and Secure over TLS (as a
    trusted proxy reports it)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def parsed(model: type[Model], data: dict[str, Any]) -> Model:
    """A form read into the API's own request model, refused as the API refuses a body."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()
        )
        raise Refusal(Code.invalid_request, f"The form is not valid: {where}.") from None


async def form_fields(request: Request) -> FormData:
    """The posted form; a field sent twice (but the operators a review assigns) is refused."""
    form = await request.form()
    names = [name for name, _ in form.multi_items() if name != "operators"]
    if len(names) != len(set(names)):
        raise Refusal(Code.repeated_field, "The form sends a field more than once.")
    return form


Fields = Annotated[FormData, Depends(form_fields)]


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# Who is looking


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as the API's routes take a caller, and their session's token."""

    caller: Caller
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def admitted(self, session: SessionDep, request: Request, permission: Permission) -> Caller:
        return admit(session, self.caller, request, permission)


def session_policy(services: Services) -> SessionPolicy:
    settings = services.settings
    return SessionPolicy(
        timedelta(minutes=settings.console_idle_minutes),
        timedelta(hours=settings.console_session_hours),
    )


def viewer(request: Request, services: ServicesDep, session: SessionDep) -> Viewer:
    """The person whose live console session the cookie names; a form must also carry the
    session's CSRF token."""
    token = request.cookies.get(COOKIE, "")
    with session.begin():
        account = session_account(session, token, session_policy(services), datetime.now(UTC))
        caller = Caller(account.id, account.username, account.role, SubjectKind.person, True)
    session.expunge(account)
    # The person is the actor of the request's audit entry, refused or not, as with a token.
    scope = trail.current_scope()
    if scope is not None:
        scope.actor = caller.actor
    return Viewer(caller, token)


ViewerDep = Annotated[Viewer, Depends(viewer)]


def posted(viewer: ViewerDep, form: Fields) -> Viewer:
    check_csrf(viewer.token, text(form, "csrf"))
    return viewer


PostedBy = Annotated[Viewer, Depends(posted)]

# The first page each person sees, and the pages in their menu.
MENUS: dict[Role, list[tuple[str, str]]] = {
    Role.operator: [("/console/operator", "Assigned requests")],
    Role.auditor: [
        ("/console/audit", "Audit log"),
        ("/console/report", "Transparency report"),
        ("/console/accountability", "Accountability report"),
        ("/console/operating-point", "Operating point"),
        ("/console/disclosures", "Disclosures"),
    ],
    Role.records_clerk: [("/console/disclosures", "Disclosure lookup")],
    Role.admin: [("/console/accounts", "Accounts")],
    **{role: [("/console/reviews", "Review queue")] for role in LEVEL_ROLE.values()},
}
LEVEL_OF = {role: level for level, role in LEVEL_ROLE.items()}


def show(
    request: Request, name: str, viewer: Viewer, status: int = 200, **context: Any
) -> HTMLResponse:
    return page(
        request,
        name,
        status,
        viewer=viewer.caller,
        csrf=viewer.csrf,
        menu=MENUS.get(viewer.caller.role, []),
        **context,
    )


# Signing in, activating, signing out


def _form_secret(request: Request) -> str:
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def anonymous_page(request: Request, name: str, **context: Any) -> HTMLResponse:
    secret = _form_secret(request)
    response = page(request, name, csrf=csrf_token(secret), **context)
    _cookie(response, request, FORM_COOKIE, secret, 3600)
    return response


def _anonymous_post(request: Request, form: FormData) -> None:
    check_csrf(request.cookies.get(FORM_COOKIE, ""), text(form, "csrf"))


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(
    request: Request, notice: Annotated[str, Query(max_length=64)] = ""
) -> HTMLResponse:
    return anonymous_page(request, "sign_in.html", notice=NOTICES.get(notice, ""))


@router.post("/sign-in")
def sign_in(request: Request, form: Fields, services: ServicesDep, session: SessionDep) -> Response:
    """The API's sign-in with the second factor, then a console session for the person."""
    _anonymous_post(request, form)
    body = parsed(
        Login,
        {
            "username": text(form, "username"),
            "password": text(form, "password"),
            "totp_code": text(form, "totp_code") or None,
        },
    )
    issued = login_api.login(body, services, session)
    if not issued.mfa:
        return second_factor_page(request, services, session, issued.access_token)
    claims = services.tokens.read(issued.access_token)
    next_call(session)
    with session.begin():
        token = open_session(session, session.get_one(Account, claims.subject), claims.epoch)
    response = go("/console/")
    _cookie(response, request, COOKIE, token, services.settings.console_session_hours * 3600)
    return response


@router.get("/activate", response_class=HTMLResponse)
def activate_page(request: Request) -> HTMLResponse:
    return anonymous_page(request, "activate.html")


@router.post("/activate", response_class=HTMLResponse)
def activate(
    request: Request, form: Fields, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    """A new person's own password with their activation code; then their second factor."""
    _anonymous_post(request, form)
    body = parsed(
        Activation,
        {
            "username": text(form, "username"),
            "activation_code": text(form, "activation_code"),
            "password": text(form, "password"),
        },
    )
    issued = login_api.activate_account(body, services, session)
    return second_factor_page(request, services, session, issued.access_token)


def next_call(session: SessionDep) -> None:
    """Between two of the API's route functions on one page: end what the first left open,
    as the end of its own request would have (nothing it meant to keep is uncommitted)."""
    session.rollback()


def _setup_caller(services: Services, session: SessionDep, token: str) -> Caller:
    next_call(session)
    return signed_in(
        services, session, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
    )


def second_factor_page(
    request: Request, services: Services, session: SessionDep, token: str
) -> HTMLResponse:
    """The authenticator app's key, shown this once, and the form for its first code."""
    setup = login_api.set_up_totp(_setup_caller(services, session, token), services, session)
    key = setup.otpauth_uri.split("secret=", 1)[1].split("&", 1)[0]
    return anonymous_page(
        request, "second_factor.html", otpauth_uri=setup.otpauth_uri, key=key, setup_token=token
    )


@router.post("/second-factor")
def confirm_second_factor(
    request: Request, form: Fields, services: ServicesDep, session: SessionDep
) -> Response:
    _anonymous_post(request, form)
    caller = _setup_caller(services, session, text(form, "setup_token"))
    login_api.confirm_totp_code(
        parsed(TotpCode, {"code": text(form, "code")}), caller, services, session
    )
    return go("/console/sign-in?notice=second_factor")


@router.post("/sign-out")
def sign_out(request: Request, form: Fields, session: SessionDep) -> Response:
    """Ends the session, whatever state it is in, so a locked one can still be signed out."""
    token = request.cookies.get(COOKIE, "")
    check_csrf(token, text(form, "csrf"))
    with session.begin():
        close_session(session, token, datetime.now(UTC))
    response = go("/console/sign-in?notice=signed_out")
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/")
def home(viewer: ViewerDep) -> Response:
    menu = MENUS.get(viewer.caller.role)
    if not menu:
        raise Refusal(Code.forbidden, "The console has no pages for this account's role.")
    return go(menu[0][0])


# Operators: assigned requests, the search, the review of its candidates


class PendingProbes:
    """A probe showing several faces, held in memory (never written) for ten minutes while
    its operator picks the face to search with. One process's memory: the service runs one
    process, its probes encoded in worker processes."""

    ttl_s = 600.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, int], tuple[float, bytes, list[Box]]] = {}

    def _sweep(self) -> None:
        now = time.monotonic()
        self._held = {k: v for k, v in self._held.items() if now - v[0] < self.ttl_s}

    def hold(self, token: str, request_id: int, data: bytes, faces: list[Box]) -> None:
        with self._lock:
            self._sweep()
            self._held[(token, request_id)] = (time.monotonic(), data, faces)

    def get(self, token: str, request_id: int) -> tuple[bytes, list[Box]]:
        with self._lock:
            self._sweep()
            held = self._held.get((token, request_id))
        if held is None:
            raise Refusal(Code.invalid_request, "Upload the photo again: the one sent has expired.")
        return held[1], held[2]

    def drop(self, token: str, request_id: int) -> None:
        with self._lock:
            self._held.pop((token, request_id), None)


pending_probes = PendingProbes()


@router.get("/operator", response_class=HTMLResponse)
def operator_page(
    request: Request, viewer: ViewerDep, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    caller = viewer.admitted(session, request, Permission.search)
    with session.begin():
        work = assigned_to(session, caller.id, datetime.now(UTC))
        undecided = undecided_searches_of(session, caller.id)
        unshown = unshown_releases_of(session, caller.id)
    queue = searches_api.verification_queue(session, caller).searches
    return show(
        request,
        "operator.html",
        viewer,
        requests=work,
        undecided=undecided,
        unshown=unshown,
        verification=queue,
        examiners=services.settings.examiners,
    )


@router.get("/requests/{request_id}/search", response_class=HTMLResponse)
def search_page(
    request_id: RowId, request: Request, viewer: ViewerDep, session: SessionDep
) -> HTMLResponse:
    caller = viewer.admitted(session, request, Permission.search)
    view = requests_api.read_request(request_id, session, caller)
    return show(request, "search.html", viewer, request_view=view)


@router.post("/requests/{request_id}/search")
def search(
    request_id: RowId,
    request: Request,
    viewer: PostedBy,
    form: Fields,
    services: ServicesDep,
    session: SessionDep,
    probe: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Search with the photo sent, or, after a photo with several faces, the face picked."""
    caller = viewer.admitted(session, request, Permission.search)
    face = text(form, "face")
    if face:
        data, faces = pending_probes.get(viewer.token, request_id)
        if not (face.isascii() and face.isdecimal()) or not 1 <= int(face) <= len(faces):
            raise Refusal(Code.invalid_face_box, "Pick one of the faces shown.")
        box = faces[int(face) - 1]
        face_box: str | None = f"{box.left},{box.top},{box.right},{box.bottom}"
        declared = None
    elif probe is not None and probe.filename:
        data, face_box = probe.file.read(services.settings.max_image_bytes + 1), None
        declared = probe.headers
    else:
        raise Refusal(Code.invalid_request, "Choose the photo to search with.")
    # As sent, declared type and all: the API checks it as it checks its own uploads.
    upload = UploadFile(io.BytesIO(data), filename="probe", headers=declared)
    try:
        result = searches_api.search(
            request_id, services, session, caller, None, None, upload, face_box
        )
    except FaceRefusal as refusal:
        if refusal.code != "multiple_faces":
            raise
        pending_probes.hold(viewer.token, request_id, data, refusal.faces)
        return show(request, "pick_face.html", viewer, request_id=request_id, faces=refusal.faces)
    pending_probes.drop(viewer.token, request_id)
    return go(f"/console/searches/{result.search_id}")


@router.get("/requests/{request_id}/faces")
def pending_photo(
    request_id: RowId, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """The photo awaiting the operator's pick, its faces boxed and numbered."""
    viewer.admitted(session, request, Permission.search)
    data, faces = pending_probes.get(viewer.token, request_id)
    return searches_api.photo_response(faces_marked(data, faces))


@router.get("/requests/{request_id}/faces/{number}")
def pending_face(
    request_id: RowId, number: int, request: Request, viewer: ViewerDep, session: SessionDep
) -> Response:
    """One of the faces of a photo awaiting the operator's pick, framed."""
    viewer.admitted(session, request, Permission.search)
    data, faces = pending_probes.get(viewer.token, request_id)
    if not 1 <= number <= len(faces):
        raise Refusal(Code.invalid_face_box, "There is no such face in the photo.")
    return searches_api.photo_response(framed_face(data, faces[number - 1], size=200))


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def review_page(
    search_id: RowId, request: Request, viewer: ViewerDep, session: SessionDep
) -> HTMLResponse:
    """Probe and candidates side by side at the same scale, and a conclusion for each."""
    caller = viewer.admitted(session, request, Permission.examine)
    view = searches_api.read_search(search_id, session, caller)
    return show(request, "review.html", viewer, search=view, conclusions=list(Conclusion))


@router.get("/searches/{search_id}/probe")
def review_probe(
    search_id: RowId,
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    caller = viewer.admitted(session, request, Permission.examine)
    return searches_api.read_probe(search_id, services, session, caller, framed=True)


@router.get("/searches/{search_id}/candidates/{ref}/photos/{number}")
def review_photo(
    search_id: RowId,
    ref: searches_api.CandidateRef,
    number: searches_api.PhotoNumber,
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    caller = viewer.admitted(session, request, Permission.examine)
    return searches_api.read_candidate_photo(search_id, ref, number, services, session, caller)


@router.post("/searches/{search_id}/examination", response_class=HTMLResponse)
def examine(
    search_id: RowId,
    request: Request,
    viewer: PostedBy,
    form: Fields,
    services: ServicesDep,
    session: SessionDep,
) -> HTMLResponse:
    """The examiner's conclusions; the release, when there is one to show, shown this once."""
    caller = viewer.admitted(session, request, Permission.examine)
    refs = [name.removeprefix("conclusion-") for name in form if name.startswith("conclusion-")]
    body = parsed(
        Examination,
        {
            "conclusions": [
                {
                    "candidate": ref,
                    "conclusion": text(form, f"conclusion-{ref}"),
                    "basis": text(form, f"basis-{ref}"),
                }
                for ref in refs
            ]
        },
    )
    done = searches_api.examination(search_id, body, services, session, caller)
    return show(request, "examined.html", viewer, examined=done)


@router.post("/searches/{search_id}/verification")
def verify(
    search_id: RowId, request: Request, viewer: PostedBy, services: ServicesDep, session: SessionDep
) -> Response:
    caller = viewer.admitted(session, request, Permission.examine)
    searches_api.verification(search_id, services, session, caller)
    return go(f"/console/searches/{search_id}")


@router.post("/searches/{search_id}/release", response_class=HTMLResponse)
def release(
    search_id: RowId, request: Request, viewer: PostedBy, session: SessionDep
) -> HTMLResponse:
    """A release a verifier's examination made, shown once: a form, so that no prefetch or
    reload spends it."""
    caller = viewer.admitted(session, request, Permission.examine)
    shown = searches_api.release(search_id, session, caller)
    return show(request, "release.html", viewer, release=shown, search_id=search_id)


# Reviewers


@router.get("/reviews", response_class=HTMLResponse)
def review_queue(request: Request, viewer: ViewerDep, session: SessionDep) -> HTMLResponse:
    viewer.admitted(session, request, Permission.review_request)
    level = LEVEL_OF[viewer.caller.role]
    with session.begin():
        queue = awaiting_review(session, level)
    return show(request, "reviews.html", viewer, queue=queue, level=level)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(
    request_id: RowId, request: Request, viewer: ViewerDep, session: SessionDep
) -> HTMLResponse:
    """Every fact of the request, its screening, its court order and its review trail; the
    review form where it awaits the viewer's level."""
    caller = viewer.admitted(session, request, Permission.read_request)
    view = requests_api.read_request(request_id, session, caller)
    deciding = view.awaiting is not None and LEVEL_ROLE[view.awaiting] is caller.role
    operators = []
    if deciding and caller.role is Role.unit_administrator:
        with session.begin():
            operators = list(
                session.scalars(
                    select(Account.username)
                    .where(Account.role == Role.operator, Account.active.is_(True))
                    .order_by(Account.username)
                )
            )
    return show(
        request,
        "request.html",
        viewer,
        request_view=view,
        deciding=deciding,
        operators=operators,
        reads_court_order=caller.role in LEVEL_OF,
    )


@router.get("/requests/{request_id}/court-order")
def court_order(
    request_id: RowId,
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    caller = viewer.admitted(session, request, Permission.read_court_order)
    return requests_api.read_court_order(request_id, services, session, caller)


@router.post("/requests/{request_id}/reviews")
def decide_request(
    request_id: RowId,
    request: Request,
    viewer: PostedBy,
    form: Fields,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    caller = viewer.admitted(session, request, Permission.review_request)
    body = parsed(
        NewReview,
        {
            "decision": text(form, "decision"),
            "reason": text(form, "reason"),
            "operators": [o for o in form.getlist("operators") if isinstance(o, str)],
        },
    )
    requests_api.review_request(request_id, body, services, session, caller, None)
    return go(f"/console/requests/{request_id}")


# Auditors


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    after: Annotated[int, Query(ge=0)] = 0,
    actor: Annotated[str, Query(max_length=64)] = "",
    event_type: Annotated[str, Query(max_length=64)] = "",
    object_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> HTMLResponse:
    caller = viewer.admitted(session, request, Permission.read_audit)
    entries = oversight_api.read_audit_log(
        session,
        caller,
        after,
        100,
        actor or None,
        event_type or None,
        object_id or None,
        since,
        until,
    )
    filters = {"actor": actor, "event_type": event_type, "object_id": object_id}
    kept = {k: v for k, v in filters.items() if v}
    for name, moment in (("since", since), ("until", until)):
        if moment is not None:
            kept[name] = moment.isoformat()
    more = kept | {"after": entries[-1].seq} if entries else {}
    return show(
        request,
        "audit.html",
        viewer,
        entries=entries,
        filters=filters,
        since=since,
        until=until,
        more=more,
    )


@router.get("/audit/verify", response_class=HTMLResponse)
def audit_verify(
    request: Request, viewer: ViewerDep, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    caller = viewer.admitted(session, request, Permission.read_audit)
    result = oversight_api.verify_audit_log(services, session, caller)
    return show(request, "verify.html", viewer, result=result)


@router.get("/report", response_class=HTMLResponse)
def report_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    period_from: Annotated[date | None, Query(alias="from")] = None,
    period_to: Annotated[date | None, Query(alias="to")] = None,
) -> HTMLResponse:
    caller = viewer.admitted(session, request, Permission.read_reports)
    period_to = period_to or date.today() + timedelta(days=1)
    period_from = period_from or period_to - timedelta(days=30)
    report = oversight_api.transparency_report(period_from, period_to, session, caller)
    bars = [
        ("Requests", report.requests),
        ("Rejected at screening", report.screening.rejected),
        ("Approved", report.reviews.approved),
        ("Denied", report.reviews.denied),
        ("Searches", report.searches),
        ("Identifications", report.conclusions.identifications),
        ("Exclusions", report.conclusions.exclusions),
        ("Inconclusive", report.conclusions.inconclusives),
        ("Disagreements", report.conclusions.disagreements),
        ("Releases", report.releases),
    ]
    return show(request, "report.html", viewer, report=report, bars=bars)


@router.get("/accountability", response_class=HTMLResponse)
def accountability_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    session: SessionDep,
    period_from: Annotated[date | None, Query(alias="from")] = None,
    period_to: Annotated[date | None, Query(alias="to")] = None,
) -> HTMLResponse:
    """The accountability report as `facematch report accountability` writes it, printable."""
    caller = viewer.admitted(session, request, Permission.read_reports)
    report = oversight_api.accountability_report(services, session, caller, period_from, period_to)
    return show(request, "accountability.html", viewer, report=report)


@router.get("/operating-point", response_class=HTMLResponse)
def operating_point_page(
    request: Request, viewer: ViewerDep, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    caller = viewer.admitted(session, request, Permission.read_operating_point)
    view = oversight_api.read_operating_point(services, session, caller)
    point = view.operating_point
    # The miss rate the threshold costs as the gallery grows, at the same false-match rate.
    curve = [(point.gallery_size, point.fnir)] + sorted(
        (int(size), estimate.fnir) for size, estimate in point.modelled_for_larger_galleries.items()
    )
    sizes = [math.log10(max(size, 1)) for size, _ in curve]
    sizes.append(math.log10(max(view.people_enrolled, 1)))
    low, high = min(sizes), max(sizes)
    top = max(fnir for _, fnir in curve) or 1.0

    def x(size: int) -> float:
        return round(60 + 420 * (math.log10(max(size, 1)) - low) / ((high - low) or 1), 1)

    plot = [(x(size), round(220 - 190 * fnir / top, 1), size, fnir) for size, fnir in curve]
    return show(
        request,
        "operating_point.html",
        viewer,
        view=view,
        plot=plot,
        now_x=x(view.people_enrolled),
    )


# Records clerk


@router.get("/disclosures", response_class=HTMLResponse)
def disclosures_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    license_number: Annotated[LicenseNumber | None, Query()] = None,
) -> HTMLResponse:
    caller = viewer.admitted(session, request, Permission.lookup_disclosures)
    found = disclosures_api.lookup(license_number, session, caller) if license_number else None
    return show(request, "disclosures.html", viewer, license_number=license_number, found=found)


# Administrators


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request, viewer: ViewerDep, session: SessionDep) -> HTMLResponse:
    admin = _administrator(request, viewer, session)
    return show(
        request,
        "accounts.html",
        viewer,
        accounts=accounts_api.list_accounts(admin, session),
        changes=accounts_api.list_changes(admin, session, ChangeStatus.pending),
        roles=list(Role),
    )


def _administrator(request: Request, viewer: Viewer, session: SessionDep) -> Caller:
    return viewer.admitted(session, request, Permission.manage_accounts)


def _outcome(request: Request, viewer: Viewer, outcome: Any) -> HTMLResponse:
    """What an account change did; credentials, where it made some, shown this once."""
    return show(request, "account_outcome.html", viewer, outcome=outcome)


@router.post("/accounts", response_class=HTMLResponse)
def new_account(
    request: Request, viewer: PostedBy, form: Fields, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    admin = _administrator(request, viewer, session)
    body = parsed(NewAccount, {"username": text(form, "username"), "role": text(form, "role")})
    return _outcome(
        request, viewer, accounts_api.new_account(body, admin, services, session, Response())
    )


@router.post("/accounts/{account_id}/active", response_class=HTMLResponse)
def set_active(
    account_id: RowId,
    request: Request,
    viewer: PostedBy,
    form: Fields,
    services: ServicesDep,
    session: SessionDep,
) -> HTMLResponse:
    admin = _administrator(request, viewer, session)
    body = parsed(ActiveChange, {"active": text(form, "active") == "true"})
    changed = accounts_api.change_account(account_id, body, admin, services, session, Response())
    return _outcome(request, viewer, changed)


@router.post("/accounts/{account_id}/reset", response_class=HTMLResponse)
def reset(
    account_id: RowId,
    request: Request,
    viewer: PostedBy,
    services: ServicesDep,
    session: SessionDep,
) -> HTMLResponse:
    admin = _administrator(request, viewer, session)
    reset = accounts_api.reset_account(account_id, admin, services, session, Response())
    return _outcome(request, viewer, reset)


@router.post("/accounts/{account_id}/training", response_class=HTMLResponse)
def training(
    account_id: RowId,
    request: Request,
    viewer: PostedBy,
    form: Fields,
    services: ServicesDep,
    session: SessionDep,
) -> HTMLResponse:
    admin = _administrator(request, viewer, session)
    fields = ("course", "completed_on", "expires_on")
    body = parsed(NewTraining, {name: text(form, name) for name in fields})
    recorded = accounts_api.new_training(account_id, body, admin, services, session, Response())
    return _outcome(request, viewer, recorded)


@router.post("/account-changes/{change_id}/{verdict}", response_class=HTMLResponse)
def decide_change(
    change_id: RowId,
    verdict: str,
    request: Request,
    viewer: PostedBy,
    services: ServicesDep,
    session: SessionDep,
) -> HTMLResponse:
    admin = _administrator(request, viewer, session)
    if verdict == "approve":
        return _outcome(request, viewer, accounts_api.approve(change_id, admin, services, session))
    if verdict == "reject":
        return _outcome(request, viewer, accounts_api.reject(change_id, admin, session))
    raise Refusal(Code.not_found, "There is no such action.")
