"""Calibration: the rates, the refusal when the photos cannot show the rate asked for, the
operating point file, and the service that loads it, uses it and reports it."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.api.main import create_app
from app.cli import cli
from app.core.composition import StartupRefused, encoder, quality_policy
from app.core.settings import Settings
from calibration.calibrate import CalibrationRefused, calibrate
from calibration.photos import Photo, encode, read_set, write_set
from calibration.rates import (
    NonMated,
    Templates,
    enrolled_set,
    fit_tail,
    fmr_for,
    mated,
    non_mated,
    supported_gallery_size,
)
from index import fuse
from matcher import ENGINES, EngineName, engine_spec
from matcher.operating_point import load_operating_point, shipped
from tests.support.data import LFW


def test_fpir_and_the_per_comparison_rate_are_inverse() -> None:
    fmr = fmr_for(0.001, 10_000)
    assert fmr == pytest.approx(1.0005e-7, rel=1e-3)  # about target / N
    assert 1 - (1 - fmr) ** 10_000 == pytest.approx(0.001)


def test_the_rule_of_three_sets_the_largest_gallery_the_data_support() -> None:
    # 3 / FMR comparisons are needed: 3 million show FMR 1e-6, a gallery of 1,000 at 0.1 %.
    assert supported_gallery_size(0.001, 3_000_000) == 1000
    assert supported_gallery_size(0.001, 2_900_000) == 967
    assert supported_gallery_size(0.001, 2) == 0


def test_the_threshold_lets_through_no_more_than_the_rate_allows() -> None:
    rates = NonMated({"all": 1000}, {"all": np.arange(1000) / 1000.0})
    # FMR 0.5 %: 5 of 1,000 comparisons may fall under the threshold (strictly).
    threshold = rates.threshold("all", 0.005)
    assert (rates.lowest["all"] < threshold).sum() == 5


def test_non_mated_comparisons_are_counted_per_group_within_a_set() -> None:
    vectors = np.eye(4, dtype=np.float32)
    templates = Templates(
        "s",
        vectors,
        persons=np.array(["a", "a", "b", "c"]),
        groups=np.array(["f", "f", "m", "f"]),
    )
    rates = non_mated([templates], "cosine")
    # Each photo against every other person as enrolled (a with their first photo): a's two
    # photos against b and c, b's against a and c, c's against a and b: 8, each touching
    # group f; the 5 with b on either side touch m.
    assert rates.comparisons == {"all": 8, "s:f": 8, "s:m": 5}
    assert np.allclose(rates.lowest["all"], 1.0)


def test_the_tail_model_goes_below_the_data_and_says_it_is_a_model() -> None:
    rng = np.random.default_rng(1)
    distances = np.sort(rng.normal(1.0, 0.1, 1_000_000))
    tail = fit_tail(distances[:50_000], 1_000_000)
    beyond = tail.threshold(1e-7)
    assert beyond < distances[0] < tail.anchor
    assert "Pareto" in tail.MODEL


@pytest.fixture(scope="module")
def lfw_sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small calibration set from real LFW photos: eight people with several photos and
    thirty with one, gender groups alternating."""
    people = sorted(p for p in (LFW / "images").iterdir() if p.is_dir())
    several = [p for p in people if len(list(p.iterdir())) >= 3][:8]
    single = [p for p in people if len(list(p.iterdir())) == 1][:30]
    photos = [
        Photo(path, person.name, "female" if i % 2 else "male")
        for i, person in enumerate(several + single)
        for path in sorted(person.iterdir())[:3]
    ]
    target = tmp_path_factory.mktemp("calibration") / "lfw.csv"
    write_set(target, photos)
    return target


def test_calibration_refuses_a_gallery_its_photos_cannot_support(lfw_sets: Path) -> None:
    settings = Settings(engine="sface")
    encoded = {"lfw": encode(read_set(lfw_sets), encoder(settings, "central"), 1)}
    spec, policy = settings.engine_spec, quality_policy(settings)
    # 54 photos: about 1,400 non-mated comparisons, enough for FPIR 10 % over 50 people.
    point = calibrate(encoded, spec, policy, target_fpir=0.1)
    assert 0 < point.supported_gallery_size < 100 and not point.modelled
    assert point.gallery_size == point.supported_gallery_size
    assert point.mated_comparisons > 0 and 0 <= point.fnir <= 1
    with pytest.raises(CalibrationRefused, match="at most"):
        calibrate(encoded, spec, policy, target_fpir=0.1, gallery_size=10_000)
    modelled = calibrate(encoded, spec, policy, 0.1, gallery_size=10_000, extrapolate=True)
    assert modelled.modelled and modelled.model and modelled.threshold < point.threshold
    by_group = calibrate(encoded, spec, policy, 0.1, by_group=True)
    assert set(by_group.groups) == {"lfw:female", "lfw:male"}
    assert by_group.threshold == min(g.threshold for g in by_group.groups.values())
    assert by_group.supported_gallery_size <= point.supported_gallery_size


def test_the_calibrate_command_writes_an_operating_point_the_service_can_load(
    lfw_sets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEMATCH_DATA_DIR", str(tmp_path))
    out = tmp_path / "point.json"
    args = ["calibrate", "--engine", "sface", "--photos", str(lfw_sets), "--workers", "1"]
    review = tmp_path / "review.csv"
    written = CliRunner().invoke(
        cli, [*args, "--target-fpir", "0.1", "--out", str(out), "--review", str(review)]
    )
    assert written.exit_code == 0, written.output
    rows = list(csv.DictReader(review.open()))
    distances = [float(row["distance"]) for row in rows]
    assert len(rows) == 50 and distances == sorted(distances)
    assert all(row["person"] != row["other_person"] for row in rows)
    point, digest = load_operating_point(out)
    assert point.model_id == engine_spec("sface").model_id
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    refused = CliRunner().invoke(cli, [*args, "--gallery-size", "100000"])
    assert refused.exit_code == 2 and "--extrapolate" in refused.output
    missing = tmp_path / "missing.csv"
    missing.write_text("path,person\nnowhere.jpg,x\n")
    assert "missing" in CliRunner().invoke(cli, ["calibrate", "--photos", str(missing)]).output


@pytest.mark.parametrize("engine", list(ENGINES))
def test_each_engine_ships_an_operating_point_measured_for_the_worst_group(
    engine: EngineName,
) -> None:
    point, _ = load_operating_point(shipped(engine))
    assert point.fits(engine_spec(engine))
    assert point.by_group and point.target_fpir <= 0.001 and not point.modelled
    assert point.gallery_size == point.supported_gallery_size
    assert point.threshold == min(g.threshold for g in point.groups.values())
    # Every group's photos hold at least 3 / FMR comparisons behind the threshold.
    assert all(g.comparisons >= 3 / point.fmr for g in point.groups.values())
    # Calibrated for the templates the index searches by default, and checked on two kinds
    # of photos it was not calibrated on, its stated FPIR within what each shows.
    assert point.gallery_templates == Settings().gallery_templates
    assert set(point.checks) == {"lfw-held-out", "celeba"}
    assert all(check.fpir.low <= point.target_fpir for check in point.checks.values())


def test_the_service_refuses_an_operating_point_for_another_engine(
    settings: Settings, tmp_path: Path
) -> None:
    other = next(e for e in ENGINES if e != settings.engine)
    with pytest.raises(StartupRefused, match="not the configured engine"):
        create_app(settings.model_copy(update={"operating_point": shipped(other)}))
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps({"threshold": "low"}))
    with pytest.raises(StartupRefused, match="not an operating point"):
        create_app(settings.model_copy(update={"operating_point": damaged}))
    with pytest.raises(StartupRefused, match="cannot be read"):
        create_app(settings.model_copy(update={"operating_point": tmp_path / "none.json"}))


def test_the_default_operating_point_is_the_one_shipped_for_the_engine() -> None:
    for engine in ENGINES:
        assert Settings(engine=engine).operating_point_file == shipped(engine)


def test_person_template_comparisons_are_each_photo_against_every_other_persons_fusion() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    persons = np.array(["a", "a", "a", "b", "b", "c", "d"])
    templates = Templates("set", vectors, persons, np.array([""] * 7))
    gallery = enrolled_set(templates, "cosine", "person")
    # a: two of three photos fused, b: one of two (one left to search), c and d: their one.
    assert [len(rows) for rows in gallery.rows] == [2, 1, 1, 1]
    np.testing.assert_allclose(gallery.vectors[0], fuse(vectors[:2], "cosine"), atol=1e-6)
    rates = non_mated([templates], "cosine", "person")
    every_other = sum(int((gallery.persons != person).sum()) for person in persons)
    assert rates.comparisons["all"] == every_other
    assert len(mated([templates], "cosine", "person")) == 2  # a's third photo, b's second

    # Photo templates: the same people, each at the closer of their enrolled photos.
    photos = enrolled_set(templates, "cosine", "photo")
    assert len(photos.vectors) == 5 and photos.owner.tolist() == [0, 0, 1, 2, 3]
    to_a = photos.distances_to(vectors[6:], "cosine")[0, 0]
    assert to_a == pytest.approx(min(1 - vectors[6] @ vectors[0], 1 - vectors[6] @ vectors[1]))
    assert non_mated([templates], "cosine", "photo").comparisons["all"] == every_other
    closest = mated([templates], "cosine", "photo")
    assert len(closest) == 2 and closest[0] == pytest.approx(
        min(1 - vectors[2] @ vectors[0], 1 - vectors[2] @ vectors[1]), abs=1e-6
    )


def test_the_check_command_records_what_a_point_gives_and_fails_a_broken_promise(
    lfw_sets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEMATCH_DATA_DIR", str(tmp_path))
    point_file = tmp_path / "point.json"
    base = ["calibrate", "--photos", str(lfw_sets), "--workers", "1"]
    made = CliRunner().invoke(
        cli, [*base, "--engine", "sface", "--target-fpir", "0.1", "--out", str(point_file)]
    )
    assert made.exit_code == 0, made.output
    recorded = tmp_path / "checked.json"
    checked = CliRunner().invoke(
        cli, [*base, "--by-group", "--check", str(point_file), "--out", str(recorded)]
    )
    assert checked.exit_code == 0, checked.output
    point, _ = load_operating_point(recorded)
    found = point.checks["lfw"]
    assert found.people_enrolled > 0 and found.mated_searches > 0
    assert found.fnir.low <= found.fnir.value <= found.fnir.high
    assert found.fpir.low <= point.target_fpir  # no more false positives than it states
    assert (found.max_candidates, found.margin) == (5, 0.0)
    assert set(found.groups) == {"female", "male"}

    # A point whose threshold lets nearly every stranger through names far more people
    # than the FPIR it states: the check says so and exits 1.
    loose = tmp_path / "loose.json"
    loose.write_text(point.model_copy(update={"threshold": 0.95}).model_dump_json())
    broken = CliRunner().invoke(cli, [*base, "--check", str(loose)])
    assert broken.exit_code == 1 and "more false positives than it states" in broken.output
    mixed = CliRunner().invoke(cli, [*base, "--check", str(loose), "--templates", "person"])
    assert mixed.exit_code == 2 and "from the point" in mixed.output


def test_the_check_refuses_a_set_with_nobody_to_search_for(
    lfw_sets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """People with one photo each: everyone enrolled has nothing left to search with, so
    no miss rate can be shown, and the check says so instead of reporting one."""
    monkeypatch.setenv("FACEMATCH_DATA_DIR", str(tmp_path))
    singles = [p for p in read_set(lfw_sets) if p.path.stem.endswith("_0001")][-30:]
    single_set = tmp_path / "singles.csv"
    write_set(single_set, singles)
    refused = CliRunner().invoke(
        cli, ["calibrate", "--photos", str(single_set), "--check", str(shipped("sface"))]
    )
    assert refused.exit_code == 2 and "nobody enrolled has a photo left" in refused.output
