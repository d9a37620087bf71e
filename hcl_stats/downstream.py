"""Downstream prediction from a representation of the latent factors, with selection of the
task-relevant structures (docs/method.md, section 6).

Every estimator works on a representation ``Z`` of shape (m, K) (m labelled samples), a
response ``y`` of shape (m,), and, for the errors-in-variables estimators, the (K, K)
covariance of the noise the representation carries (``noise_cov``; see
:func:`hcl_stats.representation.representation_noise_cov`). From these it forms

    H = Z^T Z / m - noise_cov,      g = Z^T y / m

(after centring ``Z`` and ``y`` when ``fit_intercept=True``), so that H estimates Cov(z) and g
estimates Cov(z, y) when ``Z = z + noise``.

Estimators (scikit-learn conventions: hyperparameters in ``__init__``, ``fit`` returns self,
learned attributes end in ``_``):

- :class:`CorrectedLeastSquares`: beta = H^{-1} g;
- :class:`GroupLasso`: argmin_b 1/2 b^T H b - g^T b + lambda sum_S w_S ||b_S||_2, lambda = alpha *
  lambda_max, solved by accelerated proximal gradient with a KKT stopping rule;
  :func:`group_lasso_path`; :class:`GroupLassoCV` (K-fold CV, each fold fitted on its
  training part only);
- :class:`LogisticDownstream` (statsmodels ``Logit``) and :class:`GroupLassoLogistic` (cvxpy);
- :func:`structure_tests`: a statsmodels OLS/Logit fit with one Wald/F test per structure;
- metrics: :func:`rotate_coefficients`, :func:`coefficient_errors`, :func:`excess_risk`,
  :func:`plugin_excess_risk`, :func:`bayes_excess_risk`, :func:`population_excess_risk`,
  :func:`support_recovery`.

Indefinite H
------------
With few labelled samples or an overestimated noise the corrected H can be indefinite and
the problems above unbounded. H is then replaced by its projection onto
{A : A >= floor I}: eigenvalues below ``floor = eig_floor * max(lambda_max(H), tiny)`` are
raised to ``floor`` (the nearest such matrix in Frobenius norm), and an
:class:`~hcl_stats.exceptions.EstimationWarning` names the smallest eigenvalue and how many
were raised. ``H_min_eig_`` and ``n_clipped_`` record it.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy import linalg as sla

from ._validation import Interval, Options, _describe, check_array, check_random_state, validate_params
from .base import BaseEstimator
from .exceptions import ConvergenceWarning, EstimationWarning, NotFittedError
from .structure import Structure

__all__ = [
    "corrected_moments",
    "project_psd",
    "CorrectedLeastSquares",
    "group_lasso_solve",
    "group_lasso_lambda_max",
    "group_lasso_path",
    "GroupLasso",
    "GroupLassoCV",
    "LogisticDownstream",
    "GroupLassoLogistic",
    "StructureTests",
    "structure_tests",
    "rotate_coefficients",
    "coefficient_errors",
    "excess_risk",
    "plugin_excess_risk",
    "bayes_predictions",
    "bayes_excess_risk",
    "population_excess_risk",
    "support_recovery",
]


# ----------------------------------------------------------------------------------------
# input checks and shared pieces
# ----------------------------------------------------------------------------------------
def _check_Zy(Z, y, min_rows=2):
    Z = check_array(Z, "Z", min_rows=min_rows)
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (n_samples,); got an array of shape {y_arr.shape}.")
    if y_arr.shape[0] != Z.shape[0]:
        raise ValueError(f"y must have one entry per row of Z ({Z.shape[0]}); got {y_arr.shape[0]}.")
    if not np.issubdtype(y_arr.dtype, np.number) and y_arr.dtype != bool:
        raise ValueError(f"y must be numeric; got dtype {y_arr.dtype}.")
    y_arr = y_arr.astype(np.float64)
    if not np.all(np.isfinite(y_arr)):
        raise ValueError(f"y must be finite; got {int(np.sum(~np.isfinite(y_arr)))} non-finite entries.")
    return Z, y_arr


def _check_noise_cov(noise_cov, K):
    if noise_cov is None:
        return None
    N = np.asarray(noise_cov, dtype=np.float64)
    if N.shape != (K, K):
        raise ValueError(f"noise_cov must have shape (K, K) = ({K}, {K}) to match Z; got {_describe(noise_cov)}.")
    if not np.all(np.isfinite(N)):
        raise ValueError("noise_cov must be finite; got NaN or infinite entries.")
    if not np.allclose(N, N.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(N).max())):
        raise ValueError("noise_cov must be symmetric; got an asymmetric matrix.")
    return 0.5 * (N + N.T)


def _check_binary(y):
    vals = np.unique(y)
    if not np.all(np.isin(vals, (0.0, 1.0))):
        raise ValueError(f"y must be binary with values in {{0, 1}}; got values {vals[:5].tolist()}{' ...' if vals.size > 5 else ''}.")
    if vals.size < 2:
        raise ValueError(f"y must contain both classes 0 and 1; got only {vals.tolist()}.")


def _resolve_groups(groups, K):
    """-> (labels (K,) int, names list, keys list). Structure: keys are subsets."""
    if groups is None:
        return np.arange(K), [f"z{k}" for k in range(K)], list(range(K))
    if isinstance(groups, Structure):
        if groups.n_factors != K:
            raise ValueError(f"groups is a Structure with K = {groups.n_factors} factors but Z has {K} columns.")
        labels = groups.factor_groups()
        return labels, [groups.label(s) for s in groups.subsets], list(groups.subsets)
    arr = np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != K:
        raise ValueError(f"groups must be a Structure or a sequence of K = {K} group labels (one per column of Z); got {_describe(groups)}.")
    keys, labels = np.unique(arr, return_inverse=True)
    keys = [k.item() if hasattr(k, "item") else k for k in keys]
    return labels.astype(int), [str(k) for k in keys], keys


def _check_weights(weights, n_groups):
    if weights is None:
        return np.ones(n_groups)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_groups,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weights must be {n_groups} positive finite numbers (one per group); got {_describe(weights)}.")
    return w


def corrected_moments(Z, y, noise_cov=None, fit_intercept=False):
    """H = Zc^T Zc / m - noise_cov and g = Zc^T yc / m, with Zc, yc centred when ``fit_intercept``.

    Returns
    -------
    H : ndarray (K, K), g : ndarray (K,), z_mean : ndarray (K,), y_mean : float
    """
    Z, y = _check_Zy(Z, y, min_rows=1)
    N = _check_noise_cov(noise_cov, Z.shape[1])
    if fit_intercept:
        z_mean, y_mean = Z.mean(axis=0), float(y.mean())
    else:
        z_mean, y_mean = np.zeros(Z.shape[1]), 0.0
    Zc, yc = Z - z_mean, y - y_mean
    m = Z.shape[0]
    H = Zc.T @ Zc / m
    if N is not None:
        H = H - N
    return 0.5 * (H + H.T), Zc.T @ yc / m, z_mean, y_mean


def project_psd(H, eig_floor=1e-4, warn=True):
    """Project a symmetric H onto {A : A >= floor I}, floor = eig_floor * max(lambda_max(H), tiny).

    Returns
    -------
    H_psd : ndarray (K, K)
    min_eig : float, the smallest eigenvalue of H
    n_clipped : int, how many eigenvalues were raised to the floor
    """
    H = 0.5 * (np.asarray(H, dtype=np.float64) + np.asarray(H, dtype=np.float64).T)
    w, V = sla.eigh(H)
    min_eig = float(w[0])
    top = max(float(w[-1]), np.finfo(float).tiny)
    floor = eig_floor * top
    low = w < floor
    n_clipped = int(low.sum())
    if n_clipped == 0:
        return H, min_eig, 0
    if warn:
        warnings.warn(
            f"The corrected Gram matrix H = Z^T Z/m - noise_cov has {n_clipped} eigenvalue(s) below the floor "
            f"{floor:.3g} (smallest {w[0]:.3g}); it was projected onto the positive definite cone. The noise "
            f"covariance may be overestimated or m too small for the correction.",
            EstimationWarning, stacklevel=3)
    w = np.where(low, floor, w)
    Hp = (V * w) @ V.T
    return 0.5 * (Hp + Hp.T), min_eig, n_clipped


class _LinearMixin:
    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(Z, y) first.")

    def predict(self, Z):
        """Linear prediction ``Z coef_ + intercept_``, shape (n_samples,)."""
        self._check_fitted()
        Z = check_array(Z, "Z")
        if Z.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"Z must have {self.coef_.shape[0]} columns (as at fit time); got {Z.shape[1]}.")
        return Z @ self.coef_ + self.intercept_


_COMMON_CONSTRAINTS = {
    "fit_intercept": [bool],
    "eig_floor": [Interval(float, 0, 1, closed="neither")],
}


def _prepare(est, Z, y, noise_cov):
    Z, y = _check_Zy(Z, y)
    H, g, zm, ym = corrected_moments(Z, y, noise_cov, est.fit_intercept)
    Hp, Hraw_min, n_clipped = project_psd(H, est.eig_floor)
    est.H_min_eig_ = Hraw_min
    est.n_clipped_ = n_clipped
    est.H_, est.g_ = Hp, g
    return Z, y, Hp, g, zm, ym


# ----------------------------------------------------------------------------------------
# corrected least squares
# ----------------------------------------------------------------------------------------
class CorrectedLeastSquares(_LinearMixin, BaseEstimator):
    """Errors-in-variables corrected least squares: beta = H^{-1} g.

    Parameters
    ----------
    fit_intercept : bool, default False
        False reproduces the paper's H = Z^T Z / m - noise_cov (no centring).
    eig_floor : float in (0, 1), default 1e-4
        Relative eigenvalue floor of the PSD projection of an indefinite H (module docstring).

    Attributes
    ----------
    coef_ : ndarray (K,)
    intercept_ : float
    H_, g_ : the (projected) corrected moments
    H_min_eig_ : float, smallest eigenvalue of the corrected H before projection
    n_clipped_ : int, number of eigenvalues raised to the floor

    Notes
    -----
    With ``Z = C_hat x`` and ``noise_cov = C_hat diag(psi) C_hat^T`` (the paper's representation),
    H -> Cov(z) = I and g -> beta when the loadings are exact, so beta_hat is consistent; the
    naive least squares (``noise_cov=None``) is attenuated, beta_naive -> (I + noise_cov)^{-1} beta.
    """

    _parameter_constraints = dict(_COMMON_CONSTRAINTS)

    def __init__(self, fit_intercept=False, eig_floor=1e-4):
        self.fit_intercept = fit_intercept
        self.eig_floor = eig_floor

    def fit(self, Z, y, noise_cov=None):
        """Fit on a representation Z (m, K), y (m,), and the representation's noise covariance (K, K)."""
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        Z, y, H, g, zm, ym = _prepare(self, Z, y, noise_cov)
        self.coef_ = sla.solve(H, g, assume_a="pos")
        self.intercept_ = float(ym - zm @ self.coef_)
        self.n_features_in_ = Z.shape[1]
        return self


# ----------------------------------------------------------------------------------------
# group lasso on (H, g)
# ----------------------------------------------------------------------------------------
def _group_norms(v, labels, n_groups):
    return np.sqrt(np.bincount(labels, weights=v * v, minlength=n_groups))


def group_lasso_lambda_max(g, groups=None, weights=None):
    """Smallest lambda for which b = 0 solves the group lasso: max_S ||g_S||_2 / w_S."""
    g = np.asarray(g, dtype=np.float64)
    labels, _, _ = _resolve_groups(groups, g.shape[0])
    G = int(labels.max()) + 1
    w = _check_weights(weights, G)
    return float(np.max(_group_norms(g, labels, G) / w))


def _kkt_violation(b, grad, labels, G, lam_w):
    nb = _group_norms(b, labels, G)
    ng = _group_norms(grad, labels, G)
    viol = np.maximum(ng - lam_w, 0.0)                       # zero groups: ||grad_S|| <= lam w_S
    nz = nb > 0
    if np.any(nz):
        scale = np.where(nz, lam_w / np.where(nz, nb, 1.0), 0.0)
        r = grad + scale[labels] * b                         # nonzero groups: grad_S + lam w_S b_S/||b_S|| = 0
        viol = np.where(nz, _group_norms(r, labels, G), viol)
    return float(viol.max())


def _newton_polish(H, g, x, labels, G, lam_w, max_newton=20):
    """Newton's method on the smooth problem restricted to the current support (groups with
    b_S != 0): f(b) = 1/2 b^T H b - g^T b + sum_S lam w_S ||b_S||, whose Hessian is
    H + blockdiag(lam w_S / ||b_S|| (I - u_S u_S^T)), u_S = b_S / ||b_S||. Backtracking line search."""
    nb = _group_norms(x, labels, G)
    act_groups = nb > 0
    idx = np.nonzero(act_groups[labels])[0]
    if idx.size == 0:
        return x
    lab = labels[idx]
    Hs, gs, b = H[np.ix_(idx, idx)], g[idx], x[idx].copy()

    def fval(v):
        return 0.5 * v @ Hs @ v - gs @ v + float(np.sum(lam_w * _group_norms(v, lab, G)))

    fb = fval(b)
    for _ in range(max_newton):
        nrm = _group_norms(b, lab, G)
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
    labels, _, _ = _resolve_groups(groups, K)
    G = int(labels.max()) + 1
    w = _check_weights(weights, G)
    lam_w = lam * w
    ev = sla.eigh(0.5 * (H + H.T), eigvals_only=True)
    L = float(ev[-1])
    if L <= 0 or ev[0] < -1e-10 * L:
        raise ValueError(f"H must be positive semi-definite with a positive largest eigenvalue (use project_psd); "
                         f"got eigenvalues in [{ev[0]:.3g}, {ev[-1]:.3g}].")
    scale = max(float(np.max(_group_norms(g, labels, G) / w)), float(np.max(np.abs(g))), np.finfo(float).tiny)
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
            support = _group_norms(x, labels, G) > 0
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
        raise ValueError(f"alphas must be a non-empty 1-D sequence of non-negative numbers; got {_describe(alphas)}.")
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


def _selected(coef, labels, keys):
    G = len(keys)
    nz = _group_norms(coef, labels, G) > 0
    return [keys[j] for j in range(G) if nz[j]]


_GL_CONSTRAINTS = dict(_COMMON_CONSTRAINTS)
_GL_CONSTRAINTS.update({
    "tol": [Interval(float, 0, None, closed="neither")],
    "max_iter": [Interval(int, 1, None)],
})


class GroupLasso(_LinearMixin, BaseEstimator):
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
    fit_intercept : bool, default False
    eig_floor : float, default 1e-4 (PSD projection of an indefinite H)
    tol : float, default 1e-8
        KKT tolerance relative to max(lambda_max, ||g||_inf).
    max_iter : int, default 20000

    Attributes
    ----------
    coef_, intercept_, lambda_, lambda_max_, n_iter_, kkt_violation_,
    selected_groups_ : list of the groups with a non-zero coefficient block,
    group_names_ : labels of all groups, H_, g_, H_min_eig_, n_clipped_
    """

    _parameter_constraints = dict(_GL_CONSTRAINTS, alpha=[Interval(float, 0, None)])

    def __init__(self, groups=None, alpha=0.1, weights=None, fit_intercept=False, eig_floor=1e-4, tol=1e-8,
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
        Z, y, H, g, zm, ym = _prepare(self, Z, y, noise_cov)
        labels, names, keys = _resolve_groups(self.groups, Z.shape[1])
        self.lambda_max_ = group_lasso_lambda_max(g, self.groups, self.weights)
        self.lambda_ = float(self.alpha) * self.lambda_max_
        coef, self.n_iter_, self.kkt_violation_ = group_lasso_solve(H, g, self.groups, self.lambda_, self.weights,
                                                                    None, self.tol, self.max_iter)
        if self.n_iter_ >= self.max_iter:
            warnings.warn(f"GroupLasso stopped after max_iter={self.max_iter} iterations with KKT violation "
                          f"{self.kkt_violation_:.3g}; increase max_iter.", ConvergenceWarning, stacklevel=2)
        self.coef_ = coef
        self.intercept_ = float(ym - zm @ coef)
        self.group_names_ = names
        self.selected_groups_ = _selected(coef, labels, keys)
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


class GroupLassoCV(_LinearMixin, BaseEstimator):
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
    alphas_, lambdas_ : ndarray (n_alphas,), decreasing
    cv_scores_ : ndarray (n_alphas, n_folds)
    mean_cv_score_, std_error_ : ndarray (n_alphas,)
    cv_coefs_ : ndarray (n_folds, n_alphas, K), each fold's path (fitted on its training rows)
    folds_ : list of (train, test) index arrays
    alpha_, lambda_ : the chosen penalty; coef_, intercept_, selected_groups_ : refit on all rows
    path_coefs_ : ndarray (n_alphas, K), the full-data path
    """

    _parameter_constraints = dict(_GL_CONSTRAINTS, n_alphas=[Interval(int, 1, None)],
                                  eps=[Interval(float, 0, 1, closed="neither")], shuffle=[bool],
                                  scoring=[Options("prediction", "corrected")], rule=[Options("min", "1se")])

    def __init__(self, groups=None, alphas=None, n_alphas=30, eps=1e-3, cv=3, shuffle=True, random_state=0,
                 scoring="prediction", rule="min", weights=None, fit_intercept=False, eig_floor=1e-4, tol=1e-8,
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
            raise ValueError(f"cv must be an integer >= 2 or an iterable of (train, test) index arrays; got {_describe(cv)}.") from None
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
        Z, y = _check_Zy(Z, y)
        K = Z.shape[1]
        N = _check_noise_cov(noise_cov, K)
        labels, names, keys = _resolve_groups(self.groups, K)
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
                          stacklevel=2)
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
        self.selected_groups_ = _selected(self.coef_, labels, keys)
        self.n_features_in_ = K
        return self


# ----------------------------------------------------------------------------------------
# logistic downstream
# ----------------------------------------------------------------------------------------
def _exog(Z, names, fit_intercept):
    import pandas as pd

    df = pd.DataFrame(Z, columns=names)
    if fit_intercept:
        df.insert(0, "const", 1.0)
    return df


def _column_names(groups, K):
    if isinstance(groups, Structure):
        out = []
        for s in groups.subsets:
            out += [f"{groups.label(s)}[{j}]" for j in range(groups.rank(s))]
        return out
    return [f"z{k}" for k in range(K)]


class LogisticDownstream(BaseEstimator):
    """Binary downstream response by (unpenalised) logistic regression, through statsmodels ``Logit``.

    Parameters
    ----------
    groups : Structure, optional
        Only names the columns in the summary (``{0,1}[0]``, ...).
    fit_intercept : bool, default True

    Attributes
    ----------
    results_ : statsmodels ``LogitResults`` (``summary()``, ``bse``, ``pvalues``, ``wald_test`` ...)
    coef_ : ndarray (K,), intercept_ : float

    Notes
    -----
    No errors-in-variables correction: use the posterior-mean representation, for which the
    logistic model in z carries over to E[z|x] only approximately (probit-like attenuation by
    Var(beta^T z | x)); with the paper's C_hat x the coefficients are attenuated further.
    """

    _parameter_constraints = {"fit_intercept": [bool]}

    def __init__(self, groups=None, fit_intercept=True):
        self.groups = groups
        self.fit_intercept = fit_intercept

    def fit(self, Z, y):
        import statsmodels.api as sm

        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        Z, y = _check_Zy(Z, y)
        _check_binary(y)
        names = _column_names(self.groups, Z.shape[1])
        X = _exog(Z, names, self.fit_intercept)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=200)
        if not res.mle_retvals.get("converged", True):
            warnings.warn("LogisticDownstream: statsmodels Logit did not converge (separable data?).",
                          ConvergenceWarning, stacklevel=2)
        params = np.asarray(res.params, dtype=float)
        self.results_ = res
        self.intercept_ = float(params[0]) if self.fit_intercept else 0.0
        self.coef_ = params[1:] if self.fit_intercept else params
        self.n_features_in_ = Z.shape[1]
        return self

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(Z, y) first.")

    def decision_function(self, Z):
        self._check_fitted()
        Z = check_array(Z, "Z")
        if Z.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"Z must have {self.coef_.shape[0]} columns (as at fit time); got {Z.shape[1]}.")
        return Z @ self.coef_ + self.intercept_

    def predict_proba(self, Z):
        """(n_samples, 2) class probabilities."""
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(Z)))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, Z):
        return (self.decision_function(Z) > 0).astype(float)

    def summary(self):
        self._check_fitted()
        return self.results_.summary()


class GroupLassoLogistic(LogisticDownstream):
    """Group-lasso logistic regression over structures, solved with cvxpy:

        argmin_{b, c} (1/m) sum_i [log(1 + exp(eta_i)) - y_i eta_i] + lambda sum_S w_S ||b_S||_2,
        eta = Z b + c,  lambda = alpha * lambda_max,

    with lambda_max = max_S ||Z_S^T (y - ybar)|| / (m w_S) (the smallest penalty with b = 0; with
    ``fit_intercept=False``, y - 1/2 replaces y - ybar).

    Parameters
    ----------
    groups : Structure or sequence of K labels, optional
    alpha : float >= 0, default 0.1
    weights : array (n_groups,), optional
    fit_intercept : bool, default True
    solver : str, optional (cvxpy solver name; default cvxpy's choice)

    Attributes
    ----------
    coef_, intercept_, lambda_, lambda_max_, selected_groups_, group_names_
    """

    _parameter_constraints = {"fit_intercept": [bool], "alpha": [Interval(float, 0, None)], "solver": [str, None]}

    def __init__(self, groups=None, alpha=0.1, weights=None, fit_intercept=True, solver=None):
        self.groups = groups
        self.alpha = alpha
        self.weights = weights
        self.fit_intercept = fit_intercept
        self.solver = solver

    def fit(self, Z, y):
        try:
            import cvxpy as cp
        except ImportError as exc:  # pragma: no cover
            raise ImportError("GroupLassoLogistic needs cvxpy: pip install cvxpy") from exc
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        Z, y = _check_Zy(Z, y)
        _check_binary(y)
        m, K = Z.shape
        labels, names, keys = _resolve_groups(self.groups, K)
        G = int(labels.max()) + 1
        w = _check_weights(self.weights, G)
        center = y.mean() if self.fit_intercept else 0.5
        grad0 = Z.T @ (y - center) / m
        self.lambda_max_ = float(np.max(_group_norms(grad0, labels, G) / w))
        self.lambda_ = float(self.alpha) * self.lambda_max_
        b = cp.Variable(K)
        c = cp.Variable() if self.fit_intercept else 0.0
        eta = Z @ b + c
        loss = cp.sum(cp.logistic(eta) - cp.multiply(y, eta)) / m
        pen = sum(w[j] * cp.norm(b[np.nonzero(labels == j)[0]], 2) for j in range(G))
        prob = cp.Problem(cp.Minimize(loss + self.lambda_ * pen))
        prob.solve(solver=self.solver)
        if prob.status not in ("optimal", "optimal_inaccurate"):
            raise RuntimeError(f"GroupLassoLogistic: cvxpy returned status {prob.status!r}.")
        coef = np.asarray(b.value, dtype=float)
        intercept = float(c.value) if self.fit_intercept else 0.0
        # interior-point solvers leave zero groups at ~1e-6: zero a group when it is tiny and the
        # KKT condition of b_S = 0, ||grad_S|| <= lambda w_S, holds (up to 0.1 %) at the solution
        nb = _group_norms(coef, labels, G)
        small = nb <= 1e-4 * max(1.0, float(nb.max()))
        if np.any(small):
            trial = np.where(small[labels], 0.0, coef)
            eta0 = Z @ trial + intercept
            grad = Z.T @ (1.0 / (1.0 + np.exp(-eta0)) - y) / m
            ok = small & (_group_norms(grad, labels, G) <= self.lambda_ * w * (1.0 + 1e-3))
            coef = np.where(ok[labels], 0.0, coef)
        self.coef_ = coef
        self.intercept_ = intercept
        self.objective_ = float(prob.value)
        self.group_names_ = names
        self.selected_groups_ = _selected(coef, labels, keys)
        self.n_features_in_ = K
        return self

    def summary(self):
        self._check_fitted()
        labels = _resolve_groups(self.groups, self.coef_.shape[0])[0]
        norms = _group_norms(self.coef_, labels, len(self.group_names_))
        rows = [f"{n}: ||b_S|| = {v:.4g}" for n, v in zip(self.group_names_, norms)]
        return "\n".join([f"GroupLassoLogistic(alpha={self.alpha}), lambda = {self.lambda_:.4g}"] + rows)


# ----------------------------------------------------------------------------------------
# inference: one Wald / F test per structure
# ----------------------------------------------------------------------------------------
class StructureTests:
    """A statsmodels fit of y on the representation, with one joint test per structure.

    Attributes
    ----------
    results : statsmodels results (OLS or Logit)
    rows : list of dict with keys structure, df, statistic, pvalue, test
    """

    def __init__(self, results, rows, family):
        self.results, self.rows, self.family = results, rows, family

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def as_text(self) -> str:
        head = ["structure", "df", "statistic", "pvalue", "test"]
        cells = [[str(r["structure"]), str(r["df"]), f"{r['statistic']:.4g}", f"{r['pvalue']:.3g}", r["test"]] for r in self.rows]
        w = [max(len(x) for x in [h] + [c[j] for c in cells]) for j, h in enumerate(head)]
        lines = [f"Per-structure tests ({self.family}): H0: beta_S = 0",
                 "  ".join(h.rjust(wj) for h, wj in zip(head, w))]
        lines += ["  ".join(c.rjust(wj) for c, wj in zip(cell, w)) for cell in cells]
        return "\n".join(lines)

    def as_markdown(self) -> str:
        out = ["| structure | df | statistic | p-value | test |", "|---|---|---|---|---|"]
        out += [f"| {r['structure']} | {r['df']} | {r['statistic']:.4g} | {r['pvalue']:.3g} | {r['test']} |" for r in self.rows]
        return "\n".join(out)

    def summary(self):
        return self.results.summary()

    def __str__(self):
        return self.as_text()

    __repr__ = __str__


def structure_tests(Z, y, groups, family="linear", fit_intercept=True):
    """Fit y on Z by statsmodels OLS (``family="linear"``) or Logit (``"logistic"``) and test,
    for each structure S, H0: beta_S = 0 (F test for OLS, chi-square Wald test for Logit).

    Parameters
    ----------
    Z : ndarray (m, K), the representation (use the posterior mean: the paper's C_hat x carries
        correlated noise across structures, so a naive test of beta_S = 0 is biased away from
        its level when other structures matter)
    y : ndarray (m,)
    groups : Structure or sequence of K labels
    family : {"linear", "logistic"}
    fit_intercept : bool, default True

    Returns
    -------
    StructureTests
    """
    import statsmodels.api as sm

    if family not in ("linear", "logistic"):
        raise ValueError(f"family must be 'linear' or 'logistic'; got {family!r}.")
    Z, y = _check_Zy(Z, y)
    K = Z.shape[1]
    labels, names, keys = _resolve_groups(groups, K)
    X = _exog(Z, _column_names(groups, K), fit_intercept)
    if family == "linear":
        res = sm.OLS(y, X).fit()
    else:
        _check_binary(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=200)
    off = 1 if fit_intercept else 0
    rows = []
    for j, key in enumerate(keys):
        idx = np.nonzero(labels == j)[0] + off
        R = np.zeros((idx.size, K + off))
        R[np.arange(idx.size), idx] = 1.0
        if family == "linear":
            t = res.f_test(R)
            stat, pval, kind = float(np.squeeze(t.fvalue)), float(t.pvalue), "F"
        else:
            t = res.wald_test(R, scalar=True)
            stat, pval, kind = float(np.squeeze(t.statistic)), float(t.pvalue), "chi2"
        rows.append({"structure": names[j], "key": key, "df": int(idx.size), "statistic": stat, "pvalue": pval, "test": kind})
    return StructureTests(res, rows, family)


# ----------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------
def rotate_coefficients(coef, rotations, structure):
    """Express estimated coefficients on the true latent coordinates: R_S^T b_S for each subset S.

    Notes
    -----
    ``metrics.align(W_hat, W, structure, n_features, return_rotations=True)`` returns R_S with
    W_hat_S R_S ~ W_S, hence z_hat_S ~ R_S z_S and b_S^T z_hat_S ~ (R_S^T b_S)^T z_S: the
    estimate comparable with the true beta_S is R_S^T b_S.
    """
    coef = np.asarray(coef, dtype=np.float64)
    if coef.shape != (structure.n_factors,):
        raise ValueError(f"coef must have shape (K,) = ({structure.n_factors},); got {coef.shape}.")
    out = coef.copy()
    for s, cs in structure.column_slices.items():
        if s not in rotations:
            raise ValueError(f"rotations must have one (r_S, r_S) matrix per subset; subset {s} is missing.")
        out[cs] = np.asarray(rotations[s]).T @ coef[cs]
    return out


def coefficient_errors(coef, beta, structure, rotations=None) -> dict:
    """||b_S - beta_S||_2 per subset (keyed by ``structure.label``) and ``"overall"`` ||b - beta||_2,
    after :func:`rotate_coefficients` when ``rotations`` are given."""
    coef = np.asarray(coef, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    if beta.shape != (structure.n_factors,):
        raise ValueError(f"beta must have shape (K,) = ({structure.n_factors},); got {beta.shape}.")
    if rotations is not None:
        coef = rotate_coefficients(coef, rotations, structure)
    elif coef.shape != beta.shape:
        raise ValueError(f"coef must have shape (K,) = ({structure.n_factors},); got {coef.shape}.")
    out = {structure.label(s): float(np.linalg.norm(coef[cs] - beta[cs])) for s, cs in structure.column_slices.items()}
    out["overall"] = float(np.linalg.norm(coef - beta))
    return out


def excess_risk(y, y_pred, y_ref) -> float:
    """mean (y - y_pred)^2 - mean (y - y_ref)^2 (can be negative when y_ref is not the Bayes predictor)."""
    y, y_pred, y_ref = (np.asarray(a, dtype=np.float64).ravel() for a in (y, y_pred, y_ref))
    if not (y.shape == y_pred.shape == y_ref.shape):
        raise ValueError(f"y, y_pred and y_ref must have the same length; got {y.shape[0]}, {y_pred.shape[0]} and {y_ref.shape[0]}.")
    return float(np.mean((y - y_pred) ** 2) - np.mean((y - y_ref) ** 2))


def _check_X(X, p=None):
    if isinstance(X, (list, tuple)):
        X = np.hstack([check_array(x, f"X[{i}]") for i, x in enumerate(X)])
    X = check_array(X, "X")
    if p is not None and X.shape[1] != p:
        raise ValueError(f"X must have p = {p} columns (the stacked modalities); got {X.shape[1]}.")
    return X


def plugin_excess_risk(X, y, encoder_hat, coef_hat, loadings_true, beta_true, mean=None, intercept=0.0) -> float:
    """The paper's excess risk on a test sample: mean (y - (x - mean)^T C_hat^T b_hat - intercept)^2
    - mean (y - x^T C^T beta)^2, with C = (W^T W)^{-1} W^T the plug-in true encoder.

    Parameters
    ----------
    X : ndarray (n_test, p) or list of per-modality arrays
    y : ndarray (n_test,)
    encoder_hat : ndarray (K, p), e.g. :func:`hcl_stats.representation.encoder_matrix`
    coef_hat : ndarray (K,)
    loadings_true : ndarray (p, K), beta_true : ndarray (K,)
    mean : ndarray (p,), optional (the fitted ``hcl.mean_``)
    """
    W = np.asarray(loadings_true, dtype=np.float64)
    X = _check_X(X, W.shape[0])
    Xc = X if mean is None else X - np.asarray(mean, dtype=np.float64)
    pred = Xc @ (np.asarray(encoder_hat).T @ np.asarray(coef_hat)) + intercept
    C = np.linalg.pinv(W)  # (W^T W)^{-1} W^T for full column rank W
    ref = X @ (C.T @ np.asarray(beta_true, dtype=np.float64))
    return excess_risk(y, pred, ref)


def _bayes_weights(W, psi, beta, latent_cov=None):
    """a* = Sigma^{-1} W Cz beta (E[y|x] = a*^T x) by Woodbury, Sigma = W Cz W^T + diag(psi)."""
    K = W.shape[1]
    Cz = np.eye(K) if latent_cov is None else np.asarray(latent_cov, dtype=np.float64)
    Wt = W if latent_cov is None else W @ np.linalg.cholesky(Cz)    # Sigma = Wt Wt^T + diag(psi)
    Wp = Wt / psi[:, None]
    v = W @ (Cz @ beta)
    vp = v / psi
    return vp - Wp @ sla.solve(np.eye(K) + Wt.T @ Wp, Wt.T @ vp, assume_a="pos")


def _check_psi(noise_var_features, p):
    psi = np.broadcast_to(np.asarray(noise_var_features, dtype=np.float64), (p,))
    if np.any(psi <= 0):
        raise ValueError(f"noise_var_features must be positive; got minimum {psi.min():.3g}.")
    return psi


def bayes_predictions(X, loadings_true, noise_var_features, beta_true, latent_cov=None) -> np.ndarray:
    """E[y | x] = beta^T Cov(z) W^T Sigma^{-1} x under the true model (x centred), shape (n,)."""
    W = np.asarray(loadings_true, dtype=np.float64)
    X = _check_X(X, W.shape[0])
    psi = _check_psi(noise_var_features, W.shape[0])
    return X @ _bayes_weights(W, psi, np.asarray(beta_true, dtype=np.float64), latent_cov)


def bayes_excess_risk(X, y, encoder_hat, coef_hat, loadings_true, noise_var_features, beta_true, mean=None,
                      intercept=0.0, latent_cov=None) -> float:
    """Excess risk on a test sample against the Bayes predictor E[y|x] (non-negative in expectation)."""
    W = np.asarray(loadings_true, dtype=np.float64)
    X = _check_X(X, W.shape[0])
    Xc = X if mean is None else X - np.asarray(mean, dtype=np.float64)
    pred = Xc @ (np.asarray(encoder_hat).T @ np.asarray(coef_hat)) + intercept
    return excess_risk(y, pred, bayes_predictions(X, W, noise_var_features, beta_true, latent_cov))


def population_excess_risk(weights, loadings_true, noise_var_features, beta_true, latent_cov=None) -> float:
    """Exact excess risk of the linear predictor x -> a^T x over the Bayes predictor:
    (a - a*)^T Sigma (a - a*), with a* = Sigma^{-1} W Cov(z) beta (no test-sample noise).

    ``weights`` is a = C_hat^T b_hat (p,), e.g. ``encoder.T @ coef``.
    """
    W = np.asarray(loadings_true, dtype=np.float64)
    p, K = W.shape
    a = np.asarray(weights, dtype=np.float64)
    if a.shape != (p,):
        raise ValueError(f"weights must have shape (p,) = ({p},); got {a.shape}.")
    psi = _check_psi(noise_var_features, p)
    Cz = np.eye(K) if latent_cov is None else np.asarray(latent_cov, dtype=np.float64)
    d = a - _bayes_weights(W, psi, np.asarray(beta_true, dtype=np.float64), latent_cov)
    u = W.T @ d
    return float(u @ Cz @ u + d @ (psi * d))


def support_recovery(selected, relevant, universe=None) -> dict:
    """Precision, recall and F1 of the selected groups against the relevant ones (and exact match).

    Conventions: precision = 1 when nothing is selected, recall = 1 when nothing is relevant;
    F1 = 0 when precision + recall = 0.
    """
    sel = {tuple(s) if isinstance(s, (list, tuple)) else s for s in selected}
    rel = {tuple(s) if isinstance(s, (list, tuple)) else s for s in relevant}
    if universe is not None:
        uni = {tuple(s) if isinstance(s, (list, tuple)) else s for s in universe}
        extra = (sel | rel) - uni
        if extra:
            raise ValueError(f"selected and relevant must be subsets of universe; got groups {sorted(map(str, extra))} outside it.")
    tp = len(sel & rel)
    precision = tp / len(sel) if sel else 1.0
    recall = tp / len(rel) if rel else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "exact": bool(sel == rel),
            "n_selected": len(sel), "n_relevant": len(rel)}
