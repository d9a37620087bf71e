"""Alternating exact block updates (method="als"): monotone objective, exact recovery."""
import numpy as np
import pytest

from _hcl_designs import DESIGNS
from hcl_stats import HCL, simulate
from hcl_stats.covariance import sample_covariance
from hcl_stats.estimation.als import _Target, _block_update, fit_als
from hcl_stats.estimation.init import spectral_init
from hcl_stats.estimation.lowrank import spectral_init_lowrank
from hcl_stats.metrics import gram_errors, overall_gram_error

TIGHT = dict(tol=1e-15, gtol=1e-12, max_iter=20000)


@pytest.mark.parametrize("M", [2, 3, 4, 5])
@pytest.mark.parametrize("shrinkage", [False, True])
def test_exact_recovery_from_population(M, shrinkage):
    s, nf = DESIGNS[M]
    # the dense target uses one noise variance; the shrunk target one per modality
    nv = [0.3 + 0.2 * m for m in range(M)] if shrinkage else 0.5
    d = simulate(s, nf, 10, noise_var=nv, rng=M)
    h = HCL(s, method="als", shrinkage=shrinkage, **TIGHT).fit_covariance(d.covariance(), nf)
    assert h.converged_
    assert overall_gram_error(h.loadings_, d.loadings, relative=True) < 1e-8
    np.testing.assert_allclose(h.noise_var_, d.noise_var, rtol=1e-10)


@pytest.mark.parametrize("shrinkage", [False, True])
def test_objective_never_increases(shrinkage):
    s, nf = DESIGNS[4]
    d = simulate(s, nf, 400, noise_var=2.0, rng=1)
    res = fit_als(sample_covariance(d.Xs), s, max_iter=200, tol=1e-12, gtol=1e-9, shrinkage=shrinkage)
    f = res.history["objective"]
    assert len(f) > 3
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    assert len(res.history["kkt"]) == len(f)


def test_block_update_is_the_exact_block_minimiser():
    # with the other blocks fixed, no perturbation of the updated block lowers the objective
    s, nf = DESIGNS[3]
    rng = np.random.default_rng(0)
    d = simulate(s, nf, 300, noise_var=1.0, rng=2)
    st = sample_covariance(d.Xs)
    S_W = st.cov - 1.0 * np.eye(st.cov.shape[0])
    W = spectral_init(S_W, s, nf)
    rows = s.row_slices(nf)
    sub = (0, 1, 2)
    cs = s.column_slice(sub)
    idx = np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in sub])
    others = np.setdiff1d(np.arange(s.n_factors), np.arange(cs.start, cs.stop))
    for target in (_Target(dense=S_W), _Target(factor=np.linalg.cholesky(S_W + 10 * np.eye(len(S_W))))):
        T = target.dense if target.dense is not None else target.factor @ target.factor.T
        W[np.ix_(idx, np.arange(cs.start, cs.stop))] = _block_update(W, target, idx, cs, others, s.rank(sub))
        f0 = 0.5 * np.sum((W @ W.T - T) ** 2)
        for _ in range(20):
            V = W.copy()
            V[np.ix_(idx, np.arange(cs.start, cs.stop))] += 1e-3 * rng.standard_normal((len(idx), cs.stop - cs.start))
            assert 0.5 * np.sum((V @ V.T - T) ** 2) >= f0


@pytest.mark.parametrize("M", [2, 3, 4, 5])
def test_lowrank_init_equals_dense_init(M):
    s, nf = DESIGNS[M]
    F = np.random.default_rng(M).standard_normal((sum(nf), s.n_factors))
    A = spectral_init(F @ F.T, s, nf)
    B = spectral_init_lowrank(F, s, nf)
    scale = np.linalg.norm(F) ** 2
    assert max(gram_errors(A, B, s, nf).values()) < 1e-9 * scale


def test_als_recovers_cross_modal_alignment_from_data():
    s, nf = DESIGNS[3]
    errs = []
    for seed in range(3):
        d = simulate(s, nf, 20000, noise_var=0.1, rng=seed)
        h = HCL(s, method="als", shrinkage=False).fit(d.Xs)
        errs.append(overall_gram_error(h.loadings_, d.loadings, relative=True))
    assert np.median(errs) < 0.1


# -- the matrix-free block update (LOBPCG), acceleration, stopping rule ------------------------
from hcl_stats import Structure  # noqa: E402
from hcl_stats.covariance import CovarianceStats  # noqa: E402
from hcl_stats.estimation import als as als_mod  # noqa: E402
from hcl_stats.estimation.linalg import top_eigh  # noqa: E402

BIG = (Structure({(0, 1, 2): 2, (0, 1): 1, (1, 2): 1, (0,): 1, (1,): 2, (2,): 1}, 3), (50, 60, 70))


def _big_stats(n=None, seed=0, noise=1.0):
    s, nf = BIG
    d = simulate(s, nf, 2000 if n is None else n, noise_var=noise, rng=seed)
    cov = d.covariance() if n is None else sample_covariance(d.Xs).cov
    return s, nf, d, CovarianceStats(cov=cov, mean=np.zeros(sum(nf)), n_samples=n, n_features=nf)


def test_matrix_free_block_update_equals_dense_eigendecomposition():
    # rows of (0, 1, 2): 180 > _DENSE_MAX, so the update runs LOBPCG on X -> T X - O (O^T X)
    s, nf, _, st = _big_stats(n=500, seed=3)
    assert sum(nf) > als_mod._DENSE_MAX
    sigma2 = 1.0
    target = _Target(dense=st.cov, shift=sigma2)
    S_W = st.cov - sigma2 * np.eye(sum(nf))
    W = spectral_init(S_W, s, nf)
    rows = s.row_slices(nf)
    for sub in [(0, 1, 2), (1, 2)]:
        cs = s.column_slice(sub)
        idx = np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in sub])
        others = np.setdiff1d(np.arange(s.n_factors), np.arange(cs.start, cs.stop))
        O = W[np.ix_(idx, others)]
        w, V = top_eigh(S_W[np.ix_(idx, idx)] - O @ O.T, s.rank(sub))
        G_dense = (V * np.clip(w, 0, None)) @ V.T
        Wb, TWb, n_inner, _ = _block_update(W, target, idx, cs, others, s.rank(sub), return_tw=True)
        assert n_inner >= 1
        assert np.linalg.norm(Wb @ Wb.T - G_dense) < 1e-6 * np.linalg.norm(G_dense)
        # T[S, S] @ block is carried along from the inner products (no separate product)
        np.testing.assert_allclose(TWb, S_W[np.ix_(idx, idx)] @ Wb, atol=1e-9 * np.abs(TWb).max())


def test_block_update_rotates_onto_the_current_block():
    # the Procrustes gauge: the update changes W W^T only; applied to its own output it is a fixed point
    s, nf, _, st = _big_stats(n=None, seed=1)
    target = _Target(dense=st.cov, shift=1.0)
    W = spectral_init(st.cov - np.eye(sum(nf)), s, nf)
    rows = s.row_slices(nf)
    sub = (0, 1, 2)
    cs = s.column_slice(sub)
    idx = np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in sub])
    others = np.setdiff1d(np.arange(s.n_factors), np.arange(cs.start, cs.stop))
    W[np.ix_(idx, np.arange(cs.start, cs.stop))] = _block_update(W, target, idx, cs, others, 2)
    again = _block_update(W, target, idx, cs, others, 2)
    np.testing.assert_allclose(again, W[np.ix_(idx, np.arange(cs.start, cs.stop))], atol=1e-7)


@pytest.mark.parametrize("accelerate", ["squarem", "anderson", None])
def test_matrix_free_path_recovers_population_and_is_monotone(accelerate):
    s, nf, d, st = _big_stats(n=None, seed=2)
    res = fit_als(st, s, tol=1e-14, gtol=1e-9, max_iter=3000, accelerate=accelerate)
    assert res.converged
    assert overall_gram_error(res.loadings, d.loadings, relative=True) < 1e-6
    f = res.history["objective"]
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    assert res.history["kkt"][-1] <= 1e-9


def test_squarem_needs_fewer_sweeps_than_plain_sweeps():
    s, nf, _, st = _big_stats(n=400, seed=4, noise=2.0)
    plain = fit_als(st, s, tol=1e-12, gtol=1e-7, max_iter=5000, accelerate=None)
    fast = fit_als(st, s, tol=1e-12, gtol=1e-7, max_iter=5000)
    assert plain.converged and fast.converged
    assert fast.n_iter < plain.n_iter
    assert fast.history["n_extrapolated"] > 0
    # both reach the same stationary value of the objective
    assert abs(fast.history["objective"][-1] - plain.history["objective"][-1]) <= 1e-6 * plain.history["objective"][-1]


def test_stopping_rule_is_scale_free():
    # scaling the covariance by c scales W by sqrt(c): same sweeps, same decision (c = 2^12, so the
    # scaling is exact in floating point and any difference would come from an absolute threshold)
    s, nf, _, st = _big_stats(n=400, seed=5, noise=2.0)
    a = fit_als(st, s, max_iter=300)
    st2 = CovarianceStats(cov=4096.0 * st.cov, mean=st.mean, n_samples=st.n_samples, n_features=nf)
    b = fit_als(st2, s, max_iter=300)
    assert a.n_iter == b.n_iter and a.converged == b.converged
    np.testing.assert_allclose(b.loadings, 64.0 * a.loadings, rtol=1e-9, atol=1e-9 * np.abs(b.loadings).max())


def test_documented_defaults_are_pinned():
    import inspect

    sig = inspect.signature(fit_als)
    assert sig.parameters["max_iter"].default == 500
    assert sig.parameters["tol"].default == 1e-10
    assert sig.parameters["gtol"].default == 1e-6
    assert sig.parameters["accelerate"].default == "squarem"
    assert (als_mod._INNER_TOL, als_mod._SWEEP_INNER_MAX, als_mod._N_GUARD, als_mod._DENSE_MAX) == (1e-9, 3, 3, 96)


def test_bad_accelerate_is_a_clear_error():
    s, nf, _, st = _big_stats(n=None, seed=0)
    with pytest.raises(ValueError, match=r"The 'accelerate' parameter of als_refine must be one of .*Got 'fast' instead"):
        fit_als(st, s, accelerate="fast")


def test_target_with_shift_is_never_copied_and_exact():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((30, 30))
    C = A @ A.T
    t = _Target(dense=C, shift=0.7)
    assert t.dense is C
    T = C - 0.7 * np.eye(30)
    assert t.sq == pytest.approx(np.sum(T * T), rel=1e-12)
    X = rng.standard_normal((30, 3))
    idx = np.r_[0:10, 20:30]
    runs = als_mod._runs(idx)
    assert len(runs) == 2
    np.testing.assert_allclose(t.block_times(runs, X[idx]), T[np.ix_(idx, idx)] @ X[idx], atol=1e-12)


# -- sparse loadings inside the ALS loop ---------------------------------------------------------
def _sparse_fit(alpha, l1_ratio, gtol=1e-7):
    s, nf = DESIGNS[3]
    d = simulate(s, nf, 500, noise_var=0.5, rng=0)
    st = sample_covariance(d.Xs)
    return s, nf, st, fit_als(st, s, alpha=alpha, l1_ratio=l1_ratio, gtol=gtol, tol=1e-12, max_iter=5000)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_sparse_als_is_monotone_and_sparse(l1_ratio):
    s, nf, st, res = _sparse_fit(0.01, l1_ratio, gtol=1e-6)
    assert res.converged
    f = res.history["objective"]
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    W = res.loadings
    assert not np.any(W[~s.support_mask(nf)])
    assert 0.1 < np.mean(W[s.support_mask(nf)] == 0) < 0.9
    dense = fit_als(st, s, alpha=0.0)
    assert not np.any(dense.loadings[s.support_mask(nf)] == 0)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_sparse_als_stationary_point_checked_with_cvxpy(l1_ratio):
    # at the returned W, W = prox_{t pen}(W - t grad f(W)) (first-order stationarity of the penalised
    # objective): the convex prox problem is solved independently by cvxpy
    cp = pytest.importorskip("cvxpy")
    from hcl_stats.estimation.sparse import penalty_value

    s, nf, st, res = _sparse_fit(0.01, l1_ratio, gtol=1e-7)
    assert res.converged
    W = res.loadings
    sigma2 = res.info["sigma2"]
    T = st.cov - sigma2 * np.eye(sum(nf))
    mask = s.support_mask(nf)
    normT = np.linalg.norm(T)
    lam = 0.01 * normT ** 1.5
    t = 1.0 / (2.0 * normT)
    G = 2.0 * (W @ (W.T @ W) - T @ W) * mask
    Y = W - t * G
    V = cp.Variable(W.shape)
    rows = s.row_slices(nf)
    pen = l1_ratio * cp.sum(cp.abs(V))
    for sub, sl in s.column_slices.items():
        for m in sub:
            pen = pen + (1 - l1_ratio) * np.sqrt(sl.stop - sl.start) * cp.sum(cp.norm(V[rows[m], sl], 2, axis=1))
    cons = [cp.multiply(V, (~mask).astype(float)) == 0]
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(V - Y) + t * lam * pen), cons).solve(solver="CLARABEL")
    scale = np.abs(W).max()
    np.testing.assert_allclose(V.value, W, atol=1e-5 * scale)
    # and the penalised objective agrees with its definition
    f = 0.5 * np.sum((W @ W.T - T) ** 2) + lam * penalty_value(W, s, nf, l1_ratio)
    assert res.history["objective"][-1] == pytest.approx(f, rel=1e-8)


def test_sparse_als_bad_input():
    s, nf = DESIGNS[2]
    d = simulate(s, nf, 200, noise_var=0.5, rng=0)
    st = sample_covariance(d.Xs)
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of als_refine must be a float in \[0, inf\). Got -1.0 instead"):
        fit_als(st, s, alpha=-1.0)
    with pytest.raises(ValueError, match=r"The 'l1_ratio' parameter of als_refine must be a float in \[0, 1\]. Got 2 instead"):
        fit_als(st, s, alpha=0.1, l1_ratio=2)


# -- fixed-support refit and the penalty scale (issue 15) ----------------------------------------
def test_fixed_support_refit_is_monotone_and_stationary_on_its_support():
    from hcl_stats.estimation.als import als_refine, als_setup

    s, nf = DESIGNS[3]
    d = simulate(s, nf, 500, noise_var=0.5, rng=3)
    st = sample_covariance(d.Xs)
    target, sigma2, W0, _ = als_setup(st, s, shrinkage=False)
    W, *_ = als_refine(W0, target, s, nf)
    rng = np.random.default_rng(0)
    support = s.support_mask(nf) & (rng.random(W.shape) < 0.7)
    Wr, n_sweeps, converged, hist = als_refine(W, target, s, nf, support=support, tol=1e-14, gtol=1e-7, max_iter=20000)
    assert converged
    assert not np.any(Wr[~support])
    f = hist["objective"]
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    # projected gradient on the support vanishes (scaled as the stopping rule)
    T = st.cov - sigma2 * np.eye(sum(nf))
    G = 2.0 * (Wr @ (Wr.T @ Wr) - T @ Wr) * support
    assert np.linalg.norm(G) / (2 * np.linalg.norm(T) * np.linalg.norm(Wr)) <= 1e-7
    # the full support gives back the unconstrained optimum's objective
    Wf, *_ = als_refine(W, target, s, nf, support=s.support_mask(nf), tol=1e-14, gtol=1e-8, max_iter=20000)
    f_dense = 0.5 * np.sum((W @ W.T - T) ** 2)
    assert 0.5 * np.sum((Wf @ Wf.T - T) ** 2) == pytest.approx(f_dense, rel=1e-6)
    with pytest.raises(ValueError, match=r"als_refine: support \(a fixed zero pattern\) is only used with alpha=0. Got alpha=0.1."):
        als_refine(W, target, s, nf, support=support, alpha=0.1)
    with pytest.raises(ValueError, match=r"The 'support' parameter of als_refine must be a \(p, K\) = \(33, 8\) boolean array. Got shape \(3, 3\) instead."):
        als_refine(W, target, s, nf, support=np.ones((3, 3), bool))


def test_alpha_max_als_formula():
    from hcl_stats.estimation.als import alpha_max_als, als_refine, als_setup

    s, nf = DESIGNS[3]
    d = simulate(s, nf, 500, noise_var=0.5, rng=0)
    st = sample_covariance(d.Xs)
    target, _, W0, _ = als_setup(st, s, shrinkage=True)
    W, *_ = als_refine(W0, target, s, nf)
    unit = np.sqrt(target.sq) ** 1.5
    WtW = W.T @ W
    a1 = np.max(2 * np.abs(W) * np.diag(WtW)) / unit
    assert alpha_max_als(W, target, s, nf, 1.0) == pytest.approx(a1, rel=1e-12)
    a0 = max(np.max(2 * np.linalg.norm(W[:, cs] @ WtW[cs, cs], axis=1)) / np.sqrt(cs.stop - cs.start)
             for cs in s.column_slices.values()) / unit
    assert alpha_max_als(W, target, s, nf, 0.0) == pytest.approx(a0, rel=1e-12)
    assert alpha_max_als(W, target, s, nf, 0.5) == pytest.approx(min(a1 / 0.5, a0 / 0.5), rel=1e-12)
    # at the scale itself the penalised fit from W is empty
    Wp, *_ = als_refine(W, target, s, nf, alpha=alpha_max_als(W, target, s, nf, 1.0), l1_ratio=1.0)
    assert not np.any(Wp)
