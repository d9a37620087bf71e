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
from .noise import cov_diag, cov_top_eigh, is_data_stats

__all__ = ["spiked_shrinker", "shrunk_signal_factor", "noise_and_shrunk_factor"]


def spiked_shrinker(eigvals, sigma2, gamma):
    """Frobenius-optimal shrunk signal eigenvalues eta(lambda) (zero inside the bulk).

    Computed without squaring lambda / sigma2 (no overflow for any finite ratio):
    (x + 1 - gamma)^2 - 4 x = (x - 1 - gamma)^2 - 4 gamma, and its square root is taken as
    abs(t) sqrt(1 - 4 gamma / t^2) with t = x - 1 - gamma.
    """
    lam = np.asarray(eigvals, dtype=float)
    sigma2 = float(sigma2)
    if not (np.isfinite(sigma2) and sigma2 > 0):
        raise ValueError(f"sigma2 must be a positive finite noise variance; got {sigma2!r}.")
    if gamma <= 0:
        return np.clip(lam - sigma2, 0.0, None)
    x = lam / sigma2
    edge = (1.0 + np.sqrt(gamma)) ** 2
    out = np.zeros_like(x)
    above = x > edge
    xa = x[above]
    t = xa - 1.0 - gamma                      # > 2 sqrt(gamma) above the edge
    root = t * np.sqrt(np.clip(1.0 - 4.0 * gamma / t / t, 0.0, None))
    ell = 0.5 * (xa + 1.0 - gamma + root)
    d = ell - 1.0
    c2 = np.clip((1.0 - gamma / d / d) / (1.0 + gamma / d), 0.0, 1.0)
    out[above] = sigma2 * d * c2
    return out


def shrunk_signal_factor(cov, sigma2, n_samples, rank, eig=None):
    """Factor F (p, q), q <= rank, with F F^T the shrunk estimate of the signal covariance
    from the top ``rank`` eigenpairs of ``cov`` (gamma = p / n_samples); ``eig`` = (w, V)
    reuses eigenpairs already computed."""
    p = cov.shape[0]
    gamma = 0.0 if n_samples is None else p / float(n_samples)
    w, V = cov_top_eigh(cov, rank) if eig is None else eig
    eta = spiked_shrinker(w, sigma2, gamma)
    keep = eta > 0
    return V[:, keep] * np.sqrt(eta[keep]), {"eigvals": w, "shrunk": eta, "gamma": gamma}


def noise_and_shrunk_factor(cov, n_samples, n_factors, rows=None, block_ranks=None, noise=None, noise_var=None):
    """Noise estimate and shrunk signal factor F (F F^T estimates Sigma_W), from partial
    eigendecompositions only.

    ``rows=None``: one noise variance, the mean of the p - K smallest eigenvalues of ``cov`` (as
    :func:`.noise.bottom_eigenvalue_noise`), and the shrinkage of the top K eigenvalues.
    With ``rows`` (row slices of the modalities) and ``block_ranks`` (K_m, the total rank of the
    subsets containing modality m), ``noise="modality"`` (default): one noise variance per
    modality, the mean of the p_m - K_m smallest eigenvalues of the diagonal block cov[m, m]
    (exact for a population covariance with per-modality noise); ``noise="feature"``: one per
    feature, the maximum-likelihood factor-analysis noise of each diagonal block with K_m
    factors (:func:`.noise.factor_noise`; exact for a population covariance with diagonal
    noise, and equivariant to rescaling any feature). Then the covariance is whitened by these,
    (with ``noise="feature"``) its noise level re-estimated on the whitened scale (mean of the
    p - K smallest whitened eigenvalues, which absorbs the common downward bias of the
    factor-analysis estimates; exactly 1 for a population covariance), shrunk, and unwhitened: F = D^{1/2} F_white. ``noise_var`` (p,)
    replaces the estimate by given noise variances (an oracle, for benchmarks).

    ``cov`` is a dense (p, p) covariance or a :class:`hcl_stats.covariance.DataStats` (n < p):
    then every eigendecomposition above is one of an n x n Gram matrix (of a modality's columns,
    or of all columns after whitening), factor analysis works from the data
    (:func:`.noise.factor_noise`), and no p x p matrix is formed: memory O(n p + n^2 + p K),
    time O(n^2 p) plus O(n p K) per factor-analysis step. Same result as the dense path to rounding.

    Returns (noise variance of each feature (p,), F, info).
    """
    from .noise import factor_noise

    p = cov.shape[0]
    if n_factors >= p:
        raise ValueError(f"the noise estimate needs K < p; got K = {n_factors}, p = {p}.")
    gamma = 0.0 if n_samples is None else p / float(n_samples)
    data = is_data_stats(cov)
    diag = cov_diag(cov)
    trace = float(np.sum(diag))
    if rows is None and noise_var is None:
        w, V = cov_top_eigh(cov, n_factors)
        sigma2 = float((trace - w.sum()) / (p - n_factors))
        sigma2 = max(sigma2, 1e-12 * trace / p)
        F, info = shrunk_signal_factor(cov, sigma2, n_samples, n_factors, eig=(w, V))
        return np.full(p, sigma2), F, info
    noise = "modality" if noise is None else noise
    if np.any(diag <= 0):
        bad = np.flatnonzero(diag <= 0)
        raise ValueError(f"cov: features {bad[:10].tolist()} have zero variance; remove constant features before fitting.")
    wg = None
    sig = np.empty(p)
    fa_info = []
    if noise_var is not None:
        sig[:] = np.asarray(noise_var, float)
    else:
        for r, Km in zip(rows, block_ranks):
            pm = r.stop - r.start
            block = cov.columns(r) if data else cov[r, r]
            if noise == "feature" and Km < pm:
                # a population covariance is fitted exactly; a sample one to the accuracy that matters
                tight = n_samples is None
                sig[r], inf = factor_noise(block, Km, tol=1e-12 if tight else 1e-6, max_iter=20000 if tight else 300)
                fa_info.append(inf)
            elif Km < pm:
                wm, _ = cov_top_eigh(block, Km)
                sig[r] = (np.sum(diag[r]) - wm.sum()) / (pm - Km)
            else:  # no noise subspace inside the block: fall back to the global estimate
                if wg is None:
                    wt, _ = cov_top_eigh(cov, n_factors)
                    wg = float((trace - wt.sum()) / (p - n_factors))
                sig[r] = wg
        # a noise variance is at least a small share of its feature's variance (scale-free floor)
        sig = np.clip(sig, 1e-3 * diag, diag)
    d = np.sqrt(sig)
    if data:
        w, V = cov.top_eigh(n_factors, scale=d)
    else:
        Sw = cov / d[:, None]
        Sw /= d[None, :]
        w, V = top_eigh(Sw, n_factors)
        del Sw
    level = 1.0
    if noise == "feature" and noise_var is None and n_samples is not None:
        level = float((np.sum(diag / sig) - w.sum()) / (p - n_factors))
        level = min(max(level, 0.5), 2.0)   # a bounded correction of a common bias, not a new estimate
    eta = spiked_shrinker(w, level, gamma)
    keep = eta > 0
    F = d[:, None] * (V[:, keep] * np.sqrt(eta[keep]))
    info = {"eigvals": w, "shrunk": eta, "gamma": gamma, "whitened": True, "whitened_noise_level": level,
            "noise": noise if noise_var is None else "given"}
    if fa_info:
        info["factor_analysis"] = fa_info
    return sig * level, F, info
