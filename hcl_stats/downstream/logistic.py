"""Binary downstream responses: logistic regression (statsmodels ``Logit``) and the group-lasso
logistic regression over structures (cvxpy)."""
from __future__ import annotations

import warnings

import numpy as np

from .._validation import Interval, user_stacklevel, validate_params
from ..base import BaseEstimator
from ..exceptions import ConvergenceWarning
from ..summary import Summary, Table
from ._common import (ClassifierMixin, check_binary, check_n_features, check_weights, check_Zy, column_names, exog,
                      group_norms, resolve_groups, selected_groups)

__all__ = ["LogisticDownstream", "GroupLassoLogistic"]


class LogisticDownstream(ClassifierMixin, BaseEstimator):
    """Binary downstream response by (unpenalised) logistic regression, through statsmodels ``Logit``.

    Parameters
    ----------
    groups : Structure, optional
        Only names the columns in the summary (``{0,1}[0]``, ...).
    fit_intercept : bool, default True

    Attributes
    ----------
    results_ : statsmodels ``LogitResults``
        ``summary()``, ``bse``, ``pvalues``, ``wald_test`` ...
    coef_ : ndarray of shape (K,)
    intercept_ : float
    classes_ : ndarray of shape (2,)
        The two labels of y, sorted; the model is for P(y = ``classes_[1]``). (Until this
        release y had to be coded 0/1; any two labels are now accepted.)
    n_features_in_ : int

    Notes
    -----
    No errors-in-variables correction: use the posterior-mean representation, for which the
    logistic model in z carries over to E[z|x] only approximately (probit-like attenuation by
    Var(beta^T z | x)); with the paper's C_hat x the coefficients are attenuated further.
    """

    _parameter_constraints = {"fit_intercept": [bool]}

    def __init__(self, groups=None, fit_intercept=True):
        self.groups = groups
        self.fit_intercept = fit_intercept

    def _check_fit_data(self, Z, y):
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        Z, y = check_Zy(Z, y, owner=type(self).__name__, numeric_y=False)
        classes, y01 = check_binary(y)
        return Z, classes, y01

    def fit(self, Z, y):
        """Fit the logistic regression of y on Z.

        Parameters
        ----------
        Z : array of shape (m, K)
        y : array of shape (m,), two distinct labels

        Returns
        -------
        self
        """
        import statsmodels.api as sm
        from statsmodels.tools.sm_exceptions import ConvergenceWarning as SMConvergenceWarning

        Z, classes, y01 = self._check_fit_data(Z, y)
        names = column_names(self.groups, Z.shape[1])
        X = exog(Z, names, self.fit_intercept)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = sm.Logit(y01, X).fit(disp=0, method="newton", maxiter=200)
        separated = False
        for w in caught:
            if "separation" in str(w.message).lower():
                separated = True
            elif not issubclass(w.category, (RuntimeWarning, SMConvergenceWarning)):  # both reported below
                warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
        if separated or not res.mle_retvals.get("converged", True):
            warnings.warn("LogisticDownstream: statsmodels Logit did not converge"
                          f"{' (the classes are perfectly separated)' if separated else ' (separable data?)'}; the "
                          "maximum-likelihood estimate may not exist.", ConvergenceWarning, stacklevel=user_stacklevel())
        params = np.asarray(res.params, dtype=float)
        self.results_ = res
        self.intercept_ = float(params[0]) if self.fit_intercept else 0.0
        self.coef_ = params[1:] if self.fit_intercept else params
        self.classes_ = classes
        self.n_features_in_ = Z.shape[1]
        return self

    def decision_function(self, Z):
        """The linear predictor ``Z coef_ + intercept_`` (log-odds of ``classes_[1]``), shape (n_samples,)."""
        self._check_fitted()
        Z = check_n_features(self, Z)
        return Z @ self.coef_ + self.intercept_

    def predict_proba(self, Z):
        """Class probabilities, shape (n_samples, 2), columns in ``classes_`` order."""
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(Z)))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, Z):
        """The more probable label, shape (n_samples,) (values of ``classes_``)."""
        positive = self.decision_function(Z) > 0  # checks fitted first
        return self.classes_[positive.astype(int)]

    def summary(self):
        """The coefficient table as a :class:`~hcl_stats.summary.Summary` (statsmodels' own
        summary, returned here until this release, is ``results_.summary()``)."""
        self._check_fitted()
        res = self.results_
        names = list(res.params.index)
        ci = np.asarray(res.conf_int(), dtype=float)
        rows = [[n, f"{b:.4g}", f"{s:.3g}", f"{z:.3g}", f"{p:.3g}", f"{lo:.3g}", f"{hi:.3g}"]
                for n, b, s, z, p, (lo, hi) in zip(names, np.asarray(res.params), np.asarray(res.bse),
                                                     np.asarray(res.tvalues), np.asarray(res.pvalues), ci)]
        table = Table(["", "coef", "std err", "z", "P>|z|", "[0.025", "0.975]"], rows, align="lrrrrrr")
        info = [("Model", "Logit (statsmodels)"), ("No. observations", str(int(res.nobs))),
                ("Log-likelihood", f"{res.llf:.4f}"), ("Pseudo R-squared", f"{res.prsquared:.4f}"),
                ("Converged", "yes" if res.mle_retvals.get("converged", True) else "no"),
                ("Classes", f"{self.classes_[0]!s} / {self.classes_[1]!s} (modelled)")]
        return Summary(f"{type(self).__name__} results", info=info, tables=[table])


class GroupLassoLogistic(LogisticDownstream):
    """Group-lasso logistic regression over structures, solved with cvxpy:

        argmin_{b, c} (1/m) sum_i [log(1 + exp(eta_i)) - y_i eta_i] + lambda sum_S w_S ||b_S||_2,
        eta = Z b + c,  lambda = alpha * lambda_max,

    with y coded 0/1 (1 for ``classes_[1]``) and lambda_max = max_S ||Z_S^T (y - ybar)|| / (m w_S)
    (the smallest penalty with b = 0; with ``fit_intercept=False``, y - 1/2 replaces y - ybar).

    Parameters
    ----------
    groups : Structure or sequence of K labels, optional
    alpha : float >= 0, default 0.1
    weights : array of shape (n_groups,), optional
    fit_intercept : bool, default True
    solver : str, optional
        A cvxpy solver name (default: cvxpy's choice).

    Attributes
    ----------
    coef_ : ndarray of shape (K,)
    intercept_ : float
    lambda_, lambda_max_ : float
    objective_ : float
    selected_groups_ : list
        The groups with a non-zero coefficient block.
    group_names_ : list of str
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    """

    _parameter_constraints = {"fit_intercept": [bool], "alpha": [Interval(float, 0, None)], "solver": [str, None]}

    def __init__(self, groups=None, alpha=0.1, weights=None, fit_intercept=True, solver=None):
        self.groups = groups
        self.alpha = alpha
        self.weights = weights
        self.fit_intercept = fit_intercept
        self.solver = solver

    def fit(self, Z, y):
        """Fit the penalised logistic regression of y on Z.

        Parameters
        ----------
        Z : array of shape (m, K)
        y : array of shape (m,), two distinct labels

        Returns
        -------
        self
        """
        try:
            import cvxpy as cp
        except ImportError as exc:  # pragma: no cover
            raise ImportError("GroupLassoLogistic needs cvxpy: pip install cvxpy") from exc
        Z, classes, y = self._check_fit_data(Z, y)
        m, K = Z.shape
        labels, names, keys = resolve_groups(self.groups, K)
        G = int(labels.max()) + 1
        w = check_weights(self.weights, G)
        center = y.mean() if self.fit_intercept else 0.5
        grad0 = Z.T @ (y - center) / m
        self.lambda_max_ = float(np.max(group_norms(grad0, labels, G) / w))
        self.lambda_ = float(self.alpha) * self.lambda_max_
        b = cp.Variable(K)
        c = cp.Variable() if self.fit_intercept else 0.0
        eta = Z @ b + c
        loss = cp.sum(cp.logistic(eta) - cp.multiply(y, eta)) / m
        pen = sum(w[j] * cp.norm(b[np.nonzero(labels == j)[0]], 2) for j in range(G))
        prob = cp.Problem(cp.Minimize(loss + self.lambda_ * pen))
        prob.solve(solver=self.solver)
        if prob.status not in ("optimal", "optimal_inaccurate"):
            raise RuntimeError(f"GroupLassoLogistic: cvxpy returned status {prob.status!r}.")
        coef = np.asarray(b.value, dtype=float)
        intercept = float(c.value) if self.fit_intercept else 0.0
        # interior-point solvers leave zero groups at ~1e-6: zero a group when it is tiny and the
        # KKT condition of b_S = 0, ||grad_S|| <= lambda w_S, holds (up to 0.1 %) at the solution
        nb = group_norms(coef, labels, G)
        small = nb <= 1e-4 * max(1.0, float(nb.max()))
        if np.any(small):
            trial = np.where(small[labels], 0.0, coef)
            eta0 = Z @ trial + intercept
            grad = Z.T @ (1.0 / (1.0 + np.exp(-eta0)) - y) / m
            ok = small & (group_norms(grad, labels, G) <= self.lambda_ * w * (1.0 + 1e-3))
            coef = np.where(ok[labels], 0.0, coef)
        self.coef_ = coef
        self.intercept_ = intercept
        self.objective_ = float(prob.value)
        self.group_names_ = names
        self.selected_groups_ = selected_groups(coef, labels, keys)
        self.classes_ = classes
        self.n_features_in_ = K
        return self

    def summary(self):
        """The group norms ||b_S|| as a :class:`~hcl_stats.summary.Summary` (until this release a
        string; ``str(summary())`` gives the text)."""
        self._check_fitted()
        labels = resolve_groups(self.groups, self.coef_.shape[0])[0]
        norms = group_norms(self.coef_, labels, len(self.group_names_))
        table = Table(["group", "||b_S||", "selected"],
                      [[n, f"{v:.4g}", "yes" if v > 0 else "no"] for n, v in zip(self.group_names_, norms)],
                      align="lrl")
        info = [("alpha", f"{self.alpha}"), ("lambda", f"{self.lambda_:.4g}"), ("lambda_max", f"{self.lambda_max_:.4g}"),
                ("Objective", f"{self.objective_:.6g}")]
        return Summary(f"{type(self).__name__} results", info=info, tables=[table])
