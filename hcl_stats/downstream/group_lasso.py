"""The group lasso over structures on the errors-in-variables corrected moments
(docs/method.md, section 6): the solver, its path, :class:`GroupLasso` and :class:`GroupLassoCV`.

    argmin_b 1/2 b^T H b - g^T b + lambda sum_S w_S ||b_S||_2,   lambda = alpha * lambda_max,

with H, g the corrected moments of :func:`~hcl_stats.downstream.linear.corrected_moments`,
solved by accelerated proximal gradient with a KKT stopping rule.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy import linalg as sla

from .._validation import Interval, Options, check_random_state, user_stacklevel, validate_params
from ..base import BaseEstimator
from ..exceptions import ConvergenceWarning, EstimationWarning
from ._common import (COMMON_CONSTRAINTS, LinearPredictorMixin, check_noise_cov, check_weights, check_Zy, describe,
                      group_norms, resolve_groups, selected_groups)
from .linear import CorrectedMomentsMixin, corrected_moments, project_psd

__all__ = ["group_lasso_solve", "group_lasso_lambda_max", "group_lasso_path", "GroupLasso", "GroupLassoCV"]


def group_lasso_lambda_max(g, groups=None, weights=None):
    """Smallest lambda for which b = 0 solves the group lasso: max_S ||g_S||_2 / w_S."""
    g = np.asarray(g, dtype=np.float64)
    labels, _, _ = resolve_groups(groups, g.shape[0])
    G = int(labels.max()) + 1
    w = check_weights(weights, G)
    return float(np.max(group_norms(g, labels, G) / w))


def _kkt_violation(b, grad, labels, G, lam_w):
    nb = group_norms(b, labels, G)
    ng = group_norms(grad, labels, G)
    viol = np.maximum(ng - lam_w, 0.0)                       # zero groups: ||grad_S|| <= lam w_S
    nz = nb > 0
    if np.any(nz):
        scale = np.where(nz, lam_w / np.where(nz, nb, 1.0), 0.0)
        r = grad + scale[labels] * b                         # nonzero groups: grad_S + lam w_S b_S/||b_S|| = 0
        viol = np.where(nz, group_norms(r, labels, G), viol)
    return float(viol.max())


def _newton_polish(H, g, x, labels, G, lam_w, max_newton=20):
    """Newton's method on the smooth problem restricted to the current support (groups with
    b_S != 0): f(b) = 1/2 b^T H b - g^T b + sum_S lam w_S ||b_S||, whose Hessian is
    H + blockdiag(lam w_S / ||b_S|| (I - u_S u_S^T)), u_S = b_S / ||b_S||. Backtracking line search."""
    nb = group_norms(x, labels, G)
    act_groups = nb > 0
    idx = np.nonzero(act_groups[labels])[0]
    if idx.size == 0:
        return x
    lab = labels[idx]
    Hs, gs, b = H[np.ix_(idx, idx)], g[idx], x[idx].copy()

    def fval(v):
        return 0.5 * v @ Hs @ v - gs @ v + float(np.sum(lam_w * group_norms(v, lab, G)))

    fb = fval(b)
    for _ in range(max_newton):
        nrm = group_norms(b, lab, G)
        if np.any(nrm[act_groups] <= 0):
            break
        sc = np.where(act_groups, lam_w / np.where(nrm > 0, nrm, 1.0), 0.0)
        grad = Hs @ b - gs + sc[lab] * b
        Hess = Hs + np.diag(sc[lab])
        u = b / np.where(nrm > 0, nrm, 1.0)[lab]
        same = lab[:, None] == lab[None, :]
        Hess -= same * (sc[lab][:, None] * np.outer(u, u))
        try:
            step = sla.solve(Hess, grad, assume_a="sym")
        except (sla.LinAlgError, ValueError):
            break
        dec = float(grad @ step)
        if not np.isfinite(dec) or dec <= 0:
            break
        if dec <= 1e-10 * max(1.0, abs(fb)):
            # inside the quadratic-convergence region objective differences are below rounding:
            # take the full step and stop
            b = b - step
            break
        t = 1.0
        for _ in range(20):
            cand = b - t * step
            fc = fval(cand)
            if fc <= fb - 0.25 * t * dec:
                break
            t *= 0.5
        else:
            break
        b, fb = cand, fc
    out = np.zeros_like(x)
    out[idx] = b
    return out


def group_lasso_solve(H, g, groups=None, lam=0.0, weights=None, coef_init=None, tol=1e-8, max_iter=20000):
    """Solve min_b 1/2 b^T H b - g^T b + lam * sum_S w_S ||b_S||_2 for a positive semi-definite H.

    Accelerated proximal gradient (FISTA, step 1/L with L = lambda_max(H), gradient-based
    adaptive restart) with group soft-thresholding; once the support is unchanged between two
    checks, Newton steps on the smooth problem restricted to the support are tried and kept when
    they meet the KKT rule (for the small K here this removes the slow tail of FISTA). Stops when the KKT violation
    max_S dist(0, grad_S + lam w_S d||b_S||) falls below ``tol * max(lambda_max_gl, ||g||_inf, tiny)``
    (lambda_max_gl = :func:`group_lasso_lambda_max`), checked every 10 iterations.

    Parameters
    ----------
    H : ndarray (K, K), symmetric positive semi-definite
    g : ndarray (K,)
    groups : None, Structure or sequence of K labels
        None: one group per coefficient (the lasso).
    lam : float >= 0
    weights : ndarray (n_groups,), optional (default ones)
    coef_init : ndarray (K,), optional warm start
    tol : float
    max_iter : int

    Returns
    -------
    coef : ndarray (K,), n_iter : int, kkt : float (the final KKT violation, unscaled)
    """
    H = np.asarray(H, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    K = g.shape[0]
    if H.shape != (K, K):
        raise ValueError(f"H must have shape (K, K) = ({K}, {K}) to match g; got {H.shape}.")
    if not (isinstance(lam, numbers.Real) and np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0; got {lam!r}.")
    labels, _, _ = resolve_groups(groups, K)
    G = int(labels.max()) + 1
    w = check_weights(weights, G)
    lam_w = lam * w
    ev = sla.eigh(0.5 * (H + H.T), eigvals_only=True)
    L = float(ev[-1])
    if L <= 0 or ev[0] < -1e-10 * L:
        raise ValueError(f"H must be positive semi-definite with a positive largest eigenvalue (use project_psd); "
                         f"got eigenvalues in [{ev[0]:.3g}, {ev[-1]:.3g}].")
    scale = max(float(np.max(group_norms(g, labels, G) / w)), float(np.max(np.abs(g))), np.finfo(float).tiny)
    thresh = tol * scale
    x = np.zeros(K) if coef_init is None else np.array(coef_init, dtype=np.float64)
    if x.shape != (K,):
        raise ValueError(f"coef_init must have shape (K,) = ({K},); got {x.shape}.")

    E = np.zeros((K, G))
    E[np.arange(K), labels] = 1.0                           # group indicator
    c = lam_w / L
    tiny = np.finfo(float).tiny

    def prox(v):
        shrink = 1.0 - c / np.maximum(np.sqrt((v * v) @ E), tiny)
        return v * (E @ np.maximum(shrink, 0.0))

    if lam == 0.0:  # unpenalised: the closed form (H is positive semi-definite)
        x = sla.lstsq(H, g)[0] if ev[0] <= 1e-12 * L else sla.solve(H, g, assume_a="pos")
        return x, 0, _kkt_violation(x, H @ x - g, labels, G, lam_w)
    kkt = _kkt_violation(x, H @ x - g, labels, G, lam_w)
    check_every = 10
    gL = g / L
    HL = H / L
    yk, t, it = x.copy(), 1.0, 0
    support_prev = None
    while kkt > thresh and it < max_iter:
        it += 1
        x_new = prox(yk - HL @ yk + gL)
        if (yk - x_new) @ (x_new - x) > 0:   # gradient-based adaptive restart (O'Donoghue & Candes)
            t = 1.0
            x_new = prox(x - HL @ x + gL)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        yk = x_new + ((t - 1.0) / t_new) * (x_new - x)
        x, t = x_new, t_new
        if it % check_every == 0 or it == max_iter:
            kkt = _kkt_violation(x, H @ x - g, labels, G, lam_w)
            support = group_norms(x, labels, G) > 0
            if kkt > thresh and support_prev is not None and np.array_equal(support, support_prev):
                # the support has settled: finish with Newton steps on it, keep them if they satisfy the KKT rule
                xp = _newton_polish(H, g, x, labels, G, lam_w)
                kp = _kkt_violation(xp, H @ xp - g, labels, G, lam_w)
                if kp <= thresh:
                    return xp, it, kp
            support_prev = support
    return x, it, kkt


def _default_alphas(alphas, n_alphas, eps):
    if alphas is None:
        if not (isinstance(n_alphas, numbers.Integral) and n_alphas >= 1):
            raise ValueError(f"n_alphas must be a positive integer; got {n_alphas!r}.")
        if not (isinstance(eps, numbers.Real) and 0 < eps < 1):
            raise ValueError(f"eps must be a float in (0, 1); got {eps!r}.")
        return np.geomspace(1.0, eps, int(n_alphas))
    a = np.asarray(alphas, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"alphas must be a non-empty 1-D sequence of non-negative numbers; got {describe(alphas)}.")
    return np.sort(a)[::-1]


def group_lasso_path(H, g, groups=None, alphas=None, n_alphas=30, eps=1e-3, weights=None, tol=1e-8,
                     max_iter=20000, lambda_max=None):
    """The group-lasso solutions along lambda = alpha * lambda_max, warm-started from large to small.

    Parameters
    ----------
    alphas : sequence of float, optional
        Relative penalties (default ``n_alphas`` values from 1 to ``eps``, log-spaced).
    lambda_max : float, optional
        Scale of the grid; default :func:`group_lasso_lambda_max` of (g, groups, weights).

    Returns
    -------
    alphas : ndarray (n_alphas,), decreasing
    lambdas : ndarray (n_alphas,)
    coefs : ndarray (n_alphas, K)
    n_iters : ndarray (n_alphas,)
    kkts : ndarray (n_alphas,)
    """
    alphas = _default_alphas(alphas, n_alphas, eps)
    lmax = group_lasso_lambda_max(g, groups, weights) if lambda_max is None else float(lambda_max)
    K = np.asarray(g).shape[0]
    coefs = np.zeros((alphas.size, K))
    n_iters = np.zeros(alphas.size, dtype=int)
    kkts = np.zeros(alphas.size)
    b = None
    for i, a in enumerate(alphas):
        b, n_iters[i], kkts[i] = group_lasso_solve(H, g, groups, a * lmax, weights, b, tol, max_iter)
        coefs[i] = b
    return alphas, alphas * lmax, coefs, n_iters, kkts


_GL_CONSTRAINTS = dict(COMMON_CONSTRAINTS)
_GL_CONSTRAINTS.update({
    "tol": [Interval(float, 0, None, closed="neither")],
    "max_iter": [Interval(int, 1, None)],
})


class GroupLasso(CorrectedMomentsMixin, BaseEstimator):
    """Group lasso over structures on the errors-in-variables corrected moments:

        argmin_b 1/2 b^T H b - g^T b + lambda sum_S w_S ||b_S||_2,  lambda = alpha * lambda_max.

    Parameters
    ----------
    groups : Structure or sequence of K labels, optional
        A Structure groups the coefficients by subset (``selected_groups_`` are then subsets);
        None gives one group per coefficient (the lasso).
    alpha : float >= 0, default 0.1
        Penalty relative to lambda_max = max_S ||g_S|| / w_S (alpha >= 1 gives b = 0).
    weights : array (n_groups,), optional
        Group weights w_S (default 1, the paper's penalty).
    fit_intercept : bool, default True
        Centre Z and y and fit an intercept. Until this release the default was False (the
        paper's uncentred moments): pass ``fit_intercept=False`` to reproduce it.
    eig_floor : float, default 1e-4 (PSD projection of an indefinite H)
    tol : float, default 1e-8
        KKT tolerance relative to max(lambda_max, ||g||_inf).
    max_iter : int, default 20000

    Attributes
    ----------
    coef_ : ndarray of shape (K,)
    intercept_ : float
    lambda_ : float
        The penalty used, ``alpha * lambda_max_``.
    lambda_max_ : float
    n_iter_ : int
    kkt_violation_ : float
        The KKT violation at the returned point (unscaled).
    selected_groups_ : list
        The groups with a non-zero coefficient block.
    group_names_ : list of str
        Labels of all groups.
    H_ : ndarray of shape (K, K)
        The (projected) corrected Gram matrix.
    g_ : ndarray of shape (K,)
    H_min_eig_ : float
        Smallest eigenvalue of the corrected H before projection.
    n_clipped_ : int
        Number of eigenvalues raised to the floor.
    n_features_in_ : int
    """

    _parameter_constraints = dict(_GL_CONSTRAINTS, alpha=[Interval(float, 0, None)])

    def __init__(self, groups=None, alpha=0.1, weights=None, fit_intercept=True, eig_floor=1e-4, tol=1e-8,
                 max_iter=20000):
        self.groups = groups
        self.alpha = alpha
        self.weights = weights
        self.fit_intercept = fit_intercept
        self.eig_floor = eig_floor
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, Z, y, noise_cov=None):
        """Fit on Z (m, K), y (m,) and the representation's noise covariance (K, K) or None."""
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        Z, y, H, g, zm, ym = self._fit_moments(Z, y, noise_cov)
        labels, names, keys = resolve_groups(self.groups, Z.shape[1])
        self.lambda_max_ = group_lasso_lambda_max(g, self.groups, self.weights)
        self.lambda_ = float(self.alpha) * self.lambda_max_
        coef, self.n_iter_, self.kkt_violation_ = group_lasso_solve(H, g, self.groups, self.lambda_, self.weights,
                                                                    None, self.tol, self.max_iter)
        if self.n_iter_ >= self.max_iter:
            warnings.warn(f"GroupLasso stopped after max_iter={self.max_iter} iterations with KKT violation "
                          f"{self.kkt_violation_:.3g}; increase max_iter.", ConvergenceWarning, stacklevel=user_stacklevel())
        self.coef_ = coef
        self.intercept_ = float(ym - zm @ coef)
        self.group_names_ = names
        self.selected_groups_ = selected_groups(coef, labels, keys)
        self.n_features_in_ = Z.shape[1]
        return self


def _kfold(n, n_splits, shuffle, rng):
    idx = np.arange(n)
    if shuffle:
        idx = rng.permutation(n)
    sizes = np.full(n_splits, n // n_splits)
    sizes[: n % n_splits] += 1
    out, start = [], 0
    for s in sizes:
        test = np.sort(idx[start:start + s])
        train = np.sort(np.setdiff1d(idx, test, assume_unique=True))
        out.append((train, test))
        start += s
    return out


class GroupLassoCV(LinearPredictorMixin, BaseEstimator):
    """Group lasso with the penalty chosen by K-fold cross-validation.

    The grid is relative, lambda_j = alpha_j * lambda_max. For each fold the corrected moments
    H, g and lambda_max are computed from the fold's training rows only, the path is solved on
    them, and the held-out rows are scored, so nothing about the held-out rows enters a fold's
    fit; the chosen alpha is then refitted on all rows (lambda = alpha * lambda_max of all rows). (The authors' code refits on the full training data
    inside each fold, so its held-out rows are also fitted rows; ``cv_coefs_`` lets a test check
    that a fold's fit does not depend on its held-out rows.)

    Parameters
    ----------
    groups, weights, fit_intercept, eig_floor, tol, max_iter : as :class:`GroupLasso`
        (``fit_intercept`` defaults to True; until this release it defaulted to False).
    alphas : sequence of float, optional
        Relative penalties; default ``n_alphas`` log-spaced from 1 to ``eps``.
    n_alphas : int, default 30
    eps : float, default 1e-3
    cv : int or iterable of (train, test) index arrays, default 3
    shuffle : bool, default True
    random_state : None, int or Generator, default 0 (the fold assignment)
    scoring : {"prediction", "corrected"}, default "prediction"
        "prediction": held-out mean (y - intercept - Z b)^2, the risk of predicting y from the
        representation. "corrected": the held-out b^T H_test b - 2 g_test^T b + mean(y_c^2), an
        unbiased estimate of E(y - z^T b)^2 on the latent scale (the quantity the corrected
        estimators target).
    rule : {"min", "1se"}, default "min"
        The penalty with the smallest mean CV score, or the largest penalty within one
        standard error of it (sparser, favours selection).

    Attributes
    ----------
    alphas_, lambdas_ : ndarray of shape (n_alphas,)
        The grid, decreasing.
    cv_scores_ : ndarray of shape (n_alphas, n_folds)
    mean_cv_score_, std_error_ : ndarray of shape (n_alphas,)
    cv_coefs_ : ndarray of shape (n_folds, n_alphas, K)
        Each fold's path (fitted on its training rows).
    folds_ : list of (train, test) index arrays
    best_index_ : int
        Index of the chosen penalty in ``alphas_``.
    alpha_, lambda_ : float
        The chosen penalty.
    coef_ : ndarray of shape (K,)
        Refit on all rows at the chosen penalty.
    intercept_ : float
    selected_groups_ : list
        The groups with a non-zero block of ``coef_``.
    path_coefs_ : ndarray of shape (n_alphas, K)
        The full-data path.
    lambda_max_ : float
    n_iter_ : int
    kkt_violation_ : float
    group_names_ : list of str
    H_ : ndarray of shape (K, K)
    g_ : ndarray of shape (K,)
    H_min_eig_ : float
    n_clipped_ : int
    n_features_in_ : int
    """

    _parameter_constraints = dict(_GL_CONSTRAINTS, n_alphas=[Interval(int, 1, None)],
                                  eps=[Interval(float, 0, 1, closed="neither")], shuffle=[bool],
                                  scoring=[Options("prediction", "corrected")], rule=[Options("min", "1se")])

    def __init__(self, groups=None, alphas=None, n_alphas=30, eps=1e-3, cv=3, shuffle=True, random_state=0,
                 scoring="prediction", rule="min", weights=None, fit_intercept=True, eig_floor=1e-4, tol=1e-8,
                 max_iter=20000):
        self.groups = groups
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.shuffle = shuffle
        self.random_state = random_state
        self.scoring = scoring
        self.rule = rule
        self.weights = weights
        self.fit_intercept = fit_intercept
        self.eig_floor = eig_floor
        self.tol = tol
        self.max_iter = max_iter

    def _folds(self, n):
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2 or cv > n:
                raise ValueError(f"cv must be an integer in [2, n_samples={n}] or an iterable of (train, test) index arrays; got {cv}.")
            return _kfold(n, int(cv), self.shuffle, check_random_state(self.random_state))
        try:
            folds = [(np.asarray(tr, dtype=int), np.asarray(te, dtype=int)) for tr, te in cv]
        except Exception:
            raise ValueError(f"cv must be an integer >= 2 or an iterable of (train, test) index arrays; got {describe(cv)}.") from None
        if len(folds) < 1:
            raise ValueError("cv must give at least one (train, test) split; got none.")
        for k, (tr, te) in enumerate(folds):
            if tr.size < 2 or te.size < 1 or np.intersect1d(tr, te).size or tr.min() < 0 or te.min() < 0 \
                    or tr.max() >= n or te.max() >= n:
                raise ValueError(f"cv split {k} must have disjoint train (>= 2 rows) and test (>= 1 row) indices in [0, {n}); got train of size {tr.size} and test of size {te.size}.")
        return folds

    def _score(self, Zte, yte, coefs, intercepts, noise_cov):
        if self.scoring == "prediction":
            resid = yte[:, None] - Zte @ coefs.T - intercepts[None, :]
            return np.mean(resid ** 2, axis=0)
        H, g, zm, ym = corrected_moments(Zte, yte, noise_cov, self.fit_intercept)
        yc = yte - ym
        return np.einsum("ak,kl,al->a", coefs, H, coefs) - 2.0 * coefs @ g + np.mean(yc ** 2)

    def fit(self, Z, y, noise_cov=None):
        """Cross-validate the penalty, then refit on all rows; Z (m, K), y (m,), noise_cov (K, K) or None."""
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        Z, y = check_Zy(Z, y, owner=type(self).__name__)
        K = Z.shape[1]
        N = check_noise_cov(noise_cov, K)
        labels, names, keys = resolve_groups(self.groups, K)
        alphas = _default_alphas(self.alphas, self.n_alphas, self.eps)
        H, g, zm, ym = corrected_moments(Z, y, N, self.fit_intercept)
        lmax = group_lasso_lambda_max(g, self.groups, self.weights)
        folds = self._folds(Z.shape[0])
        scores = np.zeros((alphas.size, len(folds)))
        cv_coefs = np.zeros((len(folds), alphas.size, K))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EstimationWarning)
            for k, (tr, te) in enumerate(folds):
                Htr, gtr, zmt, ymt = corrected_moments(Z[tr], y[tr], N, self.fit_intercept)
                Htr, _, _ = project_psd(Htr, self.eig_floor, warn=True)
                _, _, coefs, _, _ = group_lasso_path(Htr, gtr, self.groups, alphas, weights=self.weights,
                                                     tol=self.tol, max_iter=self.max_iter)
                cv_coefs[k] = coefs
                intercepts = ymt - coefs @ zmt
                scores[:, k] = self._score(Z[te], y[te], coefs, intercepts, N)
        n_fold_clipped = sum(issubclass(w.category, EstimationWarning) for w in caught)
        if n_fold_clipped:
            warnings.warn(f"GroupLassoCV: the corrected Gram matrix was indefinite in {n_fold_clipped} of {len(folds)} "
                          f"training folds and was projected onto the positive definite cone.", EstimationWarning,
                          stacklevel=user_stacklevel())
        mean = scores.mean(axis=1)
        se = scores.std(axis=1, ddof=1) / np.sqrt(len(folds)) if len(folds) > 1 else np.zeros_like(mean)
        best = int(np.argmin(mean))
        if self.rule == "1se":
            ok = np.nonzero(mean <= mean[best] + se[best])[0]
            best = int(ok.min())  # alphas decrease: the smallest index is the largest penalty
        Hp, self.H_min_eig_, self.n_clipped_ = project_psd(H, self.eig_floor)
        self.H_, self.g_ = Hp, g
        _, _, path, n_iters, kkts = group_lasso_path(Hp, g, self.groups, alphas, weights=self.weights, tol=self.tol,
                                                     max_iter=self.max_iter, lambda_max=lmax)
        self.alphas_, self.lambdas_ = alphas, alphas * lmax
        self.lambda_max_ = lmax
        self.cv_scores_, self.mean_cv_score_, self.std_error_ = scores, mean, se
        self.cv_coefs_, self.folds_ = cv_coefs, folds
        self.path_coefs_ = path
        self.best_index_ = best
        self.alpha_, self.lambda_ = float(alphas[best]), float(alphas[best] * lmax)
        self.coef_ = path[best].copy()
        self.n_iter_, self.kkt_violation_ = int(n_iters[best]), float(kkts[best])
        self.intercept_ = float(ym - zm @ self.coef_)
        self.group_names_ = names
        self.selected_groups_ = selected_groups(self.coef_, labels, keys)
        self.n_features_in_ = K
        return self
