"""Representations of the latent factors from a fitted :class:`~hcl_stats.HCL`.

Every representation here is linear, ``z_rep = A (x - mean)`` with an encoder matrix ``A`` of
shape (K, p); they differ in ``A``:

``"paper"``
    The authors' encoder C_hat = (W^T W)^{-1} W^T (docs/method.md, section 4). If W_hat = W it
    is unbiased, C x = z + C e, and it carries the noise ``C Psi C^T`` into the representation:
    a regression of y on it is attenuated (errors in variables) unless corrected, which is what
    :class:`~hcl_stats.downstream.CorrectedLeastSquares` and
    :class:`~hcl_stats.downstream.GroupLasso` do with :func:`representation_noise_cov`.
``"posterior"``
    The posterior mean E[z | x] = (I + W^T Psi^{-1} W)^{-1} W^T Psi^{-1} (x - mean) = W^T Sigma^{-1}
    (x - mean) under the fitted Gaussian model: the Bayes-optimal (least mean squared error)
    linear encoder of z. It is shrunk towards zero, but its error z - E[z|x] is uncorrelated
    with it (Berkson error), so E[y | x] = beta^T E[z | x] when y = beta^T z + noise: plain
    least squares / logistic regression / Wald tests on it need no correction.

``averaged=True`` (either kind): the structure-averaged representation of the contrastive
code (docs/method.md, section 8). For modality m let W_(m) be the (p_m, K_m) loadings of x_m on
the structures containing m. Modality m alone gives an encoding of z_S for every S containing
m: ``(W_(m)^T W_(m))^{-1} W_(m)^T x_m`` (paper) or ``E[z_(m) | x_m]`` (posterior), restricted to
the columns of S. The structure-averaged representation of S is the mean of these
per-modality encodings over the modalities m in S; the blocks are concatenated in
``structure.subsets`` order, shape (n_samples, K).

Which to use when
-----------------
- reproducing the paper, or the errors-in-variables estimators: ``"paper"`` with
  ``representation_noise_cov(hcl)``;
- prediction and statistical inference (OLS/Logit and per-structure Wald tests, logistic
  downstream): ``"posterior"``, no correction needed (under the fitted model);
- a modality-robust code comparable to the deep contrastive version: ``averaged=True``. It
  needs the blocks of one structure to be rotation-aligned across modalities, which the
  "paper" and "init" estimators do NOT provide (each block has its own rotation), so with
  them the average mixes unrelated coordinates.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg as sla

from ._validation import check_Xs, describe
from .exceptions import NotFittedError

__all__ = [
    "encoder_matrix",
    "paper_encoder",
    "paper_encoder_from_loadings",
    "posterior_encoder",
    "posterior_covariance",
    "paper_representation",
    "posterior_mean",
    "structure_averaged_representation",
    "represent",
    "structure_blocks",
    "representation_noise_cov",
    "REPRESENTATION_KINDS",
]

REPRESENTATION_KINDS = ("paper", "posterior")


def _check_hcl(hcl):
    needed = ("loadings_", "noise_var_features_", "mean_", "structure_", "n_features_")
    if not all(hasattr(hcl, a) for a in needed):
        if hasattr(hcl, "get_params"):
            raise NotFittedError(f"This {type(hcl).__name__} instance is not fitted yet; call fit(Xs) first.")
        raise ValueError(f"hcl must be a fitted hcl_stats.HCL (with attributes {needed}); got {describe(hcl)}.")
    W = np.asarray(hcl.loadings_, dtype=np.float64)
    psi = np.asarray(hcl.noise_var_features_, dtype=np.float64)
    if np.any(psi <= 0):
        raise ValueError(f"hcl.noise_var_features_ must be positive for the posterior encoder; got minimum {psi.min():.3g}.")
    return W, psi


def _check_kind(kind):
    if kind not in REPRESENTATION_KINDS:
        raise ValueError(f"kind must be one of {REPRESENTATION_KINDS}; got {kind!r}.")
    return kind


def paper_encoder_from_loadings(loadings) -> np.ndarray:
    """The paper's encoder C = (W^T W)^{-1} W^T of a loading matrix (docs/method.md, section 4).

    The one implementation of the paper's encoder in the package: :func:`paper_encoder`,
    :meth:`hcl_stats.HCL.encoder` and the real-data study call it.

    Parameters
    ----------
    loadings : array-like of shape (p, K)
        W, full column rank for the closed form.

    Returns
    -------
    ndarray of shape (K, p)
        (W^T W)^{-1} W^T by a Cholesky solve; the pseudo-inverse W^+ (the minimum-norm
        least-squares encoder) when W^T W is singular.
    """
    W = np.asarray(loadings, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"loadings must be a 2-d array of shape (p, K); got an array of shape {W.shape}.")
    G = W.T @ W
    try:
        return sla.solve(G, W.T, assume_a="pos")
    except (sla.LinAlgError, ValueError):
        return np.linalg.pinv(W)


def _posterior_enc(W, psi):
    Wp = W / psi[:, None]                         # Psi^{-1} W
    Mk = np.eye(W.shape[1]) + W.T @ Wp            # I + W^T Psi^{-1} W
    return sla.cho_solve(sla.cho_factor(Mk, lower=True), Wp.T)


def paper_encoder(hcl) -> np.ndarray:
    """The paper's encoder C_hat = (W^T W)^{-1} W^T, of shape (K, p)."""
    W, _ = _check_hcl(hcl)
    return paper_encoder_from_loadings(W)


def posterior_encoder(hcl) -> np.ndarray:
    """The posterior-mean encoder (I + W^T Psi^{-1} W)^{-1} W^T Psi^{-1}, of shape (K, p).

    Notes
    -----
    Equal to W^T (W W^T + Psi)^{-1} (Woodbury); computed without any p x p matrix.
    """
    W, psi = _check_hcl(hcl)
    return _posterior_enc(W, psi)


def posterior_covariance(hcl) -> np.ndarray:
    """Cov(z | x) = (I + W^T Psi^{-1} W)^{-1} under the fitted model, shape (K, K)."""
    W, psi = _check_hcl(hcl)
    Mk = np.eye(W.shape[1]) + W.T @ (W / psi[:, None])
    return sla.cho_solve(sla.cho_factor(Mk, lower=True), np.eye(W.shape[1]))


def _averaged_enc(W, psi, structure, n_features, kind):
    rows = structure.row_slices(n_features)
    cols = structure.column_slices
    K, p = W.shape[1], W.shape[0]
    A = np.zeros((K, p))
    for m in range(structure.n_modalities):
        subs = structure.subsets_containing(m)
        idx = np.concatenate([np.arange(cols[s].start, cols[s].stop) for s in subs])
        Wm = W[rows[m]][:, idx]
        if kind == "paper":
            if Wm.shape[1] > Wm.shape[0]:
                raise ValueError(
                    f"averaged=True with kind='paper' needs K_m <= p_m for every modality; modality {m} has "
                    f"{Wm.shape[1]} factors and {Wm.shape[0]} features.")
            Am = paper_encoder_from_loadings(Wm)
        else:
            Am = _posterior_enc(Wm, psi[rows[m]])
        pos = 0
        for s in subs:
            r = cols[s].stop - cols[s].start
            A[cols[s], rows[m]] += Am[pos:pos + r] / len(s)
            pos += r
    return A


def encoder_matrix(hcl, kind: str = "paper", averaged: bool = False) -> np.ndarray:
    """The (K, p) encoder matrix A of a representation ``z_rep = A (x - mean)``.

    Parameters
    ----------
    hcl : fitted HCL
    kind : {"paper", "posterior"}
    averaged : bool, default False
        Structure-averaged version (see the module docstring).
    """
    _check_kind(kind)
    if not isinstance(averaged, (bool, np.bool_)):
        raise ValueError(f"averaged must be a bool; got {describe(averaged)}.")
    W, psi = _check_hcl(hcl)
    if averaged:
        return _averaged_enc(W, psi, hcl.structure_, hcl.n_features_, kind)
    return paper_encoder_from_loadings(W) if kind == "paper" else _posterior_enc(W, psi)


def represent(hcl, Xs, kind: str = "paper", averaged: bool = False) -> np.ndarray:
    """The representation ``A (x - mean)`` of each sample, shape (n_samples, K).

    Parameters
    ----------
    hcl : fitted HCL
    Xs : list of ndarray of shape (n_samples, p_m)
        After a fit with ``HCL(missing="em")`` rows may contain NaN (each row needs one observed
        value): ``kind="posterior"`` gives E[z | x_o] given the observed entries x_o, ``kind="paper"``
        the least-squares representation on the observed features, (W_o^T W_o)^+ W_o^T (x_o - mean_o),
        as ``HCL.transform`` (coordinates no observed feature loads on: 0). Complete rows get
        ``A (x - mean)`` as without NaN. ``averaged=True`` is refused for rows with NaN.
    kind : {"paper", "posterior"}
    averaged : bool, default False
    """
    A = encoder_matrix(hcl, kind=kind, averaged=averaged)
    if getattr(hcl, "missing", "error") != "em":
        Xs = check_Xs(Xs, n_modalities=hcl.structure_.n_modalities, n_features=hcl.n_features_, min_samples=1)
        return (np.hstack(Xs) - hcl.mean_) @ A.T
    from .incomplete import check_incomplete

    Xs = check_incomplete(Xs, n_modalities=hcl.structure_.n_modalities, n_features=hcl.n_features_, min_samples=1,
                          check_features=False)[0]
    X = np.hstack(Xs)
    incomplete = np.isnan(X).any(axis=1)
    if not incomplete.any():
        return (X - hcl.mean_) @ A.T
    if averaged:
        rows = np.flatnonzero(incomplete)
        raise ValueError(f"Xs: rows {rows[:10].tolist()}{' ...' if rows.size > 10 else ''} ({rows.size} in all) have "
                         "missing entries (NaN), and the structure-averaged representation (averaged=True) averages "
                         "per-modality encodings of complete modalities, which these rows do not have; use "
                         "averaged=False (kind='posterior' gives E[z | observed entries], kind='paper' the least "
                         "squares on the observed features) or drop the incomplete rows.")
    from .estimation.missing import paper_representation_incomplete, posterior_moments_incomplete

    Z = np.empty((X.shape[0], A.shape[0]))
    Z[~incomplete] = (X[~incomplete] - hcl.mean_) @ A.T
    Xi = X[incomplete]
    if kind == "posterior":
        Z[incomplete] = posterior_moments_incomplete(Xi, hcl.mean_, hcl.loadings_, hcl.noise_var_features_)[0]
    else:
        Z[incomplete] = paper_representation_incomplete(Xi, hcl.mean_, hcl.loadings_)
    return Z


def paper_representation(hcl, Xs) -> np.ndarray:
    """The paper's z_hat = C_hat (x - mean), shape (n_samples, K) (same as ``hcl.transform``)."""
    return represent(hcl, Xs, "paper")


def posterior_mean(hcl, Xs) -> np.ndarray:
    """E[z | x] under the fitted model, shape (n_samples, K)."""
    return represent(hcl, Xs, "posterior")


def structure_averaged_representation(hcl, Xs, kind: str = "paper") -> np.ndarray:
    """Per structure S, the mean over m in S of modality m's own encoding of z_S; (n_samples, K)."""
    return represent(hcl, Xs, kind, averaged=True)


def structure_blocks(Z, structure) -> dict:
    """Split a (n_samples, K) representation into its per-structure blocks: {subset: (n, r_S)}."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != structure.n_factors:
        raise ValueError(f"Z must have shape (n_samples, K) with K = {structure.n_factors}; got shape {Z.shape}.")
    return {s: Z[:, cs] for s, cs in structure.column_slices.items()}


def representation_noise_cov(hcl, kind: str = "paper", averaged: bool = False) -> np.ndarray:
    """Covariance of the model noise carried into a representation: A diag(psi) A^T, (K, K).

    For ``kind="paper"`` this is C_hat diag(psi) C_hat^T, the matrix subtracted in the
    errors-in-variables correction H = Z^T Z / m - C_hat diag(psi) C_hat^T (docs/method.md,
    section 6). For ``kind="posterior"`` it is returned for completeness, but the posterior
    mean needs no correction (its error is of Berkson type): pass ``noise_cov=None`` to the
    downstream estimators.
    """
    A = encoder_matrix(hcl, kind=kind, averaged=averaged)
    _, psi = _check_hcl(hcl)
    N = (A * psi[None, :]) @ A.T
    return 0.5 * (N + N.T)
