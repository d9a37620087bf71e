"""Deprecated: use :mod:`hcl_stats.contrastive.deep.training` (FutureWarning on import)."""
from ..contrastive._deprecation import warn_moved_module
from ..contrastive.deep.training import (ConcatCritic, DeepContrastive, augment, clip_loss,  # noqa: F401
                                         deterministic, mlp, nt_xent, seed_everything, supcon_loss)

__all__ = ["seed_everything", "deterministic", "mlp", "augment", "nt_xent", "supcon_loss", "ConcatCritic", "DeepContrastive"]

warn_moved_module("hcl_stats.deep._train", "hcl_stats.contrastive.deep.training")
