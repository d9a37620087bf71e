"""Gaussian log-likelihood of the factor model Sigma = W W^T + diag(psi), via Woodbury (no p x p inverse)."""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

__all__ = ["loglik_from_cov", "loglik_samples", "model_covariance"]


def model_covariance(W, psi):
    return W @ W.T + np.diag(psi)


def _woodbury(W, psi):
    Wp = W / psi[:, None]                      # Psi^{-1} W
    Mk = np.eye(W.shape[1]) + W.T @ Wp         # I + W^T Psi^{-1} W
    cM = sla.cho_factor(Mk, lower=True)
    logdet = 2.0 * np.sum(np.log(np.diag(cM[0]))) + np.sum(np.log(psi))
    return Wp, cM, logdet


def loglik_from_cov(cov, W, psi, n_samples=1) -> float:
    """Average Gaussian log-likelihood per sample, -1/2 [p log 2pi + log|Sigma| + tr(Sigma^{-1} S)],
    with S the (maximum-likelihood or unbiased) covariance of centred data; times n_samples if given."""
    p = cov.shape[0]
    psi = np.broadcast_to(np.asarray(psi, float), (p,))
    Wp, cM, logdet = _woodbury(W, psi)
    # tr(Sigma^{-1} S) = tr(Psi^{-1} S) - tr(M^{-1} Wp^T S Wp)
    SWp = cov @ Wp
    tr = np.sum(np.diag(cov) / psi) - np.trace(sla.cho_solve(cM, Wp.T @ SWp))
    return float(-0.5 * (p * np.log(2 * np.pi) + logdet + tr) * n_samples)


def loglik_samples(Xc, W, psi) -> np.ndarray:
    """Per-sample Gaussian log-likelihood of centred rows Xc (n, p)."""
    p = Xc.shape[1]
    psi = np.broadcast_to(np.asarray(psi, float), (p,))
    Wp, cM, logdet = _woodbury(W, psi)
    a = Xc @ Wp                                # (n, K)
    quad = np.sum(Xc * Xc / psi, axis=1) - np.sum(a * sla.cho_solve(cM, a.T).T, axis=1)
    return -0.5 * (p * np.log(2 * np.pi) + logdet + quad)
