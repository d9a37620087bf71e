"""HCL estimator: scikit-learn contract, results object, input validation."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hcl_stats import HCL, Structure, simulate
from hcl_stats.base import clone
from hcl_stats.exceptions import IdentifiabilityError, IdentifiabilityWarning, NotFittedError

S = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
NF = (12, 15, 18)


@pytest.fixture(scope="module")
def data():
    return simulate(S, NF, 600, noise_var=0.5, random_state=0)


def test_fit_returns_self_and_sets_attributes(data):
    hcl = HCL(S, method="paper")
    assert hcl.fit(data.Xs) is hcl
    assert hcl.loadings_.shape == (45, 7)
    assert np.all(hcl.loadings_[~S.support_mask(NF)] == 0)
    assert hcl.noise_var_.shape == (3,) and hcl.n_iter_ > 0 and isinstance(hcl.converged_, bool)
    assert "objective" in hcl.history_
    assert hcl.loadings_.dtype == np.float64


def test_transform_is_paper_representation(data):
    hcl = HCL(S).fit(data.Xs)
    Z = hcl.transform(data.Xs)
    W = hcl.loadings_
    C = np.linalg.inv(W.T @ W) @ W.T
    assert np.allclose(Z, (np.hstack(data.Xs) - hcl.mean_) @ C.T)
    assert np.allclose(hcl.fit_transform(data.Xs), Z)


def test_params_clone_and_sklearn_clone(data):
    hcl = HCL(S, method="init", max_iter=50)
    assert hcl.get_params()["max_iter"] == 50
    hcl.set_params(tol=1e-3)
    assert hcl.tol == 1e-3
    c = clone(hcl)
    assert c.get_params() == hcl.get_params() and not hasattr(c, "loadings_")
    sk = pytest.importorskip("sklearn.base")
    c2 = sk.clone(hcl)
    assert c2.get_params()["tol"] == 1e-3
    with pytest.raises(ValueError, match="Invalid parameter 'alpha_x' for estimator HCL"):
        hcl.set_params(alpha_x=1)
    assert "method='init'" in repr(hcl)


def test_summary_and_plot(data):
    hcl = HCL(S).fit(data.Xs)
    text = str(hcl.summary())
    assert "Method" in text and "{0,1,2}" in text and "noise var" in text
    assert "\\begin{tabular}" in hcl.summary().as_latex()
    assert "| modality |" in hcl.summary().as_markdown()
    ve = hcl.results_.variance_explained()
    assert ve.shape == (3, 5) and np.all(ve >= 0) and np.all(ve.sum(axis=1) < 1.2)
    assert ve[2, 1] == 0  # modality 2 not in {0,1}
    import matplotlib.pyplot as plt

    ax = hcl.plot_structure()
    assert len(ax.get_xticklabels()) == 5
    plt.close("all")


def test_score_matches_scipy(data):
    from scipy.stats import multivariate_normal

    hcl = HCL(S).fit(data.Xs)
    Sig = hcl.loadings_ @ hcl.loadings_.T + np.diag(hcl.noise_var_features_)
    X = np.hstack(data.Xs)[:20]
    ref = multivariate_normal(mean=hcl.mean_, cov=Sig).logpdf(X)
    assert np.allclose(hcl.score_samples([x[:20] for x in data.Xs]), ref)


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        HCL(S).transform([np.zeros((2, n)) for n in NF])


# -- validation messages -----------------------------------------------------------------
def _xs(n=50, nf=NF, seed=0):
    g = np.random.default_rng(seed)
    return [g.standard_normal((n, p)) for p in nf]


@pytest.mark.parametrize(
    "Xs, match",
    [
        (_xs()[:2], "Xs must contain 3 modalities"),
        ([_xs()[0], _xs()[1][:40], _xs()[2]], r"same number of rows.*\[50, 40, 50\]"),
        ([np.where(np.eye(50, 12) > 0, np.nan, 0.0), _xs()[1], _xs()[2]], r"Xs\[0\] must be finite; got 12 NaN"),
        ([_xs()[0], np.full((50, 15), np.inf), _xs()[2]], r"Xs\[1\] must be finite; got 0 NaN and 750 infinite"),
        ([_xs()[0].astype(str), _xs()[1], _xs()[2]], r"Xs\[0\] must have a numeric dtype"),
        ([_xs()[0][:, 0], _xs()[1], _xs()[2]], r"Xs\[0\] must be 2-D.*got 1-D"),
        (np.zeros((50, 45)), "Xs must be a list of 2-D arrays"),
        ([], "at least one modality"),
    ],
)
def test_input_validation_messages(Xs, match):
    with pytest.raises(ValueError, match=match):
        HCL(S).fit(Xs)


def test_too_few_samples():
    with pytest.raises(ValueError, match=r"more samples than the number of factors K = 7 of the structure; got n_samples = 5"):
        HCL(S).fit(_xs(n=5))


def test_rank_larger_than_modality_features():
    s = Structure({(0, 1): 4, (0,): 1, (1,): 1}, 2)
    with pytest.raises(ValueError, match=r"subset \(0, 1\) has rank 4 but modality 0 has only 3 features"):
        HCL(s).fit(_xs(nf=(3, 10)))


def test_identifiability_violation_raise_and_warn():
    s = Structure({(0, 1, 2): 3, (0,): 3, (1,): 3, (2,): 3}, 3)
    Xs = _xs(n=80, nf=(4, 4, 6))
    with pytest.raises(IdentifiabilityError, match="violates the identifiability conditions"):
        HCL(s).fit(Xs)
    with pytest.warns(IdentifiabilityWarning, match="conditioning on modalities"):
        HCL(s, identifiability="warn").fit(Xs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        HCL(s, identifiability="ignore").fit(Xs)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(method="magic"), "The 'method' parameter of HCL must be one of"),
        (dict(lr=-0.1), r"The 'lr' parameter of HCL must be a float in \(0, inf\) or None. Got -0.1 instead."),
        (dict(max_iter=0), "The 'max_iter' parameter of HCL must be an int in"),
        (dict(identifiability="maybe"), "The 'identifiability' parameter of HCL must be one of"),
        (dict(structure={(0,): 1}), "The 'structure' parameter of HCL must be a Structure or 'auto'"),
    ],
)
def test_parameter_validation(params, match, data):
    args = dict(structure=S)
    args.update(params)
    with pytest.raises(ValueError, match=match):
        HCL(**args).fit(data.Xs)


def test_transform_checks_features(data):
    hcl = HCL(S).fit(data.Xs)
    with pytest.raises(ValueError, match=r"must have \(12, 15, 18\) features"):
        hcl.transform([x[:, :-1] for x in data.Xs])


def test_fit_covariance_validation():
    with pytest.raises(ValueError, match=r"cov must have shape \(p, p\) = \(45, 45\)"):
        HCL(S).fit_covariance(np.eye(40), NF)
    with pytest.raises(ValueError, match="cov must be symmetric"):
        HCL(S).fit_covariance(np.triu(np.ones((45, 45))), NF)


# -- property-based: malformed arrays only ever raise the documented ValueError -----------------
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
    elements=None,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(arrays, min_size=0, max_size=4))
def test_malformed_inputs_only_raise_valueerror(Xs):
    s = Structure({(0,): 1}, 1) if len(Xs) == 1 else S
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            HCL(s, identifiability="ignore").fit(Xs)
        except ValueError:
            pass


def test_fit_does_not_depend_on_memory_layout():
    # Fortran-ordered input used to give loadings with flipped column signs (BLAS rounding)
    from hcl_stats import HCL, Structure, simulate

    s = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
    d = simulate(s, (12, 15, 18), 300, noise_var=0.5, random_state=0)
    a = HCL(s).fit(d.Xs).loadings_
    b = HCL(s).fit([np.asfortranarray(X) for X in d.Xs]).loadings_
    assert np.array_equal(a, b)


def test_fit_warnings_point_at_the_caller():
    from hcl_stats import HCL, Structure, simulate
    from hcl_stats.exceptions import ConvergenceWarning

    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    d = simulate(s, (5, 6), 200, noise_var=0.3, random_state=0)
    with pytest.warns(ConvergenceWarning) as rec:
        HCL(s, max_iter=1).fit(d.Xs)
    assert rec[0].filename == __file__
    with pytest.warns(IdentifiabilityWarning) as rec:
        HCL(Structure({(0, 1): 3, (0,): 3, (1,): 4}, 2), identifiability="warn", max_iter=2).fit(d.Xs)
    assert [r.filename for r in rec if r.category is IdentifiabilityWarning] == [__file__]
