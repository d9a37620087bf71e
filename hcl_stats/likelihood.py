"""Gaussian log-likelihood of the factor model Sigma = W W^T + diag(psi), via Woodbury (no p x p inverse)."""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

__all__ = ["loglik_from_cov", "loglik_from_stats", "loglik_samples", "model_covariance", "model_precision"]


def model_covariance(W, psi):
    """Sigma = W W^T + diag(psi), shape (p, p), for loadings W (p, K) and noise variances psi (p,)."""
    return W @ W.T + np.diag(psi)


def model_precision(W, psi):
    """Sigma^{-1} by Woodbury, shape (p, p): Psi^{-1} - Psi^{-1} W (I + W^T Psi^{-1} W)^{-1} W^T Psi^{-1}
    (a K x K solve; the p x p matrix is formed only for the output)."""
    W = np.asarray(W, float)
    psi = np.broadcast_to(np.asarray(psi, float), (W.shape[0],))
    Wp, cM, _ = _woodbury(W, psi)
    P = -Wp @ sla.cho_solve(cM, Wp.T)
    P[np.diag_indices_from(P)] += 1.0 / psi
    return 0.5 * (P + P.T)


def _woodbury(W, psi):
    Wp = W / psi[:, None]                      # Psi^{-1} W
    Mk = np.eye(W.shape[1]) + W.T @ Wp         # I + W^T Psi^{-1} W
    cM = sla.cho_factor(Mk, lower=True)
    logdet = 2.0 * np.sum(np.log(np.diag(cM[0]))) + np.sum(np.log(psi))
    return Wp, cM, logdet


def loglik_from_cov(cov, W, psi, n_samples=1) -> float:
    """Average Gaussian log-likelihood per sample, -1/2 [p log 2pi + log|Sigma| + tr(Sigma^{-1} S)],
    with S the (maximum-likelihood or unbiased) covariance of centred data; times n_samples if given.

    ``cov`` is a (p, p) array or anything with ``cov @ V`` products, ``diagonal()`` and ``shape``
    (a :class:`hcl_stats.covariance.DataStats`: no p x p matrix is formed). O(p^2 K) from an
    array, O(n p K) from the data."""
    p = cov.shape[0]
    psi = np.broadcast_to(np.asarray(psi, float), (p,))
    Wp, cM, logdet = _woodbury(W, psi)
    # tr(Sigma^{-1} S) = tr(Psi^{-1} S) - tr(M^{-1} Wp^T S Wp)
    SWp = cov @ Wp
    diag = np.diag(cov) if isinstance(cov, np.ndarray) else np.asarray(cov.diagonal(), float)
    tr = np.sum(diag / psi) - np.trace(sla.cho_solve(cM, Wp.T @ SWp))
    return float(-0.5 * (p * np.log(2 * np.pi) + logdet + tr) * n_samples)


def loglik_from_stats(stats, W, psi) -> float:
    """The Gaussian log-likelihood of the training data at (W, psi), mean per sample: the mean of
    :func:`loglik_samples` over the rows the statistics came from, i.e. with the maximum-likelihood
    covariance S (n - 1) / n of the unbiased S the statistics keep (scikit-learn's
    ``FactorAnalysis.score`` on the training data). For a population covariance
    (``n_samples=None``): the expected log-likelihood per sample under it.

    ``stats`` is a CovarianceStats or a DataStats (p > n: products with the centred data, no
    p x p matrix)."""
    n = stats.n_samples
    C = stats if hasattr(stats, "Xc") else np.asarray(stats.cov, float)   # DataStats: products only
    ll = loglik_from_cov(C, W, psi)
    if n is None:
        return ll
    # the same expression with S (n - 1) / n: only the trace term scales
    p = C.shape[0]
    psi_b = np.broadcast_to(np.asarray(psi, float), (p,))
    Wp, cM, logdet = _woodbury(np.asarray(W, float), psi_b)
    const = -0.5 * (p * np.log(2 * np.pi) + logdet)
    return float(const + (ll - const) * (n - 1) / n)


def loglik_samples(Xc, W, psi) -> np.ndarray:
    """Per-sample Gaussian log-likelihood of centred rows Xc (n, p)."""
    p = Xc.shape[1]
    psi = np.broadcast_to(np.asarray(psi, float), (p,))
    Wp, cM, logdet = _woodbury(W, psi)
    a = Xc @ Wp                                # (n, K)
    quad = np.sum(Xc * Xc / psi, axis=1) - np.sum(a * sla.cho_solve(cM, a.T).T, axis=1)
    return -0.5 * (p * np.log(2 * np.pi) + logdet + quad)
