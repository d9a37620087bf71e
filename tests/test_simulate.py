"""The simulator: shapes, the authors' generator, options, reproducibility, validation."""
import numpy as np
import pytest

from hcl_stats import Structure, simulate
from hcl_stats.simulate import latent_covariance

S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
NF = (20, 15, 12)


def test_shapes_and_support():
    d = simulate(S3, NF, 300, noise_var=1.0, random_state=0)
    assert [X.shape for X in d.Xs] == [(300, 20), (300, 15), (300, 12)]
    assert d.loadings.shape == (47, 11) and d.latents.shape == (300, 11)
    assert np.all(d.loadings[~S3.support_mask(NF)] == 0)
    assert np.allclose(d.noise_var, 1.0) and d.y is None
    for X in d.Xs:
        assert X.dtype == np.float64


def test_paper_generator_block_singular_values():
    d = simulate(Structure.full(3, 3), (30, 40, 50), 10, noise_var=6.0, random_state=3)
    for m, s in d.structure.blocks():
        sv = np.linalg.svd(d.block(m, s), compute_uv=False)
        assert np.all((sv >= 0.5) & (sv <= 1.5))  # a ~ U(0.5, 1.5)


def test_reproducible_and_independent_streams():
    a = simulate(S3, NF, 200, 1.0, random_state=7)
    b = simulate(S3, NF, 200, 1.0, random_state=7)
    c = simulate(S3, NF, 500, 1.0, random_state=7)
    e = simulate(S3, NF, 200, 1.0, random_state=8)
    assert all(np.array_equal(x, y) for x, y in zip(a.Xs, b.Xs))
    assert np.array_equal(a.loadings, c.loadings)  # loadings do not depend on n
    assert not np.array_equal(a.loadings, e.loadings)
    g = np.random.default_rng(1)
    f1, f2 = simulate(S3, NF, 50, 1.0, random_state=g), simulate(S3, NF, 50, 1.0, random_state=g)
    assert not np.array_equal(f1.Xs[0], f2.Xs[0])  # successive calls draw new streams


def test_moments_match_population_covariance():
    d = simulate(S3, NF, 100000, noise_var=[0.5, 1.0, 2.0], random_state=1)
    S = np.cov(d.X, rowvar=False)
    Sig = d.covariance()
    assert np.abs(S - Sig).max() < 0.08
    rows = S3.row_slices(NF)
    for m, v in enumerate([0.5, 1.0, 2.0]):
        resid = d.Xs[m] - d.latents @ d.loadings[rows[m]].T
        assert abs(resid.var() - v) < 0.03 * v


def test_gaussian_loadings_and_given_loadings():
    d = simulate(S3, NF, 10, 1.0, random_state=2, loadings="gaussian", loading_scale=2.0)
    vals = d.loadings[S3.support_mask(NF)]
    assert 1.6 < vals.std() < 2.4
    W = np.ones((47, 11))
    d2 = simulate(S3, NF, 10, 1.0, random_state=2, loadings=W)
    assert np.all(d2.loadings[~S3.support_mask(NF)] == 0) and np.all(d2.loadings[S3.support_mask(NF)] == 1)


@pytest.mark.parametrize("dist", ["gaussian", "t", "laplace", "uniform", "rademacher"])
def test_latent_distributions_unit_variance(dist):
    d = simulate(S3, NF, 40000, 1.0, random_state=4, latent_dist=dist)
    assert np.allclose(d.latents.var(axis=0), 1.0, atol=0.06)


def test_correlated_latents():
    d = simulate(S3, NF, 50000, 1.0, random_state=5, latent_corr=0.4)
    C = np.corrcoef(d.latents, rowvar=False)
    g = S3.factor_groups()
    assert abs(C[0, g.tolist().index(1)] - 0.4) < 0.03
    assert abs(C[0, 1]) < 0.03  # within a subset stay independent
    with pytest.raises(ValueError, match="not positive definite"):
        latent_covariance(S3, -0.9)


def test_linear_and_logistic_response_with_zero_groups():
    d = simulate(S3, NF, 20000, 1.0, random_state=6, response="linear", zero_groups=[(0, 1), (2,)])
    assert np.isclose(np.linalg.norm(d.beta), 1.0)
    assert np.all(d.beta[S3.column_slice((0, 1))] == 0) and np.all(d.beta[S3.column_slice((2,))] == 0)
    resid = d.y - d.latents @ d.beta
    assert abs(resid.var() - 0.1) < 0.01
    lo = simulate(S3, NF, 2000, 1.0, random_state=6, response="logistic", response_noise_var=6.0)
    assert set(np.unique(lo.y)) == {0.0, 1.0}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(structure="x"), "structure must be a hcl_stats.Structure"),
        (dict(n_features=(20, 15)), "one entry per modality"),
        (dict(n_features=(20, 0, 12)), "positive integers"),
        (dict(n_samples=0), "n_samples must be a positive integer; got 0"),
        (dict(noise_var=-1.0), "noise_var must be positive"),
        (dict(noise_var=[1.0, 2.0]), "sequence of 3 positive numbers"),
        (dict(latent_dist="cauchy"), "latent_dist must be one of"),
        (dict(response="poisson"), "response must be None"),
        (dict(loadings="sparse"), "loadings must be 'paper', 'gaussian'"),
        (dict(loadings=np.ones((3, 3))), r"loadings must have shape \(p, K\)"),
        (dict(random_state="seed"), "must be None, an int seed"),
    ],
)
def test_validation(kwargs, match):
    args = dict(structure=S3, n_features=NF, n_samples=10, noise_var=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate(**args)


def test_paper_generator_needs_pm_at_least_rank():
    with pytest.raises(ValueError, match="smaller than the rank"):
        simulate(Structure.full(2, 3), (2, 5), 10, 1.0, random_state=0)


def test_rng_keyword_is_the_deprecated_spelling_of_random_state():
    import warnings

    from hcl_stats.simulate import make_loadings

    a = simulate(S3, NF, 20, 1.0, 5)
    with pytest.warns(FutureWarning, match=r"'rng' parameter of simulate is deprecated; use random_state") as rec:
        b = simulate(S3, NF, 20, 1.0, rng=5)
    assert rec[0].filename == __file__  # points at the caller
    np.testing.assert_array_equal(a.Xs[1], b.Xs[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the new spelling and positional use do not warn
        c = simulate(S3, NF, 20, 1.0, random_state=5)
        W = make_loadings(S3, NF, 3)
    np.testing.assert_array_equal(a.Xs[1], c.Xs[1])
    with pytest.warns(FutureWarning, match=r"'rng' parameter of make_loadings is deprecated") as rec:
        W2 = make_loadings(S3, NF, rng=3)
    assert rec[0].filename == __file__
    np.testing.assert_array_equal(W, W2)
    with pytest.raises(TypeError, match=r"simulate\(\) got both random_state=1 and its deprecated spelling rng=2"):
        simulate(S3, NF, 20, 1.0, random_state=1, rng=2)


def test_noise_var_shapes_of_the_result():
    d = simulate(S3, NF, 10, [0.5, 1.0, 2.0], random_state=0)
    assert d.noise_var.shape == (S3.n_modalities,) and d.noise_var_features.shape == (sum(NF),)
    np.testing.assert_array_equal(d.noise_var_features, np.repeat([0.5, 1.0, 2.0], NF))
    psi = np.linspace(0.5, 1.5, sum(NF))
    d = simulate(S3, NF, 10, psi, random_state=0)
    assert d.noise_var.shape == (3,) and d.noise_var_features.shape == (sum(NF),)
    np.testing.assert_allclose(d.noise_var, [psi[:NF[0]].mean(), psi[NF[0]:NF[0] + NF[1]].mean(), psi[-NF[2]:].mean()])
