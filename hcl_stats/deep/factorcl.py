"""Deprecated: use :mod:`hcl_stats.contrastive.deep.factorcl` (FutureWarning on import)."""
from ..contrastive._deprecation import warn_moved_module
from ..contrastive.deep.factorcl import FactorCL  # noqa: F401

__all__ = ["FactorCL"]

warn_moved_module("hcl_stats.deep.factorcl", "hcl_stats.contrastive.deep.factorcl")
