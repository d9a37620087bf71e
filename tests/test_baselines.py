"""Classical baselines: API contract, reductions (NaiveSVD = eigendecomposition), recovery on clear
cases over several seeds (SLIDE given the structure, JIVE), structure selection, validation."""
import numpy as np
import pytest

from hcl_stats import Structure, simulate
from hcl_stats.base import clone
from hcl_stats.baselines import JIVE, SLIDE, NaiveSVD, PerModalityPCA, select_structure_slide
from hcl_stats.exceptions import NotFittedError
from hcl_stats.metrics import sin_theta

S3 = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
JIVE_S = Structure({(0, 1, 2): 2, (0,): 1, (1,): 2, (2,): 1}, 3)


def _data(structure, seed, n=800, p=(30, 25, 20), noise=0.2, loadings="paper"):
    return simulate(structure, p, n, noise_var=noise, random_state=seed, loadings=loadings)


@pytest.mark.parametrize("Est, kwargs", [
    (NaiveSVD, dict(n_components=3)),
    (PerModalityPCA, dict(n_components=2)),
    (SLIDE, dict(structure=S3, random_state=0)),
    (JIVE, dict(joint_rank=1, individual_ranks=1)),
])
def test_api_contract(Est, kwargs):
    d = _data(S3, 0, n=200)
    est = Est(**kwargs)
    assert est.get_params()[next(iter(kwargs))] is kwargs[next(iter(kwargs))]
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.transform(d.Xs)
    assert est.fit(d.Xs) is est
    p = sum(d.n_features)
    assert est.loadings_.ndim == 2 and est.loadings_.shape[0] == p and est.loadings_.dtype == np.float64
    Z = est.transform(d.Xs)
    assert Z.shape == (200, est.loadings_.shape[1])
    np.testing.assert_allclose(est.fit_transform(d.Xs), Z)
    c = clone(est)
    assert not hasattr(c, "loadings_") and c.get_params() == est.get_params()
    if hasattr(est, "structure_") and est.structure_ is not None:
        mask = est.structure_.support_mask(d.n_features)
        assert not np.any(est.loadings_[~mask])
    with pytest.raises(ValueError, match="the modalities must have"):
        est.transform([X[:, :-1] for X in d.Xs])


def test_naive_svd_is_the_eigendecomposition():
    d = _data(S3, 1, n=300)
    est = NaiveSVD(S3).fit(d.Xs)
    C = np.cov(np.hstack(d.Xs), rowvar=False)
    w, V = np.linalg.eigh(C)
    K = S3.n_factors
    W = V[:, ::-1][:, :K] * np.sqrt(w[::-1][:K])
    np.testing.assert_allclose(est.eigenvalues_, w[::-1][:K], rtol=1e-10)
    np.testing.assert_allclose(est.loadings_ @ est.loadings_.T, W @ W.T, atol=1e-10)
    assert est.loadings_.shape == (sum(d.n_features), K)
    # one implementation: the baseline is the estimation layer's naive_svd on the sample covariance
    from hcl_stats.covariance import sample_covariance
    from hcl_stats.estimation.init import naive_svd

    np.testing.assert_array_equal(est.loadings_, naive_svd(sample_covariance(d.Xs).cov, K))


def test_per_modality_pca_blocks():
    d = _data(S3, 2, n=300)
    est = PerModalityPCA([1, 2, 3]).fit(d.Xs)
    assert est.structure_ == Structure({(0,): 1, (1,): 2, (2,): 3}, 3)
    rows = est.structure_.row_slices(d.n_features)
    C1 = np.cov(d.Xs[1], rowvar=False)
    w, V = np.linalg.eigh(C1)
    B = est.loadings_[rows[1], est.structure_.column_slice((1,))]
    np.testing.assert_allclose(B @ B.T, (V[:, -2:] * w[-2:]) @ V[:, -2:].T, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slide_given_structure_recovers(seed):
    # clear case: signal 1.0 per factor direction, noise 0.05, n = 2000
    d = _data(S3, seed, n=2000, noise=0.05)
    est = SLIDE(S3, random_state=seed).fit(d.Xs)
    assert est.converged_
    err = sin_theta(est.loadings_, d.loadings, S3, d.n_features)
    assert max(err.values()) < 0.15, err
    # loadings on the covariance scale: block Gram matrices close to the truth
    for m, s in S3.blocks():
        rows = S3.row_slices(d.n_features)[m]
        B, A = est.loadings_[rows, S3.column_slice(s)], d.loadings[rows, S3.column_slice(s)]
        assert np.linalg.norm(B @ B.T - A @ A.T) / np.linalg.norm(A @ A.T) < 0.3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jive_recovers_joint_and_individual(seed):
    d = _data(JIVE_S, seed, n=1500, noise=0.05)
    est = JIVE(2, [1, 2, 1], scale_views=False).fit(d.Xs)
    assert est.structure_ == JIVE_S and est.converged_
    err = sin_theta(est.loadings_, d.loadings, JIVE_S, d.n_features)
    assert max(err.values()) < 0.15, err


@pytest.mark.parametrize("seed", [0, 1])
def test_jive_permutation_ranks(seed):
    s = Structure({(0, 1, 2): 1, (0,): 1, (1,): 2, (2,): 1}, 3)
    d = _data(s, seed, n=600, noise=0.05)
    est = JIVE(1, "permutation", n_permutations=20, random_state=0).fit(d.Xs)
    assert est.joint_rank_ == 1 and est.individual_ranks_ == (1, 2, 1)


def test_slide_selection_clear_case():
    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    hits = 0
    for seed in range(3):
        d = simulate(s, (20, 15), 400, noise_var=0.05, random_state=seed)
        hits += select_structure_slide(d.Xs, random_state=0) == s
    assert hits >= 2


def test_slide_auto_stores_selection():
    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    d = simulate(s, (20, 15), 300, noise_var=0.05, random_state=0)
    est = SLIDE("auto", random_state=0).fit(d.Xs)
    assert est.structure_ in est.selection_["candidates"]
    assert len(est.selection_["bcv_errors"]) == len(est.selection_["candidates"])


@pytest.mark.parametrize("est, match", [
    (SLIDE("full"), "The 'structure' parameter of SLIDE must be a hcl_stats.Structure or 'auto'. Got 'full' instead."),
    (SLIDE(S3, tol=-1.0), "The 'tol' parameter of SLIDE must be a float in \\(0, inf\\). Got -1.0 instead."),
    (SLIDE(S3, view_scaling="l2"), "The 'view_scaling' parameter of SLIDE must be None or one of"),
    (NaiveSVD(0), "The 'n_components' parameter of NaiveSVD must be an int in \\[1, inf\\). Got 0 instead."),
    (NaiveSVD(10_000), "must be at most the total number of features p = 75. Got 10000 instead."),
    (PerModalityPCA([1, 2]), "must be a positive int or a sequence of 3 positive ints"),
    (PerModalityPCA(40), "must be in \\[1, 30\\] for modality 0"),
    (JIVE(-1), "The 'joint_rank' parameter of JIVE must be an int in \\[0, inf\\). Got -1 instead."),
    (JIVE(1, "many"), "The 'individual_ranks' parameter of JIVE must be a non-negative int"),
    (JIVE(1, [1, 1]), "The 'individual_ranks' parameter of JIVE must be a non-negative int"),
])
def test_validation_messages(est, match):
    d = _data(S3, 0, n=100)
    with pytest.raises(ValueError, match=match):
        est.fit(d.Xs)


def test_slide_structure_mismatch():
    d = _data(S3, 0, n=100)
    with pytest.raises(ValueError, match="Xs must contain 3 modalities"):
        SLIDE(S3).fit(d.Xs[:2])  # noqa
    with pytest.raises(ValueError, match="Xs\\[1\\] must be finite"):
        SLIDE(S3).fit([d.Xs[0], np.full_like(d.Xs[1], np.nan), d.Xs[2]])


# -- SLIDE on its own scale, iterated on the covariance ----------------------------------------
from hcl_stats.baselines import slide_fit_structure  # noqa: E402
from hcl_stats.baselines._slide import slide_fit_gram  # noqa: E402


def test_slide_defaults_are_the_authors_scale_and_tolerance():
    p = SLIDE(S3).get_params()
    assert p["view_scaling"] == "frobenius" and p["tol"] == 1e-6 and p["max_iter"] == 1000


@pytest.mark.parametrize("seed", [0, 1])
def test_slide_gram_iterates_equal_the_data_iterates(seed):
    d = _data(S3, seed, n=300, noise=0.3)
    Z = [X - X.mean(0) for X in d.Xs]
    Z = [X / np.linalg.norm(X) for X in Z]
    X = np.hstack(Z)
    U, Vd, it_d, conv_d = slide_fit_structure(Z, S3, random_state=seed, tol=1e-9, max_iter=400)
    Vg, it_g, conv_g, Gh = slide_fit_gram(X.T @ X, d.n_features, S3, random_state=seed, tol=1e-9, max_iter=400)
    assert it_d == it_g and conv_d == conv_g
    np.testing.assert_allclose(np.vstack(Vg), np.vstack(Vd), atol=1e-9)
    np.testing.assert_allclose(X @ (np.vstack(Vg) @ Gh), U, atol=1e-8)


def test_slide_fit_covariance_equals_fit_on_data():
    d = _data(S3, 2, n=400, noise=0.2)
    a = SLIDE(S3, random_state=5).fit(d.Xs)
    C = np.cov(np.hstack(d.Xs), rowvar=False)
    b = SLIDE(S3, random_state=5).fit_covariance(C, d.n_features, 400)
    assert a.n_iter_ == b.n_iter_ and a.converged_ and b.converged_
    np.testing.assert_allclose(b.loadings_ @ b.loadings_.T, a.loadings_ @ a.loadings_.T, atol=1e-8)
    assert b.scores_ is None


def test_slide_stopping_is_scale_free_with_the_default_scaling():
    # SLIDE's own scaling: the same iterations whatever the units (unscaled, eps = 1e-6 is not)
    d = _data(S3, 3, n=400, noise=0.2)
    a = SLIDE(S3, random_state=0).fit(d.Xs)
    b = SLIDE(S3, random_state=0).fit([1024.0 * X for X in d.Xs])
    assert a.n_iter_ == b.n_iter_ < 1000
    np.testing.assert_allclose(b.loadings_ @ b.loadings_.T, 1024.0 ** 2 * (a.loadings_ @ a.loadings_.T),
                               rtol=1e-7, atol=1e-6)
    c = SLIDE(S3, random_state=0, view_scaling=None).fit([1024.0 * X for X in d.Xs])
    assert c.n_iter_ > a.n_iter_


def test_slide_fit_covariance_validation():
    d = _data(S3, 0, n=100)
    C = np.cov(np.hstack(d.Xs), rowvar=False)
    with pytest.raises(ValueError, match=r"cov must be a square matrix of size sum\(n_features\) = 75; got shape \(74, 74\)"):
        SLIDE(S3).fit_covariance(C[:-1, :-1], d.n_features, 100)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2; got 1"):
        SLIDE(S3).fit_covariance(C, d.n_features, 1)
    with pytest.raises(ValueError, match="The 'structure' parameter of SLIDE must be a hcl_stats.Structure. Got 'auto'"):
        SLIDE("auto").fit_covariance(C, d.n_features, 100)


def test_old_keywords_warn_and_still_work():
    d = _data(S3, 0, n=200)
    with pytest.warns(FutureWarning, match="JIVE: the keyword 'alpha' is deprecated .*; use 'level'") as rec:
        est = JIVE(1, "permutation", n_permutations=5, alpha=0.2)
    assert rec[0].filename == __file__  # points at the user's call
    assert est.level == 0.2 and "alpha" not in est.get_params()
    new = JIVE(1, "permutation", n_permutations=5, level=0.2).fit(d.Xs)
    assert est.fit(d.Xs).individual_ranks_ == new.individual_ranks_
    with pytest.raises(ValueError, match="JIVE: pass either 'level' or its deprecated spelling 'alpha', not both"):
        JIVE(1, level=0.1, alpha=0.2)
    with pytest.raises(TypeError, match="JIVE got an unexpected keyword argument 'levl'"):
        JIVE(1, levl=0.1)
    Z = [X - X.mean(0) for X in d.Xs]
    with pytest.warns(FutureWarning, match="slide_fit_structure: the keyword 'rng' is deprecated .*; use 'random_state'"):
        old = slide_fit_structure(Z, S3, rng=3, max_iter=20)
    new = slide_fit_structure(Z, S3, random_state=3, max_iter=20)
    np.testing.assert_array_equal(old[0], new[0])
    X = np.hstack(Z)
    with pytest.warns(FutureWarning, match="slide_fit_gram: the keyword 'rng' is deprecated"):
        old = slide_fit_gram(X.T @ X, d.n_features, S3, rng=3, max_iter=20)
    np.testing.assert_array_equal(old[0][0], slide_fit_gram(X.T @ X, d.n_features, S3, random_state=3, max_iter=20)[0][0])


def test_randomised_baselines_are_reproducible_by_default():
    d = _data(S3, 1, n=200)
    assert JIVE().random_state == 0 and SLIDE(S3).random_state == 0
    a = JIVE(1, "permutation", n_permutations=5).fit(d.Xs)
    b = JIVE(1, "permutation", n_permutations=5).fit(d.Xs)
    assert a.individual_ranks_ == b.individual_ranks_
    np.testing.assert_array_equal(SLIDE(S3, max_iter=30).fit(d.Xs).loadings_, SLIDE(S3, max_iter=30).fit(d.Xs).loadings_)


def test_slide_gram_product_on_the_support_equals_the_full_product():
    from hcl_stats.baselines._slide import _support_gram_product

    rng = np.random.default_rng(0)
    nf = (30, 25, 20)
    X = rng.standard_normal((200, sum(nf)))
    C = X.T @ X
    mask = S3.support_mask(nf)
    for m in (mask, np.ones_like(mask), rng.random(mask.shape) < 0.5):   # runs by modality; no saving; many runs
        V = rng.standard_normal(mask.shape) * m
        np.testing.assert_allclose(_support_gram_product(C, m)(V), C @ V, rtol=0, atol=1e-12 * np.abs(C @ V).max())
