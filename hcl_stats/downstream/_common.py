"""Shared pieces of the downstream estimators: input checks (scikit-learn's messages where its
contract asks for them), groups of coefficients, and the prediction mixins."""
from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse

from .._validation import Interval, check_array, describe, user_stacklevel
from ..exceptions import DataConversionWarning, NotFittedError, sklearn_compatible
from ..structure import Structure

__all__ = ["DataConversionWarning", "sklearn_compatible", "check_Z", "check_Zy", "check_noise_cov", "check_binary",
           "check_n_features", "resolve_groups", "check_weights", "group_norms", "selected_groups", "exog",
           "column_names", "describe", "LinearPredictorMixin", "ClassifierMixin", "COMMON_CONSTRAINTS"]



# describe(x): the one description of a received value in error messages (hcl_stats._validation);
# sklearn_compatible and DataConversionWarning live with the other exceptions (hcl_stats.exceptions).


COMMON_CONSTRAINTS = {
    "fit_intercept": [bool],
    "eig_floor": [Interval(float, 0, 1, closed="neither")],
}


def check_Z(Z, name="Z", *, min_rows=1):
    """Check a representation: a dense, real, finite 2-D array with ``min_rows`` rows; float64 out.

    Object arrays of numbers are converted; a sparse matrix, complex data, a 1-D array, zero
    rows or zero columns get a ``ValueError`` (``TypeError`` for sparse input or entries that
    are not numbers) naming ``name``, worded as scikit-learn's checks expect.
    """
    if sparse.issparse(Z):
        raise TypeError(f"{name} must be a dense array; got a sparse {type(Z).__name__}: sparse input is not "
                        f"supported (convert it with {name}.toarray()).")
    arr = Z
    if not isinstance(Z, np.ndarray):
        try:
            arr = np.asarray(Z)
        except Exception:  # ragged lists etc.: check_array words the message
            arr = Z
    if isinstance(arr, np.ndarray):
        if np.iscomplexobj(arr):
            raise ValueError(f"{name} must be real-valued (Complex data not supported); got dtype {arr.dtype}.")
        if arr.dtype == object:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name} must hold numbers; converting its dtype object entries to float64 "
                                f"failed: {exc}") from None
        if arr.ndim == 1:
            raise ValueError(f"{name} must be 2-D of shape (n_samples, n_features); got a 1-D array of shape "
                             f"{arr.shape}. Reshape your data with {name}.reshape(-1, 1) for a single feature or "
                             f"{name}.reshape(1, -1) for a single sample.")
        if arr.ndim == 2 and arr.shape[1] == 0:
            raise ValueError(f"{name} must have at least 1 column; got 0 feature(s) (shape={arr.shape}) while a "
                             f"minimum of 1 is required.")
        if arr.ndim == 2 and arr.shape[0] < min_rows:
            raise ValueError(f"{name} must have at least {min_rows} rows (samples); got n_samples = {arr.shape[0]} "
                             f"(shape {arr.shape}).")
    return check_array(arr, name, min_rows=min_rows)


def check_Zy(Z, y, min_rows=2, owner="the estimator", numeric_y=True):
    """Check Z (m, K) and y (m,); y is returned as float64 (``numeric_y``) or as given (class labels,
    which must still be finite when numeric)."""
    Z = check_Z(Z, "Z", min_rows=min_rows)
    if y is None:
        raise ValueError(f"y must be an array of shape (n_samples,): {owner} requires y to be passed, but the "
                         f"target y is None.")
    if sparse.issparse(y):
        raise TypeError(f"y must be a dense 1-D array; got a sparse {type(y).__name__}: sparse input is not supported.")
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and y_arr.shape[1] == 1:
        warnings.warn(f"A column-vector y was passed when a 1d array was expected: y of shape {y_arr.shape} was "
                      f"raveled to shape ({y_arr.shape[0]},).",
                      sklearn_compatible(DataConversionWarning, "DataConversionWarning"), stacklevel=user_stacklevel())
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D of shape (n_samples,); got an array of shape {y_arr.shape}.")
    if y_arr.shape[0] != Z.shape[0]:
        raise ValueError(f"y must have one entry per row of Z ({Z.shape[0]}); got {y_arr.shape[0]}.")
    if not numeric_y and not np.issubdtype(y_arr.dtype, np.number) and y_arr.dtype != bool:
        if y_arr.dtype == object and any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in y_arr):
            raise ValueError("y must not contain missing values (None or NaN).")
        return Z, y_arr
    labels = y_arr
    if np.iscomplexobj(y_arr):
        raise ValueError(f"y must be real-valued (Complex data not supported); got dtype {y_arr.dtype}.")
    try:
        y_arr = y_arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"y must be numeric; got dtype {y_arr.dtype}.") from None
    if not np.all(np.isfinite(y_arr)):
        raise ValueError(f"y must be finite; got {int(np.sum(~np.isfinite(y_arr)))} non-finite entries "
                         f"(Input y contains NaN or infinity).")
    return Z, (y_arr if numeric_y else labels)


def check_n_features(est, Z):
    """Check Z for prediction against the ``n_features_in_`` of a fitted estimator."""
    Z = check_Z(Z, "Z")
    n = est.n_features_in_
    if Z.shape[1] != n:
        raise ValueError(f"Z must have {n} columns (as at fit time); got {Z.shape[1]} (in scikit-learn's words: "
                         f"X has {Z.shape[1]} features, but {type(est).__name__} is expecting {n} features as input).")
    return Z


def check_noise_cov(noise_cov, K):
    if noise_cov is None:
        return None
    N = np.asarray(noise_cov, dtype=np.float64)
    if N.shape != (K, K):
        raise ValueError(f"noise_cov must have shape (K, K) = ({K}, {K}) to match Z; got {describe(noise_cov)}.")
    if not np.all(np.isfinite(N)):
        raise ValueError("noise_cov must be finite; got NaN or infinite entries.")
    if not np.allclose(N, N.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(N).max())):
        raise ValueError("noise_cov must be symmetric; got an asymmetric matrix.")
    return 0.5 * (N + N.T)


def check_binary(y):
    """-> (classes (2,), y01 float (m,)): the two sorted class labels and y coded 0/1."""
    if np.issubdtype(np.asarray(y).dtype, np.floating) and np.any(y != np.round(y)):
        raise ValueError(f"y must hold two class labels; got a continuous target (non-integer values such as "
                         f"{float(y[np.nonzero(y != np.round(y))[0][0]]):.4g}).")
    classes = np.unique(y)
    if classes.size > 2:
        raise ValueError(f"y must be binary: Only binary classification is supported. Got {classes.size} classes "
                         f"{classes[:5].tolist()}{' ...' if classes.size > 5 else ''}.")
    if classes.size < 2:
        raise ValueError(f"y must contain two classes; got only one class {classes.tolist()}.")
    return classes, (y == classes[1]).astype(np.float64)


def resolve_groups(groups, K):
    """-> (labels (K,) int, names list, keys list). Structure: keys are subsets."""
    if groups is None:
        return np.arange(K), [f"z{k}" for k in range(K)], list(range(K))
    if isinstance(groups, Structure):
        if groups.n_factors != K:
            raise ValueError(f"groups is a Structure with K = {groups.n_factors} factors but Z has {K} columns.")
        labels = groups.factor_groups()
        return labels, [groups.label(s) for s in groups.subsets], list(groups.subsets)
    arr = np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != K:
        raise ValueError(f"groups must be a Structure or a sequence of K = {K} group labels (one per column of Z); got {describe(groups)}.")
    keys, labels = np.unique(arr, return_inverse=True)
    keys = [k.item() if hasattr(k, "item") else k for k in keys]
    return labels.astype(int), [str(k) for k in keys], keys


def check_weights(weights, n_groups):
    if weights is None:
        return np.ones(n_groups)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_groups,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weights must be {n_groups} positive finite numbers (one per group); got {describe(weights)}.")
    return w


def group_norms(v, labels, n_groups):
    """||v_S||_2 for each group S, shape (n_groups,)."""
    return np.sqrt(np.bincount(labels, weights=v * v, minlength=n_groups))


def selected_groups(coef, labels, keys):
    """The keys of the groups with a non-zero coefficient block."""
    G = len(keys)
    nz = group_norms(coef, labels, G) > 0
    return [keys[j] for j in range(G) if nz[j]]


def exog(Z, names, fit_intercept):
    """The statsmodels design: a DataFrame of Z with columns ``names`` (and ``const`` first)."""
    import pandas as pd

    df = pd.DataFrame(Z, columns=names)
    if fit_intercept:
        df.insert(0, "const", 1.0)
    return df


def column_names(groups, K):
    """Names of the K columns: ``{0,1}[0]``, ... for a Structure, else ``z0``, ``z1``, ..."""
    if isinstance(groups, Structure):
        out = []
        for s in groups.subsets:
            out += [f"{groups.label(s)}[{j}]" for j in range(groups.rank(s))]
        return out
    return [f"z{k}" for k in range(K)]


class _FittedMixin:
    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise sklearn_compatible(NotFittedError, "NotFittedError")(
                f"This {type(self).__name__} instance is not fitted yet; call fit(Z, y) first.")


class LinearPredictorMixin(_FittedMixin):
    """``predict`` and ``score`` (R^2) of a linear model ``Z coef_ + intercept_``; scikit-learn's
    regressor tags."""

    def predict(self, Z):
        """Linear prediction ``Z coef_ + intercept_``.

        Parameters
        ----------
        Z : array of shape (n_samples, K)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        self._check_fitted()
        Z = check_n_features(self, Z)
        return Z @ self.coef_ + self.intercept_

    def score(self, Z, y, sample_weight=None):
        """Coefficient of determination R^2 of ``predict(Z)`` against y (scikit-learn's
        ``RegressorMixin.score``; 1 is perfect, 0 is the constant mean prediction).

        Parameters
        ----------
        Z : array of shape (n_samples, K)
        y : array of shape (n_samples,)
        sample_weight : array of shape (n_samples,), optional

        Returns
        -------
        float
        """
        self._check_fitted()
        Z = check_n_features(self, Z)
        Z, y = check_Zy(Z, y, min_rows=1, owner=type(self).__name__)
        w = np.ones(y.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != y.shape:
            raise ValueError(f"sample_weight must have shape {y.shape}; got {describe(sample_weight)}.")
        resid = y - self.predict(Z)
        ybar = np.average(y, weights=w)
        ss_tot = float(np.sum(w * (y - ybar) ** 2))
        ss_res = float(np.sum(w * resid ** 2))
        if ss_tot == 0.0:
            return 1.0 if ss_res == 0.0 else 0.0
        return 1.0 - ss_res / ss_tot

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags is None:  # pragma: no cover - scikit-learn not installed
            return tags
        from sklearn.utils import RegressorTags

        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        tags.target_tags.required = True
        return tags


class ClassifierMixin(_FittedMixin):
    """``score`` (accuracy) of a binary classifier with ``predict``; scikit-learn's classifier tags."""

    def score(self, Z, y, sample_weight=None):
        """Mean accuracy of ``predict(Z)`` against y (weighted by ``sample_weight``).

        Parameters
        ----------
        Z : array of shape (n_samples, K)
        y : array of shape (n_samples,)
        sample_weight : array of shape (n_samples,), optional

        Returns
        -------
        float
        """
        pred = self.predict(Z)
        y = np.asarray(y)
        if y.shape != pred.shape:
            raise ValueError(f"y must have shape {pred.shape} (one label per row of Z); got {describe(y)}.")
        return float(np.average(pred == y, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags is None:  # pragma: no cover - scikit-learn not installed
            return tags
        from sklearn.utils import ClassifierTags

        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags(multi_class=False)
        tags.target_tags.required = True
        return tags
