"""The estimators a study can run, by name, resolved lazily.

Each factory is called in the worker as ``fit(ctx)`` and returns a :class:`MethodFit` (or raises
:class:`MethodUnavailable` when an optional module is missing: the study records the method as
unavailable with the reason instead of crashing). ``ctx`` is a :class:`FitContext` with the
sample covariance statistics and, for data-based methods, a data matrix whose Gram matrix gives
that covariance.

Names
-----
- ``naive_svd``: Rec(S_n, K), top-K eigenpairs of the sample covariance, ignoring the structure.
- ``init``: ``HCL(structure, method="init")``, the Schur-complement initialisation alone.
- ``paper``: ``HCL(structure, method="paper")``, the authors' estimator.
- ``default``: ``HCL(structure)`` with the package's default method.
- ``slide``: ``hcl_stats.baselines.SLIDE(structure).fit_covariance(...)`` (SLIDE given the structure, with
  its own per-view scaling and tolerance, iterated on the sample covariance).
- ``oracle``: downstream studies only, the true loadings and noise variance (a bound, not a method).

Any other name registered in :data:`hcl_stats.estimation.METHODS` runs ``HCL(structure, method=name)``.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MethodFit", "MethodUnavailable", "FitContext", "fit_method", "known_method_names", "FIXED_METHODS"]

FIXED_METHODS = ("naive_svd", "init", "paper", "default", "slide", "oracle")


class MethodUnavailable(RuntimeError):
    """An optional estimator cannot be imported (the reason is recorded in the results)."""


@dataclass
class FitContext:
    stats: object            # CovarianceStats
    structure: object
    data: callable = None    # () -> list of (N, p_m) arrays whose centred Gram / (N - 1) is stats.cov
    data_scale: float = 1.0  # (N - 1) / (n - 1): the pseudo-data's squared scale relative to n real samples
    seed: int = 0            # for estimators with a random start (SLIDE)


@dataclass
class MethodFit:
    loadings: np.ndarray
    noise_var: np.ndarray | None
    fit_time: float
    info: dict = field(default_factory=dict)
    estimator: object = None   # the fitted HCL when there is one (downstream studies need it)


def known_method_names() -> set:
    from ..estimation import METHODS

    return set(FIXED_METHODS) | set(METHODS)


def _fit_hcl(ctx, method):
    from ..model import HCL

    est = HCL(ctx.structure) if method is None else HCL(ctx.structure, method=method)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit_covariance(ctx.stats.cov, ctx.stats.n_features, ctx.stats.n_samples, mean=ctx.stats.mean)
    dt = time.perf_counter() - t0
    info = {"method": est.method, "n_iter": int(est.n_iter_), "converged": bool(est.converged_)}
    if caught:
        info["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return MethodFit(est.loadings_, est.noise_var_features_, dt, info, est)


def _fit_naive(ctx):
    from ..estimation.init import naive_svd

    t0 = time.perf_counter()
    W = naive_svd(ctx.stats.cov, ctx.structure.n_factors)
    return MethodFit(W, None, time.perf_counter() - t0, {"note": "structure ignored; blocks are slices of the top-K eigenvectors"})


def _fit_slide(ctx):
    try:
        from ..baselines import SLIDE
    except ImportError as exc:
        raise MethodUnavailable(f"hcl_stats.baselines.SLIDE is not importable ({exc})") from None
    # SLIDE's own scaling (every view centred and scaled to unit Frobenius norm) and tolerance
    # (1e-6 on the squared change of U V^T of the scaled data), iterated on the covariance, its
    # sufficient statistic (the same iterates as on data with that covariance).
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = SLIDE(ctx.structure, random_state=ctx.seed).fit_covariance(
            ctx.stats.cov, ctx.stats.n_features, ctx.stats.n_samples, mean=ctx.stats.mean)
    dt = time.perf_counter() - t0
    info = {}
    for a in ("n_iter_", "converged_"):
        if hasattr(est, a):
            v = getattr(est, a)
            info[a.rstrip("_")] = bool(v) if isinstance(v, (bool, np.bool_)) else int(v)
    if caught:
        info["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    nv = getattr(est, "noise_var_features_", None)
    return MethodFit(np.asarray(est.loadings_, float), nv, dt, info, est)


def fit_method(name: str, ctx: FitContext) -> MethodFit:
    """Fit the estimator ``name`` (see the module docstring) in the context ``ctx``; the CPU
    seconds of the fit are recorded in ``info["cpu_time"]`` (the wall time on an idle core)."""
    c0 = time.process_time()
    fit = _fit_method(name, ctx)
    fit.info["cpu_time"] = time.process_time() - c0
    return fit


def _fit_method(name, ctx):
    if name == "naive_svd":
        return _fit_naive(ctx)
    if name == "slide":
        return _fit_slide(ctx)
    if name == "oracle":
        raise ValueError("method 'oracle' is only available in downstream and selection studies (it uses the true loadings).")
    if name == "default":
        return _fit_hcl(ctx, None)
    from ..estimation import METHODS

    if name in METHODS:
        return _fit_hcl(ctx, name)
    raise ValueError(f"method must be one of {sorted(known_method_names())}; got {name!r}.")
