"""Noise-variance estimates."""
from __future__ import annotations

import numpy as np

from .linalg import top_eigh

__all__ = ["bottom_eigenvalue_noise"]


def bottom_eigenvalue_noise(cov: np.ndarray, n_factors: int) -> float:
    """Mean of the p - K smallest eigenvalues of the covariance (the authors' estimate).

    Computed as (trace - sum of the top K eigenvalues) / (p - K), which equals that mean
    and needs only the top-K eigenpairs.
    """
    p = cov.shape[0]
    if n_factors >= p:
        raise ValueError(f"the noise estimate needs K < p; got K = {n_factors}, p = {p}.")
    w, _ = top_eigh(cov, n_factors)
    return float((np.trace(cov) - w.sum()) / (p - n_factors))
