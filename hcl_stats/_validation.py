"""Input checks at the public boundary.

Every message names the argument, what was expected and what was received, and is
built as a single f-string.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "describe",
    "user_stacklevel",
    "check_Xs",
    "check_n_features",
    "check_random_state",
    "check_scalar",
    "check_option",
    "check_noise_var",
    "validate_params",
    "Interval",
    "Options",
]


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    r = repr(x)
    if len(r) > 80:
        r = r[:77] + "..."
    return f"{r} (type {type(x).__name__})"


describe = _describe   # public name (simulate, goodness and others describe a bad value in error messages)


def check_random_state(random_state=None):
    """Normalise ``random_state`` (None, int, SeedSequence, BitGenerator or Generator) to a numpy
    Generator: None = fresh entropy, an int = a reproducible seed, a Generator is used as is."""
    rs = random_state
    if rs is None or isinstance(rs, (numbers.Integral, np.random.SeedSequence, np.random.Generator)):
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and rs < 0:
            raise ValueError(f"random_state must be a non-negative integer seed; got {rs}.")
        if isinstance(rs, bool):
            raise ValueError(f"random_state must be None, an int seed, a SeedSequence or a Generator; got {rs!r}.")
        return np.random.default_rng(rs)
    if isinstance(rs, np.random.BitGenerator):
        return np.random.Generator(rs)
    raise ValueError(
        f"random_state must be None, an int seed, a numpy SeedSequence or a numpy Generator; got {_describe(rs)}."
    )


def check_array(X, name: str, *, min_rows: int = 1, min_cols: int = 1, allow_nan: bool = False,
                nan_hint: str = "") -> np.ndarray:
    """Check one 2-D float array (finite, numeric) and return it as float64.

    ``allow_nan=True`` accepts NaN (a missing value) but still refuses infinite entries;
    ``nan_hint`` is appended to the message refusing NaN (e.g. how to fit incomplete data)."""
    if hasattr(X, "dtype") and hasattr(X, "shape") and not isinstance(X, np.ndarray):
        # pandas DataFrame, memmap subclasses pass; other array-likes are converted
        X = np.asarray(X)
    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except Exception as exc:  # ragged lists etc.
            raise ValueError(f"{name} must be a 2-D numeric array; got {_describe(X)} ({exc}).") from None
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{name} must have a numeric dtype; got dtype {X.dtype}.")
    if np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued; got dtype {X.dtype}.")
    if X.ndim != 2:
        hint = " Reshape a single feature with X.reshape(-1, 1)." if X.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D of shape (n_samples, n_features); got {X.ndim}-D array of shape {X.shape}.{hint}")
    if X.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows (samples); got shape {X.shape}.")
    if X.shape[1] < min_cols:
        raise ValueError(f"{name} must have at least {min_cols} columns (features); got shape {X.shape}.")
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        n_nan = int(np.isnan(X).sum())
        n_inf = int(np.isinf(X).sum())
        if n_inf:
            raise ValueError(f"{name} must be finite; got {n_nan} NaN and {n_inf} infinite entries (NaN may mark a "
                             "missing value; infinity is never accepted).")
        if not allow_nan:
            raise ValueError(f"{name} must be finite; got {n_nan} NaN entries.{nan_hint}")
    return X


MISSING_HINT = (" NaN marks a missing value: fit incomplete data with HCL(..., missing=\"em\") (EM over the "
                "observed entries), or remove or impute the missing values first.")


def check_Xs(Xs, *, n_modalities: int | None = None, n_features=None, min_samples: int = 2,
             name: str = "Xs", allow_nan: bool = False, nan_hint: str = MISSING_HINT) -> list[np.ndarray]:
    """Check a multi-view data set ``Xs``: a list of (n_samples, p_m) arrays.

    Returns a list of float64 arrays. Raises ``ValueError`` naming ``Xs`` (and the
    offending modality) for a wrong number of modalities, mismatched row counts, NaN
    (unless ``allow_nan``; the message then names ``missing="em"``) or inf, non-numeric
    dtype, 1-D arrays, or fewer than ``min_samples`` rows.

    ``allow_nan=True`` accepts NaN entries (missing values) and checks nothing about their
    pattern; :func:`hcl_stats.incomplete.check_incomplete` checks that (all-NaN rows,
    features never observed, ...).
    """
    if isinstance(Xs, np.ndarray) or not isinstance(Xs, Sequence) or isinstance(Xs, (str, bytes)):
        raise ValueError(
            f"{name} must be a list of 2-D arrays, one (n_samples, n_features_m) array per modality; got {_describe(Xs)}."
        )
    if len(Xs) == 0:
        raise ValueError(f"{name} must contain at least one modality; got an empty list.")
    if n_modalities is not None and len(Xs) != n_modalities:
        raise ValueError(f"{name} must contain {n_modalities} modalities (one array each) to match the structure; got {len(Xs)}.")
    out = [check_array(X, f"{name}[{m}]", allow_nan=allow_nan, nan_hint=nan_hint) for m, X in enumerate(Xs)]
    rows = [X.shape[0] for X in out]
    if len(set(rows)) > 1:
        raise ValueError(f"{name}: every modality must have the same number of rows (samples); got row counts {rows}.")
    if rows[0] < min_samples:
        raise ValueError(f"{name} must have at least {min_samples} samples for this model; got {rows[0]}.")
    if n_features is not None:
        got = tuple(X.shape[1] for X in out)
        if got != tuple(n_features):
            raise ValueError(f"{name}: the modalities must have {tuple(n_features)} features (as at fit time); got {got}.")
    return out


def check_n_features(n_features, n_modalities: int | None = None, name: str = "n_features") -> tuple[int, ...]:
    """Check a sequence of positive feature counts, one per modality."""
    if isinstance(n_features, (numbers.Integral, str, bytes)) or not isinstance(n_features, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of positive integers, one per modality; got {_describe(n_features)}.")
    vals = list(n_features)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in vals) or any(v < 1 for v in vals):
        raise ValueError(f"{name} must contain positive integers; got {tuple(vals)!r}.")
    if n_modalities is not None and len(vals) != n_modalities:
        raise ValueError(f"{name} must have one entry per modality ({n_modalities}); got {len(vals)} entries {tuple(int(v) for v in vals)}.")
    return tuple(int(v) for v in vals)


def check_noise_var(noise_var, n_modalities: int, name: str = "noise_var") -> np.ndarray:
    """A positive scalar or one positive value per modality -> array (n_modalities,)."""
    arr = np.asarray(noise_var, dtype=float) if not isinstance(noise_var, (str, bytes)) else None
    if arr is None or arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n_modalities):
        raise ValueError(f"{name} must be a positive number or a sequence of {n_modalities} positive numbers (one per modality); got {_describe(noise_var)}.")
    arr = np.broadcast_to(arr, (n_modalities,)).astype(float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be positive and finite; got {noise_var!r}.")
    return arr


class Interval:
    """A numeric constraint ``[left, right]`` (``closed`` in {"both", "left", "right", "neither"})."""

    def __init__(self, kind, left=None, right=None, closed="both"):
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def is_satisfied_by(self, v) -> bool:
        if isinstance(v, bool):
            return False
        if self.kind is int and not isinstance(v, numbers.Integral):
            return False
        if self.kind is float and not isinstance(v, numbers.Real):
            return False
        if isinstance(v, numbers.Real) and not np.isfinite(v) and not (self.right is None and v == np.inf):
            return False
        lo_ok = self.left is None or (v >= self.left if self.closed in ("both", "left") else v > self.left)
        hi_ok = self.right is None or (v <= self.right if self.closed in ("both", "right") else v < self.right)
        return bool(lo_ok and hi_ok)

    def __str__(self):
        kind = "an int" if self.kind is int else "a float"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        lo = "-inf" if self.left is None else self.left
        hi = "inf" if self.right is None else self.right
        return f"{kind} in {lb}{lo}, {hi}{rb}"


class Options:
    """A constraint to a fixed set of values."""

    def __init__(self, *values):
        self.values = values

    def is_satisfied_by(self, v) -> bool:
        return any(v == x and type(v) is type(x) or (v is x) for x in self.values)

    def __str__(self):
        return "one of {" + ", ".join(repr(v) for v in self.values) + "}"


def _constraint_str(c) -> str:
    if c is None:
        return "None"
    if c is bool:
        return "a bool"
    if c is callable:
        return "a callable"
    if isinstance(c, type):
        return f"an instance of {c.__name__}"
    return str(c)


def _satisfies(c, v) -> bool:
    if c is None:
        return v is None
    if c is bool:
        return isinstance(v, (bool, np.bool_))
    if c is callable:
        return callable(v)
    if isinstance(c, type):
        return isinstance(v, c)
    return c.is_satisfied_by(v)


def validate_params(owner: str, params: dict, constraints: dict) -> None:
    """Check ``params`` against a constraints table (scikit-learn style).

    Message: "The 'alpha' parameter of HCL must be a float in [0, inf). Got -0.1 instead."
    """
    for key, cons in constraints.items():
        if key not in params:
            continue
        v = params[key]
        if any(_satisfies(c, v) for c in cons):
            continue
        allowed = " or ".join(_constraint_str(c) for c in cons)
        raise ValueError(f"The {key!r} parameter of {owner} must be {allowed}. Got {v!r} instead.")


def check_scalar(x, name: str, constraint: Interval):
    if not constraint.is_satisfied_by(x):
        raise ValueError(f"{name} must be {constraint}; got {x!r}.")
    return x


def check_option(x, name: str, options) -> str:
    if x not in options:
        raise ValueError(f"{name} must be one of {sorted(options)!r}; got {x!r}.")
    return x


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the calling function point at the first
    frame outside the hcl_stats package (the user's call), however deep inside the package the
    warning is raised. Use as ``warnings.warn(msg, Category, stacklevel=user_stacklevel())``."""
    import os
    import sys

    pkg = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)   # the function that will call warnings.warn: stacklevel 1
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg):
        frame = frame.f_back
        level += 1
    return level
