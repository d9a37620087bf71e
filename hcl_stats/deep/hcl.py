"""Deprecated: use :mod:`hcl_stats.contrastive.deep.hcl` (FutureWarning on import)."""
from ..contrastive._deprecation import warn_moved_module
from ..contrastive.deep.hcl import DeepHCL  # noqa: F401

__all__ = ["DeepHCL"]

warn_moved_module("hcl_stats.deep.hcl", "hcl_stats.contrastive.deep.hcl")
