"""Structure selection: exact recovery over seeds, the evidence, refusals and input checks."""
import itertools
import warnings

import re

import numpy as np
import pytest
from scipy import linalg as sla

from hcl_stats import HCL, SelectionResult, Structure, select_structure, simulate
from hcl_stats.exceptions import DataWarning
from hcl_stats.selection import (_cca_null_threshold, _moebius_estimates, _reconcile, modality_signal_rank,
                                 tracy_widom1_quantile)

S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
P3 = (100, 80, 60)
S4 = Structure({(0, 1, 2, 3): 1, (0, 1, 2): 2, (1, 3): 1, (2, 3): 2, (0,): 3, (1,): 1, (3,): 2}, 4)
P4 = (40, 30, 30, 25)


def _data(structure, p, n, seed, **kw):
    return simulate(structure, p, n, noise_var=1.0, random_state=seed, loadings="gaussian", **kw)


# -- recovery ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_exact_selection_three_modalities(seed):
    data = _data(S3, P3, 600, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean case raises no warning
        assert select_structure(data.Xs) == S3


@pytest.mark.parametrize("seed", range(5))
def test_exact_selection_four_modalities_absent_subsets_unequal_ranks(seed):
    data = _data(S4, P4, 500, seed)
    assert select_structure(data.Xs) == S4


def test_exact_selection_two_and_five_modalities():
    S2 = Structure({(0, 1): 3, (1,): 2}, 2)  # modality 0 has no specific factor
    assert select_structure(_data(S2, (20, 25), 400, 0).Xs) == S2
    S5 = Structure({(0, 1, 2, 3, 4): 1, (0, 1): 1, (2, 3, 4): 2, (0, 4): 1, (1,): 1, (2,): 1, (3,): 2}, 5)
    assert select_structure(_data(S5, (20, 20, 25, 20, 30), 500, 1).Xs) == S5


def test_population_statistics_are_inverted_exactly():
    """From the exact d_m and h(m, T) of random structures (M = 2..6) the Moebius inversion
    and the reconciliation give back every rank, with zero residual."""
    rng = np.random.default_rng(7)
    for M in range(2, 7):
        subsets = [s for k in range(1, M + 1) for s in itertools.combinations(range(M), k)]
        for _ in range(3):
            ranks = {s: int(rng.integers(1, 3)) for s in subsets if rng.random() < 0.4}
            for m in range(M):
                ranks.setdefault((m,), 1) if not any(m in s for s in ranks) else None
            d = [sum(r for s, r in ranks.items() if m in s) for m in range(M)]
            h = {}
            for m in range(M):
                others = [i for i in range(M) if i != m]
                for k in range(1, M):
                    for T in itertools.combinations(others, k):
                        h[(m, T)] = sum(r for s, r in ranks.items() if m in s and set(s) & set(T))
            moeb = _moebius_estimates(M, d, h)
            for S, ests in moeb.items():
                assert set(ests.values()) == {ranks.get(S, 0)}
            for shortcut in (None, moeb):  # the integer program and the Moebius fast path agree
                got, pred, obs = _reconcile(M, d, h, shortcut)
                assert {s: r for s, r in got.items() if r} == ranks
                assert np.array_equal(pred, obs)


def test_inconsistent_statistics_are_reconciled_and_reported():
    # d = (2, 2); h(0, {1}) = 1 but h(1, {0}) = 2: no structure gives both
    ranks, pred, obs = _reconcile(2, [2, 2], {(0, (1,)): 1, (1, (0,)): 2})
    assert np.abs(pred - obs).sum() == 1
    assert all(r >= 0 for r in ranks.values())
    assert sum(r for s, r in ranks.items() if 0 in s) >= 1 and sum(r for s, r in ranks.items() if 1 in s) >= 1


# -- evidence ---------------------------------------------------------------------------------
def test_details_and_summary_print_the_evidence():
    data = _data(S3, P3, 600, 11)
    s, res = select_structure(data.Xs, return_details=True, names=["rna", "atac", "prot"])
    assert isinstance(res, SelectionResult) and res.structure is s
    assert s == S3.with_names(["rna", "atac", "prot"])
    assert res.consistent and res.residual == 0 and res.inconsistencies == []
    assert res.signal_ranks == (6, 7, 5)
    assert res.ranks[(0, 2)] == 0 and res.ranks[(0, 1)] == 2
    assert res.moebius[(0, 1, 2)] == {0: 2, 1: 2, 2: 2}
    t = res.canonical_tests[(0, (1, 2))]
    assert t.rank == 4 and t.schur_rank == 2 and t.dims == (6, 12)
    assert np.all(t.canonical_corr[:4] > t.thresholds[:4]) and t.canonical_corr[4] <= t.thresholds[4]
    mt = res.modality_tests[2]
    assert np.all(mt.eigenvalues[:5] > mt.thresholds[:5]) and mt.eigenvalues[5] <= mt.thresholds[5]
    assert abs(mt.noise_var_selected - 1.0) < 0.05
    text = str(res.summary())
    for piece in ("Step 1", "Step 2", "Step 3", "Moebius", "{rna,atac,prot}", "yes (residual 0)", "noise edge"):
        assert piece in text, piece
    assert "| {rna,atac} | partial |" in res.summary().as_markdown()
    assert repr(res).startswith("SelectionResult(structure=Structure(") and "residual=0" in repr(res)


def test_feature_noise_default_handles_heteroscedastic_features():
    """Feature noise variances 0.25 + U(0, 1): the per-modality isotropic edge sees spurious
    factors, the default feature-noise model (whitening by factor-analysis noise estimates under
    each null hypothesis) recovers the structure; "diagonal" is its deprecated spelling."""
    hits_iso = hits_diag = 0
    for seed in range(3):
        data = simulate(S3, P3, 600, noise_var=0.25, random_state=seed, loadings="gaussian")
        rng = np.random.default_rng(100 + seed)
        Xs = [X + rng.standard_normal(X.shape) * np.sqrt(rng.uniform(0, 1, X.shape[1])) for X in data.Xs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hits_iso += select_structure(Xs, noise="modality") == S3
        s, res = select_structure(Xs, return_details=True)
        hits_diag += s == S3
        assert res.noise == "feature" and res.modality_tests[0].noise_var_features.shape == (P3[0],)
    assert hits_diag == 3 and hits_iso == 0
    assert re.search(r"Noise model +: feature \(one noise variance per feature", str(res.summary()))
    with pytest.warns(FutureWarning, match="noise='diagonal' is deprecated; use noise='feature'"):
        assert select_structure(Xs, noise="diagonal") == s


# -- refusals ---------------------------------------------------------------------------------
def test_pure_noise_modality_is_refused():
    rng = np.random.default_rng(3)
    data = _data(Structure({(0, 1): 2, (0,): 1, (1,): 1}, 2), (30, 30), 400, 0)
    Xs = data.Xs + [rng.standard_normal((400, 20))]
    with pytest.raises(ValueError, match=r"no factor detected above the noise level in modalities \[2\]"):
        select_structure(Xs)


def test_too_few_samples_for_the_factors_is_refused():
    data = simulate(Structure({(0,): 5, (1,): 5}, 2), (50, 50), 8, noise_var=0.01, random_state=0, loadings="gaussian")
    with pytest.raises(ValueError, match=r"n_samples = 8, too few for the \d+ factors"):
        select_structure(data.Xs, noise="modality")


def test_null_calibration_of_the_rank_tests():
    rng = np.random.default_rng(5)
    false = sum(modality_signal_rank(2.0 * rng.standard_normal((300, 40)), level=0.05)[0].rank > 0 for _ in range(60))
    assert false <= 9  # about 3 expected at alpha = 0.05
    hits = 0
    thr = _cca_null_threshold(3, 6, 299, 0.05, tracy_widom1_quantile(0.05))
    for _ in range(200):
        X, Y = rng.standard_normal((300, 3)), rng.standard_normal((300, 6))
        X, Y = X - X.mean(0), Y - Y.mean(0)
        hits += sla.svdvals(np.linalg.qr(X)[0].T @ np.linalg.qr(Y)[0])[0] ** 2 > thr
    assert hits <= 20  # about 10 expected


def test_tracy_widom_quantiles():
    assert abs(tracy_widom1_quantile(0.05) - 0.9793) < 1e-9
    assert abs(tracy_widom1_quantile(0.01) - 2.0234) < 1e-9
    q = [tracy_widom1_quantile(a) for a in (0.1, 0.03, 0.005, 1e-3, 1e-4)]
    assert np.all(np.diff(q) > 0) and 3.1 < q[3] < 3.5


def test_rank_hitting_its_limit_warns():
    data = _data(Structure({(0, 1): 3, (0,): 2, (1,): 2}, 2), (30, 30), 500, 2)
    with pytest.warns(DataWarning, match="rank hit its limit 3"):
        s = select_structure(data.Xs, max_rank=3)
    assert s.n_factors <= 6


# -- input validation -------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, msg", [
    ({"level": 0.0}, r"The 'level' parameter of select_structure must be a float in \(0, 0.1\]. Got 0.0 instead."),
    ({"level": 0.5}, r"'level' parameter .* Got 0.5 instead"),
    ({"alpha": 0.0}, r"The 'alpha' parameter of select_structure must be a float in \(0, 0.1\]. Got 0.0 instead."),
    ({"alpha": 0.5}, r"'alpha' parameter .* Got 0.5 instead"),
    ({"alpha": "0.01"}, r"'alpha' parameter .* Got '0.01' instead"),
    ({"max_rank": 0}, r"The 'max_rank' parameter of select_structure must be a positive int or None. Got 0 instead."),
    ({"return_details": "yes"}, r"'return_details' parameter of select_structure must be a bool. Got 'yes' instead."),
    ({"names": ["a", "b"]}, r"names must have one entry per modality \(3\); got 2 entries"),
    ({"noise": "full"}, r"The 'noise' parameter of select_structure must be one of \('feature', 'modality', 'isotropic'\). Got 'full' instead."),
])
def test_parameter_messages(kwargs, msg):
    data = _data(S3, P3, 100, 0)
    if "alpha" in kwargs:   # the deprecated spelling of level: warned about, then checked under its own name
        with pytest.warns(FutureWarning, match=r"'alpha' parameter of select_structure is deprecated; use 'level'"), \
                pytest.raises(ValueError, match=msg):
            select_structure(data.Xs, **kwargs)
        return
    with pytest.raises(ValueError, match=msg):
        select_structure(data.Xs, **kwargs)


def test_data_messages():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"Xs must be a list of 2-D arrays"):
        select_structure(rng.standard_normal((10, 3)))
    with pytest.raises(ValueError, match=r"every modality must have the same number of rows"):
        select_structure([rng.standard_normal((10, 3)), rng.standard_normal((9, 3))])
    with pytest.raises(ValueError, match=r"Xs\[1\] must have at least 2 features .* got shape \(50, 1\)"):
        select_structure([rng.standard_normal((50, 3)), rng.standard_normal((50, 1))])
    with pytest.raises(ValueError, match=r"at most 8 modalities .* got 9"):
        select_structure([rng.standard_normal((50, 3))] * 9)
    with pytest.raises(ValueError, match=r"Xs must have at least 5 samples"):
        select_structure([rng.standard_normal((4, 3)), rng.standard_normal((4, 3))])
    X = rng.standard_normal((50, 3))
    X[0, 0] = np.inf   # NaN marks a missing value (available-case selection); infinity is an error
    with pytest.raises(ValueError, match=r"Xs\[0\] must be finite; got 0 NaN and 1 infinite"):
        select_structure([X, rng.standard_normal((50, 3))])


# -- the estimator ----------------------------------------------------------------------------
def test_hcl_auto_structure_fits():
    data = _data(S4, P4, 500, 3)
    hcl = HCL(structure="auto", method="init").fit(data.Xs)
    assert hcl.structure_ == S4
    assert hcl.loadings_.shape == (sum(P4), S4.n_factors)
    assert np.all(hcl.loadings_[~S4.support_mask(P4)] == 0)


def test_summary_is_the_results_layer_and_level_is_the_test_level():
    from hcl_stats.selection import SelectionSummary
    from hcl_stats.summary import Summary

    data = _data(S3, P3, 600, 11)
    _, res = select_structure(data.Xs, return_details=True, names=["r<n>a", "a&t_ac", "prot"], level=0.01)
    sm = res.summary()
    assert isinstance(sm, SelectionSummary) and isinstance(sm, Summary) and sm.result is res
    assert [t.title.split(":")[0] for t in sm.tables] == ["Step 1", "Step 2", "Step 3", "Selected structure"]
    assert str(sm) == sm.as_text() and "Test level  : 0.01" in str(sm)
    h = sm.as_html()
    assert "r<n>a" not in h and "r&lt;n&gt;a" in h and "a&amp;t_ac" in h
    tex = sm.as_latex()
    assert r"a\&t\_ac" in tex and r"r\textless{}n\textgreater{}a" in tex
    # the selected structure is printed as a table: one row per modality, its rank in each subset
    last = sm.tables[-1]
    assert [row[0] for row in last.rows] == ["r<n>a", "a&t_ac", "prot"]
    assert last.rows[2][1:] == [str(res.structure.rank(S)) if 2 in S else "." for S in res.structure.subsets]
    assert res.level == 0.01 and "level=0.01" in repr(res)
    with pytest.warns(FutureWarning, match=r"SelectionResult.alpha is deprecated; use SelectionResult.level"):
        assert res.alpha == 0.01


def test_stability_summary_on_a_clear_structure():
    from hcl_stats.summary import Summary

    data = _data(S3, P3, 600, 11)
    s, res = select_structure(data.Xs, return_details=True, n_resamples=3, random_state=1)
    st = res.stability
    assert st.agreement == 1.0
    ss = st.summary()
    assert isinstance(ss, Summary) and len(ss.tables) == 1
    t = ss.tables[0]
    # one row per subset of the structure, each selected with its rank in every subsample
    assert t.header[1] == "most frequent rank" and len(t.rows) == s.n_subsets
    assert all(row[2] == f"{row[1]}: 100%" for row in t.rows)
    assert "the full-data structure in 100%" in str(ss) and "<table>" in ss.as_html()
    # within the selection evidence the reference is the full-data rank
    assert any(x.title.startswith("Stability") and x.header[1] == "full-data rank" for x in res.summary().tables)


def test_alpha_keyword_of_the_rank_tests_is_the_deprecated_level():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 20))
    X[:, :5] += 2.0 * rng.standard_normal((200, 1))
    a, _ = modality_signal_rank(X, level=0.01)
    with pytest.warns(FutureWarning, match=r"'alpha' parameter of modality_signal_rank is deprecated; use 'level'") as rec:
        b, _ = modality_signal_rank(X, alpha=0.01)
    assert rec[0].filename == __file__ and a.rank == b.rank == 1
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    with pytest.warns(FutureWarning, match=r"'alpha' parameter of tracy_widom1_quantile is deprecated"):
        assert tracy_widom1_quantile(alpha=0.05) == tracy_widom1_quantile(0.05) == tracy_widom1_quantile(level=0.05)
    with pytest.raises(ValueError, match=r"level must be a float in \(0, 0.1\]; got 0.5"):
        tracy_widom1_quantile(0.5)


def test_selection_warnings_point_at_the_users_call_also_through_hcl():
    data = _data(S3, P3, 80, 2)
    with pytest.warns(DataWarning, match=r"select_structure: .*small for the") as rec:
        select_structure(data.Xs)
    assert all(w.filename == __file__ for w in rec if "select_structure" in str(w.message))
    with pytest.warns(DataWarning, match=r"select_structure: .*small for the") as rec:
        HCL("auto", selection={"n_resamples": 0}).fit(data.Xs)
    mine = [w for w in rec if "select_structure" in str(w.message)]
    assert mine and all(w.filename == __file__ for w in mine)   # not model.py
    with pytest.warns(FutureWarning, match="noise='diagonal' is deprecated") as rec:
        select_structure(data.Xs, noise="diagonal")
    assert [w.filename for w in rec if w.category is FutureWarning] == [__file__]


def test_modality_rank_test_attribute_names():
    data = _data(S3, P3, 600, 11)
    _, res = select_structure(data.Xs, return_details=True)
    t = res.modality_tests[1]
    assert t.noise_var_features.shape == (P3[1],) and t.noise_var_by_rank.ndim == 1
    assert t.noise_var_selected == t.noise_var_by_rank[t.rank]
    with pytest.warns(FutureWarning, match="ModalityRankTest.feature_noise_var is deprecated; use noise_var_features"):
        assert t.feature_noise_var is t.noise_var_features
    with pytest.warns(FutureWarning, match="ModalityRankTest.noise_var is deprecated; use noise_var_by_rank") as rec:
        assert t.noise_var is t.noise_var_by_rank
    assert rec[0].filename == __file__
