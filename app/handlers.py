"""Every refusal the API makes, as a 4xx with a stable code and a sentence (schemas.Problem)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app import audit
from app.errors import ApiError
from app.schemas import FaceBox, Problem
from matcher import FaceRefusal

log = logging.getLogger(__name__)

# Refusals raised as Starlette's HTTPException: the code, and a sentence ({} takes the
# exception's own detail).
_HTTP_CODES: dict[int, tuple[str, str]] = {
    # A body the form parser cannot read: too many fields, a part over its size limit,
    # broken multipart framing.
    400: ("malformed_request", "The request's body could not be read: {}."),
    404: ("not_found", "There is no such resource."),
    405: ("method_not_allowed", "That method is not allowed on this resource."),
    413: ("request_too_large", "{}"),  # app.middleware.BodyLimit
}


def _problem(status: int, problem: Problem) -> JSONResponse:
    return JSONResponse(problem.model_dump(exclude_none=True), status_code=status)


def problem_response(status: int, code: str, message: str) -> JSONResponse:
    return _problem(status, Problem(code=code, message=message))


def _record_refusal(request: Request, code: str) -> None:
    """A state-changing request refused before its route wrote its entry (no valid token, an
    invalid body, a refusal raised where no entry was written): write the one entry here,
    under the route's name as its event."""
    scope = audit.current_scope()
    if scope is None or scope.written:
        return
    route = request.scope.get("route")
    event = getattr(route, "name", None) or f"{request.method} {request.url.path}"
    with request.app.state.services.sessions.begin() as session:
        audit.record(session, "access", event, scope.actor, f"refused:{code}")


async def _refused(request: Request, status: int, problem: Problem) -> JSONResponse:
    await run_in_threadpool(_record_refusal, request, problem.code)
    return _problem(status, problem)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        problem = Problem(code=error.code, message=error.message)
        response = await _refused(request, error.status, problem)
        if error.retry_after_s is not None:
            response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.exception_handler(FaceRefusal)
    async def _face_refusal(request: Request, refusal: FaceRefusal) -> JSONResponse:
        faces = [FaceBox(**vars(box)) for box in refusal.faces] or None
        status = 413 if refusal.too_large else 422
        problem = Problem(code=refusal.code, message=refusal.message, faces=faces)
        return await _refused(request, status, problem)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        message = f"The request is not valid: {where}."
        return await _refused(request, 422, Problem(code="invalid_request", message=message))

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, error: IntegrityError) -> JSONResponse:
        # Two changes raced and the database kept one; the other's transaction rolled back.
        log.info("integrity conflict: %s", type(error.orig).__name__)
        message = "Someone else changed this at the same time; reload and try again."
        return await _refused(request, 409, Problem(code="conflict", message=message))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        status = error.status_code if error.status_code in _HTTP_CODES else 400
        code, sentence = _HTTP_CODES[status]
        detail = str(error.detail).rstrip(".")
        return await _refused(request, status, Problem(code=code, message=sentence.format(detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.error("unexpected %s", type(error).__name__)
        return _problem(
            500,
            Problem(code="internal_error", message="The service could not complete the request."),
        )
