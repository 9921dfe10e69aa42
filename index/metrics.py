"""The distance between two face templates, for each metric, defined once: the index reports
it for its neighbours, the matcher and calibration compute it, and all three agree
(tests/test_matcher.py). Smaller is closer either way.

l2: Euclidean distance. cosine: 1 - cosine similarity of L2-normalised descriptors, which
FAISS ranks by inner product.
"""

from __future__ import annotations

from typing import Literal

import faiss
import numpy as np

Metric = Literal["l2", "cosine"]
FAISS_METRIC = {"l2": faiss.METRIC_L2, "cosine": faiss.METRIC_INNER_PRODUCT}


def distances(a: np.ndarray, b: np.ndarray, metric: Metric) -> np.ndarray:
    """The distance between every row of `a` and every row of `b`, worked in float64: the
    expanded squared distance loses a float32's precision near zero."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return from_scores(a @ b.T if metric == "cosine" else _squared_l2(a, b), metric)


def from_scores(scores: np.ndarray, metric: Metric) -> np.ndarray:
    """Distances from FAISS's scores in the metric's index: inner products for cosine,
    squared Euclidean distances for l2."""
    found: np.ndarray = 1.0 - scores if metric == "cosine" else np.sqrt(np.maximum(scores, 0.0))
    return found


def _squared_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squares = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :]
    squared: np.ndarray = squares - 2 * (a @ b.T)
    return squared


def fuse(vectors: np.ndarray, metric: Metric, weights: np.ndarray | None = None) -> np.ndarray:
    """One person's templates as one: their mean (weighted, when given), for cosine of the
    unit-length templates and made unit length again. Averaging cancels what differs between
    photos (pose, light, age) and keeps what the person's photos share
    (benchmarks/identify.py measures it)."""
    rows = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    if metric == "cosine":
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    mean = np.average(rows, axis=0, weights=weights)
    if metric == "cosine":
        mean /= np.linalg.norm(mean)
    fused: np.ndarray = mean.astype(np.float32)
    return fused
