"""Retention: what the service keeps no longer than it needs (docs/operations.md, "Retention").

A search's candidate list names people the search did not identify unless the operator
confirmed one, and its probe hash ties a photo to the search; both are deleted once their
retention period has passed. Audit entries are deleted after theirs (at least a year), behind
a signed checkpoint, so the chain that remains still verifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.audit import trail
from app.audit.keys import AuditKeys
from app.audit.models import AuditEntry
from app.core.database import rows_changed
from app.searches.models import KeptProbe, Search, SearchCandidate


@dataclass(frozen=True)
class RetentionPolicy:
    candidates: timedelta
    probe_hashes: timedelta
    audit: timedelta


@dataclass(frozen=True)
class Purged:
    candidate_lists: int
    probe_hashes: int
    audit_entries: int
    # The audit entry the new checkpoint signs: the entries up to it were deleted.
    checkpoint_seq: int | None


def purge(
    session: Session, policy: RetentionPolicy, keys: AuditKeys, now: datetime, actor: str
) -> Purged:
    """Delete, in the caller's transaction, whatever is older than its retention period, and
    record the purge in the audit log. Run twice, the second run finds nothing to delete."""
    lists = (
        select(Search.id)
        .where(Search.searched_at < now - policy.candidates)
        .where(Search.candidates_purged_at.is_(None))
    )
    session.execute(delete(SearchCandidate).where(SearchCandidate.search_id.in_(lists)))
    # A probe still kept is one no examiner decided on in the candidates' retention period.
    session.execute(delete(KeptProbe).where(KeptProbe.search_id.in_(lists)))
    candidate_lists = rows_changed(
        session, update(Search).where(Search.id.in_(lists)).values(candidates_purged_at=now)
    )
    probe_hashes = rows_changed(
        session,
        update(Search)
        .where(Search.searched_at < now - policy.probe_hashes)
        .where(Search.probe_sha256.is_not(None))
        .values(probe_sha256=None),
    )

    last_expired = session.scalar(
        select(func.max(AuditEntry.seq)).where(AuditEntry.at < now - policy.audit)
    )
    audit_entries = 0
    if last_expired is not None:
        trail.checkpoint(session, keys, last_expired)
        audit_entries = rows_changed(
            session, delete(AuditEntry).where(AuditEntry.seq <= last_expired)
        )
    purged = Purged(candidate_lists, probe_hashes, audit_entries, last_expired)
    trail.record(
        session,
        "retention",
        "retention.purge",
        actor,
        "success",
        candidate_lists=candidate_lists,
        probe_hashes=probe_hashes,
        audit_entries=audit_entries,
        checkpoint=last_expired,
    )
    return purged
