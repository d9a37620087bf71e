"""Structure selection: which subsets of the modalities carry factors, and at what rank, from data.

:func:`select_structure` returns a :class:`~hcl_stats.Structure`; with ``return_details=True``
it also returns a :class:`SelectionResult` holding every statistic the decision rests on
(``summary()`` prints it).

Method (three steps, all on the centred data)
----------------------------------------------
1. **Signal rank of each modality.** d_m = the number of eigenvalues of the sample covariance of
   modality m above the noise edge: the Kritchman--Nadler sequential test. For k = 0, 1, ... the
   noise variance is re-estimated assuming k spikes (their bias-corrected estimator) and the
   (k+1)-th eigenvalue is compared with sigma2_k * (mu + s * sd), where mu, sd are
   Johnstone's Tracy--Widom centring and scaling of the largest eigenvalue of a white Wishart
   matrix with (n - 1) degrees of freedom and p_m - k dimensions, and s is the upper
   ``level`` quantile of the Tracy--Widom (beta = 1) law. d_m = sum of r_S over S containing m.
2. **Shared ranks by canonical correlations.** Each modality is reduced to its top d_m principal
   component scores U_m (n x d_m). For every modality m and every non-empty set T of other
   modalities, h(m, T) = the number of non-zero canonical correlations between U_m and
   [U_t, t in T] = the rank of Cov(x_m, x_T) = sum of r_S over S containing m and meeting T
   (noise is independent across modalities, so cross-covariances are noise-free). It is chosen by
   the sequential test: the (j+1)-th squared canonical correlation is compared with the upper
   ``level`` quantile of the largest root of the null Jacobi ensemble with dimensions (a - j, b - j)
   (Johnstone 2008's Tracy--Widom approximation on the logit scale; the exact Beta law when one
   dimension is 1).
3. **Moebius inversion.** q_m(U) = d_m - h(m, complement of U) is the rank of the Schur complement
   R_m(complement of U) of docs/method.md section 3: the total rank of the subsets S with
   m in S contained in U. Moebius inversion over U gives, for each S and each m in S, an estimate
   r_S^(m) = sum over U with m in U contained in S of ``(-1)^{|S| - |U|} q_m(U)``. The ``|S|`` estimates
   of one subset must agree; the selected ranks are the non-negative integers r_S whose
   predicted statistics (d_m and all h(m, T)) are closest to the measured ones in absolute
   deviation (a small integer program; when the statistics are consistent this is exactly the
   Moebius inversion, with zero residual). Disagreements are reported, not hidden.

With ``noise="feature"`` (the default; ``"diagonal"`` is its deprecated spelling) step 1 tests
each rank k on the modality whitened by the noise variances of a k-factor maximum-likelihood
factor analysis (for data whose features have different noise levels; see
:func:`modality_signal_rank_feature`); steps 2 and 3 are unchanged.

Assumptions: the model of docs/method.md (uncorrelated latents, noise independent across
modalities, and isotropic within a modality unless ``noise="feature"``) and generic loadings
(every block W_{m,S} and every stacked W_{T, .} of full column rank). Under these, all counts above are population ranks and the
structure is identified from them.
"""
from __future__ import annotations

import itertools
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg as sla
from scipy import optimize, stats as sps

from ._threads import limit_blas
from ._validation import check_Xs, user_stacklevel
from .covariance import DataStats
from .estimation.noise import cov_diag, is_data_stats
from .exceptions import DataWarning, IdentifiabilityWarning
from .structure import Structure
from .summary import Summary, Table

__all__ = ["select_structure", "SelectionResult", "SelectionSummary", "SelectionStability", "ModalityRankTest",
           "CanonicalRankTest", "modality_signal_rank", "modality_signal_rank_feature", "modality_signal_rank_diagonal",
           "tracy_widom1_quantile"]

MAX_MODALITIES = 8

# Upper quantiles of the Tracy--Widom (beta = 1) law (Bejan 2005 tables; checked against a
# Dumitriu--Edelman tridiagonal simulation, n = 800, 20000 draws, to about 0.01).
_TW1_TABLE = ((0.10, 0.4501), (0.05, 0.9793), (0.025, 1.4537), (0.01, 2.0234), (0.005, 2.4224))


def _tw1_tail_asymptotic(s: float) -> float:
    # right tail of TW1: P(TW1 > s) ~ exp(-2/3 s^{3/2}) / (4 sqrt(pi) s^{3/4})
    return float(np.exp(-2.0 / 3.0 * s ** 1.5) / (4.0 * np.sqrt(np.pi) * s ** 0.75))


def _level_or_alpha(level, alpha, fname):
    """``level``, or the deprecated keyword ``alpha`` (FutureWarning at the caller of ``fname``)."""
    if alpha is None:
        return level
    warnings.warn(f"The 'alpha' parameter of {fname} is deprecated; use 'level' (the test level; alpha is a "
                  "penalty in hcl_stats).", FutureWarning, stacklevel=user_stacklevel())
    return alpha


def tracy_widom1_quantile(level: float = None, *, alpha=None) -> float:
    """Upper ``level`` quantile s of the Tracy--Widom (beta = 1) law, P(TW1 > s) = level.

    Tabulated values for level in [0.005, 0.1] (log-linear interpolation); below 0.005 the
    asymptotic right tail, rescaled to match the table at 0.005. Accurate to about 0.02.

    Parameters
    ----------
    level : float in (0, 0.1]
        The upper tail probability (the level of a test against the Tracy--Widom edge).
    alpha : deprecated
        Old name of ``level`` (FutureWarning).

    Returns
    -------
    float
    """
    level = _level_or_alpha(level, alpha, "tracy_widom1_quantile")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not (0.0 < level <= 0.1):
        raise ValueError(f"level must be a float in (0, 0.1]; got {level!r}.")
    a = np.array([t[0] for t in _TW1_TABLE])
    s = np.array([t[1] for t in _TW1_TABLE])
    if level >= a[-1]:
        return float(np.interp(np.log(level), np.log(a[::-1]), s[::-1]))
    scale = a[-1] / _tw1_tail_asymptotic(s[-1])
    f = lambda x: np.log(scale * _tw1_tail_asymptotic(x)) - np.log(level)  # noqa: E731
    return float(optimize.brentq(f, s[-1], 20.0))


# ------------------------------------------------------------------------------------------
# step 1: signal rank of one modality
# ------------------------------------------------------------------------------------------
def _wishart_tw(n_df: int, p: int):
    """Johnstone (2001): centring and scaling of the largest eigenvalue of (1/n) X^T X,
    X (n x p) with iid N(0, 1) entries."""
    a, b = np.sqrt(n_df - 0.5), np.sqrt(p - 0.5)
    mu = (a + b) ** 2 / n_df
    sd = (a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0) / n_df
    return mu, sd


def _kn_noise(lam: np.ndarray, k: int, n_df: int, p: int, n_iter: int = 50) -> float:
    """Kritchman--Nadler noise variance given k spikes: corrects the downward bias of the mean
    of the bottom eigenvalues (spike eigenvalues absorb part of the noise)."""
    total = float(lam.sum())
    rest = total - float(lam[:k].sum())
    sigma2 = rest / (p - k)
    if k == 0:
        return sigma2
    top = lam[:k]
    for _ in range(n_iter):
        b = top + sigma2 - sigma2 * (p - k) / n_df
        disc = np.clip(b * b - 4.0 * top * sigma2, 0.0, None)
        rho = 0.5 * (b + np.sqrt(disc))
        new = (rest + float(np.sum(top - rho))) / (p - k)
        if new <= 0:
            break
        if abs(new - sigma2) <= 1e-10 * sigma2:
            sigma2 = new
            break
        sigma2 = new
    return float(sigma2)


@dataclass(frozen=True)
class ModalityRankTest:
    """Evidence for the signal rank d_m of one modality (step 1).

    Attributes
    ----------
    modality : int
        Index of the modality.
    n_features : int
        p_m.
    eigenvalues : ndarray of shape (n_tested + 1,)
        The leading eigenvalues of the modality's sample covariance (tested ones, plus one); with
        ``noise="feature"`` of the covariance whitened by ``noise_var_features``.
    thresholds : ndarray of shape (n_tested,)
        Threshold of each test k = 0, 1, ... (the (k+1)-th eigenvalue must exceed it).
    noise_var_by_rank : ndarray of shape (n_tested,)
        The noise variance estimated under each tested rank k (on the whitened scale with
        ``noise="feature"``, where it should be close to 1). ``noise_var`` is its deprecated name.
    rank : int
        d_m, the number of consecutive eigenvalues above their thresholds.
    max_rank : int
        The largest rank that could be selected.
    noise_var_features : ndarray of shape (p_m,) or None
        With ``noise="feature"``, the estimated noise variance of each feature under the selected
        rank (factor analysis with d_m factors). ``feature_noise_var`` is its deprecated name.
    rounds : tuple
        With ``noise="feature"``, the tests run, as (k, eigenvalue k+1, threshold) on the data
        whitened by the k-factor noise estimate; the rank is the smallest k not rejected.
    """

    modality: int
    n_features: int
    eigenvalues: np.ndarray
    thresholds: np.ndarray
    noise_var_by_rank: np.ndarray
    rank: int
    max_rank: int
    noise_var_features: np.ndarray | None = None
    rounds: tuple = ()
    psi_cache: dict | None = field(default=None, repr=False, compare=False)  # k -> noise estimate (warm starts)

    @property
    def noise_var_selected(self) -> float:
        """The modality's noise variance under the selected rank (float)."""
        return float(self.noise_var_by_rank[min(self.rank, len(self.noise_var_by_rank) - 1)])

    @property
    def noise_var(self) -> np.ndarray:
        """Deprecated name of ``noise_var_by_rank`` (in hcl_stats ``noise_var`` is per modality)."""
        warnings.warn("ModalityRankTest.noise_var is deprecated; use noise_var_by_rank (the noise variance under each "
                      "tested rank) or noise_var_selected.", FutureWarning, stacklevel=user_stacklevel())
        return self.noise_var_by_rank

    @property
    def feature_noise_var(self) -> np.ndarray | None:
        """Deprecated name of ``noise_var_features``."""
        warnings.warn("ModalityRankTest.feature_noise_var is deprecated; use noise_var_features.", FutureWarning,
                      stacklevel=user_stacklevel())
        return self.noise_var_features

    @property
    def hit_limit(self) -> bool:
        """True when every tested eigenvalue was above the noise edge (the rank is a lower bound)."""
        return self.rank >= self.max_rank and self.max_rank > 0


def _centred_eig(Xc: np.ndarray, n_vectors: int, scale=None, cov=None):
    """Eigenvalues of the sample covariance of the centred data ``Xc`` (n, p), optionally with
    column ``scale`` divided out, and the top ``n_vectors`` normalised principal-component scores
    (n, n_vectors). Works from the p x p covariance (``cov`` if given, unscaled) or the n x n
    Gram matrix, whichever is smaller (never a thin SVD of the n x p matrix). Returns
    (eigenvalues, decreasing, of length min(n, p); scores)."""
    n, p = Xc.shape
    n_df = n - 1
    Y = Xc if scale is None else Xc / scale
    if p <= n:
        if cov is None:
            S = (Y.T @ Y) / n_df
        else:
            S = cov if scale is None else cov / scale[:, None] / scale[None, :]
        lam, V = sla.eigh(S, check_finite=False)
        lam, V = np.clip(lam[::-1], 0.0, None), V[:, ::-1]
        k = int(min(n_vectors, np.count_nonzero(lam > lam[0] * 1e-13) if lam[0] > 0 else 0))
        U = (Y @ V[:, :k]) / np.sqrt(n_df * lam[:k])
        return lam, U
    G = (Y @ Y.T) / n_df
    lam, U = sla.eigh(G, check_finite=False)
    lam, U = np.clip(lam[::-1], 0.0, None), U[:, ::-1]
    return lam, U[:, :n_vectors]


def _kn_sequence(lam, n_df, p, q, kmax):
    """The Kritchman--Nadler sequential test on eigenvalues ``lam`` (decreasing; the trace is
    their sum): thresholds, noise estimates and the rank (the first k not rejected)."""
    thr, nv = [], []
    rank = 0
    for k in range(0, kmax + 1):
        sigma2 = _kn_noise(lam, k, n_df, p)
        nv.append(sigma2)
        if k == kmax:
            break  # noise estimate under the maximal rank; no further test
        mu, sd = _wishart_tw(n_df, p - k)
        t = sigma2 * (mu + q * sd)
        thr.append(t)
        if lam[k] > t:
            rank = k + 1
        else:
            break
    return np.array(thr), np.array(nv), rank


def _default_kmax(n, p, max_rank):
    kmax = min(p, n - 1) - 1
    if max_rank is not None:
        kmax = min(kmax, int(max_rank))
    return max(kmax, 0)


def modality_signal_rank(X, level: float = 1e-3, max_rank: int | None = None, modality: int = 0, *, _cov=None,
                         alpha=None):
    """Signal rank of one (n_samples, p) data matrix under isotropic noise: the
    Kritchman--Nadler test (step 1 above), at level ``level``.

    Returns ``(test, U)`` with ``test`` a :class:`ModalityRankTest` and ``U`` the (n, d)
    normalised principal component scores of the centred data. ``alpha`` is the deprecated
    name of ``level`` (FutureWarning).
    """
    level = _level_or_alpha(level, alpha, "modality_signal_rank")
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    Xc = X - X.mean(axis=0) if _cov is None else X
    n_df = n - 1
    kmax = _default_kmax(n, p, max_rank)
    lam, U = _centred_eig(Xc, kmax + 1, cov=_cov)
    q = tracy_widom1_quantile(level)
    thr, nv, rank = _kn_sequence(lam, n_df, p, q, kmax)
    n_show = min(len(lam), len(thr) + 1)
    test = ModalityRankTest(modality=modality, n_features=p, eigenvalues=lam[:n_show].copy(),
                            thresholds=thr, noise_var_by_rank=nv, rank=rank, max_rank=kmax)
    return test, U[:, :rank]


def ledermann_bound(p: int) -> int:
    """Largest number of factors k with (p - k)^2 >= p + k: beyond it a factor model with
    diagonal noise has at least as many parameters as the covariance and is not identified."""
    return int(np.floor((2 * p + 1 - np.sqrt(8 * p + 1)) / 2 + 1e-9))


# Accuracy of the factor-analysis noise estimate inside each rank test: a relative change of the
# noise variances below 1e-4 moves the whitened eigenvalues by far less than the Tracy-Widom scale.
_TEST_FA_TOL = 1e-4
_TEST_FA_ITER = 60


def _feature_noise_test(S, k, n_df, q, psi0):
    """Test of H0: rank = k under diagonal noise: whiten S by the k-factor ML noise estimate,
    then compare the (k+1)-th eigenvalue with the Tracy--Widom edge of the whitened bulk."""
    from .estimation.noise import factor_noise

    p = S.shape[0]
    psi = cov_diag(S) if k == 0 else factor_noise(S, k, psi0=psi0, tol=_TEST_FA_TOL, max_iter=_TEST_FA_ITER)[0]
    d = np.sqrt(psi)
    if is_data_stats(S):   # the nonzero whitened eigenvalues from the n x n whitened Gram matrix
        Y = S.Xc / d
        lam = np.clip(sla.eigvalsh(Y @ Y.T / (S.n_samples - 1), check_finite=False)[::-1], 0.0, None)
    else:
        lam = np.clip(sla.eigvalsh(S / d[:, None] / d[None, :], check_finite=False)[::-1], 0.0, None)
    sigma2 = _kn_noise(lam, k, n_df, p)
    mu, sd = _wishart_tw(n_df, p - k)
    thr = sigma2 * (mu + q * sd)
    return bool(lam[k] > thr), float(lam[k]), float(thr), psi


def _search_rank(accept, kmax, hint=0):
    """Smallest k in [0, kmax] with accept(k) (accept(kmax) is taken as true), assuming accept is
    monotone in k: galloping from ``hint``, then bisection (O(log) calls of accept)."""
    acc = lambda k: k >= kmax or accept(k)  # noqa: E731
    h = int(min(max(hint, 0), kmax))
    if acc(h):
        hi, lo, step = h, -1, 1
        while hi - step >= 0:
            k = hi - step
            if acc(k):
                hi, step = k, 2 * step
            else:
                lo = k
                break
    else:
        lo, step = h, 1
        while True:
            k = min(lo + step, kmax)
            if acc(k):
                hi = k
                break
            lo, step = k, 2 * step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if acc(mid):
            hi = mid
        else:
            lo = mid
    return hi


def modality_signal_rank_feature(X, level: float = 1e-3, max_rank: int | None = None, modality: int = 0, *,
                                 _hint=0, _psi_cache=None, _cov=None, alpha=None):
    """Signal rank of one modality whose noise variance differs across features (diagonal noise).

    For H0: rank = k, the feature noise variances are estimated by maximum-likelihood factor
    analysis with k factors (:func:`hcl_stats.estimation.noise.factor_noise`; k = 0: the
    feature variances, i.e. the correlation matrix), the covariance is whitened by them, and the
    (k+1)-th whitened eigenvalue is tested against the Tracy--Widom edge of the bulk (noise
    re-estimated by Kritchman--Nadler on the whitened scale, which absorbs the small downward
    bias of the factor-analysis noise). d_m is the smallest k not rejected, found by doubling
    k and bisecting (the tests' rejections are monotone in k when the spikes are separated from
    the bulk); this needs O(log d_m) factor-analysis fits instead of d_m. Ranks are capped by
    the Ledermann bound (a larger factor model is not identified). Scale-equivariant: rescaling
    a feature changes nothing but its noise variance.

    Returns ``(test, U)`` as :func:`modality_signal_rank`; ``U`` are the scores of the whitened data.
    ``alpha`` is the deprecated name of ``level`` (FutureWarning).
    """
    from .estimation.noise import factor_noise

    level = _level_or_alpha(level, alpha, "modality_signal_rank_feature")
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    Xc = X - X.mean(axis=0) if _cov is None else X
    n_df = n - 1
    kmax = min(_default_kmax(n, p, max_rank), ledermann_bound(p))
    q = tracy_widom1_quantile(level)
    if _cov is None:   # p > n: the centred data stand for S (no p x p matrix), else the covariance
        S = DataStats(Xc, np.zeros(p), n, (p,)) if p > n else (Xc.T @ Xc) / n_df
    else:
        S = _cov
    results = {}

    def warm(k):
        pool = {j: r[3] for j, r in results.items() if j > 0}
        if _psi_cache:
            pool.update({j: v for j, v in _psi_cache.items() if j not in pool and j > 0})
        return pool[min(pool, key=lambda j: (abs(j - k), j))] if pool else None

    def reject(k):
        if k not in results:
            results[k] = _feature_noise_test(S, k, n_df, q, warm(k))
        return results[k][0]

    rank = 0 if kmax <= 0 else _search_rank(lambda k: not reject(k), kmax, hint=_hint)
    if rank in results:
        psi = results[rank][3]
    elif rank == 0:
        psi = cov_diag(S)
    else:
        psi = factor_noise(S, rank, psi0=warm(rank), tol=_TEST_FA_TOL, max_iter=_TEST_FA_ITER)[0]
    d = np.sqrt(psi)
    lam, U = _centred_eig(Xc, rank + 1, scale=d, cov=None if is_data_stats(S) else S)
    thr, nv, _ = _kn_sequence(lam, n_df, p, q, min(rank + 1, kmax))
    n_show = min(len(lam), len(thr) + 1)
    rounds = tuple((k, results[k][1], results[k][2]) for k in sorted(results))
    test = ModalityRankTest(modality=modality, n_features=p, eigenvalues=lam[:n_show].copy(), thresholds=thr,
                            noise_var_by_rank=nv, rank=rank, max_rank=kmax, noise_var_features=psi, rounds=rounds,
                            psi_cache={k: r[3] for k, r in results.items() if k > 0})
    return test, U[:, :rank]


def modality_signal_rank_diagonal(X, alpha: float = 1e-3, max_rank: int | None = None, modality: int = 0,
                                  max_rounds: int = 10):
    """Deprecated name of :func:`modality_signal_rank_feature` (``max_rounds`` is unused; ``alpha``
    is the test level)."""
    warnings.warn("modality_signal_rank_diagonal is deprecated and will be removed in a future release; "
                  "use modality_signal_rank_feature (with level= for the test level).", FutureWarning,
                  stacklevel=user_stacklevel())
    return modality_signal_rank_feature(X, level=alpha, max_rank=max_rank, modality=modality)


# ------------------------------------------------------------------------------------------
# step 2: number of non-zero canonical correlations
# ------------------------------------------------------------------------------------------
def _cca_null_threshold(a: int, b: int, n_df: int, level: float, q_tw: float) -> float:
    """Upper level quantile of the largest squared canonical correlation between an a- and a
    b-dimensional Gaussian vector, independent, with n_df (= n - 1 after centring) degrees of
    freedom. Exact Beta law when min(a, b) = 1; Johnstone (2008) otherwise."""
    lo, hi = min(a, b), max(a, b)
    err_df = n_df - hi
    if err_df < 1:
        return 1.0
    if lo == 1:
        return float(sps.beta.isf(level, hi / 2.0, err_df / 2.0))
    # Johnstone (2008): p = lo, m = hi (hypothesis df), n = err_df (error df)
    N = hi + err_df - 1.0
    sg = (lo - 0.5) / N
    sp = (hi - 0.5) / N
    if sp >= 1.0 or sg >= 1.0:
        return 1.0
    gam = 2.0 * np.arcsin(np.sqrt(sg))
    phi = 2.0 * np.arcsin(np.sqrt(sp))
    if phi + gam >= np.pi:
        return 1.0
    mu = 2.0 * np.log(np.tan(0.5 * (phi + gam)))
    sd = (16.0 / N ** 2 / (np.sin(phi + gam) ** 2 * np.sin(phi) * np.sin(gam))) ** (1.0 / 3.0)
    w = mu + q_tw * sd
    return float(1.0 / (1.0 + np.exp(-w)))


@dataclass(frozen=True)
class CanonicalRankTest:
    """Evidence for h(m, T) = rank Cov(x_m, x_T) (step 2).

    Attributes
    ----------
    canonical_corr : ndarray
        All canonical correlations between the d_m principal component scores of modality m and
        the stacked scores of the modalities in T, decreasing.
    thresholds : ndarray
        The null threshold (on the correlation scale) of each sequential test j = 0 ..
    rank : int
        h(m, T), the number of consecutive correlations above their thresholds.
    schur_rank : int
        d_m - h(m, T), the rank of the Schur complement R_m(T).
    """

    modality: int
    others: tuple
    dims: tuple
    canonical_corr: np.ndarray
    thresholds: np.ndarray
    rank: int
    schur_rank: int
    testable: bool = True


def canonical_rank(Um, UT, n_df, level, q_tw, rho=None):
    """Sequential test of the number of non-zero canonical correlations between the orthonormal
    score blocks ``Um`` (n, a) and ``UT`` (n, b) (or of the given correlations ``rho`` with the
    dimensions taken from ``Um``, ``UT`` as (a, b) tuples)."""
    a, b = (Um.shape[1], UT.shape[1]) if rho is None else (Um, UT)
    if a == 0 or b == 0:
        return np.zeros(0), np.zeros(0), 0, True
    if rho is None:
        rho = sla.svdvals(Um.T @ UT, check_finite=False)
    rho = np.clip(rho, 0.0, 1.0)
    thr = []
    rank = 0
    testable = True
    for j in range(min(a, b)):
        t2 = _cca_null_threshold(a - j, b - j, n_df - j, level, q_tw)
        if t2 >= 1.0:
            testable = False
        thr.append(np.sqrt(t2))
        if rho[j] ** 2 > t2:
            rank = j + 1
        else:
            break
    return rho, np.array(thr), rank, testable


# ------------------------------------------------------------------------------------------
# step 3: Moebius inversion and reconciliation
# ------------------------------------------------------------------------------------------
def _all_subsets(M):
    return [s for k in range(M, 0, -1) for s in itertools.combinations(range(M), k)]


def _moebius_estimates(M, d, h):
    """r_S^(m) for every subset S and m in S, from q_m(U) = d_m - h(m, complement U)."""
    full = frozenset(range(M))
    out = {}
    for S in _all_subsets(M):
        ests = {}
        for m in S:
            total = 0
            others = [i for i in S if i != m]
            for k in range(len(others) + 1):
                for extra in itertools.combinations(others, k):
                    U = frozenset((m,) + extra)
                    T = tuple(sorted(full - U))
                    q = d[m] - (h[(m, T)] if T else 0)
                    total += (-1) ** (len(S) - len(U)) * q
            ests[m] = int(total)
        out[S] = ests
    return out


def _reconcile(M, d, h, moebius=None):
    """Non-negative integer ranks minimising the total absolute deviation between predicted and
    measured statistics (d_m and h(m, T)); ties broken towards fewer factors. When the Moebius
    estimates agree, are non-negative and reproduce every statistic, they are that minimiser
    (deviation 0, unique since the map from ranks to statistics is injective) and no integer
    program is solved."""
    subsets = _all_subsets(M)
    nS = len(subsets)
    rows, obs = [], []
    for m in range(M):
        rows.append([1.0 if m in S else 0.0 for S in subsets])
        obs.append(d[m])
    for (m, T), v in h.items():
        Tset = set(T)
        rows.append([1.0 if (m in S and Tset & set(S)) else 0.0 for S in subsets])
        obs.append(v)
    A = np.array(rows)
    y = np.array(obs, dtype=float)
    nE = len(y)
    if moebius is not None:
        vals = [set(moebius[S].values()) for S in subsets]
        if all(len(v) == 1 and min(v) >= 0 for v in vals):
            r = np.array([v.pop() for v in vals], dtype=int)
            pred = A @ r
            if np.array_equal(pred, y) and np.all(A[:M] @ r >= 1):
                return {S: int(v) for S, v in zip(subsets, r)}, pred, y
    # variables: r (nS), u (nE), v (nE); A r - u + v = y; minimise sum u + v + eps sum r
    eps = 1.0 / (4.0 * (nS + 1))
    c = np.concatenate([np.full(nS, eps), np.ones(2 * nE)])
    Aeq = np.hstack([A, -np.eye(nE), np.eye(nE)])
    cons = [optimize.LinearConstraint(Aeq, y, y)]
    # every modality carries at least one factor (a Structure requires it)
    cover = np.hstack([A[:M], np.zeros((M, 2 * nE))])
    cons.append(optimize.LinearConstraint(cover, np.ones(M), np.full(M, np.inf)))
    ub = np.concatenate([np.full(nS, float(max(max(d), 1))), np.full(2 * nE, np.inf)])
    integrality = np.concatenate([np.ones(nS), np.zeros(2 * nE)])
    res = optimize.milp(c, constraints=cons, integrality=integrality,
                        bounds=optimize.Bounds(np.zeros(nS + 2 * nE), ub))
    if res.x is None:  # pragma: no cover - the problem is always feasible
        raise RuntimeError(f"structure selection: the integer program failed ({res.message}).")
    r = np.rint(res.x[:nS]).astype(int)
    pred = A @ r
    return {S: int(v) for S, v in zip(subsets, r)}, pred, y


# ------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------
def _fmt(x, nd=3):
    return f"{x:.{nd}g}" if abs(x) < 1e4 else f"{x:.3e}"


@dataclass
class SelectionResult:
    """Everything :func:`select_structure` measured and decided.

    Attributes
    ----------
    structure : Structure
    n_samples : int
    n_features : tuple of int
    level : float
        Level of every sequential test (``alpha`` is its deprecated name).
    noise : str
        The within-modality noise model of step 1 ("feature", "modality" or "isotropic").
    modality_tests : list of ModalityRankTest
        Step 1, one per modality (d_m = ``modality_tests[m].rank``).
    canonical_tests : dict (m, T) -> CanonicalRankTest
        Step 2, for every modality m and non-empty set T of other modalities.
    moebius : dict subset -> dict m -> int
        Step 3, the estimate r_S^(m) of each subset's rank from each of its modalities.
    ranks : dict subset -> int
        The selected rank of every subset (0 = absent).
    residual : int
        Total absolute deviation between the measured statistics and those implied by the
        selected ranks (0: the statistics are consistent with one structure).
    inconsistencies : list of str
        The statistics the selected structure does not reproduce.
    warnings : list of str
    stability : SelectionStability or None
        How the selection varies over random subsamples (with ``n_resamples > 0``).
    """

    structure: Structure
    n_samples: int
    n_features: tuple
    level: float
    noise: str
    modality_tests: list
    canonical_tests: dict
    moebius: dict
    ranks: dict
    residual: int
    inconsistencies: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    stability: "SelectionStability | None" = None

    @property
    def alpha(self) -> float:
        """Deprecated name of :attr:`level` (the test level; ``alpha`` is a penalty in hcl_stats)."""
        warnings.warn("SelectionResult.alpha is deprecated; use SelectionResult.level (the test level).",
                      FutureWarning, stacklevel=user_stacklevel())
        return self.level

    @property
    def signal_ranks(self) -> tuple:
        return tuple(t.rank for t in self.modality_tests)

    @property
    def consistent(self) -> bool:
        return self.residual == 0

    def _label(self, S):
        names = self.structure.names
        return "{" + ",".join(names[i] for i in S) + "}"

    def __repr__(self):
        return (f"SelectionResult(structure={self.structure!r}, signal_ranks={self.signal_ranks}, "
                f"residual={self.residual}, level={self.level:g}, noise={self.noise!r})")

    def summary(self) -> "SelectionSummary":
        """The evidence of the selection, one table per step.

        Returns
        -------
        SelectionSummary
            A :class:`hcl_stats.summary.Summary`: ``print(res.summary())``, ``as_markdown()``,
            ``as_latex()``, ``as_html()``.
        """
        return SelectionSummary(self)


def _stability_table(st, ranks, label):
    """The table of a :class:`SelectionStability`: the share of subsamples selecting each rank of
    every subset (subsets absent from the reference and from every subsample left out). The
    reference is ``ranks`` (the full-data selection) or, if None, each subset's most frequent rank."""
    rows = []
    ref = ranks if ranks is not None else {S: max(fr, key=fr.get) for S, fr in st.rank_frequencies.items()}
    for S, fr in st.rank_frequencies.items():
        if ref.get(S, 0) == 0 and set(fr) == {0}:
            continue
        rows.append([label(S), str(ref.get(S, 0)), "  ".join(f"{k}: {v:.0%}" for k, v in fr.items())])
    failed = sum(1 for s in st.structures if s is None)
    title = "Stability: rank of each subset over random subsamples"
    if failed:
        title += f" ({failed} subsamples failed: no factor in some modality; counted as rank 0)"
    head = ["subset", "full-data rank" if ranks is not None else "most frequent rank",
            "share of subsamples selecting each rank"]
    return Table(head, rows, title=title, align="l")


def _stability_line(st):
    return (f"{st.n_resamples} subsamples of {st.fraction:.0%} of the rows: the full-data structure in "
            f"{st.agreement:.0%}, the most frequent one in {st.modal_frequency:.0%}"
            + ("" if st.stable else " (UNSTABLE)"))


class SelectionSummary(Summary):
    """Printable evidence of a structure selection: one table per step (a :class:`hcl_stats.summary.Summary`).

    Parameters
    ----------
    result : SelectionResult

    Attributes
    ----------
    result : SelectionResult
    title, info, tables, notes : as in :class:`hcl_stats.summary.Summary`
    """

    def __init__(self, result: SelectionResult):
        self.result = r = result
        names = r.structure.names
        info = [
            ("Samples", str(r.n_samples)),
            ("Modalities", ", ".join(f"{names[m]}: {p}" for m, p in enumerate(r.n_features))),
            ("Test level", _fmt(r.level)),
            ("Noise model", r.noise + (" (one noise variance per feature: each rank test on data whitened by a "
                                       "factor-analysis noise estimate)" if r.noise == "feature"
                                       else " (one noise variance per modality in the rank tests)")),
            ("Selected", ", ".join(f"{r._label(S)}: {k}" for S, k in r.ranks.items() if k > 0)
             + f"  (K = {r.structure.n_factors})"),
            ("Consistent", "yes (residual 0)" if r.consistent else f"no (residual {r.residual})"),
        ]
        tables = []
        # step 1
        rows1 = []
        for t in r.modality_tests:
            pairs = []
            for k, lam in enumerate(t.eigenvalues):
                thr = t.thresholds[k] if k < len(t.thresholds) else np.nan
                mark = ">" if lam > thr else "<="
                pairs.append(f"{_fmt(lam)}{mark}{_fmt(thr)}" if np.isfinite(thr) else f"{_fmt(lam)} (untested)")
            shown = pairs if len(pairs) <= 8 else pairs[:3] + ["..."] + pairs[-4:]
            rows1.append([names[t.modality], str(t.n_features), _fmt(t.noise_var_selected), str(t.rank),
                          "  ".join(shown)])
        tables.append(Table(["modality", "p", "noise var", "d_m", "eigenvalue / threshold (k = 1, 2, ...)"], rows1,
                            title="Step 1: signal rank of each modality (eigenvalues vs the Tracy-Widom noise edge)",
                            align="l"))
        # step 2
        rows2 = []
        for (m, T), t in r.canonical_tests.items():
            pairs = []
            for j in range(min(len(t.canonical_corr), len(t.thresholds))):
                mark = ">" if t.canonical_corr[j] ** 2 > t.thresholds[j] ** 2 else "<="
                pairs.append(f"{t.canonical_corr[j]:.3f}{mark}{t.thresholds[j]:.3f}")
            shown = pairs if len(pairs) <= 6 else pairs[:2] + ["..."] + pairs[-3:]
            tag = "" if t.testable else " (untestable: dims too large for n)"
            rows2.append([names[m], r._label(T), f"{t.dims[0]}x{t.dims[1]}", str(t.rank),
                          str(t.schur_rank), "  ".join(shown) + tag])
        tables.append(Table(["m", "T", "dims", "h(m,T)", "d_m-h", "canonical corr / threshold"], rows2,
                            title="Step 2: rank of Cov(x_m, x_T) by sequential canonical-correlation tests", align="l"))
        # step 3
        rows3 = []
        M = r.structure.n_modalities
        for S, ests in r.moebius.items():
            kind = "global" if len(S) == M else ("specific" if len(S) == 1 else "partial")
            e = ", ".join(f"{names[m]}: {v}" for m, v in ests.items())
            rows3.append([r._label(S), kind, e, str(r.ranks[S])])
        tables.append(Table(["subset", "kind", "Moebius estimate from each modality", "selected rank"], rows3,
                            title="Step 3: rank of each candidate subset (Moebius inversion of the Schur ranks d_m - h(m,T))",
                            align="l"))
        st = r.stability
        if st is not None:
            info.append(("Stability", _stability_line(st)))
            tables.append(_stability_table(st, r.ranks, r._label))
        s = r.structure
        tables.append(Table(["modality"] + [r._label(S) for S in s.subsets],
                            [[s.names[m]] + [str(s.rank(S)) if m in S else "." for S in s.subsets]
                             for m in range(s.n_modalities)],
                            title=f"Selected structure: {s.n_modalities} modalities, {s.n_subsets} subsets, "
                                  f"K = {s.n_factors} factors", align="l" + "r" * s.n_subsets))
        notes = [f"not reproduced by the selected structure: {x}" for x in r.inconsistencies]
        notes += [f"warning: {x}" for x in r.warnings]
        super().__init__("Structure selection: evidence", info, tables=tables, notes=notes)


# ------------------------------------------------------------------------------------------
# public entry point
# ------------------------------------------------------------------------------------------
NOISE_MODELS = ("feature", "modality", "isotropic")


def _check_level(level, name="level"):
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not (0.0 < float(level) <= 0.1):
        raise ValueError(f"The '{name}' parameter of select_structure must be a float in (0, 0.1]. Got {level!r} instead.")
    return float(level)


def _check_max_rank(max_rank):
    if max_rank is None:
        return None
    if isinstance(max_rank, bool) or not isinstance(max_rank, numbers.Integral) or max_rank < 1:
        raise ValueError(f"The 'max_rank' parameter of select_structure must be a positive int or None. Got {max_rank!r} instead.")
    return int(max_rank)


def check_noise_model(noise, owner="select_structure"):
    """Normalise a noise-model name: "feature", "modality" or "isotropic" ("diagonal" is the
    deprecated spelling of "feature")."""
    if noise == "diagonal":
        warnings.warn("noise='diagonal' is deprecated; use noise='feature' (one noise variance per feature). "
                      "It will be removed in a future release.", FutureWarning, stacklevel=user_stacklevel())
        return "feature"
    if noise not in NOISE_MODELS:
        raise ValueError(f"The 'noise' parameter of {owner} must be one of {NOISE_MODELS}. Got {noise!r} instead.")
    return noise


def _check_features(Xs, label):
    """Constant features and modalities are errors; duplicated features a warning."""
    notes = []
    for m, X in enumerate(Xs):
        ptp = np.ptp(X, axis=0)
        const = np.flatnonzero(ptp == 0)
        if const.size == X.shape[1]:
            raise ValueError(f"{label(m)} is constant: all its {X.shape[1]} features take one value; "
                             "a modality must vary to carry factors. Remove it.")
        if const.size:
            raise ValueError(f"{label(m)}: features {const[:10].tolist()}{' ...' if const.size > 10 else ''} "
                             f"are constant (zero variance); remove them before fitting.")
        if X.shape[1] < 2:
            raise ValueError(f"{label(m)} must have at least 2 features to separate signal from noise; got shape {X.shape}.")
    return notes


def _centred_cov(X, need_cov):
    """Centred data and, when p <= n, the p x p covariance; when p > n and ``need_cov``, a
    :class:`~hcl_stats.covariance.DataStats` of the centred data standing for it (memory O(n p))."""
    Xc = X - X.mean(axis=0)
    n, p = Xc.shape
    if p <= n:
        return Xc, (Xc.T @ Xc) / (n - 1)
    return Xc, (DataStats(Xc, np.zeros(p), n, (p,)) if need_cov else None)


def _duplicate_pairs_from_data(Xc):
    """Pairs of columns of the centred data with |correlation| > 1 - 1e-10, without the p x p
    correlation matrix: columns scaled to unit norm and sign-normalised are sorted along a random
    direction (fixed seed); duplicates then sit next to each other (O(n p log p))."""
    nrm = np.sqrt(np.einsum("ij,ij->j", Xc, Xc))
    U = Xc / nrm
    proj = np.random.default_rng(0).standard_normal(U.shape[0]) @ U
    U = U * np.where(proj < 0, -1.0, 1.0)
    key = np.abs(proj)
    order = np.argsort(key, kind="stable")
    pairs = []
    for a, b in zip(order[:-1], order[1:]):
        # |corr| > 1 - 1e-10 <=> ||u_a -/+ u_b||^2 < 2e-10; the projection differs by at most that norm
        if key[b] - key[a] < 1e-4 and float(U[:, a] @ U[:, b]) > 1.0 - 1e-10:
            pairs.append((int(min(a, b)), int(max(a, b))))
    return sorted(pairs)


def _duplicate_note(S, m, label):
    if is_data_stats(S):
        found = _duplicate_pairs_from_data(S.Xc)
        dup, pairs = found, found[:5]
    else:
        sd = np.sqrt(np.diag(S))
        C = S / sd[:, None] / sd[None, :]
        iu = np.triu_indices_from(C, k=1)
        dup = np.flatnonzero(np.abs(C[iu]) > 1.0 - 1e-10)
        pairs = [(int(iu[0][i]), int(iu[1][i])) for i in dup[:5]]
    if not len(dup):
        return None
    return (f"{label(m)}: features {pairs}{' ...' if len(dup) > 5 else ''} are perfectly correlated (duplicated "
            "up to scale); they share a factor with almost no noise. Drop duplicates unless this is intended")


def _select_once(Xs, level, max_rank, noise, names, label, hints=None):
    """Steps 1-3 on one data set; returns (structure or None, details dict, notes)."""
    M = len(Xs)
    n = Xs[0].shape[0]
    n_df = n - 1
    q_tw = tracy_widom1_quantile(level)
    notes = []
    rank_test = modality_signal_rank_feature if noise == "feature" else modality_signal_rank
    mtests, Us = [], []
    for m, X in enumerate(Xs):
        Xc, S = _centred_cov(X, noise == "feature")
        if hints is None and S is not None:
            note = _duplicate_note(S, m, label)
            if note:
                notes.append(note)
        if noise == "feature" and hints is not None:
            t, U = rank_test(Xc, level=level, max_rank=max_rank, modality=m, _hint=hints[m].rank,
                             _psi_cache=hints[m].psi_cache, _cov=S)
        else:
            t, U = rank_test(Xc, level=level, max_rank=max_rank, modality=m, _cov=S)
        mtests.append(t)
        Us.append(U)
    empty = [m for m, t in enumerate(mtests) if t.rank == 0]
    if empty:
        det = "; ".join(
            f"{label(m)}: largest eigenvalue {_fmt(mtests[m].eigenvalues[0])} <= noise edge {_fmt(mtests[m].thresholds[0])}"
            if len(mtests[m].thresholds) else f"{label(m)}: too few samples or features to test"
            for m in empty)
        raise ValueError(
            f"Xs: no factor detected above the noise level in modalities {empty} at level={level:g} ({det}); "
            f"every modality must carry at least one factor. More samples, a larger level, or dropping these modalities may help.")
    d = [t.rank for t in mtests]
    for m, t in enumerate(mtests):
        if t.hit_limit:
            notes.append(f"{label(m)}: every tested eigenvalue is above the noise edge (the rank hit its limit {t.max_rank}); "
                         "the modality is not well described by a few factors plus noise"
                         + ("" if noise == "feature" else ", or its noise is not isotropic (try noise='feature')")
                         + "; its rank is a lower bound")
    ctests, h = {}, {}
    # canonical correlations from the Gram matrix of all score blocks (each block orthonormal):
    # between U_m and span(U_T) they are the singular values of G_mT L_T^{-T}, L_T L_T^T = G_TT
    offs = np.concatenate([[0], np.cumsum([U.shape[1] for U in Us])])
    Ucat = np.hstack(Us)
    G = Ucat.T @ Ucat
    blk = lambda idx: np.concatenate([np.arange(offs[t], offs[t + 1]) for t in idx])  # noqa: E731
    for m in range(M):
        others = [i for i in range(M) if i != m]
        for k in range(1, len(others) + 1):
            for T in itertools.combinations(others, k):
                iT, im = blk(T), blk((m,))
                GTT = G[np.ix_(iT, iT)]
                w, V = sla.eigh(0.5 * (GTT + GTT.T), check_finite=False)
                keep = w > max(w[-1], 0.0) * 1e-10 if w.size else np.zeros(0, bool)
                B = G[np.ix_(im, iT)] @ (V[:, keep] / np.sqrt(w[keep]))
                rho = sla.svdvals(B, check_finite=False) if B.size else np.zeros(0)
                dims = (im.size, int(keep.sum()))
                rho, thr, rank, testable = canonical_rank(dims[0], dims[1], n_df, level, q_tw, rho=rho)
                ctests[(m, T)] = CanonicalRankTest(modality=m, others=T, dims=dims,
                                                   canonical_corr=rho, thresholds=thr, rank=rank,
                                                   schur_rank=d[m] - rank, testable=testable)
                h[(m, T)] = rank
                if not testable:
                    notes.append(f"canonical correlations of {label(m)} vs {T}: dimensions {dims[0]}x{dims[1]} too large for n = {n}")
    return structure_from_tests(M, d, h, mtests, ctests, names, label, notes)


def structure_from_tests(M, d, h, mtests, ctests, names, label, notes):
    """Step 3: Moebius inversion of the measured ranks, reconciled to the closest structure;
    returns (structure, details, notes) as :func:`_select_once` (``notes`` is extended)."""
    moeb = _moebius_estimates(M, d, h)
    ranks, pred, obs = _reconcile(M, d, h, moeb)
    residual = int(round(np.abs(pred - obs).sum()))
    incons = []
    if residual:
        keys = [f"d_{label(m)}" for m in range(M)] + [f"h({label(m)}, {T})" for (m, T) in h]
        incons = [f"{k}: measured {int(o)}, implied {int(p)}" for k, o, p in zip(keys, obs, pred) if o != p]
        notes.append(f"the tests are not consistent with a single structure (total deviation {residual}); "
                     "the closest structure is returned")
    struct = Structure({S: r for S, r in ranks.items() if r > 0}, M, names=names)
    details = dict(modality_tests=mtests, canonical_tests=ctests, moebius=moeb, ranks=ranks, residual=residual,
                   inconsistencies=incons)
    return struct, details, notes


@dataclass(frozen=True)
class SelectionStability:
    """How the selection varies over random subsamples of the rows (``summary()`` prints it).

    Attributes
    ----------
    n_resamples : int
        Number of subsamples (drawn without replacement).
    fraction : float
        Size of each subsample as a share of n.
    structures : tuple of Structure or None, length n_resamples
        The structure selected on each subsample (None where the selection failed).
    rank_frequencies : dict
        subset -> {rank: share of the subsamples selecting that rank}.
    modal_structure : Structure or None
        The most frequent structure.
    modal_frequency : float
        Its share of the subsamples.
    agreement : float
        Share of the subsamples selecting the full-data structure.
    """

    n_resamples: int
    fraction: float
    structures: tuple
    rank_frequencies: dict
    modal_structure: Structure | None
    modal_frequency: float
    agreement: float

    @property
    def stable(self) -> bool:
        """The modal structure is selected in at least half of the subsamples."""
        return self.modal_frequency >= 0.5

    def summary(self) -> Summary:
        """The stability report: the share of subsamples selecting each rank of every subset.

        Returns
        -------
        hcl_stats.summary.Summary
        """
        ref = self.modal_structure if self.modal_structure is not None else \
            next((x for x in self.structures if x is not None), None)
        if ref is not None:
            label = lambda S: "{" + ",".join(ref.names[m] for m in S) + "}"  # noqa: E731
        else:
            label = lambda S: "{" + ",".join(str(m) for m in S) + "}"  # noqa: E731
        info = [("Subsamples", _stability_line(self))]
        if self.modal_structure is not None:
            info.append(("Most frequent structure", ", ".join(
                f"{label(S)}: {self.modal_structure.rank(S)}" for S in self.modal_structure.subsets)))
        return Summary("Structure selection: stability over random subsamples", info,
                       tables=[_stability_table(self, None, label)])


def _stability(Xs, full, n_resamples, fraction, rng, level, max_rank, noise, names, label, hints=None):
    n = Xs[0].shape[0]
    m_sub = int(np.floor(fraction * n))
    if m_sub < 5:
        raise ValueError(f"resample_fraction={fraction:g} leaves {m_sub} of {n} samples per subsample; need at least 5.")
    structs = []
    for _ in range(n_resamples):
        idx = np.sort(rng.choice(n, size=m_sub, replace=False))
        try:
            s, _, _ = _select_once([X[idx] for X in Xs], level, max_rank, noise, names, label, hints=hints)
        except ValueError:
            s = None
        structs.append(s)
    return stability_from_structures(structs, full, len(Xs), fraction)


def stability_from_structures(structs, full, M, fraction):
    """Summarise the structures selected on subsamples (None where the selection failed) against
    the full-data structure ``full``."""
    n_resamples = len(structs)
    freq = {}
    for S in _all_subsets(M):
        c = {}
        for s in structs:
            r = 0 if s is None else s.rank(S) if S in s.subsets else 0
            c[r] = c.get(r, 0) + 1
        freq[S] = {r: v / n_resamples for r, v in sorted(c.items())}
    counts = {}
    for s in structs:
        if s is not None:
            counts[s] = counts.get(s, 0) + 1
    if counts:
        modal, cnt = max(counts.items(), key=lambda kv: (kv[1], kv[0] == full))
        modal_freq = cnt / n_resamples
    else:
        modal, modal_freq = None, 0.0
    agree = sum(1 for s in structs if s is not None and s == full) / n_resamples
    return SelectionStability(n_resamples=n_resamples, fraction=fraction, structures=tuple(structs),
                              rank_frequencies=freq, modal_structure=modal, modal_frequency=modal_freq,
                              agreement=agree)


def check_selection_options(M, level, max_rank, noise, names, return_details, n_resamples, resample_fraction, alpha):
    """Validate the options of :func:`select_structure` (shared with the incomplete-data selection);
    returns (level, max_rank, noise, names, label) with ``label(m)`` naming modality m in messages."""
    if alpha is not None:
        warnings.warn("The 'alpha' parameter of select_structure is deprecated; use 'level' (the test level). "
                      "It will be removed in a future release.", FutureWarning, stacklevel=user_stacklevel())
        level = _check_level(alpha, "alpha")
    level = _check_level(level)
    max_rank = _check_max_rank(max_rank)
    noise = check_noise_model(noise)
    if not isinstance(return_details, (bool, np.bool_)):
        raise ValueError(f"The 'return_details' parameter of select_structure must be a bool. Got {return_details!r} instead.")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, numbers.Integral) or n_resamples < 0:
        raise ValueError(f"The 'n_resamples' parameter of select_structure must be a non-negative int. Got {n_resamples!r} instead.")
    if isinstance(resample_fraction, bool) or not isinstance(resample_fraction, numbers.Real) or not (0 < resample_fraction < 1):
        raise ValueError(f"The 'resample_fraction' parameter of select_structure must be a float in (0, 1). Got {resample_fraction!r} instead.")
    if names is not None:
        names = tuple(str(x) for x in names)
        if len(names) != M:
            raise ValueError(f"names must have one entry per modality ({M}); got {len(names)} entries {names!r}.")
    label = (lambda m: f"Xs[{m}] ({names[m]})") if names is not None else (lambda m: f"Xs[{m}]")
    return level, max_rank, noise, names, label


def select_structure(Xs, *, level=1e-3, max_rank=None, noise="feature", names=None, return_details=False,
                     n_resamples=0, resample_fraction=0.8, random_state=0, alpha=None):
    """Select the structure (which subsets of modalities carry factors, and their ranks) from data.

    Parameters
    ----------
    Xs : list of ndarray of shape (n_samples, p_m)
        One array per modality (2 to 8 modalities; 1 gives a single specific block), the same
        samples in the same row order. NaN marks a missing entry (a sample may miss whole
        modalities): the selection then runs on the samples observing what each test involves
        (:func:`hcl_stats.incomplete.select_structure_incomplete`; assumes the entries are missing
        completely at random).
    level : float in (0, 0.1], default 1e-3
        Level of each sequential test (eigenvalue vs noise edge, canonical correlation vs null).
        Smaller values ask for stronger evidence before adding a factor.
    max_rank : int, optional
        Largest signal rank tested per modality (default: p_m - 1, or n_samples - 2; with
        ``noise="feature"`` also at most the Ledermann bound of the modality, beyond which a
        factor model with diagonal noise is not identified).
    noise : {"feature", "modality", "isotropic"}, default "feature"
        Noise model within a modality for step 1, with the same meaning as in :class:`HCL`.
        "feature" (default): one noise variance per feature (diagonal noise, as in real data,
        where every standardised feature keeps its own noise share); each rank test whitens the
        modality by a factor-analysis estimate of the feature noise variances under its null
        hypothesis (see :func:`modality_signal_rank_feature`). "modality": one variance per
        modality, the classical isotropic test within each modality. "isotropic": one variance
        for all features of all modalities; step 1 is then the same per-modality test as
        "modality" (a variance common to all modalities is a special case, estimated per
        modality). Steps 2 and 3 do not depend on it: cross-covariances carry no noise.
        ("diagonal" is the deprecated spelling of "feature".)
    names : sequence of str, optional
        Modality names for the returned structure and the summary.
    return_details : bool, default False
        Also return the :class:`SelectionResult` (``.summary()`` prints the evidence).
    n_resamples : int, default 0
        Also run the selection on this many random subsamples of the rows (without replacement,
        ``resample_fraction`` of them each) and report how often each subset gets each rank
        (:class:`SelectionStability`, in ``SelectionResult.stability`` and its summary).
    resample_fraction : float in (0, 1), default 0.8
    random_state : int, Generator or None, default 0
        Seed of the subsamples.
    alpha : float, optional
        Deprecated name of ``level`` (a test level is not a penalty); FutureWarning.

    Returns
    -------
    structure : Structure
    details : SelectionResult
        Only with ``return_details=True``.

    Raises
    ------
    ValueError
        For malformed inputs, a constant feature or modality (named), when some modality shows
        no factor above the noise (a structure needs at least one factor per modality), or when
        the selected number of factors leaves too few samples (K >= n_samples - 1).

    Warns
    -----
    DataWarning
        When a rank test hits its limit (every tested eigenvalue above the noise edge), some
        canonical-correlation test cannot be run, the statistics are not consistent with any
        single structure, n is small relative to the selected ranks (n < 10 K), features are
        duplicated, or (with ``n_resamples``) the modal structure is selected in fewer than half
        of the subsamples. Each message says what to do.
    IdentifiabilityWarning
        When the selected structure violates ``Structure.check_identifiable``.

    Notes
    -----
    See the module docstring for the three steps. Identification needs uncorrelated latent
    factors, noise independent across modalities, and generic loadings: under these every
    statistic used is a population rank, so the structure is recovered with probability tending
    to one as n grows with the dimensions fixed. Weak factors (eigenvalue of a block below the
    noise edge, about sigma^2 sqrt(p_m / n)) cannot be seen. Computations use the p_m x p_m
    covariance or the n x n Gram matrix of each modality, whichever is smaller; with
    ``noise="feature"`` and p_m > n the factor analysis of each rank test also works from the
    centred n x p_m data (products and whitened n x n Gram matrices), so memory is O(n p) in all
    (about three copies of the data), with no p_m x p_m matrix.

    Examples
    --------
    >>> from hcl_stats import Structure, simulate, select_structure
    >>> s = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 2, (2,): 1}, 3)
    >>> data = simulate(s, (30, 40, 50), 1000, noise_var=1.0, random_state=0, loadings="gaussian")
    >>> select_structure(data.Xs) == s
    True
    """
    from .incomplete import has_missing, select_structure_incomplete

    if has_missing(Xs):  # NaN = missing: the available-case selection (entries missing completely at random)
        return select_structure_incomplete(Xs, level=level, max_rank=max_rank, noise=noise, names=names,
                                           return_details=return_details, n_resamples=n_resamples,
                                           resample_fraction=resample_fraction, random_state=random_state,
                                           alpha=alpha)
    if isinstance(Xs, (list, tuple)) and 0 < len(Xs) and len(Xs) > MAX_MODALITIES:
        raise ValueError(f"Xs must contain at most {MAX_MODALITIES} modalities for structure selection (2^M - 1 candidate subsets); got {len(Xs)}.")
    Xs = check_Xs(Xs, min_samples=5)
    level, max_rank, noise, names, label = check_selection_options(
        len(Xs), level, max_rank, noise, names, return_details, n_resamples, resample_fraction, alpha)
    n = Xs[0].shape[0]
    n_features = tuple(X.shape[1] for X in Xs)
    notes = _check_features(Xs, label)
    if noise == "feature":
        wide = [m for m, X in enumerate(Xs) if X.shape[1] >= n - 1]
        if wide:
            notes.append(f"modalities {[label(m) for m in wide]} have at least as many features as samples: their per-feature "
                         "noise variances are poorly determined (consider noise='modality' for them)")
    if max_rank is not None and max_rank > n - 2:
        notes.append(f"max_rank={max_rank} exceeds what n_samples = {n} can test (n - 2 = {n - 2}); ranks are capped there")

    # small dense kernels: one BLAS thread unless the data are large (hcl_stats._threads)
    size = n * sum(n_features)
    with limit_blas(size):
        struct, det, more = _select_once(Xs, level, max_rank, noise, names, label)
    notes += more
    K = struct.n_factors
    if K >= n - 1:
        raise ValueError(f"Xs has n_samples = {n}, too few for the {K} factors detected (needs n_samples > K + 1); "
                         "collect more samples or lower max_rank.")
    if n < 10 * K:
        notes.append(f"n_samples = {n} is small for the {K} factors selected (fewer than 10 per factor): the rank tests "
                     "have little power and their null laws are approximations; check stability with n_resamples")
    stability = None
    if n_resamples:
        from ._validation import check_random_state

        rng = check_random_state(random_state)
        with limit_blas(size):
            stability = _stability(Xs, struct, n_resamples, float(resample_fraction), rng, level, max_rank, noise,
                                   names, label, hints=det["modality_tests"])
        if not stability.stable:
            notes.append(f"unstable selection: the most frequent structure was selected in {stability.modal_frequency:.0%} "
                         f"of {n_resamples} subsamples of {resample_fraction:.0%} of the rows, the full-data structure in "
                         f"{stability.agreement:.0%}; the ranks of the subsets with spread-out frequencies in the summary "
                         "are not determined by these data (consider a smaller level, max_rank, or fixing the structure)")
    problems = struct.check_identifiable(n_features)
    if problems:
        notes.append("selected structure violates identifiability conditions: " + "; ".join(problems))
        warnings.warn(f"select_structure: the selected structure violates identifiability conditions: {'; '.join(problems)}",
                      IdentifiabilityWarning, stacklevel=user_stacklevel())
    data_notes = [s for s in notes if not s.startswith("selected structure")]
    if data_notes:
        warnings.warn("select_structure: " + "; ".join(data_notes), DataWarning, stacklevel=user_stacklevel())
    if not return_details:
        return struct
    res = SelectionResult(structure=struct, n_samples=n, n_features=n_features, level=level, noise=noise,
                          warnings=notes, stability=stability, **det)
    return struct, res
