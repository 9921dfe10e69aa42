"""What every request passes before routing: its id and the access log, the network check,
the body limit. Plain ASGI, not Starlette's BaseHTTPMiddleware: that one runs the application
in a task group, which would wrap the body limit's refusal into an exception group and hide
it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.handlers import problem_response
from app.audit import trail
from app.core.logs import REQUEST_ID_HEADER, begin_request
from app.core.refusals import Code

access = logging.getLogger("app.access")
_HEADER = REQUEST_ID_HEADER.lower().encode()


class InternalOnly:
    """Refuse clients outside the configured networks before anything else runs."""

    def __init__(self, app: ASGIApp, networks: Sequence[IPv4Network | IPv6Network]) -> None:
        self.app, self.networks = app, networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(scope.get("client")):
            refusal = problem_response(
                Code.client_not_allowed,
                "This service is reachable only from the agency's network.",
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, client: tuple[str, int] | None) -> bool:
        try:
            address = ip_address(client[0]) if client else None
        except ValueError:
            return False
        return address is not None and any(address in n for n in self.networks)


class BodyLimit:
    """Refuse a body of more than `limit` bytes (or, on a path of `larger`, its own limit)
    with 413 request_too_large.

    A declared Content-Length over the limit is refused before the application runs. A body
    sent in chunks is counted as it arrives, and the chunk that passes the limit raises the
    413 where the application reads it (FastAPI passes an HTTPException raised there on
    unchanged), so nothing past the limit is read or kept.
    """

    def __init__(self, app: ASGIApp, limit: int, larger: Mapping[str, int] | None = None) -> None:
        self.app, self.limit, self.larger = app, limit, dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.limit)
        message = f"The request is larger than the limit of {limit} bytes."
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await problem_response(Code.request_too_large, message)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message_in = await receive()
            if message_in["type"] == "http.request":
                received += len(message_in.get("body", b""))
                if received > limit:
                    raise HTTPException(413, message)
            return message_in

        await self.app(scope, counted, send)


def printable(path: str) -> str:
    """A path as the log may show it: control characters (a %0A that would start a forged
    line), non-ASCII and backslashes escaped."""
    return path.encode("unicode_escape").decode("ascii")


class AccessLog:
    """Give the request its id (app.core.logs), return it in a header, and write one line per
    request: path only, since a query string may hold a licence number; with the route it
    matched, its status and how long it took until the answer started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = begin_request().encode()
        started = time.perf_counter()

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0].lower() != _HEADER),
                    (_HEADER, request_id),
                ]
                latency_ms = round((time.perf_counter() - started) * 1e3, 1)
                status = message["status"]
                access.info(
                    "%s %s %d %.1f ms",
                    scope["method"],
                    printable(scope["path"]),
                    status,
                    latency_ms,
                    extra={
                        "event": "request",
                        "method": scope["method"],
                        "route": getattr(scope.get("route"), "path", None),
                        "status": status,
                        "latency_ms": latency_ms,
                    },
                )
            await send(message)

        await self.app(scope, receive, logged)


STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditScope:
    """Open an audit scope for each state-changing request (app.audit.Scope)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in STATE_CHANGING:
            trail.open_scope()
        await self.app(scope, receive, send)
