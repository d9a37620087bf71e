"""Deprecated location of the deep contrastive models: use :mod:`hcl_stats.contrastive.deep`.
Importing this package (or one of its modules) emits a FutureWarning; it will be removed in a
future release. Needs torch, as before: ``pip install hcl_stats[deep]``."""
from ..contrastive._deprecation import warn_moved_module
from ..contrastive.deep import (COrAL, CoMM, Cross, CrossSelf, DeepContrastive, DeepHCL, FactorCL,  # noqa: F401
                                SupCon, seed_everything)

__all__ = ["DeepContrastive", "seed_everything", "DeepHCL", "FactorCL", "COrAL", "CoMM", "Cross", "CrossSelf", "SupCon"]

warn_moved_module("hcl_stats.deep", "hcl_stats.contrastive.deep")
