"""What an operations team watches, in Prometheus' text format (GET /metrics, behind the
scrape token): counts and latencies counted where they happen, and the state of the gallery,
the probe workers and the audit anchors read when scraped.

No label holds personal data: outcomes, refusal codes, engines and kinds of template only.
The counts are the process's since it started, as Prometheus expects of a counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.core.refusals import Refusal
from matcher import FaceRefusal

# A counter's start time is the process's; one more series per counter says nothing more.
disable_created_metrics()

SEARCHES = Counter(
    "facematch_searches",
    "Searches answered, by outcome: candidates, no_candidate, or refused (the code is in "
    "facematch_refusals_total).",
    ["outcome"],
    registry=None,
)
REFUSALS = Counter(
    "facematch_refusals", "Refusals answered, by code (docs/api.md).", ["code"], registry=None
)
# From a fast probe on a quiet machine to one near its time limit (FACEMATCH_PROBE_TIMEOUT_S).
PROBE_SECONDS = Histogram(
    "facematch_probe_encode_seconds",
    "How long a probe took to encode, its wait for a free worker included.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
INDEX_SECONDS = Histogram(
    "facematch_index_search_seconds",
    "How long the gallery index took to search for one probe, its candidates' records read.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
    registry=None,
)
SIGN_IN_FAILURES = Counter(
    "facematch_sign_in_failures",
    "Sign-ins refused for a wrong username, password, one-time code or client secret.",
    registry=None,
)
LOCKOUTS = Counter(
    "facematch_lockouts", "Accounts locked after too many failed sign-ins.", registry=None
)
AUDIT_ENTRIES = Counter(
    "facematch_audit_entries", "Audit entries written (committed).", registry=None
)
AUDIT_WRITE_FAILURES = Counter(
    "facematch_audit_write_failures",
    "Audit entries that could not be written; each failed the action it was to record.",
    registry=None,
)

_COUNTED = (
    SEARCHES,
    REFUSALS,
    PROBE_SECONDS,
    INDEX_SECONDS,
    SIGN_IN_FAILURES,
    LOCKOUTS,
    AUDIT_ENTRIES,
    AUDIT_WRITE_FAILURES,
)


@contextmanager
def search_outcome() -> Iterator[Callable[[bool], None]]:
    """Count the search done in the block: the caller says whether it found candidates; a
    refusal raised is counted as one."""
    try:
        yield lambda found: SEARCHES.labels("candidates" if found else "no_candidate").inc()
    except (Refusal, FaceRefusal):
        SEARCHES.labels("refused").inc()
        raise


@dataclass(frozen=True)
class Gauge:
    """A value read when scraped: its name, help, label names, and how to read it (each
    label values with the value)."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[], Iterable[tuple[tuple[str, ...], float]]]


class _Live(Collector):
    def __init__(self, gauges: Iterable[Gauge]) -> None:
        self._gauges = list(gauges)

    def collect(self) -> Iterable[Metric]:
        for gauge in self._gauges:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for labels, value in gauge.read():
                family.add_metric(list(labels), value)
            yield family


def registry(gauges: Iterable[Gauge]) -> CollectorRegistry:
    """One service's metrics: the process's counts, and its own state read at each scrape."""
    metrics = CollectorRegistry(auto_describe=True)
    for counted in _COUNTED:
        metrics.register(counted)
    metrics.register(_Live(gauges))
    return metrics
