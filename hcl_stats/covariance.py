"""Sufficient statistics: the sample mean and covariance of the stacked modalities.

Every covariance-based estimator in hcl_stats works from a :class:`CovarianceStats`.
Three ways to get one:

- :func:`sample_covariance` for in-memory ``Xs`` (one symmetric rank-n update);
- :func:`covariance_from_chunks` for data larger than memory: an iterable of row chunks
  (each chunk a list of per-modality arrays), accumulated in one numerically stable pass
  (Chan et al. pairwise merging of means and centred cross-products);
- :func:`covariance_stats` dispatches on the input: in-memory lists, lists of ``numpy.memmap``
  (read in row chunks), lists of Dask arrays (X^T X computed by dask, imported lazily) or an
  iterable of chunks. :meth:`hcl_stats.HCL.fit` uses it.

With fewer samples than features, :func:`fit_statistics` (what :meth:`hcl_stats.HCL.fit` uses for
in-memory data) returns a :class:`DataStats` instead: the centred n x p data, from which the
default estimator and the structure selection get products with S and eigenpairs through n x n
Gram matrices, never a p x p matrix (memory O(n p)).

Memory: the accumulator holds one (p, p) float64 matrix (upper triangle updated in place by
BLAS ``dsyrk``/``dger``), the mean, and one centred chunk (chunk_size, p).
"""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg as sla
from scipy.linalg import blas

from ._validation import check_array, check_Xs, describe

__all__ = ["CovarianceStats", "DataStats", "sample_covariance", "data_statistics", "fit_statistics", "CovarianceAccumulator", "covariance_from_chunks",
           "covariance_from_memmaps", "covariance_from_dask", "covariance_stats", "is_out_of_core"]


@dataclass(frozen=True)
class CovarianceStats:
    """Mean (p,), unbiased covariance (p, p) (divided by n - 1), n_samples and the
    feature counts per modality. ``n_samples=None`` marks a population covariance."""

    cov: np.ndarray
    mean: np.ndarray
    n_samples: int | None
    n_features: tuple

    @property
    def n_total_features(self) -> int:
        return int(self.cov.shape[0])

    @property
    def feature_var(self) -> np.ndarray:
        """Variance of each feature (p,): the diagonal of the covariance."""
        return np.diag(self.cov).copy()


def sample_covariance(Xs) -> CovarianceStats:
    """Centred, unbiased sample covariance of the stacked modalities, computed with one
    symmetric rank-n update (float64)."""
    Xs = check_Xs(Xs, min_samples=2)
    X = np.hstack(Xs)
    n = X.shape[0]
    mean = X.mean(axis=0)
    Xc = X - mean
    cov = Xc.T @ Xc
    cov /= n - 1
    cov = 0.5 * (cov + cov.T)
    return CovarianceStats(cov=cov, mean=mean, n_samples=n, n_features=tuple(x.shape[1] for x in Xs))


# A lazily formed dense covariance of a DataStats above this size is refused (error with the
# estimate); above _DENSE_WARN_BYTES it is formed with a warning. 2 GiB is p ~ 16000 features.
_DENSE_MAX_BYTES = 2 * 1024**3
_DENSE_WARN_BYTES = 256 * 1024**2


class DataStats:
    """Sufficient statistics of in-memory data with fewer samples than features, kept as the
    centred data instead of a (p, p) covariance.

    The sample covariance is S = Xc^T Xc / (n - 1) with ``Xc`` (n, p) the centred data; it is
    never formed by the estimators that accept a ``DataStats`` (the default ``HCL(method="ml")``
    fit and :func:`hcl_stats.select_structure`): they use products ``S @ V = Xc^T (Xc V) / (n - 1)``
    (:meth:`__matmul__`), the diagonal (:attr:`feature_var`) and top eigenpairs from the n x n Gram
    matrix (:meth:`top_eigh`).

    Memory: the centred data, 8 n p bytes (plus n^2 for a Gram matrix when eigenpairs are asked
    for). ``cov`` forms the dense (p, p) matrix on first access for the code that needs one
    (``goodness_of_fit``, methods "als", "paper", "init"); it warns above 256 MiB and raises a
    ``MemoryError`` naming the size above 2 GiB (p > 16384) instead of allocating it.

    Attributes
    ----------
    Xc : ndarray of shape (n_samples, p)
        Centred data (columns of the modalities side by side).
    mean : ndarray of shape (p,)
    n_samples : int
    n_features : tuple of int
    """

    def __init__(self, Xc, mean, n_samples, n_features):
        self.Xc = Xc
        self.mean = mean
        self.n_samples = int(n_samples)
        self.n_features = tuple(int(v) for v in n_features)
        self._feature_var = None
        self._cov = None

    # -- the CovarianceStats interface -------------------------------------------------
    @property
    def n_total_features(self) -> int:
        return int(self.Xc.shape[1])

    @property
    def shape(self):
        p = self.n_total_features
        return (p, p)

    @property
    def feature_var(self) -> np.ndarray:
        """Variance of each feature (p,) (unbiased, divided by n - 1)."""
        if self._feature_var is None:
            self._feature_var = np.einsum("ij,ij->j", self.Xc, self.Xc) / (self.n_samples - 1)
        return self._feature_var.copy()

    def diagonal(self) -> np.ndarray:
        """The diagonal of S (p,), as ``ndarray.diagonal`` (for code written for either)."""
        return self.feature_var

    @property
    def cov(self) -> np.ndarray:
        """The dense (p, p) sample covariance, formed on first access (8 p^2 bytes)."""
        if self._cov is None:
            p = self.n_total_features
            need = 8.0 * p * p
            if need > _DENSE_MAX_BYTES:
                raise MemoryError(
                    f"this computation needs the dense {p} x {p} sample covariance ({need / 1024**3:.1f} GiB), "
                    f"above the {_DENSE_MAX_BYTES / 1024**3:.0f} GiB hcl_stats allocates for it; with more features "
                    f"than samples (n = {self.n_samples}) use HCL(method='ml') (the default), which works from the "
                    "n x p data, or fewer features.")
            if need > _DENSE_WARN_BYTES:
                from ._validation import user_stacklevel
                from .exceptions import DataWarning

                warnings.warn(f"forming the dense {p} x {p} sample covariance ({need / 1024**2:.0f} MiB) from n = "
                              f"{self.n_samples} samples; HCL(method='ml') (the default) does not need it.",
                              DataWarning, stacklevel=user_stacklevel())
            C = self.Xc.T @ self.Xc
            C /= self.n_samples - 1
            self._cov = 0.5 * (C + C.T)
        return self._cov

    # -- products and eigenpairs without a p x p matrix ---------------------------------
    def __matmul__(self, V):
        """S @ V = Xc^T (Xc V) / (n - 1) for V (p,) or (p, k): O(n p k)."""
        return self.Xc.T @ (self.Xc @ V) / (self.n_samples - 1)

    def scaled(self, scale) -> "DataStats":
        """Statistics of the data with column j divided by ``scale[j]`` (a new n x p array)."""
        scale = np.asarray(scale, dtype=float)
        out = DataStats(self.Xc / scale, self.mean / scale, self.n_samples, self.n_features)
        if self._feature_var is not None:
            out._feature_var = self._feature_var / scale**2
        return out

    def columns(self, sl) -> "DataStats":
        """Statistics of the features ``sl`` (a slice: a view of the data, no copy)."""
        out = DataStats(self.Xc[:, sl], self.mean[sl], self.n_samples, (len(range(*sl.indices(self.n_total_features))),))
        if self._feature_var is not None:
            out._feature_var = self._feature_var[sl]
        return out

    def top_eigh(self, k, scale=None):
        """The k largest eigenpairs of S (of D^{-1} S D^{-1} with ``scale`` = diag(D)), decreasing.

        From the n x n Gram matrix Y Y^T / (n - 1) (Y = Xc D^{-1}): its eigenpairs (w, u) give those
        of S as (w, Y^T u / sqrt((n - 1) w)). O(n^2 p + n^3) time, O(n^2 + p k) extra memory.
        Eigenvalues beyond the rank of the data (at most n - 1) are zero with zero vectors.
        """
        n, p = self.Xc.shape
        k = int(min(max(k, 0), p))
        if k == 0:
            return np.zeros(0), np.zeros((p, 0))
        Y = self.Xc if scale is None else self.Xc / np.asarray(scale, float)
        G = Y @ Y.T
        G /= self.n_samples - 1
        w, U = sla.eigh(0.5 * (G + G.T), subset_by_index=[max(n - k, 0), n - 1]) if k <= n else sla.eigh(G)
        w, U = w[::-1], U[:, ::-1]
        tiny = max(n, p) * np.finfo(float).eps * (w[0] if w.size and w[0] > 0 else 0.0)
        good = w > tiny
        V = np.zeros((p, k))
        V[:, :int(good.sum())] = (Y.T @ U[:, good]) / np.sqrt((self.n_samples - 1) * w[good])
        wk = np.zeros(k)
        wk[:int(good.sum())] = w[good]
        return wk, V


def data_statistics(Xs) -> DataStats:
    """Centred data and mean of the stacked modalities as a :class:`DataStats` (one n x p copy)."""
    Xs = check_Xs(Xs, min_samples=2)
    X = np.hstack(Xs)
    mean = X.mean(axis=0)
    X -= mean
    return DataStats(X, mean, X.shape[0], tuple(x.shape[1] for x in Xs))


def fit_statistics(Xs):
    """The sufficient statistics :meth:`hcl_stats.HCL.fit` works from for in-memory ``Xs``
    (validated list of arrays): the sample covariance (:class:`CovarianceStats`) when there are
    at least as many samples as features, else the centred data (:class:`DataStats`, memory
    O(n p) instead of O(p^2)); both give the same fits to rounding."""
    n = int(Xs[0].shape[0])
    p = sum(int(x.shape[1]) for x in Xs)
    return data_statistics(Xs) if p > n else sample_covariance(Xs)


class CovarianceAccumulator:
    """One-pass, numerically stable accumulation of the mean and centred cross-products.

    Each chunk is centred at its own mean, its cross-product ``Xc^T Xc`` is added with BLAS
    ``dsyrk`` and the two partial results are merged with Chan, Golub and LeVeque's pairwise
    formula: for parts (n_a, mean_a, C_a) and (n_b, mean_b, C_b),
    ``C = C_a + C_b + n_a n_b / (n_a + n_b) * d d^T`` with ``d = mean_b - mean_a``. No raw
    uncentred sums are formed, so large means do not cancel digits.

    Parameters
    ----------
    n_features : sequence of int, optional
        Feature counts per modality; taken from the first chunk when omitted.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X1, X2 = rng.standard_normal((100, 3)), rng.standard_normal((100, 2))
    >>> acc = CovarianceAccumulator()
    >>> for i in range(0, 100, 30):
    ...     _ = acc.update([X1[i:i + 30], X2[i:i + 30]])
    >>> np.allclose(acc.stats().cov, np.cov(np.hstack([X1, X2]).T))
    True
    """

    def __init__(self, n_features=None):
        self.n_features = None if n_features is None else tuple(int(v) for v in n_features)
        self.n = 0
        self._mean = None
        self._C = None  # Fortran-ordered (p, p); upper triangle is maintained
        self._n_chunks = 0

    def _check_chunk(self, chunk):
        name = f"chunk {self._n_chunks}"
        if isinstance(chunk, np.ndarray) or not isinstance(chunk, Sequence) or isinstance(chunk, (str, bytes)):
            raise ValueError(
                f"chunks: each chunk must be a list of 2-D arrays, one (n_rows, n_features_m) array per modality; {name} is {describe(chunk)}."
            )
        arrs = [check_array(X, f"chunks: {name}[{m}]") for m, X in enumerate(chunk)]
        got = tuple(a.shape[1] for a in arrs)
        if self.n_features is None:
            self.n_features = got
        elif got != self.n_features:
            raise ValueError(f"chunks: every chunk must have per-modality feature counts {self.n_features}; {name} has {got}.")
        rows = [a.shape[0] for a in arrs]
        if len(set(rows)) > 1:
            raise ValueError(f"chunks: the modalities of {name} must have the same number of rows; got row counts {rows}.")
        return arrs

    def update(self, chunk):
        """Add a chunk: a list of (n_rows, p_m) arrays, one per modality."""
        arrs = self._check_chunk(chunk)
        X = np.hstack(arrs) if len(arrs) > 1 else arrs[0]
        self._update_stacked(X)
        self._n_chunks += 1
        return self

    def _update_stacked(self, X):
        nb = X.shape[0]
        if nb == 0:
            return
        p = X.shape[1]
        mean_b = X.mean(axis=0)
        Xc = X - mean_b
        if self._C is None:
            self._C = np.zeros((p, p), order="F")
            self._mean = np.zeros(p)
        # C += Xc^T Xc (upper triangle); Xc.T is Fortran-contiguous, no copy
        self._C = blas.dsyrk(1.0, Xc.T, beta=1.0, c=self._C, trans=0, lower=0, overwrite_c=1)
        na = self.n
        n = na + nb
        if na > 0:
            d = mean_b - self._mean
            self._C = blas.dger(na * nb / n, d, d, a=self._C, overwrite_a=1)
            self._mean += d * (nb / n)
        else:
            self._mean[:] = mean_b
        self.n = n

    def stats(self) -> CovarianceStats:
        """The accumulated :class:`CovarianceStats` (unbiased covariance, divided by n - 1)."""
        if self.n < 2:
            raise ValueError(f"chunks must contain at least 2 rows in total to estimate a covariance; got {self.n}.")
        C = np.triu(self._C)
        C = C + np.triu(C, 1).T
        C /= self.n - 1
        return CovarianceStats(cov=np.ascontiguousarray(C), mean=self._mean.copy(), n_samples=int(self.n),
                               n_features=tuple(self.n_features))


def covariance_from_chunks(chunks, n_features=None) -> CovarianceStats:
    """Mean and unbiased covariance of data given as an iterable of row chunks, in one pass.

    Parameters
    ----------
    chunks : iterable of list of ndarray
        Each chunk is a list of (n_rows_chunk, p_m) arrays, one per modality (the ``Xs``
        convention for a block of rows). A generator is consumed once; chunks may have
        different numbers of rows.
    n_features : sequence of int, optional
        Expected feature counts per modality (checked against every chunk).

    Returns
    -------
    CovarianceStats

    Notes
    -----
    Memory: one (p, p) accumulator plus one centred copy of the current chunk. Time: the
    ``dsyrk`` rank-k updates, n p^2 flops in total, plus p^2 per chunk for the merge.
    """
    if isinstance(chunks, (np.ndarray, str, bytes)) or not isinstance(chunks, Iterable):
        raise ValueError(f"chunks must be an iterable of chunks (each a list of per-modality arrays); got {describe(chunks)}.")
    acc = CovarianceAccumulator(n_features)
    for chunk in chunks:
        acc.update(chunk)
    if acc.n_features is None:
        raise ValueError("chunks must contain at least one chunk; got an empty iterable.")
    return acc.stats()


def _row_chunks(Xs, chunk_size):
    n = Xs[0].shape[0]
    for start in range(0, n, chunk_size):
        yield [np.asarray(X[start:start + chunk_size], dtype=np.float64) for X in Xs]


def default_chunk_size(n_total_features: int, target_bytes: float = 64e6) -> int:
    """Rows per chunk so that one float64 chunk takes about ``target_bytes`` (at least 256 rows)."""
    return max(256, int(target_bytes // (8 * max(int(n_total_features), 1))))


def covariance_from_memmaps(Xs, chunk_size=None) -> CovarianceStats:
    """Covariance of a list of on-disk arrays (``numpy.memmap``, ``numpy.load(mmap_mode='r')``,
    h5py datasets, ...), read ``chunk_size`` rows at a time."""
    _check_row_counts(Xs, "Xs")
    p = sum(int(X.shape[1]) for X in Xs)
    cs = default_chunk_size(p) if chunk_size is None else _check_chunk_size(chunk_size)
    return covariance_from_chunks(_row_chunks(Xs, cs), n_features=[int(X.shape[1]) for X in Xs])


def covariance_from_dask(Xs) -> CovarianceStats:
    """Covariance of a list of Dask arrays (one per modality): the mean and the centred
    cross-product ``Xc^T Xc`` are computed by dask in one graph (dask is imported here)."""
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError("Fitting Dask arrays needs dask: pip install 'dask[array]' (or hcl_stats[dist]).") from exc
    _check_row_counts(Xs, "Xs")
    X = da.hstack([da.asarray(x).astype(np.float64) for x in Xs])
    n = int(X.shape[0])
    if n < 2:
        raise ValueError(f"Xs must have at least 2 samples; got {n}.")
    mean = X.mean(axis=0)
    Xc = X - mean
    G = Xc.T @ Xc
    finite = da.isfinite(X).all()
    mean, G, finite = dask.compute(mean, G, finite)
    if not bool(finite):
        raise ValueError("Xs must be finite; got NaN or infinite entries in the Dask arrays.")
    cov = np.asarray(G, dtype=float) / (n - 1)
    cov = 0.5 * (cov + cov.T)
    return CovarianceStats(cov=cov, mean=np.asarray(mean, float), n_samples=n,
                           n_features=tuple(int(x.shape[1]) for x in Xs))


def _check_row_counts(Xs, name):
    for m, X in enumerate(Xs):
        if len(getattr(X, "shape", ())) != 2:
            raise ValueError(f"{name}[{m}] must be 2-D of shape (n_samples, n_features); got {describe(X)}.")
    rows = [int(X.shape[0]) for X in Xs]
    if len(set(rows)) > 1:
        raise ValueError(f"{name}: every modality must have the same number of rows (samples); got row counts {rows}.")


def _check_chunk_size(chunk_size):
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
    return int(chunk_size)


def _is_dask(X) -> bool:
    return type(X).__module__.split(".")[0] == "dask"


def covariance_stats(Xs, chunk_size=None):
    """Dispatch on the type of ``Xs`` and return ``(stats, Xs_in_memory_or_None)``.

    - list of Dask arrays -> :func:`covariance_from_dask`;
    - list containing a ``numpy.memmap`` -> :func:`covariance_from_memmaps` (never loaded whole);
    - list/tuple of in-memory arrays -> :func:`sample_covariance` (the checked arrays are returned);
    - any other iterable (generator, iterator, custom reader) -> :func:`covariance_from_chunks`.
    """
    if isinstance(Xs, Sequence) and not isinstance(Xs, (str, bytes)) and len(Xs) > 0:
        if all(_is_dask(X) for X in Xs):
            return covariance_from_dask(Xs), None
        if any(isinstance(X, np.memmap) for X in Xs):
            return covariance_from_memmaps(Xs, chunk_size), None
        Xs = check_Xs(Xs, min_samples=2)
        return sample_covariance(Xs), Xs
    if isinstance(Xs, Iterable) and not isinstance(Xs, (np.ndarray, str, bytes)):
        return covariance_from_chunks(Xs), None
    # let check_Xs produce the usual message
    check_Xs(Xs, min_samples=2)
    raise AssertionError("unreachable")  # pragma: no cover


def is_out_of_core(Xs) -> bool:
    """True for inputs :meth:`HCL.fit` reads through :func:`covariance_stats` rather than
    loading: a list holding a ``numpy.memmap`` or Dask arrays, or a non-sequence iterable
    (generator / iterator of row chunks)."""
    if isinstance(Xs, (np.ndarray, str, bytes)):
        return False
    if isinstance(Xs, Sequence):
        return len(Xs) > 0 and (all(_is_dask(X) for X in Xs) or any(isinstance(X, np.memmap) for X in Xs))
    return isinstance(Xs, Iterable)
