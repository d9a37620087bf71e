"""HCL(missing=...) on incomplete data (needs the model.py and selection.py patches of engineer
"missing"): the option, the fit, the summary, representations and scores of incomplete rows,
the select_structure dispatch."""
import warnings

import numpy as np
import pytest

from hcl_stats import HCL, Structure, select_structure, simulate
from hcl_stats.estimation.missing import fit_missing

S = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
P = (12, 10, 8)


def _data(seed=0, n=300):
    data = simulate(S, P, n, noise_var=0.5, loadings="gaussian", random_state=seed)
    Xs = [x.copy() for x in data.Xs]
    Xs[2][:90] = np.nan            # 90 samples without modality 2
    Xs[0][100:110, :3] = np.nan    # 10 samples with part of modality 0
    return data, Xs


def test_default_refuses_nan_and_names_the_option():
    _, Xs = _data()
    with pytest.raises(ValueError, match=r'Xs\[0\] must be finite; got 30 NaN entries\..*HCL\(\.\.\., missing="em"\)'):
        HCL(S).fit(Xs)
    with pytest.raises(ValueError, match=r"The 'missing' parameter of HCL must be one of \{'error', 'em'\}"):
        HCL(S, missing="drop").fit(Xs)


def test_em_fit_summary_and_attributes():
    data, Xs = _data()
    h = HCL(S, missing="em").fit(Xs)
    ref = fit_missing(Xs, S)
    np.testing.assert_allclose(h.loadings_, ref.loadings)
    np.testing.assert_allclose(h.mean_, ref.info["mean"])
    assert h.missing_.n_absent.tolist() == [0, 0, 90] and h.missing_.n_partial.tolist() == [10, 0, 0]
    txt = str(h.summary())
    assert "Missing per modality  : Xs[0]: 0.8% of entries (10 partly observed); Xs[1]: 0.0% of entries; " \
           "Xs[2]: 30.0% of entries (90 samples without it)" in txt
    assert "EM over the observed entries" in txt
    assert h.converged_ and np.all(np.diff(h.history_["loglik"]) > -1e-9)
    with pytest.raises(ValueError, match=r"goodness_of_fit: this model was fitted to incomplete data"):
        h.goodness_of_fit()


def test_complete_data_with_missing_em_takes_the_usual_path():
    data = simulate(S, P, 300, noise_var=0.5, loadings="gaussian", random_state=1)
    a = HCL(S, missing="em").fit(data.Xs)
    b = HCL(S).fit(data.Xs)
    np.testing.assert_array_equal(a.loadings_, b.loadings_)
    assert a.missing_ is None and "Missing per modality" not in str(a.summary())


def test_representations_and_scores_of_incomplete_rows():
    data, Xs = _data()
    h = HCL(S, missing="em").fit(Xs)
    Z = h.posterior_mean(Xs)
    T = h.transform(Xs)
    ll = h.score_samples(Xs)
    assert Z.shape == T.shape == (300, S.n_factors) and np.all(np.isfinite(Z)) and np.all(np.isfinite(ll))
    c2 = S.column_slice((2,))
    assert np.all(Z[:90, c2] == 0) and np.all(T[:90, c2] == 0)   # no observed feature of modality 2
    # complete rows: the usual encoders
    full = [x[200:] for x in Xs]
    np.testing.assert_allclose(Z[200:], h.posterior_mean(full), atol=1e-10)
    np.testing.assert_allclose(T[200:], h.transform(full), atol=1e-10)
    assert abs(h.score(Xs) - h.history_["loglik"][-1]) < 1e-8
    # the default refuses NaN at transform time too
    hd = HCL(S).fit(data.Xs)
    with pytest.raises(ValueError, match=r'missing="em"'):
        hd.transform(Xs)
    bad = [x[:3].copy() for x in Xs]
    for x in bad:
        x[1] = np.nan
    with pytest.raises(ValueError, match=r"samples \(rows\) \[1\] .* have no observed value in any modality"):
        h.transform(bad)


def test_unsupported_combinations_are_errors():
    _, Xs = _data()
    with pytest.raises(ValueError, match=r"missing='em' fits incomplete data with method='ml' only. Got method='als'"):
        HCL(S, method="als", missing="em").fit(Xs)
    with pytest.raises(ValueError, match=r"missing='em' fits the unpenalised model only. Got alpha=0.1"):
        HCL(S, alpha=0.1, missing="em").fit(Xs)
    Xs2 = [x.copy() for x in Xs]
    for x in Xs2:
        x[5] = np.nan
    with pytest.raises(ValueError, match=r"samples \(rows\) \[5\]"):
        HCL(S, missing="em").fit(Xs2)


def test_auto_structure_and_select_structure_dispatch():
    s3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
    data = simulate(s3, (50, 40, 30), 800, noise_var=1.0, loadings="gaussian", random_state=0)
    Xs = [x.copy() for x in data.Xs]
    Xs[1][np.random.default_rng(0).permutation(800)[:400]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # block missingness: no warning expected
        st, det = select_structure(Xs, return_details=True)
    assert st == s3 and det.missing.n_absent[1] == 400
    h = HCL("auto", missing="em", selection={"n_resamples": 2}).fit(Xs)
    assert h.structure_ == s3 and h.selection_.stability.n_resamples == 2


def test_represent_accepts_incomplete_rows_after_an_em_fit():
    """HCL.represent after missing="em": E[z | x_o] (posterior) and the least squares on the
    observed features (paper), the same as posterior_mean / transform; complete rows unchanged;
    averaged=True is refused with a message naming the rows and the alternative."""
    from hcl_stats.representation import paper_representation, posterior_mean, represent

    data, Xs = _data()
    h = HCL(S, missing="em").fit(Xs)
    Zp = h.represent(Xs, kind="posterior")
    Zl = h.represent(Xs, kind="paper")
    assert np.all(np.isfinite(Zp)) and np.all(np.isfinite(Zl))
    np.testing.assert_allclose(Zp, h.posterior_mean(Xs), atol=1e-10)
    np.testing.assert_allclose(Zl, h.transform(Xs), atol=1e-10)
    np.testing.assert_allclose(posterior_mean(h, Xs), Zp, atol=0)
    np.testing.assert_allclose(paper_representation(h, Xs), Zl, atol=0)
    # an incomplete row by hand: E[z | x_o] = W_o^T Sigma_oo^{-1} (x_o - mu_o)
    i = 103
    x = np.hstack([X[i] for X in Xs])
    o = ~np.isnan(x)
    W, psi, mu = h.loadings_, h.noise_var_features_, h.mean_
    Soo = W[o] @ W[o].T + np.diag(psi[o])
    np.testing.assert_allclose(Zp[i], W[o].T @ np.linalg.solve(Soo, x[o] - mu[o]), atol=1e-10)
    np.testing.assert_allclose(Zl[i], np.linalg.lstsq(W[o], x[o] - mu[o], rcond=None)[0], atol=1e-10)
    # complete rows: the encoders, as without NaN
    full = [x_[200:] for x_ in Xs]
    for kind in ("paper", "posterior"):
        np.testing.assert_allclose(h.represent(Xs, kind=kind)[200:], h.represent(full, kind=kind), atol=0)
    np.testing.assert_allclose(h.represent(full, kind="posterior", averaged=True),
                               represent(h, full, "posterior", averaged=True), atol=0)
    with pytest.raises(ValueError, match=r"rows \[0, 1, .*\(100 in all\) have missing entries.*averaged=False"):
        h.represent(Xs, kind="posterior", averaged=True)
    with pytest.raises(ValueError, match="kind must be one of"):
        h.represent(Xs, kind="mean")
    # the default still refuses NaN, naming the option
    hd = HCL(S).fit(data.Xs)
    with pytest.raises(ValueError, match=r'missing="em"'):
        hd.represent(Xs, kind="posterior")
