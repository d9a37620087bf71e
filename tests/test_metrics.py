"""Metrics and align."""
import numpy as np
import pytest
from scipy.stats import ortho_group

from hcl_stats import Structure, align, metrics, simulate

S = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
NF = (10, 9, 8)


def _rotated(W, seed=0):
    out = W.copy()
    for s, cs in S.column_slices.items():
        r = cs.stop - cs.start
        R = ortho_group.rvs(r, random_state=seed) if r > 1 else np.array([[-1.0]])
        out[:, cs] = W[:, cs] @ R
    return out


def test_gram_errors_rotation_invariant_and_zero_at_truth():
    W = simulate(S, NF, 5, 1.0, random_state=0).loadings
    Wr = _rotated(W)
    g = metrics.gram_errors(Wr, W, S, NF)
    assert max(g.values()) < 1e-12
    assert metrics.overall_gram_error(Wr, W) < 1e-12
    # order: by modality, then column order (the authors' Sine_metric order)
    assert list(g)[:4] == [(0, (0, 1, 2)), (0, (0, 1)), (0, (0,)), (1, (0, 1, 2))]


def test_relative_errors_of_zero_estimator_are_one():
    W = simulate(S, NF, 5, 1.0, random_state=1).loadings
    Z = np.zeros_like(W)
    assert np.allclose(list(metrics.gram_errors(Z, W, S, NF, relative=True).values()), 1.0)
    assert np.isclose(metrics.overall_gram_error(Z, W, relative=True), 1.0)
    assert np.allclose(list(metrics.sin_theta(Z, W, S, NF).values()), 1.0)


def test_overall_error_matches_direct_formula():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    assert np.isclose(metrics.overall_gram_error(B, A), np.linalg.norm(B @ B.T - A @ A.T))


def test_align_undoes_per_subset_rotation():
    W = simulate(S, NF, 5, 1.0, random_state=2).loadings
    Wr = _rotated(W, seed=3)
    aligned, rots = align(Wr, W, S, NF, return_rotations=True)
    assert np.allclose(aligned, W, atol=1e-10)
    for s, R in rots.items():
        assert np.allclose(R.T @ R, np.eye(R.shape[0]))


def test_sin_theta_small_perturbation():
    W = simulate(S, NF, 5, 1.0, random_state=4).loadings
    rng = np.random.default_rng(5)
    E = 1e-3 * rng.standard_normal(W.shape) * S.support_mask(NF)
    st = metrics.sin_theta(W + E, W, S, NF)
    assert 0 < max(st.values()) < 1e-2


def test_recovery_metrics_keys_and_shape_check():
    W = simulate(S, NF, 5, 1.0, random_state=6).loadings
    out = metrics.recovery_metrics(W, W, S, NF)
    assert "gram[m0|{0,1,2}]" in out and "rel_overall" in out and out["overall"] < 1e-10
    with pytest.raises(ValueError, match="same shape"):
        metrics.gram_errors(W[:, :3], W, S, NF)
