"""The structure-aware contrastive objective with linear encoders (docs/method.md, section 8).

One linear encoder per (modality m, structure S containing m): h_m^S(x) = A_{m,S} (x_m - mean_m),
A_{m,S} of shape (r_S, p_m). Positive pairs are (h_m^S(x_i), h_{m'}^S(x_i)): the same sample, the
same structure, two modalities m, m' that share it. Negative pairs are the same quantities between
different samples i != j.

The loss
--------
The authors' deep loss L2-normalises every h and scores the pairs linearly
(mean off-diagonal Phi - mean diagonal Phi). With linear encoders and no normalisation that loss
is unbounded below (scale A up); with normalisation its minimiser is not available in closed form.
We therefore keep the positives linear and make the negatives quadratic (the *spectral contrastive
loss*, HaoChen et al., 2021), which bounds the loss and makes its minimiser explicit. With
g_m(x) = (h_m^S(x))_S in R^K (zero blocks for S not containing m),
Phi^{mm'}_{ij} = <g_m(x_i), g_{m'}(x_j)> = sum_{S ∋ m, m'} <h_m^S(x_i), h_{m'}^S(x_j)> and

    L(A) = sum_{m, m'} ( -2 E_i[Phi^{mm'}_{ii}] + E_{i != j}[(Phi^{mm'}_{ij})^2] )
           + 2 sum_m sigma_m^2 sum_{S ∋ m} ||A_{m,S}||_F^2               (self-pair debiasing)
           + lambda * overlap(A).

The self pairs m = m' (kept in the authors' loop) are debiased by the noise variance: the positive
is then the inner product of two views of one sample that share the latent factors but carry
independent noise. Without that, a modality-specific structure (whose only positive pair is the
self pair) is not identified. In population (:func:`contrastive_batch_loss` evaluates the loss
literally on a batch of samples; its expectation is this),

    L(A) = -2 tr(B P B^T) + ||B D B^T||_F^2 + lambda * sum_m sum_{S != S'} ||A_{m,S} D_m A_{m,S'}^T||_F^2

with B the (K, p) block-sparse stack of the encoders (block (S, m) = A_{m,S}; zero unless m in S),
P = Sigma - diag(sigma_m^2) and D = blockdiag(Sigma_mm). The off-diagonal (S, S') blocks of
||B D B^T||_F^2 already penalise the overlap between a modality's representations of different
structures, so the extra overlap penalty is optional (``overlap=0`` by default: any lambda > 0 moves
the minimiser away from the one stated below). The estimator minimises this population form with
the sample covariance plugged in for Sigma (so a fit costs O(K p^2) per iteration, independent of n).

Minimiser [derived]
-------------------
With C = B D^{1/2}, L = ||D^{-1/2} P D^{-1/2} - C^T C||_F^2 - ||D^{-1/2} P D^{-1/2}||_F^2 for
lambda = 0. Under the model, P = W W^T = sum_S W_S W_S^T, so the loss reaches its lower bound at
C_S = Q_S^T W_S^T D^{-1/2}, i.e.

    A_{m,S} = Q_S^T W_{m,S}^T Sigma_mm^{-1},   h_m^S(x) = Q_S^T E[z_S | x_m],

with ONE r_S x r_S orthogonal Q_S per structure, common to all modalities; the minimiser is unique
up to these rotations whenever the block-normalised loadings D^{-1/2} W satisfy the
identifiability conditions of :meth:`Structure.check_identifiable` (the same conditions, since
D^{-1/2} is block diagonal). So the encoder of (m, S) spans the same subspace as the
per-modality posterior encoder of z_S built from the covariance-based HCL fit,
Sigma_mm^{-1} col(W_{m,S}), and the structure-averaged representation
mean_{m in S} h_m^S is meaningful (the blocks are aligned across modalities).
:func:`check_contrastive_subspaces` measures both statements (principal angles, rotation residual).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg as sla
from scipy import optimize

from .._validation import Interval, Options, check_n_features, check_random_state, check_Xs, validate_params
from ..base import BaseEstimator
from ..covariance import CovarianceStats, sample_covariance
from ..exceptions import ConvergenceWarning, NotFittedError
from ..structure import Structure
from ._deprecation import resolve_renamed

__all__ = [
    "LinearContrastiveHCL",
    "stack_encoders",
    "contrastive_loss",
    "contrastive_loss_grad",
    "contrastive_batch_loss",
    "contrastive_minimiser",
    "check_contrastive_subspaces",
    "SubspaceCheck",
]


# ---------------------------------------------------------------------------------------
# the loss on sufficient statistics
# ---------------------------------------------------------------------------------------
class _Problem:
    """Precomputed pieces of the loss for one covariance: P, D blocks and the support mask."""

    def __init__(self, cov, n_features, structure, noise_var):
        self.structure = structure
        self.n_features = tuple(n_features)
        self.rows = structure.row_slices(n_features)
        cov = np.asarray(cov, dtype=np.float64)
        psi = np.repeat(np.asarray(noise_var, dtype=np.float64), n_features)
        self.P = cov - np.diag(psi)
        self.D_blocks = [cov[r, r] for r in self.rows]
        self.mask = structure.support_mask(n_features).T  # (K, p)
        self.K, self.p = self.mask.shape
        groups = structure.factor_groups()
        self.same_struct = groups[:, None] == groups[None, :]  # (K, K) True on the diagonal blocks

    def BD(self, B):
        out = np.empty_like(B)
        for r, Dm in zip(self.rows, self.D_blocks):
            out[:, r] = B[:, r] @ Dm
        return out

    def value_grad(self, B, overlap):
        B = B * self.mask
        BP = B @ self.P
        BD = self.BD(B)
        G = BD @ B.T
        G = 0.5 * (G + G.T)
        f = -2.0 * np.sum(BP * B) + np.sum(G * G)
        grad = -4.0 * BP + 4.0 * G @ BD
        if overlap:
            for r, Dm in zip(self.rows, self.D_blocks):
                Bm = B[:, r]
                BDm = BD[:, r]
                Om = BDm @ Bm.T
                Om = np.where(self.same_struct, 0.0, 0.5 * (Om + Om.T))
                f += overlap * np.sum(Om * Om)
                grad[:, r] += overlap * 4.0 * Om @ BDm
        return float(f), grad * self.mask


def _noise_array(noise_var, n_modalities):
    arr = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), (n_modalities,)).copy()
    return arr


def stack_encoders(encoders, structure, n_features):
    """The (K, p) block-sparse matrix B of per-block encoders.

    Parameters
    ----------
    encoders : dict (m, S) -> ndarray of shape (r_S, p_m)
        One encoder per block ``(m, S)`` of ``structure.blocks()``.
    structure : Structure
    n_features : sequence of int
        p_m, one per modality.

    Returns
    -------
    ndarray of shape (K, p)
        Block (S, m) (rows ``structure.column_slice(S)``, columns of modality m) holds
        ``encoders[(m, S)]``; zero for the blocks with m not in S.
    """
    rows = structure.row_slices(n_features)
    B = np.zeros((structure.n_factors, sum(n_features)))
    for m, s in structure.blocks():
        B[structure.column_slice(s), rows[m]] = encoders[(m, s)]
    return B


def _unstack_encoders(B, structure, n_features):
    rows = structure.row_slices(n_features)
    return {(m, s): B[structure.column_slice(s), rows[m]].copy() for m, s in structure.blocks()}


def _check_encoders(encoders, structure, n_features):
    if isinstance(encoders, np.ndarray):
        B = np.asarray(encoders, dtype=np.float64)
        if B.shape != (structure.n_factors, sum(n_features)):
            raise ValueError(f"encoders must be a dict (m, S) -> (r_S, p_m) array or a (K, p) = ({structure.n_factors}, {sum(n_features)}) array; got shape {B.shape}.")
        return B * structure.support_mask(n_features).T
    if not isinstance(encoders, dict):
        raise ValueError(f"encoders must be a dict (m, S) -> (r_S, p_m) array or a (K, p) array; got an object of type {type(encoders).__name__}.")
    for m, s in structure.blocks():
        if (m, s) not in encoders:
            raise ValueError(f"encoders must have an entry for every block (m, S) of the structure; block {(m, s)} is missing.")
        shape = np.shape(encoders[(m, s)])
        want = (structure.rank(s), n_features[m])
        if shape != want:
            raise ValueError(f"encoders[{(m, s)}] must have shape (r_S, p_m) = {want}; got {shape}.")
    return stack_encoders(encoders, structure, n_features)


def contrastive_loss(encoders, cov, n_features, structure, noise_var, overlap=0.0) -> float:
    """The linear structure-aware contrastive loss (module docstring) from a covariance.

    Parameters
    ----------
    encoders : dict (m, S) -> ndarray of shape (r_S, p_m), or ndarray of shape (K, p)
    cov : ndarray of shape (p, p)
        Covariance of the stacked modalities.
    n_features : sequence of int
    structure : Structure
    noise_var : float or sequence of float (one per modality)
        Used to debias the self pairs.
    overlap : float
        Weight lambda of the extra overlap penalty.
    """
    n_features = check_n_features(n_features, structure.n_modalities)
    prob = _Problem(cov, n_features, structure, _noise_array(noise_var, structure.n_modalities))
    return prob.value_grad(_check_encoders(encoders, structure, n_features), overlap)[0]


def contrastive_loss_grad(encoders, cov, n_features, structure, noise_var, overlap=0.0):
    """The loss and its analytic gradient with respect to the (K, p) stacked encoders.

    Parameters
    ----------
    encoders, cov, n_features, structure, noise_var, overlap
        As in :func:`contrastive_loss`.

    Returns
    -------
    loss : float
    grad : ndarray of shape (K, p)
        Zero off the support of the structure.
    """
    n_features = check_n_features(n_features, structure.n_modalities)
    prob = _Problem(cov, n_features, structure, _noise_array(noise_var, structure.n_modalities))
    return prob.value_grad(_check_encoders(encoders, structure, n_features), overlap)


def contrastive_batch_loss(encoders, Xs, structure, noise_var, overlap=0.0) -> float:
    """The same loss evaluated literally on a batch of (already centred) samples.

    Positives: Phi^{mm'}_{ii}, the inner products between a sample's own representations of the
    structures two modalities share (self pairs debiased by ``noise_var``); negatives:
    (Phi^{mm'}_{ij})^2 for i != j; overlap: the squared cross-moments between a modality's
    representations of different structures. Its expectation over batches of independent
    samples equals :func:`contrastive_loss` at the population covariance.

    Parameters
    ----------
    encoders : dict (m, S) -> ndarray of shape (r_S, p_m), or ndarray of shape (K, p)
    Xs : list of ndarray of shape (n_samples, p_m)
        A batch of centred samples, one array per modality.
    structure : Structure
    noise_var : float or sequence of float (one per modality)
    overlap : float, default 0.0

    Returns
    -------
    float
    """
    Xs = check_Xs(Xs, n_modalities=structure.n_modalities)
    n_features = tuple(X.shape[1] for X in Xs)
    B = _check_encoders(encoders, structure, n_features)
    n = Xs[0].shape[0]
    rows = structure.row_slices(n_features)
    noise = _noise_array(noise_var, structure.n_modalities)
    Hs = [Xs[m] @ B[:, rows[m]].T for m in range(structure.n_modalities)]  # g_m(x_i), (n, K)
    pos = neg = 0.0
    off = ~np.eye(n, dtype=bool)
    for m in range(structure.n_modalities):
        for mp in range(structure.n_modalities):
            Phi = Hs[m] @ Hs[mp].T
            pos += np.mean(np.diag(Phi))
            neg += np.mean(Phi[off] ** 2)
        pos -= noise[m] * np.sum(B[:, rows[m]] ** 2)
    f = -2.0 * pos + neg
    if overlap:
        groups = structure.factor_groups()
        diff = groups[:, None] != groups[None, :]
        for m in range(structure.n_modalities):
            Om = Hs[m].T @ Hs[m] / n
            f += overlap * np.sum(Om[diff] ** 2)
    return float(f)


def contrastive_minimiser(loadings, cov, n_features, structure) -> dict:
    """The population minimiser stated in the module docstring, with Q_S = I:
    A_{m,S} = W_{m,S}^T Sigma_mm^{-1}.

    Parameters
    ----------
    loadings : ndarray of shape (p, K)
    cov : ndarray of shape (p, p)
    n_features : sequence of int
    structure : Structure

    Returns
    -------
    dict (m, S) -> ndarray of shape (r_S, p_m)
    """
    n_features = check_n_features(n_features, structure.n_modalities)
    rows = structure.row_slices(n_features)
    W = np.asarray(loadings, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    out = {}
    for m, s in structure.blocks():
        Wms = W[rows[m], structure.column_slice(s)]
        out[(m, s)] = sla.solve(cov[rows[m], rows[m]], Wms, assume_a="pos").T
    return out


# ---------------------------------------------------------------------------------------
# estimator
# ---------------------------------------------------------------------------------------
class LinearContrastiveHCL(BaseEstimator):
    """Linear encoders per (modality, structure) trained with the structure-aware contrastive loss.

    Parameters
    ----------
    structure : Structure
    noise_var : None, float or sequence of float, default None
        Noise variance used to debias the self pairs. None: the authors' estimate (mean of
        the p - K smallest eigenvalues of the sample covariance), as in :class:`HCL`.
    overlap : float, default 0.0
        Weight lambda of the extra overlap penalty (see the module docstring; 0 keeps the
        minimiser stated there).
    init : {"random", "spectral"}, default "random"
        "random": small Gaussian encoders; "spectral": A_{m,S} from the top eigenvectors of
        the block-normalised covariance restricted to the modalities of S (a cheap start).
    max_iter : int, default 5000
        L-BFGS iteration limit.
    tol : float, default 1e-7
        Stop when ``stop_crit_``, the largest absolute entry of the gradient divided by
        max(1, abs(loss)), is at most ``tol`` (the optimality criterion). The old spelling
        ``gtol`` still works (FutureWarning).
    random_state : int, SeedSequence, Generator or None, default 0
        Seed of the random start (``init="random"``); 0 by default so that two fits of the
        same data give the same encoders (normalised by ``check_random_state``).

    Attributes
    ----------
    encoders_ : dict (m, S) -> ndarray of shape (r_S, p_m)
        The encoder of every block of ``structure.blocks()``.
    encoder_matrix_ : ndarray of shape (K, p)
        The block-sparse stack of the encoders (:func:`stack_encoders`).
    mean_ : ndarray of shape (p,)
        Training mean of the stacked modalities.
    noise_var_ : ndarray of shape (n_modalities,)
        Noise variance per modality used to debias the self pairs.
    loss_ : float
        The loss at the returned encoders (``objective_`` is the same number).
    objective_ : float
    lower_bound_ : float
        Population lower bound of the loss, -||D^{-1/2} P D^{-1/2}||_F^2 at the plugged-in
        covariance.
    n_iter_ : int
    stop_crit_ : float
        max abs(gradient) / max(1, abs(loss)) at the returned encoders.
    tol_ : float
        The tolerance compared with ``stop_crit_``.
    converged_ : bool
        ``stop_crit_ <= tol_``.
    grad_norm_ : float
        max abs(gradient) at the returned encoders.
    history_ : dict
        ``"loss"``: ndarray of shape (``n_iter_``,), the loss after every L-BFGS iteration.
    structure_ : Structure
    n_features_ : tuple of int
        p_m, one per modality.
    n_samples_ : int or None
        Training rows (None after :meth:`fit_covariance`).
    fit_time_ : float
        Wall-clock seconds of the fit.

    Notes
    -----
    Identification: the minimiser is A_{m,S} = Q_S^T W_{m,S}^T Sigma_mm^{-1}, one orthogonal
    Q_S per structure shared by all its modalities (module docstring). The loss is not convex;
    L-BFGS from a random start reached the global minimum in all our checks (the loss value of
    the population minimiser, -||D^{-1/2} P D^{-1/2}||_F^2, is the lower bound; ``lower_bound_``).

    Examples
    --------
    >>> from hcl_stats import Structure, simulate
    >>> from hcl_stats.contrastive import LinearContrastiveHCL
    >>> s = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    >>> data = simulate(s, (10, 12, 14), 2000, noise_var=0.5, random_state=0)
    >>> est = LinearContrastiveHCL(s, random_state=0).fit(data.Xs)
    >>> est.transform(data.Xs).shape, est.converged_
    ((2000, 5), True)
    """

    _parameter_constraints = {
        "overlap": [Interval(float, 0, None)],
        "init": [Options("random", "spectral")],
        "max_iter": [Interval(int, 1, None)],
        "tol": [Interval(float, 0, None, closed="neither")],
    }

    def __init__(self, structure=None, *, noise_var=None, overlap=0.0, init="random", max_iter=5000,
                 tol=1e-7, random_state=0, **deprecated):
        if deprecated:
            tol = resolve_renamed("LinearContrastiveHCL", deprecated, {"gtol": "tol"}, {"tol": tol}, {"tol": 1e-7})["tol"]
        self.structure = structure
        self.noise_var = noise_var
        self.overlap = overlap
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _validate(self, n_modalities):
        validate_params("LinearContrastiveHCL", self.get_params(), self._parameter_constraints)
        if not isinstance(self.structure, Structure):
            raise ValueError(f"The 'structure' parameter of LinearContrastiveHCL must be a Structure. Got {self.structure!r} instead.")
        if n_modalities is not None and self.structure.n_modalities != n_modalities:
            raise ValueError(f"Xs has {n_modalities} modalities but the structure has n_modalities={self.structure.n_modalities}.")

    def fit(self, Xs, y=None):
        """Fit the encoders on ``Xs`` (list of (n_samples, p_m) arrays). Returns self."""
        Xs = check_Xs(Xs, min_samples=2)
        self._validate(len(Xs))
        return self._fit_stats(sample_covariance(Xs))

    def fit_covariance(self, cov, n_features, mean=None):
        """Fit from a (p, p) covariance, e.g. the population covariance of the model."""
        n_features = check_n_features(n_features)
        self._validate(len(n_features))
        cov = np.asarray(cov, dtype=np.float64)
        p = sum(n_features)
        if cov.shape != (p, p) or not np.all(np.isfinite(cov)):
            raise ValueError(f"cov must be a finite (p, p) = ({p}, {p}) array for n_features={n_features}; got {np.shape(cov)!r} of type {type(cov).__name__}.")
        mean = np.zeros(p) if mean is None else np.asarray(mean, dtype=np.float64)
        return self._fit_stats(CovarianceStats(cov=0.5 * (cov + cov.T), mean=mean, n_samples=None, n_features=n_features))

    def _noise(self, stats):
        M = self.structure.n_modalities
        if self.noise_var is None:
            from ..estimation.noise import bottom_eigenvalue_noise

            return np.full(M, bottom_eigenvalue_noise(stats.cov, self.structure.n_factors))
        arr = np.asarray(self.noise_var, dtype=np.float64)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != M) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"The 'noise_var' parameter of LinearContrastiveHCL must be None, a non-negative float or {M} non-negative floats. Got {self.noise_var!r} instead.")
        return np.broadcast_to(arr, (M,)).astype(np.float64)

    def _init(self, prob, rng):
        s = self.structure
        B = np.zeros((prob.K, prob.p))
        if self.init == "random":
            B = rng.standard_normal((prob.K, prob.p)) * prob.mask
            # scale so that B D B^T has unit-order entries
            G = prob.BD(B) @ B.T
            B *= 0.3 / np.sqrt(max(np.trace(G) / prob.K, 1e-300))
            return B
        # spectral: top-r_S eigenvectors of D^{-1/2} P D^{-1/2} restricted to the modalities of S
        Dih = [sla.fractional_matrix_power(Dm, -0.5).real for Dm in prob.D_blocks]
        for sub in s.subsets:
            idx = np.concatenate([np.arange(prob.rows[m].start, prob.rows[m].stop) for m in sub])
            Dsub = sla.block_diag(*[Dih[m] for m in sub])
            Msub = Dsub @ prob.P[np.ix_(idx, idx)] @ Dsub
            w, V = sla.eigh(0.5 * (Msub + Msub.T))
            r = s.rank(sub)
            C = (V[:, -r:] * np.sqrt(np.clip(w[-r:], 1e-12, None))).T
            B[s.column_slice(sub), idx] = C @ Dsub
        return B

    def _fit_stats(self, stats):
        t0 = time.perf_counter()
        s = self.structure
        n_features = tuple(stats.n_features)
        for m, sub in s.blocks():
            if s.rank(sub) > n_features[m]:
                raise ValueError(f"structure: subset {sub} has rank {s.rank(sub)} but modality {m} has only {n_features[m]} features (Xs[{m}].shape[1]).")
        rng = check_random_state(self.random_state)
        noise = self._noise(stats)
        prob = _Problem(stats.cov, n_features, s, noise)
        mask = prob.mask
        idx = np.flatnonzero(mask.ravel())
        overlap = float(self.overlap)
        B0 = self._init(prob, rng)
        hist = []

        def fun(theta):
            B = np.zeros(mask.size)
            B[idx] = theta
            f, g = prob.value_grad(B.reshape(mask.shape), overlap)
            return f, g.ravel()[idx]

        # scaled optimality criterion: max |grad| <= tol * max(1, |f|)
        state = {"f": None}

        def callback(intermediate_result):
            state["f"] = float(intermediate_result.fun)
            hist.append(state["f"])

        res = optimize.minimize(fun, B0.ravel()[idx], jac=True, method="L-BFGS-B", callback=callback,
                                options={"maxiter": int(self.max_iter), "gtol": 0.0, "ftol": 0.0,
                                         "maxcor": 30, "maxfun": 20 * int(self.max_iter)})
        theta = res.x
        f, g = fun(theta)
        gmax = float(np.max(np.abs(g))) if g.size else 0.0
        converged = gmax <= self.tol * max(1.0, abs(f))
        if not converged:
            # L-BFGS stops on its own line-search/precision tests; polish with a restart
            res2 = optimize.minimize(fun, theta, jac=True, method="L-BFGS-B", callback=callback,
                                     options={"maxiter": int(self.max_iter), "gtol": self.tol * max(1.0, abs(f)),
                                              "ftol": 0.0, "maxcor": 30, "maxfun": 20 * int(self.max_iter)})
            theta = res2.x
            f, g = fun(theta)
            gmax = float(np.max(np.abs(g))) if g.size else 0.0
            converged = gmax <= self.tol * max(1.0, abs(f))
        B = np.zeros(mask.size)
        B[idx] = theta
        B = B.reshape(mask.shape)
        if not converged:
            warnings.warn(f"LinearContrastiveHCL stopped after {len(hist)} L-BFGS iterations with max |gradient| = {gmax:.3g} "
                          f"above tol * max(1, |loss|) = {self.tol * max(1.0, abs(f)):.3g}; increase max_iter.",
                          ConvergenceWarning, stacklevel=3)
        Dih = [sla.fractional_matrix_power(Dm, -0.5).real for Dm in prob.D_blocks]
        Dh = sla.block_diag(*Dih)
        Mn = Dh @ prob.P @ Dh
        self.structure_ = s
        self.n_features_ = n_features
        self.n_samples_ = stats.n_samples
        self.mean_ = np.asarray(stats.mean, dtype=np.float64)
        self.noise_var_ = noise
        self.encoder_matrix_ = B
        self.encoders_ = _unstack_encoders(B, s, n_features)
        self.loss_ = float(f)
        self.objective_ = float(f)
        self.stop_crit_ = gmax / max(1.0, abs(f))
        self.tol_ = float(self.tol)
        self.lower_bound_ = -float(np.sum(Mn * Mn))
        self.grad_norm_ = gmax
        self.n_iter_ = len(hist)
        self.converged_ = bool(self.stop_crit_ <= self.tol_)
        self.history_ = {"loss": np.asarray(hist)}
        self.fit_time_ = time.perf_counter() - t0
        return self

    def _check_fitted(self):
        if not hasattr(self, "encoders_"):
            raise NotFittedError("This LinearContrastiveHCL instance is not fitted yet; call fit(Xs) first.")

    def transform(self, Xs, kind="averaged"):
        """Representation of ``Xs``.

        kind="averaged" (default, the authors' downstream representation): per structure, the
        mean over its modalities of h_m^S, concatenated in ``structure.subsets`` order,
        shape (n_samples, K). kind="concat": every h_m^S, in ``structure.blocks()`` order,
        shape (n_samples, sum_S len(S) r_S).
        """
        self._check_fitted()
        Xs = check_Xs(Xs, n_modalities=self.structure_.n_modalities, n_features=self.n_features_, min_samples=1)
        if kind not in ("averaged", "concat"):
            raise ValueError(f"kind must be 'averaged' or 'concat'; got {kind!r}.")
        rows = self.structure_.row_slices(self.n_features_)
        Xc = [X - self.mean_[r] for X, r in zip(Xs, rows)]
        if kind == "concat":
            return np.hstack([Xc[m] @ self.encoders_[(m, s)].T for m, s in self.structure_.blocks()])
        out = []
        for s in self.structure_.subsets:
            out.append(sum(Xc[m] @ self.encoders_[(m, s)].T for m in s) / len(s))
        return np.hstack(out)

    def fit_transform(self, Xs, y=None):
        return self.fit(Xs).transform(Xs)


# ---------------------------------------------------------------------------------------
# theory check
# ---------------------------------------------------------------------------------------
@dataclass
class SubspaceCheck:
    """Result of :func:`check_contrastive_subspaces`.

    Attributes
    ----------
    sin_vs_hcl, sin_vs_truth : dict (m, S) -> float
        Sine of the largest principal angle between the row space of A_{m,S} and
        Sigma_mm^{-1} col(W_{m,S}) (HCL fit / true loadings).
    rotation_residual : dict S -> float
        Relative residual of the best common orthogonal Q_S, i.e.
        min_Q ||A_S - Q^T T_S||_F / ||T_S||_F with T_S the stacked minimiser (truth, Q_S = I).
    loss, lower_bound : float
        The fitted loss and its population lower bound.
    converged : bool
        ``converged_`` of the contrastive fit.
    """

    sin_vs_hcl: dict
    sin_vs_truth: dict
    rotation_residual: dict
    loss: float
    lower_bound: float
    converged: bool

    def max_sin_vs_hcl(self):
        return max(self.sin_vs_hcl.values())

    def max_sin_vs_truth(self):
        return max(self.sin_vs_truth.values())

    def max_rotation_residual(self):
        return max(self.rotation_residual.values())


def _sin_max(A_rows, B_cols):
    ang = sla.subspace_angles(np.asarray(A_rows).T, np.asarray(B_cols))
    return float(np.sin(np.max(ang)))


def check_contrastive_subspaces(structure=None, n_features=(15, 20, 25), n_samples=None, noise_var=0.5,
                                random_state=0, hcl_method="paper", **fit_options) -> SubspaceCheck:
    """Fit the linear contrastive estimator and the covariance-based HCL on data from the linear
    model and measure how their per-structure subspaces relate.

    Parameters
    ----------
    structure : Structure, optional
        Default: all 7 subsets of 3 modalities at rank 2.
    n_features : sequence of int
    n_samples : int or None
        None: population covariance (both fits on the exact Sigma, the contrastive one with the
        true noise variance); an int: one simulated sample, both fits on it.
    noise_var : float
    random_state : int, SeedSequence, Generator or None, default 0
        Seed of the simulated data and of the contrastive fit's start (the old spelling ``rng``
        still works, with a FutureWarning).
    hcl_method : str
        Method of :class:`HCL` for the covariance-based fit.
    **fit_options
        Further parameters of :class:`LinearContrastiveHCL` (e.g. ``init``, ``tol``).

    Returns
    -------
    SubspaceCheck
        With ``n_samples=None`` all sines and residuals are at solver precision (theory:
        exactly 0); with data they shrink like n^{-1/2}.
    """
    from ..model import HCL
    from ..simulate import simulate

    if "rng" in fit_options:
        random_state = resolve_renamed("check_contrastive_subspaces", {"rng": fit_options.pop("rng")},
                                       {"rng": "random_state"}, {"random_state": random_state},
                                       {"random_state": 0})["random_state"]
    structure = Structure.full(3, 2) if structure is None else structure
    data = simulate(structure, n_features, 2 if n_samples is None else n_samples, noise_var, random_state=random_state)
    n_features = data.n_features
    rows = structure.row_slices(n_features)
    if n_samples is None:
        cov = data.covariance()
        est = LinearContrastiveHCL(structure, noise_var=data.noise_var, random_state=random_state, **fit_options)
        est.fit_covariance(cov, n_features)
        hcl = HCL(structure, method=hcl_method).fit_covariance(cov, n_features)
    else:
        cov = sample_covariance(data.Xs).cov
        est = LinearContrastiveHCL(structure, random_state=random_state, **fit_options).fit(data.Xs)
        hcl = HCL(structure, method=hcl_method).fit(data.Xs)
    Sigma = data.covariance()
    W, What = data.loadings, hcl.loadings_
    sin_hcl, sin_true, rot = {}, {}, {}
    for m, s in structure.blocks():
        cs = structure.column_slice(s)
        A = est.encoders_[(m, s)]
        sin_hcl[(m, s)] = _sin_max(A, sla.solve(cov[rows[m], rows[m]], What[rows[m], cs], assume_a="pos"))
        sin_true[(m, s)] = _sin_max(A, sla.solve(Sigma[rows[m], rows[m]], W[rows[m], cs], assume_a="pos"))
    target = contrastive_minimiser(W, Sigma, n_features, structure)
    for s in structure.subsets:
        A_S = np.hstack([est.encoders_[(m, s)] for m in s])
        T_S = np.hstack([target[(m, s)] for m in s])
        R, _ = sla.orthogonal_procrustes(T_S.T, A_S.T)  # T_S^T R ~ A_S^T
        rot[s] = float(np.linalg.norm(A_S - R.T @ T_S) / np.linalg.norm(T_S))
    return SubspaceCheck(sin_hcl, sin_true, rot, est.loss_, est.lower_bound_, est.converged_)
