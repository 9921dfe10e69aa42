"""What a route needs, from the application's state."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.gallery import Gallery
from matcher import Box, FaceTemplate, Matcher


@dataclass
class Services:
    """Built once at start-up: loading the models and the index takes seconds."""

    settings: Settings
    sessions: sessionmaker[Session]
    matcher: Matcher
    gallery: Gallery
    # dlib's network keeps per-call state: one probe at a time through it.
    _matcher_lock: threading.Lock = field(default_factory=threading.Lock)

    def encode_probe(self, data: bytes, box: Box | None) -> FaceTemplate:
        with self._matcher_lock:
            return self.matcher.encode(data, box)


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_session(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


ServicesDep = Annotated[Services, Depends(get_services)]
SessionDep = Annotated[Session, Depends(get_session)]
