"""Every refusal the API makes, answered in one place: the catalogue's status, its code and a
sentence (app.api.schemas.Problem). Nothing else in the service knows an HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app.api.schemas import FaceBox, Problem
from app.audit import trail
from app.console.render import refusal_page
from app.core import metrics
from app.core.refusals import Code, Refusal
from matcher import FaceRefusal

log = logging.getLogger(__name__)

# The console's pages answer a refusal with a page, not JSON.
CONSOLE = "/console"

# Refusals raised as Starlette's HTTPException, by status: the code, and a sentence ({} takes
# the exception's own detail). Any other status answers as a body that could not be read.
_HTTP_CODES: dict[int, tuple[Code, str]] = {
    # A body the form parser cannot read: too many fields, a part over its size limit,
    # broken multipart framing.
    400: (Code.malformed_request, "The request's body could not be read: {}."),
    404: (Code.not_found, "There is no such resource."),
    405: (Code.method_not_allowed, "That method is not allowed on this resource."),
    413: (Code.request_too_large, "{}"),  # app.api.middleware.BodyLimit
}
_RACE_LOST = "Someone else changed this at the same time; reload and try again."


# What says the database itself cannot do it now: PostgreSQL's SQLSTATE classes of a lost
# connection, exhausted resources, an operator's intervention, a system error and a lock
# not available; SQLite's busy, full, read-only, I/O and cannot-open results.
_DATABASE_UNAVAILABLE = (
    "08",
    "53",
    "55",
    "57",
    "58",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
)


def _database_code(error: DBAPIError) -> str:
    """The database's own code for the error: PostgreSQL's SQLSTATE, SQLite's result name."""
    driver = error.orig
    return str(getattr(driver, "sqlstate", None) or getattr(driver, "sqlite_errorname", ""))


def problem_response(code: Code, message: str, faces: list[FaceBox] | None = None) -> JSONResponse:
    """A refusal as the API answers it, counted (facematch_refusals_total)."""
    metrics.REFUSALS.labels(code.name).inc()
    problem = Problem(code=code.name, message=message, faces=faces)
    return JSONResponse(problem.model_dump(exclude_none=True), status_code=code.status)


def _record_refusal(request: Request, code: Code) -> None:
    """A state-changing request refused before its route wrote its entry (no valid token, an
    invalid body, a refusal raised where no entry was written): write the one entry here,
    under the route's name as its event."""
    scope = trail.current_scope()
    if scope is None or scope.written:
        return
    route = request.scope.get("route")
    # An unknown path's own text, cut to what the log's event column holds.
    event = getattr(route, "name", None) or f"{request.method} {request.url.path}"[:64]
    with request.app.state.services.sessions.begin() as session:
        trail.record(session, "access", event, scope.actor, f"refused:{code}")


async def _refused(
    request: Request, code: Code, message: str, faces: list[FaceBox] | None = None
) -> Response:
    # The database failed: the refusal's own entry would only fail to be written again.
    if code not in (Code.audit_unavailable, Code.database_unavailable):
        try:
            await run_in_threadpool(_record_refusal, request, code)
        except Refusal as unwritten:  # the refusal's own entry could not be written: say so
            code, message, faces = unwritten.code, unwritten.message, None
    if request.url.path.startswith(CONSOLE):
        metrics.REFUSALS.labels(code.name).inc()
        return refusal_page(request, code, message)
    return problem_response(code, message, faces)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def _refusal(request: Request, refusal: Refusal) -> Response:
        response = await _refused(request, refusal.code, refusal.message)
        if refusal.retry_after_s is not None:
            response.headers["Retry-After"] = str(refusal.retry_after_s)
        return response

    @app.exception_handler(FaceRefusal)
    async def _face_refusal(request: Request, refusal: FaceRefusal) -> Response:
        faces = [FaceBox(**vars(box)) for box in refusal.faces] or None
        return await _refused(request, Code[refusal.code], refusal.message, faces)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        where = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        )
        return await _refused(request, Code.invalid_request, f"The request is not valid: {where}.")

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, error: IntegrityError) -> Response:
        # Two changes raced and the database kept one; the other's transaction rolled back.
        log.info("integrity conflict: %s", type(error.orig).__name__)
        return await _refused(request, Code.conflict, _RACE_LOST)

    @app.exception_handler(OperationalError)
    async def _database_failed(request: Request, error: OperationalError) -> Response:
        # The transaction rolled back, the change and its audit entry with it. Logged by the
        # database's own code: the error's text holds the statement's values.
        code = _database_code(error)
        log.error("database failed the request: %s %s", type(error.orig).__name__, code)
        if code.startswith("40"):  # a deadlock or serialisation failure: a race, lost
            return await _refused(request, Code.conflict, _RACE_LOST)
        if not code.startswith(_DATABASE_UNAVAILABLE):  # a fault in the service's own SQL
            return _unexpected_error(error)
        message = (
            "Nothing was changed: the database could not complete the request. Try again later."
        )
        return await _refused(request, Code.database_unavailable, message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        code, sentence = _HTTP_CODES.get(error.status_code, _HTTP_CODES[400])
        detail = str(error.detail).rstrip(".")
        return await _refused(request, code, sentence.format(detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        return _unexpected_error(error)


def _unexpected_error(error: Exception) -> JSONResponse:
    log.error("unexpected %s", type(error).__name__)
    problem = Problem(code="internal_error", message="The service could not complete the request.")
    return JSONResponse(problem.model_dump(exclude_none=True), status_code=500)
