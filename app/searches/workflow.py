"""The gated search, its human review and the disclosure it may make, applied to the database
and recorded in the audit log in the same transaction as the change.

Until a search is decided its candidates are faces: the examiners see the probe and each
candidate's enrolled photos, never a name, and conclude on every candidate; only when the
examiners a release needs have each identified the same candidate are that person's five
fields released."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, selectinload

from app.accounts.service import actor_of, trained
from app.audit import trail
from app.core.database import rows_changed
from app.core.refusals import Code, Refusal
from app.gallery.models import LicenseRecord, Photo
from app.gallery.photos import read_enrolled
from app.gallery.service import Hits
from app.requests.models import AgencyRequest
from app.requests.rules import Status
from app.requests.workflow import COMPONENT, get_request, involved_in, request_ref
from app.searches.models import (
    CandidateConclusion,
    Disclosure,
    Examination,
    KeptProbe,
    Search,
    SearchCandidate,
)
from app.searches.rules import (
    Conclusion,
    SearchOutcome,
    check_conclusions,
    check_search,
    review_outcome,
)
from index import TemplateKeys
from matcher import Box, MatchRule


def search_ref(search_id: int) -> str:
    return f"search:{search_id}"


def _certified(session: Session, operator: int, course: str) -> None:
    """Refuse an operator whose face-search training is not current: searching, verifying
    and examining all need it."""
    if not trained(session, operator, course):
        raise Refusal(Code.training_expired, "Your face-search certification is not current.")


def authorise_search(session: Session, request_id: int, operator: int, course: str) -> None:
    """Refuse, with the specific reason, a search the operator may not make now."""
    _certified(session, operator, course)
    request = get_request(session, request_id)
    check_search(
        request.status,
        request.authorised_until,
        request.searches_used,
        request.searches_allowed,
        datetime.now(UTC),
        operator,
        involved_in(request),
        {a.operator_id for a in request.operators},
    )


@dataclass(frozen=True)
class Searcher:
    """Who searches: the operator, the request-review system passing the search on (if it
    is), and the course the operator's training must be current in."""

    operator: int
    via_system: int | None
    course: str


@dataclass(frozen=True)
class ChosenBy:
    """What chose a search's candidates: the engine's model, the decision rule, and the
    SHA-256 of the operating point its threshold came from."""

    model_id: str
    rule: MatchRule
    operating_point_sha256: str


def spend_search(session: Session, request_id: int, now: datetime) -> bool:
    """Rule 7's enforcement: spend one of the request's searches where it is approved, still
    authorised and has one left, in one statement, so two searches at once cannot both spend
    the last one. `searches.rules.check_search` explains a refusal; they agree
    (tests/test_rules.py)."""
    spent = rows_changed(
        session,
        update(AgencyRequest)
        .where(
            AgencyRequest.id == request_id,
            AgencyRequest.status == Status.approved,
            AgencyRequest.searches_used < AgencyRequest.searches_allowed,
            AgencyRequest.authorised_until > now,
        )
        .values(searches_used=AgencyRequest.searches_used + 1),
    )
    return spent == 1


@dataclass(frozen=True)
class Probe:
    """The probe as searched: its bytes (kept, sealed, until the search is decided) and the
    face in it that was searched with."""

    data: bytes
    face_box: Box


def _probe_context(search_id: int) -> str:
    return f"probe:{search_id}"


def record_search(
    session: Session,
    request_id: int,
    searcher: Searcher,
    chosen_by: ChosenBy,
    probe: Probe,
    hits: Hits,
    keys: TemplateKeys,
    examiners: int,
) -> Search:
    """Spend one of the request's searches and record the search, what chose its candidates,
    the candidates (each under a reference of its own) and, sealed, the probe."""
    if not spend_search(session, request_id, datetime.now(UTC)):
        authorise_search(session, request_id, searcher.operator, searcher.course)  # the reason
        raise Refusal(Code.conflict, "The request changed during the search; try again.")
    search = Search(
        request_id=request_id,
        operator_id=searcher.operator,
        via_system_id=searcher.via_system,
        probe_sha256=hashlib.sha256(probe.data).hexdigest(),
        model_id=chosen_by.model_id,
        index_revision=hits.index_revision,
        threshold=chosen_by.rule.threshold,
        margin=chosen_by.rule.margin,
        operating_point_sha256=chosen_by.operating_point_sha256,
        examiners_required=examiners,
        examinations_recorded=0,
        candidates=[
            SearchCandidate(
                rank=rank,
                ref=secrets.token_urlsafe(12),
                record_id=hit.record.id,
                photo_id=hit.photo_id,
                distance=hit.distance,
            )
            for rank, hit in enumerate(hits.matches, start=1)
        ],
    )
    session.add(search)
    session.flush()
    box = probe.face_box
    session.add(
        KeptProbe(
            search_id=search.id,
            sealed=keys.seal(probe.data, _probe_context(search.id)),
            face_box=f"{box.left},{box.top},{box.right},{box.bottom}",
        )
    )
    trail.record(
        session,
        COMPONENT,
        "search",
        actor_of(searcher.operator),
        "success",
        search_ref(search.id),
        request=request_ref(request_id),
        via=actor_of(searcher.via_system) if searcher.via_system else None,
        model_id=chosen_by.model_id,
        index_revision=hits.index_revision,
        candidates=len(search.candidates),
        examiners=examiners,
    )
    return search


def _search(session: Session, search_id: int) -> Search:
    search = session.get(Search, search_id)
    if search is None:
        raise Refusal(Code.search_not_found, "There is no such search.")
    return search


def examined_by(session: Session, search_id: int, examiner: int) -> Search:
    """The search, for one of its examiners: the operator who ran it or its verifier."""
    search = _search(session, search_id)
    if examiner not in (search.operator_id, search.verifier_id):
        raise Refusal(
            Code.not_search_operator,
            "Only the operator who ran the search, or its verifying examiner, may do this.",
        )
    return search


def _undecided(search: Search) -> None:
    if search.decision is not None:
        raise Refusal(Code.already_decided, "This search has already been decided.")
    if search.candidates_purged_at is not None:
        raise Refusal(
            Code.candidates_purged,
            "This search's candidate list was deleted under the retention policy; "
            "nobody can be identified from it.",
        )


def _comparing(session: Session, search_id: int, examiner: int) -> Search:
    """The search, for one of its examiners who is still comparing: it is undecided and they
    have not concluded (the photos serve the comparison, and nothing after it)."""
    search = examined_by(session, search_id, examiner)
    _undecided(search)
    if session.get(Examination, (search_id, examiner)) is not None:
        # Each read sees what was committed before it, so the conclusions found here may be
        # the ones that decided the search since it was read: that is then the answer.
        session.refresh(search)
        _undecided(search)
        raise Refusal(
            Code.already_examined, "You have recorded your conclusions on this search already."
        )
    return search


def examiner_probe(session: Session, search_id: int, examiner: int, keys: TemplateKeys) -> Probe:
    """The probe as kept, for an examiner still comparing; the read is audited."""
    _comparing(session, search_id, examiner)
    kept = session.get(KeptProbe, search_id)
    if kept is None:
        raise Refusal(Code.probe_not_kept, "The search's probe is no longer kept.")
    left, top, right, bottom = (int(part) for part in kept.face_box.split(","))
    data = keys.open(kept.sealed, _probe_context(search_id))
    trail.record(
        session, COMPONENT, "search.probe", actor_of(examiner), "success", search_ref(search_id)
    )
    return Probe(data, Box(left, top, right, bottom))


def candidate_photos(session: Session, candidate: SearchCandidate) -> list[Photo]:
    """The candidate's enrolled photos: the one whose template matched first, then the
    others by when they were enrolled."""
    if candidate.record_id is None:
        return []
    photos = session.scalars(
        select(Photo).where(Photo.record_id == candidate.record_id).order_by(Photo.id)
    ).all()
    return sorted(photos, key=lambda photo: photo.id != candidate.photo_id)


def _candidate(search: Search, ref: str) -> SearchCandidate:
    sent = ref.encode()
    candidate = next(
        (c for c in search.candidates if secrets.compare_digest(c.ref.encode(), sent)), None
    )
    if candidate is None:
        raise Refusal(Code.no_such_candidate, "The search has no candidate by that reference.")
    return candidate


def examiner_photo(
    session: Session, search_id: int, examiner: int, ref: str, number: int, store: Path | None
) -> bytes:
    """Enrolled photo `number` (1: the one that matched) of a candidate, from the photo store,
    for an examiner still comparing; the read is audited by identifiers only."""
    search = _comparing(session, search_id, examiner)
    candidate = _candidate(search, ref)
    if candidate.record_id is None:
        raise Refusal(Code.record_purged, "That candidate's licence record has since been purged.")
    photos = candidate_photos(session, candidate)
    if not 1 <= number <= len(photos):
        raise Refusal(
            Code.no_such_photo, f"The candidate has {len(photos)} enrolled photo(s), not {number}."
        )
    photo = photos[number - 1]
    data = read_enrolled(store, photo)
    trail.record(
        session,
        COMPONENT,
        "search.photo",
        actor_of(examiner),
        "success",
        search_ref(search_id),
        candidate=candidate.rank,
        photo=number,
    )
    return data


def take_verification(session: Session, search_id: int, examiner: int, course: str) -> Search:
    """A second trained operator takes on the blind verification of a search: never the one
    who ran it, nor anyone who submitted or reviewed its request; one verifier per search."""
    search = _search(session, search_id)
    _undecided(search)
    if search.examiners_required < 2:
        raise Refusal(
            Code.verification_not_needed, "This search's release needs one examiner only."
        )
    request = get_request(session, search.request_id)
    if examiner == search.operator_id or examiner in involved_in(request):
        raise Refusal(
            Code.separation_of_duties,
            "The verifying examiner may not have run the search, submitted or reviewed its "
            "request.",
        )
    _certified(session, examiner, course)
    if search.verifier_id == examiner:
        return search
    taken = rows_changed(
        session,
        update(Search)
        .where(Search.id == search_id, Search.verifier_id.is_(None), Search.decision.is_(None))
        .values(verifier_id=examiner)
        .execution_options(synchronize_session=False),
    )
    if taken != 1:
        raise Refusal(Code.verifier_taken, "Another examiner is verifying this search.")
    session.refresh(search)
    trail.record(
        session,
        COMPONENT,
        "search.verification",
        actor_of(examiner),
        "success",
        search_ref(search_id),
    )
    return search


def awaiting_verification(session: Session, examiner: int) -> list[Search]:
    """Undecided searches that need a second examiner and that this operator may verify, or
    is verifying."""
    searches = session.scalars(
        select(Search)
        .where(
            Search.decision.is_(None),
            Search.candidates_purged_at.is_(None),
            Search.examiners_required > 1,
            Search.operator_id != examiner,
            (Search.verifier_id.is_(None)) | (Search.verifier_id == examiner),
        )
        .order_by(Search.searched_at)
    ).all()
    mine = []
    for search in searches:
        request = get_request(session, search.request_id)
        if examiner not in involved_in(request):
            mine.append(search)
    return mine


def undecided_searches_of(session: Session, operator: int) -> list[Search]:
    """The operator's own searches still awaiting a decision, oldest first."""
    return list(
        session.scalars(
            select(Search)
            .where(
                Search.operator_id == operator,
                Search.decision.is_(None),
                Search.candidates_purged_at.is_(None),
            )
            .order_by(Search.searched_at)
        )
    )


def unshown_releases_of(session: Session, operator: int) -> list[int]:
    """The searches whose release, made by a verifier's examination, the operator who ran
    them has not yet been shown."""
    return list(
        session.scalars(
            select(Disclosure.search_id).where(
                Disclosure.released_by == operator, Disclosure.shown_at.is_(None)
            )
        )
    )


@dataclass(frozen=True)
class Examined:
    """What an examination did: the search as it now stands, and the release to show the
    caller, when their examination decided it and they ran the search."""

    search: Search
    release: LicenseRecord | None


def examine(
    session: Session,
    search_id: int,
    examiner: int,
    concluded: Sequence[tuple[str, Conclusion, str]],
    course: str,
) -> Examined:
    """Record an examiner's conclusion on every candidate (by reference, with its basis) and,
    once the examiners the search needs have all concluded, decide it: a release only when
    each identified the same candidate, which discloses that person's five fields to the
    requesting agency; a disagreement releases nothing and is recorded."""
    search = _comparing(session, search_id, examiner)
    _certified(session, examiner, course)
    ranks = [(_candidate(search, ref).rank, conclusion) for ref, conclusion, _ in concluded]
    check_conclusions([c.rank for c in search.candidates], ranks)
    # Counting the examination first locks the search's row: of two examiners concluding at
    # once the second waits, then sees the first's conclusions below.
    counted = rows_changed(
        session,
        update(Search)
        .where(
            Search.id == search_id,
            Search.decision.is_(None),
            Search.candidates_purged_at.is_(None),
        )
        .values(examinations_recorded=Search.examinations_recorded + 1)
        .execution_options(synchronize_session=False),
    )
    if counted != 1:
        session.refresh(search)
        _undecided(search)  # decided, or purged, since it was read: say which
        raise Refusal(Code.conflict, "The search changed during the examination; try again.")
    if session.get(Examination, (search_id, examiner)) is not None:  # concluded meanwhile
        raise Refusal(
            Code.already_examined, "You have recorded your conclusions on this search already."
        )
    session.add(
        Examination(
            search_id=search_id,
            examiner_id=examiner,
            conclusions=[
                CandidateConclusion(rank=rank, conclusion=conclusion, basis=basis)
                for (rank, conclusion), (_, _, basis) in zip(ranks, concluded, strict=True)
            ],
        )
    )
    session.flush()
    session.refresh(search)
    examinations = session.scalars(
        select(Examination)
        .where(Examination.search_id == search_id)
        .options(selectinload(Examination.conclusions))
    ).all()
    tally = Counter(conclusion for _, conclusion in ranks)
    counts = {
        "identifications": tally[Conclusion.identification],
        "exclusions": tally[Conclusion.exclusion],
        "inconclusives": tally[Conclusion.inconclusive],
    }
    decided = review_outcome(
        [{c.rank: c.conclusion for c in e.conclusions} for e in examinations],
        search.examiners_required,
    )
    if decided is None:
        trail.record(
            session,
            COMPONENT,
            "search.examination",
            actor_of(examiner),
            "success",
            search_ref(search_id),
            **counts,
        )
        return Examined(search, None)
    return _decide(session, search, examiner, len(examinations), counts, *decided)


def _decide(
    session: Session,
    search: Search,
    examiner: int,
    examiners: int,
    counts: dict[str, int],
    outcome: SearchOutcome,
    rank: int | None,
) -> Examined:
    """Record the outcome, release the identified person's five fields if there is one, and
    delete the kept probe, in the examination's transaction: one audit entry for the
    examination that decided, the decision and the release."""
    record = None
    if rank is not None:
        record = next(c for c in search.candidates if c.rank == rank).record
        if record is None:
            raise Refusal(
                Code.record_purged, "That candidate's licence record has since been purged."
            )
    now = datetime.now(UTC)
    search.decision, search.confirmed_rank, search.decided_at = outcome, rank, now
    session.execute(delete(KeptProbe).where(KeptProbe.search_id == search.id))
    disclosure = None
    shown = examiner == search.operator_id
    if record is not None:
        request = session.get(AgencyRequest, search.request_id)
        assert request is not None
        disclosure = Disclosure(
            search_id=search.id,
            request_id=search.request_id,
            record_id=record.id,
            license_number=record.license_number,
            agency_name=request.agency_name,
            released_by=search.operator_id,
            shown_at=now if shown else None,
        )
        session.add(disclosure)
    session.flush()
    trail.record(
        session,
        COMPONENT,
        "search.decision",
        actor_of(examiner),
        outcome,
        search_ref(search.id),
        request=request_ref(search.request_id),
        disclosure=f"disclosure:{disclosure.id}" if disclosure else None,
        record=f"license_record:{record.id}" if record else None,
        examiners=examiners,
        **counts,
    )
    return Examined(search, record if shown else None)


def release_to_operator(session: Session, search_id: int, operator: int) -> LicenseRecord:
    """The release a verifier's examination made, shown once to the operator who searched."""
    search = _search(session, search_id)
    if search.operator_id != operator:
        raise Refusal(
            Code.not_search_operator, "Only the operator who ran the search reads its release."
        )
    disclosure = session.scalar(select(Disclosure).where(Disclosure.search_id == search_id))
    if search.decision is None:
        raise Refusal(Code.search_undecided, "The search has not been decided yet.")
    if disclosure is None or disclosure.record_id is None:
        raise Refusal(Code.no_release, "The search released nobody.")
    shown = rows_changed(
        session,
        update(Disclosure)
        .where(Disclosure.id == disclosure.id, Disclosure.shown_at.is_(None))
        .values(shown_at=datetime.now(UTC))
        .execution_options(synchronize_session=False),
    )
    if shown != 1:
        raise Refusal(Code.release_already_shown, "The release was shown to you once already.")
    record = session.get(LicenseRecord, disclosure.record_id)
    if record is None:
        raise Refusal(Code.record_purged, "The identified licence record has since been purged.")
    trail.record(
        session,
        COMPONENT,
        "search.release",
        actor_of(operator),
        "success",
        search_ref(search_id),
        disclosure=f"disclosure:{disclosure.id}",
    )
    return record


def outcome_for_system(
    session: Session, search_id: int, system: int
) -> tuple[Search, LicenseRecord | None]:
    """A decided search's outcome for the request-review system that passed it on: the
    release, or that there was none. It never sees a candidate."""
    search = _search(session, search_id)
    if search.via_system_id != system:
        raise Refusal(Code.search_not_found, "There is no such search.")
    if search.decision is None:
        raise Refusal(Code.search_undecided, "The search has not been decided yet.")
    disclosure = session.scalar(select(Disclosure).where(Disclosure.search_id == search_id))
    record = None
    if disclosure is not None:
        if disclosure.record_id is None:
            raise Refusal(
                Code.record_purged, "The identified licence record has since been purged."
            )
        record = session.get(LicenseRecord, disclosure.record_id)
    trail.record(
        session,
        COMPONENT,
        "search.outcome",
        actor_of(system),
        search.decision,
        search_ref(search_id),
        disclosure=f"disclosure:{disclosure.id}" if disclosure else None,
    )
    return search, record


def disclosures_of(session: Session, license_number: str) -> list[Disclosure]:
    return list(
        session.scalars(
            select(Disclosure)
            .where(Disclosure.license_number == license_number)
            .options(selectinload(Disclosure.request))
            .order_by(Disclosure.released_at)
        )
    )
