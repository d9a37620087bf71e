"""BLAS threads of the small dense kernels (hcl_stats._threads): one thread below the size edge."""
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from hcl_stats import Structure, select_structure, simulate
from hcl_stats._threads import SMALL_WORK, blas_threads_for, limit_blas
from hcl_stats.estimation import ml


def _blas_threads():
    return max(m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas")


def test_the_edge_and_the_options():
    assert SMALL_WORK == 2_000_000
    assert blas_threads_for(SMALL_WORK - 1) == 1
    assert blas_threads_for(SMALL_WORK) is None
    assert blas_threads_for(10, None) is None
    assert blas_threads_for(10**9, 3) == 3
    for bad in (0, -1, 2.5, "two", True):
        with pytest.raises(ValueError, match="blas_threads must be 'auto', None or a positive int; got"):
            blas_threads_for(10, bad)


def test_limit_blas_sets_and_restores():
    with threadpool_limits(limits=2, user_api="blas"):
        outer = _blas_threads()
        with limit_blas(100):
            assert _blas_threads() == 1
        assert _blas_threads() == outer
        with limit_blas(SMALL_WORK):      # large: the caller's pools are kept
            assert _blas_threads() == outer


def _recording(monkeypatch, module, name):
    seen = []
    orig = getattr(module, name)

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return orig(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


def test_fit_start_and_selection_run_on_one_thread(monkeypatch):
    import hcl_stats.selection as selection
    from hcl_stats import HCL

    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    data = simulate(s, (8, 9), 300, noise_var=1.0, random_state=0)
    starts = _recording(monkeypatch, ml, "_start")
    selects = _recording(monkeypatch, selection, "_select_once")
    with threadpool_limits(limits=2, user_api="blas"):
        HCL(s).fit(data.Xs)
        select_structure(data.Xs)
    assert starts == [1] and selects == [1]


def test_results_do_not_depend_on_the_limit():
    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    data = simulate(s, (8, 9), 300, noise_var=1.0, random_state=1)
    from hcl_stats import HCL

    a = HCL(s).fit(data.Xs).loadings_
    with threadpool_limits(limits=1, user_api="blas"):
        b = HCL(s).fit(data.Xs).loadings_
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
