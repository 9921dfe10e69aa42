"""Image bytes to face template, and the match decision. Knows nothing of the service."""

from index import Metric
from matcher.decision import (
    GalleryTemplates,
    MatchRule,
    neighbours_to_fetch,
    select_candidates,
)
from matcher.decode import DecodeLimits, check_photo, sniff_format
from matcher.dlib_engine import DlibEngine
from matcher.engine import Detection, Engine, EngineName, EngineSpec, distance
from matcher.engines import ENGINES, engine_spec, load_engine
from matcher.pipeline import FaceChoice, FaceTemplate, Matcher
from matcher.pool import (
    EncoderConfig,
    EncoderPool,
    PipelineBusy,
    PipelineStarting,
    PipelineTimeout,
    ProbeEncoder,
)
from matcher.quality import Landmarks, Quality, QualityPolicy
from matcher.refusals import REFUSAL_CODES, Box, FaceRefusal
from matcher.sface_engine import SFaceEngine
from matcher.weights import ModelFileError

__all__ = [
    "ENGINES",
    "REFUSAL_CODES",
    "Box",
    "DecodeLimits",
    "Detection",
    "DlibEngine",
    "EncoderConfig",
    "EncoderPool",
    "Engine",
    "EngineName",
    "EngineSpec",
    "FaceChoice",
    "FaceRefusal",
    "FaceTemplate",
    "GalleryTemplates",
    "Landmarks",
    "MatchRule",
    "Matcher",
    "Metric",
    "ModelFileError",
    "PipelineBusy",
    "PipelineStarting",
    "PipelineTimeout",
    "ProbeEncoder",
    "Quality",
    "QualityPolicy",
    "SFaceEngine",
    "check_photo",
    "distance",
    "engine_spec",
    "load_engine",
    "neighbours_to_fetch",
    "select_candidates",
    "sniff_format",
]
