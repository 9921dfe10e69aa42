"""The accountability report as the tests check it: every figure it states against where it
comes from (the operating point file, the transparency report, the settings, the installed
packages and weight files), and its HTML the console's template drawing those figures and no
number of its own."""

import hashlib
import html
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.cli.reports import accountability_document
from app.core.composition import quality_policy
from app.core.database import make_engine, session_factory
from app.core.settings import Settings
from app.gallery.release import RELEASED_FIELDS
from app.gallery.store import people_enrolled
from app.oversight.accountability import ENGINE_PARTS
from app.oversight.reports import transparency
from app.oversight.schemas import AccountabilityReport
from app.requests.rules import required_levels
from app.requests.schemas import NewRequest
from app.searches.rules import Conclusion
from auth import LEVEL_ROLE, PERMISSIONS, Permission
from matcher import engine_spec
from matcher.operating_point import shipped

ROOT = Path(__file__).resolve().parents[2]
# The numbers the report's words may hold that are no figure: the law's sections, the
# hash's name, and the confidence of every interval the operating point states.
NOT_FIGURES = ("RCW 43.386.020", "RCW 43.386.030", "RCW 43.386.040", "SHA-256", "95 %")


def weight_file(package: str, name: str) -> bytes:
    """A weight file as the installed package holds it, found from the package's own list."""
    (found,) = [f for f in metadata.files(package) or [] if f.name == name]
    return Path(str(found.locate())).read_bytes()


def expected_report(report: dict[str, Any], settings: Settings, session: Session) -> dict[str, Any]:
    """The report as its sources state it, for the period and moment `report` names."""
    spec = engine_spec(settings.engine)
    point_file = settings.operating_point_file
    point = point_file.read_bytes()
    gallery_size = json.loads(point)["gallery_size"]
    enrolled = people_enrolled(session, spec.model_id)
    engine = report["engine"]
    period = report["transparency"]
    return {
        "generated_at": report["generated_at"],
        "service": {
            "name": "facematch",
            "version": tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"],
        },
        "engine": {
            "name": spec.name,
            "model_id": spec.model_id,
            "dimension": spec.dimension,
            "metric": spec.metric,
            "runtime": {
                "name": engine["runtime"]["name"],
                "version": metadata.version(engine["runtime"]["name"]),
            },
            "weights_package": {
                "name": engine["weights_package"]["name"],
                "version": metadata.version(engine["weights_package"]["name"]),
            },
            "weights": [
                {
                    "name": name,
                    "sha256": hashlib.sha256(
                        weight_file(engine["weights_package"]["name"], name)
                    ).hexdigest(),
                }
                for name in ENGINE_PARTS[spec.name][1]
            ],
            "quality": asdict(quality_policy(settings)),
        },
        "operating_point_file": str(point_file.resolve().relative_to(ROOT)),
        "operating_point_shipped": point_file == shipped(settings.engine),
        "operating_point": {
            "sha256": hashlib.sha256(point).hexdigest(),
            "operating_point": json.loads(point),
            "margin": settings.match_margin,
            "max_candidates": settings.max_candidates,
            "people_enrolled": enrolled,
            "within_calibrated_gallery": enrolled <= gallery_size,
        },
        "data": {
            "request_fields": list(NewRequest.model_fields),
            "max_image_bytes": settings.max_image_bytes,
            "max_image_pixels": settings.max_image_pixels,
            "released_fields": list(RELEASED_FIELDS),
            "candidate_retention_days": settings.candidate_retention_days,
            "probe_hash_retention_days": settings.probe_hash_retention_days,
            "audit_retention_days": settings.audit_retention_days,
        },
        "request_rules": {
            name: getattr(settings, name)
            for name in (
                "qualifying_crimes",
                "immigration_statutes",
                "immigration_related_statutes",
                "immigration_agencies",
                "immigration_agency_names",
                "court_order_max_age_days",
                "authorised_searches",
                "authorisation_days",
            )
        },
        "review": {
            "internal_reviews": [
                {"level": level, "role": LEVEL_ROLE[level]} for level in required_levels(False)
            ],
            "immigration_reviews": [
                {"level": level, "role": LEVEL_ROLE[level]}
                for level in required_levels(True)
                if level not in required_levels(False)
            ],
            "examiner_roles": sorted(PERMISSIONS[Permission.examine]),
            "operator_course": settings.operator_course,
            "examiners": settings.examiners,
            "conclusions": list(Conclusion),
        },
        "transparency": transparency(
            session,
            date.fromisoformat(period["period_from"]),
            date.fromisoformat(period["period_to"]),
        ).model_dump(mode="json"),
    }


def check_report(report: dict[str, Any], settings: Settings, session: Session) -> None:
    """Every figure of the report is its source's, and it was made just now."""
    assert report == json.loads(json.dumps(expected_report(report, settings, session)))
    made = datetime.fromisoformat(report["generated_at"])
    assert timedelta(0) <= datetime.now(UTC) - made < timedelta(minutes=10)


def _leaves(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _leaves(value)
    elif isinstance(data, list):
        for item in data:
            yield from _leaves(item)
    else:
        yield data


def _shown(value: Any) -> set[str]:
    """Each way the template may write a figure: as it is, as a share in per cent, with
    thousands separated, a time as a day or to the minute."""
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, int):
        return {str(value), f"{value:,}"}
    if isinstance(value, float):
        forms = {str(value), f"{value:.4f}", f"{value:.3g}", f"{value:g}"}
        return forms | {f"{value * 100:.1f}", f"{value * 100:.2f}", f"{value * 100:g}"}
    forms = {str(value)}
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return forms
    return forms | {str(moment), f"{moment:%Y-%m-%d}", f"{moment:%Y-%m-%d %H:%M}"}


def typed_in(page: str, report: dict[str, Any]) -> list[str]:
    """The numbers the page's text holds that are none of the report's figures."""
    text = html.unescape(
        re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", page, flags=re.S))
    )
    forms = set().union(*map(_shown, _leaves(report)))
    # What the template computes from figures: each check's probes refused and searches,
    # and how many fields a release holds.
    for check in report["operating_point"]["operating_point"]["checks"].values():
        forms |= _shown(sum(check["refused"].values()))
        forms |= _shown(check["mated_searches"] + check["non_mated_searches"])
    forms |= _shown(len(report["data"]["released_fields"]))
    numbers = re.compile(r"\d+(?:[.,]\d+)*")
    phrases = [f for f in forms if numbers.fullmatch(f) is None] + list(NOT_FIGURES)
    for phrase in sorted(phrases, key=len, reverse=True):
        text = text.replace(phrase, " ")
    return [number for number in numbers.findall(text) if number not in forms]


def check_document(page: str, report: dict[str, Any]) -> None:
    """The HTML is the console's template drawing the report's own figures, and nothing
    else: no number of its own, nothing loaded from anywhere."""
    assert page == accountability_document(AccountabilityReport.model_validate(report))
    assert typed_in(page, report) == []
    assert not re.search(r"<script|<link|\bsrc=|@import|url\(", page)


def check_written(folder: Path, settings: Settings) -> dict[str, Any]:
    """The report `facematch report accountability` wrote to `folder`, checked against its
    sources in the settings' database; its figures."""
    report: dict[str, Any] = json.loads((folder / "accountability.json").read_text())
    check_document((folder / "accountability.html").read_text(), report)
    database = make_engine(settings.sqlalchemy_url)
    try:
        with session_factory(database).begin() as session:
            check_report(report, settings, session)
    finally:
        database.dispose()
    return report
