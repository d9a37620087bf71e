"""Out-of-core covariance: chunked, memmap and Dask inputs equal the in-memory statistics."""
import numpy as np
import pytest

from hcl_stats import HCL, Structure, simulate
from hcl_stats.estimation.solvers import EM
from hcl_stats.covariance import (CovarianceAccumulator, covariance_from_chunks, covariance_from_memmaps,
                                  covariance_stats, sample_covariance)


@pytest.fixture
def data():
    s = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
    d = simulate(s, (6, 8, 10), 1003, noise_var=0.5, random_state=7)
    # shift the means far from zero: the naive sum-of-squares formula would lose digits here
    Xs = [X + 50.0 * (m + 1) for m, X in enumerate(d.Xs)]
    return s, Xs


def _chunks(Xs, sizes):
    start = 0
    for size in sizes:
        yield [X[start:start + size] for X in Xs]
        start += size


def test_chunks_equal_in_memory(data):
    _, Xs = data
    ref = sample_covariance(Xs)
    for sizes in ([1003], [1, 2, 1000], [100] * 10 + [3], [500, 503]):
        st = covariance_from_chunks(_chunks(Xs, sizes))
        assert st.n_samples == 1003 and st.n_features == ref.n_features
        np.testing.assert_allclose(st.mean, ref.mean, rtol=0, atol=1e-10)
        np.testing.assert_allclose(st.cov, ref.cov, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(st.cov, st.cov.T)


def test_accumulator_matches_numpy_cov(data):
    _, Xs = data
    acc = CovarianceAccumulator()
    for ch in _chunks(Xs, [17] * 59):
        acc.update(ch)
    np.testing.assert_allclose(acc.stats().cov, np.cov(np.hstack(Xs).T), rtol=0, atol=1e-10)


def test_memmap_equals_in_memory(data, tmp_path):
    _, Xs = data
    mms = []
    for m, X in enumerate(Xs):
        mm = np.lib.format.open_memmap(tmp_path / f"x{m}.npy", mode="w+", dtype=np.float64, shape=X.shape)
        mm[:] = X
        mm.flush()
        mms.append(np.load(tmp_path / f"x{m}.npy", mmap_mode="r"))
    ref = sample_covariance(Xs)
    st = covariance_from_memmaps(mms, chunk_size=97)
    np.testing.assert_allclose(st.cov, ref.cov, rtol=0, atol=1e-10)
    st2, kept = covariance_stats(mms)
    assert kept is None
    np.testing.assert_allclose(st2.cov, ref.cov, rtol=0, atol=1e-10)


def test_dask_equals_in_memory(data):
    da = pytest.importorskip("dask.array")
    _, Xs = data
    ref = sample_covariance(Xs)
    st, kept = covariance_stats([da.from_array(X, chunks=(211, X.shape[1])) for X in Xs])
    assert kept is None
    np.testing.assert_allclose(st.cov, ref.cov, rtol=0, atol=1e-10)
    np.testing.assert_allclose(st.mean, ref.mean, rtol=0, atol=1e-10)


def test_fit_accepts_chunks_memmap_dask(data, tmp_path):
    s, Xs = data
    # converged tightly, so that the fits differ only through the (1e-10) covariance differences
    kw = dict(solver=EM(criterion="gradient", tol=1e-12, change_tol=1e-15, max_iter=20000))
    ref = HCL(s, **kw).fit(Xs)
    fits = [HCL(s, **kw).fit(_chunks(Xs, [300, 300, 403]))]
    mms = []
    for m, X in enumerate(Xs):
        np.save(tmp_path / f"y{m}.npy", X)
        mms.append(np.load(tmp_path / f"y{m}.npy", mmap_mode="r"))
    fits.append(HCL(s, **kw).fit(mms))
    try:
        import dask.array as da

        fits.append(HCL(s, **kw).fit([da.from_array(X, chunks=(250, X.shape[1])) for X in Xs]))
    except ImportError:  # pragma: no cover
        pass
    for f in fits:
        np.testing.assert_allclose(f.mean_, ref.mean_, rtol=0, atol=1e-10)
        assert f.n_samples_ == ref.n_samples_
        np.testing.assert_allclose(f.loadings_ @ f.loadings_.T, ref.loadings_ @ ref.loadings_.T, rtol=0, atol=1e-8)


def test_chunk_errors_name_the_argument(data):
    _, Xs = data
    with pytest.raises(ValueError, match=r"chunks: every chunk must have per-modality feature counts \(6, 8, 10\); chunk 1 has \(6, 8, 9\)"):
        covariance_from_chunks(iter([[X[:10] for X in Xs], [Xs[0][:5], Xs[1][:5], Xs[2][:5, :9]]]))
    with pytest.raises(ValueError, match=r"chunks: the modalities of chunk 0 must have the same number of rows"):
        covariance_from_chunks(iter([[Xs[0][:5], Xs[1][:6], Xs[2][:5]]]))
    with pytest.raises(ValueError, match=r"chunks must contain at least one chunk"):
        covariance_from_chunks(iter([]))
    bad = [X[:10].copy() for X in Xs]
    bad[1][3, 2] = np.nan
    with pytest.raises(ValueError, match=r"chunks: chunk 0\[1\] must be finite"):
        covariance_from_chunks(iter([bad]))
    with pytest.raises(ValueError, match=r"chunks: each chunk must be a list of 2-D arrays"):
        covariance_from_chunks(iter([np.hstack(Xs)]))
    with pytest.raises(ValueError, match=r"chunks must contain at least 2 rows in total"):
        covariance_from_chunks(iter([[X[:1] for X in Xs]]))
