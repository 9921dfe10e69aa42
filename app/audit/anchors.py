"""Anchors: the audit log's head, signed with a key the database never holds and appended
outside it, to an append-only file that verification reads and, where an address is given,
to syslog too, which carries them off the machine.

Whoever can write the database can edit an entry and recompute the chain and the head, or
cut off the newest entries and move the head back; against the anchors both show
(`trail.verify`). Entries written after the newest anchor are vouched for by the chain
alone.

The service anchors the head at start-up unless the sink's newest anchor names it already,
every `audit_anchor_interval_s` when the head has moved, and at shutdown; `facematch audit
anchor` anchors it at once.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.keys import Anchor, AuditKeys
from app.audit.models import AuditHead

log = logging.getLogger(__name__)

# What an anchor's syslog message starts with; `grep` it from an export of the log, and the
# export verifies as an anchor file does.
SYSLOG_TAG = "facematch-audit-anchor: "


class AnchorSink(Protocol):
    def append(self, anchor: Anchor) -> None: ...

    def read(self) -> list[str]:
        """The anchors' lines, as `audit.verify` takes them; none where they cannot be read
        back from here."""
        ...


@dataclass(frozen=True)
class FileSink:
    """A file only ever appended to, one JSON line an anchor, readable by its owner only.

    Also reads an export of the syslog sink: a line holding SYSLOG_TAG is read from it on."""

    path: Path

    def append(self, anchor: Anchor) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{anchor.line()}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[str]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return [line.partition(SYSLOG_TAG)[2] or line for line in text.split("\n")]


@dataclass(frozen=True)
class SyslogSink:
    """Syslog at a socket path, or at (host, port) over UDP, with the authorisation facility."""

    address: str | tuple[str, int]

    def append(self, anchor: Anchor) -> None:
        handler = _RaisingSysLogHandler(self.address, SysLogHandler.LOG_AUTH)
        handler.ident, handler.append_nul = SYSLOG_TAG, False
        try:
            handler.emit(logging.makeLogRecord({"msg": anchor.line(), "levelname": "INFO"}))
        finally:
            handler.close()


@dataclass(frozen=True)
class ForwardedFile:
    """The anchor file, which verification reads, with each anchor sent to syslog as well,
    which takes it off the machine: a host's own file alone could be rewritten with the
    database by whoever holds the host."""

    file: FileSink
    syslog: SyslogSink

    def append(self, anchor: Anchor) -> None:
        self.file.append(anchor)
        self.syslog.append(anchor)

    def read(self) -> list[str]:
        return self.file.read()


class _RaisingSysLogHandler(SysLogHandler):
    """A handler whose failure to send reaches the caller, which retries, instead of being
    printed to stderr."""

    def handleError(self, record: logging.LogRecord) -> None:
        raise


def syslog_address(text: str) -> str | tuple[str, int]:
    """A socket path (from "/"), or host:port for UDP; ValueError if it is neither."""
    if text.startswith("/"):
        return text
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("a syslog address is a socket path or host:port")
    return host.strip("[]"), int(port)


def anchor_head(
    sessions: sessionmaker[Session],
    keys: AuditKeys,
    sink: AnchorSink,
    last: tuple[int, str] | None = None,
) -> Anchor | None:
    """Anchor the head; None, with nothing written, where the log is empty or the head is
    still at `last` (the entry number and hash anchored last)."""
    with sessions() as session:
        seq, entry_hash = session.execute(
            select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
        ).one()
    if seq == 0 or (seq, entry_hash) == last:
        return None
    anchor = keys.anchor(seq, entry_hash)
    sink.append(anchor)
    return anchor


def newest_anchor(sink: AnchorSink, keys: AuditKeys) -> Anchor | None:
    """The sink's newest anchor, where it can be read back and holds under a known key."""
    lines = [line for line in sink.read() if line.strip()]
    try:
        anchor = Anchor.parse(lines[-1]) if lines else None
    except ValueError:
        return None
    if anchor is None or not keys.vouches_for_anchor(anchor):
        return None
    return anchor


class Anchoring:
    """The service's anchoring: at start-up, then in a daemon thread every interval, and once
    more when stopped. A write that fails is logged and tried again at the next interval:
    the service serves on. `newest` is the newest anchor written or found, which the metrics
    show the age of."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        keys: AuditKeys,
        sink: AnchorSink,
        interval_s: float,
    ) -> None:
        self._sessions, self._keys, self._sink = sessions, keys, sink
        self._interval_s = interval_s
        self.newest: Anchor | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-anchoring", daemon=True)

    def start(self) -> None:
        """Anchor the head unless the sink's newest anchor names it, and start the thread."""
        try:
            self.newest = newest_anchor(self._sink, self._keys)
        except OSError as problem:
            log.error("the audit anchors could not be read back: %s", problem)
        self._anchor()
        self._thread.start()

    def stop(self) -> None:
        """End the thread, which anchors the head a last time."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self._anchor()
        self._anchor(again=True)

    def _anchor(self, again: bool = False) -> None:
        """Anchor the head unless the newest anchor names it already (`again`: even so)."""
        newest = self.newest
        last = None if again or newest is None else (newest.seq, newest.hash)
        try:
            anchor = anchor_head(self._sessions, self._keys, self._sink, last)
        except Exception as problem:  # whatever failed, it is retried, never fatal
            log.error("audit anchor not written: %s: %s", type(problem).__name__, problem)
            return
        if anchor is not None:
            self.newest = anchor
