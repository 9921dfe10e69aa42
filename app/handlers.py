"""Every refusal the API makes, as a 4xx with a stable code and a sentence (schemas.Problem)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from app.errors import ApiError
from app.schemas import FaceBox, Problem
from matcher import FaceRefusal

log = logging.getLogger(__name__)

# Refusals raised as Starlette's HTTPException; None: the exception's own sentence.
_HTTP_CODES: dict[int, tuple[str, str | None]] = {
    404: ("not_found", "There is no such resource."),
    405: ("method_not_allowed", "That method is not allowed on this resource."),
    413: ("request_too_large", None),  # app.middleware.BodyLimit
}


def _problem(status: int, problem: Problem) -> JSONResponse:
    return JSONResponse(problem.model_dump(exclude_none=True), status_code=status)


def problem_response(status: int, code: str, message: str) -> JSONResponse:
    return _problem(status, Problem(code=code, message=message))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        response = problem_response(error.status, error.code, error.message)
        if error.retry_after_s is not None:
            response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.exception_handler(FaceRefusal)
    async def _face_refusal(_: Request, refusal: FaceRefusal) -> JSONResponse:
        faces = [FaceBox(**vars(box)) for box in refusal.faces] or None
        status = 413 if refusal.too_large else 422
        return _problem(status, Problem(code=refusal.code, message=refusal.message, faces=faces))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        return _problem(
            422, Problem(code="invalid_request", message=f"The request is not valid: {where}.")
        )

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, error: IntegrityError) -> JSONResponse:
        # Two changes raced and the database kept one; the other's transaction rolled back.
        log.info("integrity conflict: %s", type(error.orig).__name__)
        return problem_response(
            409, "conflict", "Someone else changed this at the same time; reload and try again."
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, error: HTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(error.status_code, ("http_error", None))
        return _problem(error.status_code, Problem(code=code, message=message or str(error.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.error("unexpected %s", type(error).__name__)
        return _problem(
            500,
            Problem(code="internal_error", message="The service could not complete the request."),
        )
