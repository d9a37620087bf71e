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

TIGHT = dict(tol=1e-12, max_iter=20000)
from hcl_stats.covariance import CovarianceStats  # noqa: E402


@pytest.mark.parametrize("M", [2, 3, 4, 5])
@pytest.mark.parametrize("shrinkage", [False, True])
def test_exact_recovery_from_population(M, shrinkage):
    s, nf = DESIGNS[M]
    # the dense target uses one noise variance; the shrunk target one per modality
    nv = [0.3 + 0.2 * m for m in range(M)] if shrinkage else 0.5
    d = simulate(s, nf, 10, noise_var=nv, random_state=M)
    st = CovarianceStats(cov=d.covariance(), mean=np.zeros(sum(nf)), n_samples=None, n_features=nf)
    res = fit_als(st, s, shrinkage=shrinkage, **TIGHT)
    assert res.converged
    assert overall_gram_error(res.loadings, d.loadings, relative=True) < 1e-8
    np.testing.assert_allclose(res.noise_var, np.repeat(np.broadcast_to(d.noise_var, (M,)), nf) if np.ndim(d.noise_var) <= 1
                               and np.size(d.noise_var) in (1, M) else d.noise_var, rtol=1e-10)


@pytest.mark.parametrize("shrinkage", [False, True])
def test_objective_never_increases(shrinkage):
    s, nf = DESIGNS[4]
    d = simulate(s, nf, 400, noise_var=2.0, random_state=1)
    res = fit_als(sample_covariance(d.Xs), s, max_iter=200, tol=1e-12, shrinkage=shrinkage)
    f = res.history["objective"]
    assert len(f) > 3
    assert res.history["n_newton"] > 0   # the polish steps are monotone too
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    assert len(res.history["kkt"]) == len(f)


def test_block_update_is_the_exact_block_minimiser():
    # with the other blocks fixed, no perturbation of the updated block lowers the objective
    s, nf = DESIGNS[3]
    rng = np.random.default_rng(0)
    d = simulate(s, nf, 300, noise_var=1.0, random_state=2)
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
        d = simulate(s, nf, 20000, noise_var=0.1, random_state=seed)
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
    d = simulate(s, nf, 2000 if n is None else n, noise_var=noise, random_state=seed)
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
    res = fit_als(st, s, tol=1e-9, max_iter=3000, accelerate=accelerate, polish=False)
    assert res.converged
    assert overall_gram_error(res.loadings, d.loadings, relative=True) < 1e-6
    f = res.history["objective"]
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    assert res.history["kkt"][-1] <= 1e-9


def test_squarem_needs_fewer_sweeps_than_plain_sweeps():
    s, nf, _, st = _big_stats(n=400, seed=4, noise=2.0)
    plain = fit_als(st, s, tol=1e-7, max_iter=5000, accelerate=None, polish=False)
    fast = fit_als(st, s, tol=1e-7, max_iter=5000, polish=False)
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
    # the estimate: each subset's Gram block (its loadings are defined up to a rotation, and that gauge is
    # ill-determined where a subset's singular values nearly tie: from the spectral start with fixed
    # eigenvector signs the loadings differ by a rotation of 4e-8, their Gram blocks by 1e-11)
    for c in s.column_slices.values():
        Ga, Gb = a.loadings[:, c] @ a.loadings[:, c].T, b.loadings[:, c] @ b.loadings[:, c].T
        np.testing.assert_allclose(Gb, 4096.0 * Ga, rtol=1e-9, atol=1e-9 * np.abs(Gb).max())


def test_documented_defaults_are_pinned():
    import inspect

    sig = inspect.signature(fit_als)
    assert sig.parameters["max_iter"].default == 500
    assert sig.parameters["tol"].default == 1e-6
    assert sig.parameters["gtol"].default is None
    assert sig.parameters["accelerate"].default == "squarem"
    assert sig.parameters["polish"].default is True
    assert not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    assert (als_mod._INNER_TOL, als_mod._SWEEP_INNER_MAX, als_mod._N_GUARD, als_mod._DENSE_MAX) == (1e-9, 2, 3, 96)
    assert (als_mod._POLISH_RATE, als_mod._CG_MAX, als_mod._CG_ETA) == (0.5, 50, 0.1)


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
def _sparse_fit(alpha, l1_ratio, tol=1e-7):
    s, nf = DESIGNS[3]
    d = simulate(s, nf, 500, noise_var=0.5, random_state=0)
    st = sample_covariance(d.Xs)
    return s, nf, st, fit_als(st, s, alpha=alpha, l1_ratio=l1_ratio, tol=tol, max_iter=5000)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_sparse_als_is_monotone_and_sparse(l1_ratio):
    s, nf, st, res = _sparse_fit(0.01, l1_ratio, tol=1e-6)
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

    s, nf, st, res = _sparse_fit(0.01, l1_ratio, tol=1e-7)
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
    d = simulate(s, nf, 200, noise_var=0.5, random_state=0)
    st = sample_covariance(d.Xs)
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of als_refine must be a float in \[0, inf\). Got -1.0 instead"):
        fit_als(st, s, alpha=-1.0)
    with pytest.raises(ValueError, match=r"The 'l1_ratio' parameter of als_refine must be a float in \[0, 1\]. Got 2 instead"):
        fit_als(st, s, alpha=0.1, l1_ratio=2)


# -- fixed-support refit and the penalty scale (issue 15) ----------------------------------------
def test_fixed_support_refit_is_monotone_and_stationary_on_its_support():
    from hcl_stats.estimation.als import als_refine, als_setup

    s, nf = DESIGNS[3]
    d = simulate(s, nf, 500, noise_var=0.5, random_state=3)
    st = sample_covariance(d.Xs)
    target, sigma2, W0, _ = als_setup(st, s, shrinkage=False)
    W, *_ = als_refine(W0, target, s, nf)
    rng = np.random.default_rng(0)
    support = s.support_mask(nf) & (rng.random(W.shape) < 0.7)
    Wr, n_sweeps, converged, hist = als_refine(W, target, s, nf, support=support, tol=1e-7, max_iter=20000)
    assert converged
    assert not np.any(Wr[~support])
    f = hist["objective"]
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    # projected gradient on the support vanishes (scaled as the stopping rule)
    T = st.cov - sigma2 * np.eye(sum(nf))
    G = 2.0 * (Wr @ (Wr.T @ Wr) - T @ Wr) * support
    assert np.linalg.norm(G) / (2 * np.linalg.norm(T) * np.linalg.norm(Wr)) <= 1e-7
    # the full support gives back the unconstrained optimum's objective
    Wf, *_ = als_refine(W, target, s, nf, support=s.support_mask(nf), tol=1e-8, max_iter=20000)
    f_dense = 0.5 * np.sum((W @ W.T - T) ** 2)
    assert 0.5 * np.sum((Wf @ Wf.T - T) ** 2) == pytest.approx(f_dense, rel=1e-6)
    with pytest.raises(ValueError, match=r"als_refine: support \(a fixed zero pattern\) is only used with alpha=0. Got alpha=0.1."):
        als_refine(W, target, s, nf, support=support, alpha=0.1)
    with pytest.raises(ValueError, match=r"The 'support' parameter of als_refine must be a \(p, K\) = \(33, 8\) boolean array. Got shape \(3, 3\) instead."):
        als_refine(W, target, s, nf, support=np.ones((3, 3), bool))


def test_alpha_max_als_formula():
    from hcl_stats.estimation.als import alpha_max_als, als_refine, als_setup

    s, nf = DESIGNS[3]
    d = simulate(s, nf, 500, noise_var=0.5, random_state=0)
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


# -- one stopping criterion, the Newton polish, carried products (issues 12 and 13) ----------------
def _dense_f(W, T):
    E = W @ W.T - T
    return 0.5 * float(np.sum(E * E))


def test_stop_crit_is_the_scaled_masked_gradient_checked_by_finite_differences():
    s, nf = DESIGNS[2]
    d = simulate(s, nf, 300, noise_var=1.0, random_state=4)
    st = sample_covariance(d.Xs)
    res = fit_als(st, s, max_iter=2, polish=False)   # stopped early: a gradient far from zero
    W = res.loadings
    T = st.cov - res.info["sigma2"] * np.eye(sum(nf))
    mask = s.support_mask(nf)
    G = np.zeros_like(W)
    h = 1e-6 * np.abs(W).max()
    for j, k in zip(*np.nonzero(mask)):
        E = np.zeros_like(W)
        E[j, k] = h
        G[j, k] = (_dense_f(W + E, T) - _dense_f(W - E, T)) / (2 * h)
    crit = np.linalg.norm(G) / (2 * np.linalg.norm(T) * np.linalg.norm(W))
    assert crit > 1e-4
    assert res.info["stop_crit"] == pytest.approx(crit, rel=1e-5)
    assert res.history["stop_crit"] == res.info["stop_crit"]
    assert res.info["objective"] == pytest.approx(_dense_f(W, T), rel=1e-10)
    assert res.converged == (res.info["stop_crit"] <= res.info["tol"])
    assert not res.converged


@pytest.mark.parametrize("tol", [1e-4, 1e-8])
def test_converged_means_stop_crit_at_most_tol(tol):
    s, nf, _, st = _big_stats(n=400, seed=6, noise=2.0)
    res = fit_als(st, s, tol=tol)
    assert res.converged and res.info["tol"] == tol
    assert res.info["stop_crit"] <= tol
    for field in ("stop_crit", "tol", "objective"):   # on the result itself once EstimationResult has the fields
        if hasattr(res, field):
            assert getattr(res, field) == res.info[field]
    short = fit_als(st, s, tol=tol, max_iter=1)
    assert short.n_iter == 1 and short.converged == (short.info["stop_crit"] <= tol)


def test_options_are_declared_and_checked():
    s, nf, _, st = _big_stats(n=None, seed=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'lr'"):
        fit_als(st, s, lr=5.0)
    with pytest.raises(ValueError, match=r"The 'tol' parameter of fit_als must be a float in \[0, inf\). Got -1.0 instead."):
        fit_als(st, s, tol=-1.0)
    with pytest.raises(ValueError, match=r"The 'polish' parameter of als_refine must be a bool. Got 'yes' instead."):
        fit_als(st, s, polish="yes")
    with pytest.raises(ValueError, match=r"The 'max_iter' parameter of als_refine must be an int >= 0. Got 2.5 instead."):
        fit_als(st, s, max_iter=2.5)
    with pytest.raises(ValueError, match=r"The 'shrinkage' parameter of fit_als must be a bool. Got 'no' instead."):
        fit_als(st, s, shrinkage="no")


def test_gtol_is_a_deprecated_alias_of_tol():
    s, nf, _, st = _big_stats(n=400, seed=6, noise=2.0)
    new = fit_als(st, s, tol=1e-7)
    with pytest.warns(FutureWarning, match="The 'gtol' parameter of fit_als is deprecated .* use 'tol'") as rec:
        old = fit_als(st, s, gtol=1e-7)
    assert rec[0].filename == __file__   # points at the caller
    assert old.info["tol"] == 1e-7 and old.n_iter == new.n_iter
    np.testing.assert_array_equal(old.loadings, new.loadings)


def test_converges_on_a_noisy_design_over_seeds():
    # weak signal (noise 4): nearly tied residual eigenvalues, the case the polish is for
    s, nf = BIG
    n_conv, n_newton = 0, 0
    for seed in range(5):
        d = simulate(s, nf, 800, noise_var=4.0, random_state=seed)
        res = fit_als(sample_covariance(d.Xs), s)
        n_conv += res.converged
        n_newton += res.history["n_newton"]
        f = res.history["objective"]
        assert np.all(np.diff(f) <= 1e-12 * f[0])
    assert n_conv == 5
    assert n_newton > 0


def test_polish_starts_when_the_sweeps_slow_down():
    # the switch rule: the first accepted step whose decrease is at least 0.5 x the previous one (the
    # documented rate, written out so that a changed _POLISH_RATE fails here, not only in the pin test)
    s, nf, _, st = _big_stats(n=400, seed=7, noise=3.0)
    res = fit_als(st, s, tol=1e-10)
    h = res.history
    k = h["polish_start"]
    assert k is not None and h["n_newton"] > 0
    dec = -np.diff(h["objective"])
    ratios = dec[1:] / dec[:-1]   # ratios[i]: decrease of step i + 2 over that of step i + 1
    assert ratios[k - 2] >= 0.5
    assert np.all(ratios[: k - 2] < 0.5)
    no = fit_als(st, s, tol=1e-10, polish=False)
    assert no.history["polish_start"] is None and no.history["n_newton"] == 0
    assert res.n_iter < no.n_iter


def test_newton_step_line_search_is_exact_and_monotone():
    s, nf, _, st = _big_stats(n=400, seed=8, noise=2.0)
    res = fit_als(st, s, max_iter=4, polish=False)
    target = _Target(dense=st.cov, shift=res.info["sigma2"])
    prob = als_mod._Problem(target, s, nf)
    T = st.cov - res.info["sigma2"] * np.eye(sum(nf))
    W = res.loadings
    TW = prob.tw(W)
    Wn, TWn, dec, n_cg = als_mod._newton_step(prob, W, TW)
    assert 1 <= n_cg <= als_mod._CG_MAX
    assert dec < 0
    assert _dense_f(Wn, T) - _dense_f(W, T) == pytest.approx(dec, rel=1e-6)
    np.testing.assert_allclose(TWn, prob.tw(Wn), atol=1e-10 * np.abs(TWn).max())
    # W + t D is the exact minimiser along D = Wn - W (t = 1 here)
    D = Wn - W
    for t in (0.9, 0.99, 1.01, 1.1):
        assert _dense_f(W + t * D, T) >= _dense_f(Wn, T)
    assert not np.any(Wn[~s.support_mask(nf)])


def test_quartic_step_is_the_global_minimiser():
    rng = np.random.default_rng(0)
    ts = np.linspace(-10, 10, 200001)
    for _ in range(20):
        c1, c2, c3 = rng.standard_normal(3) * 3
        c4 = rng.uniform(0.1, 2)
        t, v = als_mod._quartic_step(c1, c2, c3, c4)
        q = c1 * ts + c2 * ts ** 2 + c3 * ts ** 3 + c4 * ts ** 4
        assert v == pytest.approx(c1 * t + c2 * t ** 2 + c3 * t ** 3 + c4 * t ** 4, abs=1e-12)
        assert v <= q.min() + 1e-9


def test_carried_products_give_the_same_sweeps():
    s, nf, _, st = _big_stats(n=400, seed=9, noise=2.0)
    res = fit_als(st, s, max_iter=0)
    out = []
    for carry in (True, False):
        prob = als_mod._Problem(_Target(dense=st.cov, shift=res.info["sigma2"]), s, nf)
        prob.carry = carry
        W = res.info["init"] * prob.mask
        TW = prob.tw(W)
        for _ in range(6):
            W, TW = prob.sweep(W, TW)
        np.testing.assert_allclose(TW, prob.tw(W), atol=1e-11 * np.abs(TW).max())
        # three blocks have more than 96 rows (LOBPCG), each runs 2 LOBPCG iterations per sweep (the documented
        # _DENSE_MAX and _SWEEP_INNER_MAX, written out)
        assert sum(len(idx) > 96 for _, idx, *_ in prob.plan) == 3
        assert prob.n_inner == 6 * 3 * 2
        out.append(W)
    np.testing.assert_allclose(out[0], out[1], atol=1e-9 * np.abs(out[1]).max())


@pytest.mark.parametrize("M", [2, 3, 4])
def test_masked_product_with_t_equals_the_dense_product(M):
    s, nf = DESIGNS[M]
    rng = np.random.default_rng(M)
    A = rng.standard_normal((sum(nf), sum(nf)))
    C = A @ A.T
    prob = als_mod._Problem(_Target(dense=C, shift=0.3), s, nf)
    D = rng.standard_normal((sum(nf), s.n_factors)) * prob.mask
    want = ((C - 0.3 * np.eye(sum(nf))) @ D) * prob.mask
    np.testing.assert_allclose(prob.tfull(D), want, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(prob.tw(D), want, atol=1e-12 * np.abs(want).max())


def test_a_newton_step_without_descent_hands_back_to_the_sweeps(monkeypatch):
    s, nf, _, st = _big_stats(n=400, seed=7, noise=3.0)
    calls = []

    def no_descent(prob, W, TW, **kw):
        calls.append(1)
        return W, TW, 0.0, 1

    monkeypatch.setattr(als_mod, "_newton_step", no_descent)
    res = fit_als(st, s, tol=1e-7, max_iter=3000)
    h = res.history
    assert len(calls) == 1 and h["n_newton"] == 1 and h["polish_start"] is not None
    assert res.converged and h["n_sweeps"] == res.n_iter - 1
    f = h["objective"]
    assert np.all(np.diff(f) <= 1e-12 * f[0])
