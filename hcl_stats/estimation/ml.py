"""Gaussian maximum likelihood for the block-sparse factor model by EM, from second moments only.

Model: Sigma = W W^T + Psi, W (p, K) zero off ``structure.support_mask``, Psi diagonal, with one
value per modality (``noise="modality"``, default), per feature (``"feature"``) or one shared
value (``"isotropic"``).

EM (Rubin and Thayer 1982) needs only the sample covariance S. With Wp = Psi^{-1} W,
M_k = I + W^T Wp and beta = M_k^{-1} Wp^T (= W^T Sigma^{-1}):

- E-step: A = S beta^T = (S Wp) M_k^{-1}  (p x K; the one O(p^2 K) product),
  B = E[z z^T] averaged = M_k^{-1} + beta A (K x K).
- M-step for W: the expected complete-data log-likelihood separates over features; feature j of
  modality m regresses on the columns C_m of the subsets containing m:
  W[j, C_m] = A[j, C_m] B[C_m, C_m]^{-1} (exact, a per-modality regression on the structure's
  columns). With a penalty (:mod:`.sparse`) this is a convex row-wise lasso / group lasso.
- M-step for Psi: d_j = S_jj - 2 W_j A_j^T + W_j B W_j^T, averaged over the modality's features,
  over all features, or kept per feature.

Each iteration costs O(p^2 K + p K^2) from a dense S, O(n p K) from the centred data
(:class:`hcl_stats.covariance.DataStats`, p > n) and O(p q K) from the rank-q shrunk target of the
default fit (:class:`LowRankCov`); memory O(p K) besides S. The log-likelihood of the current
iterate comes with the E-step at no extra cost (Woodbury; the same formula as
:func:`hcl_stats.likelihood.loglik_from_cov`).

Parameter expansion (PX-EM, Liu, Rubin and Wu 1998; on by default without a penalty): the
M-step also estimates a covariance A of the factors, restricted to transformations that keep the
loadings inside the structure's support (a subset's factors regress on those of its strict
supersets), and maps back W <- W L with L L^T = A (:func:`_px_factor`). Plain EM is slowest along
exactly those directions -- a factor shared by all modalities against one shared by a subset of
them, which with p >> n differ little in likelihood -- where it needed thousands of iterations;
PX-EM moves along them in one step, has the fixed points of EM and never decreases the
likelihood. The default acceleration on top is SQUAREM (Varadhan and Roland 2008, scheme S3)
with a monotone safeguard: an extrapolated point is kept only when its log-likelihood is at
least that of the two EM steps it started from. Its step length is computed in dimensionless
coordinates (W_j / sqrt(psi_j), psi_j relative to itself), so it is the same for any rescaling
of the features. The K x K-heavy loop runs on one BLAS thread (threadpoolctl) when the products
are small (issue 11 measured EM 3.4 times slower with two threads).

Stopping (all of): the increase of the average log-likelihood per sample divided by p is at most
``tol`` (nats per sample and feature: unchanged by rescaling the data, unlike a change relative to
the log-likelihood itself); the scaled masked loading gradient ||P_mask(dl/dW)||_F ||W||_F / p
and the root mean square of the scaled noise gradient psi dl/dpsi are at most ``gtol`` (both
dimensionless; dl/dW = Sigma^{-1} A - beta^T and dl/dpsi from the E-step's products, O(p K^2)).
With a penalty the loading part is the distance of dl/dW to alpha times the penalty's
subdifferential (:func:`subdiff_distance`), on the same scale (:func:`penalised_kkt`). The
maximum of the two parts at the RETURNED point is ``stop_crit`` (:func:`optimality`) and
``converged = stop_crit <= gtol`` (docs/method.md, section 14); whether the whole
rule was met is ``info["stopping_rule_met"]``.
When the rule is not met within ``max_iter``, :func:`convergence_message` says by how much and
what to change; :class:`hcl_stats.HCL` raises it as a ``ConvergenceWarning``.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg as sla

from .._threads import blas_threads_for, limit_blas
from . import EstimationResult, register_method
from .init import spectral_init
from .noise import bottom_eigenvalue_noise, is_data_stats
from .lowrank import spectral_init_lowrank
from .shrinkage import noise_and_shrunk_factor
from .sparse import column_groups, penalised_rows, penalty_value, row_alpha_max

__all__ = ["fit_ml", "em_fit", "ml_path", "alpha_max_ml", "convergence_message", "NOISE_MODELS", "scaled_kkt",
           "subdiff_distance", "penalised_kkt", "optimality", "Layout", "px_factor", "block_ranks", "check_options",
           "matrix_diagonal", "estep", "n_noise_params", "em_start", "squarem_steps", "LowRankCov",
           "weakest_blocks", "VANISHED", "PSI_FLOOR", "CRITERIA", "LIKELIHOOD_WINDOW", "likelihood_progress", "stop_rule",
           "subset_maximum"]

NOISE_MODELS = ("modality", "feature", "isotropic")
CRITERIA = ("gradient", "likelihood")
#: iterations over which the "likelihood" criterion averages the increase of the log-likelihood
LIKELIHOOD_WINDOW = 10
#: the fits keep every noise variance at least PSI_FLOOR times its feature's sample variance: a Heywood
#: case (a feature the factors explain almost entirely, e.g. a duplicated or collinear feature) stops
#: there instead of crawling towards zero, along which the likelihood can rise without bound and EM
#: takes thousands of iterations before its arithmetic breaks down (the same floor as
#: :func:`.noise.factor_noise` and the goodness-of-fit test; R's factanal bounds uniquenesses at 0.005)
PSI_FLOOR = 1e-3
_LOG2PI = np.log(2.0 * np.pi)


class _Layout:
    """Row slices and per-modality column sets of the structure."""

    def __init__(self, structure, n_features):
        self.structure = structure
        self.n_features = tuple(n_features)
        self.rows = structure.row_slices(n_features)
        mask = structure.support_mask(n_features)
        self.mask = mask
        self.cols = [np.flatnonzero(mask[r.start]) for r in self.rows]
        self.groups = [column_groups(structure, c) for c in self.cols]
        # parameter expansion: for each subset, its columns and those of its strict supersets
        cs = structure.column_slices
        self.px_plan = []
        for s in structure.subsets:
            sup = [np.arange(cs[t].start, cs[t].stop) for t in structure.subsets if set(s) < set(t)]
            self.px_plan.append((np.arange(cs[s].start, cs[s].stop),
                                 np.concatenate(sup) if sup else np.zeros(0, int)))
        # the index grids of the M-step and of PX-EM, built once (they are used every iteration)
        self.cols_grid = [np.ix_(c, c) for c in self.cols]
        self.px_grids = [(np.ix_(c, c), np.ix_(sup, sup), np.ix_(sup, c), np.ix_(c, sup)) for c, sup in self.px_plan]


def _px_factor(B, lay):
    """The reduction L (K, K) of the parameter-expanded M-step (PX-EM, Liu, Rubin and Wu 1998).

    The expanded model gives the factors a covariance A; loadings W* and A describe the same
    distribution as W = W* L for any L with L L^T = A. The transformations that keep every loading
    matrix inside the structure's support mix the columns of a subset into those of its supersets
    only (and rotate within a subset), so A is restricted to the Gaussian DAG model "factors of a
    subset regress on the factors of its strict supersets"; its ML estimate from B = E[z z^T] is
    one regression per subset: Gamma[S, sup(S)] = B[S, sup] B[sup, sup]^{-1}, residual covariance
    D_S (Cholesky factor R_S), and L = (I - Gamma)^{-1} blockdiag(R_S). L = I when B = I (at a
    fixed point of EM), so PX-EM has the fixed points of EM; it is itself an EM algorithm, so the
    log-likelihood never decreases. O(K^3).
    """
    K = B.shape[0]
    G = np.zeros((K, K))
    R = np.zeros((K, K))
    try:
        for (c, sup), (gcc, gss, gsc, gcs) in zip(lay.px_plan, lay.px_grids):
            Bcc = B[gcc]
            if sup.size:
                coef = np.linalg.solve(B[gss], B[gsc])   # K x K: numpy has far less call overhead
                G[gcs] = coef.T
                Bcc = Bcc - B[gcs] @ coef
            R[gcc] = np.linalg.cholesky(0.5 * (Bcc + Bcc.T))
    except (np.linalg.LinAlgError, sla.LinAlgError):
        return np.eye(K)   # B numerically singular (a factor with no signal): a plain EM step
    # supersets come first in the column order: I - Gamma is unit lower triangular
    return sla.solve_triangular(np.eye(K) - G, R, lower=True, unit_diagonal=True)


class LowRankCov:
    """S = F F^T + sigma2 I kept in factor form (products cost O(p q K))."""

    def __init__(self, F, sigma2):
        self.F = F
        self.sigma2 = np.broadcast_to(np.asarray(sigma2, float), (F.shape[0],))
        self.shape = (F.shape[0], F.shape[0])

    def __matmul__(self, X):
        return self.F @ (self.F.T @ X) + self.sigma2[:, None] * X

    def diagonal(self):
        return np.einsum("ij,ij->i", self.F, self.F) + self.sigma2


def _diag(S):
    """Diagonal (p,) of S: a dense array, a LowRankCov or a DataStats (a copy)."""
    return np.diag(S).copy() if isinstance(S, np.ndarray) else np.array(S.diagonal(), dtype=float)


def _estep(S, W, psi, S_diag=None):
    """Sufficient statistics of the E-step and the average log-likelihood of (W, psi).

    M_k = I + W^T Psi^{-1} W has every eigenvalue >= 1, so its inverse is computed once (K x K,
    from the Cholesky factor) and applied by products: A = (S Wp) M_k^{-1}, beta^T = Wp M_k^{-1}
    (two p x K x K products instead of triangular solves with p right-hand sides). ``S_diag``:
    the diagonal of S when the caller has it (saves O(p q) per call for a LowRankCov)."""
    p, K = W.shape
    Wp = W / psi[:, None]
    Mk = np.eye(K) + W.T @ Wp
    cM = (np.linalg.cholesky(Mk), True)                     # (factor, lower): as sla.cho_factor, less overhead
    SWp = S @ Wp
    Li = np.linalg.inv(cM[0])                              # triangular inverse: M^{-1} = L^{-T} L^{-1}
    Minv = Li.T @ Li
    Minv = 0.5 * (Minv + Minv.T)
    A = SWp @ Minv                                          # S beta^T
    beta_T = Wp @ Minv                                      # Sigma^{-1} W  (p, K)
    B = Minv + beta_T.T @ SWp @ Minv
    B = 0.5 * (B + B.T)
    logdet = 2.0 * np.sum(np.log(np.diag(cM[0]))) + np.sum(np.log(psi))
    trace = np.sum((_diag(S) if S_diag is None else S_diag) / psi) - np.vdot(Wp, A)   # tr(Sigma^{-1} S)
    ll = -0.5 * (p * _LOG2PI + logdet + trace)
    return A, B, beta_T, Wp, cM, ll


def _gradient(A, beta_T, Wp, cM, psi, mask):
    # Sigma^{-1} A = Psi^{-1} A - Wp M^{-1} Wp^T A, and Wp M^{-1} = beta^T
    SiA = A / psi[:, None] - beta_T @ (Wp.T @ A)
    return (SiA - beta_T) * mask


def _psi_gradient(S_diag, A, beta_T, Wp, psi, noise, lay):
    """Scaled gradient of the average log-likelihood in the free noise variances, psi * dl/dpsi
    (dimensionless), from the E-step's products: dl/dpsi_j = ((Sigma^-1 S Sigma^-1)_jj - (Sigma^-1)_jj) / 2
    with Sigma^-1 e_j = e_j / psi_j - beta^T Wp_j, so (Sigma^-1 S Sigma^-1)_jj = S_jj / psi_j^2
    - 2 A_j . Wp_j / psi_j + Wp_j H Wp_j^T, H = beta A^T (K x K). O(p K^2). Summed over a modality
    ("modality") or over all features ("isotropic"); empty for fixed noise."""
    if noise == "fixed":
        return np.zeros(0)
    H = beta_T.T @ A
    T = S_diag / psi**2 - 2.0 * np.einsum("ij,ij->i", A, Wp) / psi + np.einsum("ij,ij->i", Wp @ H, Wp)
    inv = 1.0 / psi - np.einsum("ij,ij->i", beta_T, Wp)
    g = 0.5 * (T - inv) * psi
    if noise == "feature":
        return g
    if noise == "isotropic":
        return np.array([g.sum()])
    return np.array([g[r].sum() for r in lay.rows])


def scaled_kkt(G, W, gp, lay, noise):
    """The scaled gradient both EMs stop on: max(||P(dl/dW)||_F ||W||_F / p, the root mean square
    of the scaled noise gradient psi dl/dpsi per noise parameter, a modality's (or all features')
    sum divided by the square root of its feature count). ``gp`` as :func:`_psi_gradient` returns it."""
    p = W.shape[0]
    kkt_w = float(np.linalg.norm(G) * np.linalg.norm(W) / p)
    if not gp.size:
        return kkt_w
    w = np.sqrt(np.array([p]) if noise == "isotropic" else
                np.array([r.stop - r.start for r in lay.rows]) if noise == "modality" else np.ones(gp.size))
    return max(kkt_w, float(np.linalg.norm(gp / w) / np.sqrt(gp.size)))


def subdiff_distance(G, W, structure, n_features, alpha, l1_ratio):
    """Distance of the (masked) log-likelihood gradient ``G`` to ``alpha`` times the
    subdifferential of the sparse-group penalty at ``W`` (:mod:`.sparse`), entry by entry, shape
    (p, K): zero everywhere exactly at a stationary point of l(W) - alpha pen(W).

    Per (feature j, subset S) row w = W[j, S] with gradient g, l1 = alpha l1_ratio and
    lg = alpha (1 - l1_ratio) sqrt(r_S): for w != 0 the non-zero entries give
    g - l1 sign(w) - lg w / ||w|| and the zero entries max(abs(g) - l1, 0); for w = 0 the row's norm
    is max(||soft(g, l1)|| - lg, 0) (the row returned is soft(g, l1) scaled to that norm).
    Entries outside the structure's support are zero (not free).
    """
    G = np.asarray(G, float)
    W = np.asarray(W, float)
    D = np.zeros_like(G)
    rows = structure.row_slices(n_features)
    l1 = alpha * l1_ratio
    for sub, cs in structure.column_slices.items():
        lg = alpha * (1.0 - l1_ratio) * np.sqrt(cs.stop - cs.start)
        for m in sub:
            g, w = G[rows[m], cs], W[rows[m], cs]
            nrm = np.linalg.norm(w, axis=1)
            nz = w != 0
            d = np.where(nz, g - l1 * np.sign(w) - lg * w / np.where(nrm > 0, nrm, 1.0)[:, None],
                         np.sign(g) * np.maximum(np.abs(g) - l1, 0.0))
            zero = nrm == 0
            if np.any(zero):
                st = d[zero]                       # soft(g, l1) on the zero rows
                sn = np.linalg.norm(st, axis=1)
                keep = np.maximum(sn - lg, 0.0)
                d[zero] = st * (keep / np.where(sn > 0, sn, 1.0))[:, None]
            D[rows[m], cs] = d
    return D


def penalised_kkt(D, W, psi, gp, lay, noise):
    """The scaled optimality measure of penalised EM: :func:`scaled_kkt` with the subdifferential
    distance ``D`` (:func:`subdiff_distance`) in place of the gradient; the norm of W that makes it
    dimensionless is replaced by sqrt(sum psi) when every loading is zero."""
    Wn = W if np.any(W) else np.sqrt(psi)[:, None]
    return scaled_kkt(D, Wn, gp, lay, noise)


def squarem_steps(a0, n_max=6):
    """Step lengths SQUAREM (S3) tries from a0 = -||r|| / ||v||: a0, then halfway towards -1 each
    time an extrapolation is refused, at most ``n_max`` of them; none once a step exceeds -1 (then
    the plain double EM step is kept)."""
    a = a0
    for _ in range(n_max):
        if a > -1.0:
            return
        yield a
        a = 0.5 * (a - 1.0)


def _support_rows(Bcc, Am, sub):
    """Unpenalised row regressions restricted to a per-row support ``sub`` (rows x |C| bool):
    row j solves B[P_j, P_j] w = a_j[P_j]; rows sharing a pattern share one factorisation."""
    X = np.zeros_like(Am)
    pats, inv = np.unique(sub, axis=0, return_inverse=True)
    for g, P in enumerate(pats):
        rows = np.flatnonzero(inv.ravel() == g)
        if not P.any():
            continue
        X[np.ix_(rows, np.flatnonzero(P))] = sla.solve(Bcc[np.ix_(P, P)], Am[np.ix_(rows, np.flatnonzero(P))].T,
                                                       assume_a="pos").T
    return X


def _solve_right(Bcc, Am):
    """Am Bcc^{-1} for the K_m x K_m matrix Bcc (symmetric positive definite: E[z z^T] of a modality's
    factors) and p_m rows Am: the small inverse, then one p_m x K_m x K_m product (a LAPACK solve with
    p_m right-hand sides costs several times more at these sizes)."""
    return Am @ np.linalg.inv(Bcc)


def _mstep(S_diag, A, B, W, psi, lay, noise, alpha, l1_ratio, psi_floor, support=None, px=False):
    Wn = np.zeros_like(W)
    for m, r in enumerate(lay.rows):
        C = lay.cols[m]
        Bcc = B[lay.cols_grid[m]]
        Am = A[r][:, C]
        if support is not None:
            Wn[r.start:r.stop, C] = _support_rows(Bcc, Am, support[r][:, C])
        elif alpha > 0:
            groups, gw = lay.groups[m]
            X, _, _ = penalised_rows(Bcc, Am, alpha * psi[r], groups, gw, l1_ratio, X0=W[r][:, C])
            Wn[r.start:r.stop, C] = X
        else:
            Wn[r.start:r.stop, C] = _solve_right(Bcc, Am)
    d = S_diag - 2.0 * np.einsum("ij,ij->i", Wn, A) + np.einsum("ij,ij->i", Wn @ B, Wn)
    if px:
        Wn = Wn @ _px_factor(B, lay)
    if noise == "feature":
        psi_n = d
    elif noise == "fixed":
        return Wn, psi
    elif noise == "isotropic":
        psi_n = np.full_like(d, d.mean())
    else:
        psi_n = np.empty_like(d)
        for r in lay.rows:
            psi_n[r] = d[r].mean()
    return Wn, np.maximum(psi_n, psi_floor)


def em_fit(S, W0, psi0, lay, *, noise="modality", max_iter=1000, tol=1e-9, gtol=1e-6, accelerate="squarem",
           alpha=0.0, l1_ratio=1.0, psi_floor=None, support=None, px=None, blas_threads="auto",
           criterion="gradient", n_samples=None, window=LIKELIHOOD_WINDOW):
    """EM (optionally SQUAREM-accelerated) from (W0, psi0). Returns a dict with W, psi, history.

    ``S`` is anything with ``S @ V`` (p, k) products, a ``diagonal()`` (or a dense array) and a
    ``shape``: a dense covariance, a :class:`LowRankCov` (O(p q K) per E-step) or a
    :class:`hcl_stats.covariance.DataStats` (O(n p K)). Memory O(p K) besides S.

    ``support`` (p, K) bool, optional: fit the unpenalised likelihood with loadings outside
    ``support`` (within the structure's mask) held at zero (the relaxed refit of a sparse fit;
    only with ``alpha=0``).

    ``px`` (default: on when ``alpha=0`` and ``support`` is None): parameter-expanded M-step
    (:func:`_px_factor`), which moves along the slow directions of plain EM (a factor shared by
    all modalities against one shared by a subset of them) in one step.

    Stopping (both): the increase of the objective (average log-likelihood per sample, minus the
    penalty) divided by p is at most ``tol`` -- a change in nats per sample and feature, unchanged
    by rescaling the data -- and the scaled masked gradient ||P(dl/dW)||_F ||W||_F / p (also
    dimensionless; penalised fits: the distance of the gradient to the penalty's subdifferential,
    :func:`subdiff_distance`), and the root mean square of the scaled noise gradient
    psi_j dl/dpsi_j (per feature; for one variance per modality its sum over the modality divided
    by sqrt(p_m)) are at most ``gtol``. The returned dict has ``stop_crit`` (that measure at the
    returned point), ``objective`` and ``loglik`` (at the returned point) besides W, psi and the
    history.

    ``criterion="likelihood"`` (with ``n_samples``) replaces that rule by the statistical one of
    :func:`likelihood_progress`: stop once the total log-likelihood of the sample (n times the
    objective) rose by at most ``gtol`` nats per iteration on average over the last ``window``
    iterations; ``stop_crit`` is then that mean increase at the returned point (nats per
    iteration) and the scaled gradient is kept in the history (``"kkt"``) and as ``"gradient"``.
    ``blas_threads``: "auto" runs the loop on one BLAS thread when the
    products are small (S a LowRankCov or p K < 2e6; the K x K solves are slower with threads),
    None leaves the thread pools alone, an int sets them.
    """
    if support is not None:
        if alpha > 0:
            raise ValueError("em_fit: support (a fixed zero pattern) is only used with alpha=0.")
        support = np.asarray(support, bool) & lay.mask
    if px is None:
        px = alpha == 0 and support is None
    rule = stop_rule(criterion, n_samples, window)
    limit = _blas_limit(S, W0, blas_threads)
    if limit is None:
        return _em_loop(S, W0, psi0, lay, noise, max_iter, tol, gtol, accelerate, alpha, l1_ratio, psi_floor, support, px,
                        rule)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit, user_api="blas"):
        return _em_loop(S, W0, psi0, lay, noise, max_iter, tol, gtol, accelerate, alpha, l1_ratio, psi_floor, support, px,
                        rule)


def stop_rule(criterion, n_samples, window):
    """(criterion, n_samples, window) after checks; "likelihood" needs a finite sample size."""
    if criterion not in CRITERIA:
        raise ValueError(f"The 'criterion' parameter must be one of {CRITERIA}. Got {criterion!r} instead.")
    if criterion == "likelihood":
        if n_samples is None:
            raise ValueError("criterion='likelihood' needs the number of samples (n_samples); got None (a population "
                             "covariance has no sampling precision: use criterion='gradient').")
        if int(window) < 1:
            raise ValueError(f"window must be a positive int; got {window!r}.")
        return ("likelihood", float(n_samples), int(window))
    return ("gradient", None, None)


def likelihood_progress(objective, n_samples, window=LIKELIHOOD_WINDOW):
    """Mean increase per iteration of the total log-likelihood over the last ``window`` iterations.

    ``objective`` is the trace of the average log-likelihood per sample (minus a penalty) of an
    EM run, its last entry at the current point; the result is
    n (objective[-1] - objective[-1 - w]) / w in nats per iteration with w = min(``window``,
    len(objective) - 1) (NaN for a single entry). This is the statistical stopping measure of
    ``EM(criterion="likelihood")`` (docs/method.md, section 14), which stops only once a whole
    window is available: unchanged by rescaling the data and on the scale on which
    likelihood-based inference reads differences (total nats; a likelihood-ratio statistic is
    twice a difference of total log-likelihoods)."""
    obj = np.asarray(objective, float)
    w = min(int(window), obj.size - 1)
    if w < 1:
        return float("nan")
    return float(n_samples * (obj[-1] - obj[-1 - w]) / w)


def _blas_limit(S, W0, blas_threads):
    if blas_threads == "auto" and isinstance(S, LowRankCov):
        return 1
    p, K = np.shape(W0)
    return blas_threads_for(p * K, blas_threads)


def _em_loop(S, W0, psi0, lay, noise, max_iter, tol, gtol, accelerate, alpha, l1_ratio, psi_floor, support, px,
             rule=("gradient", None, None)):
    p = S.shape[0]
    S_diag = _diag(S)
    if psi_floor is None:
        psi_floor = 1e-10 * np.maximum(S_diag, np.finfo(float).tiny)   # per feature: scale-equivariant
    mask = lay.mask if support is None else support
    W = np.array(W0, dtype=float) * mask
    psi = np.maximum(np.asarray(psi0, float), psi_floor)
    penalised = alpha > 0
    pen = (lambda Wx: alpha * penalty_value(Wx, lay.structure, lay.n_features, l1_ratio)) if penalised else (lambda Wx: 0.0)

    def em_step(Wc, psic, stats=None):
        if stats is None:
            stats = _estep(S, Wc, psic, S_diag)
        A, B = stats[0], stats[1]
        return _mstep(S_diag, A, B, Wc, psic, lay, noise, alpha, l1_ratio, psi_floor, support, px)

    loglik, objective, kkt_trace, n_estep = [], [], [], 0
    check_saddle = rule[0] == "likelihood" and not penalised and support is None and W.shape[1] > 0
    n_saddle_checks, n_escapes, saddle_gain = 0, 0, float("nan")
    stats = _estep(S, W, psi, S_diag)
    n_estep += 1
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        ll0 = stats[5]
        obj0 = ll0 - pen(W)
        loglik.append(ll0)
        objective.append(obj0)
        kkt = optimality(stats, S_diag, W, psi, lay, noise, alpha, l1_ratio, mask)
        kkt_trace.append(kkt)
        if rule[0] == "likelihood":
            if len(objective) > rule[2] and likelihood_progress(objective, rule[1], rule[2]) <= gtol:
                if not check_saddle:
                    converged = True
                    break
                # the saddle check: would the exact maximisation of one subset's loadings (the others and
                # the noise held) gain more than the rule tolerates over a window? Then take those steps
                # and go on (EM stalls near a saddle, where the progress rule alone would stop)
                Wb, gain = _subset_steps(S, W, psi, stats[5], lay, S_diag)
                n_saddle_checks += 1
                saddle_gain = rule[1] * gain
                if saddle_gain <= gtol * rule[2]:
                    converged = True
                    break
                n_escapes += 1
                W = Wb
                stats = _estep(S, W, psi, S_diag)
                n_estep += 1
                loglik[-1], objective[-1] = stats[5], stats[5]
                kkt_trace[-1] = optimality(stats, S_diag, W, psi, lay, noise, alpha, l1_ratio, mask)
        elif len(objective) > 1:
            change = (objective[-1] - objective[-2]) / max(p, 1)   # nats per sample and feature
            if change <= tol and kkt <= gtol:
                converged = True
                break
        W1, psi1 = em_step(W, psi, stats)
        if accelerate == "squarem":
            st1 = _estep(S, W1, psi1, S_diag)
            n_estep += 1
            W2, psi2 = em_step(W1, psi1, st1)
            st2 = _estep(S, W2, psi2, S_diag)
            n_estep += 1
            obj2 = st2[5] - pen(W2)
            rW, rp = W1 - W, psi1 - psi
            vW, vp = W2 - 2 * W1 + W, psi2 - 2 * psi1 + psi
            # step length from dimensionless coordinates (row j of W in units of sqrt(psi_j), psi_j
            # relative to itself): the same steps for any rescaling of the features
            sw, sp = 1.0 / np.sqrt(psi)[:, None], 1.0 / psi
            nr = np.sqrt(np.sum((rW * sw) ** 2) + np.sum((rp * sp) ** 2))
            nv = np.sqrt(np.sum((vW * sw) ** 2) + np.sum((vp * sp) ** 2))
            Wn, psin, stn = W2, psi2, st2
            if nv > 0 and nr > 0:
                for a in squarem_steps(-nr / nv):
                    We = W - 2 * a * rW + a * a * vW
                    pe = psi - 2 * a * rp + a * a * vp
                    if np.all(pe > psi_floor):
                        ste = _estep(S, We, pe, S_diag)
                        n_estep += 1
                        if ste[5] - pen(We) >= obj2:
                            Ws, ps = em_step(We, pe, ste)   # stabilising EM step
                            sts = _estep(S, Ws, ps, S_diag)
                            n_estep += 1
                            Wn, psin, stn = Ws, ps, sts
                            break
        else:
            Wn, psin = W1, psi1
            stn = _estep(S, Wn, psin, S_diag)
            n_estep += 1
        W, psi, stats = Wn, psin, stn
    # the optimality measure at the RETURNED point (after a break: the one just tested)
    if converged:
        gradient = float(kkt_trace[-1])
    else:
        gradient = optimality(stats, S_diag, W, psi, lay, noise, alpha, l1_ratio, mask)
    final = float(stats[5] - pen(W))
    if rule[0] == "likelihood":
        stop_crit = likelihood_progress(objective if converged else objective + [final], rule[1], rule[2])
    else:
        stop_crit = gradient
    return {"W": W, "psi": psi, "n_iter": it, "converged": converged,
            "history": {"loglik": np.asarray(loglik), "objective": np.asarray(objective),
                        "kkt": np.asarray(kkt_trace)},
            "n_estep": n_estep, "stats": stats, "tol": tol, "gtol": gtol, "stop_crit": stop_crit,
            "gradient": gradient, "criterion": rule[0], "window": rule[2], "n_samples": rule[1],
            "saddle_checks": n_saddle_checks, "saddle_escapes": n_escapes, "saddle_gain": saddle_gain,
            "objective": final, "loglik": float(stats[5])}


def subset_maximum(S, W, psi, lay, subset):
    """The loadings of one subset that maximise the likelihood with the other loadings and the
    noise variances held (an exact conditional maximisation; docs/method.md, section 14).

    Only Sigma's rows R (the subset's modalities' features) and its columns change, so with
    C = Sigma minus the subset's term and P = C^{-1} the likelihood of x_R given the other features
    is the factor-analysis likelihood with known noise covariance P_RR^{-1}. In Psi-whitened
    coordinates its maximiser is U = [u_1 .. u_r] diag(sqrt(max(lambda_k - 1, 0))), from the r
    largest generalised eigenpairs (P S P)_RR u = lambda P_RR u, u^T P_RR u = 1. A direction with
    lambda <= 1 gets exactly zero loadings; an empty subset with lambda > 1 (a saddle that EM
    leaves only slowly) gets its loadings at once. P from the Woodbury identity; the r pairs by
    Lanczos on P_RR^{-1/2} (P S P)_RR P_RR^{-1/2} (products only, O(p K) each) from a fixed
    start vector, or densely for small R. Returns (W with the subset's block replaced, lambda)."""
    st = lay.structure
    cs = st.column_slices[subset]
    R = st.feature_rows(subset, lay.n_features)
    p, K = W.shape
    r = cs.stop - cs.start
    sq = np.sqrt(psi)
    X = W / sq[:, None]
    others = np.ones(K, bool)
    others[cs] = False
    Xo = X[:, others]
    N = np.linalg.inv(np.eye(Xo.shape[1]) + Xo.T @ Xo)
    L = np.linalg.cholesky(0.5 * (N + N.T))

    def P(v):                                    # C^{-1} in whitened coordinates
        return v - Xo @ (N @ (Xo.T @ v))

    Q, g, _ = np.linalg.svd(Xo[R] @ L, full_matrices=False)    # P_RR = I - Q diag(g^2) Q^T
    coef = 1.0 / np.sqrt(np.maximum(1.0 - g**2, np.finfo(float).eps)) - 1.0
    nR = R.size

    def half(v):                                 # P_RR^{-1/2} v
        return v + Q @ (coef[:, None] * (Q.T @ v))

    def H(v):
        v = half(np.asarray(v, float).reshape(nR, -1))
        e = np.zeros((p, v.shape[1]))
        e[R] = v
        b = P(S @ (P(e) / sq[:, None]) / sq[:, None])
        return half(b[R])

    lam = V = None
    if nR > 4 * r + 40:
        from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

        op = LinearOperator((nR, nR), matvec=lambda v: H(v).ravel(), matmat=H, dtype=float)
        try:
            lam, V = eigsh(op, k=r, which="LA", v0=np.full(nR, 1.0 / np.sqrt(nR)), ncv=min(nR, max(2 * r + 1, 40)),
                           tol=1e-6, maxiter=20 * nR)
        except (ArpackNoConvergence, ArpackError):
            lam = V = None
    if lam is None:
        Hd = H(np.eye(nR))
        lam, V = sla.eigh(0.5 * (Hd + Hd.T), subset_by_index=[nR - r, nR - 1])
    U = half(V) * np.sqrt(np.maximum(lam - 1.0, 0.0))
    Wn = W.copy()
    Wn[R, cs] = sq[R][:, None] * U
    return Wn, lam


def _subset_steps(S, W, psi, ll, lay, S_diag):
    """Each subset's exact conditional maximisation (:func:`subset_maximum`) in turn, each kept when
    it raises the log-likelihood; returns (W, the total increase of the average log-likelihood)."""
    start = ll
    for s in lay.structure.subsets:
        Wn, _ = subset_maximum(S, W, psi, lay, s)
        lln = _estep(S, Wn, psi, S_diag)[5]
        if lln > ll:
            W, ll = Wn, lln
    return W, ll - start


def optimality(stats, S_diag, W, psi, lay, noise, alpha=0.0, l1_ratio=1.0, mask=None):
    """The scale-free optimality measure of EM at (W, psi) from its E-step products ``stats``
    (:func:`_estep`): :func:`scaled_kkt` of the masked gradient without a penalty,
    :func:`penalised_kkt` of the subdifferential distance with one (``alpha`` absolute)."""
    mask = lay.mask if mask is None else mask
    G = _gradient(stats[0], stats[2], stats[3], stats[4], psi, mask)
    gp = _psi_gradient(S_diag, stats[0], stats[2], stats[3], psi, noise, lay)
    if alpha > 0:
        D = subdiff_distance(G, W, lay.structure, lay.n_features, alpha, l1_ratio)
        return penalised_kkt(D, W, psi, gp, lay, noise)
    return scaled_kkt(G, W, gp, lay, noise)


def _block_ranks(structure):
    return [sum(structure.rank(s) for s in structure.subsets_containing(m)) for m in range(structure.n_modalities)]


def _start(stats, structure, shrinkage, noise="modality", noise_var=None):
    """Noise estimate, the covariance EM works on, and the spectral start. ``noise_var`` (p,):
    given noise variances instead of the estimate (with shrinkage only)."""
    K = structure.n_factors
    data = is_data_stats(stats)
    C = stats if data else stats.cov   # DataStats: products and Gram eigenpairs, no p x p matrix
    if shrinkage:
        if noise == "isotropic" and noise_var is None:
            sigma2, F, sinfo = noise_and_shrunk_factor(C, stats.n_samples, K)
        else:
            sigma2, F, sinfo = noise_and_shrunk_factor(C, stats.n_samples, K,
                                                       rows=structure.row_slices(stats.n_features),
                                                       block_ranks=_block_ranks(structure), noise=noise,
                                                       noise_var=noise_var)
        S = LowRankCov(F, sigma2)
        W0 = spectral_init_lowrank(F, structure, stats.n_features)
        info = {"sigma2_init": sigma2, "shrinkage": sinfo}
    else:
        sigma2 = bottom_eigenvalue_noise(C, K)
        S = C                     # DataStats: EM's products S @ V cost O(n p K)
        S_W = stats.cov.copy()    # the Schur initialisation needs the dense matrix (DataStats: formed lazily)
        S_W[np.diag_indices_from(S_W)] -= sigma2
        W0 = spectral_init(S_W, structure, stats.n_features)
        del S_W
        info = {"sigma2_init": sigma2}
    return sigma2, S, W0, info


def _check_options(noise, accelerate, alpha, l1_ratio):
    if noise not in NOISE_MODELS:
        raise ValueError(f"The 'noise' parameter of HCL must be one of {NOISE_MODELS}. Got {noise!r} instead.")
    if accelerate not in ("squarem", None):
        raise ValueError(f"The 'accelerate' parameter of HCL must be 'squarem' or None. Got {accelerate!r} instead.")
    if not (np.isscalar(alpha) and alpha >= 0):
        raise ValueError(f"The 'alpha' parameter of HCL must be a float in [0, inf). Got {alpha!r} instead.")
    if not (np.isscalar(l1_ratio) and 0 <= l1_ratio <= 1):
        raise ValueError(f"The 'l1_ratio' parameter of HCL must be a float in [0, 1]. Got {l1_ratio!r} instead.")


@register_method("ml")
def fit_ml(stats, structure, *, noise="modality", max_iter=1000, tol=1e-13, gtol=1e-10, accelerate="squarem",
           alpha=0.0, l1_ratio=1.0, shrinkage=False, alpha_scale="relative", init=None, noise_var=None,
           criterion="gradient", window=LIKELIHOOD_WINDOW):
    """Gaussian ML by (SQUAREM-accelerated) EM from the spectral initialisation.

    Parameters
    ----------
    noise : {"modality", "feature", "isotropic"}
    alpha : float
        Penalty level. With ``alpha_scale="relative"`` (default) it is a fraction of
        ``alpha_max`` (the smallest penalty zeroing every loading at the first penalised
        M-step from the unpenalised ML fit, :func:`.sparse.row_alpha_max`); with "absolute"
        it is used as is. 0: plain ML.
    l1_ratio : float in [0, 1]
        1: elementwise L1; 0: row-group L2 (features not loading on a subset); between: both.
    shrinkage : bool
        Fit the covariance ``F F^T + sigma2 I`` whose signal part is the spiked-model optimal
        eigenvalue shrinkage of S_n (:mod:`.shrinkage`) instead of S_n.
    init : ndarray (p, K), optional
        Starting loadings (default: the spectral initialisation).
    noise_var : ndarray (p,), optional
        Known noise variances (an oracle for benchmarks): used for the whitening of the
        shrinkage and held fixed by EM.
    tol, gtol : float
        Stopping rule of :func:`em_fit` (both must hold): increase of the average log-likelihood
        per sample and feature at most ``tol`` (nats; unchanged by rescaling the data) and scaled
        masked gradient (with a penalty: subdifferential distance) at most ``gtol``. The result's
        ``stop_crit`` is that measure at the returned point, ``tol`` is ``gtol`` and
        ``converged == (stop_crit <= gtol)``; ``objective`` is the average log-likelihood per
        sample of the covariance EM fitted (the shrunk one with ``shrinkage=True``) minus the
        penalty. (The solver part :class:`hcl_stats.estimation.solvers.EM` calls these ``tol``
        and ``change_tol``: there ``tol`` is always the tolerance of ``stop_crit``.) EM uses the parameter-expanded M-step and SQUAREM, which
        typically meet both in tens of iterations. When they are not met within ``max_iter``,
        ``info["convergence_message"]`` says by how much and what to change.
    criterion : {"gradient", "likelihood"}
        "gradient" (here the default): the rule above. "likelihood" (the default of the solver
        part :class:`hcl_stats.estimation.solvers.EM`, so of :class:`hcl_stats.HCL`): stop once
        the total log-likelihood of the sample (n times the objective) rose by at most ``gtol``
        nats per iteration on average over the last ``window`` iterations
        (:func:`likelihood_progress`; ``tol`` unused); ``stop_crit`` is that mean increase. Needs
        ``stats.n_samples``; for a population covariance the gradient rule is used (recorded in
        ``info["criterion"]``).
    window : int
        Iterations over which the "likelihood" criterion averages.

    Notes
    -----
    ``stats`` may be a :class:`hcl_stats.covariance.DataStats` (more features than samples): with
    ``shrinkage=True`` (the default of :class:`hcl_stats.HCL`) nothing p x p is formed -- the noise
    (factor analysis per modality), the whitened top-K eigenpairs and the shrinkage come from
    n x n Gram matrices and products X^T (X V), and EM runs on the rank-K shrunk target in factor
    form. Memory O(n p + n^2 + p K); time O(n^2 p) for the Gram matrices plus O(n p K) per
    factor-analysis step plus O(p K^2) per EM iteration. With ``shrinkage=False`` EM uses the
    products X^T (X V) (O(n p K) per E-step) but the Schur initialisation needs the dense
    covariance (refused beyond 2 GiB). Results equal those from the dense covariance to rounding.
    """
    _check_options(noise, accelerate, alpha, l1_ratio)
    if noise == "feature" and alpha == 0 and sum(stats.n_features) > 0:
        # The per-feature model is equivariant to rescaling features: fit it on the correlation
        # scale (every feature of unit variance), where the stopping rule is scale-free, and map
        # back. Same estimate up to rounding; the same number of iterations for any scaling.
        d = np.sqrt(stats.feature_var)
        if np.all(d > 0) and not np.allclose(d, 1.0, rtol=1e-12, atol=0.0):
            if is_data_stats(stats):
                std = stats.scaled(d)   # one n x p copy
            else:
                from ..covariance import CovarianceStats

                std = CovarianceStats(cov=stats.cov / d[:, None] / d[None, :], mean=stats.mean / d,
                                      n_samples=stats.n_samples, n_features=stats.n_features)
            res = fit_ml(std, structure, noise=noise, max_iter=max_iter, tol=tol, gtol=gtol, accelerate=accelerate,
                         alpha=alpha, l1_ratio=l1_ratio, shrinkage=shrinkage, alpha_scale=alpha_scale,
                         criterion=criterion, window=window,
                         init=None if init is None else np.asarray(init, float) / d[:, None],
                         noise_var=None if noise_var is None else np.asarray(noise_var, float) / d**2)
            res.loadings = res.loadings * d[:, None]
            res.noise_var = res.noise_var * d**2
            shift = -float(np.sum(np.log(d)))   # log-likelihood per sample on the original scale
            for key in ("loglik", "objective"):
                if key in res.history:
                    res.history[key] = np.asarray(res.history[key]) + shift
            res.objective = res.objective + shift
            res.info["fitted_on_correlation_scale"] = True
            return res
    if alpha_scale not in ("relative", "absolute"):
        raise ValueError(f"The 'alpha_scale' parameter must be 'relative' or 'absolute'. Got {alpha_scale!r} instead.")
    lay = _Layout(structure, stats.n_features)
    if noise_var is not None:
        noise_var = np.asarray(noise_var, float)
        if not shrinkage:
            raise ValueError("noise_var (known noise variances) is only supported with shrinkage=True.")
    # the start's kernels (factor analyses, eigenproblems, thin QR) on one BLAS thread unless its largest
    # dense operand (the p x p covariance, or the n x p data) is large (hcl_stats._threads)
    p_all = sum(stats.n_features)
    with limit_blas(p_all * (stats.n_samples if is_data_stats(stats) else p_all)):
        sigma2, S, W0, info = _start(stats, structure, shrinkage, noise, noise_var=noise_var)
    if init is not None:
        W0 = np.asarray(init, float)
    psi0 = np.maximum(np.broadcast_to(sigma2, (S.shape[0],)), 1e-8 * float(np.mean(_diag(S))))
    if noise_var is not None:
        psi0 = noise_var.copy()
        noise = "fixed"
    if criterion == "likelihood" and stats.n_samples is None:
        criterion = "gradient"   # a population covariance: no sampling precision to calibrate against
    floor = None if noise == "fixed" else PSI_FLOOR * np.asarray(stats.feature_var, float)
    kw = dict(noise=noise, max_iter=max_iter, tol=tol, gtol=gtol, accelerate=accelerate, l1_ratio=l1_ratio,
              criterion=criterion, n_samples=stats.n_samples, window=window, psi_floor=floor)
    out = em_fit(S, W0, psi0, lay, alpha=0.0, **kw)
    info.update(init=W0, n_estep=out["n_estep"], criterion=criterion)
    if alpha > 0:
        a_max = alpha_max_ml(out, lay, l1_ratio)
        a_abs = alpha * a_max if alpha_scale == "relative" else alpha
        unpen = out
        out = em_fit(S, unpen["W"], unpen["psi"], lay, alpha=a_abs, **kw)
        info.update(alpha_max=a_max, alpha_abs=a_abs, n_estep=info["n_estep"] + out["n_estep"],
                    unpenalised_history=unpen["history"])
    info["stopping_rule_met"] = bool(out["converged"])
    info["gradient"] = out["gradient"]
    if floor is not None:
        info["noise_floor"] = PSI_FLOOR
        info["noise_at_floor"] = np.flatnonzero(out["psi"] <= floor * (1.0 + 1e-9)).tolist()
    if out["criterion"] == "likelihood":
        info.update(saddle_checks=out["saddle_checks"], saddle_escapes=out["saddle_escapes"],
                    saddle_gain=out["saddle_gain"])
    if not out["stop_crit"] <= gtol:
        info["convergence_message"] = convergence_message(out, max_iter, lay)
    return EstimationResult(loadings=out["W"], noise_var=out["psi"], n_iter=out["n_iter"],
                            converged=out["converged"], history=out["history"], info=info,
                            stop_crit=out["stop_crit"], tol=gtol, objective=out["objective"])


#: whitened singular value below which the ConvergenceWarning reports a subset's loadings as vanished
#: (signal energy below 1e-4 of the noise along that direction, summed over the subset's features)
VANISHED = 1e-2


def weakest_blocks(W, psi, lay, n=2):
    """The ``n`` subsets whose loadings have the smallest whitened singular value, as
    [(subset, value)]: the smallest singular value of Psi^{-1/2} W restricted to the subset's rows
    (its modalities' features) and columns. A value near zero is a direction whose loadings have
    (almost) vanished: exactly zero loadings are a fixed point of EM, and with a weak signal the
    likelihood is nearly flat along them, where EM moves slowly (docs/method.md, section 14)."""
    W = np.asarray(W, float)
    psi = np.asarray(psi, float)
    out = []
    for s, cs in lay.structure.column_slices.items():
        R = lay.structure.feature_rows(s, lay.n_features)
        block = W[R][:, cs] / np.sqrt(psi[R])[:, None]
        if block.size:
            out.append((s, float(np.linalg.svd(block, compute_uv=False)[-1])))
    return sorted(out, key=lambda t: t[1])[:n]


def convergence_message(out, max_iter, lay=None):
    """What an EM run that did not converge reports, and what to change (for the ConvergenceWarning).

    The tolerances are named as the user sets them on :class:`hcl_stats.estimation.solvers.EM`
    (``tol`` for the optimality measure, ``change_tol`` for the increase of the log-likelihood),
    which :func:`fit_ml` receives as ``gtol`` and ``tol``. With the layout ``lay`` the message
    also names the (at most two) subsets whose smallest whitened singular value is below
    :data:`VANISHED` (:func:`weakest_blocks`)."""
    h = out["history"]
    obj, kkt = np.asarray(h["objective"]), np.asarray(h["kkt"])
    p = out["W"].shape[0]
    if out.get("criterion") == "likelihood":
        return (f"HCL(method='ml') stopped after {out['n_iter']} EM iterations (max_iter={max_iter}) without meeting its "
                f"stopping rule: the log-likelihood of the sample still rose by {out['stop_crit']:.2g} nats per "
                f"iteration over the last {out['window']} iterations (tol={out['gtol']:g}). Increase max_iter "
                f"(e.g. max_iter={4 * max_iter}); keep accelerate='squarem'; if the increase keeps shrinking only "
                "slowly, the structure may have a weakly identified subset (check it with hcl_stats.select_structure).")
    change = float((obj[-1] - obj[-2]) / max(p, 1)) if obj.size > 1 else float("nan")
    parts = [f"the last log-likelihood increase was {change:.2g} nats per sample and feature (change_tol={out['tol']:g})"]
    crit = out.get("stop_crit", kkt[-1] if kkt.size else np.nan)
    if np.isfinite(crit):
        parts.append(f"the optimality measure stop_crit at the returned point is {crit:.2g} (tol={out['gtol']:g})")
    weak = ""
    if lay is not None and "psi" in out:
        wb = [(s, v) for s, v in weakest_blocks(out["W"], out["psi"], lay) if v < VANISHED]
        if wb:
            weak = (" The smallest whitened singular values of the subsets' loadings are "
                    + ", ".join(f"{s}: {v:.2g}" for s, v in wb)
                    + " (near zero: a subset whose loadings have (almost) vanished; the likelihood is nearly flat "
                    "along such directions and EM moves slowly there).")
    return (f"HCL(method='ml') stopped after {out['n_iter']} EM iterations (max_iter={max_iter}) without meeting its "
            f"stopping rule: {'; '.join(parts)}.{weak} Increase max_iter (e.g. max_iter={4 * max_iter}); keep "
            "accelerate='squarem'; if the increase keeps shrinking only slowly, the structure may have a weakly "
            "identified subset (check it with hcl_stats.select_structure) -- loosening tol/change_tol returns a less "
            "precise estimate.")


def alpha_max_ml(out, lay, l1_ratio):
    """alpha_max at an EM fit ``out``: the smallest alpha whose M-step zeroes every loading."""
    A = out["stats"][0]
    psi = out["psi"]
    a = 0.0
    for m, r in enumerate(lay.rows):
        groups, gw = lay.groups[m]
        a = max(a, row_alpha_max(A[r][:, lay.cols[m]], psi[r], groups, gw, l1_ratio))
    return a


def _n_noise_params(noise, n_features):
    return {"modality": len(n_features), "feature": sum(n_features), "isotropic": 1}[noise]


def ml_path(stats, structure, *, alphas=None, n_alphas=8, eps=1e-2, l1_ratio=1.0, noise="modality",
            shrinkage=False, max_iter=1000, tol=1e-9, gtol=1e-6, accelerate="squarem"):
    """Penalised ML over a grid of penalties, with BIC for selection (deprecated: use
    :func:`hcl_stats.estimation.sparse_path.sparse_path`, which rotates the dense fit towards a
    sparse basis, refits each support without the penalty and includes alpha = 0).

    Parameters
    ----------
    stats : CovarianceStats
        Needs ``n_samples`` (BIC).
    alphas : sequence of float, optional
        Penalties as fractions of ``alpha_max`` (default: ``n_alphas`` values log-spaced from 1
        down to ``eps``).
    l1_ratio, noise, shrinkage, max_iter, tol, gtol, accelerate : as in :func:`fit_ml`.

    Returns
    -------
    dict with ``alphas`` (relative), ``alpha_max``, ``results`` (one EstimationResult per alpha),
    ``loglik`` (average per sample, unpenalised), ``df``, ``bic`` and ``best`` (index of the
    smallest BIC).

    Notes
    -----
    Each penalised fit starts from the unpenalised ML fit (a path warm-started from the all-zero
    solution at alpha_max would stay there: W = 0 is a fixed point of EM). Degrees of freedom:
    non-zero loadings minus r_S (r_S - 1) / 2 rotations per subset, plus the noise parameters;
    BIC = -2 n loglik + log(n) df.
    """
    warnings.warn("ml_path is deprecated and will be removed in a future release; use "
                  "hcl_stats.estimation.sparse_path.sparse_path (sparsity-seeking rotation, relaxed refits, alpha = 0 "
                  "on the grid, extended BIC) or HCL(alpha='bic').", FutureWarning, stacklevel=2)
    if stats.n_samples is None:
        raise ValueError("ml_path needs the number of samples for BIC; got a population covariance (n_samples=None).")
    _check_options(noise, accelerate, 0.0, l1_ratio)
    if alphas is None:
        alphas = np.logspace(0.0, np.log10(eps), n_alphas)
    alphas = np.asarray(alphas, dtype=float)
    if alphas.ndim != 1 or alphas.size == 0 or np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
        raise ValueError(f"alphas must be a non-empty 1-D sequence of non-negative finite numbers; got {alphas!r}.")
    lay = _Layout(structure, stats.n_features)
    sigma2, S, W0, info = _start(stats, structure, shrinkage, noise)
    psi0 = np.maximum(np.broadcast_to(sigma2, (S.shape[0],)), 1e-8 * float(np.mean(_diag(S))))
    kw = dict(noise=noise, max_iter=max_iter, tol=tol, gtol=gtol, accelerate=accelerate, l1_ratio=l1_ratio)
    unpen = em_fit(S, W0, psi0, lay, alpha=0.0, **kw)
    a_max = alpha_max_ml(unpen, lay, l1_ratio)
    n = stats.n_samples
    rot = sum(r * (r - 1) // 2 for r in structure.ranks.values())
    results, ll, df, bic = [], [], [], []
    for a in alphas:
        out = em_fit(S, unpen["W"], unpen["psi"], lay, alpha=a * a_max, **kw) if a > 0 else unpen
        res = EstimationResult(loadings=out["W"], noise_var=out["psi"], n_iter=out["n_iter"],
                               converged=out["converged"], history=out["history"],
                               info={"alpha": float(a), "alpha_abs": float(a * a_max)})
        l_ = out["history"]["loglik"][-1]
        d_ = max(int(np.count_nonzero(out["W"])) - rot, 0) + _n_noise_params(noise, stats.n_features)
        results.append(res)
        ll.append(l_)
        df.append(d_)
        bic.append(-2.0 * n * l_ + np.log(n) * d_)
    return {"alphas": alphas, "alpha_max": a_max, "results": results, "loglik": np.asarray(ll),
            "df": np.asarray(df), "bic": np.asarray(bic), "best": int(np.argmin(bic))}


# public names of the EM building blocks shared with .missing, .sparse_path and .als (the private
# spellings stay for existing callers)
Layout = _Layout
px_factor = _px_factor
block_ranks = _block_ranks
check_options = _check_options
matrix_diagonal = _diag
estep = _estep
n_noise_params = _n_noise_params
em_start = _start
