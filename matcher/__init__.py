"""Image bytes to face template, and the match decision. Knows nothing of the service."""

from matcher.decision import select_candidates
from matcher.decode import DecodeLimits
from matcher.dlib_engine import DlibEngine, ModelFileError
from matcher.pipeline import FaceChoice, FaceTemplate, Matcher
from matcher.pool import EncoderConfig, EncoderPool
from matcher.quality import Quality, QualityPolicy
from matcher.refusals import REFUSAL_CODES, Box, FaceRefusal

__all__ = [
    "REFUSAL_CODES",
    "Box",
    "DecodeLimits",
    "DlibEngine",
    "EncoderConfig",
    "EncoderPool",
    "FaceChoice",
    "FaceRefusal",
    "FaceTemplate",
    "Matcher",
    "ModelFileError",
    "Quality",
    "QualityPolicy",
    "select_candidates",
]
