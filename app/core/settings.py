"""Typed settings, read from FACEMATCH_* environment variables (docs/configuration.md): plain
data, checked for form as they are read. What they build — keys, policies, services — is
built by the composition root (app.core.composition), once."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.audit.anchors import syslog_address
from app.audit.keys import read_signing_key, read_verify_key
from app.core.logs import LogFormat
from app.requests.agencies import (
    DEFAULT_IMMIGRATION_AGENCY_CODES,
    DEFAULT_IMMIGRATION_AGENCY_NAMES,
)
from app.requests.citations import (
    DEFAULT_IMMIGRATION_RELATED_STATUTES,
    DEFAULT_IMMIGRATION_STATUTES,
    StatuteList,
)
from auth import parse_rate
from index.sealing import read_key
from matcher import (
    EngineName,
    EngineSpec,
    GalleryTemplates,
    engine_spec,
)
from matcher.operating_point import shipped as shipped_operating_point


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEMATCH_", frozen=True)

    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir"
    )

    # Development mode signs tokens with a key made up at start-up when none is configured;
    # anywhere else the service refuses to start without a strong key.
    environment: Literal["development", "production"] = "production"
    jwt_key: SecretStr | None = None
    # Templates in the database and the saved index are sealed with AES-GCM under this key
    # (`facematch keys new` makes one); earlier keys only open, during a rotation (`facematch
    # keys rotate`). Development mode keeps a key of its own in data_dir when none is set.
    template_key: SecretStr | None = None
    earlier_template_keys: list[SecretStr] = []
    token_minutes: int = Field(default=15, ge=1, le=60)
    lockout_failures: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    # A new or reset account's one-time activation code works this long.
    activation_hours: int = Field(default=72, ge=1, le=24 * 30)
    # A training certificate is valid at most this long after the course.
    training_max_validity_days: int = Field(default=366, ge=1)
    # Per-account rate limits ("10/minute", "100/hour"), counted by the service process and
    # checked before a password is hashed or a photo decoded: every attempt counts, refused
    # or not (docs/api.md).
    login_rate_limit: str = "10/minute"
    search_rate_limit: str = "10/minute"

    # The browser console's sessions lock after this long idle (the CJIS Security Policy asks
    # for 30 minutes at most) and end after this long in any case.
    console_idle_minutes: int = Field(default=30, ge=1, le=30)
    console_session_hours: int = Field(default=12, ge=1, le=24)

    # Internal only: the address served on, the client networks let in, no interactive docs.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    allowed_networks: list[IPv4Network | IPv6Network] = [
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
    ]
    # Proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are read;
    # from anyone else those headers are ignored. None by default.
    trusted_proxies: list[IPv4Network | IPv6Network] = []
    api_docs: bool = False
    # The service's own log on standard error: text lines, or JSON lines for a log collector
    # (app.core.logs).
    log_format: LogFormat = "text"
    # GET /metrics answers only a scraper that sends this token as its bearer token; with
    # none set, metrics are not served. At least 32 characters.
    metrics_token: SecretStr | None = None

    # The request rules' lists (DESIGN.md rules 2-4) and what an approval authorises (rule 7).
    qualifying_crimes: list[str] = [
        "narcotics",
        "financial_crime",
        "child_exploitation",
        "violent_crime",
    ]
    # Rule 3's immigration violations and the offences that make a request potentially
    # immigration-related (rule 4), in any citation form (app/citations.py reads both):
    # by default the whole of Title 8 and every INA section, and the immigration offences of
    # Title 18.
    immigration_statutes: list[str] = list(DEFAULT_IMMIGRATION_STATUTES)
    immigration_related_statutes: list[str] = list(DEFAULT_IMMIGRATION_RELATED_STATUTES)
    # Rule 4's immigration authorities: their codes, in any spelling, and words their names
    # hold (app/agencies.py).
    immigration_agencies: list[str] = list(DEFAULT_IMMIGRATION_AGENCY_CODES)
    immigration_agency_names: list[str] = list(DEFAULT_IMMIGRATION_AGENCY_NAMES)
    # A court order signed longer ago than this is not taken as one.
    court_order_max_age_days: int = Field(default=365, ge=1)
    authorised_searches: int = Field(default=1, ge=1)
    authorisation_days: int = Field(default=30, ge=1)
    operator_course: str = "facial-recognition-operator"

    # Which engine makes templates and searches them; each has its own templates and index.
    # SFace by default: on LFW it misses fewer people and names far fewer wrong ones
    # (docs/accuracy.md).
    engine: EngineName = "sface"
    # The threshold every search uses and the measurement behind it (`facematch calibrate`);
    # by default the one the repository ships for the engine (matcher/operating_points/).
    operating_point: Path | None = None
    # What the index searches: "person", each licence holder's photo templates fused into
    # one; or "photo", every enrolled photo's own template, the person at their closest
    # (docs/accuracy.md measures both). The operating point must be calibrated for the same.
    gallery_templates: GalleryTemplates = "person"
    max_candidates: int = Field(default=5, ge=1, le=50)
    # How many trained examiners must each identify the same candidate before a release: 1,
    # or 2 for blind verification (ACE-V's V) by a second operator.
    examiners: int = Field(default=1, ge=1, le=2)
    # The agency's photo store: the folder enrolment's `--images` paths are relative to, from
    # which examiners see candidates' enrolled photos (each checked against its SHA-256).
    photo_store: Path | None = None
    # A search whose nearest person is within this distance of the next returns nobody; 0
    # turns the rule off; by default the engine's own (docs/accuracy.md, "Thresholds").
    margin: float | None = Field(default=None, ge=0)

    # The index: exact search below this many templates, a shortlist of compact codes
    # re-ranked exactly from there on (benchmarks/search_speed.py); 0: always the shortlist.
    index_exact_below: int = Field(default=200_000, ge=0)
    index_code_bytes: int = Field(default=16, ge=8, le=64)
    index_shortlist_factor: int = Field(default=20, ge=1, le=200)

    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_court_order_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Any request's body; a search's is the photo and a little multipart framing.
    max_request_bytes: int = Field(default=11 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=10_000)
    detect_max_side: int = Field(default=640, ge=160)
    # Quality limits; by default the engine's own (EngineSpec.quality).
    min_inter_eye_px: float | None = Field(default=None, ge=0)
    min_in_frame: float | None = Field(default=None, ge=0, le=1)
    min_sharpness: float | None = Field(default=None, ge=0)
    max_yaw_deg: float | None = Field(default=None, gt=0, le=90)

    # Probes are encoded in worker processes, each with its own models (about 0.2 GB).
    search_workers: int = Field(default=0, ge=0, description="0: one per CPU core")
    probe_timeout_s: float = Field(default=10.0, gt=0)

    # Independent testers' evaluation jobs (docs/evaluations.md): at most this many photos a
    # set, its archive at most this many bytes (the one route allowed a body past
    # FACEMATCH_MAX_REQUEST_BYTES), and this many jobs a tester a day, one at a time.
    evaluation_max_photos: int = Field(default=2000, ge=10, le=20_000)
    evaluation_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    evaluations_per_day: int = Field(default=5, ge=1)

    enroll_workers: int = Field(default=0, ge=0, description="0: one per CPU core")
    enroll_batch_size: int = Field(default=256, ge=1)

    # What `facematch retention purge` deletes, by age (docs/operations.md, "Retention"): the
    # candidate lists of searches (unconfirmed candidates are people the search did not
    # identify), the probe hashes of searches, and audit entries, which CJIS asks be kept at
    # least a year.
    candidate_retention_days: int = Field(default=90, ge=1)
    probe_hash_retention_days: int = Field(default=365, ge=1)
    audit_retention_days: int = Field(default=365, ge=365)
    # Signs the checkpoint a purge writes before it deletes audit entries (`facematch audit
    # new-key` makes one); the public keys of retired signing keys keep their checkpoints
    # verifiable. Development mode keeps a key of its own in data_dir when none is set.
    audit_signing_key: SecretStr | None = None
    audit_verify_keys: list[str] = []
    # The service signs the audit log's head with this key (`facematch audit new-key`), which
    # the database never holds, at start-up, every interval if the head moved, and at
    # shutdown, and appends that anchor outside the database: to a file (by default
    # data_dir/audit-anchors.jsonl), which verification reads, and, with an address, to syslog
    # too (a socket path, or host:port over UDP), which carries it off the machine. Outside
    # development mode the service refuses to start without the key (app.audit.anchors).
    audit_anchor_key: SecretStr | None = None
    # The public keys of retired anchor keys, kept apart from the checkpoints' retired keys:
    # the service holds the anchor key, and must never be able to vouch for a purge.
    audit_anchor_verify_keys: list[str] = []
    audit_anchor_interval_s: float = Field(default=300, ge=1)
    audit_anchor_file: Path | None = None
    audit_anchor_syslog_address: str | None = None

    @field_validator("template_key", mode="before")
    @classmethod
    def _key(cls, key: object) -> object:
        """An empty key is no key; any other must be one `facematch keys new` would make."""
        text = key.get_secret_value() if isinstance(key, SecretStr) else key
        if isinstance(text, str):
            if not text.strip():
                return None
            read_key(text)
        return key

    @field_validator("metrics_token")
    @classmethod
    def _scrape_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < 32:
            raise ValueError("the scrape token must be at least 32 characters")
        return token

    @field_validator("earlier_template_keys")
    @classmethod
    def _keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for key in keys:
            read_key(key.get_secret_value())
        return keys

    @field_validator("audit_signing_key", "audit_anchor_key")
    @classmethod
    def _signing_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            read_signing_key(key.get_secret_value())
        return key

    @field_validator("audit_anchor_syslog_address")
    @classmethod
    def _syslog_address(cls, address: str | None) -> str | None:
        if address is not None:
            syslog_address(address)
        return address

    @field_validator("audit_verify_keys", "audit_anchor_verify_keys")
    @classmethod
    def _verify_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            read_verify_key(key)
        return keys

    @field_validator("immigration_statutes", "immigration_related_statutes")
    @classmethod
    def _statutes(cls, statutes: list[str]) -> list[str]:
        StatuteList(statutes)  # names an entry that is not a citation
        return statutes

    @field_validator("login_rate_limit", "search_rate_limit")
    @classmethod
    def _rate(cls, rate: str) -> str:
        parse_rate(rate)
        return rate

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'facematch.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def engine_spec(self) -> EngineSpec:
        return engine_spec(self.engine)

    @property
    def match_margin(self) -> float:
        return self.margin if self.margin is not None else self.engine_spec.margin

    @property
    def operating_point_file(self) -> Path:
        return self.operating_point or shipped_operating_point(self.engine)

    @property
    def audit_anchor_path(self) -> Path:
        return self.audit_anchor_file or self.data_dir / "audit-anchors.jsonl"
