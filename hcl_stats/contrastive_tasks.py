"""Deprecated location of the contrastive data generators: use :mod:`hcl_stats.contrastive.tasks`
(also re-exported by :mod:`hcl_stats.contrastive`). Importing this module emits a FutureWarning;
it will be removed in a future release."""
from .contrastive._deprecation import warn_moved_module
from .contrastive.tasks import (Split, TaskData, factorcl_bayes_accuracy, factorcl_covariance,  # noqa: F401
                                factorcl_synthetic, gaussian_mutual_information, hierarchical_task, trifeature_vectors)

__all__ = ["Split", "TaskData", "factorcl_synthetic", "trifeature_vectors", "hierarchical_task",
           "gaussian_mutual_information", "factorcl_covariance", "factorcl_bayes_accuracy"]

warn_moved_module("hcl_stats.contrastive_tasks", "hcl_stats.contrastive.tasks")
