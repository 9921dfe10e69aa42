"""The FAISS gallery of one engine's templates, and its atomic, self-checking, sealed file
form.

The index is derived data: the database holds the templates, and the index can always be
rebuilt from them. Its files hold templates, so they are sealed (AES-GCM, index.sealing).
Its manifest says which database revision it reflects and how the index is laid out, so a
reader can tell a current index from a stale one, and its checksums tell intact files from
damaged ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from index.metrics import FAISS_METRIC, Metric, from_scores
from index.sealing import SealingError, TemplateKeys

# 2: the manifest names the metric. 3: and the layout, with a shortlist file for "shortlist".
# 4: the shortlist's codes are numbered by their place in the index, not by template id.
FORMAT = 4
# l2: Euclidean distance. cosine: descriptors are L2-normalised, the index ranks by inner
# product, and the distance reported is 1 - cosine similarity. Smaller is closer either way.


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
    code_bytes: int = 16
    factor: int = 20

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
        flat = faiss.IndexFlat(dimension, FAISS_METRIC[metric])
        self._index = faiss.IndexIDMap2(flat)
        # The same templates as compact codes in the same order, for the shortlist layout
        # (None when exact): a code's number is its template's place in the flat index, so
        # the re-ranking reads templates and ids by place, not by looking each id up.
        self._shortlist: faiss.IndexPQFastScan | None = None
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
            self._shortlist.add(vectors)

    def remove(self, ids: np.ndarray) -> int:
        """Remove templates by id; both indexes close up the gaps keeping their order."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self._shortlist is None:
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        places = np.flatnonzero(np.isin(self._id_at(), ids)).astype(np.int64)
        self._shortlist.remove_ids(faiss.IDSelectorArray(places))
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        self._repack_last_block()
        return removed

    def _repack_last_block(self) -> None:
        """FAISS packs fast-scan codes in blocks, and its add() packs new codes into the last
        block as if that block's free slots were zero; its remove_ids() leaves stale bits
        there, which would corrupt the codes added next. So the last, partly filled block is
        dropped and its templates encoded again (a few dozen at most)."""
        assert self._shortlist is not None
        codes = self._shortlist
        start = codes.ntotal - codes.ntotal % codes.bbs
        if start < codes.ntotal:
            codes.remove_ids(faiss.IDSelectorRange(start, codes.ntotal))
            codes.add(self._templates()[start:])

    def _flat(self) -> faiss.IndexFlat:
        flat = faiss.downcast_index(self._index.index)
        assert isinstance(flat, faiss.IndexFlat)
        return flat

    def _templates(self) -> np.ndarray:
        """The flat index's templates in place order, as a view (no copy): valid until the
        next add or remove."""
        return faiss.rev_swig_ptr(self._flat().get_xb(), self.count * self.dimension).reshape(
            self.count, self.dimension
        )

    def _id_at(self) -> np.ndarray:
        """Each place's template id, as a view, like `_templates`."""
        return faiss.rev_swig_ptr(self._index.id_map.data(), self.count)

    def arrange(self, layout: Layout) -> None:
        """Lay the index out anew: for a shortlist, train its codebooks on a sample of the
        templates held (seconds at a million) and encode them all."""
        if layout.kind == "exact":
            self._shortlist, self.layout = None, layout
            return
        if self.count < MIN_SHORTLIST_TEMPLATES:
            raise ValueError(f"a shortlist needs at least {MIN_SHORTLIST_TEMPLATES} templates")
        templates = self._templates()
        sample = np.random.default_rng(0).choice(
            self.count, min(self.count, _TRAINING_SAMPLE), False
        )
        # L2 on the codes for either metric: cosine descriptors are unit length, where L2
        # ranks as cosine does; the re-ranking uses the metric itself.
        shortlist = faiss.IndexPQFastScan(self.dimension, layout.code_bytes * 2, 4, faiss.METRIC_L2)
        shortlist.train(templates[np.sort(sample)])
        for start in range(0, self.count, _ENCODE_CHUNK):
            shortlist.add(templates[start : start + _ENCODE_CHUNK])
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
        distances = from_scores(scores, self.metric)
        return [(int(i), float(d)) for d, i in zip(distances, ids, strict=True) if i >= 0]

    def _reranked(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The shortlist's candidates scored exactly against the full templates, best k."""
        assert self._shortlist is not None
        _, found = self._shortlist.search(query, min(k * self.layout.factor, self.count))
        places = np.ascontiguousarray(found[0][found[0] >= 0]).reshape(1, -1)
        scores = np.empty(places.shape, dtype=np.float32)
        # FAISS's own exact scoring of the templates at those places, in the index's metric.
        self._flat().compute_distance_subset(  # type: ignore[attr-defined]  # not in faiss's stubs
            1,
            faiss.swig_ptr(query),
            places.shape[1],
            faiss.swig_ptr(scores),
            faiss.swig_ptr(places),
        )
        places, scores = places[0], scores[0]
        ranked = -scores if self.metric == "cosine" else scores
        best = np.argpartition(ranked, k - 1)[:k] if len(ranked) > k else np.arange(len(ranked))
        best = best[np.argsort(ranked[best], kind="stable")]
        return scores[best], self._id_at()[places[best]]

    def save(self, directory: Path, keys: TemplateKeys) -> Manifest:
        """Write the index, sealed under the current key, then its manifest, each atomically
        (temporary file, fsync, rename).

        A crash between the renames leaves a manifest whose checksum does not match the index
        file, which `load` reports as damaged, so the pair is never silently mismatched.
        """
        directory.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index).data
        codes = None
        if self._shortlist is not None:
            codes = faiss.serialize_index(self._shortlist).data
        manifest = Manifest(
            model_id=self.model_id,
            dimension=self.dimension,
            metric=self.metric,
            count=self.count,
            checksum=hashlib.sha256(data).hexdigest(),
            revision=self.revision,
            layout=self.layout,
            shortlist_checksum=hashlib.sha256(codes).hexdigest() if codes is not None else None,
        )
        index_path, shortlist_path, manifest_path = _paths(directory, self.model_id)
        _write_atomically(index_path, keys.seal_file(data, index_path.name))
        if codes is not None:
            _write_atomically(shortlist_path, keys.seal_file(codes, shortlist_path.name))
        _write_atomically(manifest_path, [json.dumps(asdict(manifest), indent=2).encode()])
        if codes is None:
            shortlist_path.unlink(missing_ok=True)
        return manifest

    @classmethod
    def load(
        cls, directory: Path, model_id: str, dimension: int, metric: Metric, keys: TemplateKeys
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
        index = _read_index(index_path, manifest.checksum, keys)
        if not isinstance(index, faiss.IndexIDMap2) or index.metric_type != FAISS_METRIC[metric]:
            raise IndexInvalid("the index file holds another kind of index")
        shortlist: faiss.IndexPQFastScan | None = None
        if manifest.layout.kind == "shortlist":
            read = _read_index(shortlist_path, manifest.shortlist_checksum, keys)
            if not isinstance(read, faiss.IndexPQFastScan) or read.ntotal != index.ntotal:
                raise IndexInvalid("the shortlist file disagrees with the index")
            shortlist = read
        if (
            index.d != dimension
            or manifest.dimension != dimension
            or index.ntotal != manifest.count
        ):
            raise IndexInvalid("the index's dimension or count disagrees with its manifest")
        gallery = cls(model_id, dimension, metric, manifest.revision)
        gallery._index, gallery._shortlist, gallery.layout = index, shortlist, manifest.layout
        return gallery


def _read_index(path: Path, checksum: str | None, keys: TemplateKeys) -> faiss.Index:
    try:
        with open(path, "rb") as handle:
            data = keys.open_file(handle, path.name)
    except FileNotFoundError:
        raise IndexInvalid(f"{path.name} is missing") from None
    except SealingError as problem:
        raise IndexInvalid(f"{path.name} cannot be opened: {problem}") from None
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


def _write_atomically(path: Path, pieces: Iterable[bytes]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        for piece in pieces:
            handle.write(piece)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
