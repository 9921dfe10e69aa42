"""The FAISS gallery of one engine's templates, and its atomic, self-checking file form.

The index is derived data: the database holds the templates, and the index can always be
rebuilt from them. Its manifest says which database revision it reflects, so a reader can tell
a current index from a stale one, and its checksum tells an intact file from a damaged one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

# 2: the manifest names the metric.
FORMAT = 2
# l2: Euclidean distance. cosine: descriptors are L2-normalised, the index ranks by inner
# product, and the distance reported is 1 - cosine similarity. Smaller is closer either way.
Metric = Literal["l2", "cosine"]
_FAISS_METRIC = {"l2": faiss.METRIC_L2, "cosine": faiss.METRIC_INNER_PRODUCT}


class IndexInvalid(Exception):
    """The saved index cannot be used: missing, damaged, or for another model."""


@dataclass(frozen=True)
class Manifest:
    model_id: str
    dimension: int
    metric: Metric
    count: int
    checksum: str
    revision: int
    format: int = FORMAT


class GalleryIndex:
    """Exact search over templates keyed by their int64 database ids."""

    def __init__(
        self, model_id: str, dimension: int, metric: Metric = "l2", revision: int = 0
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.metric = metric
        self.revision = revision
        flat = faiss.IndexFlat(dimension, _FAISS_METRIC[metric])
        self._index = faiss.IndexIDMap2(flat)

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add templates whose ids are not in the index yet."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest templates as (id, distance), nearest first."""
        if self.count == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dimension)
        scores, ids = self._index.search(query, min(k, self.count))
        if self.metric == "cosine":
            distances = 1.0 - scores[0]
        else:
            distances = np.sqrt(np.maximum(scores[0], 0.0))
        return [(int(i), float(d)) for d, i in zip(distances, ids[0], strict=True) if i >= 0]

    def save(self, directory: Path) -> Manifest:
        """Write the index, then its manifest, each atomically (temporary file, fsync, rename).

        A crash between the two renames leaves a manifest whose checksum does not match the
        index file, which `load` reports as damaged, so the pair is never silently mismatched.
        """
        directory.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index).tobytes()
        manifest = Manifest(
            model_id=self.model_id,
            dimension=self.dimension,
            metric=self.metric,
            count=self.count,
            checksum=hashlib.sha256(data).hexdigest(),
            revision=self.revision,
        )
        index_path, manifest_path = _paths(directory, self.model_id)
        _write_atomically(index_path, data)
        _write_atomically(manifest_path, json.dumps(asdict(manifest), indent=2).encode())
        return manifest

    @classmethod
    def load(
        cls, directory: Path, model_id: str, dimension: int, metric: Metric = "l2"
    ) -> GalleryIndex:
        index_path, manifest_path = _paths(directory, model_id)
        try:
            manifest = Manifest(**json.loads(manifest_path.read_bytes()))
            data = index_path.read_bytes()
        except FileNotFoundError:
            raise IndexInvalid("no saved index") from None
        except (ValueError, TypeError):
            raise IndexInvalid("the manifest is damaged") from None
        if (manifest.format, manifest.model_id, manifest.metric) != (FORMAT, model_id, metric):
            raise IndexInvalid("the saved index is for another model or format")
        if hashlib.sha256(data).hexdigest() != manifest.checksum:
            raise IndexInvalid("the index file does not match its manifest's checksum")
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError:
            raise IndexInvalid("the index file cannot be read") from None
        if not isinstance(index, faiss.IndexIDMap2) or index.metric_type != _FAISS_METRIC[metric]:
            raise IndexInvalid("the index file holds another kind of index")
        if (
            index.d != dimension
            or manifest.dimension != dimension
            or index.ntotal != manifest.count
        ):
            raise IndexInvalid("the index's dimension or count disagrees with its manifest")
        gallery = cls(model_id, dimension, metric, manifest.revision)
        gallery._index = index
        return gallery


def _paths(directory: Path, model_id: str) -> tuple[Path, Path]:
    return directory / f"{model_id}.faiss", directory / f"{model_id}.manifest.json"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
