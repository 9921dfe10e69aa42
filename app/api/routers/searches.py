"""The gated search and its human review: a trained operator, signed in with the second
factor, searches under an approved request and gets faces, not names; compares the probe with
each candidate's enrolled photos and concludes on every one; only an identification (by every
examiner the setting asks for) releases anyone."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile
from sqlalchemy.orm import Session

from app.api.deps import Caller, CallingSystem, ServicesDep, SessionDep, require, single_form_fields
from app.api.schemas import RowId, problems
from app.audit import trail
from app.core import metrics
from app.core.refusals import Code, Refusal
from app.gallery.release import Release
from app.requests.workflow import COMPONENT, request_ref
from app.searches.models import Examination as ExaminationRow
from app.searches.models import Search
from app.searches.schemas import (
    Candidate,
    Examination,
    ExaminationView,
    OutcomeView,
    SearchResult,
    SearchView,
    VerificationQueue,
)
from app.searches.workflow import (
    ChosenBy,
    Probe,
    Searcher,
    authorise_search,
    awaiting_verification,
    candidate_photos,
    examine,
    examined_by,
    examiner_photo,
    examiner_probe,
    outcome_for_system,
    record_search,
    release_to_operator,
    search_ref,
    take_verification,
)
from auth import Permission
from matcher import Box, sniff_format
from matcher.framing import framed_face, pixels_only

router = APIRouter(
    prefix="/v1",
    tags=["searches"],
    responses=problems(401, 403, 404, 409, 413, 415, 422, 429),
)


def parse_face_box(text: str | None) -> Box | None:
    if text is None or not text.strip():
        return None
    try:
        left, top, right, bottom = (int(part) for part in text.split(","))
    except ValueError:
        raise Refusal(
            Code.invalid_face_box, "face_box must be four integers: left,top,right,bottom."
        ) from None
    if right <= left or bottom <= top:
        raise Refusal(Code.invalid_face_box, "face_box must have right > left and bottom > top.")
    return Box(left, top, right, bottom)


# What a probe's part may declare itself: its own format, or nothing in particular.
_DECLARED_FORMAT = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/png": "PNG"}
_UNDECLARED = {None, "", "application/octet-stream"}


def check_declared_type(declared: str | None, data: bytes) -> None:
    """Refuse a probe declared as anything but JPEG or PNG, or as the one it is not: the
    bytes decide how it is decoded, and a part that claims to be something else is not a
    photo sent in good faith."""
    if declared in _UNDECLARED:
        return
    if declared not in _DECLARED_FORMAT:
        raise Refusal(
            Code.unsupported_media_type,
            f"The photo is declared as {declared}; only JPEG and PNG photos are searched.",
        )
    actual = sniff_format(data)
    if actual is not None and actual != _DECLARED_FORMAT[declared]:
        raise Refusal(
            Code.content_type_mismatch,
            f"The photo is declared as {declared} but its bytes are a {actual}.",
        )


def candidates_of(session: Session, search: Search) -> list[Candidate]:
    return [
        Candidate(rank=c.rank, ref=c.ref, photos=len(candidate_photos(session, c)))
        for c in search.candidates
    ]


@router.post(
    "/requests/{request_id}/searches",
    response_model=SearchResult,
    status_code=201,
    name="search",
)
def search(
    request_id: RowId,
    services: ServicesDep,
    session: SessionDep,
    operator: Annotated[Caller, Depends(require(Permission.search))],
    _one_each: Annotated[None, Depends(single_form_fields)],
    system: CallingSystem,
    probe: Annotated[UploadFile, File(description="JPEG or PNG photo of the face to search")],
    face_box: Annotated[
        str | None, Form(description="left,top,right,bottom of the face to use, when several")
    ] = None,
) -> SearchResult:
    """Search the gallery under an approved request: candidates for the examiners to compare,
    nearest first, as references to their photos. The request's authorisation is spent only
    by a search that ran."""
    settings = services.settings
    via = system.id if system else None
    with (
        metrics.search_outcome() as searched,
        trail.refusals_recorded(
            session, COMPONENT, "search", operator.actor, request_ref(request_id)
        ),
    ):
        services.throttle_search(operator.id)
        with session.begin():
            authorise_search(session, request_id, operator.id, settings.operator_course)
        # Read no more than one byte past the limit: enough for the decoder to refuse it.
        data = probe.file.read(settings.max_image_bytes + 1)
        check_declared_type(probe.content_type, data)
        template = services.encode_probe(data, parse_face_box(face_box))
        with session.begin():
            with metrics.INDEX_SECONDS.time():
                hits = services.gallery.search(session, template.descriptor, services.rule)
            recorded = record_search(
                session,
                request_id,
                Searcher(operator.id, via, settings.operator_course),
                ChosenBy(services.gallery.model_id, services.rule, services.operating_point_sha256),
                Probe(data, template.box),
                hits,
                services.keys,
                settings.examiners,
            )
            candidates = candidates_of(session, recorded)
        searched(bool(candidates))
    return SearchResult(
        search_id=recorded.id,
        request_id=request_id,
        examiners_required=recorded.examiners_required,
        candidates=candidates,
    )


Examiner = Annotated[Caller, Depends(require(Permission.examine))]
CandidateRef = Annotated[str, Path(max_length=32)]
PhotoNumber = Annotated[int, Path(ge=1, le=1000)]


def photo_response(jpeg: bytes) -> Response:
    """A face photo, re-encoded to its pixels: never cached, by the browser or anything
    between."""
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/searches/verification", response_model=VerificationQueue)
def verification_queue(session: SessionDep, examiner: Examiner) -> VerificationQueue:
    """Searches awaiting a second, blind examiner that the caller may verify."""
    with session.begin():
        return VerificationQueue(
            searches=[s.id for s in awaiting_verification(session, examiner.id)]
        )


def view_of(session: Session, search: Search, examiner: int) -> SearchView:
    return SearchView(
        search_id=search.id,
        request_id=search.request_id,
        examiners_required=search.examiners_required,
        candidates=candidates_of(session, search),
        examiner="operator" if examiner == search.operator_id else "verifier",
        examined=session.get(ExaminationRow, (search.id, examiner)) is not None,
        decision=search.decision,
    )


@router.get("/searches/{search_id}", response_model=SearchView)
def read_search(search_id: RowId, session: SessionDep, examiner: Examiner) -> SearchView:
    """The search as one of its examiners sees it: its candidates, whether they have
    concluded, the decision once made; never another examiner's conclusions."""
    with session.begin():
        return view_of(session, examined_by(session, search_id, examiner.id), examiner.id)


@router.get("/searches/{search_id}/probe", response_class=Response, name="search.probe")
def read_probe(
    search_id: RowId,
    services: ServicesDep,
    session: SessionDep,
    examiner: Examiner,
    framed: Annotated[
        bool, Query(description="the face searched with, framed as licence photos frame one")
    ] = False,
) -> Response:
    """The probe photo, for an examiner, while the search is undecided: as sent, or its face
    framed to compare with the enrolled photos at the same scale."""
    with trail.refusals_recorded(
        session, COMPONENT, "search.probe", examiner.actor, search_ref(search_id)
    ):
        with session.begin():
            probe = examiner_probe(session, search_id, examiner.id, services.keys)
    data, box = probe.data, probe.face_box
    return photo_response(framed_face(data, box) if framed else pixels_only(data))


@router.get(
    "/searches/{search_id}/candidates/{ref}/photos/{number}",
    response_class=Response,
    name="search.photo",
)
def read_candidate_photo(
    search_id: RowId,
    ref: CandidateRef,
    number: PhotoNumber,
    services: ServicesDep,
    session: SessionDep,
    examiner: Examiner,
) -> Response:
    """A candidate's enrolled photo (1: the one whose template matched), for an examiner,
    while the search is undecided; from the photo store, checked against its SHA-256."""
    store = services.settings.photo_store
    with trail.refusals_recorded(
        session, COMPONENT, "search.photo", examiner.actor, search_ref(search_id)
    ):
        with session.begin():
            data = examiner_photo(session, search_id, examiner.id, ref, number, store)
    return photo_response(pixels_only(data))


@router.post("/searches/{search_id}/verification", response_model=SearchView)
def verification(
    search_id: RowId, services: ServicesDep, session: SessionDep, examiner: Examiner
) -> SearchView:
    """A second trained operator takes on the search's blind verification."""
    course = services.settings.operator_course
    with trail.refusals_recorded(
        session, COMPONENT, "search.verification", examiner.actor, search_ref(search_id)
    ):
        with session.begin():
            taken = take_verification(session, search_id, examiner.id, course)
            return view_of(session, taken, examiner.id)


@router.post(
    "/searches/{search_id}/examination", response_model=ExaminationView, name="search.examination"
)
def examination(
    search_id: RowId,
    body: Examination,
    services: ServicesDep,
    session: SessionDep,
    examiner: Examiner,
) -> ExaminationView:
    """An examiner's conclusion on every candidate. When it completes the review and every
    examiner identified the same candidate, that person's five fields are released to the
    requesting agency (a disclosure) and, to the operator who searched, shown here once."""
    concluded = [(c.candidate, c.conclusion, c.basis) for c in body.conclusions]
    with trail.refusals_recorded(
        session, COMPONENT, "search.examination", examiner.actor, search_ref(search_id)
    ):
        with session.begin():
            done = examine(
                session, search_id, examiner.id, concluded, services.settings.operator_course
            )
            return ExaminationView(
                search_id=search_id,
                decision=done.search.decision,
                release=Release.model_validate(done.release) if done.release else None,
            )


@router.post("/searches/{search_id}/release", response_model=Release, name="search.release")
def release(search_id: RowId, session: SessionDep, operator: Examiner) -> Release:
    """The release a verifier's examination made, shown once to the operator who searched."""
    with trail.refusals_recorded(
        session, COMPONENT, "search.release", operator.actor, search_ref(search_id)
    ):
        with session.begin():
            return Release.model_validate(release_to_operator(session, search_id, operator.id))


@router.get("/searches/{search_id}/outcome", response_model=OutcomeView)
def outcome(
    search_id: RowId,
    session: SessionDep,
    system: Annotated[Caller, Depends(require(Permission.read_outcome))],
) -> OutcomeView:
    """A decided search's outcome for the request-review system that passed it on: the
    release, or none. It never sees a candidate."""
    with session.begin():
        searched, record = outcome_for_system(session, search_id, system.id)
        assert searched.decision is not None, "outcome_for_system() answers decided searches"
        return OutcomeView(
            search_id=search_id,
            request_id=searched.request_id,
            decision=searched.decision,
            release=Release.model_validate(record) if record is not None else None,
        )
