"""Shared pieces of the classical baselines: the fitted-estimator contract and small kernels."""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg as sla

from .._validation import check_Xs, user_stacklevel
from ..base import BaseEstimator
from ..exceptions import NotFittedError
from ..structure import Structure

__all__ = ["MultiViewLoadingsMixin", "polar", "top_eig", "check_structure_arg", "renamed_keywords"]


def renamed_keywords(owner, deprecated, renames, values, defaults) -> dict:
    """Map old keyword spellings (kept for one release) to their new names, with a FutureWarning
    pointing at the user's call.

    Parameters
    ----------
    owner : str
        The function or class (named in messages).
    deprecated : dict
        The extra keyword arguments received (``**deprecated`` of the signature).
    renames : dict
        Old name -> new name.
    values : dict
        New name -> value received.
    defaults : dict
        New name -> its default (a value equal to its default counts as not given).

    Returns
    -------
    dict
        New name -> value to use.
    """
    out = dict(values)
    for old, value in deprecated.items():
        if old not in renames:
            raise TypeError(f"{owner} got an unexpected keyword argument {old!r}.")
        new = renames[old]
        given = values[new]
        if not (given is defaults[new] or (type(given) is type(defaults[new]) and given == defaults[new])):
            raise ValueError(f"{owner}: pass either {new!r} or its deprecated spelling {old!r}, not both; "
                             f"got {new}={given!r} and {old}={value!r}.")
        warnings.warn(f"{owner}: the keyword {old!r} is deprecated and will be removed in a future release; "
                      f"use {new!r}.", FutureWarning, stacklevel=user_stacklevel())
        out[new] = value
    return out


def polar(A):
    """Orthogonal polar factor of A (n x K, n >= K): the U with orthonormal columns maximising tr(U^T A)."""
    L, _, Rt = np.linalg.svd(A, full_matrices=False)
    return L @ Rt


def top_eig(C, k):
    """Top-k eigenpairs (descending) of a symmetric PSD matrix, eigenvalues clipped at 0."""
    n = C.shape[0]
    k = int(min(k, n))
    if k <= 0:
        return np.zeros(0), np.zeros((n, 0))
    w, V = sla.eigh(C, subset_by_index=[n - k, n - 1])
    w, V = w[::-1], V[:, ::-1]
    return np.clip(w, 0.0, None), V


def check_structure_arg(structure, owner, n_modalities=None, allow=()):
    if isinstance(structure, Structure):
        if n_modalities is not None and structure.n_modalities != n_modalities:
            raise ValueError(
                f"Xs has {n_modalities} modalities but the structure of {owner} has n_modalities={structure.n_modalities}.")
        return structure
    if isinstance(structure, str) and structure in allow:
        return structure
    extra = "".join(f" or {a!r}" for a in allow)
    raise ValueError(f"The 'structure' parameter of {owner} must be a hcl_stats.Structure{extra}. Got {structure!r} instead.")


class MultiViewLoadingsMixin(BaseEstimator):
    """transform / fit_transform / encoder for estimators exposing ``loadings_`` (p, K) and ``mean_``.

    The representation is the least-squares (paper) encoder z = (W^T W)^+ W^T (x - mean), as for HCL.
    """

    def _check_fitted(self):
        if not hasattr(self, "loadings_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(Xs) first.")

    def _transform_loadings(self):
        return self.loadings_

    def encoder(self):
        """Linear encoder C = (W^T W)^+ W^T of shape (K, p)."""
        self._check_fitted()
        return np.linalg.pinv(self._transform_loadings())

    def transform(self, Xs):
        """Scores z = C (x - mean), shape (n_samples, K)."""
        self._check_fitted()
        Xs = check_Xs(Xs, n_modalities=len(self.n_features_), n_features=self.n_features_, min_samples=1)
        X = np.hstack(Xs) - self.mean_
        return X @ self.encoder().T

    def fit_transform(self, Xs, y=None):
        return self.fit(Xs).transform(Xs)
