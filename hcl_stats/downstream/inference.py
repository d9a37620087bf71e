"""Inference on the downstream coefficients: one joint Wald / F test per structure
(docs/method.md, section 6)."""
from __future__ import annotations

import warnings

import numpy as np

from ..summary import Summary, Table
from ._common import check_binary, check_Zy, column_names, exog, resolve_groups

__all__ = ["StructureTests", "structure_tests"]


class StructureTests:
    """A statsmodels fit of y on the representation, with one joint test per structure.

    Parameters
    ----------
    results : statsmodels results (OLS or Logit)
    rows : list of dict
        One per structure, with keys structure, key, df, statistic, pvalue, test.
    family : {"linear", "logistic"}

    Attributes
    ----------
    results : statsmodels results (OLS or Logit)
        Its own table is ``results.summary()`` (what ``summary()`` returned until this release).
    rows : list of dict
    family : str
    """

    _HEADER = ["structure", "df", "statistic", "p-value", "test"]

    def __init__(self, results, rows, family):
        self.results, self.rows, self.family = results, rows, family

    def to_frame(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def table(self) -> Table:
        """The tests as a :class:`~hcl_stats.summary.Table` (one row per structure)."""
        cells = [[str(r["structure"]), str(r["df"]), f"{r['statistic']:.4g}", f"{r['pvalue']:.3g}", r["test"]]
                 for r in self.rows]
        return Table(self._HEADER, cells, align="lrrrl")

    def summary(self) -> Summary:
        """The per-structure tests as a :class:`~hcl_stats.summary.Summary`.

        Returns
        -------
        Summary
            Title ``Per-structure tests (family): H0: beta_S = 0``, the model, the number of
            observations and the table of :meth:`table`.
        """
        model = "OLS, F tests" if self.family == "linear" else "Logit, chi-square Wald tests"
        info = [("Model", model), ("No. observations", str(int(self.results.nobs)))]
        return Summary(f"Per-structure tests ({self.family}): H0: beta_S = 0", info=info, tables=[self.table()])

    def as_text(self) -> str:
        """``summary().as_text()``."""
        return self.summary().as_text()

    def as_markdown(self) -> str:
        """``summary().as_markdown()``."""
        return self.summary().as_markdown()

    def as_latex(self) -> str:
        """``summary().as_latex()``."""
        return self.summary().as_latex()

    def as_html(self) -> str:
        """``summary().as_html()`` (escaped)."""
        return self.summary().as_html()

    def _repr_html_(self):
        return self.as_html()

    def __str__(self):
        return self.as_text()

    __repr__ = __str__


def structure_tests(Z, y, groups, family="linear", fit_intercept=True):
    """Fit y on Z by statsmodels OLS (``family="linear"``) or Logit (``"logistic"``) and test,
    for each structure S, H0: beta_S = 0 (F test for OLS, chi-square Wald test for Logit).

    Parameters
    ----------
    Z : ndarray of shape (m, K)
        The representation (use the posterior mean: the paper's C_hat x carries correlated
        noise across structures, so a naive test of beta_S = 0 is biased away from its level
        when other structures matter).
    y : ndarray of shape (m,)
        Numeric (linear); two labels (logistic, modelling the larger one).
    groups : Structure or sequence of K labels
    family : {"linear", "logistic"}
    fit_intercept : bool, default True

    Returns
    -------
    StructureTests
    """
    import statsmodels.api as sm

    if family not in ("linear", "logistic"):
        raise ValueError(f"family must be 'linear' or 'logistic'; got {family!r}.")
    Z, y = check_Zy(Z, y, owner="structure_tests", numeric_y=family == "linear")
    K = Z.shape[1]
    labels, names, keys = resolve_groups(groups, K)
    X = exog(Z, column_names(groups, K), fit_intercept)
    if family == "linear":
        res = sm.OLS(y, X).fit()
    else:
        _, y01 = check_binary(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sm.Logit(y01, X).fit(disp=0, method="newton", maxiter=200)
    off = 1 if fit_intercept else 0
    rows = []
    for j, key in enumerate(keys):
        idx = np.nonzero(labels == j)[0] + off
        R = np.zeros((idx.size, K + off))
        R[np.arange(idx.size), idx] = 1.0
        if family == "linear":
            t = res.f_test(R)
            stat, pval, kind = float(np.squeeze(t.fvalue)), float(t.pvalue), "F"
        else:
            t = res.wald_test(R, scalar=True)
            stat, pval, kind = float(np.squeeze(t.statistic)), float(t.pvalue), "chi2"
        rows.append({"structure": names[j], "key": key, "df": int(idx.size), "statistic": stat, "pvalue": pval, "test": kind})
    return StructureTests(res, rows, family)
