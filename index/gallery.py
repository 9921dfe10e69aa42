"""The FAISS gallery of one engine's templates, and its atomic, self-checking file form.

The index is derived data: the database holds the templates, and the index can always be
rebuilt from them. Its manifest says which database revision it reflects and how the index is
laid out, so a reader can tell a current index from a stale one, and its checksums tell intact
files from damaged ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

# 2: the manifest names the metric. 3: and the layout, with a shortlist file for "shortlist".
FORMAT = 3
# l2: Euclidean distance. cosine: descriptors are L2-normalised, the index ranks by inner
# product, and the distance reported is 1 - cosine similarity. Smaller is closer either way.
Metric = Literal["l2", "cosine"]
_FAISS_METRIC = {"l2": faiss.METRIC_L2, "cosine": faiss.METRIC_INNER_PRODUCT}


# Fewer templates than this cannot train the shortlist's codebooks (16 centroids per part).
MIN_SHORTLIST_TEMPLATES = 1000
_TRAINING_SAMPLE = 65_536
_ENCODE_CHUNK = 100_000


class IndexInvalid(Exception):
    """The saved index cannot be used: missing, damaged, or for another model."""


@dataclass(frozen=True)
class Layout:
    """How a search finds neighbours.

    "exact" compares the probe with every template. "shortlist" scans a compact code of every
    template (product quantisation, 4-bit fast scan, `code_bytes` bytes each) for the
    `factor` × k nearest, then re-ranks that shortlist by exact distance to the full
    templates, which stay in memory: it returns what exact search returns unless the code
    misjudges a neighbour so badly it falls out of the shortlist (benchmarks/search_speed.py
    measures how often).
    """

    kind: Literal["exact", "shortlist"] = "exact"
    code_bytes: int = 32
    factor: int = 40

    def __str__(self) -> str:
        if self.kind == "exact":
            return "exact"
        return f"shortlist of {self.code_bytes}-byte codes, {self.factor}× k, re-ranked exactly"


EXACT = Layout()


@dataclass(frozen=True)
class LayoutPolicy:
    """Exact below `exact_below` templates, the shortlist layout from there on."""

    exact_below: int = 200_000
    shortlist: Layout = Layout("shortlist")

    def for_count(self, count: int) -> Layout:
        if count < max(self.exact_below, MIN_SHORTLIST_TEMPLATES):
            return EXACT
        return self.shortlist


@dataclass(frozen=True)
class Manifest:
    model_id: str
    dimension: int
    metric: Metric
    count: int
    checksum: str
    revision: int
    layout: Layout = field(default_factory=Layout)
    shortlist_checksum: str | None = None
    format: int = FORMAT


class GalleryIndex:
    """Search over templates keyed by their int64 database ids."""

    def __init__(
        self,
        model_id: str,
        dimension: int,
        metric: Metric = "l2",
        revision: int = 0,
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.metric = metric
        self.revision = revision
        flat = faiss.IndexFlat(dimension, _FAISS_METRIC[metric])
        self._index = faiss.IndexIDMap2(flat)
        # The same templates as compact codes, for the shortlist layout; None when exact.
        self._shortlist: faiss.IndexIDMap | None = None
        self.layout = EXACT

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add templates whose ids are not in the index yet."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._index.add_with_ids(vectors, ids)
        if self._shortlist is not None:
            self._shortlist.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self._shortlist is not None:
            self._shortlist.remove_ids(ids)
        return int(self._index.remove_ids(ids))

    def arrange(self, layout: Layout) -> None:
        """Lay the index out anew: for a shortlist, train its codebooks on a sample of the
        templates held (seconds at a million) and encode them all."""
        if layout.kind == "exact":
            self._shortlist, self.layout = None, layout
            return
        if self.count < MIN_SHORTLIST_TEMPLATES:
            raise ValueError(f"a shortlist needs at least {MIN_SHORTLIST_TEMPLATES} templates")
        ids = self.ids()
        sample = np.random.default_rng(0).choice(ids, min(self.count, _TRAINING_SAMPLE), False)
        # L2 on the codes for either metric: cosine descriptors are unit length, where L2
        # ranks as cosine does; the re-ranking uses the metric itself.
        codes = faiss.IndexPQFastScan(self.dimension, layout.code_bytes * 2, 4, faiss.METRIC_L2)
        codes.train(self._index.reconstruct_batch(np.sort(sample)))
        shortlist = faiss.IndexIDMap(codes)
        # A chunk at a time: no second copy of every template, even for a moment.
        flat = self._index.index
        for start in range(0, self.count, _ENCODE_CHUNK):
            n = min(_ENCODE_CHUNK, self.count - start)
            shortlist.add_with_ids(flat.reconstruct_n(start, n), ids[start : start + n])
        self._shortlist, self.layout = shortlist, layout

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest templates as (id, distance), nearest first."""
        if self.count == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dimension)
        if self._shortlist is None:
            scores, ids = self._index.search(query, min(k, self.count))
            scores, ids = scores[0], ids[0]
        else:
            scores, ids = self._reranked(query, k)
        if self.metric == "cosine":
            distances = 1.0 - scores
        else:
            distances = np.sqrt(np.maximum(scores, 0.0))
        return [(int(i), float(d)) for d, i in zip(distances, ids, strict=True) if i >= 0]

    def _reranked(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The shortlist's candidates scored exactly against the full templates, best k."""
        assert self._shortlist is not None
        _, found = self._shortlist.search(query, min(k * self.layout.factor, self.count))
        ids = found[0][found[0] >= 0]
        vectors = self._index.reconstruct_batch(ids)
        if self.metric == "cosine":
            scores = vectors @ query[0]
            order = np.argsort(-scores, kind="stable")[:k]
        else:
            scores = np.sum((vectors - query[0]) ** 2, axis=1)
            order = np.argsort(scores, kind="stable")[:k]
        return scores[order], ids[order]

    def save(self, directory: Path) -> Manifest:
        """Write the index, then its manifest, each atomically (temporary file, fsync, rename).

        A crash between the two renames leaves a manifest whose checksum does not match the
        index file, which `load` reports as damaged, so the pair is never silently mismatched.
        """
        directory.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index).tobytes()
        codes = None
        if self._shortlist is not None:
            codes = faiss.serialize_index(self._shortlist).tobytes()
        manifest = Manifest(
            model_id=self.model_id,
            dimension=self.dimension,
            metric=self.metric,
            count=self.count,
            checksum=hashlib.sha256(data).hexdigest(),
            revision=self.revision,
            layout=self.layout,
            shortlist_checksum=hashlib.sha256(codes).hexdigest() if codes else None,
        )
        index_path, shortlist_path, manifest_path = _paths(directory, self.model_id)
        _write_atomically(index_path, data)
        if codes is not None:
            _write_atomically(shortlist_path, codes)
        _write_atomically(manifest_path, json.dumps(asdict(manifest), indent=2).encode())
        if codes is None:
            shortlist_path.unlink(missing_ok=True)
        return manifest

    @classmethod
    def load(
        cls, directory: Path, model_id: str, dimension: int, metric: Metric = "l2"
    ) -> GalleryIndex:
        index_path, shortlist_path, manifest_path = _paths(directory, model_id)
        try:
            fields = json.loads(manifest_path.read_bytes())
            manifest = Manifest(**{**fields, "layout": Layout(**fields.get("layout", {}))})
        except FileNotFoundError:
            raise IndexInvalid("no saved index") from None
        except (ValueError, TypeError, AttributeError):
            raise IndexInvalid("the manifest is damaged") from None
        if (manifest.format, manifest.model_id, manifest.metric) != (FORMAT, model_id, metric):
            raise IndexInvalid("the saved index is for another model or format")
        index = _read_index(index_path, manifest.checksum)
        if not isinstance(index, faiss.IndexIDMap2) or index.metric_type != _FAISS_METRIC[metric]:
            raise IndexInvalid("the index file holds another kind of index")
        shortlist = None
        if manifest.layout.kind == "shortlist":
            shortlist = _read_index(shortlist_path, manifest.shortlist_checksum)
            if not isinstance(shortlist, faiss.IndexIDMap) or shortlist.ntotal != index.ntotal:
                raise IndexInvalid("the shortlist file disagrees with the index")
        if (
            index.d != dimension
            or manifest.dimension != dimension
            or index.ntotal != manifest.count
        ):
            raise IndexInvalid("the index's dimension or count disagrees with its manifest")
        gallery = cls(model_id, dimension, metric, manifest.revision)
        gallery._index, gallery._shortlist, gallery.layout = index, shortlist, manifest.layout
        return gallery


def _read_index(path: Path, checksum: str | None) -> faiss.Index:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexInvalid(f"{path.name} is missing") from None
    if hashlib.sha256(data).hexdigest() != checksum:
        raise IndexInvalid(f"{path.name} does not match its manifest's checksum")
    try:
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError:
        raise IndexInvalid(f"{path.name} cannot be read") from None


def _paths(directory: Path, model_id: str) -> tuple[Path, Path, Path]:
    return (
        directory / f"{model_id}.faiss",
        directory / f"{model_id}.shortlist.faiss",
        directory / f"{model_id}.manifest.json",
    )


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
