"""Alternating exact block updates ("als") on the denoised covariance.

Objective (diagonal included)::

    f(W) = 1/2 || W W^T - T ||_F^2,   W zero off structure.support_mask,

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
R_S = T[S, S] - O O^T, O = W[S, others] (Eckart-Young on the PSD cone: keep the top r_S
eigenpairs, clipping negative eigenvalues at zero). The residual is never formed: R_S is applied
as X -> T[S, S] X - O (O^T X) (products with views of T, one per pair of modalities in S, and
p_S x K thin products), and its top r_S eigenpairs are computed by a block LOBPCG iteration
(Knyazev 2001) warm-started from the current block, with Rayleigh-Ritz on span[X, residual,
previous direction]. Because the first Rayleigh-Ritz space contains the current block and each
later one contains the previous Ritz vectors, every block update lowers f (or keeps it) even
when the inner iteration stops early. Called alone, it stops when the Ritz residuals are below
``_INNER_TOL`` times the largest Ritz value (the exact minimiser up to that tolerance, at most
``_INNER_MAX`` iterations). Inside the sweeps it runs at most ``_SWEEP_INNER_MAX`` iterations
and carries ``_N_GUARD`` extra Ritz vectors per block from sweep to sweep (they widen the
eigenvalue gap that governs convergence when the top eigenvalues are nearly tied): an inexact
but monotone block minimisation, exact at a fixed point of the sweeps (zero Ritz residual is a
zero block gradient, -2 Res diag(theta)^(1/2)). Each LOBPCG iteration costs one product of
T[S, S] with a thin matrix, except the first: T[S, S] times the current block is carried along with W
(the sweeps, the extrapolations and the polish keep T W on the support up to date, as it is linear in W)
and T[S, S] times the guard vectors comes from the previous sweep, so the start costs no product with T.
A sweep reads T about ``(_SWEEP_INNER_MAX - 1) x sum_S (p_S / p)^2`` times, which bounds
its cost from below (memory bandwidth). Small blocks (p_S <= ``_DENSE_MAX``) use a dense partial
eigendecomposition. For a low-rank target T = F F^T the residual has rank <= q + K and the update
is computed exactly from a thin QR (O(p_S (q + K)^2)).

Each updated block is rotated (orthogonal Procrustes) onto the block it replaces. This changes
neither W W^T nor f (the model is identified up to one rotation per subset), but makes a sweep a
continuous map of W, which the acceleration needs.

Acceleration (``accelerate="squarem"``, default): SQUAREM (Varadhan and Roland 2008, scheme S3)
on the sweep map W -> sweep(W) in this gauge, with a monotone safeguard: from W0, two plain sweeps
give W1, W2; the extrapolation W0 - 2 a r + a^2 v (r = W1 - W0, v = W2 - 2 W1 + W0, ``a = -||r|| / ||v||``)
is kept only if its objective is at most f(W2) (else a is halved towards -1, which gives W2), and
is followed by one stabilising sweep. The objective of an extrapolated point costs only K x K work,
because T W on the support is linear in W and is carried along from the block updates (so a sweep
needs no separate product with T to evaluate f and the gradient).

Sparse loadings (``alpha > 0``): the objective gets the sparse-group penalty of :mod:`.sparse`,
weighted scale-free (see :func:`fit_als`); each block update is then ``_PROX_STEPS``
proximal-gradient steps with backtracking on the block (the products are the same matrix-free
X -> T[S, S] X - O (O^T X)), so the penalised objective never increases; sweeps are plain (no
extrapolation, no Procrustes gauge: the penalty is not rotation invariant).

Polish (``polish=True``, default): once the sweeps slow down -- an accepted step decreases f by at least
``_POLISH_RATE`` times the decrease of the step before (linear convergence at rate >= 1/2) -- the
iteration switches to truncated Newton steps on the same f: conjugate gradients on H D = -grad f
(``H D = 2 P_mask(D W^T W + W D^T W + W W^T D - T D)``, one product of T with a p x K matrix per CG
iteration, at most ``_CG_MAX``, stopped at a residual ``_CG_ETA`` times the gradient, or at a direction of
non-positive curvature, which is then a candidate direction itself), then an exact line search: along a
direction D, f(W + t D) - f(W) is a quartic polynomial in t whose coefficients come from K x K products
and T D, so its global minimiser is found from the roots of a cubic. A step that does not decrease f is
rejected and the sweeps resume; the objective never increases. The rotational invariance per subset
makes H singular along W_S -> W_S A (A skew), but the gradient is orthogonal to those directions, so CG
never leaves their complement. The sweeps (alternating block minimisation) do the global work from the
spectral start; the polish removes the slow linear tail along the nearly flat directions.

Stopping (one criterion, scale-free):
``stop_crit = ||P_mask(2 (W W^T - T) W)||_F / (2 ||T||_F ||W||_F)`` (invariant to scaling T by c and W by sqrt(c)); with a penalty, the same scaling of the proximal-gradient
mapping. The fit stops, converged, when ``stop_crit <= tol``, confirmed at the returned loadings with a
fresh product with T, so ``converged == (stop_crit <= tol)`` always. History: "objective" and "kkt" (the
criterion) per accepted step; ``max_iter`` counts sweeps plus Newton steps.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg as sla

from . import EstimationResult, register_method
from .init import spectral_init
from .linalg import sym, top_eigh
from .noise import bottom_eigenvalue_noise
from .lowrank import spectral_init_lowrank
from .shrinkage import noise_and_shrunk_factor
from .sparse import column_groups, penalty_value, prox_sparse_group

__all__ = ["fit_als", "als_refine", "als_setup", "alpha_max_als"]

_INNER_TOL = 1e-9   # Ritz residual / largest Ritz value at which a block update counts as exact
_INNER_MAX = 300    # LOBPCG iterations per exact block update at most
_SWEEP_INNER_MAX = 2   # inside the sweeps: at most this many LOBPCG iterations per block update
_SWEEP_REDUCE = 0.1    # ... or once the warm-start Ritz residual is reduced by this factor (never before the 2nd iteration)
_N_GUARD = 3          # guard Ritz vectors per block, kept from sweep to sweep
_DENSE_MAX = 96     # blocks with at most this many rows use a dense eigendecomposition
_SQUAREM_BACKTRACK = 6  # halvings of the SQUAREM step towards -1 before falling back to W2
_ANDERSON_M = 5         # Anderson memory (previous sweeps)
_PROX_STEPS = 3         # proximal-gradient steps per block update with a penalty
_POLISH_RATE = 0.5      # polish once an accepted step decreases f by at least this fraction of the previous decrease
_CG_MAX = 50            # conjugate-gradient iterations per Newton step at most
_CG_ETA = 0.1           # ... stopping once the CG residual is at most this fraction of the gradient
ACCELERATIONS = ("anderson", "squarem", None)


def _runs(idx):
    """Contiguous runs of a sorted index array as slices (into the full rows) and their positions
    within ``idx``."""
    idx = np.asarray(idx)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [idx.size]])
    return [(slice(int(idx[a]), int(idx[b - 1]) + 1), slice(int(a), int(b))) for a, b in zip(starts, stops)]


class _Target:
    """T as a dense matrix minus ``shift`` times the identity (the dense matrix is not copied),
    or as a factor F (T = F F^T)."""

    def __init__(self, dense=None, factor=None, shift=0.0):
        self.dense, self.factor, self.shift = dense, factor, float(shift)
        if dense is not None:
            p = dense.shape[0]
            self.sq = float(np.sum(dense * dense) - 2.0 * self.shift * np.trace(dense) + p * self.shift ** 2)
        else:
            FtF = factor.T @ factor
            self.sq = float(np.sum(FtF * FtF))

    def block_times(self, runs, X):
        """T[idx, idx] @ X for the rows ``idx`` given by their contiguous ``runs`` (see :func:`_runs`)."""
        if self.dense is not None:
            out = np.empty_like(X)
            for ra, pa in runs:
                acc = None
                for rb, pb in runs:
                    prod = self.dense[ra, rb] @ X[pb]
                    acc = prod if acc is None else acc + prod
                out[pa] = acc
            if self.shift:
                out -= self.shift * X
            return out
        Fi = np.vstack([self.factor[ra] for ra, _ in runs]) if len(runs) > 1 else self.factor[runs[0][0]]
        return Fi @ (Fi.T @ X)

    def times(self, W):
        """T @ W (dense products; used for checks, not inside the sweeps)."""
        if self.dense is not None:
            return self.dense @ W - self.shift * W
        return self.factor @ (self.factor.T @ W)


def _orth(Z, rel=1e-10, return_map=False):
    """Orthonormal basis of the columns of Z (directions with relative singular value <= rel dropped).
    With ``return_map`` also the matrix C with basis = Z @ C (to carry products A Z along)."""
    if Z.shape[1] == 0:
        return (Z, np.zeros((0, 0))) if return_map else Z
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    keep = s > rel * max(s[0], 1e-300)
    if return_map:
        return U[:, keep], Vt[keep].T / s[keep]
    return U[:, keep]


def _lobpcg_top(apply, X0, r, tol=_INNER_TOL, max_iter=_INNER_MAX, reduce=0.0, n_guard=0, guard=None, AX0=None):
    """Top-r eigenpairs (theta desc, X, apply(X)) of the symmetric operator ``apply`` by block
    LOBPCG from the start X0 (whose span is in the first Rayleigh-Ritz space). Stops when the
    largest Ritz residual is at most ``tol`` times the largest |Ritz value|, or at most ``reduce``
    times the residual after the first Rayleigh-Ritz step, or after ``max_iter`` iterations.
    ``n_guard`` further Ritz pairs are iterated along (and returned after the top r) to widen the
    gap that governs the convergence of the top r; ``guard``: their start vectors. ``AX0``, optional:
    apply([X0, guard]) when already known (then the start costs no product with the operator)."""
    n = X0.shape[0]
    k_all = min(r + n_guard, n)
    Z0 = X0 if guard is None else np.hstack([X0, guard])
    Q, C = _orth(Z0, return_map=True)
    AQ = None if AX0 is None else AX0 @ C
    if Q.shape[1] < k_all:  # pad a rank-deficient start with fixed directions
        pad = np.random.default_rng(0).standard_normal((n, k_all - Q.shape[1]))
        Q = _orth(np.hstack([Q, pad - Q @ (Q.T @ pad)]))
        AQ = None
    if AQ is None:
        AQ = apply(Q)
    P = AP = None
    theta = X = AX = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        H = sym(Q.T @ AQ)
        G = sym(Q.T @ Q)
        w, U = sla.eigh(H, G)
        order = np.argsort(-w, kind="stable")[:k_all]
        theta, Ur = w[order], U[:, order]
        X_new, AX_new = Q @ Ur, AQ @ Ur
        Res = AX_new - X_new * theta
        if X is not None:  # LOBPCG direction: the part of the new Ritz vectors outside the old X
            k = X.shape[1]
            P, AP = Q[:, k:] @ Ur[k:], AQ[:, k:] @ Ur[k:]
        X, AX = X_new, AX_new
        res = float(np.linalg.norm(Res[:, :r], axis=0).max())
        if n_iter == 1:
            res0 = res
        if res <= max(tol * max(float(np.abs(theta[:r]).max()), 1e-300), reduce * res0) or n_iter == max_iter:
            break
        Z = Res if P is None else np.hstack([Res, P])
        Z = Z - X @ (X.T @ Z)
        Z = Z - X @ (X.T @ Z)
        Z = _orth(Z, 1e-8)
        if Z.shape[1] == 0:
            break
        Q = np.hstack([X, Z])
        AQ = np.hstack([AX, apply(Z)])
    return theta, X, AX, n_iter


def _block_update(W, target, idx, cs, others, r, *, runs=None, return_tw=False, inner_tol=_INNER_TOL,
                  inner_max=_INNER_MAX, inner_reduce=0.0, n_guard=_N_GUARD, guard=None, t_block=None):
    """The exact minimiser of f over the block W[idx, cs] with the other columns fixed (see the
    module docstring), rotated onto the current block. With ``return_tw`` also T[idx, idx] @ block,
    the number of inner iterations and the guard vectors with their products, ``(G, T[idx, idx] @ G)``.
    ``t_block``: T[idx, idx] @ W[idx, cs] when known (with ``guard = (G, T[idx, idx] @ G)`` the
    inner iteration then starts without a product with T)."""
    cols = np.arange(cs.start, cs.stop)
    Wi = W[idx]
    O = Wi[:, others]
    old = Wi[:, cols]
    p_S = len(idx)
    n_inner = 0
    new_guard = None
    if target.dense is not None:
        runs = _runs(idx) if runs is None else runs
        if p_S <= _DENSE_MAX:
            R = target.dense[np.ix_(idx, idx)] - target.shift * np.eye(p_S)
            if O.shape[1]:
                R = R - O @ O.T
            w, V = top_eigh(sym(R), r)
            AV = None
        else:
            def apply(X):
                return target.block_times(runs, X) - O @ (O.T @ X)

            G, TG = (None, None) if guard is None else guard
            AX0 = None
            if t_block is not None and (G is None) == (TG is None):
                X0 = old if G is None else np.hstack([old, G])
                TX0 = t_block if G is None else np.hstack([t_block, TG])
                AX0 = TX0 - O @ (O.T @ X0)
            w, V, AV, n_inner = _lobpcg_top(apply, old, r, tol=inner_tol, max_iter=inner_max, reduce=inner_reduce,
                                            n_guard=n_guard, guard=G, AX0=AX0)
            if V.shape[1] > r:  # T[S, S] G = R_S G + O O^T G (carried to the next sweep)
                Gn = V[:, r:]
                new_guard = (Gn, AV[:, r:] + O @ (O.T @ Gn))
            w, V, AV = w[:r], V[:, :r], AV[:, :r]
    else:
        F = target.factor[idx]
        Z = np.hstack([F, O])
        Q, Rz = np.linalg.qr(Z)
        D = np.concatenate([np.ones(F.shape[1]), -np.ones(O.shape[1])])
        small = sym((Rz * D) @ Rz.T)
        w, U = top_eigh(small, r)
        V = Q @ U
        AV = None
    if V.shape[1] < r:
        V = np.hstack([V, np.zeros((p_S, r - V.shape[1]))])
        w = np.concatenate([w, np.zeros(r - w.size)])
        if AV is not None:
            AV = np.hstack([AV, np.zeros((p_S, r - AV.shape[1]))])
    sq = np.sqrt(np.clip(w, 0.0, None))
    Wb = V * sq
    # Procrustes: rotate onto the current block (W W^T and f unchanged)
    M = Wb.T @ old
    if np.any(M):
        Pu, _, Pvt = np.linalg.svd(M)
        Rot = Pu @ Pvt
    else:
        Rot = np.eye(r)
    Wb = Wb @ Rot
    if not return_tw:
        return Wb
    if AV is not None:  # T_SS V = R_S V + O O^T V, from the inner iteration's products
        TV = AV + O @ (O.T @ V)
        TWb = (TV * sq) @ Rot
    else:
        TWb = target.block_times(_runs(idx), Wb) if target.dense is not None else F @ (F.T @ Wb)
    return Wb, TWb, n_inner, new_guard


class _Problem:
    """The block plan of a structure and the objective / gradient from (W, T W on the support)."""

    def __init__(self, target, structure, n_features, alpha=0.0, l1_ratio=1.0, support=None):
        self.target = target
        self.structure, self.n_features = structure, tuple(n_features)
        self.mask = structure.support_mask(n_features)
        # a fixed zero pattern (the relaxed refit of a sparse fit): blocks take projected gradient steps
        self.support = None if support is None else np.asarray(support, bool) & self.mask
        if self.support is not None:
            self.mask = self.support
        rows = structure.row_slices(n_features)
        K = structure.n_factors
        self.plan = []
        for s, cs in structure.column_slices.items():
            idx = structure.feature_rows(s, n_features)
            others = np.setdiff1d(np.arange(K), np.arange(cs.start, cs.stop))
            self.plan.append((cs, idx, others, structure.rank(s), _runs(idx)))
        self.pairs = []   # (rows a, rows b, columns of the subsets containing modalities a and b) for tfull
        for a in range(structure.n_modalities):
            for b in range(structure.n_modalities):
                cols = [np.arange(cs.start, cs.stop) for s, cs in structure.column_slices.items() if a in s and b in s]
                if cols:
                    self.pairs.append((rows[a], rows[b], np.concatenate(cols)))
        self.norm_T = np.sqrt(max(target.sq, 0.0))
        self.n_inner = 0
        self.inner_tol, self.inner_max, self.inner_reduce = _INNER_TOL, _SWEEP_INNER_MAX, _SWEEP_REDUCE
        self.n_guard, self.guards = _N_GUARD, {}
        self.carry = True   # start each block's inner iteration from the carried T products (no product with T)
        # penalty weight in the units of f (scale-free alpha, see fit_als) and the reference step
        self.lam = float(alpha) * self.norm_T ** 1.5
        self.l1_ratio = float(l1_ratio)
        self.t0 = 1.0 / (2.0 * max(self.norm_T, 1e-300))
        self.steps = {}

    def tfull(self, D):
        """(T D) on the support for D zero off it, i.e. T[idx_S, idx_S] D[idx_S, cs] for every subset S at once:
        one BLAS-3 product per pair of modalities (a, b), T[a, b] times the rows b of the columns of the subsets
        containing both (T is read once; 2.4 times fewer flops than T D at the paper setting)."""
        if self.target.dense is None:
            return self.target.times(D) * self.mask
        out = np.zeros_like(D)
        dense = self.target.dense
        for ra, rb, cols in self.pairs:
            out[ra, cols] += dense[ra, rb] @ D[rb, cols]
        if self.target.shift:
            out -= self.target.shift * D
        return out * self.mask

    def tw(self, W):
        """T W restricted to the support (one block product per subset)."""
        TW = np.zeros_like(W)
        for cs, idx, _, _, runs in self.plan:
            if self.target.dense is not None:
                TW[idx, cs] = self.target.block_times(runs, W[idx, cs])
            else:
                F = self.target.factor[idx]
                TW[idx, cs] = F @ (F.T @ W[idx, cs])
        return TW

    def objective(self, W, TW):
        WtW = W.T @ W
        f = 0.5 * (np.sum(WtW * WtW) - 2.0 * np.sum(W * TW) + self.target.sq)
        f = max(float(f), 0.0)
        if self.lam > 0:
            f += self.lam * penalty_value(W, self.structure, self.n_features, self.l1_ratio)
        return f, WtW

    def _prox(self, X, t, cols=None):
        """Prox of t * lam * pen on the rows of X (columns ``cols`` of the loadings; all by default)."""
        cols = np.arange(X.shape[1]) if cols is None else cols
        groups, gw = column_groups(self.structure, cols)
        return prox_sparse_group(X, t * self.lam * self.l1_ratio, t * self.lam * (1.0 - self.l1_ratio) * gw, groups)

    def kkt(self, W, TW, WtW):
        """Scaled norm of the (proximal) gradient mapping: ||P_mask(grad f)|| / (2 ||T|| ||W||) without a
        penalty; with one, ||W - prox_t0(W - t0 grad f)|| / t0 on the same scale (zero iff stationary)."""
        G = 2.0 * (W @ WtW - TW) * self.mask
        if self.lam > 0:
            G = (W - self._prox(W - self.t0 * G, self.t0) * self.mask) / self.t0
        denom = 2.0 * max(self.norm_T, 1e-300) * max(np.linalg.norm(W), 1e-300)
        return float(np.linalg.norm(G) / denom)

    def _prox_block(self, k, W, idx, cs, others, runs):
        """Proximal-gradient steps with backtracking on block k of the penalised objective (monotone);
        returns the block and T[idx, idx] @ block."""
        cols = np.arange(cs.start, cs.stop)
        Wi = W[idx]
        O = Wi[:, others]
        V = Wi[:, cols]
        if self.target.dense is not None:
            def apply(X):
                return self.target.block_times(runs, X) - O @ (O.T @ X)
        else:
            Fi = self.target.factor[idx]

            def apply(X):
                return Fi @ (Fi.T @ X) - O @ (O.T @ X)

        groups, gw = column_groups(self.structure, cols)
        keep = None if self.support is None else self.support[np.ix_(idx, cols)]

        def pen(X):
            val = self.l1_ratio * np.abs(X).sum()
            if self.l1_ratio < 1:
                val += (1 - self.l1_ratio) * sum(w * np.linalg.norm(X[:, g], axis=1).sum() for g, w in zip(groups, gw))
            return self.lam * val

        def fs(X, RX):
            XtX = X.T @ X
            return 0.5 * np.sum(XtX * XtX) - np.sum(X * RX)

        RV = apply(V)
        fv = fs(V, RV)
        t = self.steps.get(k, self.t0)
        for _ in range(_PROX_STEPS):
            grad = 2.0 * (V @ (V.T @ V) - RV)
            for _ in range(60):
                Vn = prox_sparse_group(V - t * grad, t * self.lam * self.l1_ratio,
                                       t * self.lam * (1.0 - self.l1_ratio) * gw, groups)
                if keep is not None:
                    Vn = Vn * keep
                D = Vn - V
                RVn = apply(Vn)
                fn = fs(Vn, RVn)
                if fn <= fv + np.sum(grad * D) + np.sum(D * D) / (2.0 * t) + 1e-14 * abs(fv):
                    break
                t *= 0.5
            if fn + pen(Vn) > fv + pen(V) or not np.any(D):  # no decrease possible: keep V
                break
            V, RV, fv = Vn, RVn, fn
            t = min(2.0 * t, 1e6 * self.t0)
        self.steps[k] = t
        return V, RV + O @ (O.T @ V)

    def sweep(self, W, TW):
        """One pass of exact block updates over the subsets (new arrays; inputs unchanged)."""
        W = W.copy()
        TW = TW.copy()
        for k, (cs, idx, others, r, runs) in enumerate(self.plan):
            if self.lam > 0 or self.support is not None:
                W[idx, cs], TW[idx, cs] = self._prox_block(k, W, idx, cs, others, runs)
                continue
            Wb, TWb, n_inner, self.guards[k] = _block_update(
                W, self.target, idx, cs, others, r, runs=runs, return_tw=True, inner_tol=self.inner_tol,
                inner_max=self.inner_max, inner_reduce=self.inner_reduce, n_guard=self.n_guard,
                guard=self.guards.get(k), t_block=TW[idx, cs] if self.carry else None)
            self.n_inner += n_inner
            W[idx, cs] = Wb
            TW[idx, cs] = TWb
        return W, TW


def _quartic_step(c1, c2, c3, c4):
    """The global minimiser t of q(t) = c1 t + c2 t^2 + c3 t^3 + c4 t^4 (c4 > 0) and q(t)."""
    roots = np.roots([4.0 * c4, 3.0 * c3, 2.0 * c2, c1])
    scale = max(float(np.abs(roots).max(initial=0.0)), 1e-300)
    roots = roots[np.abs(roots.imag) <= 1e-8 * scale].real
    if roots.size == 0:  # rounding left no real root: the real part of the nearest one
        roots = np.roots([4.0 * c4, 3.0 * c3, 2.0 * c2, c1]).real
    vals = c1 * roots + c2 * roots ** 2 + c3 * roots ** 3 + c4 * roots ** 4
    i = int(np.argmin(vals))
    return float(roots[i]), float(vals[i])


def _newton_step(prob, W, TW, cg_max=_CG_MAX, eta=_CG_ETA):
    """One truncated Newton-CG step on f (the polish, see the module docstring) with an exact line
    search: f(W + t D) - f(W) is the quartic c1 t + c2 t^2 + c3 t^3 + c4 t^4, whose coefficients come
    from K x K products and T D (carried along the conjugate-gradient iterations), so the step
    minimises f along D exactly. Returns (W_new, TW_new, decrease of f (<= 0), CG iterations); the
    decrease is 0 and W unchanged when no descent was found."""
    mask = prob.mask
    WtW = W.T @ W
    g = 2.0 * (W @ WtW - TW) * mask
    gn = float(np.linalg.norm(g))
    D = np.zeros_like(W)
    TD = np.zeros_like(W)
    res = -g
    P = res.copy()
    rr = gn * gn
    cands = []
    n_cg = 0
    for _ in range(cg_max):
        TP = prob.tfull(P)
        n_cg += 1
        HP = 2.0 * (P @ WtW + W @ (P.T @ W) + W @ (W.T @ P) - TP) * mask
        pHp = float(np.sum(P * HP))
        if pHp <= 1e-14 * float(np.sum(P * P)) * prob.norm_T:  # non-positive curvature: try P itself
            sgn = -1.0 if np.sum(g * P) > 0 else 1.0
            cands.append((sgn * P, sgn * TP))
            break
        a = rr / pHp
        D += a * P
        TD += a * TP
        res = res - a * HP
        rr_new = float(np.sum(res * res))
        if np.sqrt(rr_new) <= eta * gn:
            break
        P = res + (rr_new / rr) * P
        rr = rr_new
    if np.any(D):
        cands.append((D, TD))
    best = (0.0, 0.0, None, None)
    for Dc, TDc in cands:
        scale = float(np.linalg.norm(Dc))
        if not scale > 0:
            continue
        Dc, TDc = Dc / scale, TDc / scale   # unit direction: well-scaled cubic for the line search
        WtD, DtD = W.T @ Dc, Dc.T @ Dc
        c1 = float(np.sum(g * Dc))
        c2 = float(np.sum(WtW * DtD) + np.sum(WtD * WtD.T) + np.sum(WtD * WtD) - np.sum(Dc * TDc))
        c3 = 2.0 * float(np.sum(WtD * DtD))
        c4 = 0.5 * float(np.sum(DtD * DtD))
        if not (c4 > 0 and np.isfinite([c1, c2, c3, c4]).all()):
            continue
        t, dec = _quartic_step(c1, c2, c3, c4)
        if dec < best[1]:
            best = (t, dec, Dc, TDc)
    t, dec, Dc, TDc = best
    if Dc is None:
        return W, TW, 0.0, n_cg
    return W + t * Dc, TW + t * TDc, dec, n_cg


def _check_tol(name, value, where):
    if not (np.isscalar(value) and np.isreal(value) and not isinstance(value, bool) and value >= 0):
        raise ValueError(f"The '{name}' parameter of {where} must be a float in [0, inf). Got {value!r} instead.")


def _resolve_tol(tol, gtol, where, stacklevel):
    """The deprecated ``gtol`` (FutureWarning: use ``tol``) given: it is the tolerance."""
    if gtol is not None:
        warnings.warn(f"The 'gtol' parameter of {where} is deprecated and will be removed in a future release; use "
                      f"'tol' (now the one tolerance, on the scaled projected gradient stop_crit). Using tol={gtol!r}.",
                      FutureWarning, stacklevel=stacklevel + 1)
        tol = gtol
    _check_tol("tol", tol, where)
    return float(tol)


def als_refine(W0, target, structure, n_features, *, max_iter=500, tol=1e-6, accelerate="squarem", polish=True,
               alpha=0.0, l1_ratio=1.0, support=None, gtol=None):
    """Block updates over the subsets, SQUAREM-accelerated, then the Newton polish (see the module
    docstring). With ``alpha > 0`` the blocks take proximal-gradient steps on the penalised objective
    (plain sweeps, no extrapolation, no polish; see :func:`fit_als`).

    ``support`` (p, K) bool, optional: minimise the unpenalised f with the loadings outside
    ``support`` (within the structure's mask) held at zero (the relaxed refit of a sparse fit; only
    with ``alpha=0``): projected-gradient block steps with backtracking (monotone), plain sweeps.

    ``tol``: converged means stop_crit <= tol, stop_crit the scaled (proximal) gradient at the returned
    W (computed from a fresh product with T). ``max_iter`` bounds sweeps plus Newton steps. ``gtol``:
    deprecated alias of ``tol`` (FutureWarning).

    Returns (W, n_iter, converged, history); history has "objective" and "kkt" per accepted step,
    "stop_crit", "tol", "n_sweeps", "n_newton", "n_cg", "polish_start" (the accepted step after which
    the polish started, or None), "n_inner" (LOBPCG iterations in all) and "n_extrapolated" (accepted
    SQUAREM / Anderson steps).
    """
    tol = _resolve_tol(tol, gtol, "als_refine", 2)
    if accelerate not in ACCELERATIONS:
        raise ValueError(f"The 'accelerate' parameter of als_refine must be one of {ACCELERATIONS}. Got {accelerate!r} instead.")
    if not isinstance(polish, (bool, np.bool_)):
        raise ValueError(f"The 'polish' parameter of als_refine must be a bool. Got {polish!r} instead.")
    if not (isinstance(max_iter, (int, np.integer)) and not isinstance(max_iter, bool) and max_iter >= 0):
        raise ValueError(f"The 'max_iter' parameter of als_refine must be an int >= 0. Got {max_iter!r} instead.")
    if not (np.isscalar(alpha) and np.isreal(alpha) and alpha >= 0):
        raise ValueError(f"The 'alpha' parameter of als_refine must be a float in [0, inf). Got {alpha!r} instead.")
    if not (np.isscalar(l1_ratio) and np.isreal(l1_ratio) and 0 <= l1_ratio <= 1):
        raise ValueError(f"The 'l1_ratio' parameter of als_refine must be a float in [0, 1]. Got {l1_ratio!r} instead.")
    if support is not None:
        if alpha > 0:
            raise ValueError(f"als_refine: support (a fixed zero pattern) is only used with alpha=0. Got alpha={alpha!r}.")
        support = np.asarray(support)
        p, K = structure.support_mask(n_features).shape
        if support.shape != (p, K):
            raise ValueError(f"The 'support' parameter of als_refine must be a (p, K) = ({p}, {K}) boolean array. Got shape {support.shape} instead.")
    if alpha > 0 or support is not None:
        accelerate, polish = None, False
    prob = _Problem(target, structure, n_features, alpha=alpha, l1_ratio=l1_ratio, support=support)
    W = np.array(W0, dtype=float) * prob.mask
    TW = prob.tw(W)
    f, WtW = prob.objective(W, TW)
    hist_f, hist_k = [f], [prob.kkt(W, TW, WtW)]
    converged = hist_k[-1] <= tol
    n_iter = n_newton = n_cg = n_extra = 0
    polishing, polish_start = False, None
    dF, dG, dTG, prev = [], [], [], None   # Anderson memory
    while not converged and n_iter < max_iter:
        if polishing:
            Wn, TWn, dec, k_cg = _newton_step(prob, W, TW)
            n_iter += 1
            n_newton += 1
            n_cg += k_cg
            if not dec < 0:  # no descent from the Newton model: back to the sweeps
                polishing = False
                continue
        else:
            W1, TW1 = prob.sweep(W, TW)
            n_iter += 1
            Wn, TWn = W1, TW1
            if accelerate == "anderson":
                Fk = W1 - W
                if prev is not None:
                    dF.append(Fk - prev[0])
                    dG.append(W1 - prev[1])
                    dTG.append(TW1 - prev[2])
                    if len(dF) > _ANDERSON_M:
                        del dF[0], dG[0], dTG[0]
                prev = (Fk, W1, TW1)
                if dF:
                    A = np.stack([d.ravel() for d in dF], axis=1)
                    M = A.T @ A
                    M[np.diag_indices_from(M)] += 1e-12 * np.trace(M) + 1e-300
                    gam = np.linalg.solve(M, A.T @ Fk.ravel())
                    Wa = W1 - sum(g * d for g, d in zip(gam, dG))
                    TWa = TW1 - sum(g * d for g, d in zip(gam, dTG))
                    fa, _ = prob.objective(Wa, TWa)
                    f1, _ = prob.objective(W1, TW1)
                    if fa <= f1:
                        Wn, TWn = Wa, TWa
                        n_extra += 1
                    else:  # safeguard: keep the plain sweep and restart the memory
                        dF, dG, dTG = [], [], []
            if accelerate == "squarem" and n_iter < max_iter:
                W2, TW2 = prob.sweep(W1, TW1)
                n_iter += 1
                Wn, TWn = W2, TW2
                f2, _ = prob.objective(W2, TW2)
                rW, rT = W1 - W, TW1 - TW
                vW, vT = W2 - 2.0 * W1 + W, TW2 - 2.0 * TW1 + TW
                nr, nv = np.linalg.norm(rW), np.linalg.norm(vW)
                if nr > 0 and nv > 0 and n_iter < max_iter:
                    a = -nr / nv
                    for _ in range(_SQUAREM_BACKTRACK):
                        if a > -1.0:
                            break
                        We = W - 2.0 * a * rW + a * a * vW
                        TWe = TW - 2.0 * a * rT + a * a * vT
                        fe, _ = prob.objective(We, TWe)
                        if fe <= f2:
                            Wn, TWn = prob.sweep(We, TWe)  # stabilising sweep
                            n_iter += 1
                            n_extra += 1
                            break
                        a = 0.5 * (a - 1.0)
        f_new, WtW = prob.objective(Wn, TWn)
        kkt = prob.kkt(Wn, TWn, WtW)
        W, TW = Wn, TWn
        hist_f.append(f_new)
        hist_k.append(kkt)
        if kkt <= tol:  # confirm at the returned point with a fresh product with T
            TW = prob.tw(W)
            f_new, WtW = prob.objective(W, TW)
            hist_k[-1] = kkt = prob.kkt(W, TW, WtW)
            converged = kkt <= tol
        if polish and not polishing and polish_start is None and len(hist_f) >= 3:
            d_last, d_prev = hist_f[-2] - hist_f[-1], hist_f[-3] - hist_f[-2]
            if d_prev > 0 and d_last >= _POLISH_RATE * d_prev:  # the sweeps slowed down: polish
                polishing, polish_start = True, len(hist_f) - 1
    TW = prob.tw(W)   # stop_crit from a fresh product with T at the returned point
    f, WtW = prob.objective(W, TW)
    stop_crit = prob.kkt(W, TW, WtW)
    hist = {"objective": np.asarray(hist_f), "kkt": np.asarray(hist_k), "stop_crit": stop_crit, "tol": tol,
            "n_sweeps": n_iter - n_newton, "n_newton": n_newton, "n_cg": n_cg, "polish_start": polish_start,
            "n_inner": prob.n_inner, "n_extrapolated": n_extra}
    return W, n_iter, bool(stop_crit <= tol), hist


def als_setup(stats, structure, shrinkage, init=None):
    """The target T, noise estimate and start of :func:`fit_als`: (target, sigma2, W0, info)."""
    K = structure.n_factors
    if shrinkage:
        from .ml import block_ranks

        sigma2, F, sinfo = noise_and_shrunk_factor(stats.cov, stats.n_samples, K,
                                                   rows=structure.row_slices(stats.n_features),
                                                   block_ranks=block_ranks(structure))
        target = _Target(factor=F)
        info = {"sigma2": sigma2, "shrinkage": sinfo}
        W0 = spectral_init_lowrank(F, structure, stats.n_features) if init is None else np.asarray(init, float)
    else:
        sigma2 = bottom_eigenvalue_noise(stats.cov, K)
        info = {"sigma2": sigma2}
        if init is None:
            S_W = stats.cov.copy()  # one p x p copy for the initialisation (released after it)
            S_W[np.diag_indices_from(S_W)] -= sigma2
            W0 = spectral_init(S_W, structure, stats.n_features)
            del S_W
        else:
            W0 = np.asarray(init, float)
        target = _Target(dense=stats.cov, shift=sigma2)
    return target, sigma2, W0, info


def alpha_max_als(W, target, structure, n_features, l1_ratio):
    """The scale of the scale-free ALS penalty at a dense fit W: the alpha above which each
    loading (``l1_ratio > 0``) or each feature's row of a subset (``l1_ratio = 0``), set to zero on
    its own, stays at zero to first order.

    Setting W_jk to zero moves the gradient of f at that entry by -2 W_jk (W^T W)_kk (first order,
    at a stationary W), so the entry stays zero once ``lam * l1_ratio >= 2 abs(W_jk) (W^T W)_kk``; for a
    row w of block (m, S) the group threshold is ``2 ||w (W_S^T W_S)|| / sqrt(r_S)`` against
    lam (1 - l1_ratio). With ``lam = alpha ||T||_F^(3/2)`` (:func:`fit_als`) this gives alpha. With
    both parts (0 < l1_ratio < 1) the smaller of the two thresholds is returned. A scale for a
    grid of relative penalties (as ``alpha_max`` of the EM path), not an exact zeroing threshold.
    """
    W = np.asarray(W, float)
    unit = max(np.sqrt(max(target.sq, 0.0)), 1e-300) ** 1.5
    WtW = W.T @ W
    cands = []
    if l1_ratio > 0:
        cands.append(float(np.max(2.0 * np.abs(W) * np.diag(WtW)[None, :], initial=0.0)) / (l1_ratio * unit))
    if l1_ratio < 1:
        g = 0.0
        for s, cs in structure.column_slices.items():
            r = cs.stop - cs.start
            G = W[:, cs] @ WtW[cs, cs]
            g = max(g, float(np.max(2.0 * np.linalg.norm(G, axis=1), initial=0.0)) / np.sqrt(r))
        cands.append(g / ((1.0 - l1_ratio) * unit))
    return min(cands)


@register_method("als")
def fit_als(stats, structure, *, max_iter=500, tol=1e-6, shrinkage=False, init=None, accelerate="squarem",
            polish=True, alpha=0.0, l1_ratio=1.0, gtol=None):
    """Alternating block updates from the spectral initialisation, then a Newton polish (see the
    module docstring).

    Parameters
    ----------
    stats : CovarianceStats
        Sample covariance (p, p) with ``n_features`` (modality sizes) and ``n_samples``.
    structure : Structure
        Which subsets of modalities share factors, and at what rank (K columns in all).
    max_iter : int, default 500
        Budget of iterations: sweeps over the subsets plus Newton steps of the polish.
    tol : float, default 1e-6
        Tolerance on ``stop_crit``, the scaled masked gradient
        ``||P_mask(grad f)||_F / (2 ||T||_F ||W||_F)`` at the returned loadings (with ``alpha > 0``
        the scaled proximal-gradient mapping); ``converged == (stop_crit <= tol)``. Unchanged by
        rescaling the data.
    shrinkage : bool, default False
        Fit the spiked-model shrinkage of S_W (rank <= K) instead of S_W.
    init : ndarray of shape (p, K), optional
        Starting loadings (default: the spectral initialisation).
    accelerate : {"squarem", "anderson", None}, default "squarem"
        SQUAREM extrapolation of the sweeps or Anderson mixing (memory 5), each with a monotone
        safeguard, or plain sweeps.
    polish : bool, default True
        Once the sweeps slow down (an accepted step decreases f by at least half the previous
        decrease), switch to truncated Newton-CG steps with an exact line search (monotone). False:
        sweeps only.
    alpha : float, default 0
        Sparse loadings: minimise ``f(W) + alpha ||T||_F^(3/2) pen(W)`` with the sparse-group penalty
        of :mod:`.sparse` (``l1_ratio`` L1, the rest row-group norms per subset block). The factor
        ``||T||_F^(3/2)`` makes ``alpha`` scale-free (f scales as c^2 and pen as c^(1/2) when T -> c T).
        Each block update is then a few proximal-gradient steps with backtracking (monotone in
        the penalised objective); sweeps are neither extrapolated nor polished.
    l1_ratio : float in [0, 1], default 1
        Share of the L1 part of the penalty.
    gtol : float, optional
        Deprecated (FutureWarning): use ``tol``, which is now the one tolerance, on the scaled
        gradient. When given it is used as ``tol``.

    Returns
    -------
    EstimationResult
        ``loadings`` (p, K), ``noise_var`` (p,) (one value, repeated), ``n_iter`` (sweeps plus Newton
        steps), ``converged``, ``stop_crit``, ``tol``, ``objective`` (f at the returned loadings,
        penalty included) -- also in ``info`` -- and ``history`` (see :func:`als_refine`).
    """
    tol = _resolve_tol(tol, gtol, "fit_als", 2)
    if not isinstance(shrinkage, (bool, np.bool_)):
        raise ValueError(f"The 'shrinkage' parameter of fit_als must be a bool. Got {shrinkage!r} instead.")
    target, sigma2, W0, info = als_setup(stats, structure, shrinkage, init)
    W, n_iter, converged, hist = als_refine(W0, target, structure, stats.n_features, max_iter=max_iter, tol=tol,
                                            accelerate=accelerate, polish=polish, alpha=alpha, l1_ratio=l1_ratio)
    info["init"] = W0
    info.update(stop_crit=hist["stop_crit"], tol=tol, objective=float(hist["objective"][-1]))
    extra = {k: info[k] for k in ("stop_crit", "tol", "objective")
             if k in getattr(EstimationResult, "__dataclass_fields__", {})}
    return EstimationResult(loadings=W, noise_var=np.broadcast_to(sigma2, (stats.n_total_features,)).copy(),
                            n_iter=n_iter, converged=converged, history=hist, info=info, **extra)
