"""The gallery as the service uses it: the FAISS index kept in step with the templates in the
database, and the search that turns neighbours into licence records."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.gallery.models import LicenseRecord
from app.gallery.store import (
    fuse_unfused,
    gallery_revision,
    owners_of_templates,
    template_count,
    template_ids,
    template_vector,
    templates_by_id,
)
from index import GalleryIndex, IndexInvalid, LayoutPolicy, Metric, TemplateKeys
from matcher import GalleryTemplates, MatchRule, neighbours_to_fetch, select_candidates

log = logging.getLogger(__name__)

_FETCH_CHUNK = 10_000


@dataclass(frozen=True)
class GallerySpec:
    index_dir: Path
    model_id: str
    dimension: int
    metric: Metric
    keys: TemplateKeys
    layouts: LayoutPolicy = LayoutPolicy()
    templates: GalleryTemplates = "photo"

    @property
    def index_name(self) -> str:
        """Each kind of template has its own index files: their ids are of different rows."""
        return self.model_id if self.templates == "photo" else f"{self.model_id}.person"

    def empty_index(self) -> GalleryIndex:
        return GalleryIndex(self.index_name, self.dimension, self.metric)

    def saved_index(self) -> GalleryIndex:
        """The index saved in index_dir; IndexInvalid if missing, damaged, foreign, or
        sealed under a key not configured."""
        return GalleryIndex.load(
            self.index_dir, self.index_name, self.dimension, self.metric, self.keys
        )


def sync_index(
    sessions: sessionmaker[Session], spec: GallerySpec, index: GalleryIndex | None = None
) -> GalleryIndex:
    """Bring an index to the database's current templates, and save it.

    Starts from `index` (the service's in-memory one, or an empty one to rebuild from
    scratch), else from the saved file; a missing, damaged or foreign file counts as empty.
    Only templates whose ids differ are added or removed: templates are immutable and their
    ids never reused, so comparing ids is enough. Then the index is laid out as the spec's
    policy wants for its size (exact, or a shortlist with exact re-ranking). A saved file
    already current is left alone. When loading or rebuilding, the person templates that
    records enrolled before they existed (migration 0009) lack are made first.
    """
    if index is None or index.count == 0:
        fuse_unfused(sessions, spec.keys, spec.model_id, spec.metric)
    from_file = index is None
    if index is None:
        try:
            index = spec.saved_index()
        except IndexInvalid as problem:
            log.warning("rebuilding the %s index: %s", spec.model_id, problem)
            index, from_file = spec.empty_index(), False
    with sessions() as session:
        # Read the revision first: rows committed before it are all visible to the reads below.
        revision = gallery_revision(session, spec.model_id)
        count = template_count(session, spec.model_id, spec.templates)
        current = index.revision == revision and index.count == count
        if from_file and current and index.layout == spec.layouts.for_count(count):
            return index
        wanted = template_ids(session, spec.model_id, spec.templates)
        present = set(index.ids().tolist())
        stale = np.fromiter(present - wanted, dtype=np.int64)
        if stale.size:
            index.remove(stale)
        missing = sorted(wanted - present)
        for start in range(0, len(missing), _FETCH_CHUNK):
            rows = templates_by_id(session, missing[start : start + _FETCH_CHUNK], spec.templates)
            index.add(
                np.array([row.id for row in rows], dtype=np.int64),
                np.stack([template_vector(row, spec.keys) for row in rows]),
            )
    layout = spec.layouts.for_count(index.count)
    if index.layout != layout:
        index.arrange(layout)
    index.revision = revision
    manifest = index.save(spec.index_dir, spec.keys)
    log.info(
        "%s index at revision %d: %d templates (%d added, %d removed), %s layout",
        spec.index_name,
        revision,
        manifest.count,
        len(missing),
        stale.size,
        layout.kind,
    )
    return index


@dataclass(frozen=True)
class Hit:
    """A candidate: the person, the enrolled photo to show first (whose template came
    nearest, or with person templates the latest), the distance."""

    record: LicenseRecord
    photo_id: int
    distance: float


@dataclass(frozen=True)
class Hits:
    index_revision: int
    matches: list[Hit]


class Gallery:
    """The service's in-memory index: checked against the database's revision before every
    search, so it never answers from templates the database no longer holds."""

    def __init__(self, sessions: sessionmaker[Session], spec: GallerySpec) -> None:
        self._sessions = sessions
        self._spec = spec
        self._lock = threading.Lock()
        self._index: GalleryIndex | None = None

    @property
    def model_id(self) -> str:
        return self._spec.model_id

    def current(self) -> GalleryIndex:
        with self._lock:
            return self._synced()

    def revision_lag(self) -> int:
        """How many revisions of the gallery the index in memory is behind the database's
        (it catches up at the next search); never syncs."""
        with self._sessions() as session:
            revision = gallery_revision(session, self._spec.model_id)
        index = self._index
        return revision - (index.revision if index is not None else 0)

    def _synced(self) -> GalleryIndex:
        """The index at the database's revision; the caller holds the lock, because a stale
        index is brought up to date in place."""
        with self._sessions() as session:
            revision = gallery_revision(session, self._spec.model_id)
        if self._index is None or self._index.revision != revision:
            self._index = sync_index(self._sessions, self._spec, self._index)
        return self._index

    def search(self, session: Session, descriptor: np.ndarray, rule: MatchRule) -> Hits:
        """The licence records of the people the rule makes candidates, nearest first, with
        the photos that matched, their distances and the index revision that found them."""
        wanted = neighbours_to_fetch(rule.limit, self._spec.templates)
        for attempt in range(2):
            # Under the lock that guards catching up, so no search reads a half-changed index.
            with self._lock:
                index = self._synced()
                neighbours = index.search(descriptor, wanted)
                revision = index.revision
            owner = owners_of_templates(
                session, [template_id for template_id, _ in neighbours], self._spec.templates
            )
            if len(owner) == len(neighbours) or attempt:
                break
            # A template found is gone since: purged, or a person template replaced by a
            # renewal under a new id. The caught-up index is searched once more, so the
            # renewed person is not left out.
        # Neighbours come nearest first: a person's first template is the one that matched.
        nearest_photo: dict[int, int] = {}
        for t, _ in neighbours:
            if t in owner:
                nearest_photo.setdefault(*owner[t])
        chosen = select_candidates(
            ((owner[t][0], distance) for t, distance in neighbours if t in owner), rule
        )
        records = {
            r.id: r
            for r in session.scalars(
                select(LicenseRecord).where(LicenseRecord.id.in_([rid for rid, _ in chosen]))
            )
        }
        return Hits(
            revision,
            [Hit(records[rid], nearest_photo[rid], d) for rid, d in chosen if rid in records],
        )
