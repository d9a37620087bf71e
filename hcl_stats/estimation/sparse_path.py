"""Sparse loadings as a statistical method: rotation, relaxed refit, choice of the penalty, stability.

A penalised fit by itself is a poor estimator of a sparse W (the lasso shrinks the loadings it
keeps, and the elementwise penalty fights the arbitrary rotation of the dense solution). The path
here is built so that sparsity can only help when the truth is sparse and costs little when it is
not:

1. Dense fit: Gaussian ML by EM (:func:`.ml.em_fit`) or the alternating block updates
   (:mod:`.als`), with the same start, noise model and shrinkage as the dense method.
2. Rotation (identification choice): each subset's columns are rotated towards a sparse basis
   (varimax by default, :mod:`.rotation`); W W^T is unchanged.
3. Penalised fits, one per alpha of a grid from alpha_max down to ``eps * alpha_max`` and then
   0, each started from the rotated dense fit. alpha is relative to alpha_max (the smallest
   penalty whose first penalised step zeroes every loading at the rotated dense fit).
4. Relaxed refit: the unpenalised fit with the zero pattern of the penalised fit held at zero
   (:func:`.ml.em_fit` with ``support``), which removes the shrinkage bias of the kept loadings.
   Both the penalised and the refitted loadings are kept.
5. Choice of alpha: the extended BIC of the refitted fits (Chen and Chen 2008),
   -2 n loglik(S_n) + log(n) df + 2 gamma log C(P, k), gamma = 1 by default, with df the free
   loadings of the refitted support minus the rotation its zero pattern leaves unidentified
   (:func:`support_df`) plus the noise parameters, P the loadings the structure allows and k those
   kept (rows of (feature, subset) for the row-group penalty). The last term is zero for the dense
   and the empty fit; without it (``ebic_gamma=0``, the plain BIC) a dense truth loses a few
   loadings in the rotated basis, each saving log(n) but costing Gram error
   (benchmarks/results/sparse.md); or
   K-fold cross-validated log-likelihood of the refitted fits on the held-out folds (sample
   covariance of each held-out fold, centred at the training mean). alpha = 0 is on the grid, so a
   dense truth keeps a dense fit.
6. Stability selection (Meinshausen and Buehlmann 2010): frequencies over subsamples of half the
   samples of "feature j loads on subset S" at a fixed alpha; with threshold pi_thr > 1/2 and q
   the mean number of selected (feature, subset) pairs per subsample, the expected number of
   falsely selected pairs is at most q^2 / ((2 pi_thr - 1) p_cand) (p_cand: the candidate pairs,
   features times the subsets their modality belongs to), under the exchangeability assumption of
   that bound.

With per-feature noise (``noise="feature"``) everything runs on the correlation scale (each
feature divided by its standard deviation) and is mapped back, as in :func:`.ml.fit_ml`: the
penalty then treats all features alike and the fit is equivariant to rescaling features.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import EstimationResult
from .ml import Layout as _Layout, alpha_max_ml, check_options as _check_options, em_fit, em_start as _start, estep as _estep
from .ml import matrix_diagonal as _diag, n_noise_params as _n_noise_params
from .rotation import ROTATIONS, rotate_subsets
from ..likelihood import loglik_from_cov

__all__ = ["SparsePath", "sparse_path", "cv_sparse_path", "select_alpha", "support_df", "plot_alpha_path",
           "StabilitySelection", "stability_selection", "row_support", "default_alphas", "CRITERIA"]

CRITERIA = ("bic", "cv")
_N_ALPHAS = 12       # grid size (the last point is alpha = 0)
_EPS = 10 ** -2.5   # smallest positive alpha, relative to alpha_max


def default_alphas(n_alphas=_N_ALPHAS, eps=_EPS):
    """``n_alphas - 1`` values log-spaced from 1 down to ``eps``, then 0 (descending)."""
    if not (isinstance(n_alphas, (int, np.integer)) and n_alphas >= 2):
        raise ValueError(f"The 'n_alphas' parameter must be an integer >= 2. Got {n_alphas!r} instead.")
    if not (np.isscalar(eps) and 0 < eps < 1):
        raise ValueError(f"The 'eps' parameter must be a float in (0, 1). Got {eps!r} instead.")
    return np.concatenate([np.logspace(0.0, np.log10(eps), n_alphas - 1), [0.0]])


def _check_alphas(alphas):
    a = np.asarray(alphas, dtype=float)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"The 'alphas' parameter must be a non-empty 1-D sequence of non-negative finite numbers. Got {alphas!r} instead.")
    return np.sort(a)[::-1]


def support_df(support, structure, n_features, noise):
    """Degrees of freedom of a fit with loadings free on ``support`` (p, K bool).

    Per subset block (rows of the subset's modalities, its r_S columns): the free loadings minus
    the part of the block's rotation the zero pattern leaves unidentified,
    max(0, r_S (r_S - 1) / 2 - z), where z counts the zeros in rows that also have a free loading
    (zeros in all-zero rows do not pin the rotation). A dense block loses the r_S (r_S - 1) / 2
    rotation parameters, a block with enough scattered zeros loses none. Plus the noise parameters
    of ``noise``."""
    support = np.asarray(support, bool) & structure.support_mask(n_features)
    df = int(support.sum())
    for s, cs in structure.column_slices.items():
        r = cs.stop - cs.start
        if r < 2:
            continue
        idx = structure.feature_rows(s, n_features)
        blk = support[np.ix_(idx, np.arange(cs.start, cs.stop))]
        if not blk.any():
            continue
        nrow = blk.sum(axis=1)
        z = int(np.sum(r - nrow[nrow > 0]))
        df -= max(0, r * (r - 1) // 2 - z)
    return df + _n_noise_params(noise, n_features)


def _log_binom(n, k):
    from scipy.special import gammaln

    k = np.asarray(k, float)
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


@dataclass
class SparsePath:
    """A penalised path with relaxed refits (see the module docstring).

    Attributes
    ----------
    alphas : ndarray (n_alphas,), relative to ``alpha_max``, descending, usually ending at 0
    alpha_max : float, the absolute scale (on the correlation scale with per-feature noise)
    loadings, loadings_penalised : list of (p, K) arrays, the refitted and the penalised fits
    noise_var, noise_var_penalised : list of (p,) arrays
    loglik : ndarray (n_alphas,), average log-likelihood per sample of the refitted fits on the
        sample covariance (NaN for a population covariance)
    loglik_penalised : the same for the penalised fits
    df : ndarray of int, degrees of freedom of the refitted fits (:func:`support_df`)
    support_size : ndarray of int, number of non-zero loadings
    n_units, n_units_selected : the selection units of the penalty (loadings with ``l1_ratio > 0``,
        (feature, subset) rows with ``l1_ratio = 0``): how many there are and how many each fit keeps
    ebic_gamma : float, the weight of the model-space term of the BIC (see :attr:`bic`)
    n_samples : int or None
    criterion : str or None, "bic" or "cv" once a choice was made
    scores : ndarray (n_alphas,), the criterion (BIC: lower is better; CV: minus the mean held-out
        log-likelihood per sample, lower is better)
    cv_loglik : ndarray (n_folds, n_alphas) or None
    best : int or None, index of the chosen alpha
    rotation : str or None
    converged : list of bool (penalised and refit both converged)
    """

    alphas: np.ndarray
    alpha_max: float
    loadings: list
    loadings_penalised: list
    noise_var: list
    noise_var_penalised: list
    loglik: np.ndarray
    loglik_penalised: np.ndarray
    df: np.ndarray
    support_size: np.ndarray
    n_samples: int | None
    rotation: str | None
    l1_ratio: float
    converged: list
    n_units: int = 0
    n_units_selected: np.ndarray | None = None
    ebic_gamma: float = 1.0
    criterion: str | None = None
    scores: np.ndarray | None = None
    cv_loglik: np.ndarray | None = None
    best: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def bic_plain(self):
        """The plain BIC of the refitted fits, -2 n loglik + log(n) df."""
        if self.n_samples is None:
            raise ValueError("BIC needs the number of samples; this path was fitted on a population covariance (n_samples=None).")
        n = self.n_samples
        return -2.0 * n * self.loglik + np.log(n) * self.df

    @property
    def bic(self):
        """The extended BIC of the refitted fits (Chen and Chen 2008),
        -2 n loglik + log(n) df + 2 gamma log C(n_units, n_units_selected), gamma = ``ebic_gamma``
        (0: the plain BIC). The last term counts the supports of the same size; it is zero for the
        dense and the empty fit and keeps BIC from trading a few false zeros (in a rotated basis
        where the truth has none) for their log(n) each."""
        return self.bic_plain + 2.0 * self.ebic_gamma * _log_binom(self.n_units, self.n_units_selected)

    @property
    def alpha(self):
        """The chosen relative alpha (None before a choice)."""
        return None if self.best is None else float(self.alphas[self.best])

    def as_dict(self):
        """alphas, loglik, df, criterion scores and support size, as plain arrays."""
        return {"alpha": self.alphas, "loglik": self.loglik, "loglik_penalised": self.loglik_penalised,
                "df": self.df, "support_size": self.support_size, "n_units_selected": self.n_units_selected,
                "criterion": self.scores if self.scores is not None else np.full(self.alphas.shape, np.nan)}

    def to_frame(self):
        """The path as a pandas DataFrame (one row per alpha)."""
        import pandas as pd

        return pd.DataFrame(self.as_dict())

    def plot(self, ax=None):
        """Criterion and support size against alpha (see :func:`plot_alpha_path`)."""
        return plot_alpha_path(self, ax=ax)


def _fit_one(S, Wrot, psi_rot, lay, a_abs, kw, refit):
    """Penalised fit at absolute alpha ``a_abs`` from the rotated dense fit, and its relaxed refit."""
    if a_abs > 0:
        pen = em_fit(S, Wrot, psi_rot, lay, alpha=a_abs, **kw)
    else:
        pen = None
    Wp = Wrot if pen is None else pen["W"]
    psip = psi_rot if pen is None else pen["psi"]
    conv = True if pen is None else bool(pen["converged"])
    if not refit or pen is None:
        crit = (np.nan, np.nan) if pen is None else (pen["stop_crit"], pen["objective"])
        return Wp, psip, Wp, psip, conv, crit
    supp = Wp != 0
    ref = em_fit(S, Wp, psip, lay, alpha=0.0, support=supp, **kw)
    return Wp, psip, ref["W"], ref["psi"], conv and bool(ref["converged"]), (ref["stop_crit"], ref["objective"])


def _als_noise(shrinkage):
    return "modality" if shrinkage else "isotropic"


def sparse_path(stats, structure, *, method="ml", alphas=None, n_alphas=_N_ALPHAS, eps=_EPS, l1_ratio=1.0, noise=None,
                shrinkage=True, rotation="varimax", refit=True, ebic_gamma=1.0, max_iter=None, tol=None, gtol=None,
                accelerate="squarem"):
    """Penalised fits over a grid of alphas, each with its relaxed (unpenalised) refit.

    Parameters
    ----------
    stats : CovarianceStats
        Sample covariance (p, p) of the stacked modalities and its number of samples.
    structure : Structure
    method : {"ml", "als"}
        "ml": penalised EM (:func:`.ml.em_fit`); "als": the alternating block updates with the
        scale-free penalty of :func:`.als.fit_als` (relative to :func:`.als.alpha_max_als`), the
        relaxed refit by projected block steps on the support; the log-likelihood (for BIC and
        CV) is that of (W, sigma2) with the ALS noise estimate.
    alphas : sequence of float, optional
        Penalties relative to alpha_max (sorted descending). Default: :func:`default_alphas`
        (``n_alphas - 1`` values from 1 to ``eps``, then 0).
    l1_ratio : float in [0, 1]
        1: elementwise L1 (zeros single loadings); 0: row-group (features loading on nothing of a
        subset); between: both (:mod:`.sparse`).
    noise : {"feature", "modality", "isotropic"}, optional
        Default: "feature" for "ml"; for "als" the model it fits ("modality" with shrinkage,
        "isotropic" without), any other value is an error.
    shrinkage : bool
        Fit the spiked-model shrinkage of the covariance, as ``fit_ml`` / ``fit_als`` (the HCL default).
    rotation : {"varimax", "quartimax", None}
        Sparsity-seeking rotation of each subset's columns of the dense fit before the penalised fits.
    refit : bool
        Relaxed refit on each support (default). With False, "loadings" are the penalised fits.
    ebic_gamma : float >= 0, default 1
        Weight of the model-space term of :attr:`SparsePath.bic` (0: plain BIC).
    max_iter, tol, gtol, accelerate : options of the fits (default: EM 1000 iterations, ``tol`` 1e-8
        on the increase of the log-likelihood, ``gtol`` 1e-5 on the scaled gradient; ALS 2000
        iterations and ``gtol`` 1e-5 on its scaled gradient, its one criterion: ``tol`` is not
        used by ALS). The tolerance compared with each fit's ``stop_crit`` is ``gtol``.

    Returns
    -------
    SparsePath
    """
    if method not in ("ml", "als"):
        raise ValueError(f"The 'method' parameter of sparse_path must be 'ml' or 'als'. Got {method!r} instead.")
    if method == "als":
        if noise not in (None, _als_noise(shrinkage)):
            raise ValueError(f"The 'noise' parameter of sparse_path with method='als' and shrinkage={shrinkage} must be "
                             f"{_als_noise(shrinkage)!r} (the model ALS fits) or None. Got {noise!r} instead.")
        noise = _als_noise(shrinkage)
    elif noise is None:
        noise = "feature"
    _check_options(noise, accelerate, 0.0, l1_ratio)
    if rotation not in ROTATIONS:
        raise ValueError(f"The 'rotation' parameter must be one of {ROTATIONS}. Got {rotation!r} instead.")
    if not (np.isscalar(ebic_gamma) and np.isfinite(ebic_gamma) and ebic_gamma >= 0):
        raise ValueError(f"The 'ebic_gamma' parameter must be a float in [0, inf). Got {ebic_gamma!r} instead.")
    alphas = default_alphas(n_alphas, eps) if alphas is None else _check_alphas(alphas)
    cov = np.asarray(stats.cov, float)
    nf = tuple(stats.n_features)
    scale = np.ones(cov.shape[0])
    if noise == "feature":
        d = np.sqrt(np.diag(cov))
        if np.all(d > 0):
            scale = d
    from ..covariance import CovarianceStats

    cs = CovarianceStats(cov=cov / scale[:, None] / scale[None, :], mean=np.asarray(stats.mean) / scale,
                         n_samples=stats.n_samples, n_features=nf)
    lay = _Layout(structure, nf)
    if method == "ml":
        sigma2, S, W0, _ = _start(cs, structure, shrinkage, noise)
        psi0 = np.maximum(np.broadcast_to(sigma2, (S.shape[0],)), 1e-8 * float(np.mean(_diag(S))))
        kw = dict(noise=noise, max_iter=1000 if max_iter is None else max_iter, tol=1e-8 if tol is None else tol,
                  gtol=1e-5 if gtol is None else gtol, accelerate=accelerate, l1_ratio=l1_ratio)
        dense = em_fit(S, W0, psi0, lay, alpha=0.0, **kw)
        Wrot, _ = rotate_subsets(dense["W"], structure, nf, rotation)
        psi_rot = dense["psi"]
        a_max = alpha_max_ml({"stats": _estep(S, Wrot, psi_rot), "psi": psi_rot}, lay, l1_ratio)
        fit_one = lambda a_abs: _fit_one(S, Wrot, psi_rot, lay, a_abs, kw, refit)  # noqa: E731
        dense_info = (dense["n_iter"], bool(dense["converged"]), dense["stop_crit"], dense["objective"])
    else:
        from .als import alpha_max_als, als_refine, als_setup

        target, sigma2, W0, _ = als_setup(cs, structure, shrinkage)
        psi_rot = np.broadcast_to(np.asarray(sigma2, float), (cs.cov.shape[0],)).copy()
        # ALS has one criterion (scaled gradient <= tol): the path's gtol is that tolerance; tol is EM's only
        kw = dict(max_iter=2000 if max_iter is None else max_iter, tol=1e-5 if gtol is None else gtol)
        Wd, n_it, conv_d, hd = als_refine(W0, target, structure, nf, accelerate=accelerate, **kw)
        Wrot, _ = rotate_subsets(Wd, structure, nf, rotation)
        a_max = alpha_max_als(Wrot, target, structure, nf, l1_ratio)

        def fit_one(a_abs):
            if a_abs == 0:
                return Wrot, psi_rot, Wrot, psi_rot, True, (np.nan, np.nan)
            Wp, _, cp, hp = als_refine(Wrot, target, structure, nf, alpha=a_abs, l1_ratio=l1_ratio, **kw)
            if not refit:
                return Wp, psi_rot, Wp, psi_rot, bool(cp), (hp["kkt"][-1], hp["objective"][-1])
            Wr, _, cr, hr = als_refine(Wp, target, structure, nf, support=Wp != 0, **kw)
            return Wp, psi_rot, Wr, psi_rot, bool(cp and cr), (hr["kkt"][-1], hr["objective"][-1])
        dense_info = (n_it, bool(conv_d), float(hd["kkt"][-1]), float(hd["objective"][-1]))
    shift = -float(np.sum(np.log(scale)))
    out = {k: [] for k in ("Wp", "psip", "W", "psi", "conv")}
    ll, llp, df, nnz, units, crits, objs = [], [], [], [], [], [], []
    for a in alphas:
        Wp, psip, W, psi, conv, (crit, obj) = fit_one(a * a_max)
        if a == 0:
            conv = conv and dense_info[1]
            crit, obj = dense_info[2], dense_info[3]
        crits.append(float(crit))
        # the value the fit optimised, on the original scale (EM: average log-likelihood of its target)
        objs.append(float(obj) + (shift if method == "ml" else 0.0))
        for key, v in zip(("Wp", "psip", "W", "psi", "conv"), (Wp * scale[:, None], psip * scale**2,
                                                                W * scale[:, None], psi * scale**2, conv)):
            out[key].append(v)
        if stats.n_samples is None:
            ll.append(np.nan)
            llp.append(np.nan)
        else:
            ll.append(loglik_from_cov(cs.cov, W, psi) + shift)
            llp.append(loglik_from_cov(cs.cov, Wp, psip) + shift)
        df.append(support_df(W != 0, structure, nf, noise))
        nnz.append(int(np.count_nonzero(W)))
        units.append(int(np.count_nonzero(W)) if l1_ratio > 0 else int(row_support(W, structure, nf).sum()))
    return SparsePath(alphas=alphas, alpha_max=float(a_max), loadings=out["W"], loadings_penalised=out["Wp"],
                      noise_var=out["psi"], noise_var_penalised=out["psip"], loglik=np.asarray(ll),
                      loglik_penalised=np.asarray(llp), df=np.asarray(df), support_size=np.asarray(nnz),
                      n_samples=stats.n_samples, rotation=rotation, l1_ratio=float(l1_ratio), converged=out["conv"],
                      n_units=int(lay.mask.sum()) if l1_ratio > 0 else int(row_support(lay.mask, structure, nf).sum()),
                      n_units_selected=np.asarray(units), ebic_gamma=float(ebic_gamma),
                      info={"dense_n_iter": dense_info[0], "noise": noise, "shrinkage": bool(shrinkage),
                            "refit": bool(refit), "method": method, "stop_crit": np.asarray(crits),
                            "objective": np.asarray(objs), "tol": float(kw["gtol"] if "gtol" in kw else kw["tol"])})


def _stack(Xs):
    from .._validation import check_Xs

    Xs = check_Xs(Xs, min_samples=2)
    return np.hstack(Xs), tuple(x.shape[1] for x in Xs)


def cv_sparse_path(Xs, structure, *, n_folds=5, random_state=0, alphas=None, path=None, **options):
    """K-fold cross-validated log-likelihood of the refitted fits over the alpha grid.

    Parameters
    ----------
    Xs : list of ndarray (n_samples, p_m)
    structure : Structure
    n_folds : int >= 2
    random_state : int, SeedSequence or Generator (the fold assignment)
    alphas : relative grid (default: :func:`default_alphas`); with ``path`` given, its grid.
    path : SparsePath, optional
        The full-data path (computed here when missing); its scores, cv_loglik, criterion and
        best are set.
    **options : passed to :func:`sparse_path` (l1_ratio, noise, shrinkage, rotation, ...).

    Returns
    -------
    SparsePath with ``criterion="cv"``, ``cv_loglik`` (n_folds, n_alphas): held-out average
    log-likelihood per sample of each fold, ``scores`` minus their mean, ``best`` the argmin.

    Notes
    -----
    Each training fold gets its own path (its own dense fit, rotation and alpha_max); the alphas are
    matched on the relative scale. The held-out covariance is (X_test - mean_train)^T (X_test -
    mean_train) / n_test, so the held-out log-likelihood is the average over test samples.
    """
    from .._validation import check_random_state
    from ..covariance import sample_covariance

    X, nf = _stack(Xs)
    n = X.shape[0]
    if not (isinstance(n_folds, (int, np.integer)) and 2 <= n_folds <= n):
        raise ValueError(f"The 'n_folds' parameter must be an integer in [2, n_samples={n}]. Got {n_folds!r} instead.")
    if path is None:
        path = sparse_path(sample_covariance([X[:, sl] for sl in structure.row_slices(nf)]), structure,
                           alphas=alphas, **options)
    alphas = path.alphas
    rng = check_random_state(random_state)
    fold = rng.permutation(np.arange(n) % n_folds)
    cvll = np.empty((n_folds, alphas.size))
    rows = structure.row_slices(nf)
    for k in range(n_folds):
        tr, te = X[fold != k], X[fold == k]
        p_k = sparse_path(sample_covariance([tr[:, sl] for sl in rows]), structure, alphas=alphas, **options)
        Xc = te - tr.mean(axis=0)
        S_te = Xc.T @ Xc / Xc.shape[0]
        for j in range(alphas.size):
            cvll[k, j] = loglik_from_cov(S_te, p_k.loadings[j], p_k.noise_var[j])
    path.cv_loglik = cvll
    path.scores = -cvll.mean(axis=0)
    path.criterion = "cv"
    path.best = int(np.argmin(path.scores))
    return path


def select_alpha(stats, structure, criterion="bic", *, Xs=None, n_folds=5, random_state=0, **options):
    """Choose alpha on the path by ``criterion`` and return the chosen fit.

    Parameters
    ----------
    stats : CovarianceStats (with ``n_samples``)
    structure : Structure
    criterion : {"bic", "cv"}
    Xs : list of arrays, needed for "cv"
    n_folds, random_state : cross-validation folds ("cv")
    **options : passed to :func:`sparse_path`.

    Returns
    -------
    EstimationResult of the refitted fit at the chosen alpha; ``info["alpha_path"]`` is the
    :class:`SparsePath`, ``info["alpha"]`` the chosen relative alpha, ``info["loadings_penalised"]``
    the penalised loadings at that alpha. ``stop_crit`` is the optimality measure of the relaxed
    refit (its projected gradient on the support; of the dense fit when alpha = 0 is chosen),
    ``tol`` the path's ``gtol``, ``objective`` the value that refit optimised.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"The 'alpha' criterion must be one of {CRITERIA}. Got {criterion!r} instead.")
    if stats.n_samples is None:
        raise ValueError(f"alpha={criterion!r} chooses the penalty from data; it needs the number of samples, got a population covariance (n_samples=None).")
    if criterion == "cv":
        if Xs is None:
            raise ValueError("alpha='cv' cross-validates on the samples; it needs Xs (in-memory data), not only a covariance.")
        path = cv_sparse_path(Xs, structure, n_folds=n_folds, random_state=random_state,
                              path=sparse_path(stats, structure, **options), **options)
    else:
        path = sparse_path(stats, structure, **options)
        path.scores = path.bic
        path.criterion = "bic"
        path.best = int(np.argmin(path.scores))
    b = path.best
    info = {"alpha_path": path, "alpha": path.alpha, "criterion": criterion, "alpha_max": path.alpha_max,
            "loadings_penalised": path.loadings_penalised[b], "noise_var_penalised": path.noise_var_penalised[b]}
    hist = {"loglik": np.array([path.loglik[b]])}
    info["stopping_rule_met"] = bool(path.converged[b])
    return EstimationResult(loadings=path.loadings[b], noise_var=path.noise_var[b], n_iter=int(path.info["dense_n_iter"]),
                            history=hist, info=info, stop_crit=float(path.info["stop_crit"][b]),
                            tol=path.info["tol"], objective=float(path.info["objective"][b]))


def plot_alpha_path(path, ax=None):
    """Criterion (left axis) and support size (right axis) against the relative alpha.

    alpha = 0 is drawn at the left edge (half the smallest positive alpha on the log axis, tick
    label "0"); the chosen alpha is marked. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    a = np.asarray(path.alphas, float)
    pos = a[a > 0]
    zero_at = pos.min() / 2.0 if pos.size else 1.0
    x = np.where(a > 0, a, zero_at)
    y = path.scores if path.scores is not None else (path.bic if path.n_samples is not None else -path.loglik)
    label = {"bic": "BIC", "cv": "minus held-out log-likelihood"}.get(path.criterion, "criterion")
    ax.plot(x, y, "o-", color="C0", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("alpha / alpha_max (0 at the left edge)")
    ax.set_ylabel(label, color="C0")
    ax2 = ax.twinx()
    ax2.plot(x, path.support_size, "s--", color="C1", label="support size")
    ax2.set_ylabel("non-zero loadings", color="C1")
    if path.best is not None:
        ax.axvline(x[path.best], color="grey", lw=1, ls=":")
    return ax


# -- stability selection ---------------------------------------------------------------------

@dataclass
class StabilitySelection:
    """Selection frequencies of "feature j loads on subset S" over subsamples.

    Attributes
    ----------
    frequency : ndarray (p, n_subsets), NaN where feature j's modality is not in S
    selected : ndarray (p, n_subsets) bool, frequency >= threshold
    threshold : float (> 1/2)
    q : float, mean number of selected (feature, subset) pairs per subsample
    n_candidates : int, number of (feature, subset) pairs the structure allows
    error_bound : float, q^2 / ((2 threshold - 1) n_candidates), a bound on the expected number of
        falsely selected pairs
    alpha : float, relative penalty used on each subsample
    n_subsamples, fraction : the subsampling
    subsets : list of subsets (column order)
    feature_names : list of str or None
    """

    frequency: np.ndarray
    selected: np.ndarray
    threshold: float
    q: float
    n_candidates: int
    error_bound: float
    alpha: float
    n_subsamples: int
    fraction: float
    subsets: list
    subset_labels: list
    modality_of_feature: np.ndarray
    feature_names: list | None = None

    def summary_lines(self):
        """(label, text) pairs for a results summary."""
        per = ", ".join(f"{lab}: {int(self.selected[:, j].sum())}" for j, lab in enumerate(self.subset_labels))
        return [("Stability selection", f"alpha {self.alpha:.3g} x alpha_max, {self.n_subsamples} subsamples of "
                 f"{self.fraction:.0%}, threshold {self.threshold:g}"),
                ("Features selected per subset", per),
                ("E[false selections] <=", f"{self.error_bound:.3g} (q = {self.q:.1f} of {self.n_candidates} candidates)")]

    def to_frame(self):
        """pandas DataFrame, one row per (feature, subset) candidate: feature, modality, subset,
        frequency, selected."""
        import pandas as pd

        recs = []
        for j in range(self.frequency.shape[0]):
            for k, lab in enumerate(self.subset_labels):
                if np.isnan(self.frequency[j, k]):
                    continue
                name = self.feature_names[j] if self.feature_names is not None else j
                recs.append({"feature": name, "modality": int(self.modality_of_feature[j]), "subset": lab,
                             "frequency": float(self.frequency[j, k]), "selected": bool(self.selected[j, k])})
        return pd.DataFrame.from_records(recs, columns=["feature", "modality", "subset", "frequency", "selected"])


def row_support(W, structure, n_features):
    """(p, n_subsets) bool: feature j has a non-zero loading on subset S."""
    W = np.asarray(W)
    return np.stack([np.any(W[:, cs] != 0, axis=1) for cs in structure.column_slices.values()], axis=1)


def stability_selection(Xs, structure, *, alpha=None, n_subsamples=50, fraction=0.5, threshold=0.7,
                        random_state=0, feature_names=None, **options):
    """Stability selection of the features loading on each subset.

    Parameters
    ----------
    Xs : list of ndarray (n_samples, p_m)
    structure : Structure
    alpha : float in (0, 1], optional
        Relative penalty used on every subsample. Default: the BIC choice on the full data
        (:func:`select_alpha`), or 0.1 if BIC chooses 0 (a dense fit selects everything).
    n_subsamples : int, subsamples of ``fraction`` of the samples drawn without replacement
    fraction : float in (0, 1), default 1/2 (the setting of the bound)
    threshold : float in (1/2, 1]
    random_state : the subsamples
    feature_names : list of str (length p), optional
    **options : passed to :func:`sparse_path` (l1_ratio, noise, shrinkage, rotation, ...).

    Returns
    -------
    StabilitySelection
    """
    from .._validation import check_random_state
    from ..covariance import sample_covariance

    X, nf = _stack(Xs)
    n, p = X.shape
    if not (isinstance(n_subsamples, (int, np.integer)) and n_subsamples >= 1):
        raise ValueError(f"The 'n_subsamples' parameter must be a positive integer. Got {n_subsamples!r} instead.")
    if not (np.isscalar(fraction) and 0 < fraction < 1):
        raise ValueError(f"The 'fraction' parameter must be a float in (0, 1). Got {fraction!r} instead.")
    if not (np.isscalar(threshold) and 0.5 < threshold <= 1):
        raise ValueError(f"The 'threshold' parameter must be a float in (0.5, 1]. Got {threshold!r} instead.")
    if feature_names is not None and len(feature_names) != p:
        raise ValueError(f"The 'feature_names' parameter must have one name per feature ({p}). Got {len(feature_names)} names instead.")
    rows = structure.row_slices(nf)
    split = lambda Z: [Z[:, sl] for sl in rows]  # noqa: E731
    if alpha is None:
        res = select_alpha(sample_covariance(split(X)), structure, "bic", **options)
        alpha = res.info["alpha"] if res.info["alpha"] > 0 else 0.1
    if not (np.isscalar(alpha) and 0 < alpha <= 1):
        raise ValueError(f"The 'alpha' parameter of stability_selection must be a float in (0, 1]. Got {alpha!r} instead.")
    m = max(int(round(fraction * n)), structure.n_factors + 2)
    rng = check_random_state(random_state)
    counts = np.zeros((p, structure.n_subsets))
    n_sel = []
    for _ in range(n_subsamples):
        idx = rng.choice(n, size=m, replace=False)
        path = sparse_path(sample_covariance(split(X[idx])), structure, alphas=[alpha], **options)
        sel = row_support(path.loadings[0], structure, nf)
        counts += sel
        n_sel.append(int(sel.sum()))
    freq = counts / n_subsamples
    cand = np.zeros((p, structure.n_subsets), bool)
    for k, s in enumerate(structure.subsets):
        for mm in s:
            cand[rows[mm], k] = True
    freq[~cand] = np.nan
    q = float(np.mean(n_sel))
    n_cand = int(cand.sum())
    bound = q * q / ((2.0 * threshold - 1.0) * n_cand)
    mod = np.concatenate([np.full(pm, i) for i, pm in enumerate(nf)])
    return StabilitySelection(frequency=freq, selected=np.nan_to_num(freq, nan=0.0) >= threshold, threshold=float(threshold),
                              q=q, n_candidates=n_cand, error_bound=float(bound), alpha=float(alpha),
                              n_subsamples=int(n_subsamples), fraction=float(fraction), subsets=list(structure.subsets),
                              subset_labels=[structure.label(s) for s in structure.subsets], modality_of_feature=mod,
                              feature_names=None if feature_names is None else list(feature_names))
