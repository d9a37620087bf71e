"""Contrastive learning of the hierarchical structure (docs/method.md, section 8).

One package, three parts:

- :mod:`hcl_stats.contrastive.linear`: the structure-aware contrastive loss with linear encoders
  (:class:`LinearContrastiveHCL`), its gradient, its minimiser and the check that the learned
  subspaces are those of the covariance-based HCL fit (numpy/scipy only);
- :mod:`hcl_stats.contrastive.tasks`: the data generators of the contrastive benchmarks
  (FactorCL's synthetic task, a vector Trifeature, the hierarchical linear model split into
  pretrain/train/val/test; numpy only);
- :mod:`hcl_stats.contrastive.deep`: the deep models (HCL with MLP encoders, FactorCL, COrAL,
  CoMM-style, Cross, Cross+Self, SupCon). They need PyTorch (``pip install hcl_stats[deep]``)
  and are imported explicitly, ``from hcl_stats.contrastive.deep import DeepHCL``: importing
  :mod:`hcl_stats.contrastive` never imports torch.

The names of the first two parts are re-exported here.
"""
from .linear import (LinearContrastiveHCL, SubspaceCheck, check_contrastive_subspaces, contrastive_batch_loss,
                     contrastive_loss, contrastive_loss_grad, contrastive_minimiser, stack_encoders)
from .tasks import (Split, TaskData, factorcl_bayes_accuracy, factorcl_covariance, factorcl_synthetic,
                    gaussian_mutual_information, hierarchical_task, trifeature_vectors)

from . import linear as _linear, tasks as _tasks  # noqa: E402

__all__ = [*_linear.__all__, *_tasks.__all__]   # the names of the two parts, listed once in each
