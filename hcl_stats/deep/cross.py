"""Deprecated: use :mod:`hcl_stats.contrastive.deep.cross` (FutureWarning on import)."""
from ..contrastive._deprecation import warn_moved_module
from ..contrastive.deep.cross import Cross, CrossSelf, SupCon  # noqa: F401

__all__ = ["Cross", "CrossSelf", "SupCon"]

warn_moved_module("hcl_stats.deep.cross", "hcl_stats.contrastive.deep.cross")
