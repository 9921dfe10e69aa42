"""The accountability report (RCW 43.386.020): what the service is, what it can and cannot
do, what goes in and out, the rules and reviews it runs under, the testing behind its
figures and the transparency report's figures, assembled from the running service. Nothing
in it is typed in: each figure is read from the settings, the database, the installed
packages and weight files, or the operating point file the report names."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path

from sqlalchemy.orm import Session

from app.core.composition import quality_policy
from app.core.refusals import Code, Refusal
from app.core.settings import Settings
from app.gallery.release import RELEASED_FIELDS
from app.oversight.reports import check_period, operating_point_view, transparency
from app.oversight.schemas import (
    AccountabilityReport,
    DataFacts,
    EngineFacts,
    HumanReview,
    RequestRules,
    ReviewStep,
    Software,
    WeightFile,
)
from app.requests.rules import IMMIGRATION_LEVELS, INTERNAL_LEVELS
from app.requests.schemas import NewRequest
from app.searches.rules import Conclusion
from auth import LEVEL_ROLE, PERMISSIONS, Level, Permission
from matcher import EngineName, ModelFileError, dlib_engine, sface_engine
from matcher.operating_point import SHIPPED, OperatingPoint, shipped

log = logging.getLogger(__name__)

SERVICE = "facematch"
# The transparency figures' period when none is asked for: the year up to today, inclusive.
DEFAULT_PERIOD_DAYS = 365
# Each engine's runtime library, its weight files with their recorded SHA-256, and the
# lookup that checks a file against its record.
ENGINE_PARTS: dict[EngineName, tuple[str, Mapping[str, str], Callable[[str], str]]] = {
    "dlib": ("dlib", dlib_engine.WEIGHTS, dlib_engine.verified_weight),
    "sface": ("cv2", sface_engine.WEIGHTS, sface_engine.verified_weight),
}


def report_period(
    period_from: date | None, period_to: date | None, today: date
) -> tuple[date, date]:
    """The days asked for, by default the year up to and including today; refused when
    the end is not after the start."""
    period_to = period_to or today + timedelta(days=1)
    # Never before the calendar's first day, however early the end asked for.
    period_from = period_from or date.fromordinal(
        max(1, period_to.toordinal() - DEFAULT_PERIOD_DAYS)
    )
    check_period(period_from, period_to)
    return period_from, period_to


def _installed(module: str) -> Software:
    """A module's distribution and version as installed (the module's own where no
    distribution names it)."""
    names = metadata.packages_distributions().get(module)
    if names:
        return Software(name=names[0], version=metadata.version(names[0]))
    return Software(name=module, version=importlib.import_module(module).__version__)


def engine_facts(settings: Settings) -> EngineFacts:
    """The configured engine, its weight files each checked against the SHA-256 recorded
    for it, and the packages they come in; refused where a file is not the one measured (it
    was changed after the service started, which checked them)."""
    spec = settings.engine_spec
    runtime, weights, verified = ENGINE_PARTS[spec.name]
    try:
        paths = [Path(verified(name)) for name in weights]
    except ModelFileError as problem:
        log.error("engine weights changed: %s", problem)
        raise Refusal(
            Code.engine_files_changed,
            f"The engine cannot be reported on: {problem}. Restore the file the operating "
            "point was measured with.",
        ) from None
    return EngineFacts(
        name=spec.name,
        model_id=spec.model_id,
        dimension=spec.dimension,
        metric=spec.metric,
        runtime=_installed(runtime),
        # The package that ships the weights: the folder above their models/ folder.
        weights_package=_installed(paths[0].parents[1].name),
        weights=[WeightFile(name=name, sha256=sha256) for name, sha256 in weights.items()],
        quality=asdict(quality_policy(settings)),
    )


def _steps(levels: tuple[Level, ...]) -> list[ReviewStep]:
    return [ReviewStep(level=level, role=LEVEL_ROLE[level]) for level in levels]


def _file_named(path: Path) -> str:
    """The operating point file, relative to the project when it lies inside it."""
    project = SHIPPED.parents[1]
    path = path.resolve()
    return str(path.relative_to(project) if path.is_relative_to(project) else path)


def accountability(
    session: Session,
    settings: Settings,
    point: OperatingPoint,
    point_sha256: str,
    period_from: date,
    period_to: date,
) -> AccountabilityReport:
    """The report for the service these settings configure, searching with `point` (read
    from its file, whose SHA-256 is `point_sha256`), with the transparency figures of
    [period_from, period_to)."""
    return AccountabilityReport(
        generated_at=datetime.now(UTC),
        service=Software(name=SERVICE, version=metadata.version(SERVICE)),
        engine=engine_facts(settings),
        operating_point_file=_file_named(settings.operating_point_file),
        operating_point_shipped=settings.operating_point_file.resolve()
        == shipped(settings.engine).resolve(),
        operating_point=operating_point_view(session, settings, point, point_sha256),
        data=DataFacts(
            request_fields=list(NewRequest.model_fields),
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            released_fields=list(RELEASED_FIELDS),
            candidate_retention_days=settings.candidate_retention_days,
            probe_hash_retention_days=settings.probe_hash_retention_days,
            audit_retention_days=settings.audit_retention_days,
        ),
        request_rules=RequestRules(
            qualifying_crimes=settings.qualifying_crimes,
            immigration_statutes=settings.immigration_statutes,
            immigration_related_statutes=settings.immigration_related_statutes,
            immigration_agencies=settings.immigration_agencies,
            immigration_agency_names=settings.immigration_agency_names,
            court_order_max_age_days=settings.court_order_max_age_days,
            authorised_searches=settings.authorised_searches,
            authorisation_days=settings.authorisation_days,
        ),
        review=HumanReview(
            internal_reviews=_steps(INTERNAL_LEVELS),
            immigration_reviews=_steps(IMMIGRATION_LEVELS),
            examiner_roles=sorted(PERMISSIONS[Permission.examine]),
            operator_course=settings.operator_course,
            examiners=settings.examiners,
            conclusions=list(Conclusion),
        ),
        transparency=transparency(session, period_from, period_to),
    )
