"""The generator of the hierarchical multimodal factor model (the authors' simulator and its extensions)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_n_features, check_noise_var, check_random_state, describe, user_stacklevel
from .structure import Structure

__all__ = ["simulate", "SimulatedData", "make_loadings", "latent_covariance", "population_covariance"]

_LATENT_DISTS = ("gaussian", "t", "laplace", "uniform", "rademacher")


@dataclass(frozen=True)
class SimulatedData:
    """One draw of the model ``x = W z + e``.

    Attributes
    ----------
    Xs : list of ndarray of shape (n_samples, p_m)
    loadings : ndarray of shape (p, K)
        Rows by modality, column blocks in ``structure.subsets`` order; zero off the support.
    latents : ndarray of shape (n_samples, K)
    noise_var : ndarray of shape (n_modalities,)
        The mean noise variance of each modality's features.
    noise_var_features : ndarray of shape (p,)
        The noise variance of each feature.
    structure : Structure
    n_features : tuple of int
    latent_cov : ndarray of shape (K, K)
    y : ndarray of shape (n_samples,) or None
        Downstream response (linear: real; logistic: 0/1).
    beta : ndarray of shape (K,) or None
    response : {"linear", "logistic"} or None
    response_noise_var : float or None
    extra : dict
        Free-form additions of callers (empty by default).
    """

    Xs: list
    loadings: np.ndarray
    latents: np.ndarray
    noise_var: np.ndarray
    structure: Structure
    n_features: tuple
    latent_cov: np.ndarray
    y: np.ndarray | None = None
    beta: np.ndarray | None = None
    response: str | None = None
    response_noise_var: float | None = None
    extra: dict = field(default_factory=dict)
    noise_var_features: np.ndarray | None = None

    @property
    def X(self) -> np.ndarray:
        """The modalities stacked column-wise, (n_samples, p)."""
        return np.hstack(self.Xs)

    @property
    def n_samples(self) -> int:
        return self.Xs[0].shape[0]

    def covariance(self) -> np.ndarray:
        """The population covariance W Cov(z) W^T + diag(noise)."""
        nv = self.noise_var if self.noise_var_features is None else self.noise_var_features
        return population_covariance(self.loadings, nv, self.n_features, self.latent_cov)

    def block(self, m: int, subset) -> np.ndarray:
        rows = self.structure.row_slices(self.n_features)[m]
        return self.loadings[rows, self.structure.column_slice(subset)]


def _renamed_rng(random_state, rng, fname):
    """``random_state``, or the deprecated ``rng`` keyword (with a FutureWarning pointing at the
    caller of ``fname``)."""
    if rng is None:
        return random_state
    if random_state is not None:
        raise TypeError(f"{fname}() got both random_state={random_state!r} and its deprecated spelling rng={rng!r}; "
                        "pass random_state only.")
    warnings.warn(f"The 'rng' parameter of {fname} is deprecated; use random_state (same values: None, an int, "
                  "a SeedSequence or a Generator).", FutureWarning, stacklevel=user_stacklevel())
    return rng


def _orthonormal(rng, p, r):
    q, rr = np.linalg.qr(rng.standard_normal((p, r)))
    return q * np.sign(np.diag(rr))  # Haar-distributed


def make_loadings(structure: Structure, n_features, random_state=None, kind: str = "paper", scale: float = 1.0, *,
                  rng=None) -> np.ndarray:
    """Draw the (p, K) block-sparse loading matrix.

    kind="paper": each block W_{m,S} = Q1 diag(a) Q2 with Q1 (p_m x r) orthonormal, Q2 (r x r)
    orthogonal (QR of Gaussian matrices) and a ~ iid Uniform(0.5, 1.5) sorted decreasing, the
    authors' generator. kind="gaussian": iid N(0, scale^2) entries on the active blocks (the
    design used to compare with peers). Blocks are drawn in ``structure.blocks()`` order.

    Parameters
    ----------
    structure : Structure
    n_features : sequence of int, one per modality
    random_state : None, int, SeedSequence or Generator, default None
        The source of randomness (None: fresh entropy).
    kind : {"paper", "gaussian"}, default "paper"
    scale : float, default 1.0
    rng : deprecated
        Old name of ``random_state`` (FutureWarning).

    Returns
    -------
    ndarray of shape (p, K)
    """
    random_state = _renamed_rng(random_state, rng, "make_loadings")
    structure = _check_structure(structure)
    n_features = check_n_features(n_features, structure.n_modalities)
    rng = check_random_state(random_state)
    if kind not in ("paper", "gaussian"):
        raise ValueError(f"loadings must be 'paper', 'gaussian' or a (p, K) array; got {kind!r}.")
    rows = structure.row_slices(n_features)
    W = np.zeros((sum(n_features), structure.n_factors))
    for m, s in structure.blocks():
        r = structure.rank(s)
        cs = structure.column_slice(s)
        pm = n_features[m]
        if kind == "paper":
            if r > pm:
                raise ValueError(f"n_features[{m}] = {pm} is smaller than the rank {r} of subset {s}; the paper generator needs p_m >= r.")
            Q1 = _orthonormal(rng, pm, r)
            Q2 = _orthonormal(rng, r, r)
            a = np.sort(rng.uniform(0.5, 1.5, size=r))[::-1]
            W[rows[m], cs] = scale * (Q1 * a) @ Q2
        else:
            W[rows[m], cs] = scale * rng.standard_normal((pm, r))
    return W


def latent_covariance(structure: Structure, latent_corr=0.0) -> np.ndarray:
    """Covariance of z: identity, or correlation ``latent_corr`` between factors of different subsets.

    A (K, K) array is taken as given (must be symmetric positive definite).
    """
    K = structure.n_factors
    arr = np.asarray(latent_corr, dtype=float)
    if arr.ndim == 0:
        rho = float(arr)
        g = structure.factor_groups()
        C = np.where(g[:, None] != g[None, :], rho, 0.0)
        np.fill_diagonal(C, 1.0)
    elif arr.shape == (K, K):
        C = arr.copy()
        if not np.allclose(C, C.T):
            raise ValueError("latent_corr must be symmetric when given as a (K, K) matrix.")
    else:
        raise ValueError(f"latent_corr must be a float in (-1, 1) or a ({K}, {K}) covariance matrix; got {describe(latent_corr)}.")
    if not np.all(np.isfinite(C)) or np.linalg.eigvalsh(C).min() <= 1e-12:
        raise ValueError(f"latent_corr gives a latent covariance that is not positive definite (K = {K}); got {latent_corr!r}.")
    return C


def population_covariance(loadings, noise_var, n_features, latent_cov=None) -> np.ndarray:
    """Sigma = W C W^T + Psi, with ``noise_var`` a scalar, one variance per modality, or one per
    feature (p,)."""
    W = np.asarray(loadings, dtype=float)
    C = np.eye(W.shape[1]) if latent_cov is None else np.asarray(latent_cov)
    nv = np.asarray(noise_var, float)
    if nv.ndim == 1 and nv.shape[0] == sum(n_features) and nv.shape[0] != len(n_features):
        psi = nv
    else:
        psi = np.repeat(np.broadcast_to(nv, (len(n_features),)), n_features)
    return W @ C @ W.T + np.diag(psi)


def _draw_latents(rng, n, K, dist, C):
    if dist == "gaussian":
        u = rng.standard_normal((n, K))
    elif dist == "t":
        df = 5.0
        u = rng.standard_t(df, size=(n, K)) / np.sqrt(df / (df - 2.0))
    elif dist == "laplace":
        u = rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=(n, K))
    elif dist == "uniform":
        u = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(n, K))
    else:
        u = rng.choice([-1.0, 1.0], size=(n, K))
    if np.allclose(C, np.eye(K)):
        return u
    return u @ np.linalg.cholesky(C).T


def _check_structure(structure):
    if not isinstance(structure, Structure):
        raise ValueError(f"structure must be a hcl_stats.Structure; got {describe(structure)}.")
    return structure


def simulate(structure, n_features, n_samples, noise_var, random_state=None, *, loadings="paper",
             loading_scale=1.0, latent_corr=0.0, latent_dist="gaussian", response=None, beta=None,
             zero_groups=(), response_noise_var=0.1, rng=None) -> SimulatedData:
    """Draw n samples from the hierarchical multimodal factor model ``x = W z + e``.

    Parameters
    ----------
    structure : Structure
    n_features : sequence of int, one per modality
    n_samples : int
    noise_var : float or sequence of float
        The noise variances, in the package's three noise models: a float c is one variance for
        all features ("isotropic"); length M, one per modality ("modality"); length p = sum of
        n_features, one per feature ("feature": diagonal, heteroscedastic noise, as in real data).
    random_state : None, int, SeedSequence or Generator, default None
        The source of randomness (None: fresh entropy, as numpy and scikit-learn). Independent
        child streams are spawned from it for the loadings, the latents, the noise and the
        response, so e.g. the loadings of a seed do not depend on ``n_samples``.
    loadings : {"paper", "gaussian"} or ndarray of shape (p, K)
        The authors' generator (Q1 diag(a) Q2, a ~ U(0.5, 1.5) sorted), iid Gaussian entries
        (times ``loading_scale``) on the active blocks, or a given matrix (zeros off the
        support are enforced).
    loading_scale : float, default 1.0
        Multiplies the drawn loadings ("paper" and "gaussian").
    latent_corr : float or ndarray of shape (K, K)
        Correlation between latent factors of different subsets (0: the model's
        assumption; non-zero breaks identifiability), or a full latent covariance.
    latent_dist : {"gaussian", "t", "laplace", "uniform", "rademacher"}
        Marginal law of the latents, standardised to unit variance (t has 5 degrees of freedom).
    response : {None, "linear", "logistic"}
        Downstream response. Linear: y = z^T beta + N(0, c_y). Logistic: y ~ Bernoulli(sigmoid(
        z^T beta + N(0, c_y))).
    beta : ndarray of shape (K,), optional
        Default: iid Uniform(0, 1), the groups in ``zero_groups`` set to zero, normalised to norm 1.
    zero_groups : iterable of subsets
        Subsets whose coefficients are zero (structures irrelevant to the task).
    response_noise_var : float
        c_y (0.1 in the authors' code).
    rng : deprecated
        Old name of ``random_state`` (FutureWarning).

    Returns
    -------
    SimulatedData
        ``noise_var`` has shape (n_modalities,) (each modality's mean noise variance) and
        ``noise_var_features`` shape (p,).

    Examples
    --------
    >>> from hcl_stats import Structure, simulate
    >>> data = simulate(Structure.full(3, 2), (20, 30, 40), 500, noise_var=1.0, random_state=0)
    >>> [X.shape for X in data.Xs], data.loadings.shape
    ([(500, 20), (500, 30), (500, 40)], (90, 14))
    """
    random_state = _renamed_rng(random_state, rng, "simulate")
    structure = _check_structure(structure)
    M = structure.n_modalities
    n_features = check_n_features(n_features, M)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    p_total = sum(n_features)
    nv_arr = None if isinstance(noise_var, (str, bytes)) else np.asarray(noise_var, dtype=float)
    if nv_arr is not None and nv_arr.ndim == 1 and nv_arr.shape[0] == p_total and p_total != M:
        if not np.all(np.isfinite(nv_arr)) or np.any(nv_arr <= 0):
            raise ValueError(f"noise_var (one per feature) must be positive and finite; got {int(np.sum(~(nv_arr > 0)))} non-positive or non-finite entries.")
        psi_features = nv_arr.copy()
        noise = np.array([psi_features[r].mean() for r in structure.row_slices(n_features)])
    else:
        noise = check_noise_var(noise_var, M)
        psi_features = np.repeat(noise, n_features)
    if latent_dist not in _LATENT_DISTS:
        raise ValueError(f"latent_dist must be one of {_LATENT_DISTS}; got {latent_dist!r}.")
    if response not in (None, "linear", "logistic"):
        raise ValueError(f"response must be None, 'linear' or 'logistic'; got {response!r}.")
    if not (isinstance(response_noise_var, (int, float)) and response_noise_var >= 0):
        raise ValueError(f"response_noise_var must be a non-negative number; got {response_noise_var!r}.")
    rng = check_random_state(random_state)
    r_load, r_lat, r_noise, r_resp = rng.spawn(4)
    p, K = sum(n_features), structure.n_factors

    if isinstance(loadings, str):
        W = make_loadings(structure, n_features, random_state=r_load, kind=loadings, scale=loading_scale)
    else:
        W = np.array(loadings, dtype=float)
        if W.shape != (p, K):
            raise ValueError(f"loadings must have shape (p, K) = ({p}, {K}); got {W.shape}.")
        W[~structure.support_mask(n_features)] = 0.0
    C = latent_covariance(structure, latent_corr)
    Z = _draw_latents(r_lat, int(n_samples), K, latent_dist, C)
    E = r_noise.standard_normal((int(n_samples), p)) * np.sqrt(psi_features)
    X = Z @ W.T + E
    rows = structure.row_slices(n_features)
    Xs = [np.ascontiguousarray(X[:, sl]) for sl in rows]

    y = b = None
    if response is not None:
        cols = structure.column_slices
        if beta is None:
            b = r_resp.uniform(0.0, 1.0, size=K)
            for g in zero_groups:
                b[cols[structure.normalise_subset(g)]] = 0.0
            nb = np.linalg.norm(b)
            if nb == 0:
                raise ValueError("zero_groups removes every subset; beta would be identically zero.")
            b /= nb
        else:
            b = np.asarray(beta, dtype=float)
            if b.shape != (K,):
                raise ValueError(f"beta must have shape (K,) = ({K},); got {b.shape}.")
            for g in zero_groups:
                b = b.copy()
                b[cols[structure.normalise_subset(g)]] = 0.0
        eta = Z @ b + np.sqrt(response_noise_var) * r_resp.standard_normal(int(n_samples))
        if response == "linear":
            y = eta
        else:
            y = (r_resp.uniform(size=int(n_samples)) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return SimulatedData(Xs=Xs, loadings=W, latents=Z, noise_var=noise, noise_var_features=psi_features, structure=structure,
                         n_features=n_features, latent_cov=C, y=y, beta=b, response=response,
                         response_noise_var=float(response_noise_var) if response else None)
