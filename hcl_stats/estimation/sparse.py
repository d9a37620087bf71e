"""Sparse loadings: the penalty, its proximal operator and the penalised row regressions.

Penalty on the (p, K) loadings (only support entries are free)::

    pen(W) = l1_ratio * sum_jk |W_jk| + (1 - l1_ratio) * sum_j sum_S sqrt(r_S) ||W_{j,S}||_2

The group term zeroes whole rows of a structure's block (feature j does not load on subset S);
the L1 term zeroes single entries. The proximal operator of t * pen is exact: soft-thresholding
followed by group shrinkage (the sparse-group-lasso prox; Friedman, Hastie and Tibshirani 2010).

Inside EM (:mod:`.ml`) the M-step for the loadings separates over features j of modality m
(C_m = columns of the subsets containing m)::

    min_w  1/2 w^T B_CC w - a_j^T w + alpha * psi_j * pen_row(w)       (convex)

solved for all rows of a modality at once by FISTA (:func:`penalised_rows`), checked against
cvxpy in the tests. Inside the alternating block updates (:mod:`.als`) the block subproblem is
solved by proximal gradient steps with the same prox.
"""
from __future__ import annotations

import numpy as np

__all__ = ["soft_threshold", "group_soft_threshold", "prox_sparse_group", "penalty_value",
           "penalised_rows", "row_alpha_max", "column_groups"]


def soft_threshold(X, t):
    """Elementwise prox of t * ||.||_1 (t broadcast against X)."""
    return np.sign(X) * np.maximum(np.abs(X) - t, 0.0)


def group_soft_threshold(X, t, groups):
    """Prox of sum_g t_g ||X[:, g]||_2 applied row by row; ``groups`` is a list of column
    index arrays, ``t`` broadcasts to (n_rows, n_groups)."""
    out = np.array(X, dtype=float, copy=True)
    t = np.broadcast_to(np.asarray(t, float), (X.shape[0], len(groups)))
    for g, cols in enumerate(groups):
        nrm = np.linalg.norm(out[:, cols], axis=1)
        scale = np.where(nrm > t[:, g], 1.0 - t[:, g] / np.where(nrm > 0, nrm, 1.0), 0.0)
        out[:, cols] *= scale[:, None]
    return out


def prox_sparse_group(X, t_l1, t_group, groups):
    """Prox of t_l1 * ||x||_1 + sum_g t_group_g ||x_g||_2, row by row (exact composition)."""
    Y = soft_threshold(X, t_l1) if np.any(np.asarray(t_l1) > 0) else np.array(X, dtype=float, copy=True)
    if np.any(np.asarray(t_group) > 0):
        Y = group_soft_threshold(Y, t_group, groups)
    return Y


def column_groups(structure, cols):
    """Within the columns ``cols`` (indices into 0..K-1), the index arrays of each subset's
    columns and their weights sqrt(r_S)."""
    cols = np.asarray(cols)
    pos = {int(c): i for i, c in enumerate(cols)}
    groups, weights = [], []
    for s, sl in structure.column_slices.items():
        idx = [pos[c] for c in range(sl.start, sl.stop) if c in pos]
        if idx:
            groups.append(np.array(idx))
            weights.append(np.sqrt(len(range(sl.start, sl.stop))))
    return groups, np.array(weights)


def penalty_value(W, structure, n_features, l1_ratio):
    """pen(W) (see module docstring)."""
    rows = structure.row_slices(n_features)
    val = l1_ratio * np.abs(W).sum()
    if l1_ratio < 1:
        for s, sl in structure.column_slices.items():
            w = np.sqrt(sl.stop - sl.start)
            for m in s:
                val += (1 - l1_ratio) * w * np.linalg.norm(W[rows[m], sl], axis=1).sum()
    return float(val)


def penalised_rows(B, A, thresh, groups, gweights, l1_ratio, X0=None, *, tol=1e-10, max_iter=5000):
    """Solve, for every row a_j of A, min_w 1/2 w^T B w - a_j^T w + thresh_j pen_row(w) by FISTA.

    Parameters
    ----------
    B : ndarray of shape (q, q), symmetric positive definite
    A : ndarray of shape (n_rows, q)
    thresh : ndarray of shape (n_rows,)
        alpha * psi_j for each row.
    groups, gweights : column groups (list of index arrays) and their weights sqrt(r_S).
    l1_ratio : float in [0, 1]
    X0 : warm start (n_rows, q)

    Returns
    -------
    X : ndarray (n_rows, q), n_iter : int, converged : bool
    """
    L = float(np.linalg.eigvalsh(B)[-1])
    if L <= 0:
        raise ValueError(f"B must be positive definite; its largest eigenvalue is {L}.")
    step = 1.0 / L
    thresh = np.asarray(thresh, float)
    t1 = (step * l1_ratio * thresh)[:, None]
    tg = step * (1.0 - l1_ratio) * thresh[:, None] * gweights[None, :]
    X = np.zeros_like(A) if X0 is None else np.array(X0, dtype=float, copy=True)
    Y = X.copy()
    tk = 1.0
    scale = max(np.abs(A).max(), 1e-300) / L
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        G = Y @ B - A
        Xn = prox_sparse_group(Y - step * G, t1, tg, groups)
        tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * tk * tk))
        diff = Xn - X
        # restart when the momentum points uphill (O'Donoghue and Candes)
        if np.sum((Y - Xn) * diff) > 0:
            tn = 1.0
            Y = Xn
        else:
            Y = Xn + ((tk - 1.0) / tn) * diff
        X, tk = Xn, tn
        if np.abs(diff).max() <= tol * scale:
            converged = True
            break
    return X, it, converged


def row_alpha_max(A, psi, groups, gweights, l1_ratio, n_bisect=80):
    """Smallest alpha for which w = 0 solves every row problem (zero subgradient condition):
    for each group g of row j, ||soft(a_jg, alpha l1_ratio psi_j)||_2 <= alpha (1 - l1_ratio) psi_j w_g.
    Computed exactly (bisection on a monotone condition, vectorised over rows)."""
    A = np.asarray(A, float)
    psi = np.asarray(psi, float)
    out = 0.0
    for g, cols in enumerate(groups):
        a = A[:, cols]
        if l1_ratio >= 1:
            out = max(out, float((np.abs(a).max(axis=1) / psi).max()))
            continue
        if l1_ratio <= 0:
            out = max(out, float((np.linalg.norm(a, axis=1) / (psi * gweights[g])).max()))
            continue
        lo = np.zeros(a.shape[0])
        hi = np.linalg.norm(a, axis=1) / (psi * (1 - l1_ratio) * gweights[g]) + 1e-300
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            st = np.maximum(np.abs(a) - (mid * l1_ratio * psi)[:, None], 0.0)
            ok = np.linalg.norm(st, axis=1) <= mid * (1 - l1_ratio) * psi * gweights[g]
            hi = np.where(ok, mid, hi)
            lo = np.where(ok, lo, mid)
        out = max(out, float(hi.max()))
    return out
