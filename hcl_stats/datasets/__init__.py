"""Real multimodal data sets shipped with hcl_stats (see ``hcl_stats/datasets/README.md``)."""
from ._multiple_features import MULTIPLE_FEATURES_MODALITIES, Bunch, load_multiple_features

__all__ = ["load_multiple_features", "Bunch", "MULTIPLE_FEATURES_MODALITIES"]
