"""Deprecated: use :mod:`hcl_stats.contrastive.deep.coral` (FutureWarning on import)."""
from ..contrastive._deprecation import warn_moved_module
from ..contrastive.deep.coral import COrAL, CoMM, VectorTokenizer, mask_tokens  # noqa: F401
from ..contrastive.deep.coral import mask_tokens as _mask_tokens  # noqa: F401  (the old private name)

__all__ = ["COrAL", "CoMM", "VectorTokenizer"]

warn_moved_module("hcl_stats.deep.coral", "hcl_stats.contrastive.deep.coral")
