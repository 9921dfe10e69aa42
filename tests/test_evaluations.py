"""The independent tester's door (RCW 43.386.050): an evaluation job on LFW people gives the
per-gender rates the agency's own check (`facematch calibrate --check`) gives on the same
photos; the tester reaches neither the gallery, a licence record nor another
tester's job; the job's photos are gone when it ends; and a set too large, malformed or sent
too often is refused with its code."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.api.main import create_app
from app.audit.models import AuditEntry
from app.core.composition import (
    configured_operating_point,
    encoder,
    quality_policy,
    template_keys,
)
from app.core.settings import Settings
from app.evaluations.models import EvaluationJob, EvaluationPhoto, JobStatus
from app.evaluations.photo_set import Limits, read_photo_set
from app.evaluations.runner import Lease, LeaseLost
from app.evaluations.workflow import LEASE, claim_next, finish, give_back, renew, submit
from app.gallery.models import LicenseRecord
from app.gallery.store import template_count
from auth import Role
from calibration.check import check_point
from calibration.evaluation import evaluate
from calibration.photos import Photo, encode
from matcher import MatchRule
from tests.support.evaluations import SetPhoto, lfw_gendered, zipped
from tests.support.service import LOOPBACK
from tests.support.staff import Staff


@pytest.fixture
def testing(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "evaluations_per_day": 3,
            "evaluation_max_photos": 300,
            "evaluation_max_bytes": 8 * 1024 * 1024,
        }
    )


@pytest.fixture
def desk(testing: Settings, staff: Staff) -> Iterator[tuple[TestClient, Staff]]:
    staff.add("tess.tester", Role.independent_tester)
    staff.add("toby.tester", Role.independent_tester)
    with TestClient(create_app(testing), client=LOOPBACK) as client:
        yield client, staff


def send(
    client: TestClient, staff: Staff, archive: bytes, who: str = "tess.tester"
) -> httpx.Response:
    headers = staff.headers(who) | {"Content-Type": "application/zip"}
    return client.post("/v1/evaluations", headers=headers, content=archive)


def finished(client: TestClient, staff: Staff, job: int, who: str = "tess.tester") -> dict:
    """The job once it has ended, its progress seen on the way."""
    deadline = time.monotonic() + 300
    while True:
        read = client.get(f"/v1/evaluations/{job}", headers=staff.headers(who))
        assert read.status_code == 200, read.text
        view = read.json()
        assert 0 <= view["progress"]["encoded"] <= view["progress"]["photos"] == view["photos"]
        if view["status"] in ("done", "failed"):
            return dict(view)
        assert time.monotonic() < deadline, "the evaluation did not end"
        time.sleep(0.5)


# One run of the engine is what this needs; both databases are tried by the races below.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_lfw_evaluation_gives_per_gender_rates_as_the_agencys_check_does(
    desk: tuple[TestClient, Staff], testing: Settings, sessions: sessionmaker[Session]
) -> None:
    client, staff = desk
    photos = lfw_gendered(80)
    with sessions() as session:
        records = session.scalar(select(func.count()).select_from(LicenseRecord))
    sent = send(client, staff, zipped(photos))
    assert sent.status_code == 202, sent.text
    job = sent.json()
    assert (job["status"], job["photos"], job["labels"]) == ("queued", len(photos), ["gender"])
    view = finished(client, staff, job["id"])
    assert view["status"] == "done", view["failure"]
    results = view["results"]

    # The same photos measured in process, as `facematch calibrate --check` measures them.
    point, digest = configured_operating_point(testing)
    assert (view["model_id"], view["operating_point_sha256"]) == (point.model_id, digest)
    rule = MatchRule(point.threshold, testing.max_candidates, testing.match_margin)
    measured = encode(
        [Photo(photo.path, photo.person) for photo in photos], encoder(testing), workers=1
    )
    expected = evaluate(
        measured, [photo.labels for photo in photos], point, quality_policy(testing), rule
    )
    assert results == json.loads(expected.model_dump_json())

    genders = results["labels"]["gender"]
    assert set(genders) == {"female", "male"}
    # Each gender's identification rates are those `facematch calibrate --check --by-group`
    # states for these photos, and the per-comparison FMR the point promises lies inside
    # each gender's interval.
    by_gender = replace(
        measured,
        photos=[Photo(p.path, p.person, p.labels["gender"]) for p in photos],
    )
    check = check_point(by_gender, point, quality_policy(testing), rule, by_group=True)
    for gender, group in genders.items():
        assert group["photos"] == sum(p.labels["gender"] == gender for p in photos)
        assert group["search"] == json.loads(check.groups[gender].model_dump_json())
        assert group["fmr"]["low"] <= point.fmr <= group["fmr"]["high"]
        scores = group["scores"]
        assert len(scores["mated"]) == len(results["score_edges"]) - 1 == len(scores["non_mated"])
        searches = group["search"]["mated_searches"]
        assert sum(scores["mated"]) + scores["mated_refused"] == searches
    assert results["threshold"] == point.threshold

    # Nothing of the gallery was touched; the photos are gone, their hashes kept.
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(LicenseRecord)) == records
        assert template_count(session, point.model_id, "person") == 0
        kept = session.execute(
            select(EvaluationPhoto.sha256, EvaluationPhoto.sealed).where(
                EvaluationPhoto.job_id == job["id"]
            )
        ).all()
        assert len(kept) == len(photos) and all(sealed is None for _, sealed in kept)
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.object_id == f"evaluation:{job['id']}")
        ).all()
    events = [(e.event_type, e.outcome) for e in audited]
    assert events[:3] == [
        ("evaluation.submit", "success"),
        ("evaluation.start", "success"),
        ("evaluation.read", "success"),
    ]
    assert ("evaluation.end", "done") in events
    [end] = [e for e in audited if e.event_type == "evaluation.end"]
    assert json.loads(end.details)["photos_deleted"] == len(photos)
    # The audit log holds identifiers and counts: no tester's person, label or file name.
    written = " ".join(e.details for e in audited)
    assert not any(p.person in written or p.path.name in written for p in photos)
    assert "female" not in written


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_tester_reaches_no_gallery_no_licence_record_and_no_other_testers_job(
    desk: tuple[TestClient, Staff],
) -> None:
    client, staff = desk
    sent = send(client, staff, zipped(lfw_gendered(4, per_person=2)))
    assert sent.status_code == 202, sent.text
    job = sent.json()["id"]
    for who, path in [
        ("toby.tester", f"/v1/evaluations/{job}"),
        ("tess.tester", f"/v1/evaluations/{job + 1}"),
    ]:
        refused = client.get(path, headers=staff.headers(who))
        assert (refused.status_code, refused.json()["code"]) == (404, "evaluation_not_found")
    assert client.get("/v1/evaluations", headers=staff.headers("toby.tester")).json() == []
    for method, path in [
        ("POST", "/v1/requests/1/searches"),
        ("GET", "/v1/searches/1"),
        ("GET", "/v1/disclosures"),
        ("GET", "/v1/requests/1"),
        ("GET", "/v1/operating-point"),
        ("GET", "/v1/audit"),
    ]:
        refused = client.request(method, path, headers=staff.headers("tess.tester"))
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden"), path
    finished(client, staff, job)


def photo_set_refusals(photos: list[SetPhoto]) -> list[tuple[bytes, int, str]]:
    """Archives a tester might send by mistake, or an attacker on purpose, with the answer
    each gets."""
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as written:
        written.writestr("manifest.csv", "photo,person\nbig.jpg,a\n")
        written.writestr("big.jpg", b"\xff\xd8\xff" + bytes(20 * 1024 * 1024))
    # Two photos each under the photo limit, past the set's limit (8 MiB here) together.
    swollen = io.BytesIO()
    with zipfile.ZipFile(swollen, "w", zipfile.ZIP_DEFLATED) as written:
        written.writestr("manifest.csv", "photo,person\na.jpg,a\nb.jpg,b\n")
        for name in ("a.jpg", "b.jpg"):
            written.writestr(name, b"\xff\xd8\xff" + bytes(6 * 1024 * 1024))
    # A photo's entry marked encrypted, as an archiver with a password writes it.
    locked = bytearray(zipped(photos))
    entry = locked.index(b"PK\x01\x02", locked.index(b"PK\x01\x02") + 1)
    locked[entry + 8] |= 0x1
    manifest = "photo,person,gender\n" + "".join(
        f"photos/{p.path.name},{p.person},{p.labels['gender']}\n" for p in photos
    )
    twice = manifest + manifest.split("\n", 2)[1] + "\n"
    many_values = "photo,person,band\n" + "".join(f"p{n}.jpg,a{n % 4},v{n}\n" for n in range(33))
    return [
        (swollen.getvalue(), 413, "photo_set_too_large"),
        (bytes(locked), 422, "invalid_photo_set"),
        (zipped(photos, manifest=twice), 422, "invalid_photo_set"),  # one photo, two lines
        (zipped(photos, manifest=many_values), 422, "invalid_photo_set"),  # an identifier
        (b"not a zip at all", 422, "invalid_photo_set"),
        (bomb.getvalue(), 413, "photo_set_too_large"),
        (zipped(photos, manifest="photo,gender\nx.jpg,male\n"), 422, "invalid_photo_set"),
        (
            zipped(photos, manifest=manifest + "photos/absent.jpg,x,male\n"),
            422,
            "invalid_photo_set",
        ),
        (zipped(photos[:3]), 422, "invalid_photo_set"),  # nobody to search for
        (zipped(photos, manifest=manifest.replace("gender", "Gender;x")), 422, "invalid_photo_set"),
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_photo_set_malformed_or_too_large_is_refused_with_its_code_and_audited(
    desk: tuple[TestClient, Staff], sessions: sessionmaker[Session]
) -> None:
    client, staff = desk
    photos = lfw_gendered(4, per_person=2)
    refusals = photo_set_refusals(photos)
    one = f"photos/{photos[0].path.name},{photos[0].person}\n"
    refusals.append(
        (zipped(photos, manifest="photo,person\n" + one * 301), 413, "photo_set_too_large")
    )
    for archive, status, code in refusals:
        refused = send(client, staff, archive)
        assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(EvaluationJob)) == 0
        outcomes = session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.event_type == "evaluation.submit")
        ).all()
    assert len(outcomes) == len(refusals)
    assert all(outcome.startswith("refused:") for outcome in outcomes)


def test_ten_sets_sent_at_once_queue_one_job_and_the_day_is_bounded(
    desk: tuple[TestClient, Staff], sessions: sessionmaker[Session]
) -> None:
    """One job at a time per tester, checked and queued as one step on either database; and
    no more than FACEMATCH_EVALUATIONS_PER_DAY (3 here) a day."""
    client, staff = desk
    archive = zipped(lfw_gendered(4, per_person=2))
    with ThreadPoolExecutor(10) as threads:
        answers = list(threads.map(lambda _: send(client, staff, archive), range(10)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [429] * 9, [a.text for a in answers]
    busy = next(a for a in answers if a.status_code == 429)
    assert busy.json()["code"] == "too_many_evaluations" and busy.headers["Retry-After"] == "60"
    first = next(a for a in answers if a.status_code == 202).json()["id"]
    finished(client, staff, first)
    for _ in range(2):
        queued = send(client, staff, archive)
        assert queued.status_code == 202
        finished(client, staff, queued.json()["id"])
    over = send(client, staff, archive)
    assert (over.status_code, over.json()["code"]) == (429, "too_many_evaluations")
    assert 0 < int(over.headers["Retry-After"]) <= 24 * 3600
    with sessions() as session:
        statuses = session.scalars(select(EvaluationJob.status)).all()
    assert statuses == [JobStatus.done] * 3


def a_job(testing: Settings, staff: Staff, session: Session, people: int) -> EvaluationJob:
    """A job queued straight from a set of `people` LFW people, two photos each."""
    tester = staff.add("tess.tester", Role.independent_tester)
    photo_set = read_photo_set(
        io.BytesIO(zipped(lfw_gendered(people, per_person=2))),
        Limits(photos=300, photo_bytes=testing.max_image_bytes, total_bytes=1 << 26),
    )
    return submit(session, tester, photo_set, template_keys(testing), per_day=5)


def lease_lapsed(session: Session) -> list[object]:
    starts = select(AuditEntry.details).where(AuditEntry.event_type == "evaluation.start")
    return [json.loads(details)["lease_lapsed"] for details in session.scalars(starts)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_job_whose_runner_died_runs_again_once_its_lease_lapses(
    testing: Settings, sessions: sessionmaker[Session], staff: Staff
) -> None:
    """A job left running by a runner that died mid-way (no word since, its photos kept): the
    next runner to look, in this process or another, takes it up once the lease lapses and
    measures it from its photos; the dead runner's late word changes nothing."""
    died = datetime.now(UTC) - LEASE - timedelta(seconds=1)
    with sessions() as session:
        job = a_job(testing, staff, session, 4)
        assert claim_next(session, "the-runner-that-died", died) == job.id
    with TestClient(create_app(testing), client=LOOPBACK) as client:
        view = finished(client, staff, job.id)
    assert view["status"] == "done" and view["progress"]["encoded"] == job.photos
    with sessions() as session:
        late = datetime.now(UTC)
        assert not renew(session, job.id, "the-runner-that-died", 1, late)
        assert not finish(session, job.id, "the-runner-that-died", None, "late", "m", "0" * 64)
        ended = session.get_one(EvaluationJob, job.id)
        assert (ended.status, ended.failure, ended.runner) == (JobStatus.done, None, None)
        assert lease_lapsed(session) == [False, True]


def test_a_job_under_lease_is_one_runners_and_of_ten_racing_for_a_lapsed_one_one_wins(
    testing: Settings, sessions: sessionmaker[Session], staff: Staff
) -> None:
    """Two service processes each run evaluations: neither takes the other's job while its
    lease holds (its progress renews it), ten runners racing for a lapsed one leave it one
    runner's, and the runner that lost it can neither renew, end nor give it back."""
    now = datetime.now(UTC)
    with sessions() as session:
        job = a_job(testing, staff, session, 4)
        assert claim_next(session, "first", now) == job.id
        assert claim_next(session, "second", now + LEASE - timedelta(seconds=1)) is None
        assert renew(session, job.id, "first", 2, now + timedelta(minutes=5))
        assert claim_next(session, "second", now + LEASE + timedelta(seconds=1)) is None
        give_back(session, job.id, "second")  # not its job: nothing happens
        assert session.get_one(EvaluationJob, job.id, populate_existing=True).runner == "first"
    lapsed = now + timedelta(minutes=5) + LEASE + timedelta(seconds=1)

    def claim(racer: int) -> int | None:
        with sessions() as session:
            return claim_next(session, f"racer-{racer}", lapsed)

    with ThreadPoolExecutor(10) as threads:
        claimed = list(threads.map(claim, range(10)))
    assert sorted(claimed, key=lambda taken: taken is None) == [job.id] + [None] * 9
    winner = f"racer-{claimed.index(job.id)}"
    with sessions() as session:
        assert not renew(session, job.id, "first", 3, lapsed)
        assert not finish(session, job.id, "first", None, "lost", "m", "0" * 64)
        give_back(session, job.id, "first")
        held = session.get_one(EvaluationJob, job.id)
        assert (held.status, held.runner, held.encoded) == (JobStatus.running, winner, 0)
        assert all(session.scalars(select(EvaluationPhoto.sealed)))
    with sessions() as session:
        assert finish(session, job.id, winner, None, "failed as a test", "m", "0" * 64)
        assert not any(session.scalars(select(EvaluationPhoto.sealed)))
        assert lease_lapsed(session) == [False, True]


def test_a_running_jobs_lease_is_renewed_by_time_and_let_go_once_another_runner_has_it(
    testing: Settings, sessions: sessionmaker[Session], staff: Staff
) -> None:
    """The long steps write no progress (a worker starting, a slow photo, the results
    measured): the lease is renewed all the same, and found lost once another runner took
    the job."""
    almost_lapsed = datetime.now(UTC) - LEASE + timedelta(seconds=30)
    with sessions() as session:
        job = a_job(testing, staff, session, 4)
        assert claim_next(session, "runner", almost_lapsed) == job.id

    def lease_until() -> datetime:
        with sessions() as session:
            until = session.get_one(EvaluationJob, job.id).lease_until
        assert until is not None
        return until

    with Lease(sessions, job.id, "runner", every_s=0.05) as lease:
        deadline = time.monotonic() + 30
        while lease_until() < datetime.now(UTC) + LEASE - timedelta(minutes=1):
            assert time.monotonic() < deadline, "the lease was not renewed"
            time.sleep(0.05)
        lease.check()
        with sessions.begin() as session:
            session.get_one(EvaluationJob, job.id).runner = "another"
        with pytest.raises(LeaseLost):
            while time.monotonic() < deadline:
                lease.check()
                time.sleep(0.05)
    with sessions() as session:  # the other runner's lease holds
        assert claim_next(session, "a-third", datetime.now(UTC)) is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_stopping_service_gives_its_job_back_with_its_photos(
    testing: Settings, sessions: sessionmaker[Session], staff: Staff
) -> None:
    """Stopped mid-job, the runner queues it again at once (no lease to wait out), its photos
    kept for whichever runner is next."""
    with sessions() as session:
        job = a_job(testing, staff, session, 40)
    with TestClient(create_app(testing), client=LOOPBACK):
        deadline = time.monotonic() + 120
        while True:
            with sessions() as session:
                if session.get_one(EvaluationJob, job.id).status is JobStatus.running:
                    break
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.1)
    with sessions() as session:
        given_back = session.get_one(EvaluationJob, job.id)
        assert (given_back.status, given_back.runner, given_back.lease_until) == (
            JobStatus.queued,
            None,
            None,
        )
        assert len([s for s in session.scalars(select(EvaluationPhoto.sealed)) if s]) == job.photos
