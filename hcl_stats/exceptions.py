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


__all__ = [
    "NotFittedError",
    "IdentifiabilityError",
    "HCLWarning",
    "ConvergenceWarning",
    "EstimationWarning",
    "IdentifiabilityWarning",
    "DataWarning",
]
