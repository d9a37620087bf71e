"""Sparsity-seeking rotations of the loadings, one per subset (an identification choice).

The model identifies W only up to one orthogonal r_S x r_S rotation per subset S (docs/method.md,
section 3): W and W diag(R_S) give the same covariance. A sparse estimate is not rotation
invariant, so which member of this orbit the penalised fit starts from matters: the elementwise
penalty pulls an arbitrarily rotated dense solution towards zeros it does not have. Before the
penalised fit we therefore pick, in each subset's orbit, the rotation that makes the subset's
columns as "simple" as possible by the orthomax criterion

    Q(L) = sum_jk L_jk^4 - (gamma / p_S) sum_k (sum_j L_jk^2)^2,   L = W[rows of S, cols of S] R,

maximised over orthogonal R (``gamma = 1``: varimax, ``gamma = 0``: quartimax). Rows are not
normalised (a row-normalised "Kaiser" varimax would up-weight the rows carrying little signal,
which are mostly noise). The row norms, hence the row-group penalty of :mod:`.sparse`, do not
depend on the rotation; only the elementwise penalty does.

The maximisation is Kaiser's (1958): sweeps of planar rotations of each pair of columns, each by
the angle that maximises Q in that plane (closed form: 4 theta = atan2(2 sum u v - 2 gamma A B / p,
sum u^2 - sum v^2 - gamma (A^2 - B^2) / p) with u = x^2 - y^2, v = 2 x y, A = sum u, B = sum v),
so Q never decreases; it stops when no pair moves by more than ``tol`` radians in a sweep.
"""
from __future__ import annotations

import numpy as np

__all__ = ["orthomax", "rotate_subsets", "ROTATIONS"]

ROTATIONS = ("varimax", "quartimax", None)
_GAMMA = {"varimax": 1.0, "quartimax": 0.0}


def orthomax(L, gamma=1.0, *, max_iter=1000, tol=1e-12):
    """Orthomax rotation of one (p, r) loading block.

    Parameters
    ----------
    L : ndarray of shape (p, r)
    gamma : float
        1: varimax, 0: quartimax.
    max_iter, tol : at most ``max_iter`` sweeps over the pairs of columns; stop when no planar
        rotation of a sweep exceeds ``tol`` radians.

    Returns
    -------
    R : ndarray of shape (r, r), orthogonal, such that ``L @ R`` maximises the criterion.
    n_iter : int, sweeps used
    """
    L = np.asarray(L, dtype=float)
    p, r = L.shape
    R = np.eye(r)
    if r < 2 or p == 0 or not np.any(L):
        return R, 0
    Lr = L.copy()
    it = 0
    for it in range(1, max_iter + 1):
        largest = 0.0
        for a in range(r - 1):
            for b in range(a + 1, r):
                x, y = Lr[:, a], Lr[:, b]
                u, v = x * x - y * y, 2.0 * x * y
                A, B = u.sum(), v.sum()
                num = 2.0 * np.dot(u, v) - 2.0 * gamma * A * B / p
                den = np.dot(u, u) - np.dot(v, v) - gamma * (A * A - B * B) / p
                theta = 0.25 * np.arctan2(num, den)
                if abs(theta) <= tol:
                    continue
                largest = max(largest, abs(theta))
                c, sn = np.cos(theta), np.sin(theta)
                G = np.array([[c, -sn], [sn, c]])
                Lr[:, [a, b]] = Lr[:, [a, b]] @ G
                R[:, [a, b]] = R[:, [a, b]] @ G
        if largest <= tol:
            break
    return R, it


def rotate_subsets(W, structure, n_features, method="varimax"):
    """Rotate each subset's block columns of W (p, K) towards a sparse basis.

    Parameters
    ----------
    W : ndarray of shape (p, K), zero off ``structure.support_mask(n_features)``
    structure : Structure
    n_features : sequence of int
    method : {"varimax", "quartimax", None}
        None returns W unchanged.

    Returns
    -------
    W_rot : ndarray of shape (p, K), with ``W_rot @ W_rot.T == W @ W.T`` (up to rounding) and the
        same zero pattern off the structure's support.
    rotations : dict subset -> (r_S, r_S) orthogonal matrix (W_rot[:, cols_S] = W[:, cols_S] R_S).

    Notes
    -----
    Only the columns of one subset are mixed with each other, which is exactly the rotation the
    model leaves unidentified; every Gram block W_{m,S} W_{m,S}^T is unchanged.
    """
    if method not in ROTATIONS:
        raise ValueError(f"The 'rotation' parameter must be one of {ROTATIONS}. Got {method!r} instead.")
    W = np.array(W, dtype=float, copy=True)
    rots = {}
    if method is None:
        return W, rots
    for s, cs in structure.column_slices.items():
        idx = structure.feature_rows(s, n_features)
        R, _ = orthomax(W[np.ix_(idx, np.arange(cs.start, cs.stop))], _GAMMA[method])
        W[:, cs] = W[:, cs] @ R
        rots[s] = R
    return W, rots
