"""The FAISS gallery: ids, exact search, removal, and a saved form that detects damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import GalleryIndex, IndexInvalid

DIM = 128


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def filled(n: int = 100) -> GalleryIndex:
    index = GalleryIndex("model-a", DIM, revision=3)
    index.add(np.arange(1000, 1000 + n, dtype=np.int64), vectors(n))
    return index


def test_search_returns_database_ids_and_euclidean_distances() -> None:
    index = filled()
    data = vectors(100)
    hits = index.search(data[7] + 0.01, k=3)
    assert hits[0][0] == 1007
    assert hits[0][1] == pytest.approx(0.01 * np.sqrt(DIM), rel=1e-3)
    expected = np.sort(np.linalg.norm(data - (data[7] + 0.01), axis=1))[:3]
    assert np.allclose([d for _, d in hits], expected, rtol=1e-4)


def test_remove_and_small_galleries() -> None:
    index = filled(5)
    assert index.remove(np.array([1002, 9999])) == 1
    assert sorted(index.ids().tolist()) == [1000, 1001, 1003, 1004]
    assert len(index.search(vectors(1)[0], k=50)) == 4
    assert GalleryIndex("model-a", DIM).search(vectors(1)[0], k=5) == []


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = filled()
    manifest = index.save(tmp_path)
    assert (manifest.model_id, manifest.count, manifest.revision, manifest.dimension) == (
        "model-a",
        100,
        3,
        DIM,
    )
    loaded = GalleryIndex.load(tmp_path, "model-a", DIM)
    assert loaded.revision == 3 and sorted(loaded.ids().tolist()) == sorted(index.ids().tolist())
    assert loaded.search(vectors(100)[42], 1)[0][0] == 1042
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_damaged_or_foreign_index_is_reported(tmp_path: Path) -> None:
    with pytest.raises(IndexInvalid, match="no saved index"):
        GalleryIndex.load(tmp_path, "model-a", DIM)
    filled().save(tmp_path)
    manifest_file = tmp_path / "model-a.manifest.json"
    honest = manifest_file.read_text()
    manifest_file.write_text(honest.replace('"model-a"', '"model-b"'))
    with pytest.raises(IndexInvalid, match="another model"):
        GalleryIndex.load(tmp_path, "model-a", DIM)
    manifest_file.write_text(honest)
    index_file = tmp_path / "model-a.faiss"
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index_file.write_bytes(bytes(data))
    with pytest.raises(IndexInvalid, match="checksum"):
        GalleryIndex.load(tmp_path, "model-a", DIM)
    manifest_file.write_text("{not json")
    with pytest.raises(IndexInvalid, match="damaged"):
        GalleryIndex.load(tmp_path, "model-a", DIM)
