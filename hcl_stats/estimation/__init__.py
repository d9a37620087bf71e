"""Estimators of the hierarchical factor model, one module per idea.

- :mod:`~hcl_stats.estimation.linalg`: small symmetric linear-algebra kernels (Rec, truncated
  pseudo-inverse, PSD truncation).
- :mod:`~hcl_stats.estimation.noise`: the noise-variance estimate.
- :mod:`~hcl_stats.estimation.init`: the spectral (Schur-complement) initialisation for any M.
- :mod:`~hcl_stats.estimation.paper`: the authors' masked-gradient refinement ("paper mode").

Methods register themselves in :data:`METHODS` (name -> callable). A method takes
``(stats, structure, **options)`` with ``stats`` a :class:`~hcl_stats.covariance.CovarianceStats`
and returns an :class:`EstimationResult`; every method declares its keyword options (an unknown
one is a ``TypeError``). :mod:`~hcl_stats.estimation.solvers` wraps each method in a solver part
(``EM``, ``ALS``, ``PaperGD``, ``SpectralInit``) that holds and validates its options.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EstimationResult", "METHODS", "register_method"]


@dataclass
class EstimationResult:
    """What an estimation method found.

    Attributes
    ----------
    loadings : ndarray of shape (p, K)
        Block-sparse loadings, columns in ``structure.subsets`` order.
    noise_var : ndarray of shape (p,)
        Noise variance of each feature.
    n_iter : int
        Iterations of the refinement (0 for a method without iterations).
    converged : bool
        ``stop_crit <= tol`` (derived in ``__post_init__``; a value passed that disagrees with
        ``stop_crit`` and ``tol`` is replaced, the method's own flag is kept in
        ``info["stopping_rule_met"]``). When no ``stop_crit`` is given (NaN), the flag passed
        is kept as is (a method that does not yet compute one).
    history : dict
        Per-iteration traces (e.g. "objective", "loglik", "kkt").
    info : dict
        Anything else worth keeping (initial loadings, timings, ...).
    stop_crit : float, default NaN
        A scale-free optimality measure at the RETURNED point (docs/method.md, section 14): a
        scaled projected gradient, or with a penalty the scaled distance of the negative gradient
        to the subdifferential. NaN for a method without iterations.
    tol : float, default NaN
        The tolerance ``stop_crit`` is compared with.
    objective : float, default NaN
        The value of what the method optimised at the returned point (e.g. the average
        log-likelihood of the shrunk covariance minus the penalty, or the paper's least-squares
        loss).
    """

    loadings: np.ndarray
    noise_var: np.ndarray
    n_iter: int
    converged: bool = False
    history: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    stop_crit: float = float("nan")
    tol: float = float("nan")
    objective: float = float("nan")

    def __post_init__(self):
        self.stop_crit = float(self.stop_crit)
        self.tol = float(self.tol)
        self.objective = float(self.objective)
        if not np.isnan(self.stop_crit) or not np.isnan(self.tol):
            derived = bool(self.stop_crit <= self.tol)
            if bool(self.converged) != derived:
                self.info.setdefault("stopping_rule_met", bool(self.converged))
            self.converged = derived
        else:
            self.converged = bool(self.converged)


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
from . import solvers  # noqa: E402,F401
