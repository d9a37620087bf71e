"""NaiveSVD (the authors' structure-blind reference) and per-modality PCA."""
from __future__ import annotations

import numbers

import numpy as np

from .._validation import Interval, check_Xs, validate_params
from ..covariance import sample_covariance
from ..estimation.init import naive_svd
from ..structure import Structure
from ._common import MultiViewLoadingsMixin, top_eig

__all__ = ["NaiveSVD", "PerModalityPCA"]


class NaiveSVD(MultiViewLoadingsMixin):
    """Top-K eigenvectors of the sample covariance of the stacked modalities, scaled by
    sqrt(eigenvalue): Rec(S_n, K), the authors' "naive SVD" reference, computed by
    :func:`hcl_stats.estimation.init.naive_svd`.

    Parameters
    ----------
    n_components : int or Structure
        K; a :class:`~hcl_stats.Structure` gives K = ``structure.n_factors`` (the loadings are
        then comparable column-count-wise with HCL's, but they ignore the structure: no block
        is zero).

    Attributes
    ----------
    loadings_ : ndarray of shape (p, K)
        Dense; columns in decreasing eigenvalue order.
    eigenvalues_ : ndarray of shape (K,)
    mean_ : ndarray of shape (p,)
    n_features_ : tuple of int
    structure_ : Structure or None
        The structure passed as ``n_components`` (for layout only).

    Examples
    --------
    >>> import numpy as np
    >>> from hcl_stats.baselines import NaiveSVD
    >>> rng = np.random.default_rng(0)
    >>> Xs = [rng.standard_normal((100, 5)), rng.standard_normal((100, 4))]
    >>> NaiveSVD(3).fit(Xs).loadings_.shape
    (9, 3)
    """

    def __init__(self, n_components=1):
        self.n_components = n_components

    def fit(self, Xs, y=None):
        K = self.n_components
        structure = None
        if isinstance(K, Structure):
            structure, K = K, K.n_factors
        else:
            validate_params("NaiveSVD", {"n_components": K}, {"n_components": [Interval(int, 1, None)]})
        Xs = check_Xs(Xs, n_modalities=None if structure is None else structure.n_modalities)
        stats = sample_covariance(Xs)
        p = stats.cov.shape[0]
        if K > p:
            raise ValueError(f"The 'n_components' parameter of NaiveSVD must be at most the total number of features p = {p}. Got {K} instead.")
        W = naive_svd(stats.cov, K)  # the one implementation of Rec(S_n, K), shared with the harness
        self.loadings_ = W
        self.eigenvalues_ = np.sum(W * W, axis=0)
        self.mean_ = stats.mean
        self.n_features_ = stats.n_features
        self.n_samples_ = stats.n_samples
        self.structure_ = structure
        return self


class PerModalityPCA(MultiViewLoadingsMixin):
    """Principal components of each modality separately (no sharing at all).

    Parameters
    ----------
    n_components : int or sequence of int
        Components per modality (one int for all, or one per modality).

    Attributes
    ----------
    loadings_ : ndarray of shape (p, sum k_m)
        Block diagonal: modality m's top-k_m eigenvectors of its own covariance scaled by
        sqrt(eigenvalue), in the HCL layout of ``structure_``.
    structure_ : Structure
        Modality-specific subsets only, ``{(m,): k_m}``.
    explained_variance_ratio_ : list of ndarray
    mean_, n_features_
    """

    def __init__(self, n_components=1):
        self.n_components = n_components

    def fit(self, Xs, y=None):
        Xs = check_Xs(Xs)
        M = len(Xs)
        k = self.n_components
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            ks = [int(k)] * M
        elif isinstance(k, (list, tuple, np.ndarray)) and len(k) == M and all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in k):
            ks = [int(v) for v in k]
        else:
            raise ValueError(f"The 'n_components' parameter of PerModalityPCA must be a positive int or a sequence of {M} positive ints (one per modality). Got {k!r} instead.")
        for m, (km, X) in enumerate(zip(ks, Xs)):
            if km < 1 or km > X.shape[1]:
                raise ValueError(f"The 'n_components' parameter of PerModalityPCA must be in [1, {X.shape[1]}] for modality {m} (Xs[{m}] has {X.shape[1]} features). Got {km} instead.")
        stats = sample_covariance(Xs)
        structure = Structure({(m,): ks[m] for m in range(M)}, M)
        rows = structure.row_slices(stats.n_features)
        W = np.zeros((stats.cov.shape[0], structure.n_factors))
        evr = []
        for m in range(M):
            C = stats.cov[rows[m], rows[m]]
            w, V = top_eig(C, ks[m])
            W[rows[m], structure.column_slice((m,))] = V * np.sqrt(w)
            evr.append(w / np.trace(C))
        self.loadings_ = W
        self.structure_ = structure
        self.explained_variance_ratio_ = evr
        self.mean_ = stats.mean
        self.n_features_ = stats.n_features
        self.n_samples_ = stats.n_samples
        return self
