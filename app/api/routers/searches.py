"""The gated search: a trained operator, signed in with the second factor, searches under an
approved request; then confirms one candidate, or none, before anything is released."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from app.api.deps import Caller, CallingSystem, ServicesDep, SessionDep, require, single_form_fields
from app.api.schemas import RowId, problems
from app.audit import trail
from app.core.refusals import Code, Refusal
from app.gallery.release import Release
from app.requests.workflow import COMPONENT, request_ref
from app.searches.schemas import Candidate, DecisionView, SearchDecision, SearchResult
from app.searches.workflow import (
    ChosenBy,
    Searcher,
    authorise_search,
    decide,
    record_search,
    search_ref,
)
from auth import Permission
from matcher import Box, sniff_format

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
    """Search the gallery under an approved request: candidates for the operator's review,
    nearest first. The request's authorisation is spent only by a search that ran."""
    settings = services.settings
    via = system.id if system else None
    with trail.refusals_recorded(
        session, COMPONENT, "search", operator.actor, request_ref(request_id)
    ):
        services.throttle_search(operator.id)
        with session.begin():
            authorise_search(session, request_id, operator.id, settings.operator_course)
        # Read no more than one byte past the limit: enough for the decoder to refuse it.
        data = probe.file.read(settings.max_image_bytes + 1)
        check_declared_type(probe.content_type, data)
        template = services.encode_probe(data, parse_face_box(face_box))
        with session.begin():
            hits = services.gallery.search(session, template.descriptor, services.rule)
            recorded = record_search(
                session,
                request_id,
                Searcher(operator.id, via, settings.operator_course),
                ChosenBy(services.gallery.model_id, services.rule, services.operating_point_sha256),
                hashlib.sha256(data).hexdigest(),
                hits,
            )
    return SearchResult(
        search_id=recorded.id,
        request_id=request_id,
        candidates=[
            Candidate(rank=rank, **Release.model_validate(record).model_dump())
            for rank, (record, _) in enumerate(hits.matches, start=1)
        ],
    )


@router.post("/searches/{search_id}/decision", response_model=DecisionView, name="search.decision")
def decision(
    search_id: RowId,
    body: SearchDecision,
    session: SessionDep,
    operator: Annotated[Caller, Depends(require(Permission.decide))],
    system: CallingSystem,
) -> DecisionView:
    """The operator's human review of the candidates. Confirming one records a disclosure to
    the requesting agency and returns the release: that person's five fields, nothing more."""
    with trail.refusals_recorded(
        session, COMPONENT, "search.decision", operator.actor, search_ref(search_id)
    ):
        with session.begin():
            searched, record = decide(session, search_id, operator.id, body.confirmed_rank)
    assert searched.decision is not None, "decide() has just recorded the decision"
    return DecisionView(
        search_id=search_id,
        decision=searched.decision,
        release=Release.model_validate(record) if record is not None else None,
    )
