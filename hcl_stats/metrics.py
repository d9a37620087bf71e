"""Recovery metrics, and the one ``align`` used by tests, simulations and reports.

Gram errors (docs/method.md, section 5) are rotation-invariant within a subset and need no
alignment; ``align`` is for comparing loadings column by column.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes, subspace_angles

from ._validation import check_n_features

__all__ = [
    "block",
    "gram_errors",
    "overall_gram_error",
    "relative_gram_errors",
    "sin_theta",
    "align",
    "recovery_metrics",
    "block_label",
]


def _check_pair(W_hat, W_true):
    W_hat = np.asarray(W_hat, dtype=float)
    W_true = np.asarray(W_true, dtype=float)
    if W_hat.shape != W_true.shape:
        raise ValueError(f"W_hat and W_true must have the same shape (p, K); got {W_hat.shape} and {W_true.shape}.")
    return W_hat, W_true


def block(W, structure, n_features, m, subset):
    """The (p_m, r_S) block W_{m,S}."""
    rows = structure.row_slices(n_features)
    return np.asarray(W)[rows[m], structure.column_slice(subset)]


def block_label(structure, m, subset) -> str:
    """A stable text key for block (m, S), e.g. 'm0|{0,1,2}' (names are used when set)."""
    return f"{structure.names[m]}|{structure.label(subset)}"


def _block_order(structure):
    # by modality, then in column order within the modality (the authors' Sine_metric order)
    return [(m, s) for m in range(structure.n_modalities) for s in structure.subsets if m in s]


def gram_errors(W_hat, W_true, structure, n_features, relative: bool = False) -> dict:
    """Per-block Gram errors ||W_{m,S} W_{m,S}^T - W_hat_{m,S} W_hat_{m,S}^T||_F.

    With ``relative=True`` each is divided by ||W_{m,S} W_{m,S}^T||_F, so 1 is the error of
    the zero estimator. Keys are (m, subset), ordered by modality then column order.
    """
    W_hat, W_true = _check_pair(W_hat, W_true)
    n_features = check_n_features(n_features, structure.n_modalities)
    out = {}
    for m, s in _block_order(structure):
        A = block(W_true, structure, n_features, m, s)
        B = block(W_hat, structure, n_features, m, s)
        GA = A @ A.T
        e = np.linalg.norm(GA - B @ B.T)
        if relative:
            e /= np.linalg.norm(GA)
        out[(m, s)] = float(e)
    return out


def relative_gram_errors(W_hat, W_true, structure, n_features) -> dict:
    return gram_errors(W_hat, W_true, structure, n_features, relative=True)


def overall_gram_error(W_hat, W_true, relative: bool = False) -> float:
    """||W_hat W_hat^T - W W^T||_F (divided by ||W W^T||_F when ``relative``).

    Never forms a p x p matrix: with the thin QR [W, W_hat] = Q R, the difference equals
    Q (R_1 R_1^T - R_2 R_2^T) Q^T, whose norm is that of the small (2K x 2K) middle factor.
    (The shortcut through ||A^T A||^2 + ||B^T B||^2 - 2||A^T B||^2 cancels catastrophically
    and cannot resolve errors below sqrt(machine epsilon).)
    """
    B, A = _check_pair(W_hat, W_true)
    K = A.shape[1]
    R = np.linalg.qr(np.hstack([A, B]), mode="r")
    R1, R2 = R[:, :K], R[:, K:]
    e = float(np.linalg.norm(R1 @ R1.T - R2 @ R2.T))
    if relative:
        AA = A.T @ A
        e /= float(np.linalg.norm(AA))  # ||W W^T||_F = ||W^T W||_F
    return e


def sin_theta(W_hat, W_true, structure, n_features) -> dict:
    """Per block, the sine of the largest principal angle between the column spaces of
    W_hat_{m,S} and W_{m,S} (1 when the estimate is zero)."""
    W_hat, W_true = _check_pair(W_hat, W_true)
    out = {}
    for m, s in _block_order(structure):
        A = block(W_true, structure, n_features, m, s)
        B = block(W_hat, structure, n_features, m, s)
        if not np.any(B):
            out[(m, s)] = 1.0
            continue
        out[(m, s)] = float(np.sin(np.max(subspace_angles(A, B))))
    return out


def align(W_hat, W_true, structure, n_features=None, return_rotations: bool = False):
    """Rotate each subset's columns of ``W_hat`` onto ``W_true`` (orthogonal Procrustes on the
    rows of the modalities in the subset): the model identifies W only up to one r_S x r_S
    rotation per subset, so this is the comparison the theory allows.

    Returns the aligned copy of ``W_hat`` (and the dict subset -> rotation R_S, W_hat[:, S] R_S).
    """
    W_hat, W_true = _check_pair(W_hat, W_true)
    if n_features is not None:
        mask_rows = lambda s: structure.feature_rows(s, n_features)  # noqa: E731
    else:
        mask_rows = lambda s: slice(None)  # noqa: E731
    out = W_hat.copy()
    rots = {}
    for s, cs in structure.column_slices.items():
        rr = mask_rows(s)
        R, _ = orthogonal_procrustes(W_hat[rr, cs], W_true[rr, cs])
        out[:, cs] = W_hat[:, cs] @ R
        rots[s] = R
    return (out, rots) if return_rotations else out


def recovery_metrics(W_hat, W_true, structure, n_features, *, sin=True) -> dict:
    """Flat dict of the recovery metrics used in studies and reports:
    ``gram[label]``, ``rel_gram[label]``, ``sin[label]``, ``overall`` and ``rel_overall``."""
    out = {}
    g = gram_errors(W_hat, W_true, structure, n_features)
    rg = gram_errors(W_hat, W_true, structure, n_features, relative=True)
    for key in g:
        lab = block_label(structure, *key)
        out[f"gram[{lab}]"] = g[key]
        out[f"rel_gram[{lab}]"] = rg[key]
    if sin:
        for key, v in sin_theta(W_hat, W_true, structure, n_features).items():
            out[f"sin[{block_label(structure, *key)}]"] = v
    out["overall"] = overall_gram_error(W_hat, W_true)
    out["rel_overall"] = overall_gram_error(W_hat, W_true, relative=True)
    return out
