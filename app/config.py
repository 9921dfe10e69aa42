"""Typed settings, read from FACEMATCH_* environment variables (README: Configuration)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from matcher import DecodeLimits, EncoderConfig, FaceChoice, QualityPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEMATCH_", frozen=True)

    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir"
    )

    # The development search route has no access control; never on by default.
    dev_search_route: bool = False

    threshold: float = Field(default=0.6, gt=0)
    max_candidates: int = Field(default=5, ge=1, le=50)

    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=10_000)
    detect_max_side: int = Field(default=640, ge=160)
    min_inter_eye_px: float = Field(default=20.0, ge=0)
    min_in_frame: float = Field(default=0.9, ge=0, le=1)
    min_sharpness: float = Field(default=5.0, ge=0)
    max_yaw_deg: float = Field(default=45.0, gt=0, le=90)

    enroll_workers: int = Field(default=0, ge=0, description="0: one per CPU core")
    enroll_batch_size: int = Field(default=256, ge=1)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'facematch.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)

    @property
    def quality_policy(self) -> QualityPolicy:
        return QualityPolicy(
            min_inter_eye_px=self.min_inter_eye_px,
            min_in_frame=self.min_in_frame,
            min_sharpness=self.min_sharpness,
            max_yaw_deg=self.max_yaw_deg,
        )

    def encoder(self, choice: FaceChoice = "only") -> EncoderConfig:
        """What an enrolment worker needs to encode photos as this service would."""
        return EncoderConfig(self.detect_max_side, self.decode_limits, self.quality_policy, choice)
