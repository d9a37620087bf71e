"""hcl_stats: Hierarchical Contrastive Learning for multimodal data, as a statistical method.

Main entry points: :class:`Structure`, :func:`simulate`, :class:`HCL`, :mod:`hcl_stats.metrics`.
"""
__version__ = "0.1.0"

from . import exceptions, metrics  # noqa: E402
from .covariance import CovarianceStats, sample_covariance  # noqa: E402
from .metrics import align  # noqa: E402
from .goodness import GoodnessOfFit, StructureComparison, compare_structures, goodness_of_fit  # noqa: E402
from .model import HCL, HCLResults  # noqa: E402
from .estimation.solvers import ALS, EM, PaperGD, SpectralInit  # noqa: E402
from .summary import Summary, Table  # noqa: E402
from .io import load_fit  # noqa: E402
from .selection import SelectionResult, SelectionStability, select_structure  # noqa: E402
from .simulate import SimulatedData, simulate  # noqa: E402
from .structure import Structure  # noqa: E402

__all__ = [
    "__version__",
    "Structure",
    "simulate",
    "SimulatedData",
    "HCL",
    "HCLResults",
    "EM",
    "ALS",
    "PaperGD",
    "SpectralInit",
    "Summary",
    "Table",
    "load_fit",
    "align",
    "metrics",
    "exceptions",
    "sample_covariance",
    "CovarianceStats",
    "select_structure",
    "SelectionResult",
    "SelectionStability",
    "goodness_of_fit",
    "compare_structures",
    "GoodnessOfFit",
    "StructureComparison",
]

from .contrastive import LinearContrastiveHCL  # noqa: E402

__all__ += ["LinearContrastiveHCL"]

from . import downstream, representation, theory  # noqa: E402
from .downstream import CorrectedLeastSquares, GroupLasso, GroupLassoCV, GroupLassoLogistic, LogisticDownstream  # noqa: E402
from .representation import posterior_mean, represent, representation_noise_cov  # noqa: E402
from .theory import CHECKS, run_checks  # noqa: E402

__all__ += ["downstream", "representation", "theory", "CorrectedLeastSquares", "GroupLasso", "GroupLassoCV",
            "GroupLassoLogistic", "LogisticDownstream", "posterior_mean", "represent", "representation_noise_cov",
            "CHECKS", "run_checks"]

from . import baselines, datasets  # noqa: E402
from .baselines import JIVE, SLIDE, NaiveSVD, PerModalityPCA, select_structure_slide  # noqa: E402
from .datasets import load_multiple_features  # noqa: E402

__all__ += ["baselines", "datasets", "NaiveSVD", "PerModalityPCA", "SLIDE", "select_structure_slide", "JIVE",
            "load_multiple_features"]
