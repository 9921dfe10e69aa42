"""The FAISS gallery: template ids to nearest neighbours. Knows nothing of the service."""

from index.gallery import (
    EXACT,
    GalleryIndex,
    IndexInvalid,
    Layout,
    LayoutPolicy,
    Manifest,
)
from index.metrics import Metric, distances, fuse
from index.sealing import SealingError, TemplateKeys, new_key

__all__ = [
    "EXACT",
    "GalleryIndex",
    "IndexInvalid",
    "Layout",
    "LayoutPolicy",
    "Manifest",
    "Metric",
    "SealingError",
    "TemplateKeys",
    "distances",
    "fuse",
    "new_key",
]
