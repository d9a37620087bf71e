"""Paper mode: the authors' estimator, step for step, for any M and any Structure.

1. noise variance = mean of the p - K smallest eigenvalues of the sample covariance;
2. S_W = S_n - sigma2 I; spectral initialisation by Schur complements (:mod:`.init`);
3. masked gradient descent on f(V) = 1/2 ||V^T V - S_W||_F^2, V = W^T, with the authors'
   schedule: step ``lr`` multiplied by ``lr_decay`` when ``i > 0 and i % decay_every == 0``,
   at most ``max_iter`` iterations, stop when ``i > min_iter`` and abs(f_{i-1} - f_i) < ``change_tol``
   (f evaluated before each step, as in their loop).

Stopping criterion and convergence (docs/method.md, section 14): the loop stops
by the authors' schedule above (with the default schedule the step has decayed by 1e-10 after 100
iterations, so the loop ends at iteration 102 whether or not the point is stationary). What is
reported is separate from why the loop stopped: ``stop_crit`` is the scaled masked gradient of f
at the RETURNED point, ||P_mask(2 (W W^T - S_W) W)||_F / (2 ||S_W||_F ||W||_F) (the measure of
:mod:`.als`, which minimises the same f; invariant to scaling S_W by c and W by sqrt(c)), and
``converged = stop_crit <= tol`` says whether the returned point is stationary. Paper mode does
not warn when it is not (it reproduces the authors' estimator, which stops by its schedule by
design); :class:`hcl_stats.HCL` records ``converged_`` and the summary reports it.
"""
from __future__ import annotations

import numpy as np

from . import EstimationResult, register_method
from .init import spectral_init
from .noise import bottom_eigenvalue_noise

__all__ = ["paper_refine", "fit_paper", "fit_init", "paper_objective", "paper_stop_crit", "PAPER_TOL"]

PAPER_TOL = 1e-6   # default tolerance of the stationarity measure (the gtol of .als, same objective and measure)


def _objective(V, VS, S_sq):
    # 1/2 ||V^T V - S||_F^2 = 1/2 (||V V^T||_F^2 - 2 tr(V S V^T) + ||S||_F^2)
    G = V @ V.T
    return 0.5 * (np.sum(G * G) - 2.0 * np.sum(VS * V) + S_sq), G


def paper_objective(W, S_W):
    """f(W) = 1/2 ||W W^T - S_W||_F^2 for loadings W (p, K) and the denoised covariance S_W (p, p)."""
    V = np.asarray(W, float).T
    return float(_objective(V, V @ S_W, float(np.sum(S_W * S_W)))[0])


def paper_stop_crit(W, S_W, mask):
    """Scaled masked gradient of f at W: ||P_mask(2 (W W^T - S_W) W)||_F / (2 ||S_W||_F ||W||_F)
    (dimensionless; zero exactly at a stationary point of f on the structure's support)."""
    W = np.asarray(W, float)
    G = 2.0 * (W @ (W.T @ W) - S_W @ W) * mask
    denom = 2.0 * max(float(np.linalg.norm(S_W)), 1e-300) * max(float(np.linalg.norm(W)), 1e-300)
    return float(np.linalg.norm(G) / denom)


def _support_product(V, S_W, M, max_runs=16, min_saving=0.2):
    """A function computing V @ S_W on the support of M (K, p) only (zero elsewhere), or None.

    Features in a contiguous run with the same support pattern (for a structure's mask, one run
    per modality) need only the rows of V active there: VS[F, J] = V[F] @ S_W[:, J]. Used when V
    is zero off the support (the refinement keeps it so), there are at most ``max_runs`` runs and
    the products shrink by at least ``min_saving`` (recovery design: 47 instead of 82 MFLOP).
    """
    K, p = M.shape
    if p == 0 or np.any(V[M == 0] != 0):
        return None
    active = M != 0
    change = np.flatnonzero(np.any(active[:, 1:] != active[:, :-1], axis=0)) + 1
    bounds = np.concatenate([[0], change, [p]])
    if len(bounds) - 1 > max_runs:
        return None
    runs = [(slice(a, b), np.flatnonzero(active[:, a])) for a, b in zip(bounds[:-1], bounds[1:])]
    cost = sum(len(f) * (r.stop - r.start) for r, f in runs)
    if cost > (1.0 - min_saving) * K * p:
        return None

    def product(V):
        out = np.zeros((K, p))
        for r, f in runs:
            if f.size:
                out[f, r] = V[f] @ S_W[:, r]
        return out

    return product


def paper_refine(W0, S_W, mask, *, lr=1e-4, lr_decay=0.1, decay_every=10, max_iter=1000,
                 tol=1e-6, min_iter=100):
    """The authors' masked gradient refinement.

    ``tol`` here is the authors' stopping threshold on abs(f_{i-1} - f_i) (``change_tol`` of
    :func:`fit_paper`). Returns (W, n_iter, stopped, objective trace); ``stopped`` says whether
    the authors' rule ended the loop before ``max_iter`` (not whether the point is stationary:
    see :func:`paper_stop_crit`).
    """
    V = np.array(W0.T, dtype=float)
    M = mask.T.astype(float)
    S_sq = float(np.sum(S_W * S_W))
    # V @ S_W is needed on the support only (the gradient is masked and V is zero off it)
    product = _support_product(V, S_W, M) or (lambda V: V @ S_W)
    loss_prev = np.inf
    trace = []
    stopped = False
    it = 0
    for i in range(max_iter):
        it = i + 1
        VS = product(V)
        loss, G = _objective(V, VS, S_sq)
        trace.append(loss)
        grad = -2.0 * VS + 2.0 * G @ V
        V = V - lr * (grad * M)
        if i > 0 and i % decay_every == 0:
            lr *= lr_decay
        if i > min_iter and abs(loss_prev - loss) < tol:
            stopped = True
            break
        loss_prev = loss
    return V.T, it, stopped, np.asarray(trace)


def _denoise(stats, structure):
    sigma2 = bottom_eigenvalue_noise(stats.cov, structure.n_factors)
    S_W = stats.cov.copy()
    S_W[np.diag_indices_from(S_W)] -= sigma2
    return sigma2, S_W


@register_method("init")
def fit_init(stats, structure):
    """The spectral initialisation alone (no refinement, no options).

    No iterations: ``stop_crit`` and ``tol`` are NaN and ``converged`` is False by convention
    (nothing was iterated to a criterion); :class:`hcl_stats.HCL` does not warn for it.
    """
    sigma2, S_W = _denoise(stats, structure)
    W0 = spectral_init(S_W, structure, stats.n_features)
    return EstimationResult(loadings=W0, noise_var=np.full(stats.n_total_features, sigma2), n_iter=0,
                            converged=False, history={}, info={"init": W0},
                            objective=paper_objective(W0, S_W))


@register_method("paper")
def fit_paper(stats, structure, *, lr=1e-4, lr_decay=0.1, decay_every=10, max_iter=1000, change_tol=1e-6,
              min_iter=100, tol=PAPER_TOL, init=None):
    """The authors' estimator: noise from bottom eigenvalues, Schur init, masked gradient refinement.

    Parameters
    ----------
    stats : CovarianceStats
    structure : Structure
    lr, lr_decay, decay_every, min_iter, max_iter : float, float, int, int, int
        The authors' step schedule (module docstring).
    change_tol : float, default 1e-6
        The authors' stopping threshold on the change of f between iterations.
    tol : float, default 1e-6
        Tolerance of the stationarity measure ``stop_crit`` (:func:`paper_stop_crit`):
        ``converged = stop_crit <= tol``. It does not change when the loop stops.
    init : ndarray of shape (p, K), optional
        Starting loadings (default: the spectral initialisation).

    Returns
    -------
    EstimationResult
        ``objective`` is f at the returned point; ``info["stopping_rule_met"]`` says whether the
        authors' rule ended the loop.
    """
    sigma2, S_W = _denoise(stats, structure)
    W0 = spectral_init(S_W, structure, stats.n_features) if init is None else np.asarray(init, float)
    mask = structure.support_mask(stats.n_features)
    W, n_iter, stopped, trace = paper_refine(W0 * mask, S_W, mask, lr=lr, lr_decay=lr_decay,
                                             decay_every=decay_every, max_iter=max_iter, tol=change_tol,
                                             min_iter=min_iter)
    crit = paper_stop_crit(W, S_W, mask)
    return EstimationResult(loadings=W, noise_var=np.full(stats.n_total_features, sigma2), n_iter=n_iter,
                            history={"objective": trace}, info={"init": W0, "stopping_rule_met": stopped},
                            stop_crit=crit, tol=tol, objective=paper_objective(W, S_W))
