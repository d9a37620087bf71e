"""Representations: each encoder against its direct formula, the errors-in-variables identity,
the structure-averaged construction, and the validation messages."""
from types import SimpleNamespace

import numpy as np
import pytest

from hcl_stats import HCL, Structure, simulate
from hcl_stats.exceptions import NotFittedError
from hcl_stats.representation import (encoder_matrix, paper_encoder, paper_representation, posterior_covariance,
                                      posterior_encoder, posterior_mean, represent, representation_noise_cov,
                                      structure_averaged_representation, structure_blocks)

STRUCT = Structure({(0, 1, 2): 2, (0, 1): 1, (1, 2): 1, (0,): 1, (1,): 2, (2,): 1}, 3)
NF = (7, 8, 9)


def _fitted(W, psi, structure=STRUCT, nf=NF, mean=None):
    p = W.shape[0]
    return SimpleNamespace(loadings_=W, noise_var_features_=np.broadcast_to(np.asarray(psi, float), (p,)).copy(),
                           mean_=np.zeros(p) if mean is None else mean, structure_=structure, n_features_=nf)


@pytest.fixture(scope="module")
def data():
    return simulate(STRUCT, NF, 400, noise_var=[0.3, 0.5, 0.8], random_state=3)


@pytest.fixture(scope="module")
def hcl(data):
    return HCL(STRUCT).fit(data.Xs)


def test_paper_representation_is_transform(hcl, data):
    np.testing.assert_allclose(paper_representation(hcl, data.Xs), hcl.transform(data.Xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(paper_encoder(hcl), hcl.encoder(), rtol=1e-12, atol=1e-12)


def test_posterior_mean_matches_direct_formula(hcl, data):
    W, psi = hcl.loadings_, hcl.noise_var_features_
    Sigma = W @ W.T + np.diag(psi)
    X = np.hstack(data.Xs) - hcl.mean_
    direct = X @ np.linalg.solve(Sigma, W)                      # rows: W^T Sigma^{-1} (x - mean)
    np.testing.assert_allclose(posterior_mean(hcl, data.Xs), direct, rtol=1e-9, atol=1e-10)
    woodbury = np.linalg.solve(np.eye(W.shape[1]) + W.T @ (W / psi[:, None]), (W / psi[:, None]).T)
    np.testing.assert_allclose(posterior_encoder(hcl), woodbury, rtol=1e-10, atol=1e-12)
    cov = np.eye(W.shape[1]) - W.T @ np.linalg.solve(Sigma, W)   # Cov(z | x)
    np.testing.assert_allclose(posterior_covariance(hcl), cov, rtol=1e-9, atol=1e-11)


def test_posterior_mean_regression_is_unbiased_and_paper_needs_correction():
    rng = np.random.default_rng(0)
    W = simulate(STRUCT, NF, 2, noise_var=0.5, random_state=1).loadings
    psi = np.full(W.shape[0], 0.5)
    h = _fitted(W, psi)
    Sigma = W @ W.T + np.diag(psi)
    beta = rng.standard_normal(STRUCT.n_factors)
    # population least squares of y = beta^T z + e on A x: (A Sigma A^T)^{-1} A W beta
    A = encoder_matrix(h, "posterior")
    np.testing.assert_allclose(np.linalg.solve(A @ Sigma @ A.T, A @ W @ beta), beta, rtol=1e-9, atol=1e-10)
    C = encoder_matrix(h, "paper")
    N = representation_noise_cov(h)
    np.testing.assert_allclose(N, C @ np.diag(psi) @ C.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(C @ Sigma @ C.T - N, np.eye(STRUCT.n_factors), atol=1e-10)  # corrected H -> I
    naive = np.linalg.solve(C @ Sigma @ C.T, C @ W @ beta)
    np.testing.assert_allclose(naive, np.linalg.solve(np.eye(STRUCT.n_factors) + N, beta), rtol=1e-9, atol=1e-10)


def test_noise_cov_is_covariance_of_encoded_noise():
    rng = np.random.default_rng(5)
    W = simulate(STRUCT, NF, 2, noise_var=1.0, random_state=2).loadings
    psi = np.repeat([0.2, 0.6, 1.1], NF)
    h = _fitted(W, psi)
    E = rng.standard_normal((200000, W.shape[0])) * np.sqrt(psi)
    for kind in ("paper", "posterior"):
        for averaged in (False, True):
            A = encoder_matrix(h, kind, averaged)
            emp = np.cov((E @ A.T).T)
            N = representation_noise_cov(h, kind, averaged)
            assert np.max(np.abs(emp - N)) < 0.02 * np.max(np.abs(N)) + 1e-3


def test_structure_averaged_recovers_noise_free_latents_and_matches_per_modality_formula():
    d = simulate(STRUCT, NF, 50, noise_var=1.0, random_state=4)
    W = d.loadings
    X = d.latents @ W.T                                          # noise free
    Xs = [X[:, sl] for sl in STRUCT.row_slices(NF)]
    h = _fitted(W, np.full(W.shape[0], 1e-3))
    np.testing.assert_allclose(structure_averaged_representation(h, Xs, "paper"), d.latents, atol=1e-9)
    # posterior version: per modality E[z_(m) | x_m], averaged over the modalities of each subset
    A = encoder_matrix(h, "posterior", averaged=True)
    rows, cols = STRUCT.row_slices(NF), STRUCT.column_slices
    S = (0, 1, 2)
    expect = np.zeros((STRUCT.rank(S), W.shape[0]))
    for m in S:
        idx = np.concatenate([np.arange(cols[s].start, cols[s].stop) for s in STRUCT.subsets_containing(m)])
        Wm = W[rows[m]][:, idx]
        Sig_m = Wm @ Wm.T + 1e-3 * np.eye(NF[m])
        Em = Wm.T @ np.linalg.inv(Sig_m)                         # E[z_(m) | x_m] encoder
        pos = list(idx).index(cols[S].start)
        expect[:, rows[m]] += Em[pos:pos + STRUCT.rank(S)] / len(S)
    np.testing.assert_allclose(A[cols[S]], expect, rtol=1e-6, atol=1e-8)


def test_structure_blocks(hcl, data):
    Z = represent(hcl, data.Xs, "posterior")
    blocks = structure_blocks(Z, STRUCT)
    assert list(blocks) == list(STRUCT.subsets)
    assert all(b.shape == (400, STRUCT.rank(s)) for s, b in blocks.items())
    np.testing.assert_array_equal(np.hstack(list(blocks.values())), Z)
    with pytest.raises(ValueError, match=r"Z must have shape \(n_samples, K\) with K = 8; got shape \(400, 3\)"):
        structure_blocks(Z[:, :3], STRUCT)


def test_validation_messages(hcl, data):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        posterior_mean(HCL(STRUCT), data.Xs)
    with pytest.raises(ValueError, match="hcl must be a fitted hcl_stats.HCL"):
        encoder_matrix(object())
    with pytest.raises(ValueError, match=r"kind must be one of \('paper', 'posterior'\); got 'bayes'"):
        represent(hcl, data.Xs, kind="bayes")
    with pytest.raises(ValueError, match="averaged must be a bool; got 'yes'"):
        encoder_matrix(hcl, averaged="yes")
    with pytest.raises(ValueError, match=r"Xs: the modalities must have \(7, 8, 9\) features"):
        posterior_mean(hcl, [data.Xs[0], data.Xs[1], data.Xs[2][:, :4]])
    bad = _fitted(hcl.loadings_, np.zeros(sum(NF)))
    with pytest.raises(ValueError, match="noise_var_features_ must be positive"):
        posterior_encoder(bad)
    wide = Structure({(0,): 3, (0, 1): 3, (1,): 1}, 2)
    W = simulate(wide, (4, 5), 2, noise_var=1.0, random_state=0).loadings
    with pytest.raises(ValueError, match="modality 0 has 6 factors and 4 features"):
        encoder_matrix(_fitted(W, np.ones(9), wide, (4, 5)), "paper", averaged=True)
