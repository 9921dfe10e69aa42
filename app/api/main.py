"""The FastAPI application: internal only, every route but health and sign-in behind a token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.api.handlers import install_error_handlers
from app.api.middleware import AccessLog, AuditScope, BodyLimit, InternalOnly
from app.api.routers import (
    accounts,
    disclosures,
    evaluations,
    health,
    login,
    monitoring,
    oversight,
    requests,
    searches,
)
from app.audit.anchors import Anchoring
from app.console import pages
from app.console.render import STATIC
from app.core import metrics
from app.core.composition import (
    anchor_sink,
    build_services,
    check,
    evaluation_runner,
    service_gauges,
)
from app.core.settings import Settings


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """How `facematch serve` runs the application. uvicorn's own access log writes query
    strings, which may hold a licence number: the app writes its own, paths only. uvicorn
    would believe forwarding headers from loopback: the app reads them only from
    FACEMATCH_TRUSTED_PROXIES. Its own lines go to the service's log, in its format
    (app.core.logs), not a configuration of uvicorn's."""
    return uvicorn.Config(
        app, host=host, port=port, access_log=False, proxy_headers=False, log_config=None
    )


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
        app.state.metrics = metrics.registry(service_gauges(services, anchoring))
        evaluations = app.state.evaluations = evaluation_runner(services)
        evaluations.start()
        yield
        evaluations.stop()
        anchoring.stop()
        services.probes.close()

    docs = settings.api_docs
    app = FastAPI(
        title="facematch",
        description="Internal face match service of the licensing agency.",
        version=metadata.version("facematch"),
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    install_error_handlers(app)

    routers = [health, login, accounts, requests, searches, disclosures, oversight, evaluations]
    for module in [*routers, monitoring, pages]:
        app.include_router(module.router)
    # The console's own script and style sheet: nothing is loaded from anywhere else.
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console.static")
    # The last added runs first: the request's id and log line (a client refused has both),
    # the network check, the body limit, the audit scope.
    app.add_middleware(AuditScope)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_bytes,
        larger={"/v1/evaluations": settings.evaluation_max_bytes},
    )
    app.add_middleware(InternalOnly, networks=settings.allowed_networks)
    app.add_middleware(AccessLog)
    if settings.trusted_proxies:
        # Outermost: the client a trusted proxy forwards for is the one the allow-list checks.
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=[str(n) for n in settings.trusted_proxies]
        )
    return app
