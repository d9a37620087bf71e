"""Sparse loadings: each fast proximal solve against cvxpy on the same problem, alpha_max, path."""
import warnings

import numpy as np
import pytest

from _hcl_designs import DESIGNS
from hcl_stats import HCL, simulate
from hcl_stats.covariance import sample_covariance
from hcl_stats.estimation.ml import _estep, _Layout, fit_ml, ml_path
from hcl_stats.estimation.sparse import (column_groups, penalised_rows, penalty_value, prox_sparse_group,
                                         row_alpha_max)

cp = pytest.importorskip("cvxpy")


def _groups():
    groups = [np.array([0, 1]), np.array([2]), np.array([3, 4, 5])]
    return groups, np.sqrt([2.0, 1.0, 3.0])


def _solve(obj):
    # tight interior-point tolerances; CLARABEL may flag "inaccurate" at this precision
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cp.Problem(cp.Minimize(obj)).solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)


def _np_pen(x, t1, tg, groups):
    return t1 * np.abs(x).sum() + sum(tg[g] * np.linalg.norm(x[cols]) for g, cols in enumerate(groups))


def _cvx_pen(x, t1, tg, groups):
    return t1 * cp.norm1(x) + sum(tg[g] * cp.norm(x[cols], 2) for g, cols in enumerate(groups))


@pytest.mark.parametrize("l1_ratio", [1.0, 0.0, 0.4])
def test_prox_matches_cvxpy(l1_ratio):
    rng = np.random.default_rng(0)
    groups, gw = _groups()
    V = rng.standard_normal((5, 6)) * 2
    t = 0.7
    P = prox_sparse_group(V, t * l1_ratio, (t * (1 - l1_ratio) * gw)[None, :], groups)
    for j in range(V.shape[0]):
        x = cp.Variable(6)
        obj = 0.5 * cp.sum_squares(x - V[j]) + _cvx_pen(x, t * l1_ratio, t * (1 - l1_ratio) * gw, groups)
        _solve(obj)
        np.testing.assert_allclose(P[j], x.value, atol=1e-6)
        # and the prox point is at least as good as cvxpy's on the same objective
        ours = 0.5 * np.sum((P[j] - V[j]) ** 2) + _np_pen(P[j], t * l1_ratio, t * (1 - l1_ratio) * gw, groups)
        assert ours <= obj.value + 1e-10


def _mstep_subproblem(seed):
    """The M-step subproblem of modality 1 in the M = 3 design, at the spectral start."""
    s, nf = DESIGNS[3]
    d = simulate(s, nf, 500, noise_var=1.0, random_state=seed)
    st = sample_covariance(d.Xs)
    res = fit_ml(st, s, max_iter=3)
    lay = _Layout(s, nf)
    A, B = _estep(st.cov, res.loadings, res.noise_var)[:2]
    m = 1
    C = lay.cols[m]
    r = lay.rows[m]
    return B[np.ix_(C, C)], A[r][:, C], res.noise_var[r], lay.groups[m], s, C


@pytest.mark.parametrize("l1_ratio", [1.0, 0.0, 0.5])
def test_penalised_row_regression_matches_cvxpy(l1_ratio):
    B, A, psi, (groups, gw), _, _ = _mstep_subproblem(0)
    alpha = 0.3 * row_alpha_max(A, psi, groups, gw, l1_ratio)
    X, n_iter, converged = penalised_rows(B, A, alpha * psi, groups, gw, l1_ratio, tol=1e-13, max_iter=100000)
    assert converged
    L = np.linalg.cholesky(B)
    for j in range(0, A.shape[0], 3):
        x = cp.Variable(A.shape[1])
        t = alpha * psi[j]
        obj = 0.5 * cp.sum_squares(L.T @ x) - A[j] @ x + _cvx_pen(x, t * l1_ratio, t * (1 - l1_ratio) * gw, groups)
        _solve(obj)
        np.testing.assert_allclose(X[j], x.value, atol=1e-6)
        ours = 0.5 * X[j] @ B @ X[j] - A[j] @ X[j] + _np_pen(X[j], t * l1_ratio, t * (1 - l1_ratio) * gw, groups)
        assert ours <= obj.value + 1e-10
    assert np.any(X == 0) and np.any(X != 0)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.0, 0.5])
def test_row_alpha_max_is_the_zeroing_threshold(l1_ratio):
    B, A, psi, (groups, gw), _, _ = _mstep_subproblem(1)
    a_max = row_alpha_max(A, psi, groups, gw, l1_ratio)
    X, _, _ = penalised_rows(B, A, a_max * (1 + 1e-9) * psi, groups, gw, l1_ratio, tol=1e-13, max_iter=100000)
    assert not np.any(X)
    X, _, _ = penalised_rows(B, A, a_max * 0.99 * psi, groups, gw, l1_ratio, tol=1e-13, max_iter=100000)
    assert np.any(X)


def test_penalised_em_objective_never_decreases_and_alpha_one_is_zero():
    s, nf = DESIGNS[3]
    d = simulate(s, nf, 400, noise_var=1.0, random_state=4)
    st = sample_covariance(d.Xs)
    res = fit_ml(st, s, alpha=0.2, l1_ratio=0.5, max_iter=200)
    obj = res.history["objective"]
    assert np.all(np.diff(obj) >= -1e-12 * np.abs(obj[1:]))
    assert np.all(obj <= res.history["loglik"])  # objective = loglik - alpha * pen(W)
    assert not np.any(res.loadings[~s.support_mask(nf)])
    zero = HCL(s, method="ml", alpha=1.0).fit(d.Xs)
    assert not np.any(zero.loadings_)


def test_penalty_value_matches_definition():
    s, nf = DESIGNS[2]
    rng = np.random.default_rng(0)
    W = rng.standard_normal((sum(nf), s.n_factors)) * s.support_mask(nf)
    rows = s.row_slices(nf)
    g = sum(np.sqrt(s.rank(sub)) * np.linalg.norm(W[rows[m], s.column_slice(sub)], axis=1).sum()
            for sub in s.subsets for m in sub)
    np.testing.assert_allclose(penalty_value(W, s, nf, 0.3), 0.3 * np.abs(W).sum() + 0.7 * g)
    groups, gw = column_groups(s, np.arange(s.n_factors))
    assert [list(x) for x in groups] == [[0, 1], [2], [3, 4, 5]] and np.allclose(gw, np.sqrt([2, 1, 3]))


def test_path_and_bic_select_a_sparse_truth():
    s, nf = DESIGNS[2]
    d0 = simulate(s, nf, 10, noise_var=0.5, random_state=3)
    W = d0.loadings.copy()
    W[::2] = 0.0  # half of the features load on nothing
    d = simulate(s, nf, 3000, noise_var=0.5, random_state=3, loadings=W)
    with pytest.warns(FutureWarning, match=r"ml_path is deprecated.*sparse_path"):
        P = ml_path(sample_covariance(d.Xs), s, n_alphas=6, l1_ratio=0.0)
    nnz = [np.count_nonzero(r.loadings) for r in P["results"]]
    assert nnz[0] == 0 and nnz == sorted(nnz)
    best = P["results"][P["best"]].loadings
    # the selected fit zeroes most of the truly absent rows and keeps the present ones
    absent = np.all(W == 0, axis=1)
    assert np.mean(np.all(best[absent] == 0, axis=1)) > 0.5
    assert np.all(np.any(best[~absent] != 0, axis=1))
    with pytest.raises(ValueError, match=r"ml_path needs the number of samples for BIC"), pytest.warns(FutureWarning):
        st = sample_covariance(d.Xs)
        ml_path(type(st)(cov=st.cov, mean=st.mean, n_samples=None, n_features=st.n_features), s)


def test_alpha_with_other_methods_is_an_error():
    s, nf = DESIGNS[2]
    d = simulate(s, nf, 100, noise_var=1.0, random_state=0)
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of HCL \(sparse loadings\) is supported by method='ml' only. Got alpha=0.1 with method='als'."):
        HCL(s, method="als", alpha=0.1).fit(d.Xs)


# -- sparse loadings as a method: rotation, relaxed refit, choice of alpha, stability (issue 15) ----
from hcl_stats import Structure  # noqa: E402
from hcl_stats.estimation.rotation import orthomax, rotate_subsets  # noqa: E402
from hcl_stats.estimation.sparse_path import (StabilitySelection, cv_sparse_path, default_alphas,  # noqa: E402
                                              plot_alpha_path, select_alpha, sparse_path, stability_selection,
                                              support_df)
from hcl_stats.metrics import overall_gram_error  # noqa: E402

S_SP = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
P_SP = (40, 30, 30)


def _sparse_truth(rng, kind="elementwise", density=0.25):
    """Gaussian loadings on each active block, elementwise (each entry non-zero with probability
    ``density``) or row-group (a fraction ``density`` of the features load), or dense."""
    rows = S_SP.row_slices(P_SP)
    W = np.zeros((sum(P_SP), S_SP.n_factors))
    for s, cs in S_SP.column_slices.items():
        r = cs.stop - cs.start
        for m in s:
            pm = P_SP[m]
            if kind == "elementwise":
                M = rng.random((pm, r)) < density
                M[rng.integers(pm, size=r), np.arange(r)] = True
            elif kind == "rowgroup":
                M = np.zeros((pm, r), bool)
                M[rng.choice(pm, int(round(density * pm)), replace=False)] = True
            else:
                M = np.ones((pm, r), bool)
            W[rows[m], cs] = rng.standard_normal((pm, r)) * M
    return W


def _sparse_data(seed, n, **kw):
    W = _sparse_truth(np.random.default_rng(seed), **kw)
    d = simulate(S_SP, P_SP, n, noise_var=1.0, random_state=seed + 100, loadings=W)
    return W, d


def test_orthomax_recovers_a_rotated_simple_structure():
    rng = np.random.default_rng(0)
    L = np.zeros((30, 3))
    L[np.arange(30), rng.integers(3, size=30)] = rng.uniform(0.5, 1.5, 30) * rng.choice([-1, 1], 30)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    for gamma in (1.0, 0.0):
        R, n_iter = orthomax(L @ Q, gamma)
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        Lr = L @ Q @ R
        # the simple structure back, up to a signed permutation of the columns
        P = np.round(np.abs(Q @ R), 8)
        assert np.allclose(np.sort(P, axis=1), [[0, 0, 1]] * 3, atol=1e-6)
        assert np.sum(np.abs(Lr) > 1e-6) == 30 and n_iter >= 1


def _orthomax_criterion(L, gamma):
    L2 = L**2
    return np.sum(L2**2) - gamma / L.shape[0] * np.sum(L2.sum(axis=0) ** 2)


@pytest.mark.parametrize("gamma, name", [(1.0, "varimax"), (0.0, "quartimax")])
def test_orthomax_matches_statsmodels_and_is_stationary(gamma, name):
    """On generic (not simple-structure) loadings: the criterion reached equals statsmodels'
    gradient-projection rotation to 1e-8 (relative), and no planar rotation of +-1e-3 rad of any
    pair of columns increases it (a local maximum)."""
    from statsmodels.multivariate.factor_rotation import rotate_factors

    rng = np.random.default_rng(1)
    for _ in range(3):
        L = rng.standard_normal((40, 4)) * rng.uniform(0.2, 2.0, 4)
        R, _ = orthomax(L, gamma)
        ours = _orthomax_criterion(L @ R, gamma)
        ref = _orthomax_criterion(rotate_factors(L, name)[0], gamma)
        assert abs(ours - ref) <= 1e-8 * abs(ref), (ours, ref)
        for a in range(4):
            for b in range(a + 1, 4):
                for t in (-1e-3, 1e-3):
                    G = np.eye(4)
                    G[[a, a, b, b], [a, b, a, b]] = [np.cos(t), -np.sin(t), np.sin(t), np.cos(t)]
                    assert _orthomax_criterion(L @ R @ G, gamma) <= ours * (1 + 1e-12)


@pytest.mark.parametrize("method, gamma", [("varimax", 1.0), ("quartimax", 0.0)])
def test_rotate_subsets_rotates_every_subset_by_its_criterion(method, gamma):
    """Each subset's block (two columns included) is rotated to the chosen criterion's optimum, and
    the returned rotations are the ones applied."""
    from statsmodels.multivariate.factor_rotation import rotate_factors

    s = Structure({(0, 1): 2, (0,): 3, (1,): 1}, 2)
    nf = (25, 30)
    rng = np.random.default_rng(2)
    W = rng.standard_normal((55, 6)) * s.support_mask(nf)
    Wr, rots = rotate_subsets(W, s, nf, method)
    rows = s.row_slices(nf)
    for S, cs in s.column_slices.items():
        idx = np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in S])
        np.testing.assert_allclose(Wr[:, cs], W[:, cs] @ rots[S], atol=1e-12)
        if cs.stop - cs.start < 2:
            continue
        block = W[np.ix_(idx, np.arange(cs.start, cs.stop))]
        ref = _orthomax_criterion(rotate_factors(block, method)[0], gamma)
        ours = _orthomax_criterion(Wr[np.ix_(idx, np.arange(cs.start, cs.stop))], gamma)
        assert abs(ours - ref) <= 1e-8 * abs(ref), (S, ours, ref)


def test_rotate_subsets_keeps_every_gram_block():
    s, nf = DESIGNS[4]
    d = simulate(s, nf, 10, noise_var=1.0, random_state=1)
    Wr, rots = rotate_subsets(d.loadings, s, nf, "varimax")
    np.testing.assert_allclose(Wr @ Wr.T, d.loadings @ d.loadings.T, atol=1e-12)
    assert not np.any(Wr[~s.support_mask(nf)])
    assert set(rots) == set(s.subsets)
    assert rotate_subsets(d.loadings, s, nf, None)[1] == {}
    with pytest.raises(ValueError, match=r"The 'rotation' parameter must be one of \('varimax', 'quartimax', None\). Got 'promax' instead."):
        rotate_subsets(d.loadings, s, nf, "promax")


def test_support_df_counts_the_rotation_the_zeros_leave_free():
    s = Structure({(0, 1): 2, (0,): 1}, 2)
    nf = (4, 3)
    mask = s.support_mask(nf)
    # dense: 7 * 2 + 4 loadings - 1 rotation of the 2-column subset, + 7 noise variances
    assert support_df(mask, s, nf, "feature") == 18 - 1 + 7
    # whole rows removed: the rotation stays free
    sup = mask.copy()
    sup[0, :2] = False
    assert support_df(sup, s, nf, "modality") == 16 - 1 + 2
    # one scattered zero pins the rotation of the 2-column subset
    sup = mask.copy()
    sup[0, 0] = False
    assert support_df(sup, s, nf, "isotropic") == 17 + 1


def test_default_grid_and_extended_bic():
    a = default_alphas()
    assert a.size == 12 and a[0] == 1.0 and a[-1] == 0.0
    np.testing.assert_allclose(a[-2], 10 ** -2.5)
    assert np.all(np.diff(a) < 0)
    with pytest.raises(ValueError, match=r"The 'eps' parameter must be a float in \(0, 1\). Got 0 instead."):
        default_alphas(eps=0)
    W, d = _sparse_data(0, 400)
    st = sample_covariance(d.Xs)
    P = sparse_path(st, S_SP, alphas=[0.1, 0.0, 0.03])
    np.testing.assert_array_equal(P.alphas, [0.1, 0.03, 0.0])
    from scipy.special import comb

    n = st.n_samples
    np.testing.assert_allclose(P.bic_plain, -2 * n * P.loglik + np.log(n) * P.df)
    extra = 2.0 * np.log(comb(P.n_units, P.n_units_selected))   # gamma = 1 by default
    np.testing.assert_allclose(P.bic - P.bic_plain, extra, rtol=1e-10)
    assert P.n_units == int(S_SP.support_mask(P_SP).sum())
    assert P.n_units_selected[-1] == P.n_units and P.bic[-1] == pytest.approx(P.bic_plain[-1])


def test_path_is_monotone_refit_is_unpenalised_optimum_and_alpha_zero_is_the_dense_fit():
    W, d = _sparse_data(1, 500)
    st = sample_covariance(d.Xs)
    P = sparse_path(st, S_SP, shrinkage=False, n_alphas=7, tol=1e-11, gtol=1e-8)
    assert np.all(np.diff(P.support_size) >= 0)                 # support grows as alpha falls
    assert P.support_size[0] == 0 and P.support_size[-1] == int(S_SP.support_mask(P_SP).sum())
    assert all(P.converged)
    # the relaxed refit keeps the zero pattern and fits at least as well as the penalised fit
    for Wr, Wp, lr, lp in zip(P.loadings, P.loadings_penalised, P.loglik, P.loglik_penalised):
        np.testing.assert_array_equal(Wr != 0, Wp != 0)
        assert lr >= lp - 1e-10
    # alpha = 0 is the dense ML fit (up to the rotation of each subset) ...
    dense = fit_ml(st, S_SP, noise="feature", tol=1e-11, gtol=1e-8)
    np.testing.assert_allclose(P.loadings[-1] @ P.loadings[-1].T, dense.loadings @ dense.loadings.T, atol=1e-5)
    # ... expressed in the varimax basis of each subset (the default identification choice; with
    # per-feature noise on the correlation scale)
    assert P.rotation == "varimax"
    rows = S_SP.row_slices(P_SP)
    Wc = P.loadings[-1] / np.sqrt(np.diag(st.cov))[:, None]
    for sub, cs in S_SP.column_slices.items():
        idx = np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in sub])
        R, _ = orthomax(Wc[idx, cs], 1.0)
        np.testing.assert_allclose(np.abs(R), np.eye(cs.stop - cs.start), atol=1e-6)
    # the refit is a stationary point of the likelihood on its support: masked gradient ~ 0
    j = int(np.flatnonzero((P.support_size > 0) & (P.support_size < P.support_size[-1]))[0])
    Wr, psi = P.loadings[j], P.noise_var[j]
    Sig = Wr @ Wr.T + np.diag(psi)
    Si = np.linalg.inv(Sig)
    G = (Si @ st.cov @ Si - Si) @ Wr * (Wr != 0)
    assert np.linalg.norm(G) * np.linalg.norm(Wr) / Wr.shape[0] < 1e-5


@pytest.mark.parametrize("kind,l1_ratio", [("elementwise", 1.0), ("rowgroup", 0.0)])
def test_bic_choice_beats_dense_ml_on_a_sparse_truth(kind, l1_ratio):
    # stated before the run: on each of 3 seeds the chosen fit's Gram error is below 0.9 x the dense
    # ML fit's (HCL defaults: per-feature noise, shrinkage), and the support F1 (rows for the
    # row-group design) is above 0.7
    from hcl_stats.estimation.sparse_path import row_support

    for seed in range(3):
        W, d = _sparse_data(seed, 600, kind=kind, density=0.25)
        st = sample_covariance(d.Xs)
        res = select_alpha(st, S_SP, "bic", l1_ratio=l1_ratio, n_alphas=9)
        path = res.info["alpha_path"]
        assert path.alphas[-1] == 0      # the dense ML fit (HCL defaults), rotated
        e0 = overall_gram_error(path.loadings[-1], W, relative=True)
        e1 = overall_gram_error(res.loadings, W, relative=True)
        assert e1 < 0.9 * e0, (seed, e0, e1)
        assert res.info["alpha"] > 0
        if kind == "rowgroup":
            a, b = row_support(res.loadings, S_SP, P_SP), row_support(W, S_SP, P_SP)
            assert 2 * np.sum(a & b) / (a.sum() + b.sum()) > 0.7


def test_bic_choice_keeps_a_dense_truth_dense():
    # stated before the run: on each of 3 seeds the choice costs at most 5% error against dense ML
    for seed in range(3):
        W, d = _sparse_data(seed, 600, kind="dense")
        st = sample_covariance(d.Xs)
        res = select_alpha(st, S_SP, "bic", n_alphas=9)
        path = res.info["alpha_path"]
        e0 = overall_gram_error(path.loadings[-1], W, relative=True)
        e1 = overall_gram_error(res.loadings, W, relative=True)
        assert e1 <= 1.05 * e0, (seed, e0, e1, res.info["alpha"])


def test_cross_validation_folds_and_choice():
    W, d = _sparse_data(3, 400)
    st = sample_covariance(d.Xs)
    C = cv_sparse_path(d.Xs, S_SP, n_folds=3, random_state=0, n_alphas=6)
    assert C.cv_loglik.shape == (3, 6) and C.criterion == "cv"
    np.testing.assert_allclose(C.scores, -C.cv_loglik.mean(axis=0))
    assert C.best == int(np.argmin(C.scores)) and C.alpha > 0
    # the held-out log-likelihood of a fold is that of its samples, centred at the training mean
    from hcl_stats.likelihood import loglik_samples

    X = np.hstack(d.Xs)
    fold = np.random.default_rng(0).permutation(np.arange(X.shape[0]) % 3)
    tr, te = X[fold != 0], X[fold == 0]
    rows = S_SP.row_slices(P_SP)
    P0 = sparse_path(sample_covariance([tr[:, r] for r in rows]), S_SP, alphas=C.alphas)
    j = C.best
    ref = loglik_samples(te - tr.mean(axis=0), P0.loadings[j], P0.noise_var[j]).mean()
    assert C.cv_loglik[0, j] == pytest.approx(ref, rel=1e-10)
    res = select_alpha(st, S_SP, "cv", Xs=d.Xs, n_alphas=4)
    assert res.info["criterion"] == "cv" and res.info["alpha_path"].cv_loglik.shape == (5, 4)   # 5 folds by default
    with pytest.raises(ValueError, match=r"alpha='cv' cross-validates on the samples; it needs Xs"):
        select_alpha(st, S_SP, "cv")
    with pytest.raises(ValueError, match=r"The 'n_folds' parameter must be an integer in \[2, n_samples=400\]. Got 1 instead."):
        cv_sparse_path(d.Xs, S_SP, n_folds=1)


def test_path_bad_input():
    W, d = _sparse_data(0, 200)
    st = sample_covariance(d.Xs)
    with pytest.raises(ValueError, match=r"The 'alphas' parameter must be a non-empty 1-D sequence of non-negative finite numbers. Got \[-0.1\] instead."):
        sparse_path(st, S_SP, alphas=[-0.1])
    with pytest.raises(ValueError, match=r"The 'ebic_gamma' parameter must be a float in \[0, inf\). Got -1 instead."):
        sparse_path(st, S_SP, ebic_gamma=-1)
    with pytest.raises(ValueError, match=r"The 'method' parameter of sparse_path must be 'ml' or 'als'. Got 'paper' instead."):
        sparse_path(st, S_SP, method="paper")
    with pytest.raises(ValueError, match=r"The 'noise' parameter of sparse_path with method='als' and shrinkage=True must be 'modality'"):
        sparse_path(st, S_SP, method="als", noise="feature")
    with pytest.raises(ValueError, match=r"The 'alpha' criterion must be one of \('bic', 'cv'\). Got 'aic' instead."):
        select_alpha(st, S_SP, "aic")
    pop = type(st)(cov=st.cov, mean=st.mean, n_samples=None, n_features=st.n_features)
    with pytest.raises(ValueError, match=r"alpha='bic' chooses the penalty from data; it needs the number of samples"):
        select_alpha(pop, S_SP, "bic")


def test_als_path_refit_and_choice():
    W, d = _sparse_data(2, 600)
    st = sample_covariance(d.Xs)
    P = sparse_path(st, S_SP, method="als", n_alphas=7)
    assert P.info["method"] == "als" and P.info["noise"] == "modality"
    assert np.all(np.diff(P.support_size) >= 0) and P.support_size[-1] == int(S_SP.support_mask(P_SP).sum())
    for Wr, Wp in zip(P.loadings, P.loadings_penalised):
        np.testing.assert_array_equal(Wr != 0, Wp != 0)
    b = int(np.argmin(P.bic))
    assert 0 < P.alphas[b]
    errs = [overall_gram_error(Wx, W, relative=True) for Wx in P.loadings]
    assert errs[b] < errs[-1]          # the chosen sparse ALS fit beats the dense ALS fit here


def test_stability_selection_frequencies_bound_and_frame():
    W, d = _sparse_data(4, 600, kind="rowgroup", density=0.3)
    names = [f"f{j}" for j in range(sum(P_SP))]
    st = stability_selection(d.Xs, S_SP, n_subsamples=8, threshold=0.75, l1_ratio=0.0, feature_names=names,
                             random_state=1)   # alpha: the BIC choice on all samples
    assert isinstance(st, StabilitySelection)
    cand = np.zeros((sum(P_SP), S_SP.n_subsets), bool)
    rows = S_SP.row_slices(P_SP)
    for k, s in enumerate(S_SP.subsets):
        for m in s:
            cand[rows[m], k] = True
    assert np.all(np.isnan(st.frequency[~cand])) and np.all((st.frequency[cand] >= 0) & (st.frequency[cand] <= 1))
    assert st.n_candidates == int(cand.sum())
    assert st.error_bound == pytest.approx(st.q ** 2 / ((2 * 0.75 - 1) * st.n_candidates))
    from hcl_stats.estimation.sparse_path import row_support

    truth = row_support(W, S_SP, P_SP)
    assert 0 < st.alpha < 1
    assert np.nanmean(st.frequency[truth]) > 0.8 and np.nanmean(st.frequency[cand & ~truth]) < 0.1
    assert np.sum(st.selected & truth) >= 0.95 * st.selected.sum()
    df = st.to_frame()
    assert len(df) == st.n_candidates and list(df.columns) == ["feature", "modality", "subset", "frequency", "selected"]
    assert df["feature"].iloc[0] == "f0"
    assert any("E[false selections]" in k for k, _ in st.summary_lines())
    with pytest.raises(ValueError, match=r"The 'threshold' parameter must be a float in \(0.5, 1\]. Got 0.5 instead."):
        stability_selection(d.Xs, S_SP, alpha=0.05, threshold=0.5)
    with pytest.raises(ValueError, match=r"The 'feature_names' parameter must have one name per feature \(100\). Got 2 names instead."):
        stability_selection(d.Xs, S_SP, alpha=0.05, feature_names=["a", "b"])


def test_plot_alpha_path():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    W, d = _sparse_data(0, 300)
    res = select_alpha(sample_covariance(d.Xs), S_SP, "bic", n_alphas=5)
    path = res.info["alpha_path"]
    ax = plot_alpha_path(path)
    assert len(ax.lines) >= 1 and ax.get_xscale() == "log"
    assert path.to_frame().shape == (5, 7)
