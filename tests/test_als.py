"""Alternating exact block updates (method="als"): monotone objective, exact recovery."""
import numpy as np
import pytest

from _hcl_designs import DESIGNS
from hcl_stats import HCL, simulate
from hcl_stats.covariance import sample_covariance
from hcl_stats.estimation.als import _Target, _block_update, fit_als
from hcl_stats.estimation.init import spectral_init
from hcl_stats.estimation.lowrank import spectral_init_lowrank
from hcl_stats.metrics import gram_errors, overall_gram_error

TIGHT = dict(tol=1e-15, gtol=1e-12, max_iter=20000)


@pytest.mark.parametrize("M", [2, 3, 4, 5])
@pytest.mark.parametrize("shrinkage", [False, True])
def test_exact_recovery_from_population(M, shrinkage):
    s, nf = DESIGNS[M]
    # the dense target uses one noise variance; the shrunk target one per modality
    nv = [0.3 + 0.2 * m for m in range(M)] if shrinkage else 0.5
    d = simulate(s, nf, 10, noise_var=nv, rng=M)
    h = HCL(s, method="als", shrinkage=shrinkage, **TIGHT).fit_covariance(d.covariance(), nf)
    assert h.converged_
    assert overall_gram_error(h.loadings_, d.loadings, relative=True) < 1e-8
    np.testing.assert_allclose(h.noise_var_, d.noise_var, rtol=1e-10)


@pytest.mark.parametrize("shrinkage", [False, True])
def test_objective_never_increases(shrinkage):
    s, nf = DESIGNS[4]
    d = simulate(s, nf, 400, noise_var=2.0, rng=1)
    res = fit_als(sample_covariance(d.Xs), s, max_iter=200, tol=1e-12, gtol=1e-9, shrinkage=shrinkage)
    f = res.history["objective"]
    assert len(f) > 3
    assert np.all(np.diff(f) <= 1e-12 * f[0])
    assert len(res.history["kkt"]) == len(f)


def test_block_update_is_the_exact_block_minimiser():
    # with the other blocks fixed, no perturbation of the updated block lowers the objective
    s, nf = DESIGNS[3]
    rng = np.random.default_rng(0)
    d = simulate(s, nf, 300, noise_var=1.0, rng=2)
    st = sample_covariance(d.Xs)
    S_W = st.cov - 1.0 * np.eye(st.cov.shape[0])
    W = spectral_init(S_W, s, nf)
    rows = s.row_slices(nf)
    sub = (0, 1, 2)
    cs = s.column_slice(sub)
    idx = np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in sub])
    others = np.setdiff1d(np.arange(s.n_factors), np.arange(cs.start, cs.stop))
    for target in (_Target(dense=S_W), _Target(factor=np.linalg.cholesky(S_W + 10 * np.eye(len(S_W))))):
        T = target.dense if target.dense is not None else target.factor @ target.factor.T
        W[np.ix_(idx, np.arange(cs.start, cs.stop))] = _block_update(W, target, idx, cs, others, s.rank(sub))
        f0 = 0.5 * np.sum((W @ W.T - T) ** 2)
        for _ in range(20):
            V = W.copy()
            V[np.ix_(idx, np.arange(cs.start, cs.stop))] += 1e-3 * rng.standard_normal((len(idx), cs.stop - cs.start))
            assert 0.5 * np.sum((V @ V.T - T) ** 2) >= f0


@pytest.mark.parametrize("M", [2, 3, 4, 5])
def test_lowrank_init_equals_dense_init(M):
    s, nf = DESIGNS[M]
    F = np.random.default_rng(M).standard_normal((sum(nf), s.n_factors))
    A = spectral_init(F @ F.T, s, nf)
    B = spectral_init_lowrank(F, s, nf)
    scale = np.linalg.norm(F) ** 2
    assert max(gram_errors(A, B, s, nf).values()) < 1e-9 * scale


def test_als_recovers_cross_modal_alignment_from_data():
    s, nf = DESIGNS[3]
    errs = []
    for seed in range(3):
        d = simulate(s, nf, 20000, noise_var=0.1, rng=seed)
        h = HCL(s, method="als", shrinkage=False).fit(d.Xs)
        errs.append(overall_gram_error(h.loadings_, d.loadings, relative=True))
    assert np.median(errs) < 0.1
