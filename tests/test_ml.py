"""Gaussian ML by EM (method="ml"): monotone likelihood, exact recovery, reductions to FA."""
import numpy as np
import pytest

from _hcl_designs import DESIGNS
from hcl_stats import HCL, Structure, simulate
from hcl_stats.covariance import sample_covariance
from hcl_stats.estimation.ml import fit_ml
from hcl_stats.likelihood import loglik_from_cov
from hcl_stats.metrics import overall_gram_error

TIGHT = dict(tol=1e-12, max_iter=20000)   # population covariances (no n) are fitted with the gradient rule; with n, 1e-12 nats per iteration


@pytest.mark.parametrize("M", [2, 3, 4, 5])
@pytest.mark.parametrize("noise", ["modality", "feature"])
def test_exact_recovery_from_population(M, noise):
    s, nf = DESIGNS[M]
    for seed in range(2):
        d = simulate(s, nf, 10, noise_var=[0.3 + 0.2 * m for m in range(M)], random_state=seed)
        h = HCL(s, method="ml", noise=noise, shrinkage=False, **TIGHT).fit_covariance(d.covariance(), nf)
        assert h.converged_
        assert overall_gram_error(h.loadings_, d.loadings, relative=True) < 1e-8
        np.testing.assert_allclose(h.noise_var_, d.noise_var, rtol=1e-8)
        assert not np.any(h.loadings_[~s.support_mask(nf)])


@pytest.mark.parametrize("M", [2, 3, 4, 5])
@pytest.mark.parametrize("noise", ["modality", "isotropic"])
def test_exact_recovery_from_population_shrinkage(M, noise):
    # per-modality whitening before shrinkage makes the target exact for per-modality noise;
    # noise="isotropic" assumes one noise variance
    s, nf = DESIGNS[M]
    nv = [0.3 + 0.2 * m for m in range(M)] if noise == "modality" else 0.5
    d = simulate(s, nf, 10, noise_var=nv, random_state=11)
    h = HCL(s, method="ml", shrinkage=True, noise=noise, **TIGHT).fit_covariance(d.covariance(), nf)
    assert overall_gram_error(h.loadings_, d.loadings, relative=True) < 1e-8
    np.testing.assert_allclose(h.noise_var_, d.noise_var, rtol=1e-8)


@pytest.mark.parametrize("accelerate", ["squarem", None])
@pytest.mark.parametrize("noise", ["modality", "feature", "isotropic"])
def test_loglik_never_decreases_and_matches_likelihood_module(accelerate, noise):
    s, nf = DESIGNS[3]
    d = simulate(s, nf, 300, noise_var=2.0, random_state=5)
    st = sample_covariance(d.Xs)
    res = fit_ml(st, s, noise=noise, accelerate=accelerate, max_iter=300, tol=1e-12, gtol=1e-9)
    ll = res.history["loglik"]
    assert len(ll) > 5
    # EM is monotone: only rounding (relative 1e-13) may show as a decrease
    assert np.all(np.diff(ll) >= -1e-13 * np.abs(ll[1:]))
    S_ml = st.cov  # loglik_from_cov takes the covariance as given
    # the last recorded value is the log-likelihood of the iterate before the last update;
    # the final iterate's log-likelihood is at least as large
    final = loglik_from_cov(S_ml, res.loadings, res.noise_var)
    assert final >= ll[-1] - 1e-10 * abs(ll[-1])
    if noise == "isotropic":
        assert np.ptp(res.noise_var) == 0
    if noise == "modality":
        for r in s.row_slices(nf):
            assert np.ptp(res.noise_var[r]) == 0


def test_recorded_loglik_is_the_likelihood_of_the_iterate():
    s, nf = DESIGNS[2]
    d = simulate(s, nf, 200, noise_var=1.0, random_state=2)
    st = sample_covariance(d.Xs)
    for k in (1, 2, 5):
        res = fit_ml(st, s, max_iter=k, tol=0.0, gtol=0.0, accelerate=None)
        prev = fit_ml(st, s, max_iter=k - 1, tol=0.0, gtol=0.0, accelerate=None) if k > 1 else None
        if prev is not None:
            np.testing.assert_allclose(res.history["loglik"][-1],
                                       loglik_from_cov(st.cov, prev.loadings, prev.noise_var), rtol=1e-12)


def _one_modality_data(seed, n=500, p=12, k=2):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, k))
    X = rng.standard_normal((n, k)) @ W.T + rng.standard_normal((n, p)) * np.sqrt(rng.uniform(0.5, 2.0, p))
    return X


def test_one_modality_reduction_matches_sklearn_factor_analysis():
    FactorAnalysis = pytest.importorskip("sklearn.decomposition").FactorAnalysis
    X = _one_modality_data(0)
    n = X.shape[0]
    fa = FactorAnalysis(2, tol=1e-12, max_iter=100000).fit(X)
    Xc = X - X.mean(0)
    S = Xc.T @ Xc / n  # sklearn maximises the likelihood of the biased covariance
    h = HCL(Structure({(0,): 2}, 1), method="ml", noise="feature", shrinkage=False, **TIGHT).fit_covariance(S, (12,), n_samples=n)
    L = fa.components_.T
    np.testing.assert_allclose(h.loadings_ @ h.loadings_.T, L @ L.T, atol=1e-5)
    np.testing.assert_allclose(h.noise_var_features_, fa.noise_variance_, atol=1e-5)
    ll_ours = loglik_from_cov(S, h.loadings_, h.noise_var_features_)
    ll_fa = loglik_from_cov(S, L, fa.noise_variance_)
    assert ll_ours >= ll_fa - 1e-9


def test_one_modality_reduction_matches_statsmodels_factor_ml():
    Factor = pytest.importorskip("statsmodels.multivariate.factor").Factor
    X = _one_modality_data(1)
    C = np.corrcoef(X.T)
    f = Factor(None, 2, corr=C, method="ml", nobs=X.shape[0]).fit(rng=0)   # statsmodels draws its start from fresh entropy by default
    h = HCL(Structure({(0,): 2}, 1), method="ml", noise="feature", shrinkage=False, **TIGHT).fit_covariance(C, (12,))
    L = f.loadings
    np.testing.assert_allclose(h.loadings_ @ h.loadings_.T, L @ L.T, atol=1e-5)
    np.testing.assert_allclose(h.noise_var_features_, f.uniqueness, atol=1e-5)


def test_ml_aligns_blocks_across_modalities_unlike_paper_mode():
    s, nf = DESIGNS[3]
    d = simulate(s, nf, 10, noise_var=0.5, random_state=3)
    ml = HCL(s, method="ml", **TIGHT).fit_covariance(d.covariance(), nf)
    paper = HCL(s, method="paper").fit_covariance(d.covariance(), nf)
    assert overall_gram_error(ml.loadings_, d.loadings, relative=True) < 1e-8
    assert overall_gram_error(paper.loadings_, d.loadings, relative=True) > 1e-2


def test_fit_from_data_improves_on_paper_mode():
    s = Structure.full(3, 2)
    nf = (20, 30, 40)
    errs = {"ml": [], "paper": []}
    for seed in range(3):
        d = simulate(s, nf, 2000, noise_var=1.0, random_state=seed)
        for m in errs:
            errs[m].append(overall_gram_error(HCL(s, method=m).fit(d.Xs).loadings_, d.loadings, relative=True))
    assert np.median(errs["ml"]) < 0.75 * np.median(errs["paper"])


def test_option_errors_name_the_argument():
    s, nf = DESIGNS[2]
    d = simulate(s, nf, 100, noise_var=1.0, random_state=0)
    with pytest.raises(ValueError, match=r"The 'noise' parameter of HCL must be one of \{'modality', 'feature', 'isotropic'\} or None. Got 'diag' instead."):
        HCL(s, method="ml", noise="diag").fit(d.Xs)
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of HCL must be a float in \[0, inf\) or one of \{'bic', 'cv'\}. Got -0.1 instead."):
        HCL(s, method="ml", alpha=-0.1).fit(d.Xs)
    with pytest.raises(ValueError, match=r"The 'accelerate' parameter of HCL must be one of \{'squarem'\} or None. Got 'anderson' instead."):
        HCL(s, method="ml", accelerate="anderson").fit(d.Xs)


def test_default_method_is_ml_with_shrinkage():
    h = HCL(DESIGNS[2][0])
    # shrinkage=None means the method's default: True for "ml" (the EM part)
    assert h.method == "ml" and h.shrinkage is None and h._solver().shrinkage is True


def test_weakest_blocks_name_the_subset_whose_loadings_vanish():
    """The ConvergenceWarning's diagnosis: the smallest whitened singular value per subset, computed
    here by hand, and a block with a zero column ranked first."""
    from hcl_stats import Structure
    from hcl_stats.estimation.ml import Layout, convergence_message, weakest_blocks

    s = Structure({(0, 1): 2, (0,): 1, (1,): 2}, 2)
    nf = (5, 6)
    lay = Layout(s, nf)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(11, 5)) * lay.mask
    W[5:, 4] = 0.0                                   # subset (1,): its second column vanishes
    psi = rng.uniform(0.5, 2.0, 11)
    wb = weakest_blocks(W, psi, lay, n=3)
    assert wb[0] == ((1,), 0.0)
    cs = s.column_slices[(0, 1)]
    expect = np.linalg.svd(W[:, cs] / np.sqrt(psi)[:, None], compute_uv=False)[-1]
    assert dict(wb)[(0, 1)] == pytest.approx(expect, rel=1e-12)
    out = {"history": {"objective": np.array([-3.0, -2.9]), "kkt": np.array([1e-3, 1e-4])}, "W": W, "psi": psi,
           "n_iter": 5, "tol": 1e-13, "gtol": 1e-10, "stop_crit": 1e-4}
    msg = convergence_message(out, 5, lay)
    assert "(1,): 0" in msg and "have (almost) vanished" in msg
    assert "vanished" not in convergence_message(out, 5)   # without the layout: no diagnosis
    healthy = dict(out, W=rng.normal(size=(11, 5)) * lay.mask)
    assert min(v for _, v in weakest_blocks(healthy["W"], psi, lay, n=5)) > 1e-2
    assert "vanished" not in convergence_message(healthy, 5, lay)   # nothing near zero: nothing named
    tiny = healthy["W"].copy()
    tiny[5:, 4] *= 1e-4                                          # whitened singular value of order 1e-4 to 1e-3
    v = dict(weakest_blocks(tiny, psi, lay, n=5))[(1,)]
    assert 1e-5 < v < 1e-2
    assert "(1,): " in convergence_message(dict(healthy, W=tiny), 5, lay)


def _empty_subset_start():
    """Data of a 2-modality design and a start equal to the true loadings but with subset (1,) empty."""
    from hcl_stats.estimation.ml import Layout

    s = Structure({(0, 1): 2, (0,): 2, (1,): 2}, 2)
    nf = (15, 20)
    d = simulate(s, nf, 2000, noise_var=0.5, random_state=4)
    W0 = d.loadings.copy()
    W0[:, s.column_slices[(1,)]] = 0.0
    return s, d, sample_covariance(d.Xs).cov, Layout(s, nf), W0


def test_zero_loadings_of_a_subset_are_a_fixed_point_of_em():
    """docs/method.md, section 14 ("Where EM is slow"): a subset whose loadings are exactly zero keeps
    them through EM steps (with the parameter expansion and SQUAREM of the default), although the
    data carry its signal -- the reason a start with an empty subset can stop at a saddle."""
    from hcl_stats.estimation.ml import em_fit, weakest_blocks

    s, d, S, lay, W0 = _empty_subset_start()
    out = em_fit(S, W0, np.full(35, 0.5), lay, noise="feature", max_iter=30)
    assert np.all(out["W"][:, s.column_slices[(1,)]] == 0.0)
    assert weakest_blocks(out["W"], out["psi"], lay, n=1)[0] == ((1,), 0.0)
    full = em_fit(S, d.loadings, np.full(35, 0.5), lay, noise="feature", max_iter=30)
    assert full["loglik"] > out["loglik"] + 0.01      # the empty subset costs likelihood: not a maximum


def _subset_design(seed=3):
    from hcl_stats.estimation.ml import Layout

    s = Structure({(0, 1): 2, (0,): 2, (1,): 1}, 2)
    nf = (30, 40)            # subset (0, 1) has 70 rows: the Lanczos path; (0,) and (1,) the dense one
    d = simulate(s, nf, 800, noise_var=0.7, random_state=seed)
    S = sample_covariance(d.Xs).cov
    return s, nf, d, S, Layout(s, nf)


@pytest.mark.parametrize("subset", [(0, 1), (0,), (1,)])
def test_subset_maximum_is_the_conditional_maximum(subset):
    """The exact conditional maximisation of one subset's loadings (docs/method.md, section 14) is
    checked against a general-purpose optimiser over that block (L-BFGS from several starts, the
    analytic gradient checked by finite differences first): nothing it finds is higher."""
    from scipy.optimize import approx_fprime, minimize

    from hcl_stats.estimation.ml import estep, subset_maximum

    s, nf, d, S, lay = _subset_design()
    rng = np.random.default_rng(1)
    p = sum(nf)
    W = d.loadings * lay.mask * rng.uniform(0.5, 1.5, d.loadings.shape)
    psi = rng.uniform(0.5, 1.0, p)
    R = s.feature_rows(subset, nf)
    cs = s.column_slices[subset]

    def negll(x):
        Wx = W.copy()
        Wx[R, cs] = x.reshape(R.size, -1)
        return -estep(S, Wx, psi)[5]

    def grad(x):
        Wx = W.copy()
        Wx[R, cs] = x.reshape(R.size, -1)
        Si = np.linalg.inv(Wx @ Wx.T + np.diag(psi))
        G = (Si @ S @ Si - Si) @ Wx           # d loglik / dW
        return -G[R, cs].ravel()

    x0 = W[R, cs].ravel()
    fd = approx_fprime(x0, negll, 1e-6)
    assert np.allclose(grad(x0), fd, rtol=1e-4, atol=1e-6)
    Wn, lam = subset_maximum(S, W, psi, lay, subset)
    assert np.all(Wn[:, np.r_[0:cs.start, cs.stop:W.shape[1]]] == W[:, np.r_[0:cs.start, cs.stop:W.shape[1]]])
    assert np.all(Wn[np.setdiff1d(np.arange(p), R)][:, cs] == 0.0)
    best = -negll(Wn[R, cs].ravel())
    assert best >= -negll(x0)
    assert np.linalg.norm(grad(Wn[R, cs].ravel())) < 1e-6
    for start in [x0, np.zeros_like(x0) + 1e-3, rng.normal(size=x0.size)]:
        opt = minimize(negll, start, jac=grad, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-15})
        assert -opt.fun <= best + 1e-9


def test_subset_maximum_empties_a_subset_the_covariance_does_not_need():
    """A generalised eigenvalue <= 1 gives exactly zero loadings: on a population covariance without
    the subset's term and with less noise than the held noise variances (so every eigenvalue is
    below 1), the maximiser of that subset is exactly zero, however it started."""
    from hcl_stats.estimation.ml import subset_maximum

    s, nf, d, _, lay = _subset_design()
    W = d.loadings.copy()
    cs = s.column_slices[(0,)]
    W[:, cs] = 0.0
    psi = np.full(sum(nf), 0.7)
    Sigma = W @ W.T + np.diag(np.full(sum(nf), 0.6))
    start = W.copy()
    start[:30, cs] = np.random.default_rng(0).normal(size=(30, 2))
    Wn, lam = subset_maximum(Sigma, start, psi, lay, (0,))
    assert np.all(lam < 1.0)
    assert np.all(Wn[:, cs] == 0.0)
    assert np.array_equal(np.delete(Wn, cs, axis=1), np.delete(W, cs, axis=1))


def test_likelihood_rule_leaves_a_saddle_that_the_gradient_rule_stops_at():
    """From a start whose subset (1,) is empty (a fixed point of EM, see the test above), the default
    rule's saddle check takes the subset's exact maximisation and goes on, reaching the likelihood
    of the fit from the true loadings; the gradient rule stops at the saddle."""
    from hcl_stats.estimation.ml import LIKELIHOOD_WINDOW, em_fit

    s, d, S, lay, W0 = _empty_subset_start()
    psi0 = np.full(35, 0.5)
    n = 2000
    grad = em_fit(S, W0, psi0, lay, noise="feature", max_iter=500, tol=1e-13, gtol=1e-10)
    lik = em_fit(S, W0, psi0, lay, noise="feature", max_iter=500, gtol=1e-3, criterion="likelihood", n_samples=n)
    ref = em_fit(S, d.loadings, psi0, lay, noise="feature", max_iter=500, gtol=1e-3, criterion="likelihood",
                 n_samples=n)
    assert grad["converged"] and np.all(grad["W"][:, s.column_slices[(1,)]] == 0.0)
    assert lik["converged"] and lik["saddle_escapes"] >= 1
    assert np.linalg.svd(lik["W"][15:, s.column_slices[(1,)]], compute_uv=False).min() > 0.1
    assert n * (lik["loglik"] - grad["loglik"]) > 10.0             # the saddle was far below
    assert abs(n * (lik["loglik"] - ref["loglik"])) < 0.05         # the same maximum as from the truth
    # at the returned point the check found no subset step worth more than the rule tolerates
    assert lik["saddle_gain"] <= 1e-3 * LIKELIHOOD_WINDOW


@pytest.mark.parametrize("c, escapes, band", [(0.05, False, (0.001, 0.01)), (0.1, True, (0.01, 0.1)),
                                              (0.064, False, (0.007, 0.01)), (0.07, True, (0.01, 0.013))])
def test_saddle_check_moves_on_exactly_when_a_subset_step_gains_more_than_tol_times_window(c, escapes, band):
    """The edge of the saddle check (tol x window = 1e-3 x 10 = 0.01 nats in total): on a population
    covariance whose subset (1,) has loadings scaled by c, the fit that starts with that subset empty
    stays there when the subset's exact maximisation gains 0.003 nats (c = 0.05) or 0.0085 (c = 0.064),
    and moves on when it gains 0.05 (c = 0.1) or 0.012 (c = 0.07). A threshold 30% lower or higher
    (or a window of 7 or 13 iterations) fails one of the last two."""
    from hcl_stats.estimation.ml import Layout, _subset_steps, em_fit

    s = Structure({(0, 1): 2, (0,): 2, (1,): 2}, 2)
    nf, n = (15, 20), 2000
    d = simulate(s, nf, 10, noise_var=0.5, random_state=4)
    lay = Layout(s, nf)
    L = d.loadings.copy()
    L[:, s.column_slices[(1,)]] *= c
    S = L @ L.T + 0.5 * np.eye(35)
    W0 = L.copy()
    W0[:, s.column_slices[(1,)]] = 0.0
    saddle = em_fit(S, W0, np.full(35, 0.5), lay, noise="feature", max_iter=2000, tol=1e-13, gtol=1e-10)
    _, gain = _subset_steps(S, saddle["W"], saddle["psi"], saddle["loglik"], lay, np.diag(S).copy())
    assert band[0] < n * gain < band[1]
    lik = em_fit(S, W0, np.full(35, 0.5), lay, noise="feature", max_iter=2000, gtol=1e-3, criterion="likelihood",
                 n_samples=n)
    assert lik["converged"] and (lik["saddle_escapes"] > 0) == escapes


def test_heywood_features_stop_at_the_noise_floor_with_a_warning():
    """A duplicated feature (up to scale) makes the likelihood rise without bound as its noise variance goes to
    zero; the fit holds it at 1e-3 of the feature's variance, converges, and says which features."""
    import warnings

    from hcl_stats import HCL
    from hcl_stats.exceptions import EstimationWarning

    s = Structure({(0, 1): 2, (0,): 1, (1,): 1}, 2)
    data = simulate(s, (10, 12), 500, noise_var=1.0, random_state=0)
    Xs = [data.Xs[0].copy(), data.Xs[1].copy()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # clean data: nothing at the floor, no warning
        clean = HCL(s).fit(Xs)
    assert clean.results_.info["noise_at_floor"] == []
    Xs[0][:, 3] = 2.0 * Xs[0][:, 2]
    with pytest.warns(EstimationWarning, match=r"2 feature\(s\) \(Xs\[0\]\[:, 2\], Xs\[0\]\[:, 3\]\) stopped at the floor, "
                                               r"0.001 times the feature's variance"):
        est = HCL(s).fit(Xs)
    assert est.converged_ and est.results_.info["noise_at_floor"] == [2, 3]
    ratio = est.noise_var_features_[[2, 3]] / Xs[0][:, [2, 3]].var(axis=0, ddof=1)
    np.testing.assert_allclose(ratio, 1e-3, rtol=1e-6)
    from hcl_stats.estimation import ml

    assert ml.PSI_FLOOR == 1e-3
