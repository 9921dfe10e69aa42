"""The FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.config import Settings
from app.db import make_engine, migrate, session_factory
from app.deps import Services
from app.errors import install_error_handlers
from app.gallery import Gallery, GallerySpec
from app.routers import health, searches
from matcher import DlibEngine, Matcher

log = logging.getLogger(__name__)


def build_services(settings: Settings) -> Services:
    """Load the models, migrate the database and bring the index in step with it."""
    database = make_engine(settings.sqlalchemy_url)
    migrate(database)
    sessions = session_factory(database)
    engine = DlibEngine(settings.detect_max_side)
    matcher = Matcher(engine, settings.decode_limits, settings.quality_policy)
    gallery = Gallery(sessions, GallerySpec(settings.index_dir, engine.model_id, engine.dimension))
    gallery.current()
    return Services(settings, sessions, matcher, gallery)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings)
        yield

    app = FastAPI(
        title="facematch",
        description="Internal face match service of the licensing agency.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    if settings.dev_search_route:
        log.warning("the development search route is mounted: it has no access control")
        app.include_router(searches.router)
    return app
