"""The FastAPI application: internal only, every route but health and sign-in behind a token."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import faiss
import uvicorn
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.anchors import Anchoring
from app.audit import AuditKeys
from app.config import KeyMissing, Settings
from app.db import make_engine, migrate, session_factory
from app.deps import Services
from app.gallery import Gallery
from app.handlers import install_error_handlers
from app.middleware import AccessLog, AuditScope, BodyLimit, InternalOnly
from app.routers import accounts, disclosures, health, login, oversight, requests, searches
from auth import Throttle, TokenIssuer, development_key, signing_key_problem
from matcher import ProbeEncoder
from matcher.operating_point import OperatingPoint, OperatingPointError, load_operating_point

log = logging.getLogger(__name__)
access = logging.getLogger("app.access")


class StartupRefused(RuntimeError):
    """The configuration is unsafe to serve with."""


def signing_key(settings: Settings) -> str:
    """The configured token key; outside development, a missing or weak one stops start-up."""
    key = settings.jwt_key.get_secret_value() if settings.jwt_key else None
    problem = signing_key_problem(key)
    if problem is None:
        assert key is not None
        return key
    if settings.environment != "development":
        raise StartupRefused(f"refusing to start: {problem}")
    log.warning("development mode: %s; tokens are signed with a key made up for this run", problem)
    return development_key()


def allowed_networks(settings: Settings) -> None:
    """Outside development, an allow-list that lets in every address stops start-up: the
    service is internal only."""
    everyone = [n for n in settings.allowed_networks if n.prefixlen == 0]
    if everyone and settings.environment != "development":
        raise StartupRefused(
            f"refusing to start: FACEMATCH_ALLOWED_NETWORKS admits every address ({everyone[0]}); "
            "list the agency's networks"
        )


def template_keys(settings: Settings) -> None:
    """Outside development, no template key stops start-up: templates are kept sealed."""
    try:
        settings.template_keys
    except KeyMissing as problem:
        raise StartupRefused(f"refusing to start: {problem}") from None


def anchor_keys(settings: Settings) -> AuditKeys:
    """Outside development, no anchor key stops start-up: the audit log would be anchored
    nowhere outside the database, whose writers could then rewrite it unseen."""
    keys = settings.audit_keys
    if keys.anchoring is None:
        raise StartupRefused(
            "refusing to start: no audit anchor key is configured (FACEMATCH_AUDIT_ANCHOR_KEY; "
            "`facematch audit new-key` makes one): the audit log is anchored outside the database"
        )
    return keys


def operating_point(settings: Settings) -> tuple[OperatingPoint, str]:
    """The configured operating point and its file's SHA-256; one that cannot be read, or
    that was calibrated for another model, stops start-up: searches would use a threshold
    measured on other templates."""
    path = settings.operating_point_file
    try:
        point, digest = load_operating_point(path)
    except OperatingPointError as problem:
        raise StartupRefused(f"refusing to start: {problem}") from None
    if not point.fits(settings.engine_spec):
        raise StartupRefused(
            f"refusing to start: {path} is for {point.model_id} ({point.metric}), "
            f"not the configured engine's {settings.engine_spec.model_id}"
        )
    return point, digest


def build_services(
    settings: Settings, key: str, calibrated: tuple[OperatingPoint, str], warm: bool
) -> Services:
    """Migrate the database, bring the index in step with it, and make the probe workers;
    with `warm`, they start and load their models in the background now, not at the first
    search."""
    tokens = TokenIssuer(key, timedelta(minutes=settings.token_minutes))
    database = make_engine(settings.sqlalchemy_url)
    migrate(database)
    sessions = session_factory(database)
    # One thread per index search: each search runs in its own request thread, and exact
    # search of one probe is fastest on one thread (benchmarks/search_speed.py).
    faiss.omp_set_num_threads(1)
    gallery = Gallery(sessions, settings.gallery_spec)
    gallery.current()
    probes = ProbeEncoder(settings.encoder(), settings.search_workers, settings.probe_timeout_s)
    if warm:
        threading.Thread(target=probes.warm, name="warm-probe-workers", daemon=True).start()
    return Services(
        settings,
        sessions,
        probes,
        gallery,
        tokens,
        settings.account_policy,
        settings.request_policy,
        *calibrated,
        login_throttle=Throttle(settings.login_rate_limit),
        search_throttle=Throttle(settings.search_rate_limit),
    )


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """How `facematch serve` runs the application. uvicorn's own access log writes query
    strings, which may hold a licence number: the app writes its own, paths only. uvicorn
    would believe forwarding headers from loopback: the app reads them only from
    FACEMATCH_TRUSTED_PROXIES."""
    return uvicorn.Config(app, host=host, port=port, access_log=False, proxy_headers=False)


def create_app(settings: Settings | None = None, warm: bool = False) -> FastAPI:
    """The application; `warm` (as `facematch serve` asks) readies the probe workers at
    start-up."""
    settings = settings or Settings()
    # Before anything else: an app that could not start is refused.
    key = signing_key(settings)
    allowed_networks(settings)
    template_keys(settings)
    audit_keys = anchor_keys(settings)
    calibrated = operating_point(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = app.state.services = build_services(settings, key, calibrated, warm)
        anchoring = Anchoring(
            services.sessions, audit_keys, settings.anchor_sink, settings.audit_anchor_interval_s
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

    for module in (health, login, accounts, requests, searches, disclosures, oversight):
        app.include_router(module.router)
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
