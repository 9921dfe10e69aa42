"""Synthetic identities with the spread of real descriptors, to extend a gallery past the
people a data set holds.

Each new person's centre is a real person's mean descriptor moved by Gaussian noise with the
between-identity covariance scaled by a bandwidth h, and shrunk back towards the mean so the
centres keep the real between-identity covariance (a smoothed bootstrap): small h keeps the
real people's clusters (descriptors of similar-looking people crowd together, and a single
Gaussian misses that), large h tends to one Gaussian. Each template is the centre plus
within-identity noise (the pooled covariance of the photos' deviations from their person's
mean). A person's mean over n photos still carries 1/n of the within-identity covariance,
which is taken off the between-identity estimate. For a cosine engine the draws are
L2-normalised, as the engine's descriptors are.

identify.py chooses h so that a synthetic gallery as large as the real one gives the real
one's thresholds on the same probes, then extrapolates. Limits: the tails matter most at
large N, and no model fitted at a few thousand people can show how the millionth lookalike
looks; the result is a model, and is labelled one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from matcher import Metric


@dataclass(frozen=True)
class IdentityModel:
    centres: np.ndarray  # real people's mean descriptors
    between: np.ndarray  # a factor L with L @ L.T = the between-identity covariance
    within: np.ndarray  # the same for the within-identity covariance
    metric: Metric
    bandwidth: float = 1.0

    def with_bandwidth(self, bandwidth: float) -> IdentityModel:
        return replace(self, bandwidth=bandwidth)

    def templates(self, people: int, rng: np.random.Generator) -> np.ndarray:
        """One template for each of `people` new identities (float32)."""
        dimension = self.centres.shape[1]
        mean = self.centres.mean(axis=0)
        picked = self.centres[rng.integers(len(self.centres), size=people)]
        moved = (
            picked
            - mean
            + self.bandwidth * (rng.standard_normal((people, dimension)) @ self.between.T)
        )
        centres = mean + moved / np.sqrt(1 + self.bandwidth**2)
        drawn = centres + rng.standard_normal((people, dimension)) @ self.within.T
        drawn = drawn.astype(np.float32)
        if self.metric == "cosine":
            drawn /= np.linalg.norm(drawn, axis=1, keepdims=True)
        return drawn


def fit(vectors: np.ndarray, persons: np.ndarray, metric: Metric) -> IdentityModel:
    """Estimate the model from the templates of people with at least two photos."""
    _, inverse, counts = np.unique(persons, return_inverse=True, return_counts=True)
    several = counts[inverse] >= 2
    vectors, inverse = vectors[several].astype(np.float64), inverse[several]
    people = np.unique(inverse)
    means = np.stack([vectors[inverse == p].mean(axis=0) for p in people])
    deviations = vectors - means[np.searchsorted(people, inverse)]
    within = deviations.T @ deviations / (len(vectors) - len(people))
    shrink = np.mean(1.0 / counts[people])
    between = np.cov(means, rowvar=False) - shrink * within
    return IdentityModel(means, _factor(between), _factor(within), metric)


def _factor(covariance: np.ndarray) -> np.ndarray:
    """A square-root factor of a covariance, negative eigenvalues (estimation noise) set to 0."""
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))
