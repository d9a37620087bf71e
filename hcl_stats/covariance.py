"""Sufficient statistics: the sample mean and covariance of the stacked modalities.

Every covariance-based estimator in hcl_stats works from a :class:`CovarianceStats`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_Xs

__all__ = ["CovarianceStats", "sample_covariance"]


@dataclass(frozen=True)
class CovarianceStats:
    """Mean (p,), unbiased covariance (p, p) (divided by n - 1), n_samples and the
    feature counts per modality. ``n_samples=None`` marks a population covariance."""

    cov: np.ndarray
    mean: np.ndarray
    n_samples: int | None
    n_features: tuple

    @property
    def n_total_features(self) -> int:
        return int(self.cov.shape[0])


def sample_covariance(Xs) -> CovarianceStats:
    """Centred, unbiased sample covariance of the stacked modalities, computed with one
    symmetric rank-n update (float64)."""
    Xs = check_Xs(Xs, min_samples=2)
    X = np.hstack(Xs)
    n = X.shape[0]
    mean = X.mean(axis=0)
    Xc = X - mean
    cov = Xc.T @ Xc
    cov /= n - 1
    cov = 0.5 * (cov + cov.T)
    return CovarianceStats(cov=cov, mean=mean, n_samples=n, n_features=tuple(x.shape[1] for x in Xs))
