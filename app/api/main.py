"""The FastAPI application: internal only, every route but health and sign-in behind a token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.api.handlers import install_error_handlers
from app.api.middleware import AccessLog, AuditScope, BodyLimit, InternalOnly
from app.api.routers import accounts, disclosures, health, login, oversight, requests, searches
from app.audit.anchors import Anchoring
from app.console import pages
from app.console.render import STATIC
from app.core.composition import anchor_sink, build_services, check
from app.core.settings import Settings


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """How `facematch serve` runs the application. uvicorn's own access log writes query
    strings, which may hold a licence number: the app writes its own, paths only. uvicorn
    would believe forwarding headers from loopback: the app reads them only from
    FACEMATCH_TRUSTED_PROXIES."""
    return uvicorn.Config(app, host=host, port=port, access_log=False, proxy_headers=False)


def create_app(settings: Settings | None = None, warm: bool = False) -> FastAPI:
    """The application; `warm` (as `facematch serve` asks) readies the probe workers at
    start-up. A configuration unsafe to serve with is refused here, before anything is
    built (StartupRefused)."""
    settings = settings or Settings()
    checked = check(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = app.state.services = build_services(settings, checked, warm)
        anchoring = Anchoring(
            services.sessions,
            services.audit_keys,
            anchor_sink(settings),
            settings.audit_anchor_interval_s,
        )
        anchoring.start()
        yield
        anchoring.stop()
        services.probes.close()

    docs = settings.api_docs
    app = FastAPI(
        title="facematch",
        description="Internal face match service of the licensing agency.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_error_handlers(app)

    for module in (health, login, accounts, requests, searches, disclosures, oversight, pages):
        app.include_router(module.router)
    # The console's own script and style sheet: nothing is loaded from anywhere else.
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console.static")
    # The last added runs first: the network check, the log, the body limit, the audit scope.
    app.add_middleware(AuditScope)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(AccessLog)
    app.add_middleware(InternalOnly, networks=settings.allowed_networks)
    if settings.trusted_proxies:
        # Outermost: the client a trusted proxy forwards for is the one the allow-list checks.
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=[str(n) for n in settings.trusted_proxies]
        )
    return app
