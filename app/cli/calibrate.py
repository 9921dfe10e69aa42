"""Choosing the threshold from labelled photos: the operating point."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer

from app.core.composition import encoder, quality_policy
from app.core.settings import Settings
from matcher import ENGINES, GalleryTemplates, MatchRule, engine_spec
from matcher.operating_point import (
    OperatingPoint,
    OperatingPointError,
    Rate,
    load_operating_point,
)

if TYPE_CHECKING:
    from calibration.photos import Encoded


def calibrate(
    photos: Annotated[
        list[Path],
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Calibration set: a CSV of path,person[,group], paths relative to it. "
            "Repeat for several sets; people are compared only within a set.",
        ),
    ],
    target_fpir: Annotated[
        float,
        typer.Option(
            min=1e-9,
            max=0.5,
            help="Share of searches for someone not enrolled that may return a candidate",
        ),
    ] = 0.001,
    gallery_size: Annotated[
        int | None,
        typer.Option(min=1, help="People enrolled (default: the most the photos support)"),
    ] = None,
    by_group: Annotated[
        bool, typer.Option(help="Hold the target for every group, not just overall")
    ] = False,
    extrapolate: Annotated[
        bool,
        typer.Option(help="Beyond what the photos support, use the stated tail model"),
    ] = False,
    engine: Annotated[
        str | None, typer.Option(help=f"{', '.join(ENGINES)} (default FACEMATCH_ENGINE)")
    ] = None,
    templates: Annotated[
        str | None,
        typer.Option(
            help="What the index searches: person or photo templates "
            "(default FACEMATCH_GALLERY_TEMPLATES)"
        ),
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Instead of calibrating, check this operating point on the --photos sets: "
            "FPIR and FNIR with intervals from resampling people; exit 1 when the photos show "
            "more false positives than it states. With --out, the point is written there with "
            "the checks recorded.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Operating point file to write")] = None,
    review: Annotated[
        Path | None,
        typer.Option(help="Also write the 50 closest different-person pairs here (CSV)"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Encoding processes (default: one per core)")
    ] = None,
) -> None:
    """Choose the threshold from labelled photos and write the operating point (JSON).

    Encodes the photos as the service would (quality policy included); templates are cached
    under FACEMATCH_DATA_DIR/cache, so a second run encodes only new photos. Look at the
    --review pairs before trusting the result: a pair that shows one person is a labelling
    error, and such errors set the threshold at the low rates a large gallery needs.
    """
    # SciPy's statistics take most of a second to import: only this command needs them.
    from calibration.calibrate import CalibrationRefused, pairs_to_review
    from calibration.calibrate import calibrate as choose_operating_point
    from calibration.check import CheckRefused
    from calibration.photos import CalibrationSetError, encode, read_set

    settings = Settings()
    if engine is not None:
        if engine not in ENGINES:
            typer.echo(f"error: no engine is called {engine!r}", err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(update={"engine": engine})
    if templates is not None:
        if templates not in get_args(GalleryTemplates):
            typer.echo(f"error: templates are person or photo, not {templates!r}", err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(update={"gallery_templates": templates})
    if check is not None:
        try:
            point, _ = load_operating_point(check)
        except OperatingPointError as problem:
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(2) from None
        makers = [name for name in ENGINES if engine_spec(name).model_id == point.model_id]
        wrong = (
            f"no engine makes {point.model_id} templates"
            if not makers
            else "--check takes the engine, the templates, the threshold and the gallery size "
            "from the point: --engine, --templates, --gallery-size, --extrapolate and "
            "--review do not go with it"
            if engine or templates or gallery_size or extrapolate or review
            else None
        )
        if wrong:
            typer.echo(f"error: {wrong}", err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(
            update={"engine": makers[0], "gallery_templates": point.gallery_templates}
        )
    try:
        sets = {
            path.stem: encode(
                read_set(path),
                encoder(settings, "central"),
                workers or settings.enroll_workers,
                settings.data_dir / "cache",
            )
            for path in photos
        }
        if check is not None:
            _check(point, sets, settings, by_group, out)
            return
        point = choose_operating_point(
            sets,
            settings.engine_spec,
            quality_policy(settings),
            target_fpir,
            gallery_size,
            by_group,
            extrapolate,
            settings.gallery_templates,
        )
    except (CalibrationSetError, CalibrationRefused, CheckRefused) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    if review is not None:
        pairs = pairs_to_review(sets, settings.engine_spec.metric, quality_policy(settings))
        with review.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["distance", "photo", "person", "other_photo", "other_person"])
            for distance, a, b in pairs:
                writer.writerow([f"{distance:.4f}", a.path, a.person, b.path, b.person])
    text = point.model_dump_json(indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    kind = "modelled" if point.modelled else "measured"
    typer.echo(
        f"threshold {point.threshold:.4f} ({kind}) for FPIR {point.target_fpir:g} with "
        f"{point.gallery_size:,} people enrolled "
        f"(the photos support {point.supported_gallery_size:,}); "
        f"binding group {point.binding_group}; it misses {point.fnir:.1%} of mated comparisons. "
        f"Written to {out}"
    )


def _check(
    point: OperatingPoint,
    sets: dict[str, Encoded],
    settings: Settings,
    by_group: bool,
    out: Path | None,
) -> None:
    """Check the point on each set, print what it shows, record it with --out, and exit 1
    where the stated FPIR is outside the intervals."""
    from calibration.check import broken_promises, check_point

    rule = MatchRule(point.threshold, settings.max_candidates, settings.match_margin)
    checks = {
        name: check_point(encoded, point, quality_policy(settings), rule, by_group)
        for name, encoded in sets.items()
    }
    broken = []
    for name, found in checks.items():
        refused = ", ".join(f"{code} {n}" for code, n in found.refused.items()) or "none"
        typer.echo(
            f"{name}: {found.people_enrolled:,} people enrolled; "
            f"FNIR {_rate(found.fnir)} of {found.mated_searches:,} searches; "
            f"FPIR with {point.gallery_size:,} enrolled {_rate(found.fpir)} "
            f"(stated {point.target_fpir:g}); rank-1 {found.rank_1:.1%}; "
            f"probes refused: {refused}"
        )
        for group, measured in found.groups.items():
            missed = _rate(measured.fnir) if measured.fnir else "no mated search"
            typer.echo(f"  {group}: FNIR {missed}, FPIR {_rate(measured.fpir)}")
        broken += [f"{name}: {problem}" for problem in broken_promises(point, found)]
    if out is not None:
        recorded = point.model_copy(update={"checks": {**point.checks, **checks}})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(recorded.model_dump_json(indent=2) + "\n")
        typer.echo(f"checks recorded in {out}")
    if broken:
        typer.echo(
            f"the photos show more false positives than it states ({point.target_fpir:g}): "
            + "; ".join(broken),
            err=True,
        )
        raise typer.Exit(1)


def _rate(rate: Rate) -> str:
    return f"{rate.value:.3g} [{rate.low:.3g}, {rate.high:.3g}]"
