"""Likelihood-ratio goodness of fit of a structure (hcl_stats.goodness)."""
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from hcl_stats import Structure, simulate
from hcl_stats.covariance import CovarianceStats, sample_covariance
from hcl_stats.exceptions import DataWarning
from hcl_stats.goodness import (GoodnessOfFit, StructureComparison, compare_structures, goodness_of_fit,
                                n_free_parameters)
from hcl_stats.simulate import make_loadings

S_SMALL = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
P_SMALL = (12, 10, 8)


def _draw(seed, n=400, rho=0.0, structure=S_SMALL, p=P_SMALL, spread=True):
    """Sample covariance from the model with Gaussian loadings and per-feature noise spread x10."""
    rng = np.random.default_rng(seed)
    W = make_loadings(structure, p, rng, kind="gaussian")
    K = W.shape[1]
    psi = 10.0 ** rng.uniform(-0.5, 0.5, size=W.shape[0]) if spread else np.ones(W.shape[0])
    Z = rng.standard_normal((n, K))
    if rho:
        Z = Z @ np.linalg.cholesky((1 - rho) * np.eye(K) + rho * np.ones((K, K))).T
    X = Z @ W.T + rng.standard_normal((n, W.shape[0])) * np.sqrt(psi)
    b = np.cumsum((0,) + p)
    return [X[:, b[m]:b[m + 1]] for m in range(len(p))], W, psi


def _quiet_gof(*a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return goodness_of_fit(*a, **k)


def _finite(x):
    return x is None or np.all(np.isfinite(x))


# --------------------------------------------------------------------------- basic properties
@pytest.mark.parametrize("noise", ["feature", "modality", "isotropic"])
def test_statistics_nonnegative_and_likelihoods_ordered(noise):
    wrong = Structure({(0, 1, 2): 1, (1, 2): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    for seed in range(3):
        Xs, _, _ = _draw(seed)
        st = sample_covariance(Xs)
        for s in (S_SMALL, wrong):
            r = _quiet_gof(st, s, noise=noise)
            assert isinstance(r, GoodnessOfFit)
            assert r.statistic >= 0 and r.statistic_raw >= 0
            assert r.loglik["structured"] <= r.loglik["unstructured"] + 1e-8 * abs(r.loglik["unstructured"])
            assert r.loglik["unstructured"] <= r.loglik["saturated"] + 1e-8 * abs(r.loglik["saturated"])
            assert r.saturated_statistic >= 0 and r.unstructured_saturated_statistic >= 0
            assert 0 <= r.pvalue <= 1 and 0 <= r.saturated_pvalue <= 1
            for v in (r.statistic, r.saturated_statistic, *r.aic.values(), *r.bic.values(), *r.loglik.values()):
                assert np.isfinite(v)
            assert np.all(np.isfinite(r.loadings)) and np.all(r.noise_var_features > 0)


def _jacobian_rank(structure, p, noise, rng):
    """Rank of d vech(W W^T + Psi) / d(free loadings, noise) at generic parameters."""
    mask = structure.support_mask(p)
    ptot, K = mask.shape
    W = rng.standard_normal((ptot, K)) * mask
    iu = np.triu_indices(ptot)
    cols = []
    for j, k in zip(*np.nonzero(mask)):
        D = np.zeros((ptot, ptot))
        D[j, :] += W[:, k]
        D[:, j] += W[:, k]
        cols.append(D[iu])
    b = np.cumsum((0,) + tuple(p))
    groups = {"feature": [[j] for j in range(ptot)], "isotropic": [list(range(ptot))],
              "modality": [list(range(b[m], b[m + 1])) for m in range(len(p))]}[noise]
    for g in groups:
        D = np.zeros((ptot, ptot))
        D[g, g] = 1.0
        cols.append(D[iu])
    return np.linalg.matrix_rank(np.array(cols).T)


@pytest.mark.parametrize("noise", ["feature", "modality", "isotropic"])
def test_free_parameter_counts_match_jacobian_rank(noise):
    rng = np.random.default_rng(0)
    p = (5, 4, 4)
    s = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    U = Structure({(0, 1, 2): s.n_factors}, 3)
    # by hand: support 5*4 + 4*4 + 4*3 = 48, one rotation (rank 2) -> 47 loadings
    q = {"feature": 13, "modality": 3, "isotropic": 1}[noise]
    assert n_free_parameters(s, p, noise) == 47 + q
    assert n_free_parameters(U, p, noise) == 13 * 6 - 15 + q
    assert _jacobian_rank(s, p, noise, rng) == 47 + q
    assert _jacobian_rank(U, p, noise, rng) == 13 * 6 - 15 + q
    Xs, _, _ = _draw(1, n=300, structure=s, p=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = goodness_of_fit(sample_covariance(Xs), s, noise=noise, max_iter=50)   # only the counts matter here
    assert r.df == (13 * 6 - 15) - 47
    assert r.saturated_df == 13 * 14 // 2 - 47 - q
    assert r.unstructured_saturated_df == 13 * 14 // 2 - (13 * 6 - 15) - q
    assert r.n_params == {"structured": 47 + q, "unstructured": 63 + q, "saturated": 91}


def test_population_covariance_gives_zero_statistics():
    rng = np.random.default_rng(3)
    W = make_loadings(S_SMALL, P_SMALL, rng, kind="gaussian")
    psi = 10.0 ** rng.uniform(-0.5, 0.5, size=W.shape[0])
    Sigma = W @ W.T + np.diag(psi)
    st = CovarianceStats(cov=Sigma, mean=np.zeros(len(psi)), n_samples=None, n_features=P_SMALL)
    r = goodness_of_fit(st, S_SMALL, W, psi, n_samples=500)
    assert r.statistic < 1e-4
    assert r.saturated_statistic < 1e-4 and r.saturated_pvalue > 0.999
    assert r.pvalue > 0.999
    np.testing.assert_allclose(r.loadings @ r.loadings.T + np.diag(r.noise_var_features), Sigma, atol=1e-5)
    assert r.noise_var_features.shape == (Sigma.shape[0],)
    with pytest.warns(FutureWarning, match="GoodnessOfFit.noise_var is deprecated; use noise_var_features"):
        assert r.noise_var is r.noise_var_features


def test_population_covariance_needs_n_samples():
    st = CovarianceStats(cov=np.eye(30), mean=np.zeros(30), n_samples=None, n_features=P_SMALL)
    with pytest.raises(ValueError, match=r"n_samples is needed for a test"):
        goodness_of_fit(st, S_SMALL)


def test_invariant_to_feature_rescaling_and_start():
    Xs, W, psi = _draw(5)
    r0 = _quiet_gof(sample_covariance(Xs), S_SMALL)
    scales = [np.where(np.arange(X.shape[1]) % 2 == 0, 1e-6, 1e6) for X in Xs]
    r1 = _quiet_gof(sample_covariance([X * s for X, s in zip(Xs, scales)]), S_SMALL)
    assert abs(r1.statistic - r0.statistic) < 1e-4 * max(r0.statistic, 1.0)
    assert abs(r1.saturated_statistic - r0.saturated_statistic) < 1e-4 * r0.saturated_statistic
    # started from the true parameters: same optimum
    r2 = _quiet_gof(sample_covariance(Xs), S_SMALL, W, psi)
    assert abs(r2.statistic - r0.statistic) < 1e-3 * max(r0.statistic, 1.0)


# --------------------------------------------------------------------------- size and power
def _size(n_rep, seed0, n=300):
    rej = 0
    for r in range(n_rep):
        Xs, _, _ = _draw(10_000 + seed0 + r, n=n)
        rej += _quiet_gof(sample_covariance(Xs), S_SMALL).pvalue < 0.05
    return rej


def _band(R, level=0.05, conf=0.999):
    a = (1 - conf) / 2
    return sps.binom.ppf(a, R, level), sps.binom.ppf(1 - a, R, level)


def test_size_under_the_true_model():
    R = 60
    lo, hi = _band(R)
    rej = _size(R, 0)
    assert lo <= rej <= hi, (rej, lo, hi)


@pytest.mark.slow
def test_size_under_the_true_model_many_replicates():
    R = 600
    lo, hi = _band(R)
    rej = _size(R, 1000)
    assert lo <= rej <= hi, (rej, lo, hi)


def test_power_with_correlated_latents():
    rej = 0
    for seed in range(5):
        Xs, _, _ = _draw(200 + seed, n=1000, rho=0.3)
        rej += _quiet_gof(sample_covariance(Xs), S_SMALL).pvalue < 0.05
    assert rej >= 4


def test_wrong_structure_is_rejected():
    wrong = Structure({(0, 1, 2): 1, (0, 2): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    for seed in range(3):
        Xs, _, _ = _draw(300 + seed, n=500)
        assert _quiet_gof(sample_covariance(Xs), wrong).pvalue < 1e-6


# --------------------------------------------------------------------------- compare_structures
def test_compare_structures_picks_the_true_structure():
    wrong_pair = Structure({(0, 1, 2): 1, (0, 2): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    merged = Structure({(0, 1, 2): 2, (0,): 1, (1,): 1, (2,): 1}, 3)
    too_small = Structure({(0, 1, 2): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    for seed in range(3):
        Xs, _, _ = _draw(400 + seed, n=500)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            c = compare_structures(Xs, [wrong_pair, merged, S_SMALL, too_small])
        assert isinstance(c, StructureComparison)
        assert c.best == S_SMALL and c.best_index == 2 and c.rank[2] == 1
        assert sorted(c.rank.tolist()) == [1, 2, 3, 4]
        assert np.all(c.statistic >= 0) and np.all(np.isfinite(c.bic)) and np.all(np.isfinite(c.aic))
        assert np.all(c.loglik <= c.unstructured_loglik + 1e-8 * abs(c.unstructured_loglik))
        assert c.pvalue[0] < 1e-6
        recs = c.to_records()
        assert recs[2]["rank"] == 1 and recs[2]["df"] == c.unstructured_n_params - recs[2]["n_params"]


def test_compare_structures_agrees_with_goodness_of_fit():
    Xs, _, _ = _draw(7)
    c = compare_structures(Xs, [S_SMALL])
    r = _quiet_gof(sample_covariance(Xs), S_SMALL)
    r_xs = _quiet_gof(Xs, S_SMALL)   # the modalities themselves
    assert r_xs.statistic == r.statistic and r_xs.df == r.df
    assert abs(c.loglik[0] - r.loglik["structured"]) < 1e-6 * abs(r.loglik["structured"])
    assert abs(c.statistic[0] - r.statistic) < 1e-3 * max(r.statistic, 1.0)
    assert c.df[0] == r.df


# --------------------------------------------------------------------------- warnings and edge cases
def test_warns_when_p_is_large_relative_to_n():
    Xs, _, _ = _draw(8, n=40)
    with pytest.warns(DataWarning, match=r"large relative to n"):
        r = goodness_of_fit(sample_covariance(Xs), S_SMALL, max_iter=500)
    assert _finite(r.statistic) and _finite(r.pvalue)


def test_singular_covariance_has_no_saturated_test():
    Xs, _, _ = _draw(9, n=25)
    with pytest.warns(DataWarning, match=r"singular"):
        r = goodness_of_fit(sample_covariance(Xs), S_SMALL, max_iter=300)
    assert r.saturated_statistic is None and r.saturated_pvalue is None and r.loglik["saturated"] is None
    assert np.isfinite(r.statistic) and 0 <= r.pvalue <= 1
    assert "n/a" in r.summary().as_text()


def test_unstructured_structure_has_an_empty_nested_test():
    Xs, _, _ = _draw(10)
    with pytest.warns(DataWarning, match=r"nested test is empty"):
        r = goodness_of_fit(sample_covariance(Xs), Structure({(0, 1, 2): 3}, 3))
    assert r.df == 0 and r.statistic < 1e-6 and r.pvalue == 1.0


def test_heywood_case_warns():
    rng = np.random.default_rng(11)
    Xs, _, _ = _draw(11)
    z = rng.standard_normal(400)
    Xs[0][:, 0] = z
    Xs[1][:, 0] = z + 1e-4 * rng.standard_normal(400)   # a feature with no noise
    with pytest.warns(DataWarning, match=r"Heywood"):
        r = goodness_of_fit(sample_covariance(Xs), S_SMALL, max_iter=500)
    assert r.heywood["structured"] or r.heywood["unstructured"]
    assert np.isfinite(r.statistic)


@pytest.mark.parametrize("correction", ["bartlett", "bartlett_k", "swain", "none", "auto"])
def test_corrections(correction):
    Xs, _, _ = _draw(12)
    r = _quiet_gof(sample_covariance(Xs), S_SMALL, correction=correction)
    n, p, K = 400, 30, 5
    mB = (n - 1 - (2 * p + 5) / 6 - 2 * K / 3) / (n - 1)
    assert np.isclose(r.statistic, r.statistic_raw * r.correction_factor)
    if correction == "bartlett":
        assert np.isclose(r.correction_factor, mB) and np.isclose(r.saturated_correction_factor, mB)
    elif correction in ("bartlett_k", "auto"):
        assert np.isclose(r.correction_factor, (n - 1 - 2 * K / 3) / (n - 1))
        assert np.isclose(r.saturated_correction_factor, mB)
    elif correction == "none":
        assert r.correction_factor == 1.0 and r.saturated_correction_factor == 1.0
    else:
        assert 0.8 < r.correction_factor < 1.0 and 0.8 < r.saturated_correction_factor < 1.0


def test_bootstrap_correction():
    Xs, _, _ = _draw(16)
    r = _quiet_gof(sample_covariance(Xs), S_SMALL, correction="bootstrap", n_boot=4, random_state=0)
    assert r.bootstrap_statistics.shape == (4,) and np.all(r.bootstrap_statistics >= 0)
    assert 0.6 < r.correction_factor < 1.6
    r2 = _quiet_gof(sample_covariance(Xs), S_SMALL, correction="bootstrap", n_boot=4, random_state=0)
    assert r2.statistic == r.statistic
    # the default random_state is fixed (0): the same data give the same p-value
    r3 = _quiet_gof(sample_covariance(Xs), S_SMALL, correction="bootstrap", n_boot=4)
    np.testing.assert_array_equal(r3.bootstrap_statistics, r.bootstrap_statistics)
    r4 = _quiet_gof(sample_covariance(Xs), S_SMALL, correction="bootstrap", n_boot=4, random_state=1)
    assert not np.array_equal(r4.bootstrap_statistics, r.bootstrap_statistics)
    with pytest.warns(FutureWarning, match=r"'rng' parameter of goodness_of_fit is deprecated; use random_state"):
        r5 = goodness_of_fit(sample_covariance(Xs), S_SMALL, correction="bootstrap", n_boot=4, rng=1, warn=False)
    np.testing.assert_array_equal(r5.bootstrap_statistics, r4.bootstrap_statistics)


# --------------------------------------------------------------------------- bad input
def test_bad_inputs():
    Xs, _, _ = _draw(14)
    st = sample_covariance(Xs)
    with pytest.raises(ValueError, match=r"stats must be a hcl_stats.covariance.CovarianceStats"):
        goodness_of_fit(np.eye(30), S_SMALL)
    with pytest.raises(ValueError, match=r"stats\[0\] must be finite"):
        goodness_of_fit([np.full((50, 12), np.nan), Xs[1][:50], Xs[2][:50]], S_SMALL)
    with pytest.raises(ValueError, match=r"structure must be a hcl_stats.Structure"):
        goodness_of_fit(st, {(0,): 1})
    with pytest.raises(ValueError, match=r"structure has 2 modalities but the data have 3"):
        goodness_of_fit(st, Structure({(0, 1): 1}, 2))
    with pytest.raises(ValueError, match=r"noise must be one of"):
        goodness_of_fit(st, S_SMALL, noise="diag")
    with pytest.raises(ValueError, match=r"correction must be one of"):
        goodness_of_fit(st, S_SMALL, correction="bartlet")
    with pytest.raises(ValueError, match=r"loadings must have shape \(p, K\) = \(30, 5\)"):
        goodness_of_fit(st, S_SMALL, np.ones((30, 4)))
    with pytest.raises(ValueError, match=r"loadings must be finite"):
        goodness_of_fit(st, S_SMALL, np.full((30, 5), np.nan))
    with pytest.raises(ValueError, match=r"noise_var must be a positive finite number"):
        goodness_of_fit(st, S_SMALL, np.ones((30, 5)), -np.ones(30))
    with pytest.raises(ValueError, match=r"n_samples must be an integer >= 2; got 1"):
        goodness_of_fit(st, S_SMALL, n_samples=1)
    with pytest.raises(ValueError, match=r"n_boot must be an integer >= 2"):
        goodness_of_fit(st, S_SMALL, correction="bootstrap", n_boot=0)
    with pytest.raises(ValueError, match=r"tol must be a float in \[0, 1\)"):
        goodness_of_fit(st, S_SMALL, tol=-1.0)
    with pytest.raises(ValueError, match=r"total rank K = 31 must be below the number of features p = 30"):
        goodness_of_fit(st, Structure({(0, 1, 2): 31}, 3))
    bad = [X.copy() for X in Xs]
    bad[1][:, 3] = 2.0
    with pytest.raises(ValueError, match=r"feature 3 of modality 1 \(column 15\) has zero variance"):
        goodness_of_fit(sample_covariance(bad), S_SMALL)
    cov = st.cov.copy()
    cov[0, 1] += 1.0
    with pytest.raises(ValueError, match=r"stats.cov must be symmetric"):
        goodness_of_fit(CovarianceStats(cov, st.mean, 400, P_SMALL), S_SMALL)
    cov = st.cov.copy()
    cov[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"stats.cov must be finite"):
        goodness_of_fit(CovarianceStats(cov, st.mean, 400, P_SMALL), S_SMALL)


def test_compare_structures_bad_inputs():
    Xs, _, _ = _draw(15)
    with pytest.raises(ValueError, match=r"structures must contain at least one Structure"):
        compare_structures(Xs, [])
    with pytest.raises(ValueError, match=r"structures must be a sequence of hcl_stats.Structure"):
        compare_structures(Xs, S_SMALL)
    with pytest.raises(ValueError, match=r"structures\[1\] must be a hcl_stats.Structure"):
        compare_structures(Xs, [S_SMALL, "x"])
    with pytest.raises(ValueError, match=r"structures\[0\] has 2 modalities but the data have 3"):
        compare_structures(Xs, [Structure({(0, 1): 1}, 2)])
    with pytest.raises(ValueError, match=r"Xs\[1\] must be finite"):
        compare_structures([Xs[0], np.full_like(Xs[1], np.nan), Xs[2]], [S_SMALL])
    with pytest.raises(ValueError, match=r"Xs must be a list of 2-D arrays"):
        compare_structures(np.ones((10, 3)), [S_SMALL])
    with pytest.raises(ValueError, match=r"noise must be one of"):
        compare_structures(Xs, [S_SMALL], noise="x")
    with pytest.raises(ValueError, match=r"correction must be one of \('auto', 'bartlett', 'bartlett_k', 'swain', 'none'\)"):
        compare_structures(Xs, [S_SMALL], correction="bootstrap")


# --------------------------------------------------------------------------- summaries
def test_summary_formats_and_html_escaping():
    s = S_SMALL.with_names(["<img>", "a&b", "c_d"])
    Xs, _, _ = _draw(16)
    r = _quiet_gof(sample_covariance(Xs), s)
    sm = r.summary()
    txt = sm.as_text()
    assert str(sm) == txt
    assert "structured vs unstructured (same K)" in txt and "structured vs saturated" in txt
    assert f"{r.statistic:.2f}"[:4] in txt and str(r.df) in txt
    md = sm.as_markdown()
    assert "| test | statistic | df | p-value |" in md and "|---|" in md
    tex = sm.as_latex()
    assert r"\begin{tabular}" in tex and r"a\&b" in tex and r"c\_d" in tex and "<img>" not in tex
    h = sm.as_html()
    assert "<img>" not in h and "&lt;img&gt;" in h and "a&amp;b" in h and "<table>" in h
    c = compare_structures(Xs, [s, Structure({(0, 1, 2): 2, (0,): 1, (1,): 1, (2,): 1}, 3,
                                             names=["<img>", "a&b", "c_d"])])
    ch = c.summary().as_html()
    assert "<img>" not in ch and "&lt;img&gt;" in ch
    ct = c.summary().as_text()
    assert "Candidates ranked by BIC" in ct and "BIC - min" in ct
    assert r"\begin{tabular}" in c.summary().as_latex() and "| rank |" in c.summary().as_markdown()


def test_warnings_point_at_the_users_call_also_through_hcl():
    from hcl_stats import HCL

    Xs, _, _ = _draw(16)
    with pytest.warns(FutureWarning, match=r"'rng' parameter of goodness_of_fit is deprecated") as rec:
        goodness_of_fit(sample_covariance(Xs), S_SMALL, correction="bootstrap", n_boot=2, rng=1, warn=False)
    assert rec[0].filename == __file__
    h = HCL(S_SMALL).fit(Xs)
    with pytest.warns(FutureWarning, match=r"'rng' parameter of goodness_of_fit is deprecated") as rec:
        h.goodness_of_fit(correction="bootstrap", n_boot=2, rng=1, warn=False)
    assert rec[0].filename == __file__   # not model.py, which forwards the option
