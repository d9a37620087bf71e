"""The shipped UCI Multiple Features data: shapes, labels, provenance, options and validation."""
import numpy as np
import pytest

from hcl_stats.datasets import MULTIPLE_FEATURES_MODALITIES, load_multiple_features


@pytest.fixture(scope="module")
def mf():
    return load_multiple_features()


def test_shapes_and_labels(mf):
    assert [X.shape for X in mf.Xs] == [(2000, 76), (2000, 216), (2000, 64), (2000, 6), (2000, 240), (2000, 47)]
    assert mf.modality_names == ("fourier", "profile", "karhunen_loeve", "morphological", "pixel", "zernike")
    assert mf.n_features == (76, 216, 64, 6, 240, 47)
    assert all(X.dtype == np.float64 and np.all(np.isfinite(X)) for X in mf.Xs)
    assert mf.y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(mf.y), np.full(10, 200))
    np.testing.assert_array_equal(mf.y, np.repeat(np.arange(10), 200))  # original UCI order


def test_known_values(mf):
    # first entries of mfeat-fou and mfeat-pix (pixel averages are integers 0..6)
    assert mf.Xs[0][0, 0] == pytest.approx(0.065882)
    assert mf.Xs[0][0, 1] == pytest.approx(0.19731)
    pix = mf.Xs[4]
    assert np.all(pix == np.round(pix)) and pix.min() == 0 and pix.max() == 6


def test_bunch_and_descr(mf):
    assert mf.Xs is mf["Xs"]
    assert "CC BY 4.0" in mf.DESCR and "van Breukelen" in mf.DESCR


def test_subset_and_standardize():
    d = load_multiple_features(modalities=["pixel", 0], standardize=True)
    assert d.modality_names == ("pixel", "fourier")
    assert [X.shape[1] for X in d.Xs] == [240, 76]
    for X in d.Xs:
        np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(X.std(axis=0, ddof=1), 1.0, rtol=1e-12)
    assert len(MULTIPLE_FEATURES_MODALITIES) == 6


@pytest.mark.parametrize("bad, match", [
    ("pixel", "modalities must be a sequence"),
    (["pixels"], "each entry must be one of"),
    ([7], "each entry must be one of"),
    ([], "at least one modality"),
    ([0, "fourier"], "must not repeat"),
])
def test_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        load_multiple_features(modalities=bad)


def test_standardize_validation():
    with pytest.raises(ValueError, match="standardize must be a bool; got 'yes'"):
        load_multiple_features(standardize="yes")
