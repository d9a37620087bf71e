"""JIVE (Lock et al. 2013): joint and individual variation explained, iterative algorithm."""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import Interval, check_random_state, check_Xs, validate_params
from ..structure import Structure
from ._common import MultiViewLoadingsMixin, renamed_keywords

__all__ = ["JIVE"]


def _svd_k(A, k):
    if k <= 0:
        return np.zeros((A.shape[0], 0)), np.zeros(0), np.zeros((0, A.shape[1]))
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return U[:, :k], s[:k], Vt[:k]


def _jive_iterate(Zs, r_joint, r_indiv, tol, max_iter):
    n = Zs[0].shape[0]
    A = [np.zeros_like(Z) for Z in Zs]
    prev = np.inf
    UJ = np.zeros((n, 0))
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        J_in = np.hstack([Z - a for Z, a in zip(Zs, A)])
        UJ, sJ, VJt = _svd_k(J_in, r_joint)
        J = (UJ * sJ) @ VJt
        bounds = np.cumsum([0] + [Z.shape[1] for Z in Zs])
        Js = [J[:, bounds[m]:bounds[m + 1]] for m in range(len(Zs))]
        A = []
        for Z, Jm, r in zip(Zs, Js, r_indiv):
            R = Z - Jm
            R = R - UJ @ (UJ.T @ R)  # individual scores orthogonal to the joint scores
            Ui, si, Vit = _svd_k(R, r)
            A.append((Ui * si) @ Vit)
        resid = sum(float(np.sum((Z - Jm - a) ** 2)) for Z, Jm, a in zip(Zs, Js, A))
        if abs(prev - resid) <= tol * max(1.0, resid):
            converged = True
            break
        prev = resid
    return Js, A, UJ, it, converged


def _perm_rank(X, rng, n_perm, level):
    """Permutation test for the number of components (Lock et al. 2013): leading singular values of
    X above the (1 - level) quantile of those of X with each column permuted independently."""
    perm = lambda: np.column_stack([X[rng.permutation(X.shape[0]), j] for j in range(X.shape[1])])  # noqa: E731
    s = np.linalg.svd(X, compute_uv=False)
    null = np.array([np.linalg.svd(perm(), compute_uv=False) for _ in range(n_perm)])
    thr = np.quantile(null, 1.0 - level, axis=0)
    exceed = s > thr
    return int(np.argmin(exceed)) if not exceed.all() else len(s)


class JIVE(MultiViewLoadingsMixin):
    """JIVE: each modality = joint part (shared by all) + individual part + noise (Lock et al. 2013).

    Only the global and modality-specific levels exist: partial sharing cannot be represented.

    Parameters
    ----------
    joint_rank : int
        Rank of the joint part.
    individual_ranks : int, sequence of int, or "permutation"
        Rank of each individual part (one int for all, or one per modality).
        "permutation": the permutation test of Lock et al. (2013): for each modality, after
        removing the span of the joint scores, the number of leading singular values above the
        (1 - level) quantile of those of the same matrix with each column permuted independently.
        Run once, not iterated. (A permutation test for the joint rank, with each modality's rows
        permuted separately, was tried and removed: it miscounted in 2 of 2 clear simulated cases,
        because individual components of the stacked data survive that permutation.)
    scale_views : bool, default True
        Centre and scale every modality to unit Frobenius norm before fitting (as JIVE);
        loadings are reported in the original units.
    tol, max_iter : stop on a relative change of the residual sum of squares below ``tol``.
    n_permutations : int, default 50
        Permutations of the test.
    level : float in (0, 1), default 0.05
        Level of the permutation test (was ``alpha``, which still works for one release with a
        FutureWarning: ``alpha`` means a penalty everywhere else in hcl_stats).
    random_state : None, int or Generator, default 0
        Seed of the permutations (default 0: the same data give the same ranks; until this
        release the default was None, fresh entropy).

    Attributes
    ----------
    loadings_ : ndarray of shape (p, K)
        In the HCL layout of ``structure_`` = {all modalities: joint rank, (m,): r_m}: the joint
        loadings are the right singular vectors of the joint matrix times singular value /
        sqrt(n - 1), the individual ones likewise from each individual matrix; so
        ``loadings_ @ loadings_.T`` estimates the signal covariance.
    joint_, individual_ : list of ndarray of shape (n_samples, p_m)
        The fitted matrices (data units).
    joint_rank_ : int
    individual_ranks_ : tuple of int
        The ranks used.
    structure_ : Structure
    mean_ : ndarray of shape (p,)
    n_features_ : tuple of int
    n_iter_ : int
    converged_ : bool
    """

    _parameter_constraints = {
        "scale_views": [bool],
        "tol": [Interval(float, 0, None, closed="neither")],
        "max_iter": [Interval(int, 1, None)],
        "n_permutations": [Interval(int, 1, None)],
        "level": [Interval(float, 0, 1, closed="neither")],
    }

    def __init__(self, joint_rank=1, individual_ranks=1, *, scale_views=True, tol=1e-8, max_iter=1000,
                 n_permutations=50, level=0.05, random_state=0, **deprecated):
        self.joint_rank = joint_rank
        self.individual_ranks = individual_ranks
        self.scale_views = scale_views
        self.tol = tol
        self.max_iter = max_iter
        self.n_permutations = n_permutations
        self.level = renamed_keywords("JIVE", deprecated, {"alpha": "level"}, {"level": level},
                                      {"level": 0.05})["level"]
        self.random_state = random_state

    def fit(self, Xs, y=None):
        validate_params("JIVE", self.get_params(), self._parameter_constraints)
        validate_params("JIVE", {"joint_rank": self.joint_rank},
                        {"joint_rank": [Interval(int, 0, None)]})
        Xs = check_Xs(Xs)
        M = len(Xs)
        n = Xs[0].shape[0]
        ir = self.individual_ranks
        if not (ir == "permutation" if isinstance(ir, str) else True):
            raise ValueError(f"The 'individual_ranks' parameter of JIVE must be a non-negative int, a sequence of {M} non-negative ints or 'permutation'. Got {ir!r} instead.")
        if not isinstance(ir, str):
            if isinstance(ir, numbers.Integral) and not isinstance(ir, bool) and ir >= 0:
                ir = [int(ir)] * M
            elif (isinstance(ir, (list, tuple, np.ndarray)) and len(ir) == M
                  and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in ir)):
                ir = [int(v) for v in ir]
            else:
                raise ValueError(f"The 'individual_ranks' parameter of JIVE must be a non-negative int, a sequence of {M} non-negative ints or 'permutation'. Got {self.individual_ranks!r} instead.")
        means = [X.mean(axis=0) for X in Xs]
        Zc = [X - mu for X, mu in zip(Xs, means)]
        scales = np.array([float(np.linalg.norm(Z)) or 1.0 for Z in Zc]) if self.scale_views else np.ones(M)
        Zs = [Z / s for Z, s in zip(Zc, scales)]
        rng = check_random_state(self.random_state)
        rj = self.joint_rank
        if isinstance(ir, str):
            UJ = np.linalg.svd(np.hstack(Zs), full_matrices=False)[0][:, :rj]
            ir = [_perm_rank(Z - UJ @ (UJ.T @ Z), rng, self.n_permutations, self.level) for Z in Zs]
        if rj + max(ir) > n:
            raise ValueError(f"JIVE ranks too large: joint_rank + individual rank ({rj} + {max(ir)}) must be at most n_samples = {n}.")
        for m, (Z, r) in enumerate(zip(Zs, ir)):
            if r > Z.shape[1]:
                raise ValueError(f"The 'individual_ranks' parameter of JIVE must be at most the {Z.shape[1]} features of modality {m}. Got {r} instead.")
        Js, As, UJ, n_iter, converged = _jive_iterate(Zs, rj, ir, self.tol, self.max_iter)
        ranks = {}
        if rj > 0:
            ranks[tuple(range(M))] = rj
        for m, r in enumerate(ir):
            if r > 0:
                ranks[(m,)] = ranks.get((m,), 0) + r if M > 1 else r
        if not ranks:
            raise ValueError("JIVE: joint_rank and individual_ranks are all 0; nothing to fit.")
        if M == 1 and rj > 0 and ir[0] > 0:
            raise ValueError("JIVE with one modality: give either joint_rank or individual_ranks, not both.")
        structure = Structure(ranks, M)
        n_feat = tuple(X.shape[1] for X in Xs)
        rows = structure.row_slices(n_feat)
        W = np.zeros((sum(n_feat), structure.n_factors))
        denom = np.sqrt(max(n - 1, 1))
        if rj > 0:
            Jfull = np.hstack([J * s for J, s in zip(Js, scales)])
            _, sj, Vjt = _svd_k(Jfull, rj)
            W[:, structure.column_slice(tuple(range(M)))] = (Vjt.T * sj) / denom
        for m, (a, s, r) in enumerate(zip(As, scales, ir)):
            if r > 0:
                _, si, Vit = _svd_k(a * s, r)
                W[rows[m], structure.column_slice((m,))] = (Vit.T * si) / denom
        self.loadings_ = W
        self.structure_ = structure
        self.joint_ = [J * s for J, s in zip(Js, scales)]
        self.individual_ = [a * s for a, s in zip(As, scales)]
        self.joint_rank_ = rj
        self.individual_ranks_ = tuple(ir)
        self.mean_ = np.concatenate(means)
        self.n_features_ = n_feat
        self.n_samples_ = n
        self.n_iter_ = n_iter
        self.converged_ = converged
        return self
