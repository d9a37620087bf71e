"""Deep contrastive models (PyTorch, CPU): HCL with MLP encoders, FactorCL, COrAL, a CoMM-style
fusion model, Cross, Cross+Self and SupCon. The core package never imports this subpackage.

Every model follows one contract (:class:`~hcl_stats.contrastive.deep.training.DeepContrastive`):
``fit(Xs, y=None, Xs_val=None, y_val=None, monitor=None)`` trains with mini-batches drawn by a
seeded ``torch.Generator``, for a fixed number of epochs (``patience=None``, the default of
FactorCL, COrAL and CoMM, as in their official code) or with early stopping on a validation
split; ``transform(Xs)`` returns a numpy representation. Runs are deterministic given
``random_state`` on CPU.

Needs torch: ``pip install hcl_stats[deep]``.
"""
try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("hcl_stats.contrastive.deep needs PyTorch; install it with: pip install hcl_stats[deep]") from exc

from .training import DeepContrastive, seed_everything  # noqa: E402
from .cross import Cross, CrossSelf, SupCon  # noqa: E402
from .coral import COrAL, CoMM  # noqa: E402
from .factorcl import FactorCL  # noqa: E402
from .hcl import DeepHCL  # noqa: E402

__all__ = ["DeepContrastive", "seed_everything", "DeepHCL", "FactorCL", "COrAL", "CoMM", "Cross", "CrossSelf", "SupCon"]
