"""Spectral initialisation by sequential Schur complements, for any number of modalities.

For a subset S and a modality m in S, with T the complement of S, the Schur complement of
the (current) denoised covariance conditioned on T isolates the Gram block W_{m,S} W_{m,S}^T
once the lower-level blocks inside S have been removed (docs/method.md, section 3). The
sequence, level by level from the modality-specific subsets to the global one, is given by
:meth:`Structure.conditioning_steps`; for M = 3 and all subsets it is the authors' code step
for step (truncation ranks 6r then 3r, then Rec of the residual diagonal blocks).
"""
from __future__ import annotations

import numpy as np

from .linalg import rec, sym, top_abs_eigh

__all__ = ["spectral_init", "naive_svd", "rec"]


def _pinv_factor(A_TT, q):
    """(V, w) with pinv_q(A_TT) = V diag(1/w) V^T, rank-q truncated by |eigenvalue|."""
    w, V = top_abs_eigh(sym(A_TT), q)
    tol = max(A_TT.shape) * np.finfo(float).eps * (np.abs(w).max() if w.size else 0.0)
    keep = np.abs(w) > tol
    return V[:, keep], w[keep]


def spectral_init(S_W, structure, n_features, return_grams: bool = False):
    """Initial (p, K) loadings from the denoised covariance ``S_W`` by Schur complements.

    Parameters
    ----------
    S_W : ndarray of shape (p, p)
        Denoised covariance (sample covariance minus the noise variance on the diagonal).
    structure : Structure
    n_features : sequence of int

    Returns
    -------
    W0 : ndarray of shape (p, K)
        Block-sparse loadings. Blocks of one subset are not rotation-aligned across
        modalities (each comes from its own eigendecomposition), as in the authors' code.
    grams : dict (m, subset) -> (p_m, p_m) Gram estimate, if ``return_grams``.
    """
    rows = structure.row_slices(n_features)
    ranks = structure.ranks
    cols = structure.column_slices
    W0 = np.zeros((S_W.shape[0], structure.n_factors))
    grams = {}
    cache = {}
    for S, m, T, removed, remaining in structure.conditioning_steps():
        r = ranks[S]
        A_mm = S_W[rows[m], rows[m]].copy()
        for Sp in structure.subsets:  # lower-level subsets inside S that contain m
            if m in Sp and len(Sp) < len(S) and set(Sp) <= set(S):
                A_mm -= grams[(m, Sp)]
        if T:
            idx = structure.feature_rows(T, n_features)
            key = (T, removed)
            if key not in cache:
                A_TT = S_W[np.ix_(idx, idx)]          # a copy already (fancy indexing)
                offsets = np.cumsum([0] + [rows[t].stop - rows[t].start for t in T])
                for Sp in removed:
                    (t,) = set(Sp) & set(T)
                    j = T.index(t)
                    sl = slice(offsets[j], offsets[j + 1])
                    A_TT[sl, sl] -= grams[(t, Sp)]
                q = sum(ranks[Sp] for Sp in remaining)
                cache[key] = _pinv_factor(A_TT, q)
            V, w = cache[key]
            B = S_W[rows[m]][:, idx] @ V
            A_mm = A_mm - (B / w) @ B.T
        Wb = rec(A_mm, r)
        W0[rows[m], cols[S]] = Wb
        grams[(m, S)] = Wb @ Wb.T
    if return_grams:
        return W0, grams
    return W0


def naive_svd(cov, n_factors):
    """Rec(S_n, K): top-K eigenvectors of the covariance scaled by sqrt(eigenvalue), ignoring
    the structure (the authors' "naive SVD" reference).

    The Lanczos products read one triangle of the (symmetrised) covariance
    (:func:`.linalg.top_abs_eigh` with ``symmetric_products=True``): about 2-3x cheaper at the
    recovery study's p = 1400, K = 21, the same pairs to rounding. Should an eigenvector's sign
    differ from the dense-product run, a whole column of the loadings flips, which leaves every
    Gram block and W W^T unchanged.
    """
    return rec(cov, n_factors, symmetric_products=True)
