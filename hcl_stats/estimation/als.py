"""Alternating exact block updates ("als") on the denoised covariance.

Objective (diagonal included)::

    f(W) = 1/2 || W W^T - T ||_F^2,   W zero off ``structure.support_mask``,

with target T = S_W = S_n - sigma2 I (sigma2: mean of the p - K smallest eigenvalues of S_n,
:func:`.noise.bottom_eigenvalue_noise`), or, with ``shrinkage=True``, the spiked-model optimal
shrinkage of S_W (:mod:`.shrinkage`, rank <= K).

Why the diagonal is included: the noise sits on the diagonal and is removed beforehand by the
sigma2 estimate, so every entry of T is an unbiased-ish estimate of W W^T and, crucially, the
block subproblem stays an eigenvalue problem. Excluding the diagonal would make the noise
irrelevant but turns each block update into a weighted low-rank problem with no closed form.
The price is that an error in sigma2 shifts the target's diagonal; with per-modality noise
use ``method="ml"``.

Block update: with the other subsets' columns fixed, f depends on W_S (the rows of the
modalities in S; other rows are structurally zero) only through the principal submatrix on those
rows, and the minimiser is the best rank-r_S positive semidefinite approximation of the residual
R_S = T[S, S] - sum_{S' != S} W_{S,S'} W_{S,S'}^T (Eckart-Young on the PSD cone: keep the top r_S
eigenpairs, clipping negative eigenvalues at zero). Each update is exact, so f never increases.
For a low-rank target T = F F^T the residual is rank <= q + K and the update is computed exactly
from a thin QR (O(p_S (q + K)^2)); for the dense S_W a partial symmetric eigendecomposition of the
p_S x p_S residual is used.

Stopping: relative decrease of f over a sweep below ``tol`` AND the masked gradient
||P_mask(2 (W W^T - T) W)||_F / (2 ||T||_F ||W||_F) below ``gtol``. History: "objective", "kkt".
"""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

from . import EstimationResult, register_method
from .init import spectral_init
from .linalg import sym, top_eigh
from .noise import bottom_eigenvalue_noise
from .lowrank import spectral_init_lowrank
from .shrinkage import noise_and_shrunk_factor

__all__ = ["fit_als", "als_refine"]


class _Target:
    """T as a dense matrix or as a factor F (T = F F^T)."""

    def __init__(self, dense=None, factor=None):
        self.dense, self.factor = dense, factor
        if dense is not None:
            self.sq = float(np.sum(dense * dense))
        else:
            FtF = factor.T @ factor
            self.sq = float(np.sum(FtF * FtF))

    def times(self, W):
        if self.dense is not None:
            return self.dense @ W
        return self.factor @ (self.factor.T @ W)


def _objective(W, target):
    TW = target.times(W)
    WtW = W.T @ W
    f = 0.5 * (np.sum(WtW * WtW) - 2.0 * np.sum(W * TW) + target.sq)
    return max(f, 0.0), TW, WtW


def _kkt(W, TW, WtW, mask, target):
    G = 2.0 * (W @ WtW - TW) * mask
    denom = 2.0 * np.sqrt(target.sq) * max(np.linalg.norm(W), 1e-300)
    return float(np.linalg.norm(G) / denom)


def _block_update(W, target, idx, cs, others, r):
    O = W[np.ix_(idx, others)]
    if target.dense is not None:
        R = target.dense[np.ix_(idx, idx)]
        if O.shape[1]:
            R = R - O @ O.T
        w, V = top_eigh(sym(R), r)
    else:
        F = target.factor[idx]
        Z = np.hstack([F, O])
        Q, Rz = np.linalg.qr(Z)
        D = np.concatenate([np.ones(F.shape[1]), -np.ones(O.shape[1])])
        small = sym((Rz * D) @ Rz.T)
        w, U = top_eigh(small, r)
        V = Q @ U
    Wb = V * np.sqrt(np.clip(w, 0.0, None))
    if Wb.shape[1] < r:
        Wb = np.hstack([Wb, np.zeros((len(idx), r - Wb.shape[1]))])
    return Wb


def als_refine(W0, target, structure, n_features, *, max_iter=500, tol=1e-10, gtol=1e-6):
    """Cycle exact block updates over the subsets. Returns (W, n_iter, converged, history)."""
    mask = structure.support_mask(n_features)
    rows = structure.row_slices(n_features)
    K = structure.n_factors
    W = np.array(W0, dtype=float) * mask
    plan = []
    for s, cs in structure.column_slices.items():
        idx = np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in s])
        others = np.setdiff1d(np.arange(K), np.arange(cs.start, cs.stop))
        plan.append((s, cs, idx, others, structure.rank(s)))
    f, TW, WtW = _objective(W, target)
    hist_f, hist_k = [f], [_kkt(W, TW, WtW, mask, target)]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        for s, cs, idx, others, r in plan:
            W[np.ix_(idx, np.arange(cs.start, cs.stop))] = _block_update(W, target, idx, cs, others, r)
        f_new, TW, WtW = _objective(W, target)
        kkt = _kkt(W, TW, WtW, mask, target)
        rel = (hist_f[-1] - f_new) / max(hist_f[-1], 1e-300)
        hist_f.append(f_new)
        hist_k.append(kkt)
        if (rel <= tol or f_new <= 1e-30 * target.sq) and kkt <= gtol:
            converged = True
            break
    return W, it, converged, {"objective": np.asarray(hist_f), "kkt": np.asarray(hist_k)}


@register_method("als")
def fit_als(stats, structure, *, max_iter=500, tol=1e-10, gtol=1e-6, shrinkage=False, init=None, **_):
    """Alternating exact block updates from the spectral initialisation (see module docstring).

    Parameters
    ----------
    max_iter : int
        Maximum number of sweeps over the subsets.
    tol, gtol : float
        Relative decrease of the objective over a sweep, and scaled masked-gradient norm; both
        must hold to stop.
    shrinkage : bool
        Fit the spiked-model shrinkage of S_W (rank <= K) instead of S_W.
    init : ndarray (p, K), optional
    """
    K = structure.n_factors
    if shrinkage:
        from .ml import _block_ranks

        sigma2, F, sinfo = noise_and_shrunk_factor(stats.cov, stats.n_samples, K,
                                                   rows=structure.row_slices(stats.n_features),
                                                   block_ranks=_block_ranks(structure))
        target = _Target(factor=F)
        info = {"sigma2": sigma2, "shrinkage": sinfo}
        W0 = spectral_init_lowrank(F, structure, stats.n_features) if init is None else np.asarray(init, float)
    else:
        sigma2 = bottom_eigenvalue_noise(stats.cov, K)
        info = {"sigma2": sigma2}
        S_W = stats.cov.copy()
        S_W[np.diag_indices_from(S_W)] -= sigma2
        target = _Target(dense=S_W)
        W0 = spectral_init(S_W, structure, stats.n_features) if init is None else np.asarray(init, float)
    W, n_iter, converged, hist = als_refine(W0, target, structure, stats.n_features, max_iter=max_iter, tol=tol,
                                            gtol=gtol)
    info["init"] = W0
    return EstimationResult(loadings=W, noise_var=np.broadcast_to(sigma2, (stats.n_total_features,)).copy(), n_iter=n_iter,
                            converged=converged, history=hist, info=info)
