"""The development search route: no access control, so mounted only when
FACEMATCH_DEV_SEARCH_ROUTE is on. The gated search of the governance issue replaces it."""

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from app.deps import ServicesDep, SessionDep
from app.errors import ApiError
from app.schemas import Candidate, Problem, Release, SearchResult
from matcher import Box

router = APIRouter(prefix="/v1", tags=["searches"])


def parse_face_box(text: str | None) -> Box | None:
    if text is None or not text.strip():
        return None
    try:
        left, top, right, bottom = (int(part) for part in text.split(","))
    except ValueError:
        raise ApiError(
            422, "invalid_face_box", "face_box must be four integers: left,top,right,bottom."
        ) from None
    if right <= left or bottom <= top:
        raise ApiError(422, "invalid_face_box", "face_box must have right > left and bottom > top.")
    return Box(left, top, right, bottom)


@router.post(
    "/searches",
    response_model=SearchResult,
    responses={413: {"model": Problem}, 422: {"model": Problem}},
)
def search(
    services: ServicesDep,
    session: SessionDep,
    probe: Annotated[UploadFile, File(description="JPEG or PNG photo of the face to search")],
    face_box: Annotated[
        str | None, Form(description="left,top,right,bottom of the face to use, when several")
    ] = None,
) -> SearchResult:
    """Search the gallery with one probe photo: candidates for human review, nearest first."""
    # Read no more than one byte past the limit: enough for the decoder to refuse the photo.
    data = probe.file.read(services.settings.max_image_bytes + 1)
    template = services.encode_probe(data, parse_face_box(face_box))
    records = services.gallery.search(
        session,
        template.descriptor,
        services.settings.threshold,
        services.settings.max_candidates,
    )
    return SearchResult(
        candidates=[
            Candidate(rank=rank, **Release.model_validate(record).model_dump())
            for rank, record in enumerate(records, start=1)
        ]
    )
