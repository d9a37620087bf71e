"""Errors-in-variables corrected moments and corrected least squares (docs/method.md, section 6).

From a representation ``Z`` (m, K), a response ``y`` (m,) and the (K, K) covariance of the noise
the representation carries (``noise_cov``),

    H = Zc^T Zc / m - noise_cov,      g = Zc^T yc / m,

with ``Zc``, ``yc`` centred when ``fit_intercept=True`` (the default) and uncentred otherwise (the
paper's H = Z^T Z / m - noise_cov). H estimates Cov(z) and g estimates Cov(z, y) when
``Z = z + noise``. An indefinite H is projected onto {A : A >= floor I} (:func:`project_psd`).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg as sla

from .._validation import user_stacklevel, validate_params
from ..base import BaseEstimator
from ..exceptions import EstimationWarning
from ._common import COMMON_CONSTRAINTS, LinearPredictorMixin, check_noise_cov, check_Zy

__all__ = ["corrected_moments", "project_psd", "CorrectedLeastSquares", "CorrectedMomentsMixin"]


def corrected_moments(Z, y, noise_cov=None, fit_intercept=True):
    """The corrected moments H = Zc^T Zc / m - noise_cov and g = Zc^T yc / m.

    Parameters
    ----------
    Z : array of shape (m, K)
    y : array of shape (m,)
    noise_cov : array of shape (K, K), optional
        Covariance of the noise the representation carries (None: no correction).
    fit_intercept : bool, default True
        Centre Z and y first. Until this release the default was False (no centring, the
        paper's H = Z^T Z / m - noise_cov); pass ``fit_intercept=False`` for it.

    Returns
    -------
    H : ndarray of shape (K, K)
    g : ndarray of shape (K,)
    z_mean : ndarray of shape (K,)
        The column means of Z (zeros when ``fit_intercept=False``).
    y_mean : float
        The mean of y (0 when ``fit_intercept=False``).
    """
    Z, y = check_Zy(Z, y, min_rows=1)
    N = check_noise_cov(noise_cov, Z.shape[1])
    if fit_intercept:
        z_mean, y_mean = Z.mean(axis=0), float(y.mean())
    else:
        z_mean, y_mean = np.zeros(Z.shape[1]), 0.0
    Zc, yc = Z - z_mean, y - y_mean
    m = Z.shape[0]
    H = Zc.T @ Zc / m
    if N is not None:
        H = H - N
    return 0.5 * (H + H.T), Zc.T @ yc / m, z_mean, y_mean


def project_psd(H, eig_floor=1e-4, warn=True):
    """Project a symmetric H onto {A : A >= floor I}, floor = eig_floor * max(lambda_max(H), tiny).

    Eigenvalues below the floor are raised to it (the nearest such matrix in Frobenius norm);
    with ``warn=True`` an :class:`~hcl_stats.exceptions.EstimationWarning` names the smallest
    eigenvalue and how many were raised.

    Parameters
    ----------
    H : array of shape (K, K), symmetric
    eig_floor : float in (0, 1), default 1e-4
    warn : bool, default True

    Returns
    -------
    H_psd : ndarray of shape (K, K)
    min_eig : float
        The smallest eigenvalue of H.
    n_clipped : int
        How many eigenvalues were raised to the floor.
    """
    H = 0.5 * (np.asarray(H, dtype=np.float64) + np.asarray(H, dtype=np.float64).T)
    w, V = sla.eigh(H)
    min_eig = float(w[0])
    top = max(float(w[-1]), np.finfo(float).tiny)
    floor = eig_floor * top
    low = w < floor
    n_clipped = int(low.sum())
    if n_clipped == 0:
        return H, min_eig, 0
    if warn:
        warnings.warn(
            f"The corrected Gram matrix H = Z^T Z/m - noise_cov has {n_clipped} eigenvalue(s) below the floor "
            f"{floor:.3g} (smallest {w[0]:.3g}); it was projected onto the positive definite cone. The noise "
            f"covariance may be overestimated or m too small for the correction.",
            EstimationWarning, stacklevel=user_stacklevel())
    w = np.where(low, floor, w)
    Hp = (V * w) @ V.T
    return 0.5 * (Hp + Hp.T), min_eig, n_clipped


class CorrectedMomentsMixin(LinearPredictorMixin):
    """Computes and records the (projected) corrected moments of a linear downstream estimator."""

    def _fit_moments(self, Z, y, noise_cov):
        Z, y = check_Zy(Z, y, owner=type(self).__name__)
        H, g, zm, ym = corrected_moments(Z, y, noise_cov, self.fit_intercept)
        Hp, Hraw_min, n_clipped = project_psd(H, self.eig_floor)
        self.H_min_eig_ = Hraw_min
        self.n_clipped_ = n_clipped
        self.H_, self.g_ = Hp, g
        return Z, y, Hp, g, zm, ym


class CorrectedLeastSquares(CorrectedMomentsMixin, BaseEstimator):
    """Errors-in-variables corrected least squares: beta = H^{-1} g.

    Parameters
    ----------
    fit_intercept : bool, default True
        Centre Z and y and fit an intercept. Until this release the default was False, the
        paper's H = Z^T Z / m - noise_cov without centring: pass ``fit_intercept=False`` to
        reproduce it (the two agree when Z and y have mean zero).
    eig_floor : float in (0, 1), default 1e-4
        Relative eigenvalue floor of the PSD projection of an indefinite H (:func:`project_psd`).

    Attributes
    ----------
    coef_ : ndarray of shape (K,)
    intercept_ : float
    H_ : ndarray of shape (K, K)
        The (projected) corrected Gram matrix.
    g_ : ndarray of shape (K,)
    H_min_eig_ : float
        Smallest eigenvalue of the corrected H before projection.
    n_clipped_ : int
        Number of eigenvalues raised to the floor.
    n_features_in_ : int
        K.

    Notes
    -----
    With ``Z = C_hat x`` and ``noise_cov = C_hat diag(psi) C_hat^T`` (the paper's representation),
    H -> Cov(z) = I and g -> beta when the loadings are exact, so beta_hat is consistent; the
    naive least squares (``noise_cov=None``) is attenuated, beta_naive -> (I + noise_cov)^{-1} beta.

    Examples
    --------
    >>> import numpy as np
    >>> from hcl_stats.downstream import CorrectedLeastSquares
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((5000, 2))
    >>> noise_cov = 0.5 * np.eye(2)
    >>> Z = z + rng.multivariate_normal(np.zeros(2), noise_cov, size=5000)
    >>> y = z @ np.array([1.0, -2.0]) + 0.1 * rng.standard_normal(5000)
    >>> CorrectedLeastSquares().fit(Z, y, noise_cov).coef_.round(1)
    array([ 1., -2.])
    >>> CorrectedLeastSquares().fit(Z, y).coef_.round(1)  # naive: attenuated by 1 / (1 + 0.5)
    array([ 0.7, -1.3])
    """

    _parameter_constraints = dict(COMMON_CONSTRAINTS)

    def __init__(self, fit_intercept=True, eig_floor=1e-4):
        self.fit_intercept = fit_intercept
        self.eig_floor = eig_floor

    def fit(self, Z, y, noise_cov=None):
        """Fit on a representation and its noise covariance.

        Parameters
        ----------
        Z : array of shape (m, K)
        y : array of shape (m,)
        noise_cov : array of shape (K, K), optional
            The representation's noise covariance (None: ordinary least squares).

        Returns
        -------
        self
        """
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        Z, y, H, g, zm, ym = self._fit_moments(Z, y, noise_cov)
        self.coef_ = sla.solve(H, g, assume_a="pos")
        self.intercept_ = float(ym - zm @ self.coef_)
        self.n_features_in_ = Z.shape[1]
        return self
