"""p > n without p x p matrices (DataStats) and the EM that converges (PX-EM under SQUAREM).

Tolerances stated before the runs: the data path equals the covariance path to 1e-8 (relative
Gram error of the loadings, relative noise variances) on small p > n problems; eigenpairs and
factor-analysis noise to 1e-10 relative.
"""
import warnings

import numpy as np
import pytest

from hcl_stats import HCL, Structure, simulate
from hcl_stats import covariance as cov_mod
from hcl_stats.covariance import CovarianceStats, DataStats, data_statistics, fit_statistics, sample_covariance
from hcl_stats.estimation import METHODS, ml
from hcl_stats.estimation.linalg import top_eigh
from hcl_stats.estimation.noise import bottom_eigenvalue_noise, factor_noise
from hcl_stats.estimation.shrinkage import noise_and_shrunk_factor
from hcl_stats.exceptions import DataWarning
from hcl_stats.selection import _duplicate_pairs_from_data, modality_signal_rank_feature

S3 = Structure({(0, 1, 2): 2, (0, 1): 1, (1, 2): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
NF = (40, 60, 80)
N = 50


def _data(seed=1, nf=NF, n=N, scale=0.5):
    psi = np.random.default_rng(seed).uniform(0.5, 2.0, sum(nf))
    return simulate(S3, nf, n, psi, random_state=seed, loadings="gaussian", loading_scale=scale)


def rel_gram(A, B):
    GA, GB = A @ A.T, B @ B.T
    return np.linalg.norm(GA - GB) / np.linalg.norm(GB)


# -- DataStats ---------------------------------------------------------------------------
def test_fit_statistics_switches_on_p_greater_than_n():
    d = _data()
    assert isinstance(fit_statistics(d.Xs), DataStats)                        # p = 180 > n = 50
    Xs = [x[:, :10] for x in d.Xs]
    assert isinstance(fit_statistics(Xs), CovarianceStats)                    # p = 30 <= n


def test_fit_statistics_boundary_p_equal_n_keeps_the_covariance():
    X = np.random.default_rng(0).standard_normal((30, 30))
    assert isinstance(fit_statistics([X[:, :10], X[:, 10:]]), CovarianceStats)
    assert isinstance(fit_statistics([X[:29, :10], X[:29, 10:]]), DataStats)


def test_dense_cov_size_limits_default():
    # 8 p^2 above 2 GiB (p > 16384) is refused before anything is allocated
    big = DataStats(np.zeros((2, 16385)), np.zeros(16385), 2, (16385,))
    with pytest.raises(MemoryError, match=r"16385 x 16385 .* \(2.0 GiB\)"):
        big.cov
    # 128 MiB (p = 4000) is formed silently
    X = np.random.default_rng(0).standard_normal((3, 4000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C = DataStats(X - X.mean(0), X.mean(0), 3, (4000,)).cov
    assert C.shape == (4000, 4000)


def test_datastats_products_diagonal_eigenpairs_equal_dense():
    d = _data()
    ds, cs = data_statistics(d.Xs), sample_covariance(d.Xs)
    V = np.random.default_rng(0).standard_normal((180, 4))
    np.testing.assert_allclose(ds @ V, cs.cov @ V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ds.feature_var, np.diag(cs.cov), rtol=1e-13)
    np.testing.assert_allclose(ds.cov, cs.cov, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ds.mean, cs.mean)
    scale = np.sqrt(ds.feature_var)
    w, U = ds.top_eigh(6, scale=scale)
    w0, U0 = top_eigh(cs.cov / scale[:, None] / scale[None, :], 6)
    np.testing.assert_allclose(w, w0, rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(U * U0, axis=0)), 1.0, atol=1e-10)
    # beyond the rank of the data (n - 1 = 49): zero eigenvalues, zero vectors
    w, U = ds.top_eigh(60)
    assert np.all(w[49:] == 0) and np.all(U[:, 49:] == 0) and w[48] > 0
    sub = ds.columns(slice(40, 100))
    np.testing.assert_allclose(sub.feature_var, ds.feature_var[40:100])
    assert sub.n_features == (60,)


def test_dense_cov_is_refused_above_the_limit_and_warned_above_the_warning_size(monkeypatch):
    d = _data()
    monkeypatch.setattr(cov_mod, "_DENSE_MAX_BYTES", 8 * 100 * 100)
    with pytest.raises(MemoryError, match=r"180 x 180 sample covariance .* use HCL\(method='ml'\)"):
        data_statistics(d.Xs).cov
    monkeypatch.setattr(cov_mod, "_DENSE_MAX_BYTES", 2 * 1024**3)
    monkeypatch.setattr(cov_mod, "_DENSE_WARN_BYTES", 8 * 100 * 100)
    with pytest.warns(DataWarning, match="dense 180 x 180"):
        data_statistics(d.Xs).cov


@pytest.mark.parametrize("method", ["als", "paper", "init"])
def test_covariance_methods_refuse_clearly_when_p_is_too_large(monkeypatch, method):
    d = _data()
    monkeypatch.setattr(cov_mod, "_DENSE_MAX_BYTES", 8 * 100 * 100)
    with pytest.raises(MemoryError, match="GiB"):
        HCL(S3, method=method).fit(d.Xs)


# -- noise, factor analysis, shrinkage from data -------------------------------------------
@pytest.mark.parametrize("p_block", [40, 260])   # the dense branch (p <= 200) and subspace iteration
def test_factor_noise_from_data_equals_dense(p_block):
    d = _data(nf=(p_block, 60, 80))
    X = d.Xs[0]
    Xc = X - X.mean(0)
    ds = DataStats(Xc, np.zeros(p_block), N, (p_block,))
    a, ia = factor_noise(ds, 3, tol=1e-9, max_iter=500)
    b, ib = factor_noise(Xc.T @ Xc / (N - 1), 3, tol=1e-9, max_iter=500)
    assert ia["n_iter"] == ib["n_iter"]
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert bottom_eigenvalue_noise(ds, 3) == pytest.approx(bottom_eigenvalue_noise(Xc.T @ Xc / (N - 1), 3), rel=1e-12)


@pytest.mark.parametrize("noise", ["feature", "modality", "isotropic"])
def test_shrunk_factor_from_data_equals_dense(noise):
    d = _data()
    ds, cs = data_statistics(d.Xs), sample_covariance(d.Xs)
    kw = {} if noise == "isotropic" else dict(rows=S3.row_slices(NF), block_ranks=[4, 5, 4], noise=noise)
    s1, F1, _ = noise_and_shrunk_factor(ds, N, S3.n_factors, **kw)
    s2, F2, _ = noise_and_shrunk_factor(cs.cov, N, S3.n_factors, **kw)
    np.testing.assert_allclose(s1, s2, rtol=1e-9)
    assert rel_gram(F1, F2) < 1e-9


# -- the fits -----------------------------------------------------------------------------
@pytest.mark.parametrize("noise,shrinkage", [("feature", True), ("modality", True), ("isotropic", True),
                                             ("feature", False), ("modality", False)])
def test_ml_from_data_equals_covariance_path(noise, shrinkage):
    for seed in (1, 2):
        d = _data(seed)
        a = METHODS["ml"](sample_covariance(d.Xs), S3, noise=noise, shrinkage=shrinkage)
        b = METHODS["ml"](data_statistics(d.Xs), S3, noise=noise, shrinkage=shrinkage)
        assert a.converged and b.converged
        assert rel_gram(b.loadings, a.loadings) < 1e-8
        np.testing.assert_allclose(b.noise_var, a.noise_var, rtol=1e-8)


@pytest.mark.parametrize("method", ["als", "paper", "init"])
def test_covariance_methods_run_on_datastats_with_the_same_answer(method):
    d = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {} if method == "init" else dict(max_iter=50)   # init has no iterations (max_iter would be an error)
        a = HCL(S3, method=method, **kw).fit_covariance(sample_covariance(d.Xs).cov, NF, N)
        b = HCL(S3, method=method, **kw).fit(d.Xs)
    assert rel_gram(b.loadings_, a.loadings_) < 1e-8


def test_default_fit_p_greater_than_n_and_goodness_of_fit():
    d = _data()
    h = HCL(S3).fit(d.Xs)
    assert h.converged_
    ref = HCL(S3).fit_covariance(sample_covariance(d.Xs).cov, NF, N)
    assert rel_gram(h.loadings_, ref.loadings_) < 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g1 = h.goodness_of_fit()
        g2 = ref.goodness_of_fit()
    assert str(g1) == str(g2)


# -- selection from data ------------------------------------------------------------------
def test_feature_rank_test_from_data_equals_dense():
    d = _data(nf=(60, 90, 120))
    for X in d.Xs:
        Xc = X - X.mean(0)
        a, Ua = modality_signal_rank_feature(X)                                  # p > n: DataStats
        b, Ub = modality_signal_rank_feature(Xc, _cov=Xc.T @ Xc / (N - 1))       # dense
        assert a.rank == b.rank and a.rank > 0
        np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-10)
        np.testing.assert_allclose(a.noise_var_features, b.noise_var_features, rtol=1e-10)
        assert [r[0] for r in a.rounds] == [r[0] for r in b.rounds]
        np.testing.assert_allclose(np.abs(Ua.T @ Ub), np.eye(a.rank), atol=1e-8)


def test_duplicate_features_found_without_the_correlation_matrix():
    X = np.random.default_rng(3).standard_normal((20, 300))
    X[:, 250] = -2.5 * X[:, 7]
    X[:, 11] = X[:, 12] + 1e-3 * X[:, 13]      # correlated, not duplicated
    Xc = X - X.mean(0)
    assert _duplicate_pairs_from_data(Xc) == [(7, 250)]


# -- EM: parameter expansion, stopping rule, convergence message ------------------------------
def test_px_factor_keeps_the_support_and_is_identity_at_b_equal_identity():
    lay = ml._Layout(S3, NF)
    K = S3.n_factors
    np.testing.assert_allclose(ml._px_factor(np.eye(K), lay), np.eye(K), atol=1e-15)
    np.testing.assert_array_equal(ml._px_factor(np.zeros((K, K)), lay), np.eye(K))   # singular B: plain EM step
    A = np.random.default_rng(0).standard_normal((K, 3 * K))
    B = A @ A.T / (3 * K)
    L = ml._px_factor(B, lay)
    W = np.random.default_rng(1).standard_normal((sum(NF), K)) * lay.mask
    assert np.all((W @ L)[~lay.mask] == 0)
    # L L^T = the restricted ML estimate of the factor covariance; on the full pattern it reproduces
    # B's blocks of each subset given its supersets: the subsets' diagonal blocks of L L^T match B's
    LLt = L @ L.T
    for s in S3.subsets:
        c = S3.column_slices[s]
        if not any(set(s) < set(t) for t in S3.subsets):
            np.testing.assert_allclose(LLt[c, c], B[c, c], rtol=1e-12)


def _slow_case():
    # a shared factor barely distinguishable from a pairwise one: the slow ridge of plain EM
    s = Structure({(0, 1, 2): 3, (0, 1): 1, (0, 2): 1, (1, 2): 1, (0,): 2, (1,): 1, (2,): 1}, 3)
    nf = (100, 200, 300)
    psi = np.random.default_rng(0).uniform(0.5, 2.0, sum(nf))
    d = simulate(s, nf, 100, psi, random_state=1, loadings="gaussian", loading_scale=0.3)
    st = data_statistics(d.Xs)
    st = st.scaled(np.sqrt(st.feature_var))
    sigma2, Sop, W0, _ = ml._start(st, s, True, "feature")
    return Sop, W0, np.maximum(sigma2, 1e-8), ml._Layout(s, nf)


def test_px_em_is_monotone_and_reaches_the_em_optimum_faster():
    Sop, W0, psi0, lay = _slow_case()
    px = ml.em_fit(Sop, W0, psi0, lay, noise="feature", max_iter=3000, tol=1e-13, gtol=1e-10, accelerate=None, px=True)
    plain = ml.em_fit(Sop, W0, psi0, lay, noise="feature", max_iter=3000, tol=1e-13, gtol=1e-10, accelerate=None,
                      px=False)
    ll = px["history"]["loglik"]
    assert np.all(np.diff(ll) >= -1e-10 * np.abs(ll[1:]))
    assert px["converged"]
    assert px["n_iter"] < plain["n_iter"] / 3
    assert px["history"]["loglik"][-1] >= plain["history"]["loglik"][-1] - 1e-9
    sq = ml.em_fit(Sop, W0, psi0, lay, noise="feature", max_iter=3000, tol=1e-13, gtol=1e-10)   # default: PX on
    assert sq["converged"] and sq["n_iter"] < px["n_iter"]
    assert rel_gram(sq["W"], px["W"]) < 1e-6
    # with SQUAREM on both, PX still halves the E-steps -- judged over several equally valid spectral starts (each
    # modality's block columns with random signs; the count depends on the start: from the package's start 94 vs
    # 161, over the 8 starts 1.7-3.3 times fewer, median 2.7; 93 vs 250 from the start before the sign convention)
    ratios = []
    for seed in range(8):
        W = W0.copy()
        if seed:
            flip = np.random.default_rng(seed)
            for r in lay.rows:
                W[r] *= np.where(flip.random(W.shape[1]) < 0.5, -1.0, 1.0)
        a = ml.em_fit(Sop, W, psi0, lay, noise="feature", max_iter=3000, tol=1e-13, gtol=1e-10)
        b = ml.em_fit(Sop, W, psi0, lay, noise="feature", max_iter=3000, tol=1e-13, gtol=1e-10, px=False)
        assert a["converged"] and b["converged"] and a["n_estep"] < b["n_estep"]
        ratios.append(b["n_estep"] / a["n_estep"])
    assert np.median(ratios) > 2, ratios


def test_stopping_rule_is_scale_free():
    # a power of two rescales exactly in floating point: every quantity of the stopping rule is then
    # unchanged (the log-likelihood shifts by a constant, its increase does not)
    d = _data()
    a = METHODS["ml"](data_statistics(d.Xs), S3, noise="modality", shrinkage=True)
    b = METHODS["ml"](data_statistics([2.0**20 * x for x in d.Xs]), S3, noise="modality", shrinkage=True)
    c = METHODS["ml"](data_statistics([2.0**-20 * x for x in d.Xs]), S3, noise="modality", shrinkage=True)
    # the trajectories agree until rounding near the optimum (log-likelihoods differing by a constant
    # are compared there) may flip one SQUAREM acceptance: the same stopping quantities early on, the
    # same iteration count to one iteration, the same answer
    for r in (b, c):
        np.testing.assert_allclose(r.history["kkt"][:6], a.history["kkt"][:6], rtol=1e-6)
        np.testing.assert_allclose(np.diff(r.history["loglik"][:6]), np.diff(a.history["loglik"][:6]), rtol=1e-6)
        assert r.converged and abs(r.n_iter - a.n_iter) <= 1
    assert rel_gram(b.loadings / 2.0**20, a.loadings) < 1e-8   # equivalent computations (module docstring)


@pytest.mark.parametrize("noise", ["feature", "modality", "isotropic"])
def test_noise_gradient_matches_finite_differences(noise):
    s = Structure({(0, 1): 2, (0,): 1, (1,): 1}, 2)
    nf, p = (5, 7), 12
    rng = np.random.default_rng(0)
    C = np.cov(rng.standard_normal((40, p)).T)
    lay = ml._Layout(s, nf)
    W = rng.standard_normal((p, 4)) * lay.mask
    psi = rng.uniform(0.5, 2.0, p)
    st = ml._estep(C, W, psi)
    g = ml._psi_gradient(np.diag(C).copy(), st[0], st[2], st[3], psi, noise, lay)
    groups = ([np.eye(p)[j].astype(bool) for j in range(p)] if noise == "feature" else
              [np.ones(p, bool)] if noise == "isotropic" else [np.arange(p) < 5, np.arange(p) >= 5])
    eps = 1e-6
    fd = [(ml._estep(C, W, psi * (1 + eps * m))[5] - ml._estep(C, W, psi * (1 - eps * m))[5]) / (2 * eps) for m in groups]
    np.testing.assert_allclose(g, fd, atol=1e-7)


def test_unconverged_fit_says_what_to_change():
    d = _data()
    res = METHODS["ml"](data_statistics(d.Xs), S3, noise="feature", shrinkage=True, max_iter=2)
    assert not res.converged
    msg = res.info["convergence_message"]
    assert "stopped after 2 EM iterations (max_iter=2)" in msg
    assert "Increase max_iter (e.g. max_iter=8)" in msg and "nats per sample and feature" in msg
    ok = METHODS["ml"](data_statistics(d.Xs), S3, noise="feature", shrinkage=True)
    assert ok.converged and "convergence_message" not in ok.info


def test_em_runs_small_products_on_one_blas_thread():
    F = np.ones((10, 2))
    assert ml._blas_limit(ml.LowRankCov(F, 1.0), np.zeros((10, 2)), "auto") == 1
    assert ml._blas_limit(np.eye(10), np.zeros((10, 2)), "auto") == 1
    assert ml._blas_limit(np.eye(10), np.zeros((1_000_000, 2)), "auto") is None
    assert ml._blas_limit(np.eye(10), np.zeros((999_999, 2)), "auto") == 1
    assert ml._blas_limit(np.eye(10), np.zeros((10, 2)), None) is None
    assert ml._blas_limit(np.eye(10), np.zeros((10, 2)), 2) == 2
