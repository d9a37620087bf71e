"""Estimators of the hierarchical factor model, one module per idea.

- :mod:`~hcl_stats.estimation.linalg`: small symmetric linear-algebra kernels (Rec, truncated
  pseudo-inverse, PSD truncation).
- :mod:`~hcl_stats.estimation.noise`: the noise-variance estimate.
- :mod:`~hcl_stats.estimation.init`: the spectral (Schur-complement) initialisation for any M.
- :mod:`~hcl_stats.estimation.paper`: the authors' masked-gradient refinement ("paper mode").

Methods register themselves in :data:`METHODS` (name -> callable). A method takes
``(stats, structure, **options)`` with ``stats`` a :class:`~hcl_stats.covariance.CovarianceStats`
and returns an :class:`EstimationResult`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EstimationResult", "METHODS", "register_method"]


@dataclass
class EstimationResult:
    """What an estimation method found.

    loadings : (p, K) block-sparse loadings, columns in ``structure.subsets`` order.
    noise_var : (p,) noise variance of each feature.
    n_iter, converged : iterations of the refinement and whether it met its criterion.
    history : dict of per-iteration traces (e.g. "objective", "loglik").
    info : anything else worth keeping (initial loadings, timings, ...).
    """

    loadings: np.ndarray
    noise_var: np.ndarray
    n_iter: int
    converged: bool
    history: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


METHODS: dict = {}


def register_method(name: str):
    def deco(func):
        METHODS[name] = func
        return func
    return deco


# import for registration side effects
from . import paper  # noqa: E402,F401
from . import ml  # noqa: E402,F401
from . import als  # noqa: E402,F401
