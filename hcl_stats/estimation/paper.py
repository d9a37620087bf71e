"""Paper mode: the authors' estimator, step for step, for any M and any Structure.

1. noise variance = mean of the p - K smallest eigenvalues of the sample covariance;
2. S_W = S_n - sigma2 I; spectral initialisation by Schur complements (:mod:`.init`);
3. masked gradient descent on f(V) = 1/2 ||V^T V - S_W||_F^2, V = W^T, with the authors'
   schedule: step ``lr`` multiplied by ``lr_decay`` when ``i > 0 and i % decay_every == 0``,
   at most ``max_iter`` iterations, stop when ``i > min_iter`` and |f_{i-1} - f_i| < tol
   (f evaluated before each step, as in their loop).
"""
from __future__ import annotations

import numpy as np

from . import EstimationResult, register_method
from .init import spectral_init
from .noise import bottom_eigenvalue_noise

__all__ = ["paper_refine", "fit_paper", "fit_init"]


def _objective(V, VS, S_sq):
    # 1/2 ||V^T V - S||_F^2 = 1/2 (||V V^T||_F^2 - 2 tr(V S V^T) + ||S||_F^2)
    G = V @ V.T
    return 0.5 * (np.sum(G * G) - 2.0 * np.sum(VS * V) + S_sq), G


def paper_refine(W0, S_W, mask, *, lr=1e-4, lr_decay=0.1, decay_every=10, max_iter=1000,
                 tol=1e-6, min_iter=100):
    """The authors' masked gradient refinement. Returns (W, n_iter, converged, objective trace)."""
    V = np.array(W0.T, dtype=float)
    M = mask.T.astype(float)
    S_sq = float(np.sum(S_W * S_W))
    loss_prev = np.inf
    trace = []
    converged = False
    it = 0
    for i in range(max_iter):
        it = i + 1
        VS = V @ S_W
        loss, G = _objective(V, VS, S_sq)
        trace.append(loss)
        grad = -2.0 * VS + 2.0 * G @ V
        V = V - lr * (grad * M)
        if i > 0 and i % decay_every == 0:
            lr *= lr_decay
        if i > min_iter and abs(loss_prev - loss) < tol:
            converged = True
            break
        loss_prev = loss
    return V.T, it, converged, np.asarray(trace)


def _denoise(stats, structure):
    sigma2 = bottom_eigenvalue_noise(stats.cov, structure.n_factors)
    S_W = stats.cov.copy()
    S_W[np.diag_indices_from(S_W)] -= sigma2
    return sigma2, S_W


@register_method("init")
def fit_init(stats, structure, **_):
    """The spectral initialisation alone (no refinement)."""
    sigma2, S_W = _denoise(stats, structure)
    W0 = spectral_init(S_W, structure, stats.n_features)
    return EstimationResult(loadings=W0, noise_var=np.full(stats.n_total_features, sigma2), n_iter=0,
                            converged=True, history={}, info={"init": W0})


@register_method("paper")
def fit_paper(stats, structure, *, lr=1e-4, lr_decay=0.1, decay_every=10, max_iter=1000, tol=1e-6,
              min_iter=100, **_):
    """The authors' estimator: noise from bottom eigenvalues, Schur init, masked gradient refinement."""
    sigma2, S_W = _denoise(stats, structure)
    W0 = spectral_init(S_W, structure, stats.n_features)
    mask = structure.support_mask(stats.n_features)
    W, n_iter, converged, trace = paper_refine(W0, S_W, mask, lr=lr, lr_decay=lr_decay,
                                               decay_every=decay_every, max_iter=max_iter, tol=tol,
                                               min_iter=min_iter)
    return EstimationResult(loadings=W, noise_var=np.full(stats.n_total_features, sigma2), n_iter=n_iter,
                            converged=converged, history={"objective": trace}, info={"init": W0})
