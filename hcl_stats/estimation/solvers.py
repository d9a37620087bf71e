"""Solvers as parts: the choice of algorithm and its options travel together.

:class:`hcl_stats.HCL` takes ``solver=EM(...) | ALS(...) | PaperGD(...) | SpectralInit()``; the
``method=`` strings map to the default part of each method (``"ml"`` -> :class:`EM`, ``"als"`` ->
:class:`ALS`, ``"paper"`` -> :class:`PaperGD`, ``"init"`` -> :class:`SpectralInit`). Each part

- holds ITS options (and only those) and validates them with a message naming the option;
- declares what it supports: ``noise_models`` (the first is its default), whether it takes a
  penalty (``penalty``: ``"float"`` a fixed ``alpha``, ``"path"`` ``alpha="bic"|"cv"``), whether
  it fits incomplete data (``handles_missing``) and whether it works from the centred data when
  p > n without forming the p x p covariance (``handles_wide``);
- runs its registered method (:data:`hcl_stats.estimation.METHODS`) with declared keyword
  options only.

The penalty (``alpha``, ``l1_ratio``) and the noise model stay options of :class:`hcl_stats.HCL`:
they describe the model, not the algorithm.

Tolerances (one meaning, docs/method.md, section 14): a part's ``tol`` is the
tolerance compared with the scale-free optimality measure ``stop_crit`` at the returned point,
``converged = stop_crit <= tol``. :class:`EM` also has ``change_tol``, a rule on the increase of
the average log-likelihood per sample and feature (EM stops when both hold); :class:`PaperGD` has
``change_tol``, the authors' threshold on abs(f_{i-1} - f_i) that (with their step schedule) ends its
loop, and reports ``stop_crit`` without acting on it; :class:`ALS` stops on ``tol`` alone.

Examples
--------
>>> from hcl_stats import HCL, Structure
>>> from hcl_stats.estimation.solvers import EM, PaperGD
>>> s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
>>> HCL(s, solver=EM(accelerate=None, max_iter=500))
HCL(solver=EM(accelerate=None, max_iter=500), structure=...)
>>> PaperGD(lr=-1.0).validate()
Traceback (most recent call last):
...
ValueError: The 'lr' parameter of PaperGD must be a float in (0, inf). Got -1.0 instead.
"""
from __future__ import annotations

import numpy as np

from .._validation import Interval, Options, validate_params
from ..base import BaseEstimator
from . import METHODS

__all__ = ["Solver", "EM", "ALS", "PaperGD", "SpectralInit", "SOLVERS", "solver_for_method"]


class Solver(BaseEstimator):
    """Base class of the solver parts (see the module docstring).

    Attributes
    ----------
    method : str
        The registered method the part runs.
    noise_models : tuple of str
        Noise models the part fits; the first is its default.
    penalty : tuple of str
        ``"float"`` (a fixed ``alpha`` > 0) and / or ``"path"`` (``alpha="bic"|"cv"``).
    handles_missing : bool
        Fits incomplete data (``HCL(missing="em")`` with NaN).
    handles_wide : bool
        Works from the centred data when p > n (no p x p matrix).
    """

    method = ""
    noise_models: tuple = ("isotropic",)
    penalty: tuple = ()
    handles_missing = False
    handles_wide = False
    _parameter_constraints: dict = {}

    def validate(self):
        """Check the options; a ValueError names the option, what was expected and what was received."""
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        return self

    def supported_noise(self) -> tuple:
        """The noise models this part fits with its current options (the first is its default)."""
        return self.noise_models

    def changed_options(self) -> dict:
        """The options that differ from the part's defaults, {name: value}."""
        import inspect

        sig = inspect.signature(type(self).__init__)
        out = {}
        for k, v in self.get_params().items():
            d = sig.parameters[k].default
            try:
                same = v is d or (type(v) is type(d) and v == d)
            except Exception:  # pragma: no cover - exotic values
                same = False
            if not same:
                out[k] = v
        return out

    def method_options(self) -> dict:
        """The keyword options of the registered method, {name: value} (its declared keywords)."""
        return {}

    def solve(self, stats, structure, *, noise=None, alpha=0.0, l1_ratio=1.0):
        """Fit from the sufficient statistics ``stats`` (CovarianceStats or DataStats).

        Returns
        -------
        EstimationResult
        """
        self.validate()
        opts = self.method_options()
        if "noise" in _keywords(self.method):
            opts["noise"] = noise
        if alpha and alpha > 0:
            opts.update(alpha=alpha, l1_ratio=l1_ratio)
        return METHODS[self.method](stats, structure, **opts)

    # sensible printing of a part inside an HCL repr
    def __eq__(self, other):
        return type(self) is type(other) and self.get_params() == other.get_params()

    __hash__ = None


def _keywords(method):
    import inspect

    return set(inspect.signature(METHODS[method]).parameters)


class EM(Solver):
    """Gaussian maximum likelihood by EM (parameter-expanded M-step, SQUAREM acceleration),
    :func:`hcl_stats.estimation.ml.fit_ml`; with incomplete data
    :func:`hcl_stats.estimation.missing.fit_missing`.

    Parameters
    ----------
    max_iter : int, default 1000
        EM iterations at most (a SQUAREM cycle counts as one).
    tol : float, optional
        Tolerance of ``stop_crit``; ``converged = stop_crit <= tol``. Its meaning follows
        ``criterion``; None (default) means 1e-3 for "likelihood" and 1e-10 for "gradient".
    change_tol : float, default 1e-13
        With ``criterion="gradient"``, EM also stops only once the increase of the objective per
        sample and feature is at most ``change_tol`` (nats). Not used by "likelihood".
    criterion : {"likelihood", "gradient"}, default "likelihood"
        The stopping rule (docs/method.md, section 14).

        - "likelihood": ``stop_crit`` is the mean increase per iteration of the total
          log-likelihood of the sample (n times the average per sample), over the last
          ``window`` iterations; EM stops once it is at most ``tol`` nats per iteration. This is
          precision on the scale statistics reads (a likelihood-ratio statistic is twice a
          difference of total log-likelihoods), at any sample size. It measures progress, not the
          distance to the maximum: on a flat likelihood ridge EM can still gain a fraction of a
          nat over hundreds more iterations (measured in docs/method.md, section 14).
        - "gradient": ``stop_crit`` is max(||P(dl/dW)||_F ||W||_F / p, root mean square of the
          scaled noise gradient psi dl/dpsi) (with a penalty the scaled distance of the gradient
          to the penalty's subdifferential), a per-sample stationarity measure; EM stops when it
          is at most ``tol`` and the objective's increase is at most ``change_tol``. For
          reproducing an optimum to many digits (e.g. comparing two computations of one fit).

        A population covariance (no sample size) is always fitted with "gradient".
    window : int, default 10
        Iterations over which "likelihood" averages the increase.
    accelerate : {"squarem", None}, default "squarem"
        SQUAREM with a monotone safeguard, or plain EM.
    shrinkage : bool, default True
        Fit the spiked-model optimal shrinkage of the (whitened) covariance instead of the sample
        covariance (complete data only: EM on incomplete data fits the observed entries).

    Notes
    -----
    Noise models: "feature" (default), "modality", "isotropic". Penalty: a fixed ``alpha`` or
    ``alpha="bic"|"cv"``. Incomplete data: yes. p > n: yes (products with the centred data).
    """

    method = "ml"
    noise_models = ("feature", "modality", "isotropic")
    penalty = ("float", "path")
    handles_missing = True
    handles_wide = True
    _parameter_constraints = {
        "max_iter": [Interval(int, 1, None)],
        "tol": [Interval(float, 0, None), None],
        "change_tol": [Interval(float, 0, None)],
        "accelerate": [Options("squarem"), None],
        "shrinkage": [bool],
        "criterion": [Options("likelihood", "gradient")],
        "window": [Interval(int, 1, None)],
    }
    #: default ``tol`` of each criterion (nats per iteration; dimensionless)
    DEFAULT_TOL = {"likelihood": 1e-3, "gradient": 1e-10}

    def __init__(self, max_iter=1000, tol=None, change_tol=1e-13, accelerate="squarem", shrinkage=True,
                 criterion="likelihood", window=10):
        self.max_iter = max_iter
        self.tol = tol
        self.change_tol = change_tol
        self.accelerate = accelerate
        self.shrinkage = shrinkage
        self.criterion = criterion
        self.window = window

    def validate(self):
        """As :meth:`Solver.validate`; an option the chosen ``criterion`` does not use
        (``change_tol`` with "likelihood", ``window`` with "gradient") is a ValueError naming it."""
        super().validate()
        changed = self.changed_options()
        unused = {"likelihood": "change_tol", "gradient": "window"}[self.criterion]
        if unused in changed:
            raise ValueError(f"The {unused!r} option of EM is not used with criterion={self.criterion!r}. "
                             f"Got {unused}={changed[unused]!r}.")
        return self

    @property
    def tol_value(self):
        """``tol``, or the default of ``criterion`` when ``tol`` is None."""
        return self.DEFAULT_TOL[self.criterion] if self.tol is None else self.tol

    def method_options(self):
        return dict(max_iter=self.max_iter, gtol=self.tol_value, tol=self.change_tol, accelerate=self.accelerate,
                    shrinkage=self.shrinkage, criterion=self.criterion, window=self.window)

    def solve(self, stats, structure, *, noise=None, alpha=0.0, l1_ratio=1.0):
        """As :meth:`Solver.solve`. A population covariance (no sample size) has no sampling
        precision for the "likelihood" rule, so it is fitted with the "gradient" rule and that
        rule's tolerance (``tol`` if set, else 1e-10), recorded as the fit's ``tol_``."""
        if self.criterion == "likelihood" and getattr(stats, "n_samples", None) is None:
            part = EM(max_iter=self.max_iter, tol=self.tol, change_tol=self.change_tol, accelerate=self.accelerate,
                      shrinkage=self.shrinkage, criterion="gradient")
            return part.solve(stats, structure, noise=noise, alpha=alpha, l1_ratio=l1_ratio)
        return super().solve(stats, structure, noise=noise, alpha=alpha, l1_ratio=l1_ratio)

    def solve_missing(self, Xs, structure, *, noise):
        """EM over the observed entries of ``Xs`` (NaN = missing); returns an EstimationResult."""
        from .missing import fit_missing

        self.validate()
        return fit_missing(Xs, structure, noise=noise, max_iter=self.max_iter, tol=self.change_tol, gtol=self.tol_value,
                           accelerate=self.accelerate, criterion=self.criterion, window=self.window)


class ALS(Solver):
    """Alternating exact block updates on the denoised covariance, then a Newton polish,
    :func:`hcl_stats.estimation.als.fit_als`.

    Parameters
    ----------
    max_iter : int, default 500
        Sweeps over the subsets plus Newton steps at most.
    tol : float, default 1e-6
        Tolerance of ``stop_crit``, the scaled masked gradient
        ||P(2 (W W^T - T) W)||_F / (2 ||T||_F ||W||_F) of the least-squares objective at the
        returned point; ALS stops when it holds (its one criterion).
    accelerate : {"squarem", "anderson", None}, default "squarem"
        Extrapolation of the sweeps (monotone safeguard) or plain sweeps.
    polish : bool, default True
        Once the sweeps slow down, truncated Newton-CG steps with an exact line search on the same
        objective (monotone); False: sweeps only.
    shrinkage : bool, default True
        Fit the spiked-model shrinkage of the denoised covariance (rank <= K).

    Notes
    -----
    Noise models: "modality" with ``shrinkage=True``, "isotropic" with ``shrinkage=False``.
    Penalty: ``alpha="bic"|"cv"`` only. Incomplete data: no. p > n: forms the p x p covariance.
    """

    method = "als"
    noise_models = ("modality",)
    penalty = ("path",)
    _parameter_constraints = {
        "max_iter": [Interval(int, 1, None)],
        "tol": [Interval(float, 0, None)],
        "accelerate": [Options("squarem", "anderson"), None],
        "polish": [bool],
        "shrinkage": [bool],
    }

    def __init__(self, max_iter=500, tol=1e-6, accelerate="squarem", polish=True, shrinkage=True):
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate
        self.polish = polish
        self.shrinkage = shrinkage

    def supported_noise(self):
        return ("modality",) if self.shrinkage else ("isotropic",)

    def method_options(self):
        return dict(max_iter=self.max_iter, tol=self.tol, accelerate=self.accelerate, shrinkage=self.shrinkage,
                    polish=self.polish)

    def solve(self, stats, structure, *, noise=None, alpha=0.0, l1_ratio=1.0):
        res = super().solve(stats, structure, noise=noise, alpha=alpha, l1_ratio=l1_ratio)
        if np.isnan(res.stop_crit):
            # a fit_als that reports its measure in info / per accepted step only
            from . import EstimationResult

            kkt = np.asarray(res.history.get("kkt", [np.nan]), dtype=float)
            crit = float(res.info.get("stop_crit", kkt[-1]))
            obj = float(res.info.get("objective", np.asarray(res.history.get("objective", [np.nan]), float)[-1]))
            info = dict(res.info, stopping_rule_met=bool(res.converged))
            res = EstimationResult(loadings=res.loadings, noise_var=res.noise_var, n_iter=res.n_iter,
                                   history=res.history, info=info, stop_crit=crit, tol=self.tol, objective=obj)
        return res


class PaperGD(Solver):
    """The authors' masked gradient descent with their step schedule ("paper mode"),
    :func:`hcl_stats.estimation.paper.fit_paper`.

    Parameters
    ----------
    lr : float, default 1e-4
        Initial step.
    lr_decay : float in (0, 1], default 0.1
        The step is multiplied by ``lr_decay`` every ``decay_every`` iterations.
    decay_every : int, default 10
    min_iter : int, default 100
        The authors' change rule is tested from this iteration on.
    max_iter : int, default 1000
    change_tol : float, default 1e-6
        The authors' stopping threshold on abs(f_{i-1} - f_i).
    tol : float, default 1e-6
        Tolerance of ``stop_crit``, the scaled masked gradient of the least-squares objective at
        the returned point (:func:`hcl_stats.estimation.paper.paper_stop_crit`). It decides
        ``converged`` only, not when the loop stops: with the default schedule the step has
        decayed to nothing by iteration 102, and ``converged`` says whether that point is
        stationary. Paper mode does not warn when it is not (the authors' estimator stops by its
        schedule by design).

    Notes
    -----
    Noise model: "isotropic" (the mean of the p - K smallest eigenvalues). No penalty, no
    incomplete data; forms the p x p covariance.
    """

    method = "paper"
    noise_models = ("isotropic",)
    _parameter_constraints = {
        "lr": [Interval(float, 0, None, closed="neither")],
        "lr_decay": [Interval(float, 0, 1, closed="right")],
        "decay_every": [Interval(int, 1, None)],
        "min_iter": [Interval(int, 0, None)],
        "max_iter": [Interval(int, 1, None)],
        "change_tol": [Interval(float, 0, None)],
        "tol": [Interval(float, 0, None)],
    }

    def __init__(self, lr=1e-4, lr_decay=0.1, decay_every=10, min_iter=100, max_iter=1000, change_tol=1e-6,
                 tol=1e-6):
        self.lr = lr
        self.lr_decay = lr_decay
        self.decay_every = decay_every
        self.min_iter = min_iter
        self.max_iter = max_iter
        self.change_tol = change_tol
        self.tol = tol

    def method_options(self):
        return dict(lr=self.lr, lr_decay=self.lr_decay, decay_every=self.decay_every, min_iter=self.min_iter,
                    max_iter=self.max_iter, change_tol=self.change_tol, tol=self.tol)


class SpectralInit(Solver):
    """The spectral (Schur-complement) initialisation alone, no refinement
    (:func:`hcl_stats.estimation.paper.fit_init`). No options.

    No iterations: ``stop_crit_`` is NaN, ``tol_`` NaN and ``converged_`` False by convention
    (nothing was iterated to a criterion); no ``ConvergenceWarning``.

    Notes
    -----
    Noise model: "isotropic". No penalty, no incomplete data; forms the p x p covariance.
    """

    method = "init"
    noise_models = ("isotropic",)

    def __init__(self):
        pass


SOLVERS = {"ml": EM, "als": ALS, "paper": PaperGD, "init": SpectralInit}

# HCL's top-level options -> the option of the part they set. ``tol`` is the tolerance compared
# with stop_crit_ for every method; HCL's ``gtol`` is a deprecated alias of it (HCL warns).
TOP_LEVEL = {
    "ml": {"max_iter": "max_iter", "tol": "tol", "accelerate": "accelerate", "shrinkage": "shrinkage"},
    "als": {"max_iter": "max_iter", "tol": "tol", "accelerate": "accelerate", "shrinkage": "shrinkage"},
    "paper": {"lr": "lr", "lr_decay": "lr_decay", "decay_every": "decay_every", "min_iter": "min_iter",
              "max_iter": "max_iter", "tol": "tol"},
    "init": {},
}


def solver_for_method(method, options=None, owner="HCL"):
    """The default part of ``method`` with HCL's top-level ``options`` ({name: value}, only those the
    user set) applied; an option the method does not use is a ValueError naming it."""
    options = dict(options or {})
    if method not in SOLVERS:
        if method not in METHODS:
            raise ValueError(f"The 'method' parameter of {owner} must be one of {sorted(METHODS)}. Got {method!r} instead.")
        if options:
            raise ValueError(f"The {sorted(options)[0]!r} parameter of {owner} is not used by method={method!r} "
                             f"(a registered method without a solver part takes no options). Got "
                             f"{sorted(options)[0]}={options[sorted(options)[0]]!r}.")
        return _Registered(method)
    table = TOP_LEVEL[method]
    for k, v in options.items():
        if k not in table:
            used = sorted(table) or "none"
            raise ValueError(f"The {k!r} parameter of {owner} is not used by method={method!r} (its options: {used}). "
                             f"Got {k}={v!r}; remove it or choose a method that uses it.")
    part = SOLVERS[method](**{table[k]: v for k, v in options.items()})
    return part


class _Registered(Solver):
    """A registered method without a solver part of its own: run with no options."""

    noise_models = ("isotropic",)

    def __init__(self, name="init"):
        self.name = name

    @property
    def method(self):
        return self.name
