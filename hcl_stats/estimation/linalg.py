"""Symmetric linear-algebra kernels shared by the estimators (float64, eigh only)."""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla
from scipy.sparse import linalg as spla

__all__ = ["top_eigh", "top_abs_eigh", "rec", "psd_rank_approx", "sym"]


def sym(A: np.ndarray) -> np.ndarray:
    return 0.5 * (A + A.T)


def top_eigh(A: np.ndarray, k: int):
    """The k largest eigenpairs of a symmetric matrix, in decreasing order."""
    n = A.shape[0]
    k = int(min(max(k, 0), n))
    if k == 0:
        return np.zeros(0), np.zeros((n, 0))
    w, V = sla.eigh(A, subset_by_index=[n - k, n - 1], driver="evr" if k < n else "evd")
    return w[::-1], V[:, ::-1]


def top_abs_eigh(A, q):
    """Top-q eigenpairs of a symmetric matrix by absolute eigenvalue (as an SVD of it would give).

    Large matrices with few wanted pairs use Lanczos (ARPACK, as the authors' ``svds``) from a
    fixed start vector, so the result is deterministic; small ones, or a Lanczos run that does
    not converge, use the dense symmetric solver.
    """
    n = A.shape[0]
    q = int(min(q, n))
    if q <= 0:
        return np.zeros(0), np.zeros((n, 0))
    w = V = None
    if n >= 200 and 10 * q < n:
        try:
            w, V = spla.eigsh(A, k=q, which="LM", v0=np.full(n, 1.0 / np.sqrt(n)), tol=0.0,
                              maxiter=50 * n)
        except (spla.ArpackNoConvergence, spla.ArpackError):
            w = V = None
    if w is None:
        w, V = sla.eigh(A)
    order = np.argsort(-np.abs(w), kind="stable")[:q]
    return w[order], V[:, order]


def rec(A, r):
    """Rec(A, r) = U_r diag(s_r)^(1/2) from the top-r singular pairs of the symmetric A."""
    w, V = top_abs_eigh(sym(A), r)
    return V * np.sqrt(np.abs(w))


def psd_rank_approx(A: np.ndarray, r: int) -> np.ndarray:
    """Best rank-r positive semidefinite approximation factor F (A ~ F F^T) in Frobenius norm."""
    w, V = top_eigh(sym(A), r)
    return V * np.sqrt(np.clip(w, 0.0, None))
