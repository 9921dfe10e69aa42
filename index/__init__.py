"""The FAISS gallery: template ids to nearest neighbours. Knows nothing of the service."""

from index.gallery import GalleryIndex, IndexInvalid, Manifest, Metric

__all__ = ["GalleryIndex", "IndexInvalid", "Manifest", "Metric"]
