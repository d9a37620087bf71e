"""The default path on data the model did not generate: per-feature noise, rescaled features,
constant and duplicated features, small n, real data. One noise model everywhere."""
import re
import warnings

import numpy as np
import pytest

from hcl_stats import HCL, Structure, select_structure, simulate
from hcl_stats.datasets import load_multiple_features
from hcl_stats.estimation.noise import factor_noise
from hcl_stats.estimation.shrinkage import spiked_shrinker
from hcl_stats.estimation.solvers import EM
from hcl_stats.exceptions import DataWarning
from hcl_stats.selection import _search_rank, ledermann_bound

S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
P3 = (100, 80, 60)


def _hetero(seed, n=1000, spread=10.0, low=0.5, structure=S3, p=P3):
    rng = np.random.default_rng(seed)
    nv = low * np.exp(rng.uniform(0.0, np.log(spread), sum(p)))
    return simulate(structure, p, n, nv, random_state=rng, loadings="gaussian")


def _rel(W, W0):
    return np.linalg.norm(W @ W.T - W0 @ W0.T) / np.linalg.norm(W0 @ W0.T)


# -- one noise model --------------------------------------------------------------------------
def test_default_selection_recovers_structure_under_per_feature_noise_where_modality_model_fails():
    """Noise variances spread over a factor of 10 within each modality, 3 seeds: the default
    (noise="feature") finds the exact structure every time; the per-modality model over-counts."""
    hits_f = hits_m = 0
    for seed in range(3):
        d = _hetero(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hits_f += select_structure(d.Xs) == S3
            hits_m += select_structure(d.Xs, noise="modality").n_factors > 2 * S3.n_factors
    assert hits_f == 3 and hits_m == 3


def test_default_fit_is_as_accurate_as_with_the_true_noise_variances():
    from hcl_stats.covariance import sample_covariance
    from hcl_stats.estimation.ml import fit_ml

    ratios = []
    for seed in range(3):
        d = _hetero(seed)
        h = HCL(S3).fit(d.Xs)
        assert h.noise_model_ == "feature"
        oracle = fit_ml(sample_covariance(d.Xs), S3, noise="feature", shrinkage=True, noise_var=d.noise_var_features)
        ratios.append(_rel(h.loadings_, d.loadings) / _rel(oracle.loadings, d.loadings))
        # the per-feature noise estimate follows the truth (not one value per modality)
        r = np.corrcoef(h.noise_var_features_, d.noise_var_features)[0, 1]
        assert r > 0.9, r
    assert max(ratios) <= 1.2, ratios


def test_feature_noise_with_shrinkage_is_not_a_silent_noop():
    d = _hetero(4, n=500)
    hf = HCL(S3, noise="feature").fit(d.Xs)
    hm = HCL(S3, noise="modality").fit(d.Xs)
    rows = S3.row_slices(P3)
    assert all(np.ptp(hm.noise_var_features_[r]) < 1e-12 for r in rows)
    assert all(np.ptp(hf.noise_var_features_[r]) > 0.5 for r in rows)
    assert hf.results_.info["shrinkage"]["noise"] == "feature"


def test_hcl_auto_selects_with_its_own_noise_model_and_options():
    iso = simulate(S3, P3, 800, 1.0, random_state=5, loadings="gaussian")
    h = HCL("auto", noise="modality", selection={"level": 0.01, "n_resamples": 0}).fit(iso.Xs)
    d = _hetero(5, n=800)
    assert h.selection_.noise == "modality" and h.selection_.level == 0.01 and h.selection_.stability is None
    h2 = HCL("auto", selection={"n_resamples": 3}).fit(d.Xs)
    assert h2.selection_.noise == "feature" and h2.structure_ == S3
    assert h2.selection_.stability.n_resamples == 3
    assert re.search(r"Structure +: selected from data", str(h2.summary()))


@pytest.mark.parametrize("kwargs, msg", [
    (dict(structure="auto", selection={"alpah": 0.01}), r"The 'selection' parameter of HCL accepts the keys .* Got unknown keys \['alpah'\]"),
    (dict(structure=S3, selection={"level": 0.01}), r"The 'selection' parameter of HCL applies to structure='auto' only"),
    (dict(structure=S3, method="paper", noise="feature"), r"The 'noise' parameter of HCL must be one of \('isotropic',\) for method='paper'. Got 'feature'"),
    (dict(structure=S3, method="als", noise="feature"), r"must be one of \('modality',\) for method='als' \(with shrinkage=True\)"),
])
def test_option_errors_name_the_option(kwargs, msg):
    d = _hetero(6, n=300)
    with pytest.raises(ValueError, match=msg):
        HCL(**kwargs).fit(d.Xs)


def test_select_structure_old_names_warn():
    d = _hetero(7, n=600)
    with pytest.warns(FutureWarning, match="'alpha' parameter of select_structure is deprecated; use 'level'"):
        s = select_structure(d.Xs, alpha=1e-3)
    assert s == S3


# -- numerical safety ---------------------------------------------------------------------------
def test_fit_and_selection_are_equivariant_to_rescaling_features():
    """Every feature rescaled by 10^U(-6, 6): same structure, same relative Gram error after the
    scale is undone (to the solver's tolerance by default, to 1e-6 when solved tightly)."""
    s_small = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
    p_small = (30, 25, 20)
    d = _hetero(8, n=800, structure=s_small, p=p_small)
    rng = np.random.default_rng(0)
    scale = 10.0 ** rng.uniform(-6, 6, sum(p_small))
    rows = s_small.row_slices(p_small)
    Xs_s = [X * scale[r] for X, r in zip(d.Xs, rows)]
    s0, s1 = select_structure(d.Xs), select_structure(Xs_s)
    assert s0 == s1 == s_small
    h0, h1 = HCL(s_small).fit(d.Xs), HCL(s_small).fit(Xs_s)
    W1 = h1.loadings_ / scale[:, None]
    assert np.all(np.isfinite(h1.loadings_))
    assert abs(_rel(h0.loadings_, d.loadings) - _rel(W1, d.loadings)) < 1e-3
    tight = dict(solver=EM(criterion="gradient", tol=1e-10, change_tol=1e-14, max_iter=20000))
    h0, h1 = HCL(s_small, **tight).fit(d.Xs), HCL(s_small, **tight).fit(Xs_s)
    W1 = h1.loadings_ / scale[:, None]
    assert abs(_rel(h0.loadings_, d.loadings) - _rel(W1, d.loadings)) < 1e-6
    assert _rel(W1, h0.loadings_) < 1e-6


def test_data_scaled_by_1e8_fits_like_the_original():
    d = _hetero(9, n=800)
    s = select_structure([1e8 * X for X in d.Xs])
    tight = dict(solver=EM(criterion="gradient", tol=1e-10, change_tol=1e-14, max_iter=20000))
    h = HCL(s, **tight).fit([1e8 * X for X in d.Xs])
    h0 = HCL(s, **tight).fit(d.Xs)
    assert s == S3 and np.all(np.isfinite(h.loadings_))
    assert _rel(h.loadings_ / 1e8, h0.loadings_) < 1e-6


def test_spiked_shrinker_never_overflows():
    lam = np.array([1e150, 1e100, 1e10, 3.0, 1.0])
    out = spiked_shrinker(lam, 1e-150, 0.5)   # eigenvalue / noise up to 1e300: the old formula squared it
    assert np.all(np.isfinite(out)) and out[0] > out[1] > out[2] > 0
    with pytest.raises(ValueError, match="sigma2 must be a positive finite noise variance"):
        spiked_shrinker(lam, 0.0, 0.5)


# -- bad input ----------------------------------------------------------------------------------
def test_constant_feature_is_named():
    d = _hetero(10, n=300)
    Xs = [X.copy() for X in d.Xs]
    Xs[1][:, 7] = 3.0
    with pytest.raises(ValueError, match=r"Xs\[1\]: features \[7\] are constant \(zero variance\)"):
        select_structure(Xs)
    with pytest.raises(ValueError, match=r"Xs\[1\]: features \[7\] are constant \(zero variance\)"):
        HCL(S3).fit(Xs)


def test_constant_modality_is_named():
    d = _hetero(11, n=300)
    Xs = [X.copy() for X in d.Xs]
    Xs[2][:] = 1.0
    with pytest.raises(ValueError, match=r"Xs\[2\] is constant: all its 60 features take one value"):
        select_structure(Xs)
    with pytest.raises(ValueError, match=r"Xs\[2\] is constant \(all its features\)"):
        HCL(S3).fit(Xs)


def test_duplicated_columns_warn_and_fit_finitely():
    d = _hetero(12, n=500)
    Xs = [X.copy() for X in d.Xs]
    Xs[0] = np.hstack([Xs[0], 2.0 * Xs[0][:, [3]]])
    with pytest.warns(DataWarning, match=r"Xs\[0\]: features \[\(3, 100\)\] are perfectly correlated"):
        s = select_structure(Xs)
    h = HCL(s, identifiability="warn").fit(Xs)
    assert np.all(np.isfinite(h.loadings_)) and np.all(h.noise_var_features_ > 0)


def test_single_feature_modality_is_refused_by_selection_and_fits_with_a_structure():
    rng = np.random.default_rng(13)
    s = Structure({(0, 1): 1, (0,): 2}, 2)
    d = simulate(s, (20, 1), 500, 0.5, random_state=rng, loadings="gaussian")
    with pytest.raises(ValueError, match=r"Xs\[1\] must have at least 2 features to separate signal from noise"):
        select_structure(d.Xs)
    h = HCL(s, identifiability="warn").fit(d.Xs)
    assert np.all(np.isfinite(h.loadings_)) and np.all(np.isfinite(h.noise_var_features_))


def test_small_n_and_max_rank_beyond_n_warn():
    d = _hetero(14, n=60)
    with pytest.warns(DataWarning, match=r"max_rank=80 exceeds what n_samples = 60 can test"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, message=".*identifiab.*")
            s = select_structure(d.Xs, max_rank=80)
    with pytest.warns(DataWarning, match=r"n_samples = 60 is small for the \d+ factors selected"):
        select_structure(d.Xs)
    assert s.n_factors < 59


# -- stability -----------------------------------------------------------------------------------
def test_stability_report_on_a_clear_structure():
    d = _hetero(15, n=1000)
    s, res = select_structure(d.Xs, return_details=True, n_resamples=4, random_state=1)
    st = res.stability
    assert st.n_resamples == 4 and st.agreement == 1.0 and st.modal_structure == s and st.stable
    for S, fr in st.rank_frequencies.items():
        assert abs(sum(fr.values()) - 1.0) < 1e-12
        assert fr.get(s.rank(S) if S in s.subsets else 0) == 1.0
    text = str(res.summary())
    assert "Stability: rank of each subset over random subsamples" in text and "100%" in text


def test_unstable_selection_warns():
    """Loadings at the noise edge, n = 150: the selection moves between subsamples and says so."""
    rng = np.random.default_rng(16)
    d = simulate(S3, P3, 150, 1.0, random_state=rng, loadings="gaussian", loading_scale=0.25)
    with pytest.warns(DataWarning, match=r"unstable selection: the most frequent structure was selected in \d+%"):
        _, res = select_structure(d.Xs, return_details=True, n_resamples=6)
    assert not res.stability.stable and "UNSTABLE" in str(res.summary())


# -- the rank search and the factor-analysis noise ----------------------------------------------------
@pytest.mark.parametrize("true_k, kmax, hint", [(0, 10, 0), (1, 10, 0), (7, 10, 0), (10, 10, 0), (3, 50, 40),
                                                (37, 50, 2), (5, 5, 5), (4, 9, 8)])
def test_search_rank_finds_the_first_accepted_k(true_k, kmax, hint):
    calls = []

    def accept(k):
        calls.append(k)
        return k >= true_k

    assert _search_rank(accept, kmax, hint) == min(true_k, kmax)
    assert len(calls) <= 2 * int(np.ceil(np.log2(kmax + 1))) + 2


def test_factor_noise_recovers_population_noise_and_is_equivariant():
    rng = np.random.default_rng(17)
    p, k = 40, 4
    W = rng.standard_normal((p, k))
    psi = rng.uniform(0.2, 3.0, p)
    S = W @ W.T + np.diag(psi)
    est, info = factor_noise(S, k, tol=1e-13, max_iter=20000)
    assert info["converged"] and np.max(np.abs(est / psi - 1)) < 1e-6
    D = 10.0 ** rng.uniform(-5, 5, p)
    est2, _ = factor_noise(S * D[:, None] * D[None, :], k, tol=1e-13, max_iter=20000)
    assert np.max(np.abs(est2 / (est * D**2) - 1)) < 1e-6
    with pytest.raises(ValueError, match=r"n_factors must be smaller than the number of features; got 40 factors"):
        factor_noise(S, 40)


def test_ledermann_bound():
    assert [ledermann_bound(p) for p in (1, 3, 5, 6, 10, 47)] == [0, 1, 2, 3, 6, 37]
    for p in range(2, 60):
        k = ledermann_bound(p)
        assert (p - k) ** 2 >= p + k and (p - k - 1) ** 2 < p + k + 1


# -- real data ----------------------------------------------------------------------------------
def test_multiple_features_subset_default_path_runs_clean():
    """Two Multiple Features modalities (morphological, Zernike), 300 rows, raw and standardised,
    ranks capped at 3 to keep the test fast (the uncapped default on all six modalities is run by
    the Multiple Features study): no exception, no RuntimeWarning (the test config turns those
    into errors), finite output, and the same structure on both scales."""
    out = []
    for std in (True, False):
        d = load_multiple_features(standardize=std)
        Xs = [d.Xs[m][:300] for m in (3, 5)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            warnings.simplefilter("ignore", UserWarning)
            h = HCL("auto", selection={"n_resamples": 0, "max_rank": 3}, identifiability="warn").fit(Xs)
        Z = h.posterior_mean(Xs)
        assert np.all(np.isfinite(h.loadings_)) and np.all(np.isfinite(Z))
        out.append(h.structure_)
    assert out[0] == out[1]
    assert re.search(r"Noise model +: feature", str(h.summary()))


def test_stability_threshold_is_one_half():
    from hcl_stats.selection import SelectionStability

    def st(freq):
        return SelectionStability(n_resamples=10, fraction=0.8, structures=(), rank_frequencies={},
                                  modal_structure=S3, modal_frequency=freq, agreement=freq)

    assert st(0.5).stable and not st(0.49).stable


def test_factor_noise_floor_is_a_thousandth_of_the_variance():
    """A feature duplicated exactly (a Heywood case) ends at the floor, 1e-3 of its variance,
    whatever its scale; a converged non-Heywood feature stays above it."""
    rng = np.random.default_rng(18)
    W = rng.standard_normal((12, 2))
    S = W @ W.T + np.diag(rng.uniform(0.5, 1.5, 12))
    S = np.pad(S, ((0, 1), (0, 1)))
    S[12, :12] = S[:12, 12] = 1e4 * S[0, :12]
    S[12, 12] = 1e8 * S[0, 0]                     # feature 12 = 1e4 x feature 0, no own noise
    S[0, 12] = S[12, 0] = 1e4 * S[0, 0]
    psi, info = factor_noise(S, 3, max_iter=5000)
    assert info["at_floor"][12] and abs(psi[12] / S[12, 12] - 1e-3) < 1e-12
    assert not info["at_floor"][5] and psi[5] > 2e-3 * S[5, 5]


def test_feature_rank_is_capped_by_the_ledermann_bound():
    """Six features with five strong factors: a diagonal-noise factor model with more than three
    factors is not identified, so the feature-noise test stops at 3 and says it hit its limit."""
    from hcl_stats.selection import modality_signal_rank_feature

    rng = np.random.default_rng(19)
    X = rng.standard_normal((2000, 5)) @ (3 * rng.standard_normal((5, 6))) + rng.standard_normal((2000, 6))
    t, U = modality_signal_rank_feature(X)
    assert t.max_rank == 3 and t.rank == 3 and t.hit_limit and U.shape == (2000, 3)


def test_small_n_warning_starts_below_ten_samples_per_factor():
    """The small-n warning fires exactly when n < 10 K (K = 3 here: at n = 29, not at n = 30)."""
    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    d = simulate(s, (10, 10), 30, 0.05, random_state=np.random.default_rng(20), loadings="gaussian", loading_scale=3.0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert select_structure(d.Xs, noise="modality") == s
    assert not any("small for the" in str(x.message) for x in w)
    with pytest.warns(DataWarning, match=r"n_samples = 29 is small for the 3 factors selected"):
        assert select_structure([X[:29] for X in d.Xs], noise="modality") == s


def test_default_resampling_is_four_fifths_of_the_rows():
    d = _hetero(21, n=500)
    _, res = select_structure(d.Xs, return_details=True, n_resamples=2)
    assert res.stability.fraction == 0.8
    assert HCL._SELECTION_DEFAULTS == {"level": 1e-3, "max_rank": None, "n_resamples": 10, "resample_fraction": 0.8,
                                       "random_state": 0}
