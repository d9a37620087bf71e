"""Gaussian maximum likelihood of the block-sparse factor model from incomplete data, by EM over
the observed entries.

Model: x = mu + W z + e, z ~ N(0, I_K), e ~ N(0, Psi), W (p, K) zero off
``structure.support_mask``, Psi diagonal (one variance per feature, per modality or one for all).
NaN marks a missing entry; entries are missing at random (MAR: whether an entry is observed
may depend on observed values, not on the missing ones), so the likelihood of the observed
entries is the right one to maximise and the missingness mechanism can be ignored.

With missing entries the sample covariance is no longer a sufficient statistic; EM works on
the data, grouped by *missingness pattern* (o = the set of observed features of a row):

- E-step, per pattern: M_o = I + W_o^T Psi_o^{-1} W_o, E[z | x_o] = M_o^{-1} W_o^T Psi_o^{-1}
  (x_o - mu_o), Cov(z | x_o) = M_o^{-1} (one K x K Cholesky factorisation per pattern, shared
  by all its rows). The log-likelihood of the observed entries comes with it (Woodbury):
  log N(x_o; mu_o, W_o W_o^T + Psi_o) = -1/2 (n_o log 2 pi + log det M_o + sum log psi_o
  + r^T Psi_o^{-1} r - t^T M_o^{-1} t), r = x_o - mu_o, t = W_o^T Psi_o^{-1} r, n_o the number
  of observed entries.
- M-step, per feature j over the rows I_j observing it: (mu_j, W_j[C_m]) solve the expected
  normal equations of the regression of x_j on (1, z_{C_m}) (C_m = the columns of the subsets
  containing j's modality m): G_j b_j = R_j with G_j = sum_{i in I_j} E[(1, z)(1, z)^T | x_o(i)]
  and R_j = sum_{i in I_j} x_ij E[(1, z) | x_o(i)]. Then psi_j = (sum_{I_j} x_ij^2 - b_j^T R_j)
  / n_j, n_j the number of rows in I_j (pooled over the modality's or all features for the "modality" and "isotropic" noise
  models). Features observed by the same rows (and in the same modality) share G_j and one
  factorisation, so whole-modality missingness costs about as much as complete data.

This is the exact EM of the observed-data likelihood (monotone). SQUAREM (scheme S3) accelerates
it with the monotone safeguard of :mod:`.ml`: an extrapolated point is kept only when its
log-likelihood is at least that of the two plain EM steps it started from.

PX-EM (``px=True``, default): the M-step also estimates a mean eta and a covariance A of the
factors from the posterior moments of all rows (A restricted as in :func:`.ml._px_factor`: the
factors of a subset regress on those of its strict supersets, so that the loadings stay inside
the support), and folds them back: mu <- mu + W eta, W <- W L with L L^T = A. The regressions
of the M-step have an intercept and every column a feature may load on, so they are equivariant
under these maps: this is the EM of the expanded model, monotone, with the fixed points of EM.

Stopping, the rule of :func:`.ml.em_fit` with the defaults of :func:`.ml.fit_ml` (tol=1e-13,
gtol=1e-10): the increase of the average observed-data log-likelihood per sample, divided by
p, is at most ``tol`` AND the scaled gradient max(||dl/dW||_F ||W||_F / p, root mean square of
psi dl/dpsi per noise parameter, a modality's sum divided by sqrt(p_m)) is at most ``gtol``. By
Fisher's identity the gradient at the current point is that of the EM surrogate there:
(R_j - G_j b_j)[1:] / (psi_j n) for W_j, and psi_j dl/dpsi_j = (e_j / psi_j - n_j) / (2 n)
with e_j the expected residual sum of squares of feature j at the current point.

Start: the ML fit (:func:`.ml.fit_ml`, plain, no shrinkage) of the available-case covariance
(each entry from the rows observing both features; projected onto the positive semi-definite
cone), with the available-case means; ``init="complete_cases"`` uses the covariance of the
complete rows instead (needs enough of them). ``init="auto"`` takes the available-case
covariance (measured in benchmarks/results/missing.md).

The fit runs on a rescaled copy of the data (per feature with ``noise="feature"``, per modality
with "modality", one scalar with "isotropic"), to which each model is equivariant, so the
stopping rule does not depend on the units; the result is mapped back.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

from . import EstimationResult
from .ml import (LIKELIHOOD_WINDOW, NOISE_MODELS, PSI_FLOOR, Layout as _Layout, convergence_message,
                 likelihood_progress, px_factor as _px_factor, scaled_kkt, squarem_steps, stop_rule)

__all__ = ["fit_missing", "missing_estep", "posterior_moments_incomplete", "paper_representation_incomplete",
           "loglik_samples_incomplete", "available_case_moments", "INIT_OPTIONS"]

_LOG2PI = np.log(2.0 * np.pi)
INIT_OPTIONS = ("auto", "available_case", "complete_cases")


# ------------------------------------------------------------------------------------------
# patterns
# ------------------------------------------------------------------------------------------
# Above this many missingness patterns the E-step runs on all rows at once (batched K x K
# factorisations, O(n p K^2) in matrix products) instead of looping over the patterns.
BATCH_PATTERNS = 50


class _Patterns:
    """Row patterns (unique observed-feature sets) and feature groups (same modality, same rows).

    With more than ``BATCH_PATTERNS`` patterns, every row is its own "pattern" for the batched
    E-step (``batched``); the per-pattern lists are then not kept."""

    def __init__(self, X, lay):
        n, p = X.shape
        O = ~np.isnan(X)
        self.O = O
        pats, inv = np.unique(O, axis=0, return_inverse=True)
        inv = np.asarray(inv).ravel()
        self.n_distinct = pats.shape[0]
        self.batched = self.n_distinct > BATCH_PATTERNS
        if self.batched:
            inv = np.arange(n)
            self.rows, self.obs, self.Xg = [], [], []
            self.X0 = np.where(O, X, 0.0)
            self.Of = O.astype(float)
            self.n_patterns = n
        else:
            self.rows = [np.flatnonzero(inv == g) for g in range(pats.shape[0])]
            self.obs = [np.flatnonzero(pats[g]) for g in range(pats.shape[0])]
            self.Xg = [X[np.ix_(r, o)] for r, o in zip(self.rows, self.obs)]
            self.n_patterns = pats.shape[0]
        self.row_inv = inv
        self.groups = []
        if self.batched:   # the M-step works per modality on all its features at once
            self.n_obs = O.sum(axis=0).astype(float)
            self.mod = [(r, lay.cols[m], self.X0[:, r], self.Of[:, r], np.sum(self.X0[:, r] ** 2, axis=0))
                        for m, r in enumerate(lay.rows)]
            return  # (J features, I rows, C columns, XIJ, sum of squares, pattern weights)
        for m, r in enumerate(lay.rows):
            Om = O[:, r]
            cp, cinv = np.unique(Om.T, axis=0, return_inverse=True)
            cinv = np.asarray(cinv).ravel()
            for h in range(cp.shape[0]):
                J = r.start + np.flatnonzero(cinv == h)
                I = np.flatnonzero(cp[h])
                XIJ = X[np.ix_(I, J)]
                w = np.bincount(inv[I], minlength=self.n_patterns).astype(float)
                self.groups.append((m, J, I, lay.cols[m], XIJ, np.einsum("ij,ij->j", XIJ, XIJ), w))
        self.n_obs = O.sum(axis=0).astype(float)   # rows observing each feature


def _estep_batched(mu, W, psi, pat):
    """The E-step with every row its own pattern, in batched products (many patterns)."""
    n, K = pat.Of.shape[0], W.shape[1]
    ip = 1.0 / psi
    WW = (W[:, :, None] * W[:, None, :]).reshape(W.shape[0], K * K)
    M = ((pat.Of * ip) @ WW).reshape(n, K, K)
    M[:, np.arange(K), np.arange(K)] += 1.0
    L = np.linalg.cholesky(M)
    R = pat.X0 - pat.Of * mu                    # x - mu on the observed entries, 0 elsewhere
    T = (R * ip) @ W                            # (n, K)
    Ez = np.linalg.solve(M, T[:, :, None])[:, :, 0]
    Minv = np.linalg.inv(M)
    logdet = 2.0 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1) + pat.Of @ np.log(psi)
    quad = (R * R) @ ip - np.einsum("ij,ij->i", T, Ez)
    ll = -0.5 * (pat.Of.sum(axis=1) * _LOG2PI + logdet + quad)
    return Ez, 0.5 * (Minv + Minv.transpose(0, 2, 1)), ll


def missing_estep(X, mu, W, psi, pat):
    """E-step over the row patterns: posterior means Z (n, K), posterior covariances per pattern
    (n_patterns, K, K), the log-likelihood of each row's observed entries (n,)."""
    if pat.batched:
        return _estep_batched(mu, W, psi, pat)
    n, K = X.shape[0], W.shape[1]
    Z = np.zeros((n, K))
    Minv = np.empty((pat.n_patterns, K, K))
    ll = np.empty(n)
    eye = np.eye(K)
    for g in range(pat.n_patterns):
        o, rows = pat.obs[g], pat.rows[g]
        Wo = W[o]
        Wp = Wo / psi[o, None]
        cM = sla.cho_factor(eye + Wo.T @ Wp, lower=True)
        R = pat.Xg[g] - mu[o]
        T = R @ Wp
        Ez = sla.cho_solve(cM, T.T).T
        Z[rows] = Ez
        Minv[g] = sla.cho_solve(cM, eye)
        logdet = 2.0 * np.sum(np.log(np.diag(cM[0]))) + np.sum(np.log(psi[o]))
        quad = np.einsum("ij,ij->i", R, R / psi[o]) - np.einsum("ij,ij->i", T, Ez)
        ll[rows] = -0.5 * (o.size * _LOG2PI + logdet + quad)
    return Z, Minv, ll


def _mstep_batched(mu, W, psi, Z, Minv, pat, resid, mu_n, W_n, grad, resid_old):
    """The regressions of the M-step for all features of a modality at once (batched path)."""
    n = Z.shape[0]
    for (r, C, X0, Of, ss) in pat.mod:
        c = C.size
        ZC = Z[:, C]
        Zt = np.hstack([np.ones((n, 1)), ZC])                          # (n, c + 1)
        E = (Zt[:, :, None] * Zt[:, None, :]).reshape(n, -1)
        E2 = np.zeros((n, c + 1, c + 1))
        E2[:, 1:, 1:] = Minv[:, C][:, :, C]
        G = (Of.T @ (E + E2.reshape(n, -1))).reshape(-1, c + 1, c + 1)  # (p_m, c + 1, c + 1)
        Rg = X0.T @ Zt                                                  # (p_m, c + 1)
        b_old = np.hstack([mu[r, None], W[r][:, C]])
        Gb = np.einsum("jkl,jl->jk", G, b_old)
        grad[r.start:r.stop, C] = ((Rg - Gb)[:, 1:] / psi[r, None]) / n
        resid_old[r] = ss - 2.0 * np.einsum("jk,jk->j", b_old, Rg) + np.einsum("jk,jk->j", b_old, Gb)
        B = np.linalg.solve(G, Rg[:, :, None])[:, :, 0]
        mu_n[r] = B[:, 0]
        W_n[r.start:r.stop, C] = B[:, 1:]
        resid[r] = ss - np.einsum("jk,jk->j", B, Rg)


def _mstep(mu, W, psi, Z, Minv, pat, lay, noise, psi_floor, px=False):
    """One M-step (parameter-expanded when ``px``); also the gradients of the average observed-data
    log-likelihood at (mu, W, psi) by Fisher's identity (= those of the EM surrogate there): in W,
    (p, K), and psi * dl/dpsi per feature, (p,)."""
    n = Z.shape[0]
    mu_n, W_n = mu.copy(), np.zeros_like(W)
    resid = np.empty_like(psi)          # sum over the observing rows of the expected squared residual
    resid_old = np.empty_like(psi)      # the same at the current (mu, W)
    grad = np.zeros_like(W)
    if pat.batched:
        _mstep_batched(mu, W, psi, Z, Minv, pat, resid, mu_n, W_n, grad, resid_old)
    for (m, J, I, C, XIJ, ss, w) in pat.groups:
        ZI = Z[np.ix_(I, C)]
        c = C.size
        G = np.empty((c + 1, c + 1))
        G[0, 0] = I.size
        s = ZI.sum(axis=0)
        G[0, 1:] = s
        G[1:, 0] = s
        G[1:, 1:] = ZI.T @ ZI + (w @ Minv.reshape(w.size, -1)).reshape(Minv.shape[1:])[np.ix_(C, C)]
        Rg = np.vstack([XIJ.sum(axis=0), ZI.T @ XIJ])             # (c + 1, |J|)
        b_old = np.vstack([mu[J], W[np.ix_(J, C)].T])
        Gb = G @ b_old
        grad[np.ix_(J, C)] = ((Rg - Gb)[1:] / psi[J]).T / n
        resid_old[J] = ss - 2.0 * np.einsum("kj,kj->j", b_old, Rg) + np.einsum("kj,kj->j", b_old, Gb)
        B = sla.solve(G, Rg, assume_a="pos")
        mu_n[J] = B[0]
        W_n[np.ix_(J, C)] = B[1:].T
        resid[J] = ss - np.einsum("kj,kj->j", B, Rg)
    resid = np.maximum(resid, 0.0)
    # psi_j dl/dpsi_j = (E[sum_{I_j} e_ij^2] / psi_j - |I_j|) / (2 n)
    gpsi = 0.5 * (resid_old / psi - pat.n_obs) / n
    if px:
        # PX-EM: the factors of the expanded model get a mean eta and a covariance A, estimated
        # from the posterior moments of all rows; A restricted as in ml._px_factor (subsets regress
        # on their strict supersets) so that W L stays inside the support; folded back into the
        # loadings (W L) and the means (mu + W eta). The regressions of the M-step contain an
        # intercept and all the columns a feature may load on, so they are equivariant under this
        # group: the step maximises the expanded surrogate, and the likelihood cannot decrease.
        eta = Z.mean(axis=0)
        if pat.batched:
            Sm = Minv.sum(axis=0)
        else:
            Sm = np.einsum("g,gkl->kl", np.array([r.size for r in pat.rows], float), Minv)
        A = (Z.T @ Z + Sm) / n - np.outer(eta, eta)
        mu_n = mu_n + W_n @ eta
        W_n = W_n @ _px_factor(0.5 * (A + A.T), lay)
    if noise == "feature":
        psi_n = resid / pat.n_obs
    elif noise == "modality":
        psi_n = np.empty_like(psi)
        for r in lay.rows:
            psi_n[r] = resid[r].sum() / pat.n_obs[r].sum()
    else:  # isotropic
        psi_n = np.full_like(psi, resid.sum() / pat.n_obs.sum())
    return mu_n, W_n, np.maximum(psi_n, psi_floor), grad, gpsi


# ------------------------------------------------------------------------------------------
# starting values
# ------------------------------------------------------------------------------------------
def available_case_moments(X):
    """Available-case means (p,) and covariance (p, p): entry (j, k) from the rows observing both
    features, centred at the available-case means, divided by (count - 1); pairs never observed
    together get 0. Returns (mean, cov, pair counts)."""
    O = ~np.isnan(X)
    mean = np.where(O, X, 0.0).sum(axis=0) / np.maximum(O.sum(axis=0), 1)
    Xz = np.where(O, X - mean, 0.0)
    Of = O.astype(float)
    cnt = Of.T @ Of
    cov = (Xz.T @ Xz) / np.maximum(cnt - 1.0, 1.0)
    cov[cnt < 2] = 0.0
    return mean, 0.5 * (cov + cov.T), cnt


def _psd(cov, floor_rel=1e-6):
    lam, V = sla.eigh(cov)
    floor = floor_rel * max(float(np.mean(np.diag(cov))), np.finfo(float).tiny)
    if lam[0] >= floor:
        return cov
    lam = np.maximum(lam, floor)
    out = (V * lam) @ V.T
    return 0.5 * (out + out.T)


def _initial(X, structure, n_features, noise, init, init_max_iter):
    from ..covariance import CovarianceStats
    from .ml import fit_ml

    n = X.shape[0]
    complete = ~np.any(np.isnan(X), axis=1)
    p = X.shape[1]
    how = init
    if init == "auto":
        how = "available_case"
    if how == "complete_cases":
        nc = int(complete.sum())
        if nc < max(p // 2, 2 * structure.n_factors + 2, 10):
            raise ValueError(f"init='complete_cases' needs enough complete rows to start from (at least "
                             f"{max(p // 2, 2 * structure.n_factors + 2, 10)}); got {nc} complete rows of {n}. "
                             "Use init='available_case'.")
        Xc = X[complete]
        mean = Xc.mean(axis=0)
        cov = np.cov(Xc, rowvar=False)
        n_eff = nc
    else:
        mean, cov, cnt = available_case_moments(X)
        n_eff = int(max(cnt.min(), 2))
    cov = _psd(cov)
    stats = CovarianceStats(cov=cov, mean=mean, n_samples=n_eff, n_features=tuple(n_features))
    res = fit_ml(stats, structure, noise=noise, shrinkage=False, max_iter=init_max_iter, tol=1e-6, gtol=1e-3)
    return mean, res.loadings, res.noise_var, how


# ------------------------------------------------------------------------------------------
# the fit
# ------------------------------------------------------------------------------------------
def _scales(X, lay, noise):
    O = ~np.isnan(X)
    cnt = O.sum(axis=0)
    m = np.where(O, X, 0.0).sum(axis=0) / cnt
    v = np.where(O, (X - m) ** 2, 0.0).sum(axis=0) / np.maximum(cnt - 1, 1)
    if noise == "feature":
        d2 = v
    elif noise == "modality":
        d2 = np.empty_like(v)
        for r in lay.rows:
            d2[r] = v[r].mean()
    else:
        d2 = np.full_like(v, v.mean())
    return np.sqrt(np.maximum(d2, np.finfo(float).tiny))


def fit_missing(Xs, structure, *, noise="feature", max_iter=1000, tol=1e-13, gtol=1e-10, accelerate="squarem",
                init="auto", init_max_iter=200, start=None, px=True, criterion="gradient", window=LIKELIHOOD_WINDOW):
    """Gaussian ML of the structured factor model from incomplete data (NaN = missing), by EM.

    Parameters
    ----------
    Xs : list of ndarray of shape (n_samples, p_m)
        One array per modality, NaN where an entry is missing; checked beforehand by
        :func:`hcl_stats.incomplete.check_incomplete` (no all-NaN row, every feature observed
        at least twice and not constant, ...).
    structure : Structure
    noise : {"feature", "modality", "isotropic"}, default "feature"
    max_iter : int, default 1000
        EM iterations (a SQUAREM cycle counts as one).
    tol, gtol : float, default 1e-13, 1e-10
        The stopping rule of :func:`.ml.fit_ml`, same meaning and defaults: stop when the increase
        of the average observed-data log-likelihood per sample and feature is at most ``tol``
        (nats; unchanged by rescaling the data) AND the scaled gradient (``history["kkt"]``:
        max of ||dl/dW||_F ||W||_F / p and the root mean square of the scaled noise gradient
        psi dl/dpsi, both from Fisher's identity) is at most ``gtol``. Not met within ``max_iter``:
        ``info["convergence_message"]`` says by how much and what to change.
    criterion : {"gradient", "likelihood"}, default "gradient"
        As in :func:`.ml.fit_ml`: "likelihood" stops once the observed-data log-likelihood of the
        whole sample rose by at most ``gtol`` nats per iteration on average over the last
        ``window`` iterations (:func:`.ml.likelihood_progress`; ``tol`` unused), and
        ``stop_crit`` is that mean increase (the default of :class:`hcl_stats.estimation.solvers.EM`).
    window : int
        Iterations over which the "likelihood" criterion averages.
    accelerate : {"squarem", None}
    init : {"auto", "available_case", "complete_cases"}, default "auto"
        Where the loadings start (module docstring); "auto" = "available_case".
    init_max_iter : int, default 200
        Iterations of the covariance EM that produces the start.
    start : tuple (mean (p,), loadings (p, K), noise_var (p,)), optional
        Explicit starting values (overrides ``init``).
    px : bool, default True
        Parameter-expanded M-step (PX-EM; the restricted factor covariance of
        :func:`.ml._px_factor` and a factor mean, from the posterior moments, folded back into
        the loadings and the means). Same fixed points, monotone; fewer iterations
        (benchmarks/results/missing.md).

    Returns
    -------
    EstimationResult
        ``loadings`` (p, K), ``noise_var`` (p,), ``stop_crit`` (the scaled gradient at the
        returned point), ``tol`` (= ``gtol``), ``converged`` (``stop_crit <= gtol``), ``objective``
        (the average observed-data log-likelihood per sample at the estimate), ``history`` ("loglik": average observed-data
        log-likelihood per sample of each iterate, "kkt": scaled gradient norm), ``info`` with
        ``mean`` (p,), ``n_patterns`` (distinct missingness patterns), ``batched`` (the E- and M-steps
        ran on all rows at once: more than ``BATCH_PATTERNS`` patterns), ``n_feature_groups`` (features
        sharing one regression; None when batched), ``init``, ``n_estep``, ``squarem_rejected`` (SQUAREM
        extrapolations refused by the monotone safeguard),
        ``loglik_total`` (the sum over samples at the estimate) and ``posterior_mean`` (n, K).
    """
    if noise not in NOISE_MODELS:
        raise ValueError(f"The 'noise' parameter must be one of {NOISE_MODELS}. Got {noise!r} instead.")
    if accelerate not in ("squarem", None):
        raise ValueError(f"The 'accelerate' parameter must be 'squarem' or None. Got {accelerate!r} instead.")
    if not isinstance(px, (bool, np.bool_)):
        raise ValueError(f"The 'px' parameter of fit_missing must be a bool. Got {px!r} instead.")
    if init not in INIT_OPTIONS:
        raise ValueError(f"The 'init' parameter of fit_missing must be one of {INIT_OPTIONS}. Got {init!r} instead.")
    from threadpoolctl import threadpool_limits

    n_features = tuple(X.shape[1] for X in Xs)
    lay = _Layout(structure, n_features)
    X = np.hstack([np.asarray(x, dtype=np.float64) for x in Xs])
    n, p = X.shape
    # the full checks are hcl_stats.incomplete.check_incomplete; these keep a direct call from
    # producing NaN estimates silently
    cnt = np.sum(~np.isnan(X), axis=0)
    if np.any(cnt < 2) or not np.all(np.any(~np.isnan(X), axis=1)):
        j = int(np.argmax(cnt < 2)) if np.any(cnt < 2) else None
        what = ("some row has no observed value" if j is None else
                f"feature {j} of the stacked data is observed {int(cnt[j])} time(s)")
        raise ValueError(f"Xs: {what}; check the data with hcl_stats.incomplete.check_incomplete, which names the "
                         "modality, before fit_missing.")
    d = _scales(X, lay, noise)
    Xs_ = X / d
    with threadpool_limits(limits=1):
        if start is None:
            mu, W, psi, how = _initial(Xs_, structure, n_features, noise, init, init_max_iter)
        else:
            mu, W, psi = (np.asarray(a, float) for a in start)
            mu, W, psi = mu / d, W / d[:, None], psi / d ** 2
            how = "given"
        W = W * lay.mask
        pat = _Patterns(Xs_, lay)
        # each noise variance at least PSI_FLOOR times its feature's observed variance (a Heywood case stops there)
        psi_floor = PSI_FLOOR * np.maximum(np.nanvar(Xs_, axis=0), np.finfo(float).tiny)
        psi = np.maximum(psi, psi_floor)
        out = _em(Xs_, mu, W, psi, pat, lay, noise, max_iter, tol, gtol, accelerate, psi_floor, bool(px),
                  rule=stop_rule(criterion, n, window))
    mu, W, psi = out["theta"]
    O = pat.O
    shift = -float(np.sum(O * np.log(d))) / n   # average log-likelihood on the original scale
    hist = {"loglik": np.asarray(out["loglik"]) + shift, "kkt": np.asarray(out["kkt"])}
    info = dict(mean=mu * d, n_patterns=pat.n_distinct, batched=pat.batched,
                n_feature_groups=None if pat.batched else len(pat.groups), init=how,
                n_estep=out["n_estep"], squarem_rejected=out["n_rejected"], loglik_total=float(hist["loglik"][-1] * n),
                posterior_mean=out["Z"], missing=True, tol=tol, gtol=gtol, px=bool(px), criterion=criterion,
                gradient=out["gradient"])
    info["stopping_rule_met"] = bool(out["converged"])
    info["noise_floor"] = PSI_FLOOR
    info["noise_at_floor"] = np.flatnonzero(psi <= psi_floor * (1.0 + 1e-9)).tolist()
    if not out["stop_crit"] <= gtol:
        info["convergence_message"] = convergence_message(
            {"history": {"objective": hist["loglik"], "kkt": hist["kkt"]}, "W": W, "psi": psi, "n_iter": out["n_iter"],
             "tol": tol, "gtol": gtol, "stop_crit": out["stop_crit"], "criterion": criterion, "window": window},
            max_iter, lay)
    return EstimationResult(loadings=W * d[:, None], noise_var=psi * d ** 2, n_iter=out["n_iter"],
                            history=hist, info=info, stop_crit=out["stop_crit"], tol=gtol,
                            objective=float(out["loglik_final"]) + shift)


def _kkt(grad, gpsi, W, lay, noise):
    """:func:`.ml.scaled_kkt` from the per-feature scaled noise gradient ``gpsi``."""
    g = gpsi if noise == "feature" else np.array([gpsi.sum()]) if noise == "isotropic" else \
        np.array([gpsi[r].sum() for r in lay.rows])
    return scaled_kkt(grad, W, g, lay, noise)


def _em(X, mu, W, psi, pat, lay, noise, max_iter, tol, gtol, accelerate, psi_floor, px=True,
        rule=("gradient", None, None)):
    n, p = X.shape
    n_estep = 0

    def estep(theta):
        nonlocal n_estep
        n_estep += 1
        Z, Minv, ll = missing_estep(X, *theta, pat)
        return Z, Minv, float(ll.sum() / n)

    def mstep(theta, st):
        m_, W_, p_, g_, gp_ = _mstep(theta[0], theta[1], theta[2], st[0], st[1], pat, lay, noise, psi_floor, px)
        return (m_, W_, p_), (g_, gp_)

    theta = (mu, W, psi)
    st = estep(theta)
    n_rejected = 0
    loglik, kkt_trace = [], []
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        theta1, (grad, gpsi) = mstep(theta, st)
        loglik.append(st[2])
        kkt = _kkt(grad, gpsi, theta[1], lay, noise)
        kkt_trace.append(kkt)
        if rule[0] == "likelihood":
            if len(loglik) > rule[2] and likelihood_progress(loglik, rule[1], rule[2]) <= gtol:
                converged = True
                break
        elif len(loglik) > 1:
            change = (loglik[-1] - loglik[-2]) / p      # nats per sample and feature
            if change <= tol and kkt <= gtol:
                converged = True
                break
        if accelerate == "squarem":
            st1 = estep(theta1)
            theta2, _ = mstep(theta1, st1)
            st2 = estep(theta2)
            r = [a - b for a, b in zip(theta1, theta)]
            v = [a - 2 * b + c for a, b, c in zip(theta2, theta1, theta)]
            nr = np.sqrt(sum(np.sum(x ** 2) for x in r))
            nv = np.sqrt(sum(np.sum(x ** 2) for x in v))
            theta_n, st_n = theta2, st2
            if nv > 0 and nr > 0:
                for a in squarem_steps(-nr / nv):
                    te = tuple(t - 2 * a * rr + a * a * vv for t, rr, vv in zip(theta, r, v))
                    te = (te[0], te[1] * lay.mask, te[2])
                    if np.all(te[2] > psi_floor):
                        ste = estep(te)
                        if ste[2] >= st2[2]:
                            ts, _ = mstep(te, ste)     # stabilising EM step
                            theta_n, st_n = ts, estep(ts)
                            break
                        n_rejected += 1                # extrapolation worse than two EM steps
        else:
            theta_n = theta1
            st_n = estep(theta_n)
        theta, st = theta_n, st_n
    if converged:
        gradient = float(kkt_trace[-1])    # measured at the returned point
    else:                                   # the measure at the returned point (one more M-step's gradient)
        _, (grad, gpsi) = mstep(theta, st)
        gradient = float(_kkt(grad, gpsi, theta[1], lay, noise))
    if rule[0] == "likelihood":
        stop_crit = likelihood_progress(loglik if converged else loglik + [st[2]], rule[1], rule[2])
    else:
        stop_crit = gradient
    return {"theta": theta, "loglik": loglik, "kkt": kkt_trace, "n_iter": it, "converged": converged,
            "n_estep": n_estep, "Z": st[0], "n_rejected": n_rejected, "stop_crit": stop_crit,
            "gradient": gradient, "loglik_final": st[2]}


# ------------------------------------------------------------------------------------------
# using a fit on incomplete rows
# ------------------------------------------------------------------------------------------
def _row_patterns(X):
    O = ~np.isnan(X)
    pats, inv = np.unique(O, axis=0, return_inverse=True)
    inv = np.asarray(inv).ravel()
    return [(np.flatnonzero(pats[g]), np.flatnonzero(inv == g)) for g in range(pats.shape[0])]


def posterior_moments_incomplete(X, mean, W, psi):
    """E[z | x_o] for each row of ``X`` (n, p) with NaN for missing entries, and Cov(z | x_o).

    Returns ``(Z, covs, pattern_index)``: Z (n, K); covs (n_patterns, K, K), one per
    missingness pattern; pattern_index (n,), the pattern of each row. A row observing no feature
    that loads on some factor gets the prior (mean 0, variance 1) for it."""
    X = np.asarray(X, float)
    n, K = X.shape[0], W.shape[1]
    Z = np.zeros((n, K))
    pats = _row_patterns(X)
    covs = np.empty((len(pats), K, K))
    idx = np.empty(n, dtype=int)
    eye = np.eye(K)
    for g, (o, rows) in enumerate(pats):
        Wo = W[o]
        Wp = Wo / psi[o, None]
        cM = sla.cho_factor(eye + Wo.T @ Wp, lower=True)
        Z[rows] = sla.cho_solve(cM, ((X[np.ix_(rows, o)] - mean[o]) @ Wp).T).T
        covs[g] = sla.cho_solve(cM, eye)
        idx[rows] = g
    return Z, covs, idx


def paper_representation_incomplete(X, mean, W):
    """The paper's representation on the observed entries: z = (W_o^T W_o)^+ W_o^T (x_o - mean_o)
    per missingness pattern (least squares on the observed features; coordinates the observed
    features do not load on are 0, the minimum-norm solution). Shape (n, K)."""
    X = np.asarray(X, float)
    Z = np.zeros((X.shape[0], W.shape[1]))
    for o, rows in _row_patterns(X):
        if o.size == 0:
            continue
        Z[rows] = np.linalg.lstsq(W[o], (X[np.ix_(rows, o)] - mean[o]).T, rcond=None)[0].T
    return Z


def loglik_samples_incomplete(X, mean, W, psi):
    """Gaussian log-likelihood of each row's observed entries under (mean, W W^T + diag(psi)), (n,)."""
    X = np.asarray(X, float)
    out = np.empty(X.shape[0])
    eye = np.eye(W.shape[1])
    for o, rows in _row_patterns(X):
        Wo = W[o]
        Wp = Wo / psi[o, None]
        cM = sla.cho_factor(eye + Wo.T @ Wp, lower=True)
        R = X[np.ix_(rows, o)] - mean[o]
        T = R @ Wp
        quad = np.einsum("ij,ij->i", R, R / psi[o]) - np.einsum("ij,ij->i", T, sla.cho_solve(cM, T.T).T)
        logdet = 2.0 * np.sum(np.log(np.diag(cM[0]))) + np.sum(np.log(psi[o]))
        out[rows] = -0.5 * (o.size * _LOG2PI + logdet + quad)
    return out
