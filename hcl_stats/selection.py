"""Structure selection: which subsets of the modalities carry factors, and at what rank, from data.

:func:`select_structure` returns a :class:`~hcl_stats.Structure`; with ``return_details=True``
it also returns a :class:`SelectionResult` holding every statistic the decision rests on
(``summary()`` prints it).

Method (three steps, all on the centred data)
----------------------------------------------
1. **Signal rank of each modality.** d_m = the number of eigenvalues of the sample covariance of
   modality m above the noise edge: the Kritchman--Nadler sequential test. For k = 0, 1, ... the
   noise variance is re-estimated assuming k spikes (their bias-corrected estimator) and the
   (k+1)-th eigenvalue is compared with sigma2_k * (mu + s_alpha * sd), where mu, sd are
   Johnstone's Tracy--Widom centring and scaling of the largest eigenvalue of a white Wishart
   matrix with (n - 1) degrees of freedom and p_m - k dimensions, and s_alpha is the upper
   alpha quantile of the Tracy--Widom (beta = 1) law. d_m = sum of r_S over S containing m.
2. **Shared ranks by canonical correlations.** Each modality is reduced to its top d_m principal
   component scores U_m (n x d_m). For every modality m and every non-empty set T of other
   modalities, h(m, T) = the number of non-zero canonical correlations between U_m and
   [U_t, t in T] = the rank of Cov(x_m, x_T) = sum of r_S over S containing m and meeting T
   (noise is independent across modalities, so cross-covariances are noise-free). It is chosen by
   the sequential test: the (j+1)-th squared canonical correlation is compared with the upper
   alpha quantile of the largest root of the null Jacobi ensemble with dimensions (a - j, b - j)
   (Johnstone 2008's Tracy--Widom approximation on the logit scale; the exact Beta law when one
   dimension is 1).
3. **Moebius inversion.** q_m(U) = d_m - h(m, complement of U) is the rank of the Schur complement
   R_m(complement of U) of hcl_method.md section 3: the total rank of the subsets S with
   m in S contained in U. Moebius inversion over U gives, for each S and each m in S, an estimate
   r_S^(m) = sum over U with m in U contained in S of (-1)^{|S| - |U|} q_m(U). The |S| estimates
   of one subset must agree; the selected ranks are the non-negative integers r_S whose
   predicted statistics (d_m and all h(m, T)) are closest to the measured ones in absolute
   deviation (a small integer program; when the statistics are consistent this is exactly the
   Moebius inversion, with zero residual). Disagreements are reported, not hidden.

With ``noise="diagonal"`` step 1 runs on each modality whitened by per-feature noise variances
estimated by principal-axis factor analysis, alternating with the rank test until the rank
repeats (for data whose features have different noise levels); steps 2 and 3 are unchanged.

Assumptions: the model of hcl_method.md (uncorrelated latents, noise independent across
modalities and isotropic within a modality) and generic loadings (every block W_{m,S} and every
stacked W_{T, .} of full column rank). Under these, all counts above are population ranks and the
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

from ._validation import check_Xs
from .exceptions import DataWarning, IdentifiabilityWarning
from .structure import Structure

__all__ = ["select_structure", "SelectionResult", "ModalityRankTest", "CanonicalRankTest",
           "modality_signal_rank", "modality_signal_rank_diagonal", "tracy_widom1_quantile"]

MAX_MODALITIES = 8

# Upper quantiles of the Tracy--Widom (beta = 1) law (Bejan 2005 tables; checked against a
# Dumitriu--Edelman tridiagonal simulation, n = 800, 20000 draws, to about 0.01).
_TW1_TABLE = ((0.10, 0.4501), (0.05, 0.9793), (0.025, 1.4537), (0.01, 2.0234), (0.005, 2.4224))


def _tw1_tail_asymptotic(s: float) -> float:
    # right tail of TW1: P(TW1 > s) ~ exp(-2/3 s^{3/2}) / (4 sqrt(pi) s^{3/4})
    return float(np.exp(-2.0 / 3.0 * s ** 1.5) / (4.0 * np.sqrt(np.pi) * s ** 0.75))


def tracy_widom1_quantile(alpha: float) -> float:
    """Upper ``alpha`` quantile s of the Tracy--Widom (beta = 1) law, P(TW1 > s) = alpha.

    Tabulated values for alpha in [0.005, 0.1] (log-linear interpolation); below 0.005 the
    asymptotic right tail, rescaled to match the table at 0.005. Accurate to about 0.02.
    """
    if not (0.0 < alpha <= 0.1):
        raise ValueError(f"alpha must be a float in (0, 0.1]; got {alpha!r}.")
    a = np.array([t[0] for t in _TW1_TABLE])
    s = np.array([t[1] for t in _TW1_TABLE])
    if alpha >= a[-1]:
        return float(np.interp(np.log(alpha), np.log(a[::-1]), s[::-1]))
    scale = a[-1] / _tw1_tail_asymptotic(s[-1])
    f = lambda x: np.log(scale * _tw1_tail_asymptotic(x)) - np.log(alpha)  # noqa: E731
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

    eigenvalues : the leading eigenvalues of the modality's sample covariance (tested ones, plus one)
    thresholds : threshold of each test k = 0 .. (the (k+1)-th eigenvalue must exceed it)
    noise_var : noise variance estimated under each tested k
    rank : d_m, the number of consecutive eigenvalues above their thresholds
    feature_noise_var : with ``noise="diagonal"``, the estimated noise variance of each feature
        (the data were divided by its square root before the test; eigenvalues and noise_var are
        then on that whitened scale)
    rounds : with ``noise="diagonal"``, the rank found in each whitening round
    """

    modality: int
    n_features: int
    eigenvalues: np.ndarray
    thresholds: np.ndarray
    noise_var: np.ndarray
    rank: int
    max_rank: int
    feature_noise_var: np.ndarray | None = None
    rounds: tuple = ()

    @property
    def noise_var_selected(self) -> float:
        return float(self.noise_var[min(self.rank, len(self.noise_var) - 1)])


def modality_signal_rank(X, alpha: float = 1e-3, max_rank: int | None = None, modality: int = 0):
    """Signal rank of one (n_samples, p) data matrix: the Kritchman--Nadler test (step 1 above).

    Returns ``(test, U)`` with ``test`` a :class:`ModalityRankTest` and ``U`` the (n, d) left
    singular vectors of the centred data (the principal component scores, normalised).
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    Xc = X - X.mean(axis=0)
    U, s, _ = sla.svd(Xc, full_matrices=False, check_finite=False)
    n_df = n - 1
    lam = s ** 2 / n_df
    kmax = min(p, n_df) - 1
    if max_rank is not None:
        kmax = min(kmax, int(max_rank))
    q = tracy_widom1_quantile(alpha)
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
    n_show = min(len(lam), len(thr) + 1)
    test = ModalityRankTest(modality=modality, n_features=p, eigenvalues=lam[:n_show].copy(),
                            thresholds=np.array(thr), noise_var=np.array(nv), rank=rank, max_rank=kmax)
    return test, U[:, :rank]


def _paf_noise(S: np.ndarray, k: int, n_iter: int = 30) -> np.ndarray:
    """Feature noise variances of a rank-k principal-axis factor analysis of S."""
    d = np.diag(S).copy()
    psi = d.copy()
    if k == 0:
        return psi
    floor = 1e-3 * d
    for _ in range(n_iter):
        w, V = sla.eigh(S - np.diag(psi), subset_by_index=[S.shape[0] - k, S.shape[0] - 1])
        L = V * np.sqrt(np.clip(w, 0.0, None))
        new = np.maximum(d - np.sum(L * L, axis=1), floor)
        if np.max(np.abs(new - psi)) <= 1e-8 * np.max(d):
            psi = new
            break
        psi = new
    return psi


def modality_signal_rank_diagonal(X, alpha: float = 1e-3, max_rank: int | None = None, modality: int = 0,
                                  max_rounds: int = 10):
    """Signal rank of one modality whose noise variance differs across features (diagonal noise).

    Alternates (a) the rank-k principal-axis factor analysis estimate psi of the feature noise
    variances and (b) the isotropic test of :func:`modality_signal_rank` on the data whitened by
    psi^(-1/2), starting from the isotropic rank, until the rank repeats (at most ``max_rounds``).
    Returns ``(test, U)`` as :func:`modality_signal_rank`, ``U`` from the whitened data.
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    Xc = X - X.mean(axis=0)
    S = (Xc.T @ Xc) / (n - 1)
    test, U = modality_signal_rank(Xc, alpha=alpha, max_rank=max_rank, modality=modality)
    k = test.rank
    rounds = [k]
    psi = np.diag(S).copy()
    seen = {k}
    for _ in range(max_rounds):
        psi = _paf_noise(S, min(k, p - 1))
        test, U = modality_signal_rank(Xc / np.sqrt(psi), alpha=alpha, max_rank=max_rank, modality=modality)
        rounds.append(test.rank)
        if test.rank == k or test.rank in seen and test.rank < k:
            k = test.rank
            break
        seen.add(test.rank)
        k = test.rank
    test = ModalityRankTest(modality=test.modality, n_features=test.n_features, eigenvalues=test.eigenvalues,
                            thresholds=test.thresholds, noise_var=test.noise_var, rank=test.rank,
                            max_rank=test.max_rank, feature_noise_var=psi, rounds=tuple(rounds))
    return test, U


# ------------------------------------------------------------------------------------------
# step 2: number of non-zero canonical correlations
# ------------------------------------------------------------------------------------------
def _cca_null_threshold(a: int, b: int, n_df: int, alpha: float, q_tw: float) -> float:
    """Upper alpha quantile of the largest squared canonical correlation between an a- and a
    b-dimensional Gaussian vector, independent, with n_df (= n - 1 after centring) degrees of
    freedom. Exact Beta law when min(a, b) = 1; Johnstone (2008) otherwise."""
    lo, hi = min(a, b), max(a, b)
    err_df = n_df - hi
    if err_df < 1:
        return 1.0
    if lo == 1:
        return float(sps.beta.isf(alpha, hi / 2.0, err_df / 2.0))
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

    canonical_corr : all canonical correlations between the d_m principal component scores of
        modality m and the stacked scores of the modalities in T, decreasing
    thresholds : the null threshold (on the correlation scale) of each sequential test j = 0 ..
    rank : h(m, T), the number of consecutive correlations above their thresholds
    schur_rank : d_m - h(m, T), the rank of the Schur complement R_m(T)
    """

    modality: int
    others: tuple
    dims: tuple
    canonical_corr: np.ndarray
    thresholds: np.ndarray
    rank: int
    schur_rank: int
    testable: bool = True


def _canonical_rank(Um, UT, n_df, alpha, q_tw):
    a, b = Um.shape[1], UT.shape[1]
    if a == 0 or b == 0:
        return np.zeros(0), np.zeros(0), 0, True
    rho = np.clip(sla.svdvals(Um.T @ UT, check_finite=False), 0.0, 1.0)
    thr = []
    rank = 0
    testable = True
    for j in range(min(a, b)):
        t2 = _cca_null_threshold(a - j, b - j, n_df - j, alpha, q_tw)
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
    alpha : float
        Level of every sequential test.
    noise : str
        The within-modality noise model of step 1 ("isotropic" or "diagonal").
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
    """

    structure: Structure
    n_samples: int
    n_features: tuple
    alpha: float
    noise: str
    modality_tests: list
    canonical_tests: dict
    moebius: dict
    ranks: dict
    residual: int
    inconsistencies: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

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
                f"residual={self.residual}, alpha={self.alpha:g}, noise={self.noise!r})")

    def summary(self) -> "SelectionSummary":
        """The evidence as text (``str``), Markdown (``as_markdown()``)."""
        return SelectionSummary(self)


class SelectionSummary:
    """Printable evidence of a structure selection: one section per step."""

    def __init__(self, result: SelectionResult):
        self.result = result

    def _sections(self):
        r = self.result
        names = r.structure.names
        secs = []
        info = [
            ("Samples", str(r.n_samples)),
            ("Modalities", ", ".join(f"{names[m]}: {p}" for m, p in enumerate(r.n_features))),
            ("Test level alpha", _fmt(r.alpha)),
            ("Noise model", r.noise + (" (step 1 on data whitened by per-feature noise estimates)"
                                        if r.noise == "diagonal" else " (one noise variance per modality)")),
            ("Selected", ", ".join(f"{self.result._label(S)}: {k}" for S, k in r.ranks.items() if k > 0)
             + f"  (K = {r.structure.n_factors})"),
            ("Consistent", "yes (residual 0)" if r.consistent else f"no (residual {r.residual})"),
        ]
        # step 1
        head1 = ["modality", "p", "noise var", "d_m", "eigenvalue / threshold (k = 1, 2, ...)"]
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
        secs.append(("Step 1: signal rank of each modality (eigenvalues vs the Tracy-Widom noise edge)", head1, rows1))
        # step 2
        head2 = ["m", "T", "dims", "h(m,T)", "d_m-h", "canonical corr / threshold"]
        rows2 = []
        for (m, T), t in r.canonical_tests.items():
            pairs = []
            for j in range(min(len(t.canonical_corr), len(t.thresholds))):
                mark = ">" if t.canonical_corr[j] ** 2 > t.thresholds[j] ** 2 else "<="
                pairs.append(f"{t.canonical_corr[j]:.3f}{mark}{t.thresholds[j]:.3f}")
            shown = pairs if len(pairs) <= 6 else pairs[:2] + ["..."] + pairs[-3:]
            tag = "" if t.testable else " (untestable: dims too large for n)"
            rows2.append([names[m], self.result._label(T), f"{t.dims[0]}x{t.dims[1]}", str(t.rank),
                          str(t.schur_rank), "  ".join(shown) + tag])
        secs.append(("Step 2: rank of Cov(x_m, x_T) by sequential canonical-correlation tests", head2, rows2))
        # step 3
        head3 = ["subset", "level", "Moebius estimate from each modality", "selected rank"]
        rows3 = []
        M = r.structure.n_modalities
        for S, ests in r.moebius.items():
            level = "global" if len(S) == M else ("specific" if len(S) == 1 else "partial")
            e = ", ".join(f"{names[m]}: {v}" for m, v in ests.items())
            rows3.append([self.result._label(S), level, e, str(r.ranks[S])])
        secs.append(("Step 3: rank of each candidate subset (Moebius inversion of the Schur ranks d_m - h(m,T))",
                     head3, rows3))
        return info, secs

    def as_text(self) -> str:
        info, secs = self._sections()
        out = ["Structure selection: evidence", "=" * 78]
        kw = max(len(k) for k, _ in info)
        out += [f"{k.ljust(kw)} : {v}" for k, v in info]
        for title, head, rows in secs:
            out += ["", title, "-" * len(title)]
            w = [max(len(str(x[j])) for x in [head] + rows) for j in range(len(head))]
            out.append("  ".join(str(h).ljust(wj) for h, wj in zip(head, w)).rstrip())
            out += ["  ".join(str(c).ljust(wj) for c, wj in zip(x, w)).rstrip() for x in rows]
        if self.result.inconsistencies:
            out += ["", "Statistics the selected structure does not reproduce:"]
            out += [f"  - {s}" for s in self.result.inconsistencies]
        if self.result.warnings:
            out += ["", "Warnings:"] + [f"  - {s}" for s in self.result.warnings]
        out.append("")
        out.append(str(self.result.structure))
        return "\n".join(out)

    def as_markdown(self) -> str:
        info, secs = self._sections()
        out = ["**Structure selection: evidence**", ""]
        out += [f"- {k}: {v}" for k, v in info]
        for title, head, rows in secs:
            out += ["", f"*{title}*", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(str(c).replace("|", "/") for c in x) + " |" for x in rows]
        if self.result.inconsistencies:
            out += ["", "Not reproduced: " + "; ".join(self.result.inconsistencies)]
        if self.result.warnings:
            out += ["", "Warnings: " + "; ".join(self.result.warnings)]
        return "\n".join(out)

    def __str__(self):
        return self.as_text()

    __repr__ = __str__


# ------------------------------------------------------------------------------------------
# public entry point
# ------------------------------------------------------------------------------------------
def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (0.0 < float(alpha) <= 0.1):
        raise ValueError(f"The 'alpha' parameter of select_structure must be a float in (0, 0.1]. Got {alpha!r} instead.")
    return float(alpha)


def _check_max_rank(max_rank):
    if max_rank is None:
        return None
    if isinstance(max_rank, bool) or not isinstance(max_rank, numbers.Integral) or max_rank < 1:
        raise ValueError(f"The 'max_rank' parameter of select_structure must be a positive int or None. Got {max_rank!r} instead.")
    return int(max_rank)


def select_structure(Xs, *, alpha=1e-3, max_rank=None, noise="isotropic", names=None, return_details=False):
    """Select the structure (which subsets of modalities carry factors, and their ranks) from data.

    Parameters
    ----------
    Xs : list of ndarray of shape (n_samples, p_m)
        One array per modality (2 to 8 modalities; 1 gives a single specific block), the same
        samples in the same row order.
    alpha : float in (0, 0.1], default 1e-3
        Level of each sequential test (eigenvalue vs noise edge, canonical correlation vs null).
        Smaller values ask for stronger evidence before adding a factor.
    max_rank : int, optional
        Largest signal rank tested per modality (default: p_m - 1, or n_samples - 2).
    noise : {"isotropic", "diagonal"}, default "isotropic"
        Noise model within a modality for step 1. "isotropic" (the model of hcl_method.md): one
        noise variance per modality. "diagonal": one per feature (e.g. real data with features on
        different scales); the modality is whitened by a principal-axis factor-analysis estimate
        of the feature noise variances, alternating with the rank test until the rank repeats.
        Steps 2 and 3 do not depend on it (cross-covariances carry no noise).
    names : sequence of str, optional
        Modality names for the returned structure and the summary.
    return_details : bool, default False
        Also return the :class:`SelectionResult` (``.summary()`` prints the evidence).

    Returns
    -------
    structure : Structure
    details : SelectionResult
        Only with ``return_details=True``.

    Raises
    ------
    ValueError
        For malformed inputs, when some modality shows no factor above the noise (a structure
        needs at least one factor per modality), or when the selected number of factors leaves
        too few samples (K >= n_samples - 1).

    Warns
    -----
    DataWarning
        When some canonical-correlation test cannot be run because the reduced dimensions are
        too large for n (the corresponding ranks are then unreliable), or the statistics are
        not consistent with any single structure (the closest one is returned).
    IdentifiabilityWarning
        When the selected structure violates ``Structure.check_identifiable``.

    Notes
    -----
    See the module docstring for the three steps. Identification needs uncorrelated latent
    factors, noise independent across modalities and isotropic within each, and generic
    loadings: under these every statistic used is a population rank, so the structure is
    recovered with probability tending to one as n grows with the dimensions fixed. Weak factors
    (eigenvalue of a block below the noise edge, about sigma^2 sqrt(p_m / n)) cannot be seen.

    Examples
    --------
    >>> from hcl_stats import Structure, simulate, select_structure
    >>> s = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 2, (2,): 1}, 3)
    >>> data = simulate(s, (30, 40, 50), 1000, noise_var=1.0, rng=0, loadings="gaussian")
    >>> select_structure(data.Xs) == s
    True
    """
    if isinstance(Xs, (list, tuple)) and 0 < len(Xs) and len(Xs) > MAX_MODALITIES:
        raise ValueError(f"Xs must contain at most {MAX_MODALITIES} modalities for structure selection (2^M - 1 candidate subsets); got {len(Xs)}.")
    Xs = check_Xs(Xs, min_samples=5)
    alpha = _check_alpha(alpha)
    max_rank = _check_max_rank(max_rank)
    if noise not in ("isotropic", "diagonal"):
        raise ValueError(f"The 'noise' parameter of select_structure must be one of {{'isotropic', 'diagonal'}}. Got {noise!r} instead.")
    if not isinstance(return_details, (bool, np.bool_)):
        raise ValueError(f"The 'return_details' parameter of select_structure must be a bool. Got {return_details!r} instead.")
    M = len(Xs)
    n = Xs[0].shape[0]
    n_df = n - 1
    n_features = tuple(X.shape[1] for X in Xs)
    if names is not None:
        names = tuple(str(x) for x in names)
        if len(names) != M:
            raise ValueError(f"names must have one entry per modality ({M}); got {len(names)} entries {names!r}.")
    label = (lambda m: names[m]) if names is not None else (lambda m: f"Xs[{m}]")
    q_tw = tracy_widom1_quantile(alpha)
    notes = []

    # step 1
    mtests, Us = [], []
    for m, X in enumerate(Xs):
        if X.shape[1] < 2:
            raise ValueError(f"Xs[{m}] must have at least 2 features to separate signal from noise; got shape {X.shape}.")
        rank_test = modality_signal_rank if noise == "isotropic" else modality_signal_rank_diagonal
        t, U = rank_test(X, alpha=alpha, max_rank=max_rank, modality=m)
        mtests.append(t)
        Us.append(U)
    empty = [m for m, t in enumerate(mtests) if t.rank == 0]
    if empty:
        det = "; ".join(
            f"{label(m)}: largest eigenvalue {_fmt(mtests[m].eigenvalues[0])} <= noise edge {_fmt(mtests[m].thresholds[0])}"
            if len(mtests[m].thresholds) else f"{label(m)}: too few samples or features to test"
            for m in empty)
        raise ValueError(
            f"Xs: no factor detected above the noise level in modalities {empty} at alpha={alpha:g} ({det}); "
            f"every modality must carry at least one factor. More samples, a larger alpha, or dropping these modalities may help.")
    d = [t.rank for t in mtests]
    for m, t in enumerate(mtests):
        if t.rank == t.max_rank:
            notes.append(f"{label(m)}: every tested eigenvalue is above the noise edge (rank hit its limit {t.max_rank}); "
                         "the noise level or the rank may be wrong")

    # step 2
    ctests, h = {}, {}
    for m in range(M):
        others = [i for i in range(M) if i != m]
        for k in range(1, len(others) + 1):
            for T in itertools.combinations(others, k):
                UT = np.hstack([Us[t] for t in T])
                Q, _ = sla.qr(UT, mode="economic", check_finite=False)
                rho, thr, rank, testable = _canonical_rank(Us[m], Q, n_df, alpha, q_tw)
                ctests[(m, T)] = CanonicalRankTest(modality=m, others=T, dims=(Us[m].shape[1], Q.shape[1]),
                                                   canonical_corr=rho, thresholds=thr, rank=rank,
                                                   schur_rank=d[m] - rank, testable=testable)
                h[(m, T)] = rank
                if not testable:
                    notes.append(f"canonical correlations of {label(m)} vs {T}: dimensions {Us[m].shape[1]}x{Q.shape[1]} too large for n = {n}")

    # step 3
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
    K = struct.n_factors
    if K >= n - 1:
        raise ValueError(f"Xs has n_samples = {n}, too few for the {K} factors detected (needs n_samples > K + 1); "
                         "collect more samples or lower max_rank.")
    problems = struct.check_identifiable(n_features)
    if problems:
        notes.append("selected structure violates identifiability conditions: " + "; ".join(problems))
        warnings.warn(f"select_structure: the selected structure violates identifiability conditions: {'; '.join(problems)}",
                      IdentifiabilityWarning, stacklevel=2)
    data_notes = [s for s in notes if not s.startswith("selected structure")]
    if data_notes:
        warnings.warn("select_structure: " + "; ".join(data_notes), DataWarning, stacklevel=2)
    if not return_details:
        return struct
    res = SelectionResult(structure=struct, n_samples=n, n_features=n_features, alpha=alpha, noise=noise,
                          modality_tests=mtests, canonical_tests=ctests, moebius=moeb, ranks=ranks,
                          residual=residual, inconsistencies=incons, warnings=notes)
    return struct, res
