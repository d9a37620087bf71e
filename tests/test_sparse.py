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
    d = simulate(s, nf, 500, noise_var=1.0, rng=seed)
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
    d = simulate(s, nf, 400, noise_var=1.0, rng=4)
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
    d0 = simulate(s, nf, 10, noise_var=0.5, rng=3)
    W = d0.loadings.copy()
    W[::2] = 0.0  # half of the features load on nothing
    d = simulate(s, nf, 3000, noise_var=0.5, rng=3, loadings=W)
    P = ml_path(sample_covariance(d.Xs), s, n_alphas=6, l1_ratio=0.0)
    nnz = [np.count_nonzero(r.loadings) for r in P["results"]]
    assert nnz[0] == 0 and nnz == sorted(nnz)
    best = P["results"][P["best"]].loadings
    # the selected fit zeroes most of the truly absent rows and keeps the present ones
    absent = np.all(W == 0, axis=1)
    assert np.mean(np.all(best[absent] == 0, axis=1)) > 0.5
    assert np.all(np.any(best[~absent] != 0, axis=1))
    with pytest.raises(ValueError, match=r"ml_path needs the number of samples for BIC"):
        st = sample_covariance(d.Xs)
        ml_path(type(st)(cov=st.cov, mean=st.mean, n_samples=None, n_features=st.n_features), s)


def test_alpha_with_other_methods_is_an_error():
    s, nf = DESIGNS[2]
    d = simulate(s, nf, 100, noise_var=1.0, rng=0)
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of HCL \(sparse loadings\) is supported by method='ml' only. Got alpha=0.1 with method='als'."):
        HCL(s, method="als", alpha=0.1).fit(d.Xs)
