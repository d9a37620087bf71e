"""Risks and recovery of a downstream fit against the true model: coefficient errors (after the
per-structure rotation), excess risks (plug-in, Bayes, population), the Bayes predictor and
support recovery (docs/method.md, section 6)."""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

from .._validation import check_array

__all__ = ["rotate_coefficients", "coefficient_errors", "excess_risk", "plugin_excess_risk", "bayes_weights",
           "bayes_predictions", "bayes_excess_risk", "population_excess_risk", "support_recovery"]


def rotate_coefficients(coef, rotations, structure):
    """Express estimated coefficients on the true latent coordinates: R_S^T b_S for each subset S.

    Notes
    -----
    ``metrics.align(W_hat, W, structure, n_features, return_rotations=True)`` returns R_S with
    W_hat_S R_S ~ W_S, hence z_hat_S ~ R_S z_S and b_S^T z_hat_S ~ (R_S^T b_S)^T z_S: the
    estimate comparable with the true beta_S is R_S^T b_S.
    """
    coef = np.asarray(coef, dtype=np.float64)
    if coef.shape != (structure.n_factors,):
        raise ValueError(f"coef must have shape (K,) = ({structure.n_factors},); got {coef.shape}.")
    out = coef.copy()
    for s, cs in structure.column_slices.items():
        if s not in rotations:
            raise ValueError(f"rotations must have one (r_S, r_S) matrix per subset; subset {s} is missing.")
        out[cs] = np.asarray(rotations[s]).T @ coef[cs]
    return out


def coefficient_errors(coef, beta, structure, rotations=None) -> dict:
    """||b_S - beta_S||_2 per subset (keyed by ``structure.label``) and ``"overall"`` ||b - beta||_2,
    after :func:`rotate_coefficients` when ``rotations`` are given."""
    coef = np.asarray(coef, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    if beta.shape != (structure.n_factors,):
        raise ValueError(f"beta must have shape (K,) = ({structure.n_factors},); got {beta.shape}.")
    if rotations is not None:
        coef = rotate_coefficients(coef, rotations, structure)
    elif coef.shape != beta.shape:
        raise ValueError(f"coef must have shape (K,) = ({structure.n_factors},); got {coef.shape}.")
    out = {structure.label(s): float(np.linalg.norm(coef[cs] - beta[cs])) for s, cs in structure.column_slices.items()}
    out["overall"] = float(np.linalg.norm(coef - beta))
    return out


def excess_risk(y, y_pred, y_ref) -> float:
    """mean (y - y_pred)^2 - mean (y - y_ref)^2 (can be negative when y_ref is not the Bayes predictor)."""
    y, y_pred, y_ref = (np.asarray(a, dtype=np.float64).ravel() for a in (y, y_pred, y_ref))
    if not (y.shape == y_pred.shape == y_ref.shape):
        raise ValueError(f"y, y_pred and y_ref must have the same length; got {y.shape[0]}, {y_pred.shape[0]} and {y_ref.shape[0]}.")
    return float(np.mean((y - y_pred) ** 2) - np.mean((y - y_ref) ** 2))


def _check_X(X, p=None):
    if isinstance(X, (list, tuple)):
        X = np.hstack([check_array(x, f"X[{i}]") for i, x in enumerate(X)])
    X = check_array(X, "X")
    if p is not None and X.shape[1] != p:
        raise ValueError(f"X must have p = {p} columns (the stacked modalities); got {X.shape[1]}.")
    return X


def plugin_excess_risk(X, y, encoder_hat, coef_hat, loadings_true, beta_true, mean=None, intercept=0.0) -> float:
    """The paper's excess risk on a test sample: mean (y - (x - mean)^T C_hat^T b_hat - intercept)^2
    - mean (y - x^T C^T beta)^2, with C = (W^T W)^{-1} W^T the plug-in true encoder.

    Parameters
    ----------
    X : ndarray (n_test, p) or list of per-modality arrays
    y : ndarray (n_test,)
    encoder_hat : ndarray (K, p), e.g. :func:`hcl_stats.representation.encoder_matrix`
    coef_hat : ndarray (K,)
    loadings_true : ndarray (p, K), beta_true : ndarray (K,)
    mean : ndarray (p,), optional (the fitted ``hcl.mean_``)
    """
    W = np.asarray(loadings_true, dtype=np.float64)
    X = _check_X(X, W.shape[0])
    Xc = X if mean is None else X - np.asarray(mean, dtype=np.float64)
    pred = Xc @ (np.asarray(encoder_hat).T @ np.asarray(coef_hat)) + intercept
    C = np.linalg.pinv(W)  # (W^T W)^{-1} W^T for full column rank W
    ref = X @ (C.T @ np.asarray(beta_true, dtype=np.float64))
    return excess_risk(y, pred, ref)


def _check_psi(noise_var_features, p):
    psi = np.broadcast_to(np.asarray(noise_var_features, dtype=np.float64), (p,))
    if np.any(psi <= 0):
        raise ValueError(f"noise_var_features must be positive; got minimum {psi.min():.3g}.")
    return psi


def bayes_weights(loadings_true, noise_var_features, beta_true, latent_cov=None) -> np.ndarray:
    """The weights a* of the Bayes predictor E[y | x] = a*^T x under the true model (x centred):
    a* = Sigma^{-1} W Cov(z) beta, Sigma = W Cov(z) W^T + diag(psi), by Woodbury.

    Parameters
    ----------
    loadings_true : ndarray of shape (p, K)
    noise_var_features : float or ndarray of shape (p,)
        The per-feature noise variances psi (positive).
    beta_true : ndarray of shape (K,)
    latent_cov : ndarray of shape (K, K), optional
        Cov(z) (default the identity).

    Returns
    -------
    ndarray of shape (p,)
    """
    W = np.asarray(loadings_true, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"loadings_true must be 2-D of shape (p, K); got shape {W.shape}.")
    p, K = W.shape
    psi = _check_psi(noise_var_features, p)
    beta = np.asarray(beta_true, dtype=np.float64)
    if beta.shape != (K,):
        raise ValueError(f"beta_true must have shape (K,) = ({K},); got {beta.shape}.")
    Cz = np.eye(K) if latent_cov is None else np.asarray(latent_cov, dtype=np.float64)
    if Cz.shape != (K, K):
        raise ValueError(f"latent_cov must have shape (K, K) = ({K}, {K}); got {Cz.shape}.")
    Wt = W if latent_cov is None else W @ np.linalg.cholesky(Cz)    # Sigma = Wt Wt^T + diag(psi)
    Wp = Wt / psi[:, None]
    v = W @ (Cz @ beta)
    vp = v / psi
    return vp - Wp @ sla.solve(np.eye(K) + Wt.T @ Wp, Wt.T @ vp, assume_a="pos")


def bayes_predictions(X, loadings_true, noise_var_features, beta_true, latent_cov=None) -> np.ndarray:
    """E[y | x] = beta^T Cov(z) W^T Sigma^{-1} x under the true model (x centred), shape (n,)."""
    W = np.asarray(loadings_true, dtype=np.float64)
    X = _check_X(X, W.shape[0])
    psi = _check_psi(noise_var_features, W.shape[0])
    return X @ bayes_weights(W, psi, np.asarray(beta_true, dtype=np.float64), latent_cov)


def bayes_excess_risk(X, y, encoder_hat, coef_hat, loadings_true, noise_var_features, beta_true, mean=None,
                      intercept=0.0, latent_cov=None) -> float:
    """Excess risk on a test sample against the Bayes predictor E[y|x] (non-negative in expectation)."""
    W = np.asarray(loadings_true, dtype=np.float64)
    X = _check_X(X, W.shape[0])
    Xc = X if mean is None else X - np.asarray(mean, dtype=np.float64)
    pred = Xc @ (np.asarray(encoder_hat).T @ np.asarray(coef_hat)) + intercept
    return excess_risk(y, pred, bayes_predictions(X, W, noise_var_features, beta_true, latent_cov))


def population_excess_risk(weights, loadings_true, noise_var_features, beta_true, latent_cov=None) -> float:
    """Exact excess risk of the linear predictor x -> a^T x over the Bayes predictor:
    (a - a*)^T Sigma (a - a*), with a* = Sigma^{-1} W Cov(z) beta (no test-sample noise).

    ``weights`` is a = C_hat^T b_hat (p,), e.g. ``encoder.T @ coef``.
    """
    W = np.asarray(loadings_true, dtype=np.float64)
    p, K = W.shape
    a = np.asarray(weights, dtype=np.float64)
    if a.shape != (p,):
        raise ValueError(f"weights must have shape (p,) = ({p},); got {a.shape}.")
    psi = _check_psi(noise_var_features, p)
    Cz = np.eye(K) if latent_cov is None else np.asarray(latent_cov, dtype=np.float64)
    d = a - bayes_weights(W, psi, np.asarray(beta_true, dtype=np.float64), latent_cov)
    u = W.T @ d
    return float(u @ Cz @ u + d @ (psi * d))


def support_recovery(selected, relevant, universe=None) -> dict:
    """Precision, recall and F1 of the selected groups against the relevant ones (and exact match).

    Conventions: precision = 1 when nothing is selected, recall = 1 when nothing is relevant;
    F1 = 0 when precision + recall = 0.
    """
    sel = {tuple(s) if isinstance(s, (list, tuple)) else s for s in selected}
    rel = {tuple(s) if isinstance(s, (list, tuple)) else s for s in relevant}
    if universe is not None:
        uni = {tuple(s) if isinstance(s, (list, tuple)) else s for s in universe}
        extra = (sel | rel) - uni
        if extra:
            raise ValueError(f"selected and relevant must be subsets of universe; got groups {sorted(map(str, extra))} outside it.")
    tp = len(sel & rel)
    precision = tp / len(sel) if sel else 1.0
    recall = tp / len(rel) if rel else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "exact": bool(sel == rel),
            "n_selected": len(sel), "n_relevant": len(rel)}
