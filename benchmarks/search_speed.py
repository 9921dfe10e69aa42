"""Search at state scale: exact FAISS search beside IVF, HNSW and the service's own index in
its shortlist layouts (product-quantised codes, re-ranked exactly), on synthetic galleries of
100k and 1M templates; with --huge, 10M alone, in as little memory as they fit in.

The galleries are drawn by benchmarks/synthetic.py from each engine's LFW templates: people
with the between-identity spread of real people, each holding one to four photos (renewals)
with the within-identity spread of real photos. Half the probes are new photos of enrolled
people, half photos of strangers.

The figure that decides is within-threshold recall: of the gallery templates that exact search
puts within the engine's operating threshold of a probe (among its k nearest, k being what the
service asks for), the share the index returns. Exact search finds all of them; an index that
drops one has made a miss no threshold can repair. The service's layout policy
(index.LayoutPolicy) must keep it at 0.999 or more; this script measures the policy's choice at
each size beside the alternatives, and the memory and start-up time of the chosen index.

Single-query latency is measured with one FAISS thread, which is how exact search is fastest
for one probe on this machine (more threads contend for memory bandwidth) and how each of the
service's concurrent searches runs; batched latency uses every core.

    .venv/bin/python benchmarks/search_speed.py [--engine sface|dlib|both] [--huge]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import faiss
import numpy as np
import synthetic
from openset import lfw_encoded
from runner import ROOT, machine, write

from app.core.composition import index_layouts
from app.core.settings import Settings
from calibration.rates import interval
from index import GalleryIndex, Layout, TemplateKeys, new_key
from index.metrics import FAISS_METRIC, from_scores
from matcher import ENGINES, EngineName, Metric, engine_spec, neighbours_to_fetch
from matcher.operating_point import load_operating_point, shipped

# What the service asks the index for: neighbours enough for its candidate list.
K = neighbours_to_fetch(Settings().max_candidates, Settings().gallery_templates)
# The service's shortlist layouts tried at every size (the policy's own is measured too).
SHORTLISTS = [Layout("shortlist", 16, f) for f in (10, 20, 40)] + [
    Layout("shortlist", 32, f) for f in (10, 40)
]
TARGET = 0.999
BATCH = 64
# A state's licence and ID-card photos, renewals included: --huge.
HUGE = 10_000_000


def identity_model(engine: EngineName, workers: int, photos: int) -> synthetic.IdentityModel:
    """The Gaussian identity model of the engine's templates of LFW (its first `photos`
    photos, or all)."""
    encoded = lfw_encoded(engine, workers, photos)
    usable = np.array([code == "" for code in encoded.codes])
    metric = engine_spec(engine).metric
    return synthetic.fit(encoded.descriptors[usable], encoded.persons[usable], metric)


def gallery_parts(
    model: synthetic.IdentityModel, size: int, probes: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`size` templates of people holding one to four photos each, a part at a time, each
    with its share of the mated probes (new photos of the part's people)."""
    filled = 0
    while filled < size:
        centres = model.people(min(100_000, size - filled), rng)
        counts = rng.integers(1, 5, len(centres))
        owners = np.repeat(np.arange(len(centres)), counts)[: size - filled]
        part = model.photos(centres[owners], rng).astype(np.float32)
        share = math.ceil(probes / 2 * len(owners) / size)
        yield part, model.photos(centres[rng.choice(owners[-1] + 1, share)], rng)
        filled += len(owners)


def gallery(
    model: synthetic.IdentityModel, size: int, probes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`size` templates (gallery_parts), and the probes: new photos of enrolled people, then
    as many strangers."""
    templates = np.empty((size, len(model.mean)), dtype=np.float32)
    mated: list[np.ndarray] = []
    filled = 0
    for part, part_mated in gallery_parts(model, size, probes, rng):
        templates[filled : filled + len(part)] = part
        mated.append(part_mated)
        filled += len(part)
    mated_probes = np.concatenate(mated)[: probes // 2]
    return templates, np.concatenate([mated_probes, model.templates(probes // 2, rng)])


def latency(search: Callable[[np.ndarray], object], queries: Iterable[np.ndarray]) -> dict:
    """p50 and p99 milliseconds of `search` over the queries, one call each."""
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - start)
    p50, p99 = np.percentile(times, [50, 99]) * 1e3
    return {"p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3)}


def recall(found: np.ndarray, truth: np.ndarray, within: np.ndarray) -> dict:
    """Recall@1, recall@10 and within-threshold recall of `found` against exact `truth`."""
    kept = sum(
        np.isin(truth[q][within[q]], found[q]).sum() for q in range(len(truth)) if within[q].any()
    )
    pairs = int(within.sum())
    low, _ = interval(int(kept), pairs) if pairs else (0.0, 1.0)
    return {
        "recall_at_1": float(np.mean(found[:, 0] == truth[:, 0])),
        "recall_at_10": float(
            np.mean([np.isin(truth[q, :10], found[q, :10]).mean() for q in range(len(truth))])
        ),
        "within_threshold": float(kept / pairs) if pairs else 1.0,
        "within_threshold_95_low": round(low, 6),
        "within_threshold_pairs": pairs,
    }


def alternatives(size: int) -> list[tuple[str, list[tuple[str, faiss.SearchParameters]]]]:
    """FAISS factory strings to build, each with the search settings to try on it."""
    lists = 2 ** round(math.log2(4 * math.sqrt(size)))
    # faiss's type stubs lack its keyword constructors and SearchParametersHNSW.
    ivf = [
        (f"nprobe={p}", faiss.SearchParametersIVF(nprobe=p))  # type: ignore[call-arg]
        for p in (lists // 64, lists // 16, lists // 4)
    ]
    hnsw = [
        (f"efSearch={ef}", faiss.SearchParametersHNSW(efSearch=ef))  # type: ignore[attr-defined]
        for ef in (64, 256)
    ]
    return [(f"IVF{lists},Flat", ivf), ("HNSW32", hnsw)]


def measure_faiss(
    factory: str,
    settings: list[tuple[str, faiss.SearchParameters]],
    templates: np.ndarray,
    probes: np.ndarray,
    truth: np.ndarray,
    within: np.ndarray,
    metric: Metric,
    timed: int,
) -> list[dict]:
    index = faiss.index_factory(templates.shape[1], factory, FAISS_METRIC[metric])
    start = time.perf_counter()
    if not index.is_trained:
        sample = np.random.default_rng(0).choice(
            len(templates), min(len(templates), 262_144), False
        )
        index.train(templates[np.sort(sample)])
    index.add(templates)
    build_s = time.perf_counter() - start
    size = faiss.serialize_index(index).nbytes / len(templates)
    rows = []
    for name, params in settings:
        _, found = index.search(probes, K, params=params)
        rows.append(
            {
                "index": f"{factory} {name}",
                "build_s": round(build_s, 2),
                "bytes_per_template": round(size, 1),
                **recall(found, truth, within),
                **timings(partial(index.search, k=K, params=params), probes, timed),
            }
        )
        print(f"    {_line(rows[-1])}", flush=True)
    return rows


def timings(search: Callable[[np.ndarray], object], probes: np.ndarray, timed: int) -> dict:
    faiss.omp_set_num_threads(1)
    single = latency(lambda q: search(q[None]), probes[:timed])
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    every_core = latency(lambda q: search(q[None]), probes[:timed])
    batches = [probes[i : i + BATCH] for i in range(0, min(len(probes), timed * 4), BATCH)]
    batched = latency(search, [b for b in batches if len(b) == BATCH])
    return {
        "single": single,
        "single_every_core": every_core,
        "batch_of_64_per_query": {k: round(v / BATCH, 4) for k, v in batched.items()},
    }


def measure_service(
    index: GalleryIndex, probes: np.ndarray, truth: np.ndarray, within: np.ndarray, timed: int
) -> dict:
    """The service's own index class as it is laid out: what is served."""
    found = np.full((len(probes), K), -1, dtype=np.int64)
    faiss.omp_set_num_threads(1)
    for q, probe in enumerate(probes):
        hits = [i for i, _ in index.search(probe, K)]
        found[q, : len(hits)] = hits
    single = latency(lambda q: index.search(q, K), probes[:timed])
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return {"index": f"service: {index.layout}", **recall(found, truth, within), "single": single}


def measure_layouts(
    templates: np.ndarray, probes: np.ndarray, truth: np.ndarray, within: np.ndarray, metric, timed
) -> tuple[list[dict], dict]:
    """The service's index in each shortlist layout and in its policy's choice for this size,
    which is also loaded in a fresh process for its start-up time and memory."""
    chosen = index_layouts(Settings()).for_count(len(templates))
    served = GalleryIndex("benchmark", templates.shape[1], metric)
    served.add(np.arange(len(templates), dtype=np.int64), templates)
    rows, service = [], {}
    for layout in dict.fromkeys([*SHORTLISTS, chosen]):
        start = time.perf_counter()
        served.arrange(layout)
        build_s = round(time.perf_counter() - start, 2)
        row = {**measure_service(served, probes, truth, within, timed), "build_s": build_s}
        if layout == chosen:
            row["index"] += " (default)"
            service = {**row, "start_up": start_up(served)}
        rows.append(row)
        print(f"    {_line(row)}", flush=True)
    return rows, service


_LOAD = """
import os, resource, sys, time
from pathlib import Path
from index import GalleryIndex, TemplateKeys
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
before = rss()
start = time.perf_counter()
keys = TemplateKeys.from_text(os.environ["BENCHMARK_KEY"])
index = GalleryIndex.load(Path(sys.argv[1]), "benchmark", int(sys.argv[2]), sys.argv[3], keys)
print(time.perf_counter() - start, rss() - before, index.count)
"""


def start_up(index: GalleryIndex) -> dict:
    """Load time and resident memory of the saved index, in a fresh process, as the service
    loads it at start-up: opening its seal included."""
    with tempfile.TemporaryDirectory() as directory:
        key = sealed_copy(index, Path(directory))
        return load_in_fresh_process(Path(directory), index.dimension, index.metric, key)


def sealed_copy(index: GalleryIndex, directory: Path) -> str:
    """The index saved sealed under a new key, as the service saves it; the key."""
    key = new_key()
    index.save(directory, TemplateKeys.from_text(key))
    return key


def load_in_fresh_process(directory: Path, dimension: int, metric: Metric, key: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, str(directory), str(dimension), metric],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "BENCHMARK_KEY": key},
    ).stdout.split()
    seconds, resident, count = float(out[0]), int(out[1]), int(out[2])
    return {
        "load_s": round(seconds, 3),
        "resident_mb": round(resident / 2**20, 1),
        "resident_mb_per_million": round(resident / 2**20 * 1e6 / count, 1),
    }


def measure_size(
    model: synthetic.IdentityModel, metric: Metric, threshold: float, size: int, args
) -> dict:
    rng = np.random.default_rng(size)
    templates, probes = gallery(model, size, args.probes, rng)
    print(f"  {size:,} templates, {len(probes):,} probes", flush=True)
    exact = faiss.IndexFlat(templates.shape[1], FAISS_METRIC[metric])
    start = time.perf_counter()
    exact.add(templates)
    build_s = time.perf_counter() - start
    scores, truth = exact.search(probes, K)
    within = from_scores(scores, metric) <= threshold
    rows = [
        {
            "index": "Flat (exact)",
            "build_s": round(build_s, 2),
            "bytes_per_template": round(faiss.serialize_index(exact).nbytes / size, 1),
            **recall(truth, truth, within),
            **timings(lambda q: exact.search(q, K), probes, args.timed),
        }
    ]
    exact.reset()
    for factory, settings in alternatives(size):
        if factory.startswith("HNSW") and size > args.hnsw_up_to:
            continue
        rows += measure_faiss(
            factory, settings, templates, probes, truth, within, metric, args.timed
        )
    served, service = measure_layouts(templates, probes, truth, within, metric, args.timed)
    rows += served
    exact_row = rows[0]
    good = [r for r in rows if r["within_threshold"] >= TARGET]
    fastest = min(good, key=lambda r: r["single"]["p50_ms"])
    return {
        "gallery_size": size,
        "probes": len(probes),
        "threshold": threshold,
        "k": K,
        "indexes": rows,
        "fastest_meeting_target": fastest["index"],
        "fastest_meeting_target_p50_ms": fastest["single"]["p50_ms"],
        "service": service,
        "service_speedup_vs_exact": round(
            exact_row["single"]["p50_ms"] / service["single"]["p50_ms"], 1
        ),
        "service_speedup_vs_exact_every_core": round(
            exact_row["single_every_core"]["p50_ms"] / service["single"]["p50_ms"], 1
        ),
    }


def measure_huge(model: synthetic.IdentityModel, metric: Metric, threshold: float, args) -> dict:
    """`args.huge` templates in as little memory as they fit in: the gallery is drawn straight into
    an exact index (ground truth, and the baseline's latency), copied into the service's own
    index and the exact one emptied, laid out as the policy lays out that many, measured,
    saved sealed, and dropped before a fresh process loads the file. The alternatives
    measured at smaller sizes are left out: each would hold the gallery once more."""
    size = args.huge
    rng = np.random.default_rng(size)
    exact = faiss.IndexFlat(len(model.mean), FAISS_METRIC[metric])
    mated: list[np.ndarray] = []
    start = time.perf_counter()
    for part, part_mated in gallery_parts(model, size, args.probes, rng):
        exact.add(part)
        mated.append(part_mated)
    build_s = time.perf_counter() - start
    probes = np.concatenate(
        [np.concatenate(mated)[: args.probes // 2], model.templates(args.probes // 2, rng)]
    ).astype(np.float32)
    print(f"  {size:,} templates, {len(probes):,} probes, drawn in {build_s:.0f} s", flush=True)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    scores, truth = exact.search(probes, K)
    within = from_scores(scores, metric) <= threshold
    exact_row = {
        "index": "Flat (exact)",
        "build_s": round(build_s, 2),
        **recall(truth, truth, within),
        **timings(lambda q: exact.search(q, K), probes, args.timed),
    }
    print(f"    {_line(exact_row)}", flush=True)
    served = GalleryIndex("benchmark", exact.d, metric)
    stored = faiss.rev_swig_ptr(exact.get_xb(), exact.ntotal * exact.d).reshape(-1, exact.d)
    for begin in range(0, exact.ntotal, 1_000_000):
        chunk = stored[begin : begin + 1_000_000]
        served.add(np.arange(begin, begin + len(chunk), dtype=np.int64), chunk)
    del stored
    exact.reset()
    layout = index_layouts(Settings()).for_count(served.count)
    start = time.perf_counter()
    served.arrange(layout)
    service = {
        **measure_service(served, probes, truth, within, args.timed),
        "build_s": round(time.perf_counter() - start, 2),
    }
    service["index"] += " (default)"
    print(f"    {_line(service)}", flush=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "var") as directory:
        start = time.perf_counter()
        key = sealed_copy(served, Path(directory))
        save_s = time.perf_counter() - start
        dimension, metric_name = served.dimension, served.metric
        del served
        service["start_up"] = {
            "save_s": round(save_s, 1),
            **load_in_fresh_process(Path(directory), dimension, metric_name, key),
        }
    print(f"    start-up: {service['start_up']}", flush=True)
    return {
        "gallery_size": size,
        "probes": len(probes),
        "threshold": threshold,
        "k": K,
        "indexes": [exact_row, service],
        "service": service,
        "service_speedup_vs_exact": round(
            exact_row["single"]["p50_ms"] / service["single"]["p50_ms"], 1
        ),
        "service_speedup_vs_exact_every_core": round(
            exact_row["single_every_core"]["p50_ms"] / service["single"]["p50_ms"], 1
        ),
    }


def _line(row: dict) -> str:
    return (
        f"{row['index']}: within {row['within_threshold']:.5f} of {row['within_threshold_pairs']}"
        f", single p50 {row['single']['p50_ms']} ms"
    )


def measure_engine(engine: EngineName, args) -> dict:
    spec = engine_spec(engine)
    point, _ = load_operating_point(shipped(engine))
    print(f"{engine}: fitting the identity model", flush=True)
    model = identity_model(engine, args.workers, args.fit_photos)
    if args.huge is not None:
        sizes = [measure_huge(model, spec.metric, point.threshold, args)]
    else:
        sizes = [measure_size(model, spec.metric, point.threshold, n, args) for n in args.sizes]
    return {"threshold": point.threshold, "sizes": sizes}


def table(result: dict) -> str:
    lines = [
        "| engine | templates | index | within-threshold recall (pairs; 95% lower bound) "
        "| recall@1 | recall@10 "
        "| single p50 / p99 ms | batch-of-64 p50 ms per probe | build s | bytes per template |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for engine, measured in result["engines"].items():
        for size in measured["sizes"]:
            for row in size["indexes"]:
                batched = row.get("batch_of_64_per_query", {}).get("p50_ms", "")
                lines.append(
                    f"| {engine} | {size['gallery_size']:,} | {row['index']} "
                    f"| {row['within_threshold']:.4f} ({row['within_threshold_pairs']:,}; "
                    f"{row['within_threshold_95_low']:.4f}) "
                    f"| {row['recall_at_1']:.4f} | {row['recall_at_10']:.4f} "
                    f"| {row['single']['p50_ms']} / {row['single']['p99_ms']} | {batched} "
                    f"| {row['build_s']} | {row.get('bytes_per_template', '')} |"
                )
    lines.append("")
    lines.append(
        "| engine | templates | service layout | within-threshold recall "
        "| speed-up vs exact, one thread | vs exact, every core | resident MB per million "
        "| load s |"
    )
    lines.append("|---|---:|---|---:|---:|---:|---:|---:|")
    for engine, measured in result["engines"].items():
        for size in measured["sizes"]:
            up = size["service"]["start_up"]
            lines.append(
                f"| {engine} | {size['gallery_size']:,} | {size['service']['index']} "
                f"| {size['service']['within_threshold']:.4f} "
                f"| {size['service_speedup_vs_exact']}× "
                f"| {size['service_speedup_vs_exact_every_core']}× "
                f"| {up['resident_mb_per_million']} | {up['load_s']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--huge",
        type=int,
        nargs="?",
        const=HUGE,
        help=f"instead, one gallery of {HUGE:,} templates (or the number given) alone",
    )
    parser.add_argument("--probes", type=int, default=30_000, help="probes for recall")
    parser.add_argument("--timed", type=int, default=500, help="probes timed one at a time")
    parser.add_argument(
        "--hnsw-up-to", type=int, default=1_000_000, help="largest gallery to build HNSW for"
    )
    parser.add_argument("--fit-photos", type=int, default=0, help="LFW photos to fit (0: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_speed.json"
    )
    args = parser.parse_args()
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    result = {
        "benchmark": "search_speed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "engines": {engine: measure_engine(engine, args) for engine in engines},
    }
    write(result, table, args.out)


if __name__ == "__main__":
    main()
