"""Classical baselines, each with the estimator API (``fit(Xs)`` returns self, ``loadings_`` of shape
(p, K) in the HCL layout when a structure applies, ``transform(Xs)``):

- :class:`NaiveSVD`: top-K eigenvectors of the sample covariance scaled by sqrt(eigenvalue)
  (the authors' structure-blind reference);
- :class:`PerModalityPCA`: principal components of each modality alone;
- :class:`SLIDE` and :func:`select_structure_slide`: Gaynanova & Li (2019), with a given structure
  exactly as the authors' simulation baseline, or selecting it (group-lasso path + bi-cross-validation);
- :class:`JIVE`: joint and individual variation (Lock et al. 2013), given ranks or a permutation test.
"""
from ._jive import JIVE
from ._pca import NaiveSVD, PerModalityPCA
from ._slide import SLIDE, select_structure_slide, slide_fit_structure

__all__ = ["NaiveSVD", "PerModalityPCA", "SLIDE", "select_structure_slide", "slide_fit_structure", "JIVE"]
