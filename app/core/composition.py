"""The composition root: the one place that turns the settings (plain data) into the keys,
policies and services the rest of the service runs on. The API builds its services here
once, at start-up; each command builds what it needs here once per run.

Nothing else reads a key from the settings or makes a development key file.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, collapse_addresses
from typing import get_args

import faiss
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.service import AccountPolicy
from app.audit import trail
from app.audit.anchors import (
    Anchoring,
    AnchorSink,
    FileSink,
    ForwardedFile,
    SyslogSink,
    syslog_address,
)
from app.audit.keys import AuditKeys, read_signing_key, read_verify_key
from app.audit.retention import RetentionPolicy
from app.core import metrics
from app.core.database import make_engine, migrate, session_factory
from app.core.refusals import Code, Refusal
from app.core.settings import Settings
from app.evaluations.runner import EvaluationRunner, Measuring
from app.gallery.service import Gallery, GallerySpec
from app.gallery.store import template_count
from app.requests.agencies import ImmigrationAuthorities
from app.requests.citations import StatuteList
from app.requests.screening import RequestPolicy
from app.requests.workflow import ApprovalPolicy
from auth import LockoutPolicy, Throttle, TokenIssuer, development_key, signing_key_problem
from index import Layout, LayoutPolicy, TemplateKeys
from index.sealing import key_file
from matcher import (
    ENGINES,
    Box,
    DecodeLimits,
    EncoderConfig,
    FaceChoice,
    FaceTemplate,
    GalleryTemplates,
    MatchRule,
    PipelineBusy,
    PipelineStarting,
    PipelineTimeout,
    ProbeEncoder,
    QualityPolicy,
)
from matcher.operating_point import OperatingPoint, OperatingPointError, load_operating_point

log = logging.getLogger(__name__)


class KeyMissing(ValueError):
    """A key the configuration must give, outside development mode, is not given."""


class StartupRefused(RuntimeError):
    """The configuration is unsafe to serve with."""


# Keys


def template_keys(settings: Settings) -> TemplateKeys:
    """The keys templates, second-factor seeds and court orders are sealed with; outside
    development mode, KeyMissing when none is configured."""
    earlier = [key.get_secret_value() for key in settings.earlier_template_keys]
    if settings.template_key is not None:
        return TemplateKeys.from_text(settings.template_key.get_secret_value(), earlier)
    if settings.environment != "development":
        raise KeyMissing(
            "no template key is configured (FACEMATCH_TEMPLATE_KEY; `facematch keys new` "
            "makes one): face templates are kept only encrypted"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    development = key_file(settings.data_dir / "development-template.key")
    return TemplateKeys.from_text(development, earlier)


def _audit_key(
    settings: Settings, key: SecretStr | None, development_file: str
) -> Ed25519PrivateKey | None:
    if key is not None:
        text = key.get_secret_value()
    elif settings.environment == "development":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        text = key_file(settings.data_dir / development_file)
    else:
        return None
    return read_signing_key(text)


def audit_keys(settings: Settings) -> AuditKeys:
    """The keys audit checkpoints and anchors are signed and checked with. Outside
    development mode with no signing key configured, they only check checkpoints: nothing
    can be purged; with no anchor key, nothing can be anchored."""
    return AuditKeys(
        _audit_key(settings, settings.audit_signing_key, "development-audit.key"),
        [read_verify_key(key) for key in settings.audit_verify_keys],
        _audit_key(settings, settings.audit_anchor_key, "development-anchor.key"),
        [read_verify_key(key) for key in settings.audit_anchor_verify_keys],
    )


def anchor_sink(settings: Settings) -> AnchorSink:
    """The anchor file, and syslog beside it where an address is given."""
    file = FileSink(settings.audit_anchor_path)
    if settings.audit_anchor_syslog_address is None:
        return file
    return ForwardedFile(file, SyslogSink(syslog_address(settings.audit_anchor_syslog_address)))


# Policies


def request_policy(settings: Settings) -> RequestPolicy:
    return RequestPolicy(
        qualifying_crimes=frozenset(settings.qualifying_crimes),
        immigration_statutes=StatuteList(settings.immigration_statutes),
        immigration_related_statutes=StatuteList(settings.immigration_related_statutes),
        immigration_authorities=ImmigrationAuthorities(
            settings.immigration_agencies, settings.immigration_agency_names
        ),
        court_order_max_age=timedelta(days=settings.court_order_max_age_days),
    )


def approval_policy(settings: Settings) -> ApprovalPolicy:
    return ApprovalPolicy(settings.authorised_searches, timedelta(days=settings.authorisation_days))


def account_policy(settings: Settings, keys: TemplateKeys | None = None) -> AccountPolicy:
    return AccountPolicy(
        LockoutPolicy(settings.lockout_failures, timedelta(minutes=settings.lockout_minutes)),
        timedelta(hours=settings.activation_hours),
        settings.training_max_validity_days,
        keys or template_keys(settings),
    )


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        candidates=timedelta(days=settings.candidate_retention_days),
        probe_hashes=timedelta(days=settings.probe_hash_retention_days),
        audit=timedelta(days=settings.audit_retention_days),
    )


def index_layouts(settings: Settings) -> LayoutPolicy:
    return LayoutPolicy(
        settings.index_exact_below,
        Layout("shortlist", settings.index_code_bytes, settings.index_shortlist_factor),
    )


def gallery_spec(settings: Settings, keys: TemplateKeys | None = None) -> GallerySpec:
    spec = settings.engine_spec
    return GallerySpec(
        settings.index_dir,
        spec.model_id,
        spec.dimension,
        spec.metric,
        keys or template_keys(settings),
        index_layouts(settings),
        settings.gallery_templates,
    )


def every_gallery_spec(settings: Settings, keys: TemplateKeys) -> list[GallerySpec]:
    """A spec for each engine and kind of template, each with its own saved index: what a
    key rotation re-seals and a purge brings in step, whichever the service searches."""
    return [
        gallery_spec(settings.model_copy(update={"engine": e, "gallery_templates": k}), keys)
        for e, k in itertools.product(ENGINES, get_args(GalleryTemplates))
    ]


def quality_policy(settings: Settings) -> QualityPolicy:
    """The engine's quality limits, with those the settings give instead."""
    limits = {
        name: getattr(settings, name)
        for name in QualityPolicy.__dataclass_fields__
        if getattr(settings, name) is not None
    }
    return replace(settings.engine_spec.quality, **limits)


def encoder(settings: Settings, choice: FaceChoice = "only") -> EncoderConfig:
    """What an encoding worker needs to encode photos as this service would."""
    limits = DecodeLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    return EncoderConfig(
        settings.engine, settings.detect_max_side, limits, quality_policy(settings), choice
    )


# The service


@dataclass
class Services:
    """Built once at start-up: loading the models and the index takes seconds."""

    settings: Settings
    sessions: sessionmaker[Session]
    probes: ProbeEncoder
    gallery: Gallery
    tokens: TokenIssuer
    keys: TemplateKeys
    audit_keys: AuditKeys
    accounts: AccountPolicy
    requests: RequestPolicy
    approvals: ApprovalPolicy
    operating_point: OperatingPoint
    # The SHA-256 of the operating point file: every search records it.
    operating_point_sha256: str
    login_throttle: Throttle
    search_throttle: Throttle

    @property
    def rule(self) -> MatchRule:
        settings = self.settings
        return MatchRule(
            self.operating_point.threshold, settings.max_candidates, settings.match_margin
        )

    def throttle_search(self, operator: int) -> None:
        """Count a search attempt by the operator; refused once they are over the limit."""
        wait = self.search_throttle.wait_s(operator)
        if wait is not None:
            raise Refusal(
                Code.too_many_searches,
                f"More searches than the limit of {self.settings.search_rate_limit} were tried "
                f"from this account; try again in {wait} s.",
                retry_after_s=wait,
            )

    def encode_probe(self, data: bytes, box: Box | None) -> FaceTemplate:
        try:
            with metrics.PROBE_SECONDS.time():
                return self.probes.encode(data, box)
        except PipelineBusy:
            raise Refusal(
                Code.face_matcher_busy,
                "The face matcher is busy with other searches; try again in a few seconds.",
                retry_after_s=5,
            ) from None
        except PipelineStarting:
            raise Refusal(
                Code.face_matcher_starting,
                "The face matcher is starting; try again in a few seconds.",
                retry_after_s=10,
            ) from None
        except PipelineTimeout:
            raise Refusal(
                Code.photo_too_slow,
                f"The photo took longer than {self.probes.timeout_s:g} s to process; "
                "send a smaller or more ordinary photo.",
            ) from None


@dataclass(frozen=True)
class Checked:
    """What start-up checked before anything was built: a service with these may start."""

    token_key: str
    keys: TemplateKeys
    audit_keys: AuditKeys
    operating_point: OperatingPoint
    operating_point_sha256: str


def _token_key(settings: Settings) -> str:
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


def _every_address(networks: Sequence[IPv4Network | IPv6Network]) -> str | None:
    """The whole address space the networks cover between them, if they do ("0.0.0.0/1" and
    "128.0.0.0/1" are every IPv4 address too)."""
    for version in (4, 6):
        mine = [n for n in networks if n.version == version]
        whole = [n for n in collapse_addresses(mine) if n.prefixlen == 0]  # type: ignore[type-var]
        if whole:
            return str(whole[0])
    return None


def configured_operating_point(settings: Settings) -> tuple[OperatingPoint, str]:
    """The operating point the settings name, and its SHA-256; OperatingPointError where it
    cannot be read, or was calibrated for another model or kind of template (searches would
    use a threshold measured on other templates)."""
    path = settings.operating_point_file
    point, digest = load_operating_point(path)
    if not point.fits(settings.engine_spec):
        raise OperatingPointError(
            f"{path} is for {point.model_id} ({point.metric}), "
            f"not the configured engine's {settings.engine_spec.model_id}"
        )
    if point.gallery_templates != settings.gallery_templates:
        raise OperatingPointError(
            f"{path} was calibrated for {point.gallery_templates} "
            f"templates, and FACEMATCH_GALLERY_TEMPLATES is {settings.gallery_templates}"
        )
    return point, digest


def check(settings: Settings) -> Checked:
    """Refuse to serve with what is unsafe: outside development, a missing or weak token key,
    an allow-list admitting every address, no template key, no anchor key (the audit log would
    be anchored nowhere its database's writers cannot reach); anywhere, an operating point
    that cannot be read or was calibrated for another model (searches would use a threshold
    measured on other templates)."""
    token_key = _token_key(settings)
    if settings.environment != "development":
        for name, networks in (
            ("FACEMATCH_ALLOWED_NETWORKS", settings.allowed_networks),
            ("FACEMATCH_TRUSTED_PROXIES", settings.trusted_proxies),
        ):
            if _every_address(networks):
                raise StartupRefused(
                    f"refusing to start: {name} admits every address ({_every_address(networks)}); "
                    "list the agency's networks and proxies"
                )
    try:
        keys = template_keys(settings)
    except KeyMissing as problem:
        raise StartupRefused(f"refusing to start: {problem}") from None
    audit = audit_keys(settings)
    if audit.anchoring is None:
        raise StartupRefused(
            "refusing to start: no audit anchor key is configured (FACEMATCH_AUDIT_ANCHOR_KEY; "
            "`facematch audit new-key` makes one): the audit log is anchored outside the database"
        )
    try:
        point, digest = configured_operating_point(settings)
    except OperatingPointError as problem:
        raise StartupRefused(f"refusing to start: {problem}") from None
    return Checked(token_key, keys, audit, point, digest)


def build_services(settings: Settings, checked: Checked, warm: bool) -> Services:
    """Migrate the database, bring the index in step with it, and make the probe workers;
    with `warm`, they start and load their models in the background now, not at the first
    search."""
    tokens = TokenIssuer(checked.token_key, timedelta(minutes=settings.token_minutes))
    database = make_engine(settings.sqlalchemy_url)
    migrate(database)
    sessions = session_factory(database)
    # One thread per index search: each search runs in its own request thread, and exact
    # search of one probe is fastest on one thread (benchmarks/search_speed.py).
    faiss.omp_set_num_threads(1)
    gallery = Gallery(sessions, gallery_spec(settings, checked.keys))
    gallery.current()
    probes = ProbeEncoder(encoder(settings), settings.search_workers, settings.probe_timeout_s)
    if warm:
        threading.Thread(target=probes.warm, name="warm-probe-workers", daemon=True).start()
    return Services(
        settings=settings,
        sessions=sessions,
        probes=probes,
        gallery=gallery,
        tokens=tokens,
        keys=checked.keys,
        audit_keys=checked.audit_keys,
        accounts=account_policy(settings, checked.keys),
        requests=request_policy(settings),
        approvals=approval_policy(settings),
        operating_point=checked.operating_point,
        operating_point_sha256=checked.operating_point_sha256,
        login_throttle=Throttle(settings.login_rate_limit),
        search_throttle=Throttle(settings.search_rate_limit),
    )


def service_gauges(services: Services, anchoring: Anchoring) -> list[metrics.Gauge]:
    """What the metrics read of the service's state at each scrape: the gallery of every
    engine and kind in the database, how far the index searched is behind it, the probe
    workers, and the audit log's newest anchor."""
    specs = every_gallery_spec(services.settings, services.keys)
    engine = services.settings.engine

    def templates() -> list[tuple[tuple[str, ...], float]]:
        with services.sessions() as session:
            return [
                (
                    (spec.model_id, spec.templates),
                    template_count(session, spec.model_id, spec.templates),
                )
                for spec in specs
            ]

    def anchor_age() -> list[tuple[tuple[str, ...], float]]:
        newest = anchoring.newest
        age = (datetime.now(UTC) - newest.at).total_seconds() if newest is not None else None
        return [] if age is None else [((), age)]

    def unanchored() -> list[tuple[tuple[str, ...], float]]:
        with services.sessions() as session:
            head = trail.head_seq(session)
        newest = anchoring.newest
        return [((), head - (newest.seq if newest is not None else 0))]

    probes = services.probes
    return [
        metrics.Gauge(
            "facematch_gallery_templates",
            "Templates enrolled, by engine (model) and kind of template.",
            ("model", "templates"),
            templates,
        ),
        metrics.Gauge(
            "facematch_gallery_revision_lag",
            "Gallery revisions the searched index is behind the database (it catches up at "
            "the next search).",
            ("engine",),
            lambda: [((engine,), services.gallery.revision_lag())],
        ),
        metrics.Gauge(
            "facematch_probe_workers",
            "Probe workers, and how many have loaded their models (state: all, ready).",
            ("state",),
            lambda: [(("all",), probes.workers), (("ready",), probes.ready_workers)],
        ),
        metrics.Gauge(
            "facematch_probes_waiting",
            "Probes waiting for a free worker now.",
            (),
            lambda: [((), probes.waiting)],
        ),
        metrics.Gauge(
            "facematch_audit_anchor_age_seconds",
            "Seconds since the newest audit anchor was written (none yet: absent).",
            (),
            anchor_age,
        ),
        metrics.Gauge(
            "facematch_audit_unanchored_entries",
            "Audit entries written since the newest anchor.",
            (),
            unanchored,
        ),
    ]


def evaluation_runner(services: Services) -> EvaluationRunner:
    """Testers' evaluations, measured as live searches are: the same encoder, quality gate,
    operating point and decision rule."""
    settings = services.settings
    measuring = Measuring(
        encoder(settings),
        quality_policy(settings),
        services.operating_point,
        services.operating_point_sha256,
        services.rule,
    )
    return EvaluationRunner(services.sessions, services.keys, measuring)
