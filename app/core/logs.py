"""The service's own log, and the id that joins it to the audit log.

Every HTTP request gets an id made here, never taken from the caller (who could name another
request's id, or forge a log line with one). It is returned in the `X-Request-ID` header, put
on every log line written while the request runs, and recorded in each audit entry the
request writes: an auditor holding an entry finds the request's log lines, and the reverse.
"""

from __future__ import annotations

import logging
import secrets
from contextvars import ContextVar
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"

LogFormat = Literal["text", "json"]

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def begin_request() -> str:
    """A new id for the request this context serves."""
    request_id = secrets.token_hex(8)
    _request_id.set(request_id)
    return request_id


def current_request_id() -> str | None:
    """The id of the HTTP request being served, if any (none for a command or a timer)."""
    return _request_id.get()


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_format: LogFormat = "text", *, replace: bool = False) -> None:
    """Log to standard error, as text lines or as JSON lines (time, level, logger, message,
    request id, and what a line adds: a request's event, route, status and latency).
    `replace`: in place of what was configured before (the command line's text lines, set
    before the settings were read)."""
    handler = logging.StreamHandler()
    handler.addFilter(_WithRequestId())
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(_TEXT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=replace)
