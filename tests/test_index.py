"""The FAISS gallery: ids, exact search, removal, and a saved form that detects damage."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from index import (
    EXACT,
    GalleryIndex,
    IndexInvalid,
    Layout,
    LayoutPolicy,
    Metric,
    TemplateKeys,
    new_key,
)
from index.gallery import MIN_SHORTLIST_TEMPLATES

DIM = 128
KEYS = TemplateKeys.from_text(new_key())


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
    manifest = index.save(tmp_path, KEYS)
    assert (manifest.model_id, manifest.count, manifest.revision, manifest.dimension) == (
        "model-a",
        100,
        3,
        DIM,
    )
    loaded = GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)
    assert loaded.revision == 3 and sorted(loaded.ids().tolist()) == sorted(index.ids().tolist())
    assert loaded.search(vectors(100)[42], 1)[0][0] == 1042
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_saved_files_are_sealed_and_open_only_with_the_key(tmp_path: Path) -> None:
    old_key, new_key_text = new_key(), new_key()
    old = TemplateKeys.from_text(old_key)
    filled().save(tmp_path, old)
    template = vectors(100)[0].tobytes()
    assert all(template[:32] not in path.read_bytes() for path in tmp_path.iterdir())
    with pytest.raises(IndexInvalid, match="key that is not configured"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", TemplateKeys.from_text(new_key()))
    # Mid-rotation the old key still opens what it sealed, and a save seals under the new one.
    rotated = TemplateKeys.from_text(new_key_text, [old_key])
    GalleryIndex.load(tmp_path, "model-a", DIM, "l2", rotated).save(tmp_path, rotated)
    with pytest.raises(IndexInvalid, match="key that is not configured"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", old)
    # One file in another's place does not open, though both are sealed under the key.
    (tmp_path / "model-b.faiss").write_bytes((tmp_path / "model-a.faiss").read_bytes())
    (tmp_path / "model-b.manifest.json").write_text(
        (tmp_path / "model-a.manifest.json").read_text().replace('"model-a"', '"model-b"')
    )
    with pytest.raises(IndexInvalid, match="belongs elsewhere"):
        GalleryIndex.load(tmp_path, "model-b", DIM, "l2", rotated)


def test_missing_damaged_or_foreign_index_is_reported(tmp_path: Path) -> None:
    with pytest.raises(IndexInvalid, match="no saved index"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)
    filled().save(tmp_path, KEYS)
    manifest_file = tmp_path / "model-a.manifest.json"
    honest = manifest_file.read_text()
    manifest_file.write_text(honest.replace('"model-a"', '"model-b"'))
    with pytest.raises(IndexInvalid, match="another model"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)
    manifest_file.write_text(honest)
    index_file = tmp_path / "model-a.faiss"
    data = bytearray(index_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index_file.write_bytes(bytes(data))
    with pytest.raises(IndexInvalid, match="cannot be opened"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)
    manifest_file.write_text("{not json")
    with pytest.raises(IndexInvalid, match="damaged"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)


def clustered(people: int, photos: int, metric: str, seed: int = 1) -> np.ndarray:
    """Several photos of each person: tight clusters, as real templates form."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, DIM))
    data = np.repeat(centres, photos, axis=0) + 0.3 * rng.normal(size=(people * photos, DIM))
    data = data.astype(np.float32)
    if metric == "cosine":
        data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_shortlist_layout_returns_what_exact_search_returns(metric: Metric) -> None:
    data = clustered(1500, 2, metric)
    ids = np.arange(5000, 5000 + len(data), dtype=np.int64)
    exact = GalleryIndex("model-a", DIM, metric)
    exact.add(ids, data)
    shortlist = GalleryIndex("model-a", DIM, metric)
    shortlist.add(ids[:1500], data[:1500])
    shortlist.arrange(Layout("shortlist", 16, 40))
    shortlist.add(ids[1500:], data[1500:])  # added after arranging: encoded as they come
    # Photos of the probe's own person, far nearer than any stranger: the neighbours that
    # matter, which the shortlist must return exactly as exact search does.
    near = 8.0 if metric == "l2" else 0.5
    for probe in data[::97] + 0.01:
        want, got = exact.search(probe, 10), shortlist.search(probe, 10)
        own = [(i, d) for i, d in want if d < near]
        assert len(own) >= 2 and len(got) == 10
        assert [i for i, _ in got[: len(own)]] == [i for i, _ in own]
        assert np.allclose([d for _, d in got[: len(own)]], [d for _, d in own], atol=1e-5)


def test_arranging_needs_enough_templates_and_exact_drops_the_codes() -> None:
    index = filled(100)
    with pytest.raises(ValueError, match="at least"):
        index.arrange(Layout("shortlist"))
    big = GalleryIndex("model-a", DIM)
    big.add(np.arange(MIN_SHORTLIST_TEMPLATES, dtype=np.int64), vectors(MIN_SHORTLIST_TEMPLATES))
    big.arrange(Layout("shortlist", 16, 10))
    big.arrange(EXACT)
    assert big.layout == EXACT and big.search(vectors(1)[0], 1)[0][0] == 0


def test_layout_policy_is_exact_below_its_size() -> None:
    policy = LayoutPolicy(exact_below=200_000)
    assert policy.for_count(199_999) == EXACT
    assert policy.for_count(200_000).kind == "shortlist"
    # Too few templates to train a shortlist stay exact whatever the setting.
    assert LayoutPolicy(exact_below=0).for_count(MIN_SHORTLIST_TEMPLATES - 1) == EXACT


def test_shortlist_after_removals_and_additions_matches_one_encoded_afresh() -> None:
    """Purges and enrolments interleave: the codes kept up to date by removing and adding
    must be the codes of the templates held, each in its template's place."""
    data = clustered(1500, 4, "cosine")
    rng = np.random.default_rng(5)
    index = GalleryIndex("model-a", DIM, "cosine")
    index.add(np.arange(4000, dtype=np.int64), data[:4000])
    index.arrange(Layout("shortlist", 16, 40))
    added = 4000
    for _ in range(30):
        index.remove(rng.choice(index.ids(), int(rng.integers(1, 40)), replace=False))
        n = int(rng.integers(1, 50))
        index.add(np.arange(added, added + n, dtype=np.int64), data[added : added + n])
        added += n

    # The same codebooks, the templates held encoded afresh in the same order.
    kept = index._shortlist
    assert kept is not None
    fresh = faiss.clone_index(kept)
    fresh.reset()
    fresh.add(data[index.ids()])
    probes = data[rng.choice(added, 100, replace=False)]
    assert np.array_equal(kept.search(probes, 50)[1], fresh.search(probes, 50)[1])
    for i in index.ids()[-60:]:
        assert index.search(data[i], 1)[0][0] == i


def test_shortlist_removal_and_saved_form(tmp_path: Path) -> None:
    data = clustered(1000, 2, "l2")
    ids = np.arange(len(data), dtype=np.int64) * 3
    index = GalleryIndex("model-a", DIM, revision=7)
    index.add(ids, data)
    index.arrange(Layout("shortlist", 16, 40))
    assert index.remove(ids[:2]) == 2
    hits = index.search(data[0], 5)
    assert ids[0] not in [i for i, _ in hits] and ids[1] not in [i for i, _ in hits]
    assert index.search(data[10], 1)[0][0] == ids[10]

    manifest = index.save(tmp_path, KEYS)
    assert manifest.layout == Layout("shortlist", 16, 40) and manifest.shortlist_checksum
    loaded = GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)
    assert loaded.layout == index.layout and loaded.count == index.count == len(data) - 2
    assert loaded.search(data[10], 3) == index.search(data[10], 3)

    codes = tmp_path / "model-a.shortlist.faiss"
    damaged = bytearray(codes.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    codes.write_bytes(bytes(damaged))
    with pytest.raises(IndexInvalid, match="shortlist.faiss cannot be opened"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)
    codes.unlink()
    with pytest.raises(IndexInvalid, match="missing"):
        GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS)

    # Laid out exact again, the codes file goes and the manifest says so.
    loaded.arrange(EXACT)
    loaded.save(tmp_path, KEYS)
    assert GalleryIndex.load(tmp_path, "model-a", DIM, "l2", KEYS).layout == EXACT
    assert not codes.exists()
