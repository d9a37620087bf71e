"""BLAS threads for the package's small dense kernels.

Most of the work in a fit or a structure selection is small dense linear algebra: K x K
regressions, eigendecompositions of a modality's p_m x p_m block, thin QR factorisations. A
multithreaded BLAS gains little there and, on a machine whose cores are busy with other work,
loses a great deal (threads wait for each other): measured on the shipped UCI Multiple Features
data (2000 x 649, a 270-factor structure) on a shared 2-core machine, ``select_structure`` took
124 s of wall time with the default two OpenBLAS threads and 14 s with one, and the start of the
default fit 60 s against 8 s. These functions therefore run such problems on one BLAS thread;
larger ones (at least :data:`SMALL_WORK` entries in the largest dense operand, e.g. p >> n
data) keep the thread pools as the caller set them. Results do not depend on the number of
threads beyond rounding.
"""
from __future__ import annotations

import contextlib

__all__ = ["SMALL_WORK", "blas_threads_for", "limit_blas"]

SMALL_WORK = 2_000_000


def blas_threads_for(size, blas_threads="auto"):
    """The BLAS thread limit for a problem whose largest dense operand has ``size`` entries.

    Parameters
    ----------
    size : int
        E.g. p * K for the loadings of a fit, n * p for the data of a selection.
    blas_threads : "auto", int or None, default "auto"
        "auto": 1 when ``size < SMALL_WORK``, else None; None: leave the thread pools alone;
        an int: that many threads.

    Returns
    -------
    int or None
    """
    if blas_threads is None:
        return None
    if blas_threads == "auto":
        return 1 if size < SMALL_WORK else None
    if isinstance(blas_threads, bool) or not isinstance(blas_threads, int) or blas_threads < 1:
        raise ValueError(f"blas_threads must be 'auto', None or a positive int; got {blas_threads!r}.")
    return int(blas_threads)


def limit_blas(size, blas_threads="auto"):
    """A context manager that applies :func:`blas_threads_for` (a no-op when it gives None)."""
    limit = blas_threads_for(size, blas_threads)
    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")
