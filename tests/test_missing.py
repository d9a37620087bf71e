"""Incomplete data (NaN = missing): input checks, the report of what is missing, the EM over the
observed entries (hcl_stats.estimation.missing) and the available-case structure selection
(hcl_stats.incomplete). HCL-level tests (HCL(missing="em")) live in tests/test_missing_hcl.py."""
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from hcl_stats import Structure, simulate
from hcl_stats._validation import check_Xs
from hcl_stats.covariance import CovarianceStats
from hcl_stats.estimation.missing import (_Patterns, _mstep, available_case_moments, fit_missing,
                                          loglik_samples_incomplete, missing_estep, paper_representation_incomplete,
                                          posterior_moments_incomplete)
from hcl_stats.estimation.ml import _Layout, fit_ml
from hcl_stats.incomplete import (check_coobserved, check_incomplete, has_missing, incomplete_stats,
                                  missing_report, select_structure_incomplete)

S_SMALL = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
P_SMALL = (12, 10, 8)


def _gram_err(W, Wt):
    return np.linalg.norm(W @ W.T - Wt @ Wt.T) / np.linalg.norm(Wt @ Wt.T)


def _drop_modalities(Xs, share, rng):
    """Each sample misses one whole modality (chosen at random) with probability ``share``."""
    Xs = [x.copy() for x in Xs]
    n = Xs[0].shape[0]
    miss = rng.random(n) < share
    which = rng.integers(0, len(Xs), n)
    for m in range(len(Xs)):
        Xs[m][miss & (which == m)] = np.nan
    return Xs, miss


def _direct_loglik(X, mean, W, psi):
    """Observed-data log-likelihood of each row with scipy's multivariate normal."""
    Sigma = W @ W.T + np.diag(psi)
    out = []
    for x in X:
        o = ~np.isnan(x)
        out.append(sps.multivariate_normal(mean[o], Sigma[np.ix_(o, o)]).logpdf(x[o]))
    return np.array(out)


# ------------------------------------------------------------------------------------------
# input checks and the report
# ------------------------------------------------------------------------------------------
def test_check_xs_refuses_nan_and_names_the_option():
    X = np.ones((5, 3))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match=r'Xs\[1\] must be finite; got 1 NaN entries\. .*missing="em"'):
        check_Xs([np.ones((5, 2)), X])
    out = check_Xs([np.ones((5, 2)), X], allow_nan=True)
    assert np.isnan(out[1][1, 2])
    Y = X.copy()
    Y[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"Xs\[0\] must be finite; got 1 NaN and 1 infinite entries"):
        check_Xs([Y], allow_nan=True)


def _xs(seed=0, n=40):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, p)) for p in (4, 3, 2)]


def test_check_incomplete_errors_name_the_modality():
    Xs = _xs()
    for X in Xs:
        X[3] = np.nan
    with pytest.raises(ValueError, match=r"Xs: samples \(rows\) \[3\] \(1 in all\) have no observed value in any modality"):
        check_incomplete(Xs)
    Xs = _xs()
    Xs[1][:, 2] = np.nan
    with pytest.raises(ValueError, match=r"Xs\[1\]: features \[2\] have fewer than 2 observed values \(counts \[0\]\)"):
        check_incomplete(Xs)
    Xs = _xs()
    Xs[2][1:, 0] = np.nan
    with pytest.raises(ValueError, match=r"Xs\[2\]: features \[0\] have fewer than 2 observed values \(counts \[1\]\)"):
        check_incomplete(Xs)
    Xs = _xs()
    Xs[2][:] = np.nan
    with pytest.raises(ValueError, match=r"Xs\[2\] has fewer than 2 observed values in every feature"):
        check_incomplete(Xs)
    Xs = _xs()
    Xs[0][:, 1] = 5.0
    Xs[0][::2, 1] = np.nan
    with pytest.raises(ValueError, match=r"Xs\[0\]: features \[1\] are constant over their observed values"):
        check_incomplete(Xs)
    Xs = _xs()
    Xs[0][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"Xs\[0\] must be finite; got 0 NaN and 1 infinite"):
        check_incomplete(Xs)
    # new rows to transform: only shape checks and one observed value per row
    Xs = _xs(n=3)
    Xs[1][:, 2] = np.nan
    out, _ = check_incomplete(Xs, min_samples=1, check_features=False)
    assert np.isnan(out[1][:, 2]).all()


def test_missing_report_counts():
    Xs = _xs(n=10)
    Xs[0][:3] = np.nan          # 3 samples without modality 0
    Xs[1][5, 0] = np.nan        # 1 sample with part of modality 1
    Xs[2][6:8] = np.nan         # 2 samples without modality 2
    Xs, rep = check_incomplete(Xs)
    assert rep.n_samples == 10 and rep.n_features == (4, 3, 2)
    np.testing.assert_allclose(rep.entry_fraction, [12 / 40, 1 / 30, 4 / 20])
    assert rep.n_absent.tolist() == [3, 0, 2]
    assert rep.n_partial.tolist() == [0, 1, 0]
    assert rep.n_complete == 4
    assert rep.n_patterns == 4     # complete, no m0, m1 partial, no m2
    assert rep.co_observed[0, 2] == 5 and rep.co_observed[0, 1] == 7 and rep.co_observed[1, 1] == 10
    line = rep.line()
    assert "Xs[0]: 30.0% of entries (3 samples without it)" in line
    assert "Xs[1]: 3.3% of entries (1 partly observed)" in line
    assert "4 of 10 samples complete, 4 patterns" in line
    assert missing_report(_xs(n=10)).line() == "none"
    assert has_missing(Xs) and not has_missing(_xs()) and not has_missing("abc")
    st = incomplete_stats(Xs)
    np.testing.assert_allclose(st.mean[:4], np.mean(Xs[0][3:], axis=0))
    np.testing.assert_allclose(st.feature_var[:4], np.var(Xs[0][3:], axis=0, ddof=1))


def test_check_coobserved():
    Xs = _xs(n=10)
    Xs[0][:5] = np.nan
    Xs[2][5:] = np.nan
    _, rep = check_incomplete(Xs)
    check_coobserved(rep, Structure({(0, 1): 1, (1, 2): 1}, 3))
    with pytest.raises(ValueError, match=r"no sample observes both Xs\[0\] and Xs\[2\].*subset \(0, 1, 2\)"):
        check_coobserved(rep, S_SMALL)


# ------------------------------------------------------------------------------------------
# the EM
# ------------------------------------------------------------------------------------------
def test_complete_data_em_equals_covariance_ml():
    """Without missing entries the EM on the data is ML on the (biased) sample covariance."""
    data = simulate(S_SMALL, P_SMALL, 400, noise_var=0.5, loadings="gaussian", random_state=1)
    res = fit_missing(data.Xs, S_SMALL, tol=1e-12, gtol=1e-9, max_iter=5000)
    X = np.hstack(data.Xs)
    n = X.shape[0]
    cov = np.cov(X, rowvar=False) * (n - 1) / n
    ref = fit_ml(CovarianceStats(cov=cov, mean=X.mean(0), n_samples=n, n_features=P_SMALL), S_SMALL, noise="feature",
                 tol=1e-12, gtol=1e-9, max_iter=5000)
    assert res.converged and res.info["n_patterns"] == 1
    np.testing.assert_allclose(res.loadings @ res.loadings.T, ref.loadings @ ref.loadings.T, atol=1e-5)
    np.testing.assert_allclose(res.noise_var, ref.noise_var, rtol=1e-5)
    np.testing.assert_allclose(res.info["mean"], X.mean(0), atol=1e-10)
    assert abs(res.history["loglik"][-1] - ref.history["loglik"][-1]) < 1e-7


@pytest.mark.parametrize("accelerate", ["squarem", None])
def test_loglik_is_the_observed_data_likelihood_and_increases(accelerate):
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=2)
    rng = np.random.default_rng(0)
    Xs, _ = _drop_modalities(data.Xs, 0.4, rng)
    Xs[0][rng.random(Xs[0].shape) < 0.05] = np.nan           # scattered entries too
    res = fit_missing(Xs, S_SMALL, accelerate=accelerate, max_iter=3000)
    ll = res.history["loglik"]
    assert res.converged
    assert np.all(np.diff(ll) >= -1e-10 * np.abs(ll[1:]))
    X = np.hstack(Xs)
    direct = _direct_loglik(X, res.info["mean"], res.loadings, res.noise_var)
    assert abs(direct.mean() - ll[-1]) < 1e-8
    np.testing.assert_allclose(loglik_samples_incomplete(X, res.info["mean"], res.loadings, res.noise_var), direct,
                               rtol=1e-10)
    assert res.info["n_patterns"] > 4
    assert np.all(res.loadings[~S_SMALL.support_mask(P_SMALL)] == 0)


def test_mstep_gradient_matches_finite_differences():
    """The gradient used for stopping (Fisher's identity) is that of the observed log-likelihood."""
    data = simulate(S_SMALL, P_SMALL, 200, noise_var=0.5, loadings="gaussian", random_state=3)
    Xs, _ = _drop_modalities(data.Xs, 0.3, np.random.default_rng(1))
    X = np.hstack(Xs)
    lay = _Layout(S_SMALL, P_SMALL)
    pat = _Patterns(X, lay)
    rng = np.random.default_rng(5)
    W = rng.standard_normal((X.shape[1], S_SMALL.n_factors)) * lay.mask
    mu = np.nanmean(X, axis=0) + 0.1
    psi = 0.5 + rng.random(X.shape[1])
    Z, Minv, _ = missing_estep(X, mu, W, psi, pat)
    _, _, _, grad, gpsi = _mstep(mu, W, psi, Z, Minv, pat, lay, "feature", 1e-10 * np.ones_like(psi))

    def f(Wx, psix=psi):
        return missing_estep(X, mu, Wx, psix, pat)[2].mean()

    h = 1e-6
    for j, k in [(0, 0), (5, 1), (13, 0), (20, 3), (29, 4), (2, 2)]:
        E = np.zeros_like(W)
        E[j, k] = h
        fd = (f(W + E) - f(W - E)) / (2 * h)
        assert abs(fd - grad[j, k]) < 1e-6 * max(1.0, abs(fd)), (j, k, fd, grad[j, k])
    assert np.all(grad[~lay.mask] == 0)
    # the scaled noise gradient psi_j dl/dpsi_j, also from Fisher's identity
    for j in (0, 7, 13, 22, 29):
        e = np.zeros_like(psi)
        e[j] = h * psi[j]
        fd = psi[j] * (f(W, psi + e) - f(W, psi - e)) / (2 * h * psi[j])
        assert abs(fd - gpsi[j]) < 1e-6 * max(1.0, abs(fd)), (j, fd, gpsi[j])
    # the batched path (every row its own pattern) gives the same gradients
    import hcl_stats.estimation.missing as mm
    old = mm.BATCH_PATTERNS
    try:
        mm.BATCH_PATTERNS = 0
        patb = _Patterns(X, lay)
    finally:
        mm.BATCH_PATTERNS = old
    assert patb.batched
    Zb, Mb, _ = missing_estep(X, mu, W, psi, patb)
    _, _, _, gb, gpb = _mstep(mu, W, psi, Zb, Mb, patb, lay, "feature", 1e-10 * np.ones_like(psi))
    np.testing.assert_allclose(gb, grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpb, gpsi, rtol=1e-9, atol=1e-12)


def test_block_missing_groups_patterns():
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=4)
    Xs = [x.copy() for x in data.Xs]
    Xs[2][:150] = np.nan
    res = fit_missing(Xs, S_SMALL)
    assert res.info["n_patterns"] == 2
    assert res.info["n_feature_groups"] == 3      # one per modality: features observed by the same rows
    assert res.converged


@pytest.mark.parametrize("noise", ["modality", "isotropic"])
def test_noise_models(noise):
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=5)
    Xs, _ = _drop_modalities(data.Xs, 0.3, np.random.default_rng(2))
    res = fit_missing(Xs, S_SMALL, noise=noise)
    rows = S_SMALL.row_slices(P_SMALL)
    if noise == "isotropic":
        assert np.ptp(res.noise_var) < 1e-12 * res.noise_var[0]
    for r in rows:
        assert np.ptp(res.noise_var[r]) < 1e-12 * res.noise_var[r][0]
    assert abs(res.noise_var.mean() - 0.5) < 0.1
    X = np.hstack(Xs)
    assert abs(_direct_loglik(X, res.info["mean"], res.loadings, res.noise_var).mean() - res.history["loglik"][-1]) < 1e-8


def test_feature_rescaling_equivariance():
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=6)
    Xs, _ = _drop_modalities(data.Xs, 0.3, np.random.default_rng(3))
    d = np.exp(np.random.default_rng(4).uniform(-3, 3, sum(P_SMALL)))
    rows = S_SMALL.row_slices(P_SMALL)
    Ys = [X * d[r] for X, r in zip(Xs, rows)]
    a = fit_missing(Xs, S_SMALL, tol=1e-12, gtol=1e-9, max_iter=5000)
    b = fit_missing(Ys, S_SMALL, tol=1e-12, gtol=1e-9, max_iter=5000)
    Wa = a.loadings * d[:, None]
    np.testing.assert_allclose(b.loadings @ b.loadings.T, Wa @ Wa.T, atol=1e-5 * np.abs(Wa @ Wa.T).max())
    np.testing.assert_allclose(b.noise_var, a.noise_var * d ** 2, rtol=1e-4)
    shift = np.sum(~np.isnan(np.hstack(Xs)) * np.log(d)) / Xs[0].shape[0]
    assert abs(b.history["loglik"][-1] - (a.history["loglik"][-1] - shift)) < 1e-6


def test_recovery_with_a_missing_modality_over_seeds():
    """Tolerance stated before the run: with 30% of the samples missing one modality, the Gram error
    is at most 1.3 x the complete-data ML fit on the same samples and below the complete-case fit,
    in each of 3 seeds."""
    s = Structure({(0, 1, 2): 2, (0, 1): 1, (1, 2): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    p = (25, 20, 15)
    for seed in range(3):
        data = simulate(s, p, 600, noise_var=1.0, loadings="gaussian", random_state=seed)
        Xs, miss = _drop_modalities(data.Xs, 0.3, np.random.default_rng(100 + seed))
        em = fit_missing(Xs, s)
        full = fit_missing(data.Xs, s)
        cc = fit_missing([x[~miss] for x in data.Xs], s)
        e_em, e_full, e_cc = (_gram_err(r.loadings, data.loadings) for r in (em, full, cc))
        assert e_em <= 1.3 * e_full, (seed, e_em, e_full)
        assert e_em < e_cc, (seed, e_em, e_cc)


def test_options_are_checked():
    data = simulate(S_SMALL, P_SMALL, 100, noise_var=0.5, loadings="gaussian", random_state=7)
    Xs, _ = _drop_modalities(data.Xs, 0.95, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"The 'noise' parameter must be one of"):
        fit_missing(Xs, S_SMALL, noise="diag")
    with pytest.raises(ValueError, match=r"The 'accelerate' parameter must be 'squarem' or None"):
        fit_missing(Xs, S_SMALL, accelerate="anderson")
    with pytest.raises(ValueError, match=r"The 'init' parameter of fit_missing must be one of"):
        fit_missing(Xs, S_SMALL, init="zeros")
    with pytest.raises(ValueError, match=r"init='complete_cases' needs enough complete rows.*got \d complete rows of 100"):
        fit_missing(Xs, S_SMALL, init="complete_cases")


def test_init_complete_cases_reaches_the_same_fit():
    data = simulate(S_SMALL, P_SMALL, 400, noise_var=0.5, loadings="gaussian", random_state=8)
    Xs, _ = _drop_modalities(data.Xs, 0.3, np.random.default_rng(5))
    a = fit_missing(Xs, S_SMALL, init="available_case", tol=1e-12, gtol=1e-8, max_iter=5000)
    b = fit_missing(Xs, S_SMALL, init="complete_cases", tol=1e-12, gtol=1e-8, max_iter=5000)
    assert a.info["init"] == "available_case" and b.info["init"] == "complete_cases"
    assert abs(a.history["loglik"][-1] - b.history["loglik"][-1]) < 1e-6


def test_available_case_moments():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    X[:10, 0] = np.nan
    mean, cov, cnt = available_case_moments(X)
    assert cnt[0, 0] == 40 and cnt[1, 2] == 50
    np.testing.assert_allclose(mean[0], X[10:, 0].mean())
    np.testing.assert_allclose(cov[1, 2], np.cov(X[:, 1], X[:, 2])[0, 1])
    np.testing.assert_allclose(cov[0, 0], X[10:, 0].var(ddof=1))


# ------------------------------------------------------------------------------------------
# representations of incomplete rows
# ------------------------------------------------------------------------------------------
def test_posterior_and_paper_representation_of_incomplete_rows():
    rng = np.random.default_rng(0)
    lay = _Layout(S_SMALL, P_SMALL)
    W = rng.standard_normal((sum(P_SMALL), S_SMALL.n_factors)) * lay.mask
    psi = 0.5 + rng.random(sum(P_SMALL))
    mean = rng.standard_normal(sum(P_SMALL))
    X = rng.standard_normal((6, sum(P_SMALL)))
    rows = S_SMALL.row_slices(P_SMALL)
    X[1, rows[2]] = np.nan        # without modality 2
    X[2, [0, 3, 15]] = np.nan
    Z, covs, idx = posterior_moments_incomplete(X, mean, W, psi)
    for i in range(6):
        o = ~np.isnan(X[i])
        Sigma = W[o] @ W[o].T + np.diag(psi[o])
        ref = W[o].T @ np.linalg.solve(Sigma, X[i, o] - mean[o])
        np.testing.assert_allclose(Z[i], ref, atol=1e-10)
        np.testing.assert_allclose(covs[idx[i]], np.eye(W.shape[1]) - W[o].T @ np.linalg.solve(Sigma, W[o]), atol=1e-10)
    c2 = S_SMALL.column_slice((2,))
    assert np.all(Z[1, c2] == 0) and np.allclose(np.diag(covs[idx[1]])[c2], 1.0)
    P = paper_representation_incomplete(X, mean, W)
    full = [0, 3, 4, 5]
    ref = np.linalg.solve(W.T @ W, W.T @ (X[full] - mean).T).T
    np.testing.assert_allclose(P[full], ref, atol=1e-10)
    assert np.all(P[1, c2] == 0)


# ------------------------------------------------------------------------------------------
# available-case structure selection
# ------------------------------------------------------------------------------------------
S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)


@pytest.mark.parametrize("design", ["one_modality_30pct", "half_without_one", "scattered_10pct"])
def test_selection_on_incomplete_data(design):
    """Exact structure in each of 2 seeds per design (benchmarks/bench_missing.py runs 20+)."""
    for seed in range(2):
        data = simulate(S3, (50, 40, 30), 800, noise_var=1.0, loadings="gaussian", random_state=seed)
        rng = np.random.default_rng(10 + seed)
        if design == "one_modality_30pct":
            Xs, _ = _drop_modalities(data.Xs, 0.3, rng)
        elif design == "half_without_one":
            Xs = [x.copy() for x in data.Xs]
            Xs[seed % 3][rng.permutation(800)[:400]] = np.nan
        else:
            Xs = [x.copy() for x in data.Xs]
            Xs[0][rng.random(Xs[0].shape) < 0.1] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the scattered design warns that it mean-fills entries
            s, det = select_structure_incomplete(Xs, return_details=True)
        assert s == S3, (design, seed, s)
        assert det.residual == 0 and det.missing.any_missing
        assert any(w.startswith("incomplete data: available-case selection") for w in det.warnings)


def test_selection_errors_and_stability():
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.3, loadings="gaussian", random_state=9)
    Xs = [x.copy() for x in data.Xs]
    Xs[0][:150] = np.nan
    Xs[2][150:] = np.nan
    with pytest.raises(ValueError, match=r"no sample observes both Xs\[0\] and Xs\[2\]"):
        select_structure_incomplete(Xs)
    Xs, _ = _drop_modalities(data.Xs, 0.3, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"The 'level' parameter of select_structure"):
        select_structure_incomplete(Xs, level=0.5)
    s, det = select_structure_incomplete(Xs, return_details=True, n_resamples=3, names=("a", "b", "c"))
    assert det.stability.n_resamples == 3 and len(det.stability.structures) == 3
    assert s.names == ("a", "b", "c")
    assert "available-case" in det.summary().as_text()


def test_batched_and_per_pattern_steps_agree(monkeypatch):
    """Many patterns take the batched E- and M-steps; both paths compute the same quantities."""
    import hcl_stats.estimation.missing as mi

    data = simulate(S_SMALL, P_SMALL, 150, noise_var=0.5, loadings="gaussian", random_state=10)
    X = np.hstack(data.Xs)
    X[np.random.default_rng(0).random(X.shape) < 0.08] = np.nan
    lay = _Layout(S_SMALL, P_SMALL)
    rng = np.random.default_rng(1)
    W = rng.standard_normal((X.shape[1], S_SMALL.n_factors)) * lay.mask
    mu = np.nanmean(X, axis=0)
    psi = 0.5 + rng.random(X.shape[1])
    floor = 1e-10 * np.ones_like(psi)
    out = {}
    for limit in (10 ** 9, 0):
        monkeypatch.setattr(mi, "BATCH_PATTERNS", limit)
        pat = _Patterns(X, lay)
        assert pat.batched == (limit == 0) and pat.n_distinct > 50
        Z, Minv, ll = missing_estep(X, mu, W, psi, pat)
        covs = Minv[pat.row_inv]
        out[limit] = (Z, covs, ll) + _mstep(mu, W, psi, Z, Minv, pat, lay, "feature", floor)
    for a, b in zip(out[0], out[10 ** 9]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_default_stopping_rule_and_squarem_pay_off():
    """With the defaults (those of fit_ml) the fit stops only when both the log-likelihood increase
    per sample and feature (1e-13) and the scaled gradient (1e-10) are small; SQUAREM needs fewer
    E-steps than plain EM."""
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=11)
    Xs, _ = _drop_modalities(data.Xs, 0.4, np.random.default_rng(6))
    sq = fit_missing(Xs, S_SMALL)
    ll = sq.history["loglik"]
    p = sum(P_SMALL)
    assert sq.converged and sq.info["tol"] == 1e-13 and sq.info["gtol"] == 1e-10
    assert (ll[-1] - ll[-2]) / p <= 1e-13 and sq.history["kkt"][-1] <= 1e-10
    assert sq.history["kkt"][0] > 1e-10
    plain = fit_missing(Xs, S_SMALL, accelerate=None, max_iter=20000)
    assert plain.converged and sq.info["n_estep"] < plain.info["n_estep"]
    assert abs(plain.history["loglik"][-1] - ll[-1]) < 1e-6


def test_rescaling_does_not_change_the_iterations():
    """The fit runs on a rescaled copy, so the stopping rule does not depend on the units: the
    optimality trace is the same (to 1e-6 relative) while it is above 1e-8, and the two fits stop
    within one iteration of each other. Below about 1e-8 the two runs differ by rounding only (the
    rescaled copies of X and 1e4 X agree to 1e-16), which SQUAREM's extrapolation (a step length from
    second differences of the iterates) can amplify: in this design the last one or two values of the
    trace differ by up to 10x between the two runs, and an equal iteration count is rounding luck.
    With noise="feature" the start itself (an available-case fit stopped at a loose tolerance)
    differs by about 4e-4 relative between the two scalings (up to 2e-3 along the trace), so only its
    iteration count and its estimate are compared."""
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=12)
    Xs, _ = _drop_modalities(data.Xs, 0.3, np.random.default_rng(7))
    for noise in ("feature", "modality", "isotropic"):
        a = fit_missing(Xs, S_SMALL, noise=noise)
        b = fit_missing([X * 1e4 for X in Xs], S_SMALL, noise=noise)
        ka, kb = np.asarray(a.history["kkt"]), np.asarray(b.history["kkt"])
        big = np.flatnonzero(ka > 1e-8)
        assert big.size >= 4, noise                              # the comparison covers the run
        if noise != "feature":
            np.testing.assert_allclose(kb[big], ka[big], rtol=1e-6, err_msg=noise)
        assert abs(a.n_iter - b.n_iter) <= 1, noise
        assert a.converged and b.converged, noise
        np.testing.assert_allclose(b.noise_var, a.noise_var * 1e8, rtol=1e-6)


def test_selection_prefers_rows_complete_in_the_modality():
    """Entries missing together (the same 5 features in 10% of the rows) would break the mean-filled
    test; the rows observing the whole modality (at least half of them) are used instead."""
    data = simulate(S3, (50, 40, 30), 800, noise_var=1.0, loadings="gaussian", random_state=3)
    Xs = [x.copy() for x in data.Xs]
    Xs[0][:80, :5] = np.nan
    Xs[2][400:600] = np.nan
    s, det = select_structure_incomplete(Xs, return_details=True)
    assert s == S3
    assert any("Xs[0]: its rank test used the 720 rows observing all its features (of 800" in w for w in det.warnings)


def test_change_tolerance_is_the_binding_rule_when_gtol_is_loose():
    """With gtol out of the way, the fit stops at the first iterate whose log-likelihood increase
    per sample and feature is at most tol (not relative to |loglik|: the data are not standardised)."""
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=11)
    Xs, _ = _drop_modalities(data.Xs, 0.4, np.random.default_rng(6))
    Xs = [X * 1e3 + 5.0 for X in Xs]
    res = fit_missing(Xs, S_SMALL, gtol=np.inf, tol=1e-7)
    inc = np.diff(res.history["loglik"]) / sum(P_SMALL)
    assert res.converged and inc[-1] <= 1e-7 and np.all(inc[:-1] > 1e-7), inc


def test_gradient_tolerance_is_the_binding_rule_when_tol_is_loose():
    """With tol out of the way the fit stops at the first iterate whose scaled gradient (loadings
    and noise) is at most gtol."""
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=11)
    Xs, _ = _drop_modalities(data.Xs, 0.4, np.random.default_rng(6))
    for noise in ("feature", "modality", "isotropic"):
        res = fit_missing(Xs, S_SMALL, tol=np.inf, gtol=1e-6, noise=noise)
        k = res.history["kkt"]
        assert res.converged and k[-1] <= 1e-6 and np.all(k[1:-1] > 1e-6), (noise, k)


def test_not_converged_gives_a_message_like_fit_ml():
    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=11)
    Xs, _ = _drop_modalities(data.Xs, 0.4, np.random.default_rng(6))
    res = fit_missing(Xs, S_SMALL, max_iter=2)
    assert not res.converged
    msg = res.info["convergence_message"]
    assert "stopped after 2 EM iterations (max_iter=2)" in msg and "change_tol=1e-13" in msg and "(tol=1e-10)" in msg
    assert "max_iter=8" in msg
    assert "convergence_message" not in fit_missing(Xs, S_SMALL).info


def test_squarem_safeguard_keeps_the_likelihood_monotone():
    """A data set (found by search) where unguarded SQUAREM extrapolations lower the likelihood:
    the safeguard refuses them and the recorded log-likelihood never decreases."""
    data = simulate(S_SMALL, P_SMALL, 150, noise_var=0.5, loadings="gaussian", random_state=4)
    Xs, _ = _drop_modalities(data.Xs, 0.5, np.random.default_rng(4))
    res = fit_missing(Xs, S_SMALL)
    ll = res.history["loglik"]
    assert res.converged and res.info["squarem_rejected"] > 0
    # never lower, up to the rounding of the log-likelihood's value itself (a few ulp once converged: one step
    # was -7.1e-15 = -1 ulp at |ll| = 34.4)
    assert np.all(np.diff(ll) >= -4 * np.spacing(np.abs(ll[1:]))), np.diff(ll).min()


def test_a_nearly_noiseless_feature_keeps_its_small_noise_variance():
    """The noise floor (1e-10 of a feature's variance) must not bind for a feature whose noise is
    about 1e-4 of its variance: the EM agrees with the covariance ML there. (A first version of
    this test asked for the truth within a factor 2; the ML estimate itself, by either route, is
    about 8 times the truth at n = 2000, so it now compares the two ML routes.)"""
    from hcl_stats.simulate import make_loadings

    rng = np.random.default_rng(0)
    W = make_loadings(S_SMALL, P_SMALL, random_state=rng, kind="gaussian")
    psi = np.full(sum(P_SMALL), 0.5)
    psi[0] = 1e-4 * np.sum(W[0] ** 2)
    n = 2000
    X = rng.standard_normal((n, S_SMALL.n_factors)) @ W.T + rng.standard_normal((n, sum(P_SMALL))) * np.sqrt(psi)
    rows = S_SMALL.row_slices(P_SMALL)
    res = fit_missing([X[:, r] for r in rows], S_SMALL, tol=1e-12, gtol=1e-8, max_iter=20000)
    cov = np.cov(X, rowvar=False) * (n - 1) / n
    ref = fit_ml(CovarianceStats(cov=cov, mean=X.mean(0), n_samples=n, n_features=P_SMALL), S_SMALL, noise="feature",
                 tol=1e-12, gtol=1e-8, max_iter=20000)
    assert res.noise_var[0] / cov[0, 0] < 1e-2
    assert abs(res.noise_var[0] / ref.noise_var[0] - 1) < 1e-2, (res.noise_var[0], ref.noise_var[0])


def test_fit_missing_refuses_unusable_input_directly():
    data = simulate(S_SMALL, P_SMALL, 100, noise_var=0.5, loadings="gaussian", random_state=13)
    Xs = [x.copy() for x in data.Xs]
    Xs[1][:, 3] = np.nan
    with pytest.raises(ValueError, match=r"feature 15 of the stacked data is observed 0 time\(s\)"):
        fit_missing(Xs, S_SMALL)
    Xs = [x.copy() for x in data.Xs]
    for x in Xs:
        x[7] = np.nan
    with pytest.raises(ValueError, match=r"some row has no observed value"):
        fit_missing(Xs, S_SMALL)


def test_squarem_step_schedule():
    from hcl_stats.estimation.ml import squarem_steps as _squarem_steps

    assert list(_squarem_steps(-8.0)) == [-8.0, -4.5, -2.75, -1.875, -1.4375, -1.21875]
    assert list(_squarem_steps(-3.0)) == [-3.0, -2.0, -1.5, -1.25, -1.125, -1.0625]
    assert list(_squarem_steps(-1.0)) == [-1.0] * 6   # the plain double EM step (accepted at once)
    assert list(_squarem_steps(-0.99)) == []


def test_selection_with_the_per_modality_noise_test():
    data = simulate(S3, (50, 40, 30), 800, noise_var=1.0, loadings="gaussian", random_state=0)
    Xs = [x.copy() for x in data.Xs]
    Xs[1][:400] = np.nan
    s, det = select_structure_incomplete(Xs, noise="modality", return_details=True)
    assert s == S3 and det.noise == "modality"
    assert det.canonical_tests[(0, (1,))].rank == 4 and det.modality_tests[1].rank == 7


def test_selection_is_invariant_to_shifting_features():
    """Missing entries are filled with their feature's mean, so adding a constant to every value
    of a feature changes no statistic (filling with 0 would)."""
    data = simulate(S3, (30, 25, 20), 400, noise_var=1.0, loadings="gaussian", random_state=5)
    rng = np.random.default_rng(5)
    Xs = [x.copy() for x in data.Xs]
    for X in Xs:
        X[rng.random(X.shape) < 0.1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, a = select_structure_incomplete(Xs, return_details=True)
        _, b = select_structure_incomplete([X + 20.0 for X in Xs], return_details=True)
    for key, t in a.canonical_tests.items():
        np.testing.assert_allclose(b.canonical_tests[key].canonical_corr, t.canonical_corr, atol=1e-8)
    for ta, tb in zip(a.modality_tests, b.modality_tests):
        np.testing.assert_allclose(tb.eigenvalues, ta.eigenvalues, rtol=1e-8)


def test_px_em_is_monotone_and_reaches_the_same_fit():
    """The parameter-expanded M-step (plain EM, no SQUAREM) never lowers the observed-data
    log-likelihood, on the per-pattern and the batched path, and ends where plain EM ends, in
    fewer iterations."""
    import hcl_stats.estimation.missing as mm

    data = simulate(S_SMALL, P_SMALL, 300, noise_var=0.5, loadings="gaussian", random_state=21)
    Xs, _ = _drop_modalities(data.Xs, 0.4, np.random.default_rng(8))
    Xs = [x.copy() for x in Xs]
    Xs[1][np.random.default_rng(9).random(Xs[1].shape) < 0.05] = np.nan
    for limit in (mm.BATCH_PATTERNS, 0):
        old = mm.BATCH_PATTERNS
        mm.BATCH_PATTERNS = limit
        try:
            px = fit_missing(Xs, S_SMALL, accelerate=None, tol=1e-11, gtol=1e-8, max_iter=20000)
            em = fit_missing(Xs, S_SMALL, accelerate=None, tol=1e-11, gtol=1e-8, max_iter=20000, px=False)
        finally:
            mm.BATCH_PATTERNS = old
        assert px.info["batched"] == (limit == 0) and px.info["px"] and not em.info["px"]
        ll = px.history["loglik"]
        assert np.all(np.diff(ll) >= -1e-12 * np.abs(ll[1:])), np.diff(ll).min()
        assert px.converged and em.converged and px.n_iter < em.n_iter, (px.n_iter, em.n_iter)
        assert abs(px.history["loglik"][-1] - em.history["loglik"][-1]) < 1e-6
        np.testing.assert_allclose(px.loadings @ px.loadings.T, em.loadings @ em.loadings.T, atol=1e-3)
    with pytest.raises(ValueError, match="'px' parameter of fit_missing must be a bool"):
        fit_missing(Xs, S_SMALL, px="yes")


def test_scaled_gradient_means_what_it_means_in_fit_ml():
    """On complete data at the sample mean, the scaled gradient of the stopping rule (loadings and
    noise, each noise model) is the one ml.em_fit computes from the sample covariance."""
    from hcl_stats.estimation.missing import _kkt
    from hcl_stats.estimation.ml import em_fit

    data = simulate(S_SMALL, P_SMALL, 200, noise_var=0.5, loadings="gaussian", random_state=31)
    X = np.hstack(data.Xs)
    lay = _Layout(S_SMALL, P_SMALL)
    pat = _Patterns(X, lay)
    rng = np.random.default_rng(2)
    W = rng.standard_normal((X.shape[1], S_SMALL.n_factors)) * lay.mask
    mu = X.mean(axis=0)
    S = np.cov(X, rowvar=False, bias=True)
    for noise, psi in [("feature", 0.5 + rng.random(X.shape[1])),
                       ("modality", np.repeat([0.7, 1.3, 0.4], P_SMALL)),
                       ("isotropic", np.full(X.shape[1], 0.8))]:
        Z, Minv, _ = missing_estep(X, mu, W, psi, pat)
        _, _, _, g, gp = _mstep(mu, W, psi, Z, Minv, pat, lay, noise, 1e-10 * np.ones_like(psi))
        ref = em_fit(S, W, psi, lay, noise=noise, max_iter=1, accelerate=None)["history"]["kkt"][0]
        assert abs(_kkt(g, gp, W, lay, noise) - ref) <= 1e-10 * ref, noise


@pytest.mark.parametrize("share_incomplete, complete_rows_used", [(0.42, True), (0.58, False)])
def test_complete_rows_rule_edge(share_incomplete, complete_rows_used):
    """A modality's rank test uses the rows observing all its features when they are at least half
    of the rows observing it (58% complete: yes; 42% complete: the mean-filled rows instead)."""
    from hcl_stats import select_structure

    d = simulate(S3, (30, 40, 50), 1000, noise_var=1.0, random_state=11, loadings="gaussian")
    X0 = d.Xs[0].copy()
    rng = np.random.default_rng(0)
    rows = rng.choice(1000, size=int(share_incomplete * 1000), replace=False)
    X0[rows, rng.integers(30, size=rows.size)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, res = select_structure([X0, d.Xs[1], d.Xs[2]], return_details=True)
    text = " ".join(res.warnings)
    assert ("rows observing all its features" in text) == complete_rows_used, text
    assert ("set to its feature's mean" in text) == (not complete_rows_used), text
