"""Eigenvalue shrinkage for the spiked covariance model (the weak-signal option of the fits).

With noise variance sigma^2 and aspect ratio gamma = p / n, a sample eigenvalue lambda of S_n
above the bulk edge sigma^2 (1 + sqrt(gamma))^2 comes from a population spike ell (in units of
sigma^2) with

    ell(x) = ((x + 1 - gamma) + sqrt((x + 1 - gamma)^2 - 4 x)) / 2,   x = lambda / sigma^2,

and the sample eigenvector has squared cosine c^2 = (1 - gamma / (ell - 1)^2) / (1 + gamma / (ell - 1))
with the population one (Baik, Ben Arous and Peche; Paul 2007). The Frobenius-optimal estimate
of the signal part Sigma_W = Sigma - sigma^2 I among estimators u_i eta_i u_i^T (Donoho, Gavish and
Johnstone 2018) shrinks each eigenvalue to eta = sigma^2 (ell - 1) c^2 and sets the eigenvalues
inside the bulk to zero. Its loss per spike, sigma^4 (ell - 1)^2 (1 - c^4), is below the zero
estimator's sigma^4 (ell - 1)^2: this target is never worse than zero (asymptotically).
With ``n_samples=None`` (a population covariance) gamma = 0 and eta = lambda - sigma^2 (no shrinkage).
"""
from __future__ import annotations

import numpy as np

from .linalg import top_eigh

__all__ = ["spiked_shrinker", "shrunk_signal_factor", "noise_and_shrunk_factor"]


def spiked_shrinker(eigvals, sigma2, gamma):
    """Frobenius-optimal shrunk signal eigenvalues eta(lambda) (zero inside the bulk)."""
    lam = np.asarray(eigvals, dtype=float)
    if gamma <= 0:
        return np.clip(lam - sigma2, 0.0, None)
    x = lam / sigma2
    edge = (1.0 + np.sqrt(gamma)) ** 2
    out = np.zeros_like(x)
    above = x > edge
    xa = x[above]
    b = xa + 1.0 - gamma
    ell = 0.5 * (b + np.sqrt(np.clip(b * b - 4.0 * xa, 0.0, None)))
    d = ell - 1.0
    c2 = np.clip((1.0 - gamma / d**2) / (1.0 + gamma / d), 0.0, 1.0)
    out[above] = sigma2 * d * c2
    return out


def shrunk_signal_factor(cov, sigma2, n_samples, rank, eig=None):
    """Factor F (p, q), q <= rank, with F F^T the shrunk estimate of the signal covariance
    from the top ``rank`` eigenpairs of ``cov`` (gamma = p / n_samples); ``eig`` = (w, V)
    reuses eigenpairs already computed."""
    p = cov.shape[0]
    gamma = 0.0 if n_samples is None else p / float(n_samples)
    w, V = top_eigh(cov, rank) if eig is None else eig
    eta = spiked_shrinker(w, sigma2, gamma)
    keep = eta > 0
    return V[:, keep] * np.sqrt(eta[keep]), {"eigvals": w, "shrunk": eta, "gamma": gamma}


def noise_and_shrunk_factor(cov, n_samples, n_factors, rows=None, block_ranks=None):
    """Noise estimate and shrunk signal factor F (F F^T estimates Sigma_W), from partial
    eigendecompositions only.

    ``rows=None``: one noise variance, the mean of the p - K smallest eigenvalues of ``cov`` (as
    :func:`.noise.bottom_eigenvalue_noise`), and the shrinkage of the top K eigenvalues.
    With ``rows`` (row slices of the modalities) and ``block_ranks`` (K_m, the total rank of the
    subsets containing modality m): one noise variance per modality, the mean of the p_m - K_m
    smallest eigenvalues of the diagonal block cov[m, m] (exact for a population covariance with
    per-modality noise), then the covariance is whitened by these, shrunk with unit noise, and
    unwhitened: F = D^{1/2} F_white. Returns (noise variance of each feature (p,), F, info).
    """
    p = cov.shape[0]
    if n_factors >= p:
        raise ValueError(f"the noise estimate needs K < p; got K = {n_factors}, p = {p}.")
    gamma = 0.0 if n_samples is None else p / float(n_samples)
    if rows is None:
        w, V = top_eigh(cov, n_factors)
        sigma2 = float((np.trace(cov) - w.sum()) / (p - n_factors))
        F, info = shrunk_signal_factor(cov, sigma2, n_samples, n_factors, eig=(w, V))
        return np.full(p, sigma2), F, info
    wg = None
    sig = np.empty(p)
    for r, Km in zip(rows, block_ranks):
        pm = r.stop - r.start
        block = cov[r, r]
        if Km < pm:
            wm, _ = top_eigh(block, Km)
            sig[r] = (np.trace(block) - wm.sum()) / (pm - Km)
        else:  # no noise subspace inside the block: fall back to the global estimate
            if wg is None:
                wt, _ = top_eigh(cov, n_factors)
                wg = float((np.trace(cov) - wt.sum()) / (p - n_factors))
            sig[r] = wg
    sig = np.maximum(sig, np.finfo(float).tiny)
    d = np.sqrt(sig)
    Sw = cov / d[:, None]
    Sw /= d[None, :]
    w, V = top_eigh(Sw, n_factors)
    del Sw
    eta = spiked_shrinker(w, 1.0, gamma)
    keep = eta > 0
    F = d[:, None] * (V[:, keep] * np.sqrt(eta[keep]))
    return sig, F, {"eigvals": w, "shrunk": eta, "gamma": gamma, "whitened": True}
