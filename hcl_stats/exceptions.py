"""Exceptions and warnings of hcl_stats: one hierarchy, as in statsmodels.

Errors
------
All input errors are :class:`ValueError` subclasses (or plain ``ValueError``) whose
message names the argument, what was expected and what was received.

Warnings
--------
Every warning hcl_stats emits derives from :class:`HCLWarning`, so a user can
silence or escalate all of them at once::

    import warnings
    from hcl_stats.exceptions import HCLWarning
    warnings.simplefilter("error", HCLWarning)
"""
import sys


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``."""


class IdentifiabilityError(ValueError):
    """Raised when a structure violates the identifiability conditions and the
    caller asked for ``identifiability="raise"``."""


class HCLWarning(UserWarning):
    """Base class of every warning emitted by hcl_stats."""


class ConvergenceWarning(HCLWarning):
    """An iterative solver stopped at its iteration limit before its criterion."""


class EstimationWarning(HCLWarning):
    """An estimate is unreliable (indefinite correction, boundary solution, ...)."""


class IdentifiabilityWarning(HCLWarning):
    """The structure violates a rank condition of the identifiability argument."""


class DataWarning(HCLWarning):
    """The data are unusual for the model (near-constant features, tiny n, ...)."""



class DataConversionWarning(DataWarning):
    """The input was converted (a column-vector y raveled), as scikit-learn's warning of that name."""


_COMPATIBLE = {}


def sklearn_compatible(cls, name):
    """``cls``, or, when scikit-learn is already imported, a subclass of ``cls`` and of
    ``sklearn.exceptions.<name>`` (cached), so that code catching or filtering scikit-learn's
    class (``except sklearn.exceptions.NotFittedError``, ``simplefilter(..., DataConversionWarning)``)
    also sees hcl_stats' one. scikit-learn is never imported here: code that names its class has
    imported it already. Instances pickle as plain ``cls``.

    Parameters
    ----------
    cls : type
        An exception or warning class of hcl_stats.
    name : str
        The name of the matching class in :mod:`sklearn.exceptions`.

    Returns
    -------
    type
    """
    sk = sys.modules.get("sklearn.exceptions")
    other = getattr(sk, name, None) if sk is not None else None
    if other is None or issubclass(cls, other):
        return cls
    key = (cls, other)
    if key not in _COMPATIBLE:
        _COMPATIBLE[key] = type(cls.__name__, (cls, other), {
            "__module__": cls.__module__, "__doc__": cls.__doc__,
            "__reduce__": lambda self: (cls, self.args)})
    return _COMPATIBLE[key]


__all__ = [
    "NotFittedError",
    "IdentifiabilityError",
    "HCLWarning",
    "ConvergenceWarning",
    "EstimationWarning",
    "IdentifiabilityWarning",
    "DataWarning",
    "DataConversionWarning",
    "sklearn_compatible",
]
