"""What the probe quality gate buys: for each quality limit in turn, the share of probes it
refuses and the accuracy on the rest, on the open-set protocol (benchmarks/openset.py).

The gallery is enrolled under the engine's default limits throughout; only the gate on the
probes changes, one limit at a time from the default. Every probe is searched once with no
gate; a gate then turns the searches of the probes it refuses into "nothing returned" (a miss
when mated, no false candidate when not). Reported at the engine's shipped operating point:
FPIR, FNIR counting refused probes as misses, FNIR over the probes searched, and the share
refused; and FNIR at FPIR 1 % with the threshold chosen again.

    python benchmarks/quality_gate.py [--engine dlib|sface|both] [--out FILE]
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from openset import (
    Searches,
    fnir,
    fpir,
    lfw_encoded,
    protocol,
    quality_policy,
    run_searches,
    threshold_at,
)
from runner import run_per_engine

from app.core.settings import Settings
from calibration.photos import NO_LIMITS
from matcher import EngineName, engine_spec
from matcher.operating_point import load_operating_point, shipped

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = Settings().max_candidates
GRID = {
    "min_sharpness": (0, 5, 10, 15, 20, 30),
    "max_yaw_deg": (25, 35, 45, 60, 90),
    "min_inter_eye_px": (0, 20, 30, 40),
    "min_in_frame": (0, 0.8, 0.9, 1.0),
}


def gated(searches: Searches, mated_ok: np.ndarray, non_mated_ok: np.ndarray) -> Searches:
    return Searches(
        np.where(mated_ok[:, None], searches.mated_distances, np.inf),
        searches.mate_rank,
        np.where(mated_ok, searches.mate_distance, np.inf),
        np.where(non_mated_ok[:, None], searches.non_mated_distances, np.inf),
    )


def measure(engine: EngineName, workers: int) -> dict:
    spec = engine_spec(engine)
    encoded = lfw_encoded(engine, workers)
    default = quality_policy(engine)
    proto = protocol(encoded, encoded.usable(default))
    searched = np.array([code == "" for code in encoded.codes])  # every face found
    everything = run_searches(encoded, searched, proto, spec.metric)
    point, _ = load_operating_point(shipped(engine))
    rows = []
    for limit, values in GRID.items():
        for value in values:
            policy = replace(default, **{limit: value})
            accepted = encoded.usable(policy)
            mated_ok, non_mated_ok = accepted[proto.mated], accepted[proto.non_mated]
            searches = gated(everything, mated_ok, non_mated_ok)
            kept = mated_ok & searched[proto.mated]
            rows.append(
                {
                    "limit": limit,
                    "value": value,
                    "default": value == getattr(default, limit),
                    "mated_refused": float(1 - mated_ok.mean()),
                    "non_mated_refused": float(1 - non_mated_ok.mean()),
                    "fpir": fpir(searches, point.threshold),
                    "fnir": fnir(searches, point.threshold, CANDIDATES),
                    "fnir_searched": float(
                        1
                        - (
                            (everything.mate_rank[kept] <= CANDIDATES)
                            & (everything.mate_distance[kept] < point.threshold)
                        ).mean()
                    ),
                    "fnir_at_fpir_0.01": fnir(searches, threshold_at(searches, 0.01), CANDIDATES),
                }
            )
    no_gate = gated(everything, searched[proto.mated], searched[proto.non_mated])
    return {
        "model_id": spec.model_id,
        "threshold": point.threshold,
        "default": asdict(default),
        "no_gate": {
            "limits": asdict(NO_LIMITS),
            "fpir": fpir(no_gate, point.threshold),
            "fnir": fnir(no_gate, point.threshold, CANDIDATES),
        },
        "rows": rows,
    }


def table(result: dict) -> str:
    lines = [
        "| engine | limit | value | probes refused (mated / non-mated) | FPIR | FNIR "
        "| FNIR of those searched | FNIR at FPIR 1 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine in result["engines"].values():
        for row in engine["rows"]:
            mark = " (default)" if row["default"] else ""
            lines.append(
                f"| {engine['model_id']} | {row['limit']} | {row['value']}{mark} | "
                f"{row['mated_refused']:.1%} / {row['non_mated_refused']:.1%} | "
                f"{row['fpir']:.2%} | {row['fnir']:.1%} | {row['fnir_searched']:.1%} | "
                f"{row['fnir_at_fpir_0.01']:.1%} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    run_per_engine("quality_gate", __doc__.split("\n\n")[0], measure, table)
