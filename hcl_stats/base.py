"""A minimal estimator base (scikit-learn contract) without importing scikit-learn."""
from __future__ import annotations

import copy
import inspect

__all__ = ["BaseEstimator", "clone"]


class BaseEstimator:
    """``__init__`` stores hyperparameters only; ``get_params``/``set_params``/``clone`` work,
    and :func:`sklearn.base.clone` works too."""

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep=True):
        return {k: getattr(self, k) for k in self._get_param_names()}

    def set_params(self, **params):
        valid = self._get_param_names()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"Invalid parameter {k!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}.")
            setattr(self, k, v)
        return self

    # -- output container (scikit-learn's set_output API) --------------------------------
    _OUTPUT_CONTAINERS = ("default", "pandas")

    def set_output(self, *, transform=None):
        """Choose what ``transform`` (and ``fit_transform``) return: ``"default"`` (ndarray) or
        ``"pandas"`` (a DataFrame with columns ``get_feature_names_out()``, indexed like the input
        rows); None leaves the choice unchanged. Returns self.

        The choice is kept by :func:`clone` and :func:`sklearn.base.clone`.
        """
        if transform is None:
            return self
        if transform not in self._OUTPUT_CONTAINERS:
            raise ValueError(f"The 'transform' argument of {type(self).__name__}.set_output must be one of "
                             f"{self._OUTPUT_CONTAINERS} or None. Got {transform!r} instead.")
        if transform == "pandas":
            try:
                import pandas  # noqa: F401
            except ImportError:  # pragma: no cover - depends on the environment
                raise ImportError("set_output(transform='pandas') needs pandas: pip install 'hcl_stats[tables]'.") from None
        self._sklearn_output_config = {**getattr(self, "_sklearn_output_config", {}), "transform": transform}
        return self

    def _output_container(self) -> str:
        return getattr(self, "_sklearn_output_config", {}).get("transform", "default")

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        parts = []
        for k in self._get_param_names():
            default = sig.parameters[k].default
            v = getattr(self, k)
            try:
                same = v is default or (type(v) is type(default) and v == default)
            except Exception:
                same = False
            if not same:
                parts.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __sklearn_tags__(self):  # let scikit-learn tools recognise the estimator
        try:
            from sklearn.utils import Tags, TransformerTags, TargetTags, InputTags
        except Exception:  # pragma: no cover
            return None
        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(), input_tags=InputTags())


def clone(estimator):
    """A new unfitted estimator with the same parameters (deep-copied)."""
    params = {k: copy.deepcopy(v) for k, v in estimator.get_params(deep=False).items()}
    new = type(estimator)(**params)
    if hasattr(estimator, "_sklearn_output_config"):
        new._sklearn_output_config = dict(estimator._sklearn_output_config)
    return new
