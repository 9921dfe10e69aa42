"""How the console answers: Jinja2 pages with the headers every page carries (a strict
Content-Security-Policy: nothing but the application's own scripts, styles and images; no
framing, no caching, no referrer), and refusals as a page in plain words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.console.sessions import COOKIE, csrf_token
from app.core.refusals import Code

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(PAGE_HEADERS)
    return response


def go(path: str) -> RedirectResponse:
    """After a form: to the page that shows what it did (303: the browser GETs it)."""
    return RedirectResponse(path, status_code=303, headers=PAGE_HEADERS)


# What the sign-in page may say, by name: a link cannot put words of its own on it.
NOTICES = {
    "signed_out": "You have signed out.",
    "second_factor": "Your second factor is set up. Sign in with a code from it.",
    Code.console_signed_out.name: "Sign in to use the console.",
    Code.not_authenticated.name: "Sign in to use the console.",
    Code.console_locked.name: "Your session locked after a time without use, or reached its "
    "longest; sign in again.",
}


def refusal_page(request: Request, code: Code, message: str) -> Response:
    """A refusal on a console page: the sign-in page where the session is gone, else the
    refusal's sentence and code on a page of its own, with its status."""
    if code.name in NOTICES:
        return go(f"/console/sign-in?notice={code.name}")
    token = request.cookies.get(COOKIE)
    return page(
        request,
        "refused.html",
        code.status,
        code=code.name,
        message=message,
        signed_in=bool(token),
        csrf=csrf_token(token) if token else "",
    )
