"""Choosing the threshold from labelled photos: the operating point."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from app.core.composition import encoder, quality_policy
from app.core.settings import Settings
from matcher import ENGINES


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
    from calibration.photos import CalibrationSetError, encode, read_set

    settings = Settings()
    if engine is not None:
        if engine not in ENGINES:
            typer.echo(f"error: no engine is called {engine!r}", err=True)
            raise typer.Exit(2)
        settings = settings.model_copy(update={"engine": engine})
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
        point = choose_operating_point(
            sets,
            settings.engine_spec,
            quality_policy(settings),
            target_fpir,
            gallery_size,
            by_group,
            extrapolate,
        )
    except (CalibrationSetError, CalibrationRefused) as problem:
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
