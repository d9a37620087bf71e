"""The spectral initialisation for a low-rank target T = F F^T, in factor form.

Same algorithm as :func:`hcl_stats.estimation.init.spectral_init` (the same conditioning steps,
truncation ranks and tolerances), but every matrix it handles is kept as X diag(d) X^T with X thin,
so each eigendecomposition is a thin QR plus a small symmetric eigenproblem: O(p K^2) instead of
O(p^3). Used by the ``shrinkage=True`` fits, whose target has rank <= K. The Gram blocks it returns
equal those of ``spectral_init(F @ F.T, ...)`` (checked in the tests).
"""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

from .linalg import fixed_signs, sym

__all__ = ["spectral_init_lowrank", "eig_factor"]


def eig_factor(X, d, q):
    """The q eigenpairs of largest absolute eigenvalue of X diag(d) X^T (zero eigenvalues padded)."""
    n, k = X.shape
    q = int(min(q, n))
    if k == 0 or q <= 0:
        return np.zeros(max(q, 0)), np.zeros((n, max(q, 0)))
    Q, R = np.linalg.qr(X)
    w, U = sla.eigh(sym((R * d) @ R.T))
    order = np.argsort(-np.abs(w), kind="stable")[:q]
    w, V = w[order], fixed_signs(Q @ U[:, order])   # a sign per vector that does not depend on the backend
    if w.size < q:  # the remaining eigenvalues are exactly zero
        w = np.concatenate([w, np.zeros(q - w.size)])
        V = np.hstack([V, np.zeros((n, q - V.shape[1]))])
    return w, V


def spectral_init_lowrank(F, structure, n_features):
    """Initial (p, K) loadings from the target F F^T (see module docstring)."""
    rows = structure.row_slices(n_features)
    ranks = structure.ranks
    cols = structure.column_slices
    p = F.shape[0]
    W0 = np.zeros((p, structure.n_factors))
    facs = {}
    cache = {}
    for S, m, T, removed, remaining in structure.conditioning_steps():
        r = ranks[S]
        Fm = F[rows[m]]
        Xl, dl = [Fm], [np.ones(F.shape[1])]
        for Sp in structure.subsets:
            if m in Sp and len(Sp) < len(S) and set(Sp) <= set(S):
                Xl.append(facs[(m, Sp)])
                dl.append(-np.ones(ranks[Sp]))
        if T:
            idx = structure.feature_rows(T, n_features)
            key = (T, removed)
            if key not in cache:
                XT, dT = [F[idx]], [np.ones(F.shape[1])]
                offsets = np.cumsum([0] + [rows[t].stop - rows[t].start for t in T])
                for Sp in removed:
                    (t,) = set(Sp) & set(T)
                    j = T.index(t)
                    G = np.zeros((len(idx), ranks[Sp]))
                    G[offsets[j]:offsets[j + 1]] = facs[(t, Sp)]
                    XT.append(G)
                    dT.append(-np.ones(ranks[Sp]))
                q = sum(ranks[Sp] for Sp in remaining)
                w, V = eig_factor(np.hstack(XT), np.concatenate(dT), q)
                tol = len(idx) * np.finfo(float).eps * (np.abs(w).max() if w.size else 0.0)
                keep = np.abs(w) > tol
                cache[key] = (V[:, keep], w[keep])
            V, w = cache[key]
            B = Fm @ (F[idx].T @ V)
            Xl.append(B)
            dl.append(-1.0 / w)
        w, V = eig_factor(np.hstack(Xl), np.concatenate(dl), r)
        Wb = V * np.sqrt(np.abs(w))
        W0[rows[m], cols[S]] = Wb
        facs[(m, S)] = Wb
    return W0
