"""Synthetic identities with the spread of real descriptors, to extend a gallery past the
people a data set holds.

The model is Gaussian: each new person's centre is drawn from the between-identity
distribution (mean and covariance of real people's mean descriptors), and their template
from the within-identity distribution around it (the pooled covariance of the photos'
deviations from their person's mean). A person's mean over n photos still carries 1/n of
the within-identity covariance, which is taken off the between-identity estimate. For a
cosine engine the draws are L2-normalised, as the engine's descriptors are.

Limits: real descriptors are not Gaussian. Similar-looking people crowd together (dlib's
descriptors of East Asian men, twins, brothers), and a Gaussian has no such crowds, so its
strangers are easier to tell apart than real ones, and the tails, which decide large
galleries, are where it is least right. identify.py's check puts a synthetic gallery as large
as the real one beside it on the same probes, so the gap is measured. (Drawing new people
around real people's centres instead keeps the crowds, but at a million people makes hundreds
of near-copies of each real person, which outrank that person's own photos.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matcher import Metric


@dataclass(frozen=True)
class IdentityModel:
    mean: np.ndarray
    between: np.ndarray  # a factor L with L @ L.T = the between-identity covariance
    within: np.ndarray  # the same for the within-identity covariance
    metric: Metric

    def people(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """The centres of `count` new identities."""
        return self.mean + rng.standard_normal((count, len(self.mean))) @ self.between.T

    def photos(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One template around each centre, as a new photo of that person would give
        (float32, unit length for a cosine engine)."""
        drawn = centres + rng.standard_normal(centres.shape) @ self.within.T
        drawn = drawn.astype(np.float32)
        if self.metric == "cosine":
            drawn /= np.linalg.norm(drawn, axis=1, keepdims=True)
        return drawn

    def templates(self, people: int, rng: np.random.Generator) -> np.ndarray:
        """One template for each of `people` new identities (float32)."""
        return self.photos(self.people(people, rng), rng)


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
    return IdentityModel(means.mean(axis=0), _factor(between), _factor(within), metric)


def _factor(covariance: np.ndarray) -> np.ndarray:
    """A square-root factor of a covariance, negative eigenvalues (estimation noise) set to 0."""
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))
