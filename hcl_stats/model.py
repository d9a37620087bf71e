"""`HCL`: the estimator (scikit-learn conventions) and `HCLResults`: what a fit found
(statsmodels conventions: summary, history, convergence)."""
from __future__ import annotations

import time
import warnings

import numpy as np

from ._validation import Interval, Options, check_Xs, check_n_features, user_stacklevel, validate_params
from . import io as _io
from .base import BaseEstimator, clone
from .covariance import CovarianceStats, covariance_stats, fit_statistics, is_out_of_core, sample_covariance
from .estimation import METHODS
from .estimation.linalg import is_symmetric
from .estimation.solvers import Solver, solver_for_method
from .exceptions import (ConvergenceWarning, EstimationWarning, IdentifiabilityError, IdentifiabilityWarning,
                         NotFittedError)
from .likelihood import loglik_from_cov, loglik_from_stats, loglik_samples, model_covariance, model_precision
from .structure import Structure
from .summary import Summary, Table



def _row_slices(n_features):
    """Row slice of each modality in the stacked features (before a structure is known)."""
    ends = np.cumsum(n_features)
    return [slice(int(e - p), int(e)) for e, p in zip(ends, n_features)]

__all__ = ["HCL", "HCLResults", "Summary"]


class HCLResults:
    """What an HCL fit found.

    Attributes
    ----------
    structure, n_features, method, n_samples
    loadings : ndarray (p, K)
    noise_var : ndarray (n_modalities,), the mean noise variance of each modality's features
    noise_var_features : ndarray (p,)
    n_iter, converged, history : refinement trace (dict of arrays)
    stop_crit, tol : the optimality measure at the returned point and its tolerance
        (``converged == (stop_crit <= tol)``)
    objective : float, the value of what the solver optimised
    loglik : float, the Gaussian log-likelihood of the training data at the estimate, mean per sample
    feature_var : ndarray (p,), the sample variance of each feature (for variance explained)
    fit_time : seconds
    """

    def __init__(self, structure, n_features, loadings, noise_var_features, n_iter, converged, history,
                 method, n_samples, feature_var, fit_time=None, info=None, stop_crit=np.nan, tol=np.nan,
                 objective=np.nan, loglik=np.nan):
        self.stop_crit = float(stop_crit)
        self.tol = float(tol)
        self.objective = float(objective)
        self.loglik = float(loglik)
        self.structure = structure
        self.n_features = tuple(n_features)
        self.loadings = loadings
        self.noise_var_features = noise_var_features
        rows = structure.row_slices(n_features)
        self.noise_var = np.array([noise_var_features[r].mean() for r in rows])
        self.n_iter = n_iter
        self.converged = converged
        self.history = history
        self.method = method
        self.n_samples = n_samples
        self.feature_var = feature_var
        self.fit_time = fit_time
        self.info = info or {}

    def variance_explained(self) -> np.ndarray:
        """(n_modalities, n_subsets) share of each modality's total variance carried by each subset:
        ||W_{m,S}||_F^2 / tr(Cov(x_m)); zero where the block is structurally absent."""
        s = self.structure
        rows = s.row_slices(self.n_features)
        out = np.zeros((s.n_modalities, s.n_subsets))
        for j, (sub, cs) in enumerate(s.column_slices.items()):
            for m in sub:
                out[m, j] = np.sum(self.loadings[rows[m], cs] ** 2) / np.sum(self.feature_var[rows[m]])
        return out

    def noise_share(self) -> np.ndarray:
        rows = self.structure.row_slices(self.n_features)
        return np.array([self.noise_var_features[r].sum() / self.feature_var[r].sum() for r in rows])

    def _table_rows(self):
        s = self.structure
        ve = self.variance_explained()
        header = ["modality"] + [s.label(sub) for sub in s.subsets] + ["noise var", "noise share"]
        rows = []
        ns = self.noise_share()
        for m in range(s.n_modalities):
            cells = [s.names[m]]
            for j, sub in enumerate(s.subsets):
                cells.append(f"{ve[m, j]:.3f}" if m in sub else ".")
            cells += [f"{self.noise_var[m]:.4g}", f"{ns[m]:.3f}"]
            rows.append(cells)
        return header, rows

    def _objective_label(self):
        """What ``objective`` is the value of (set at fit; kept by save / load)."""
        label = getattr(self, "objective_label", None)
        if label:
            return label
        m = self.method
        shrunk = self.info.get("shrinkage") is not None
        if m in ("paper", "init", "als"):
            return ("least squares 1/2 ||W W^T - T||_F^2, T the " + ("shrunk " if shrunk else "")
                    + "denoised covariance")
        if self.info.get("missing"):
            return "observed-data log-likelihood per sample"
        pen = " minus the penalty" if self.info.get("alpha_abs") else ""
        target = "the shrunk covariance" if shrunk else "the sample covariance"
        return f"log-likelihood per sample of {target}{pen}"

    def _info_lines(self):
        s = self.structure
        if self.method == "init":
            conv = "n/a (no iterations)"
        else:
            conv = ("yes" if self.converged else "no") + (
                f" (stop_crit {self.stop_crit:.2g}, tol {self.tol:.2g})" if np.isfinite(self.stop_crit) else "")
            if self.method == "paper":
                conv += "; stopped by the authors' step schedule"
        lines = [
            ("Method", self.method),
            ("Modalities", f"{s.n_modalities} ({', '.join(f'{n}: {p}' for n, p in zip(s.names, self.n_features))})"),
            ("Subsets / factors", f"{s.n_subsets} / {s.n_factors}"),
            ("Samples", "population" if self.n_samples is None else str(self.n_samples)),
            ("Iterations", str(self.n_iter)),
            ("Converged", conv),
        ]
        nm = getattr(self, "noise_model", None)
        if nm:
            lines.insert(1, ("Noise model", {"feature": "feature (one variance per feature)",
                                             "modality": "modality (one variance per modality)",
                                             "isotropic": "isotropic (one variance for all features)"}[nm]))
        sel = getattr(self, "selection", None)
        if sel is not None:
            txt = f"selected from data (level {getattr(sel, 'level', None) or sel.alpha:g}, noise '{sel.noise}')"
            st = sel.stability
            if st is not None:
                txt += (f"; over {st.n_resamples} subsamples of {st.fraction:.0%}: this structure in {st.agreement:.0%}, "
                        f"the most frequent in {st.modal_frequency:.0%}" + ("" if st.stable else " - UNSTABLE, see selection_.summary()"))
            if sel.residual:
                txt += f"; tests not consistent with one structure (deviation {sel.residual})"
            lines.insert(2, ("Structure", txt))
        path = getattr(self, "alpha_path", None)
        if path is not None:
            b = path.best
            unit = "loadings" if path.l1_ratio > 0 else "(feature, subset) rows"
            lines.append(("Sparse loadings", f"alpha {path.alpha:.3g} x alpha_max chosen by {path.criterion.upper()} over "
                          f"{path.alphas.size} values (0 included); {path.n_units_selected[b]} of {path.n_units} {unit} "
                          f"non-zero; relaxed refit (rotation: {path.rotation})"))
        stab = getattr(self, "stability", None)
        if stab is not None:
            lines.extend(stab.summary_lines())
        miss = getattr(self, "missing", None)
        if miss is not None:
            lines.insert(3, ("Missing per modality", miss.line()))
            lines.insert(4, ("Incomplete data", "EM over the observed entries (missing at random); loglik of the observed data"))
        if np.isfinite(self.loglik):
            lines.append(("Log-likelihood (data)", f"{self.loglik:.6g} per sample"))
        if np.isfinite(self.objective):
            lines.append(("Objective (solver)", f"{self.objective:.6g} ({self._objective_label()})"))
        if self.fit_time is not None:
            lines.append(("Fit time (s)", f"{self.fit_time:.3f}"))
        return lines

    def summary(self) -> "Summary":
        """Per block variance explained per modality, noise, convergence
        (a :class:`hcl_stats.summary.Summary`)."""
        header, rows = self._table_rows()
        return Summary("HCL results: share of each modality's variance explained by each subset",
                       info=self._info_lines(), tables=[Table(header, rows)])

    def plot_structure(self, ax=None, cmap="viridis", annotate=True):
        """Modality x subset heatmap of variance explained (structurally absent blocks blank)."""
        from .plotting import plot_structure_heatmap

        return plot_structure_heatmap(self.variance_explained(), self.structure, ax=ax, cmap=cmap,
                                      annotate=annotate)


class HCL(BaseEstimator):
    """Hierarchical Contrastive Learning: the hierarchical multimodal factor model
    x_m = sum_{S contains m} W_{m,S} z_S + e_m, fitted from the covariance.

    Parameters
    ----------
    structure : Structure
        Which subsets of the modalities share factors and at what rank.
    method : str, default "ml"
        "ml": Gaussian maximum likelihood by SQUAREM-accelerated EM from the spectral
        initialisation (:mod:`hcl_stats.estimation.ml`); the default, chosen by measurement
        (benchmarks/results/bench_accuracy.md, bench_speed.md): the most accurate method
        within the speed target. "als": alternating exact block updates on the denoised
        covariance (:mod:`hcl_stats.estimation.als`). "paper": the authors' estimator step for
        step (noise from the bottom eigenvalues, Schur-complement initialisation, masked
        gradient refinement with their step schedule). "init": the initialisation alone.
        Other registered methods are listed in ``hcl_stats.estimation.METHODS``. Each string
        maps to the default solver part of the method (:mod:`hcl_stats.estimation.solvers`):
        "ml" -> ``EM()``, "als" -> ``ALS()``, "paper" -> ``PaperGD()``, "init" ->
        ``SpectralInit()``.
    solver : Solver, optional
        The algorithm and its options as one part: ``EM(...)``, ``ALS(...)``, ``PaperGD(...)``
        or ``SpectralInit()`` (:mod:`hcl_stats.estimation.solvers`), e.g.
        ``HCL(s, solver=EM(accelerate=None, max_iter=5000))``. With a solver, ``method`` is left
        at its default (or names the same method) and the top-level solver options (``lr``,
        ``lr_decay``, ``decay_every``, ``min_iter``, ``max_iter``, ``tol``, ``gtol``,
        ``accelerate``, ``shrinkage``) are left unset: set them on the part. Without a solver,
        an option the chosen method does not use (e.g. ``lr`` with "ml", ``shrinkage`` with
        "init", ``accelerate=None`` with "paper") is a ValueError naming it; an option counts as
        set when it differs from its default.
    noise : {"feature", "modality", "isotropic"} or None, default None
        The noise model, with the same meaning everywhere in hcl_stats (:func:`select_structure`,
        the CLI, the harness): "feature" = one noise variance per feature (diagonal Psi),
        "modality" = one per modality, "isotropic" = one for all features of all modalities.
        None = the method's default: "feature" for "ml" (chosen by measurement: real features
        each keep their own noise share, and with per-feature noise the other models select and
        fit badly; benchmarks/results/noise.md), "modality" for "als" (``shrinkage=True``)
        and "isotropic" for "als" (``shrinkage=False``), "paper" and "init". A model the method
        does not support is an error, never silently ignored. With "feature" the fit is
        equivariant to rescaling any feature by a positive constant.
    alpha : float or {"bic", "cv"}, default 0.0
        Sparse loadings. A float: "ml" only, the penalty as a fraction of ``alpha_max`` (see
        :mod:`hcl_stats.estimation.sparse`); 0 means no penalty. "bic" or "cv" ("ml" and "als"):
        choose the penalty from data on a path (:mod:`hcl_stats.estimation.sparse_path`): the
        dense fit, each subset's columns rotated towards a sparse basis (varimax; an
        identification choice), penalised fits over a grid that ends at alpha = 0, each refitted
        without penalty on its support (relaxed), and the refit with the smallest extended BIC
        ("bic") or the largest 5-fold cross-validated log-likelihood ("cv"; needs in-memory
        data). A dense truth keeps a dense fit (alpha = 0 is on the grid). The path is kept in
        ``alpha_path_`` (:meth:`plot_alpha_path`), the chosen relative alpha in ``alpha_``, the
        penalised (not refitted) loadings in ``results_.info["loadings_penalised"]``.
    l1_ratio : float in [0, 1], default 1.0
        Mix of elementwise L1 (1) and row-group L2 (0: features not loading on a subset).
    shrinkage : bool, optional
        "ml", "als" (None = the method's default, True for both; any value with "paper" or
        "init" is an error since they do not shrink): fit the spiked-model optimal eigenvalue shrinkage of the (per-modality
        whitened) covariance instead of the covariance itself
        (:mod:`hcl_stats.estimation.shrinkage`). Exact for a population covariance; for
        samples it discards the eigen-directions inside the noise bulk, which makes the fit both
        faster (a rank <= K target: O(p K^2) per iteration) and, at weak signal, far more
        accurate (benchmarks/results/bench_accuracy.md). ``False`` gives plain ML / ALS on S_n.
    accelerate : {"squarem", None}, default "squarem"
        "ml", "als": SQUAREM acceleration (monotone safeguard) or plain EM / sweeps.
    gtol : float, optional
        Deprecated alias of ``tol`` (FutureWarning; its value is used as ``tol``).
    chunk_size : int, optional
        Rows read at a time when ``fit`` gets memory-mapped arrays (default: about 64 MB).
    lr, lr_decay, decay_every, min_iter : float, float, int, int, optional
        "paper" only: the authors' step schedule (default 1e-4, x0.1 every 10 iterations, stop
        test from iteration 100 on; :class:`hcl_stats.estimation.solvers.PaperGD`).
    max_iter : int, optional
        Iteration limit (method default: 1000 for "paper" and "ml", 500 sweeps for "als").
    tol : float, optional
        The tolerance compared with the stopping measure ``stop_crit_`` (the solver part's
        ``tol``, recorded as ``tol_``): ``converged_ == (stop_crit_ <= tol_)``. Method default:
        1e-3 for "ml" (nats per iteration: the mean increase of the total log-likelihood of the
        sample over the last 10 EM iterations, ``EM(criterion="likelihood")``; with
        ``EM(criterion="gradient")`` 1e-10 on the scaled gradients of the loadings and of the
        noise variances, with the change rule ``EM(change_tol=1e-13)``), 1e-6 for "als" and
        "paper" (the scaled masked gradient of the least-squares objective). "paper" stops
        by the authors' schedule (``PaperGD(change_tol=1e-6)``) and ``tol`` only decides
        ``converged_``. Changed in this release: ``tol`` was the change rule of "ml", "als" and
        "paper" (now ``EM(change_tol=...)`` and ``PaperGD(change_tol=...)``; ALS stops on
        ``tol`` alone), ``gtol`` the gradient tolerance.
    identifiability : {"raise", "warn", "ignore"}, default "raise"
        What to do when ``structure.check_identifiable(n_features)`` reports violated rank
        conditions. Ranks larger than a modality's features are always an error.
    missing : {"error", "em"}, default "error"
        What to do with NaN (a missing entry; a sample may miss whole modalities). "error":
        refuse NaN (the message names this option). "em": fit by EM over the observed entries
        (:mod:`hcl_stats.estimation.missing`; entries missing at random), with the
        log-likelihood of the observed data in ``history_["loglik"]``; ``structure="auto"``
        then selects on the incomplete data (:func:`hcl_stats.incomplete.select_structure_incomplete`,
        entries missing completely at random), and ``transform``, ``posterior_mean`` and
        ``score_samples`` accept incomplete rows. Needs ``method="ml"`` without a penalty; the
        fit is plain ML on the observed entries (``shrinkage`` applies to complete data only).
        Complete data take the usual covariance path whatever this option. The summary reports
        how much is missing per modality.
    selection : dict, optional
        Options of the structure selection when ``structure="auto"``, passed to
        :func:`hcl_stats.select_structure`: ``level`` (test level, default 1e-3), ``max_rank``
        (default None), ``n_resamples`` (subsamples for the stability report, default 10 here),
        ``resample_fraction`` (default 0.8), ``random_state`` (default 0). The noise model of
        the selection is ``noise`` (the one the fit uses). Unknown keys are an error. The
        selection's evidence is kept in ``selection_``; ``summary()`` reports its stability.

    Attributes
    ----------
    loadings_ : ndarray of shape (p, K)
        Rows by modality, column blocks in ``structure.subsets`` order, zero off the support.
    noise_var_ : ndarray of shape (n_modalities,)
    n_iter_ : int
        Iterations of the solver (0 for "init").
    stop_crit_ : float
        A scale-free optimality measure at the returned point: the scaled projected gradient, or
        with a penalty the scaled distance of the gradient to the penalty's subdifferential (NaN
        for "init"). docs/method.md, section 14.
    tol_ : float
        The tolerance ``stop_crit_`` is compared with (NaN for "init").
    converged_ : bool
        ``stop_crit_ <= tol_`` (False for "init", which does not iterate; not a failure).
    objective_ : float
        The value of what the solver optimised at the estimate (e.g. the average log-likelihood of
        the shrunk covariance under the default ``shrinkage=True``, minus the penalty; the
        least-squares loss for "als", "paper", "init").
    loglik_ : float
        The Gaussian log-likelihood of the TRAINING data at the estimate, mean per sample
        (``score(X_train)``; observed-data log-likelihood with missing entries; the expected
        log-likelihood per sample for a population covariance), whatever surrogate the solver
        optimised.
    history_ : dict of ndarray
        Per-iteration traces.
    solver_ : Solver
        The solver part used (with its options).
    method_ : str
        The registered method the solver part ran ("ml", "als", "paper" or "init").
    mean_ : ndarray of shape (p,)
    n_features_ : tuple of int
    results_ : HCLResults
    noise_model_ : str
        The noise model used ("feature", "modality" or "isotropic").
    selection_ : SelectionResult or None
        With ``structure="auto"``: the evidence of the selection (``selection_.summary()``).
    alpha_ : float
        The penalty used, relative to ``alpha_max`` (the chosen one with ``alpha="bic"|"cv"``).
    alpha_path_ : SparsePath or None
        With ``alpha="bic"|"cv"``: alphas, log-likelihood, df, criterion and support size of the
        path (``alpha_path_.as_dict()``, ``.to_frame()``, ``.plot()``).
    stability_ : StabilitySelection or None
        Set by :meth:`stability_selection`; reported by ``summary()``.
    missing_ : MissingReport or None
        With ``missing="em"`` and NaN in the data: how much is missing per modality.

    Notes
    -----
    Identification: under uncorrelated latent factors and the rank conditions of
    :meth:`Structure.check_identifiable`, W is identified up to one orthogonal rotation per
    subset. Paper mode recovers every Gram block W_{m,S} W_{m,S}^T but does not align the
    rotations of one subset across modalities (see docs/method.md, section 4).

    Examples
    --------
    >>> from hcl_stats import HCL, Structure, simulate
    >>> s = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
    >>> data = simulate(s, (30, 40, 50), 2000, noise_var=0.5, random_state=0)
    >>> hcl = HCL(s).fit(data.Xs)
    >>> hcl.loadings_.shape, hcl.transform(data.Xs).shape
    ((120, 7), (2000, 7))
    """

    _parameter_constraints = {
        "method": [str],
        "solver": [Solver, None],
        "lr": [Interval(float, 0, None, closed="neither"), None],
        "lr_decay": [Interval(float, 0, 1, closed="right"), None],
        "decay_every": [Interval(int, 1, None), None],
        "min_iter": [Interval(int, 0, None), None],
        "max_iter": [Interval(int, 1, None), None],
        "tol": [Interval(float, 0, None), None],
        "identifiability": [Options("raise", "warn", "ignore")],
        "noise": [Options("modality", "feature", "isotropic"), None],
        "selection": [dict, None],
        "alpha": [Interval(float, 0, None), Options("bic", "cv")],
        "l1_ratio": [Interval(float, 0, 1)],
        "shrinkage": [bool, None],
        "accelerate": [Options("squarem"), None],
        "gtol": [Interval(float, 0, None), None],
        "chunk_size": [Interval(int, 1, None), None],
        "missing": [Options("error", "em")],
    }

    def __init__(self, structure=None, method="ml", *, solver=None, lr=None, lr_decay=None, decay_every=None,
                 min_iter=None, max_iter=None, tol=None, identifiability="raise", noise=None, alpha=0.0,
                 l1_ratio=1.0, shrinkage=None, accelerate="squarem", gtol=None, chunk_size=None, selection=None,
                 missing="error"):
        self.structure = structure
        self.solver = solver
        self.selection = selection
        self.method = method
        self.noise = noise
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.shrinkage = shrinkage
        self.accelerate = accelerate
        self.gtol = gtol
        self.chunk_size = chunk_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.decay_every = decay_every
        self.min_iter = min_iter
        self.max_iter = max_iter
        self.tol = tol
        self.identifiability = identifiability
        self.missing = missing

    # -- options ------------------------------------------------------------------------
    _SELECTION_DEFAULTS = {"level": 1e-3, "max_rank": None, "n_resamples": 10, "resample_fraction": 0.8,
                           "random_state": 0}
    # the top-level solver options and their defaults (an option counts as set when it differs)
    _SOLVER_OPTIONS = {"lr": None, "lr_decay": None, "decay_every": None, "min_iter": None, "max_iter": None,
                       "tol": None, "gtol": None, "accelerate": "squarem", "shrinkage": None}

    def _set_solver_options(self) -> dict:
        out = {}
        for k, d in self._SOLVER_OPTIONS.items():
            v = getattr(self, k)
            if not (v is d or (d is not None and v == d)):
                out[k] = v
        return out

    def _solver(self, warn=False) -> Solver:
        """The solver part of this fit: ``solver`` (a copy) or the default part of ``method`` with the
        top-level options the user set; an option the method does not use is a ValueError naming it.
        ``gtol`` is a deprecated alias of ``tol`` (a FutureWarning when ``warn``)."""
        given = self._set_solver_options()
        if "gtol" in given and self.solver is None:
            g = given.pop("gtol")
            if warn:
                extra = f" (tol={given['tol']!r} is ignored)" if "tol" in given else ""
                warnings.warn(f"The 'gtol' parameter of HCL is deprecated and will be removed in a future release; use "
                              f"'tol' (the one tolerance, compared with the optimality measure stop_crit_). Using "
                              f"tol={g!r}{extra}.", FutureWarning, stacklevel=user_stacklevel())
            given["tol"] = g
        if self.solver is not None:
            if self.method != "ml" and self.method != self.solver.method:
                raise ValueError(f"The 'method' parameter of HCL must be left at its default (or be "
                                 f"{self.solver.method!r}) when a solver part is given. Got method={self.method!r} with "
                                 f"solver={self.solver!r}.")
            if given:
                k = sorted(given)[0]
                raise ValueError(f"The {k!r} parameter of HCL is a solver option: with solver={self.solver!r} set it on "
                                 f"the part (e.g. {type(self.solver).__name__}(...)). Got {k}={given[k]!r}.")
            part = clone(self.solver)
        else:
            part = solver_for_method(self.method, given)
        part.validate()
        return part

    def _noise_model(self, part=None) -> str:
        part = self._solver() if part is None else part
        supported = part.supported_noise()
        if self.noise is None:
            return supported[0]
        if self.noise not in supported:
            extra = f" (with shrinkage={part.shrinkage})" if part.method == "als" else ""
            raise ValueError(f"The 'noise' parameter of HCL must be one of {supported} for method={part.method!r}{extra}. "
                             f"Got {self.noise!r} instead; use method='ml' for the other noise models, or noise=None for "
                             "the method's default.")
        return self.noise

    def _check_penalty(self, part):
        if isinstance(self.alpha, str):
            if "path" not in part.penalty:
                raise ValueError(f"The 'alpha' parameter of HCL (sparse loadings chosen from data) is supported by method='ml' or 'als'. Got alpha={self.alpha!r} with method={part.method!r}.")
        elif self.alpha > 0 and "float" not in part.penalty:
            raise ValueError(f"The 'alpha' parameter of HCL (sparse loadings) is supported by method='ml' only. Got alpha={self.alpha!r} with method={part.method!r}.")

    def _selection_options(self) -> dict:
        opts = dict(self._SELECTION_DEFAULTS)
        given = self.selection or {}
        unknown = sorted(set(given) - set(opts))
        if unknown:
            raise ValueError(f"The 'selection' parameter of HCL accepts the keys {sorted(opts)}. Got unknown keys {unknown} "
                             "(the noise model of the selection is HCL's 'noise').")
        opts.update(given)
        return opts

    def _validate(self):
        validate_params("HCL", self.get_params(), self._parameter_constraints)
        if self.method not in METHODS:
            raise ValueError(f"The 'method' parameter of HCL must be one of {sorted(METHODS)}. Got {self.method!r} instead.")
        part = self._solver()
        self._noise_model(part)
        self._check_penalty(part)
        if self.selection is not None and not (isinstance(self.structure, str) and self.structure == "auto"):
            raise ValueError("The 'selection' parameter of HCL applies to structure='auto' only; got a fixed structure "
                             f"with selection={self.selection!r}.")
        self._selection_options()

    def _resolve_structure(self, n_features, Xs=None, names=None):
        s = self.structure
        if isinstance(s, Structure):
            if s.n_modalities != len(n_features):
                raise ValueError(
                    f"Xs has {len(n_features)} modalities but the structure has n_modalities={s.n_modalities}."
                )
            return s
        if isinstance(s, str) and s == "auto":
            if Xs is None:
                raise ValueError("structure='auto' selects the structure from data; it needs Xs, not only a covariance.")
            from .selection import select_structure

            structure, self._selection_result = select_structure(
                Xs, noise=self._noise_model(), names=names, return_details=True, **self._selection_options())
            return structure
        raise ValueError(f"The 'structure' parameter of HCL must be a Structure or 'auto'. Got {s!r} instead.")

    def _check_structure_fits(self, structure, n_features, n_samples):
        n_features = check_n_features(n_features, structure.n_modalities)
        for s in structure.subsets:
            for m in s:
                if structure.rank(s) > n_features[m]:
                    raise ValueError(
                        f"structure: subset {s} has rank {structure.rank(s)} but modality {m} has only {n_features[m]} features (Xs[{m}].shape[1])."
                    )
        if n_samples is not None and n_samples <= structure.n_factors:
            raise ValueError(
                f"Xs must have more samples than the number of factors K = {structure.n_factors} of the structure; got n_samples = {n_samples}."
            )
        problems = structure.check_identifiable(n_features)
        if problems and self.identifiability != "ignore":
            msg = "structure violates the identifiability conditions for n_features=" f"{n_features}: " + "; ".join(problems)
            if self.identifiability == "raise":
                raise IdentifiabilityError(msg + " (pass identifiability='warn' to fit anyway).")
            warnings.warn(msg, IdentifiabilityWarning, stacklevel=user_stacklevel())

    # -- fitting ------------------------------------------------------------------------
    def fit(self, Xs, y=None, *, use_layer=None):
        """Fit the model to ``Xs``, a list of (n_samples, p_m) arrays (one per modality).

        Labelled tables are accepted too (:mod:`hcl_stats.io`): a list of pandas DataFrames, a
        dict ``{modality name: DataFrame or array}``, or a ``mudata.MuData`` (its ``mdata.mod``;
        ``use_layer`` picks a layer instead of ``.X``). Their names are kept: modality names go
        to ``structure_`` (and the summary, the factor names, ``loadings_frame``), feature names
        to ``feature_names_in_``. Rows are matched by sample label (reordered when the tables
        list the same samples in different orders; refused when the samples differ). With a
        named ``Structure``, a dict's keys must be its names (the modalities are taken in the
        structure's order).

        Data larger than memory are accepted too (:func:`hcl_stats.covariance.covariance_stats`):
        a list of ``numpy.memmap`` arrays (read ``chunk_size`` rows at a time), a list of Dask
        arrays, or any other iterable of row chunks, each chunk a list of per-modality arrays;
        the covariance is then accumulated in one pass and ``Xs`` is not kept.

        Returns
        -------
        self
        """
        self._validate()
        Xs, names = self._read_fit_tables(Xs, use_layer)
        n_mod = self.structure.n_modalities if isinstance(self.structure, Structure) else None
        if is_out_of_core(Xs):
            stats, _ = covariance_stats(Xs, chunk_size=self.chunk_size)
            if n_mod is not None and len(stats.n_features) != n_mod:
                raise ValueError(f"Xs must contain {n_mod} modalities (one array each) to match the structure; got {len(stats.n_features)}.")
            return self._fit_stats(stats, None, names=names)
        if self.missing == "em":
            from .incomplete import check_incomplete

            Xs, report = check_incomplete(Xs, n_modalities=n_mod, min_samples=2)
            if report.any_missing:
                return self._fit_incomplete([np.ascontiguousarray(X) for X in Xs], report, names)
        Xs = check_Xs(Xs, n_modalities=n_mod, min_samples=2)
        Xs = [np.ascontiguousarray(X) for X in Xs]  # the fit must not depend on the memory layout (signs did)
        stats = fit_statistics(Xs)
        return self._fit_stats(stats, Xs, names=names)

    def _fit_incomplete(self, Xs, report, names):
        """EM over the observed entries (``missing="em"`` and NaN in ``Xs``)."""
        from .incomplete import incomplete_stats

        part = self._solver()
        if not part.handles_missing:
            raise ValueError(f"The 'missing' parameter of HCL: missing='em' fits incomplete data with method='ml' only. "
                             f"Got method={part.method!r} with NaN in Xs.")
        if isinstance(self.alpha, str) or self.alpha > 0:
            raise ValueError(f"The 'missing' parameter of HCL: missing='em' fits the unpenalised model only. Got "
                             f"alpha={self.alpha!r} with NaN in Xs.")
        return self._fit_stats(incomplete_stats(Xs), Xs, names=names, missing=report)

    # -- labelled input (hcl_stats.io) ----------------------------------------------------
    @staticmethod
    def _explicit_names(structure):
        return structure.to_dict()["names"] if isinstance(structure, Structure) else None

    @staticmethod
    def _reorder_by_name(tables, names, what):
        """Put dict / MuData modalities in the order of ``names``; missing or extra ones are errors."""
        got = list(tables.modality_names)
        if got == list(names):
            return tables
        missing = [n for n in names if n not in got]
        extra = [n for n in got if n not in names]
        if missing or extra:
            raise ValueError(f"Xs: the modalities must be {list(names)} ({what}); got {got} "
                             f"(missing {missing}, not in the fit {extra}).")
        order = [got.index(n) for n in names]
        fn = None if tables.feature_names is None else [tables.feature_names[i] for i in order]
        return _io.Tables([tables.arrays[i] for i in order], tuple(names), fn, tables.index)

    def _read_fit_tables(self, Xs, use_layer):
        """Tables -> arrays at fit time; sets ``feature_names_in_``. Returns (arrays, modality names or None)."""
        tables = _io.as_arrays(Xs, use_layer=use_layer)
        names = tables.modality_names
        explicit = self._explicit_names(self.structure)
        if names is not None and explicit is not None:
            tables = self._reorder_by_name(tables, explicit, "the names of the structure")
            names = None  # the structure's own names are kept
        self._fit_feature_names = tables.feature_names
        return tables.arrays, names

    def _read_tables(self, Xs, use_layer=None):
        """Tables -> (list of arrays in the fitted modality order and feature order, sample index or None)."""
        tables = _io.as_arrays(Xs, use_layer=use_layer)
        if tables.modality_names is not None:
            tables = self._reorder_by_name(tables, self.structure_.names, "the modalities of the fit")
        arrays = tables.arrays
        fitted = getattr(self, "feature_names_in_", None)
        if tables.feature_names is not None and fitted is not None and isinstance(arrays, list):
            arrays = list(arrays)
            for m, (got, want) in enumerate(zip(tables.feature_names, fitted)):
                if got is None or want is None or np.array_equal(got, want):
                    continue
                label = self.structure_.names[m] if m < len(self.structure_.names) else m
                pos = {v: i for i, v in enumerate(got.tolist())}
                missing = [v for v in want.tolist() if v not in pos]
                if missing or len(got) != len(want):
                    extra = sorted(set(got.tolist()) - set(want.tolist()))
                    raise ValueError(f"Xs[{label!r}]: the features must be those seen at fit ({len(want)}); got {len(got)}, "
                                     f"missing {_io._preview(missing)}, not seen at fit {_io._preview(extra)}.")
                arrays[m] = np.asarray(arrays[m])[:, [pos[v] for v in want.tolist()]]  # matched by name
        return arrays, tables.index

    def fit_covariance(self, cov, n_features, n_samples=None, mean=None):
        """Fit from a covariance matrix (p, p) of the stacked modalities, e.g. a population
        covariance (``n_samples=None``) or one accumulated out of core."""
        self._validate()
        n_features = check_n_features(n_features)
        cov = np.asarray(cov, dtype=float)
        p = sum(n_features)
        if cov.shape != (p, p):
            raise ValueError(f"cov must have shape (p, p) = ({p}, {p}) for n_features={n_features}; got {cov.shape}.")
        if not np.all(np.isfinite(cov)):
            raise ValueError("cov must be finite; got NaN or infinite entries.")
        if not is_symmetric(cov, rtol=1e-10, atol=1e-12 * max(1.0, float(cov.max()), -float(cov.min()))):
            raise ValueError("cov must be symmetric.")
        mean = np.zeros(p) if mean is None else np.asarray(mean, float)
        stats = CovarianceStats(cov=0.5 * (cov + cov.T), mean=mean, n_samples=n_samples, n_features=n_features)
        return self._fit_stats(stats, None)

    def _fit_stats(self, stats, Xs, names=None, missing=None):
        t0 = time.perf_counter()
        self._selection_result = None
        var = stats.feature_var
        if np.any(var <= 0):
            rows = [np.arange(r.start, r.stop) for r in _row_slices(stats.n_features)]
            bad = [(m, (np.flatnonzero(var[r] <= 0)).tolist()) for m, r in enumerate(rows) if np.any(var[r] <= 0)]
            m0, j0 = bad[0]
            what = (f"Xs[{m0}] is constant (all its features)" if len(j0) == stats.n_features[m0]
                    else f"Xs[{m0}]: features {j0[:10]} are constant (zero variance)")
            raise ValueError(f"{what}; constant features carry no information and make the noise model degenerate. "
                             "Remove them before fitting.")
        structure = self._resolve_structure(stats.n_features, Xs, names=names)
        if names is not None and self._explicit_names(structure) is None:
            structure = structure.with_names(names)  # modality names of a dict / MuData
        self._check_structure_fits(structure, stats.n_features, stats.n_samples)
        if isinstance(self.alpha, str) and missing is not None:
            raise ValueError(f"The 'alpha' parameter of HCL: alpha={self.alpha!r} (a penalty chosen from data) needs complete data; got NaN with missing='em'.")
        part = self._solver(warn=True)
        noise = self._noise_model(part)
        if isinstance(self.alpha, str):
            from .estimation.sparse_path import select_alpha

            # the path's own iteration defaults, unless the user changed the part's
            names = {"max_iter": "max_iter", "tol": "gtol", "change_tol": "tol", "accelerate": "accelerate",
                     "shrinkage": "shrinkage"}
            changed = part.changed_options()
            bad = sorted(set(changed) - set(names))
            if bad:
                raise ValueError(f"The {bad[0]!r} option of {type(part).__name__} is not used by the penalty path of "
                                 f"alpha={self.alpha!r}. Got {bad[0]}={changed[bad[0]]!r}.")
            opts = {names[k]: v for k, v in changed.items() if k != "shrinkage"}
            res = select_alpha(stats, structure, self.alpha, Xs=None if Xs is None else list(Xs), method=part.method,
                               noise=noise, l1_ratio=self.l1_ratio, shrinkage=part.shrinkage, **opts)
        elif missing is None:
            res = part.solve(stats, structure, noise=noise, alpha=self.alpha, l1_ratio=self.l1_ratio)
        else:
            from .incomplete import check_coobserved

            check_coobserved(missing, structure)
            res = part.solve_missing(Xs, structure, noise=noise)
        fit_time = time.perf_counter() - t0
        if not res.converged and part.method not in ("init", "paper"):
            # the estimation layer may say why and what to change (ml: hcl_stats.estimation.ml.convergence_message)
            msg = res.info.get("convergence_message") or (
                f"HCL(method={part.method!r}) stopped after {res.n_iter} iterations with stop_crit_="
                f"{res.stop_crit:.3g} above tol_={res.tol:.3g} (not stationary); increase max_iter.")
            warnings.warn(msg, ConvergenceWarning, stacklevel=user_stacklevel())
        at_floor = res.info.get("noise_at_floor")
        if at_floor:
            starts = np.cumsum([0] + list(stats.n_features))
            mods = np.searchsorted(starts, at_floor[:10], side="right") - 1
            where = [f"Xs[{m}][:, {j - starts[m]}]" for j, m in zip(at_floor[:10], mods)]
            warnings.warn(f"HCL: the noise variances of {len(at_floor)} feature(s) ({', '.join(where)}"
                          f"{', ...' if len(at_floor) > 10 else ''}) stopped at the floor, "
                          f"{res.info['noise_floor']:g} times the feature's variance: a Heywood case (the factors explain "
                          "these features almost entirely, e.g. duplicated or collinear features). Their noise variance "
                          "is held at the floor; consider dropping duplicated features.", EstimationWarning,
                          stacklevel=user_stacklevel())
        mean = stats.mean if missing is None else res.info["mean"]
        if missing is None:
            loglik = loglik_from_stats(stats, res.loadings, res.noise_var)
        else:
            from .estimation.missing import loglik_samples_incomplete

            loglik = float(np.mean(loglik_samples_incomplete(np.hstack(Xs), mean, res.loadings, res.noise_var)))
        self.structure_ = structure
        self.n_features_ = tuple(stats.n_features)
        self.n_samples_ = stats.n_samples
        self.mean_ = mean
        self.missing_ = missing
        self.loadings_ = res.loadings
        self.noise_var_features_ = np.asarray(res.noise_var, dtype=float)
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        self.stop_crit_ = res.stop_crit
        self.tol_ = res.tol
        self.objective_ = res.objective
        self.loglik_ = loglik
        self.solver_ = part
        self.method_ = part.method
        self.history_ = res.history
        self.results_ = HCLResults(structure, stats.n_features, res.loadings, self.noise_var_features_,
                                   res.n_iter, res.converged, res.history, part.method, stats.n_samples,
                                   stats.feature_var, fit_time=fit_time, info=res.info, stop_crit=res.stop_crit,
                                   tol=res.tol, objective=res.objective, loglik=loglik)
        self.results_.objective_label = self.results_._objective_label()
        self.noise_var_ = self.results_.noise_var
        self.noise_model_ = noise
        self.selection_ = self._selection_result
        self.results_.noise_model = self.noise_model_
        self.results_.selection = self._selection_result
        self.results_.missing = missing
        self.alpha_path_ = res.info.get("alpha_path")
        self.alpha_ = float(res.info["alpha"]) if "alpha" in res.info else float(self.alpha) if not isinstance(self.alpha, str) else None
        self.results_.alpha_path = self.alpha_path_
        self.stability_ = None
        self.results_.stability = None
        self.modality_names_ = tuple(structure.names)
        fn = getattr(self, "_fit_feature_names", None)
        self._fit_feature_names = None
        if fn is not None:
            self.feature_names_in_ = list(fn)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        # the sufficient statistics, for goodness_of_fit() (kept only while p x p is small)
        self._gof_stats = stats if (missing is None and sum(stats.n_features) <= 4000) else None
        bad = [name for name, v in (("loadings_", self.loadings_), ("noise_var_features_", self.noise_var_features_))
               if not np.all(np.isfinite(v))]
        if bad:  # pragma: no cover - a bug, never data
            raise FloatingPointError(f"HCL produced non-finite {bad}; please report this with the data's shape.")
        return self

    # -- using the fit --------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "loadings_"):
            raise NotFittedError("This HCL instance is not fitted yet; call fit(Xs) first.")

    def _check_Xs_fitted(self, Xs, use_layer=None):
        self._check_fitted()
        Xs, _ = self._read_tables(Xs, use_layer)
        return self._check_arrays_fitted(Xs)

    def _check_arrays_fitted(self, arrays):
        """check_Xs for new rows; with ``missing="em"`` NaN is accepted (rows need one observed value)."""
        if self.missing == "em":
            from .incomplete import check_incomplete

            return check_incomplete(arrays, n_modalities=self.structure_.n_modalities, n_features=self.n_features_,
                                    min_samples=1, check_features=False)[0]
        return check_Xs(arrays, n_modalities=self.structure_.n_modalities, n_features=self.n_features_, min_samples=1)

    def _wrap_output(self, Z, index):
        """``set_output(transform="pandas")``: a DataFrame indexed like the input rows."""
        if self._output_container() != "pandas":
            return Z
        import pandas as pd

        return pd.DataFrame(Z, index=index, columns=pd.Index(self.get_feature_names_out(), name="factor"))

    def encoder(self) -> np.ndarray:
        """The paper's linear encoder C_hat = (W^T W)^{-1} W^T, shape (K, p)
        (:func:`hcl_stats.representation.paper_encoder_from_loadings` of ``loadings_``)."""
        from .representation import paper_encoder_from_loadings

        self._check_fitted()
        return paper_encoder_from_loadings(self.loadings_)

    def transform(self, Xs, *, use_layer=None) -> np.ndarray:
        """The paper's representation z_hat = C_hat (x - mean), shape (n_samples, K).

        ``Xs`` as in :meth:`fit` (arrays, DataFrames, a dict or a MuData; features matched by
        name when the fit had names). After ``set_output(transform="pandas")``: a DataFrame
        with columns ``get_feature_names_out()``, indexed like the input rows.

        With ``missing="em"``, rows with NaN get the least-squares representation on their
        observed features, (W_o^T W_o)^+ W_o^T (x_o - mean_o) (0 for the coordinates no observed
        feature loads on).
        """
        self._check_fitted()
        arrays, index = self._read_tables(Xs, use_layer)
        X = np.hstack(self._check_arrays_fitted(arrays))
        if np.isnan(X).any():
            from .estimation.missing import paper_representation_incomplete

            return self._wrap_output(paper_representation_incomplete(X, self.mean_, self.loadings_), index)
        return self._wrap_output((X - self.mean_) @ self.encoder().T, index)

    def fit_transform(self, Xs, y=None, *, use_layer=None):
        """``fit(Xs)`` then ``transform(Xs)``: the (n_samples, K) representation of the training data."""
        return self.fit(Xs, y, use_layer=use_layer).transform(Xs, use_layer=use_layer)

    # -- names (scikit-learn conventions) ---------------------------------------------------
    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the representation's K columns: ``"{label}:{j}"`` with the subset's label
        (``structure_.label``, e.g. ``{rna,protein}``) and j = 1..rank, in column order.

        ``input_features``, if given, must be the p input feature names (all modalities in
        order); it does not change the output.
        """
        self._check_fitted()
        if input_features is not None:
            got = np.asarray(input_features, dtype=object).ravel()
            p = sum(self.n_features_)
            fitted = getattr(self, "feature_names_in_", None)
            want = None if fitted is None or any(f is None for f in fitted) else np.concatenate(fitted).astype(object)
            if got.shape[0] != p or (want is not None and not np.array_equal(got, want)):
                raise ValueError(f"input_features must be the {p} input feature names seen at fit (all modalities in "
                                 f"order); got {got.shape[0]} names.")
        s = self.structure_
        return np.array([f"{s.label(sub)}:{j + 1}" for sub in s.subsets for j in range(s.rank(sub))], dtype=object)

    def _feature_names(self):
        """Feature names per modality (``x0``, ``x1``, ... where none were given)."""
        fitted = getattr(self, "feature_names_in_", None) or [None] * len(self.n_features_)
        return [np.array([f"x{j}" for j in range(p)], dtype=object) if f is None else np.asarray(f, dtype=object)
                for f, p in zip(fitted, self.n_features_)]

    def loadings_frame(self):
        """The loadings as a pandas DataFrame of shape (p, K): rows indexed by (modality, feature),
        columns by factor name (``get_feature_names_out()``); zero off the structure's support."""
        self._check_fitted()
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("loadings_frame needs pandas: pip install 'hcl_stats[tables]'.") from None
        mods = np.repeat(np.array(self.structure_.names, dtype=object), self.n_features_)
        feats = np.concatenate(self._feature_names())
        index = pd.MultiIndex.from_arrays([mods, feats], names=["modality", "feature"])
        return pd.DataFrame(np.array(self.loadings_), index=index,
                            columns=pd.Index(self.get_feature_names_out(), name="factor"))

    # -- saved fits and MuData (hcl_stats.io) ---------------------------------------------
    def save(self, path):
        """Write the fit to ``path`` (.npz; read back with :func:`hcl_stats.load_fit`; the format is
        documented in :mod:`hcl_stats.io`). Returns the path written."""
        return _io.save_fit(self, path)

    def write_mudata(self, mdata, *, use_layer=None, kind="paper", key="X_hcl"):
        """Store the representation in ``mdata.obsm[key]`` and each modality's loadings in
        ``mdata.mod[m].varm["hcl_loadings"]`` (see :func:`hcl_stats.io.write_mudata`)."""
        self._check_fitted()
        return _io.write_mudata(self, mdata, use_layer=use_layer, kind=kind, key=key)

    def get_covariance(self) -> np.ndarray:
        """The model covariance W W^T + diag(psi), shape (p, p) (scikit-learn's
        ``FactorAnalysis.get_covariance``; ``psi`` = ``noise_var_features_``)."""
        self._check_fitted()
        return model_covariance(self.loadings_, self.noise_var_features_)

    def get_precision(self) -> np.ndarray:
        """The inverse of :meth:`get_covariance`, shape (p, p), by Woodbury (a K x K solve; as
        scikit-learn's ``FactorAnalysis.get_precision``)."""
        self._check_fitted()
        return model_precision(self.loadings_, self.noise_var_features_)

    def score_samples(self, Xs) -> np.ndarray:
        """Gaussian log-likelihood of each sample under the fitted model, shape (n_samples,):
        -1/2 [p log 2 pi + log|Sigma| + (x - mean)^T Sigma^{-1} (x - mean)] with
        Sigma = :meth:`get_covariance` (scikit-learn's ``FactorAnalysis.score_samples``).
        With ``missing="em"``, rows with NaN get the log-likelihood of their observed entries."""
        X = np.hstack(self._check_Xs_fitted(Xs))
        if np.isnan(X).any():  # missing="em": the log-likelihood of each row's observed entries
            from .estimation.missing import loglik_samples_incomplete

            return loglik_samples_incomplete(X, self.mean_, self.loadings_, self.noise_var_features_)
        return loglik_samples(X - self.mean_, self.loadings_, self.noise_var_features_)

    def score(self, Xs, y=None) -> float:
        """Average Gaussian log-likelihood per sample, the mean of :meth:`score_samples`
        (``score(X_train)`` equals ``loglik_`` for complete in-memory data)."""
        return float(np.mean(self.score_samples(Xs)))

    def loglik_covariance(self, cov) -> float:
        """Average Gaussian log-likelihood per sample of data with sample covariance ``cov`` (p, p)
        under the fitted model."""
        self._check_fitted()
        return loglik_from_cov(np.asarray(cov, float), self.loadings_, self.noise_var_features_)

    def summary(self):
        """The fit as a table: the share of each modality's variance explained by each subset, the
        noise, convergence and (with ``structure="auto"``) the selection's stability; a
        :class:`hcl_stats.summary.Summary`."""
        self._check_fitted()
        return self.results_.summary()

    def goodness_of_fit(self, Xs=None, **options):
        """Model checking: likelihood-ratio tests of the fitted structure against the unstructured
        factor model with the same number of factors (the primary test: it flags wrong structures
        and correlated latent factors) and against the saturated model, with AIC/BIC.

        Both models are refitted by Gaussian maximum likelihood on the sample covariance (not the
        shrunk surrogate the default fit uses), starting from this fit, with this fit's noise
        model. Uses the covariance kept from ``fit`` (when p <= 4000) or ``Xs``.

        Parameters
        ----------
        Xs : list of ndarray of shape (n_samples, p_m), optional
            Data to test on (default: the training data's covariance).
        **options
            Passed to :func:`hcl_stats.goodness_of_fit` (``correction``, ``n_boot``, ...).

        Returns
        -------
        GoodnessOfFit
            ``statistic``, ``df``, ``pvalue`` and ``summary()``.
        """
        from .goodness import goodness_of_fit

        self._check_fitted()
        if Xs is not None:
            stats = sample_covariance(self._check_Xs_fitted(Xs))
        else:
            stats = getattr(self, "_gof_stats", None)
            if getattr(self, "missing_", None) is not None:
                raise ValueError("goodness_of_fit: this model was fitted to incomplete data (missing='em'); its "
                                 "likelihood-ratio tests need a complete-data covariance. Pass complete Xs.")
            if stats is None or stats.n_samples is None:
                raise ValueError("goodness_of_fit needs data: this fit kept no sample covariance (a population "
                                 "covariance, or p > 4000); pass Xs.")
        return goodness_of_fit(stats, self.structure_, self.loadings_, self.noise_var_features_,
                               noise=self.noise_model_, **options)

    def plot_structure(self, ax=None, **kwargs):
        """Modality x subset heatmap of the variance explained (:meth:`HCLResults.plot_structure`);
        returns the matplotlib Axes."""
        self._check_fitted()
        return self.results_.plot_structure(ax=ax, **kwargs)

    def plot_alpha_path(self, ax=None):
        """Criterion and support size along the penalty path (``alpha="bic"|"cv"`` fits)."""
        self._check_fitted()
        if self.alpha_path_ is None:
            raise ValueError(f"plot_alpha_path needs a fit with alpha='bic' or 'cv'; this one used alpha={self.alpha!r}.")
        from .estimation.sparse_path import plot_alpha_path

        return plot_alpha_path(self.alpha_path_, ax=ax)

    def stability_selection(self, Xs, *, alpha=None, n_subsamples=50, fraction=0.5, threshold=0.7, random_state=0):
        """Stability selection of the features loading on each subset (Meinshausen and Buehlmann):
        selection frequencies over ``n_subsamples`` subsamples of ``fraction`` of the samples, at the
        relative penalty ``alpha`` (default: this fit's ``alpha_`` when positive, else the BIC
        choice), with the bound q^2 / ((2 threshold - 1) p_candidates) on the expected number of
        false selections. Uses the fitted structure and options (noise, shrinkage, l1_ratio). The
        result is kept in ``stability_`` and reported by ``summary()``; ``stability_.to_frame()``
        names the features when the fit knew their names.

        Returns
        -------
        StabilitySelection
        """
        from .estimation.sparse_path import stability_selection

        self._check_fitted()
        if alpha is None and self.alpha_ is not None and self.alpha_ > 0:
            alpha = self.alpha_
        arrays = [np.asarray(x, dtype=float) for x in self._check_Xs_fitted(Xs)]
        names = getattr(self, "feature_names_in_", None)
        flat = None
        if names is not None and all(n is not None for n in names):
            flat = [str(n) for block in names for n in block]
        opts = dict(noise=self.noise_model_, shrinkage=self.solver_.shrinkage, l1_ratio=self.l1_ratio)
        if self.solver_.method == "als":
            opts["method"] = "als"
        res = stability_selection(arrays, self.structure_, alpha=alpha, n_subsamples=n_subsamples, fraction=fraction,
                                  threshold=threshold, random_state=random_state, feature_names=flat, **opts)
        self.stability_ = res
        self.results_.stability = res
        return res

    # -- representations (hcl_stats.representation) ---------------------------------------
    def represent(self, Xs, kind="paper", averaged=False, *, use_layer=None):
        """Representation of ``Xs``: ``kind="paper"`` (C_hat x) or ``"posterior"`` (E[z | x]),
        optionally structure-averaged. See :mod:`hcl_stats.representation` for which to use when.
        ``Xs`` and the output container as in :meth:`transform`."""
        from .representation import represent

        self._check_fitted()
        arrays, index = self._read_tables(Xs, use_layer)
        return self._wrap_output(represent(self, arrays, kind=kind, averaged=averaged), index)

    def posterior_mean(self, Xs, *, use_layer=None):
        """E[z | x] under the fitted Gaussian model, shape (n_samples, K). ``Xs`` and the output
        container as in :meth:`transform`. With ``missing="em"``, rows with NaN get E[z | x_o]
        given their observed entries (per missingness pattern; the prior mean 0 for coordinates
        no observed feature loads on)."""
        from .representation import posterior_mean

        self._check_fitted()
        arrays, index = self._read_tables(Xs, use_layer)
        if self.missing == "em":
            X = np.hstack(self._check_arrays_fitted(arrays))
            if np.isnan(X).any():
                from .estimation.missing import posterior_moments_incomplete

                Z = posterior_moments_incomplete(X, self.mean_, self.loadings_, self.noise_var_features_)[0]
                return self._wrap_output(Z, index)
        return self._wrap_output(posterior_mean(self, arrays), index)

    def posterior_encoder(self):
        """(I + W^T Psi^-1 W)^-1 W^T Psi^-1, shape (K, p)."""
        from .representation import posterior_encoder

        return posterior_encoder(self)

    def posterior_covariance(self):
        """Cov(z | x) = (I + W^T Psi^-1 W)^-1, shape (K, K)."""
        from .representation import posterior_covariance

        return posterior_covariance(self)

    def representation_noise_cov(self, kind="paper", averaged=False):
        """Covariance of the noise carried into the representation, A diag(psi) A^T (K, K),
        used by the errors-in-variables corrections of :mod:`hcl_stats.downstream`."""
        from .representation import representation_noise_cov

        return representation_noise_cov(self, kind=kind, averaged=averaged)
