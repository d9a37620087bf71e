"""Downstream prediction from a representation of the latent factors, with selection of the
task-relevant structures (docs/method.md, section 6).

Every estimator works on a representation ``Z`` of shape (m, K) (m labelled samples), a
response ``y`` of shape (m,), and, for the errors-in-variables estimators, the (K, K)
covariance of the noise the representation carries (``noise_cov``; see
:func:`hcl_stats.representation.representation_noise_cov`). From these it forms

    H = Z^T Z / m - noise_cov,      g = Z^T y / m

(after centring ``Z`` and ``y`` when ``fit_intercept=True``), so that H estimates Cov(z) and g
estimates Cov(z, y) when ``Z = z + noise``. ``fit_intercept`` defaults to True in every
estimator here and in :func:`corrected_moments`; until this release the linear estimators
defaulted to False, the paper's uncentred moments, which ``fit_intercept=False`` still gives.

Estimators (scikit-learn conventions: hyperparameters in ``__init__``, ``fit`` returns self,
learned attributes end in ``_``; scikit-learn's ``check_estimator`` passes but for the
expected failures listed in the tests; ``score`` is R^2 for the linear models and accuracy for
the logistic ones, which accept any two class labels, ``classes_``):

- :class:`CorrectedLeastSquares`: beta = H^{-1} g;
- :class:`GroupLasso`: argmin_b 1/2 b^T H b - g^T b + lambda sum_S w_S ||b_S||_2, lambda = alpha *
  lambda_max, solved by accelerated proximal gradient with a KKT stopping rule;
  :func:`group_lasso_path`; :class:`GroupLassoCV` (K-fold CV, each fold fitted on its
  training part only);
- :class:`LogisticDownstream` (statsmodels ``Logit``) and :class:`GroupLassoLogistic` (cvxpy);
- :func:`structure_tests`: a statsmodels OLS/Logit fit with one Wald/F test per structure;
- metrics: :func:`rotate_coefficients`, :func:`coefficient_errors`, :func:`excess_risk`,
  :func:`plugin_excess_risk`, :func:`bayes_excess_risk`, :func:`population_excess_risk`,
  :func:`support_recovery`, :func:`bayes_weights`.

Layout
------
:mod:`~hcl_stats.downstream.linear` (the corrected moments, :class:`CorrectedLeastSquares`),
:mod:`~hcl_stats.downstream.group_lasso` (solver, path, :class:`GroupLasso`, :class:`GroupLassoCV`),
:mod:`~hcl_stats.downstream.logistic`, :mod:`~hcl_stats.downstream.inference`
(:func:`structure_tests`) and :mod:`~hcl_stats.downstream.risk` (the metrics). Every public name
is importable from ``hcl_stats.downstream``.

Indefinite H
------------
With few labelled samples or an overestimated noise the corrected H can be indefinite and
the problems above unbounded. H is then replaced by its projection onto
{A : A >= floor I}: eigenvalues below ``floor = eig_floor * max(lambda_max(H), tiny)`` are
raised to ``floor`` (the nearest such matrix in Frobenius norm), and an
:class:`~hcl_stats.exceptions.EstimationWarning` names the smallest eigenvalue and how many
were raised. ``H_min_eig_`` and ``n_clipped_`` record it.
"""

from .group_lasso import GroupLasso, GroupLassoCV, group_lasso_lambda_max, group_lasso_path, group_lasso_solve
from .inference import StructureTests, structure_tests
from .linear import CorrectedLeastSquares, corrected_moments, project_psd
from .logistic import GroupLassoLogistic, LogisticDownstream
from .risk import (bayes_excess_risk, bayes_predictions, bayes_weights, coefficient_errors, excess_risk,
                   plugin_excess_risk, population_excess_risk, rotate_coefficients, support_recovery)

__all__ = [
    "corrected_moments",
    "project_psd",
    "CorrectedLeastSquares",
    "group_lasso_solve",
    "group_lasso_lambda_max",
    "group_lasso_path",
    "GroupLasso",
    "GroupLassoCV",
    "LogisticDownstream",
    "GroupLassoLogistic",
    "StructureTests",
    "structure_tests",
    "rotate_coefficients",
    "coefficient_errors",
    "excess_risk",
    "plugin_excess_risk",
    "bayes_weights",
    "bayes_predictions",
    "bayes_excess_risk",
    "population_excess_risk",
    "support_recovery",
]
