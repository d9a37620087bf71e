"""Symmetric linear-algebra kernels shared by the estimators (float64, eigh only)."""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

__all__ = ["top_eigh", "rec", "truncated_pinv", "psd_rank_approx", "sym"]


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


def rec(A: np.ndarray, r: int) -> np.ndarray:
    """Rec(A, r) = U_r diag(s_r)^(1/2), from the top-r singular pairs of A (the authors' step).

    For a symmetric A the top singular pairs are the eigenpairs of largest |eigenvalue|;
    as in the authors' code (np.linalg.svd of a symmetric matrix) a negative eigenvalue of
    large modulus contributes its modulus.
    """
    A = sym(A)
    w, V = sla.eigh(A)
    order = np.argsort(-np.abs(w))[:r]
    return V[:, order] * np.sqrt(np.abs(w[order]))


def psd_rank_approx(A: np.ndarray, r: int) -> np.ndarray:
    """Best rank-r positive semidefinite approximation factor F (A ~ F F^T) in Frobenius norm."""
    w, V = top_eigh(sym(A), r)
    return V * np.sqrt(np.clip(w, 0.0, None))


def truncated_pinv(A: np.ndarray, q: int) -> np.ndarray:
    """Rank-q truncated pseudo-inverse of a symmetric matrix (top-q eigenpairs by modulus,
    as the SVD-based pinv of the authors' code)."""
    A = sym(A)
    q = int(min(q, A.shape[0]))
    if q <= 0:
        return np.zeros_like(A)
    w, V = sla.eigh(A)
    order = np.argsort(-np.abs(w))[:q]
    w, V = w[order], V[:, order]
    tol = max(A.shape) * np.finfo(float).eps * (np.abs(w).max() if w.size else 0.0)
    keep = np.abs(w) > tol
    return (V[:, keep] / w[keep]) @ V[:, keep].T


def schur_complement(A_mm, A_mT, A_TT, q):
    """A_mm - A_mT pinv_q(A_TT) A_Tm, without forming more than needed."""
    A_TT = sym(A_TT)
    q = int(min(q, A_TT.shape[0]))
    if q <= 0:
        return A_mm.copy()
    w, V = sla.eigh(A_TT)
    order = np.argsort(-np.abs(w))[:q]
    w, V = w[order], V[:, order]
    tol = max(A_TT.shape) * np.finfo(float).eps * (np.abs(w).max() if w.size else 0.0)
    keep = np.abs(w) > tol
    B = A_mT @ V[:, keep]
    return sym(A_mm - (B / w[keep]) @ B.T)
