"""Noise-variance estimates.

Each function takes the sample covariance either as a dense (p, p) array or as a
:class:`hcl_stats.covariance.DataStats` (the centred n x p data, for n < p): then no p x p matrix
is formed; products with S are ``Xc^T (Xc V) / (n - 1)`` and top eigenpairs come from the n x n
Gram matrix, so memory is O(n p + n^2 + p K) and the results equal the dense ones to rounding.
"""
from __future__ import annotations

import numpy as np

from .linalg import top_eigh

__all__ = ["bottom_eigenvalue_noise", "factor_noise"]


def is_data_stats(S) -> bool:
    """True for a :class:`hcl_stats.covariance.DataStats` (duck-typed: the centred data ``Xc``)."""
    return hasattr(S, "Xc") and hasattr(S, "top_eigh")


def cov_diag(S) -> np.ndarray:
    """The diagonal (p,) of a dense covariance or of a DataStats (a copy)."""
    return S.feature_var if is_data_stats(S) else np.diag(S).copy()


def cov_top_eigh(S, k, scale=None):
    """Top-k eigenpairs (decreasing) of S, or of D^{-1} S D^{-1} with ``scale`` = diag(D) (p,)."""
    if is_data_stats(S):
        return S.top_eigh(k, scale=scale)
    if scale is None:
        return top_eigh(S, k)
    return top_eigh(S / scale[:, None] / scale[None, :], k)


class _Whitened:
    """D^{-1} S D^{-1} as an operator (products only), for S a DataStats."""

    def __init__(self, S, d):
        self.S, self.d = S, d

    def __matmul__(self, V):
        return (self.S @ (V / self.d[:, None])) / self.d[:, None]


def bottom_eigenvalue_noise(cov: np.ndarray, n_factors: int) -> float:
    """Mean of the p - K smallest eigenvalues of the covariance (the authors' estimate).

    Computed as (trace - sum of the top K eigenvalues) / (p - K), which equals that mean
    and needs only the top-K eigenpairs.
    """
    p = cov.shape[0]
    if n_factors >= p:
        raise ValueError(f"the noise estimate needs K < p; got K = {n_factors}, p = {p}.")
    w, _ = cov_top_eigh(cov, n_factors)
    return float((np.sum(cov_diag(cov)) - w.sum()) / (p - n_factors))


def _top_eig_subspace(A, V0, n_iter=2):
    """Top eigenpairs of a symmetric A by a few steps of subspace iteration from V0 (p, q),
    then Rayleigh-Ritz; returns eigenvalues (decreasing) and vectors (p, q)."""
    V = V0
    for _ in range(n_iter):
        V, _ = np.linalg.qr(A @ V)
    H = V.T @ (A @ V)
    w, U = np.linalg.eigh(0.5 * (H + H.T))
    return w[::-1], V @ U[:, ::-1]


def _full_top(A, k):
    """Top-k eigenpairs from a full divide-and-conquer eigendecomposition (faster than a partial
    one when k is a large share of the dimension)."""
    w, V = np.linalg.eigh(A)
    return w[::-1][:k], V[:, ::-1][:, :k]


def factor_noise(cov: np.ndarray, n_factors: int, psi0=None, *, floor: float = 1e-3, max_iter: int = 300,
                 tol: float = 1e-6):
    """Maximum-likelihood noise variances of a factor model with ``n_factors`` factors and
    diagonal noise, Sigma = L L^T + Psi, fitted to the covariance ``cov`` (p, p).

    The ML fixed point of Joreskog (1967) (as in scikit-learn's FactorAnalysis): with
    D = Psi^{1/2}, the top eigenpairs (w, V) of D^{-1} S D^{-1} give L = D V (w - 1)_+^{1/2} and
    Psi = diag(S - L L^T), iterated to a relative change of Psi below ``tol``. Eigenpairs by
    subspace iteration warm-started from the previous iterate (O(p^2 k) per step) where the
    rank is small, a dense partial eigendecomposition otherwise. ``psi0`` (p,) warm-starts it.

    Each variance is kept at least ``floor`` times the feature's variance (a Heywood case, a
    feature with no noise left, stays finite); the floor is relative, so the estimate is
    equivariant to rescaling any feature.

    ``cov`` may be a :class:`hcl_stats.covariance.DataStats` (n < p): the same iteration with the
    whitened products D^{-1} Xc^T (Xc D^{-1} V) / (n - 1) (O(n p q) per step) and the eigenpairs
    of the whitened n x n Gram matrix where the dense path uses a dense solver; memory O(n p).

    Returns
    -------
    psi : ndarray of shape (p,)
    info : dict with ``n_iter``, ``converged`` and ``at_floor`` (features at the floor).
    """
    data = is_data_stats(cov)
    S = cov if data else np.asarray(cov, dtype=float)
    p = S.shape[0]
    k = int(n_factors)
    var = cov_diag(S)
    if np.any(var <= 0):
        raise ValueError(f"cov: every feature needs a positive variance; features {np.flatnonzero(var <= 0).tolist()} have none.")
    lo = floor * var
    if k <= 0:
        return var.copy(), {"n_iter": 0, "converged": True, "at_floor": np.zeros(p, bool)}
    if k >= p:
        raise ValueError(f"n_factors must be smaller than the number of features; got {k} factors for {p} features.")
    psi = var.copy() if psi0 is None else np.clip(np.asarray(psi0, float), lo, var)
    q = min(p, k + max(5, k // 4))
    dense = p <= 200 or 3 * q >= p
    V = None
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        d = np.sqrt(psi)
        if data:
            Sw = _Whitened(S, d)
            if dense:
                w, Vk = S.top_eigh(k, scale=d)
            elif V is None:
                w, V = S.top_eigh(q, scale=d)
            else:
                w, V = _top_eig_subspace(Sw, V, n_iter=2)
            if not dense:
                w, Vk = w[:k], V[:, :k]
        elif dense:
            Sw = S / d[:, None] / d[None, :]
            w, Vk = top_eigh(Sw, k) if 3 * k < p else _full_top(Sw, k)
        else:
            if V is None:
                w, V = top_eigh(S / d[:, None] / d[None, :], q)
            else:   # products with D^{-1} S D^{-1}, without forming it (two p x p temporaries per step)
                w, V = _top_eig_subspace(_Whitened(S, d), V, n_iter=2)
            w, Vk = w[:k], V[:, :k]
        L = d[:, None] * Vk * np.sqrt(np.clip(w - 1.0, 0.0, None))
        new = np.clip(var - np.einsum("ij,ij->i", L, L), lo, var)
        change = float(np.max(np.abs(new - psi) / var))
        psi = new
        if change <= tol:
            converged = True
            break
    return psi, {"n_iter": it, "converged": converged, "at_floor": psi <= lo * (1 + 1e-12)}
