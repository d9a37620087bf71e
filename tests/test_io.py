"""Labelled tables in and out (DataFrames, dicts, MuData), names through the fit, set_output,
and saved fits (HCL.save / load_fit)."""
import json
import warnings

import numpy as np
import pytest

from hcl_stats import HCL, Structure, load_fit, simulate
from hcl_stats import io as hio
from hcl_stats.base import clone

pd = pytest.importorskip("pandas")

S3 = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
NAMES = ["rna", "protein", "atac"]


@pytest.fixture(scope="module")
def data():
    return simulate(S3, (12, 15, 18), 300, noise_var=0.5, random_state=0)


def frames(Xs, names=NAMES, index=None):
    idx = pd.Index([f"s{i}" for i in range(Xs[0].shape[0])], name="sample") if index is None else index
    return {n: pd.DataFrame(X, index=idx, columns=[f"{n}_{j}" for j in range(X.shape[1])]) for n, X in zip(names, Xs)}


@pytest.fixture(scope="module")
def fitted(data):
    return HCL(S3).fit(frames(data.Xs)), HCL(S3).fit(data.Xs)


# -- tables in ------------------------------------------------------------------------------------
def test_dict_of_frames_fits_as_arrays_and_keeps_names(fitted, data):
    h, ha = fitted
    assert np.array_equal(h.loadings_, ha.loadings_)
    assert h.structure_.names == tuple(NAMES) and h.modality_names_ == tuple(NAMES)
    assert ha.structure_ == S3 and not hasattr(ha, "feature_names_in_")
    assert [list(f) for f in h.feature_names_in_] == [[f"{n}_{j}" for j in range(p)] for n, p in zip(NAMES, (12, 15, 18))]
    names = h.get_feature_names_out()
    assert list(names) == ["{rna,protein,atac}:1", "{rna,protein,atac}:2", "{rna,protein}:1", "{rna}:1", "{protein}:1",
                           "{atac}:1", "{atac}:2"]
    assert list(ha.get_feature_names_out())[:3] == ["{0,1,2}:1", "{0,1,2}:2", "{0,1}:1"]
    text = str(h.summary())
    assert "rna: 12" in text and "{rna,protein}" in text


def test_loadings_frame(fitted):
    h, ha = fitted
    L = h.loadings_frame()
    assert L.shape == (45, 7) and list(L.columns) == list(h.get_feature_names_out())
    assert L.index.names == ["modality", "feature"]
    assert L.index[0] == ("rna", "rna_0") and L.index[-1] == ("atac", "atac_17")
    assert np.array_equal(L.to_numpy(), h.loadings_)
    assert L.loc[("atac", "atac_3"), "{rna}:1"] == 0.0
    La = ha.loadings_frame()  # no names: structure defaults and x0, x1, ...
    assert La.index[0] == ("m0", "x0") and La.index[12] == ("m1", "x0")


def test_list_of_frames_keeps_feature_names_not_modality_names(data):
    dfs = list(frames(data.Xs).values())
    dfs[1] = data.Xs[1]  # a plain array may be mixed in
    h = HCL(S3).fit(dfs)
    assert h.structure_ == S3
    assert h.feature_names_in_[1] is None and h.feature_names_in_[0][0] == "rna_0"
    assert h.loadings_frame().index[12] == ("m1", "x0")


def test_rows_matched_by_label(data, fitted):
    h, _ = fitted
    dfs = frames(data.Xs)
    perm = np.random.default_rng(3).permutation(300)
    dfs["protein"] = dfs["protein"].iloc[perm]
    h2 = HCL(S3).fit(dfs)
    np.testing.assert_allclose(h2.loadings_, h.loadings_, rtol=0, atol=1e-10)
    # transform: output rows follow the first table's index
    h.set_output(transform="pandas")
    try:
        Z = h.transform(dfs)
        assert list(Z.index) == [f"s{i}" for i in range(300)]
        np.testing.assert_allclose(Z.to_numpy(), h.set_output(transform="default").transform(data.Xs), atol=1e-12)
    finally:
        h.set_output(transform="default")


def test_different_samples_are_refused_naming_the_modality(data):
    dfs = frames(data.Xs)
    dfs["atac"] = dfs["atac"].iloc[:-2]
    with pytest.raises(ValueError, match=r"Xs\['atac'\].*2 of Xs\['rna'\]'s samples are missing.*'s298'"):
        HCL(S3).fit(dfs)
    dfs = frames(data.Xs)
    dfs["atac"] = dfs["atac"].rename(index={"s0": "zz"})
    with pytest.raises(ValueError, match="same samples"):
        HCL(S3).fit(dfs)


def test_duplicate_sample_labels_that_need_aligning_are_refused(data):
    idx = pd.Index(["a"] * 150 + ["b"] * 150)
    dfs = frames(data.Xs, index=idx)
    HCL(S3).fit(dfs)  # identical indexes: nothing to match, accepted
    dfs["rna"] = dfs["rna"].iloc[::-1]
    with pytest.raises(ValueError, match="duplicate sample labels"):
        HCL(S3).fit(dfs)


def test_non_numeric_columns_are_an_error(data):
    dfs = frames(data.Xs)
    dfs["protein"] = dfs["protein"].assign(batch="x")
    with pytest.raises(ValueError, match=r"Xs\['protein'\] must have numeric columns only.*'batch' \((object|str)"):
        HCL(S3).fit(dfs)


def test_duplicate_feature_names_are_an_error(data):
    dfs = frames(data.Xs)
    dfs["rna"].columns = ["g"] * 2 + [f"g{j}" for j in range(10)]
    with pytest.raises(ValueError, match=r"Xs\['rna'\] has duplicate feature names \['g'\]"):
        HCL(S3).fit(dfs)


def test_zero_feature_frame_is_an_error(data):
    dfs = frames(data.Xs)
    dfs["atac"] = dfs["atac"].iloc[:, :0]
    with pytest.raises(ValueError, match=r"Xs\['atac'\] has 0 features"):
        HCL(Structure({(0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)).fit(dfs)


def test_missing_values_reach_the_finite_check(data):
    dfs = frames(data.Xs)
    dfs["rna"] = dfs["rna"].astype("Float64")
    dfs["rna"].iloc[3, 2] = pd.NA
    with pytest.raises(ValueError, match=r"Xs\[0\] must be finite; got 1 NaN"):
        HCL(S3).fit(dfs)


def test_named_structure_takes_dict_modalities_by_name(data, fitted):
    h, _ = fitted
    s = S3.with_names(NAMES)
    dfs = frames(data.Xs)
    shuffled = {k: dfs[k] for k in ("atac", "rna", "protein")}
    h2 = HCL(s).fit(shuffled)
    assert h2.structure_ == s and np.array_equal(h2.loadings_, h.loadings_)
    with pytest.raises(ValueError, match=r"must be \['rna', 'protein', 'atac'\].*missing \['atac'\]"):
        HCL(s).fit({"rna": dfs["rna"], "protein": dfs["protein"], "dna": dfs["atac"]})


def test_transform_matches_features_by_name(data, fitted):
    h, _ = fitted
    dfs = frames(data.Xs)
    Z = h.transform(dfs)
    dfs2 = dict(dfs)
    dfs2["protein"] = dfs["protein"][dfs["protein"].columns[::-1]]
    assert np.array_equal(h.transform(dfs2), Z)
    assert np.array_equal(h.transform({k: dfs[k] for k in reversed(NAMES)}), Z)
    dfs2["protein"] = dfs["protein"].drop(columns=["protein_4"])
    with pytest.raises(ValueError, match=r"Xs\['protein'\]: the features must be those seen at fit \(15\); got 14, missing \['protein_4'\]"):
        h.transform(dfs2)
    with pytest.raises(ValueError, match=r"missing \['atac'\]"):
        h.transform({"rna": dfs["rna"], "protein": dfs["protein"]})
    assert np.array_equal(h.transform(data.Xs), Z)  # plain arrays still work


def test_use_layer_needs_mudata(data):
    with pytest.raises(ValueError, match="use_layer applies to MuData input only"):
        HCL(S3).fit(data.Xs, use_layer="raw")


def test_bad_dict_keys(data):
    with pytest.raises(ValueError, match="must be modality names"):
        HCL(S3).fit({(0,): data.Xs[0], (1,): data.Xs[1], (2,): data.Xs[2]})
    with pytest.raises(ValueError, match="empty dict"):
        HCL(S3).fit({})


# -- set_output, feature names out -------------------------------------------------------------------
def test_set_output_pandas(data):
    h = HCL(S3).set_output(transform="pandas")
    Z = h.fit_transform(frames(data.Xs))
    assert isinstance(Z, pd.DataFrame) and Z.shape == (300, 7) and Z.index.name == "sample"
    assert list(Z.columns) == list(h.get_feature_names_out())
    Za = h.transform(data.Xs)  # arrays in: a RangeIndex
    assert isinstance(Za, pd.DataFrame) and list(Za.index) == list(range(300))
    P = h.posterior_mean(frames(data.Xs))
    assert isinstance(P, pd.DataFrame) and P.index[0] == "s0"
    assert isinstance(h.represent(data.Xs, kind="posterior", averaged=True), pd.DataFrame)
    assert clone(h)._output_container() == "pandas"
    sk = pytest.importorskip("sklearn.base")
    assert sk.clone(h)._output_container() == "pandas"
    assert isinstance(h.set_output(transform="default").transform(data.Xs), np.ndarray)
    assert h.set_output(transform=None)._output_container() == "default"
    with pytest.raises(ValueError, match="set_output must be one of .'default', 'pandas'. or None. Got 'polars'"):
        h.set_output(transform="polars")


def test_get_feature_names_out_input_features(fitted):
    h, ha = fitted
    allnames = np.concatenate(h.feature_names_in_)
    assert list(h.get_feature_names_out(allnames)) == list(h.get_feature_names_out())
    with pytest.raises(ValueError, match="input_features must be the 45 input feature names"):
        h.get_feature_names_out(allnames[::-1])
    with pytest.raises(ValueError, match="got 3 names"):
        ha.get_feature_names_out(["a", "b", "c"])
    assert len(ha.get_feature_names_out([f"x{j}" for j in range(45)])) == 7


# -- saved fits -----------------------------------------------------------------------------------------
def test_save_load_round_trip(fitted, data, tmp_path):
    h, _ = fitted
    path = h.save(tmp_path / "fit.hcl")  # the name is used as given
    assert path == tmp_path / "fit.hcl" and path.is_file()
    g = load_fit(path)
    assert type(g) is HCL and g.get_params() == h.get_params()
    assert g.structure_ == h.structure_ and g.n_features_ == h.n_features_ and g.n_samples_ == 300
    for a in ("loadings_", "noise_var_features_", "mean_", "noise_var_"):
        assert np.array_equal(getattr(g, a), getattr(h, a)), a
    assert np.array_equal(g.transform(data.Xs), h.transform(data.Xs))
    assert np.array_equal(g.posterior_mean(data.Xs), h.posterior_mean(data.Xs))
    assert np.array_equal(g.score_samples(data.Xs), h.score_samples(data.Xs))
    assert [list(f) for f in g.feature_names_in_] == [list(f) for f in h.feature_names_in_]
    assert list(g.get_feature_names_out()) == list(h.get_feature_names_out())
    assert g.loadings_frame().equals(h.loadings_frame())
    assert str(g.summary()) == str(h.summary())
    assert np.array_equal(g.transform(frames(data.Xs)), h.transform(data.Xs))
    with pytest.raises(ValueError, match="goodness_of_fit needs data"):
        g.goodness_of_fit()
    with np.load(path, allow_pickle=False) as z:  # the documented layout
        header = json.loads(str(z["header"][()]))
        assert header["format"] == "hcl_stats.fit" and header["format_version"] == 1 == hio.FORMAT_VERSION
        assert header["modality_names"] == NAMES and header["structure"]["names"] == NAMES
        assert sorted(header["arrays"]) == sorted(k for k in z.files if k != "header")
        assert z["loadings"].dtype == np.float64 and z["feature_names_1"][0] == "protein_1".replace("_1", "_0")


def test_save_load_auto_structure(data, tmp_path):
    h = HCL("auto", selection={"n_resamples": 0}).fit(frames(data.Xs))
    g = load_fit(h.save(tmp_path / "auto.npz"))
    assert g.structure == "auto" and g.selection == {"n_resamples": 0}
    assert g.structure_ == h.structure_ and g.selection_ is None
    assert np.array_equal(g.transform(data.Xs), h.transform(data.Xs))
    assert "selection" in hio.read_header(tmp_path / "auto.npz")["selection_summary"].lower()


def test_load_refuses_other_files(fitted, tmp_path):
    h, _ = fitted
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_fit(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an hcl_stats saved fit"):
        load_fit(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="cannot read"):
        load_fit(tmp_path / "text.npz")
    path = h.save(tmp_path / "fit.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"][()]))
    for version, msg in ((2, "format version 2 .*reads versions up to 1. Upgrade"), (0, "invalid format_version 0")):
        header["format_version"] = version
        arrays["header"] = np.array(json.dumps(header))
        np.savez(tmp_path / "v.npz", **arrays)
        with pytest.raises(ValueError, match=msg):
            load_fit(tmp_path / "v.npz")


def test_save_needs_a_fit(tmp_path):
    from hcl_stats.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HCL(S3).save(tmp_path / "x.npz")


def test_unnamed_fit_round_trip(fitted, data, tmp_path):
    _, ha = fitted
    g = load_fit(ha.save(tmp_path / "plain.npz"))
    assert not hasattr(g, "feature_names_in_") and g.structure_ == S3
    assert np.array_equal(g.transform(data.Xs), ha.transform(data.Xs))


# -- MuData -----------------------------------------------------------------------------------------------
def _mudata(Xs, names, drop_last_of=None, empty=None):
    ad = pytest.importorskip("anndata")
    md = pytest.importorskip("mudata")
    import scipy.sparse as sp

    obs = [f"c{i}" for i in range(Xs[0].shape[0])]
    mods = {}
    for n, X in zip(names, Xs):
        a = ad.AnnData(X=sp.csr_matrix(X) if n == names[-1] else X, obs=pd.DataFrame(index=obs),
                       var=pd.DataFrame(index=[f"{n}{j}" for j in range(X.shape[1])]))
        a.layers["scaled"] = 2.0 * X
        mods[n] = a
    mods[names[1]] = mods[names[1]][::-1].copy()  # another sample order: matched by label
    if drop_last_of:
        mods[drop_last_of] = mods[drop_last_of][:-3].copy()
    if empty:
        mods[empty] = mods[empty][:, :0].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return md.MuData(mods)


def test_mudata_fit_transform_and_write(data, fitted):
    _, ha = fitted
    mdata = _mudata(data.Xs, NAMES)
    h = HCL(S3).fit(mdata)
    assert h.structure_.names == tuple(NAMES) and h.feature_names_in_[2][0] == "atac0"
    np.testing.assert_allclose(h.loadings_, ha.loadings_, rtol=0, atol=1e-10)
    Z = h.transform(mdata)
    np.testing.assert_allclose(Z, ha.transform(data.Xs), rtol=0, atol=1e-10)
    assert h.write_mudata(mdata) is mdata
    assert np.array_equal(mdata.obsm["X_hcl"], Z)
    rows = S3.row_slices((12, 15, 18))
    for m, n in enumerate(NAMES):
        assert np.array_equal(mdata.mod[n].varm["hcl_loadings"], h.loadings_[rows[m]])
    assert mdata.uns["hcl"]["factor_names"] == list(h.get_feature_names_out())
    h2 = HCL(S3).fit(mdata, use_layer="scaled")
    np.testing.assert_allclose(h2.mean_, 2 * h.mean_, rtol=1e-12)
    with pytest.raises(ValueError, match="use_layer='nope': modality 'rna' has no such layer"):
        HCL(S3).fit(mdata, use_layer="nope")


def test_mudata_bad_input(data):
    with pytest.raises(ValueError, match=r"Xs.mod\['protein'\].*3 of Xs.obs_names's samples are missing"):
        HCL(S3).fit(_mudata(data.Xs, NAMES, drop_last_of="protein"))
    with pytest.raises(ValueError, match=r"Xs.mod\['atac'\] has 0 features \(n_vars = 0\)"):
        HCL(S3).fit(_mudata(data.Xs, NAMES, empty="atac"))
    h = HCL(Structure({(0, 1): 2, (0,): 1, (1,): 1}, 2)).fit(_mudata(data.Xs[:2], NAMES[:2]))
    with pytest.raises(ValueError, match=r"not in the fit \['atac'\]"):
        h.transform(_mudata(data.Xs, NAMES))


def test_multiple_features_as_frames():
    from hcl_stats.datasets import load_multiple_features

    data = load_multiple_features(["morphological", "zernike"], standardize=True, as_frame=True)
    assert list(data.frames) == ["morphological", "zernike"]
    f = data.frames["zernike"]
    assert f.shape == (2000, 47) and f.columns[0] == "zernike_0" and f.index.name == "digit"
    assert np.array_equal(f.to_numpy(), data.Xs[1])
    with pytest.raises(ValueError, match="as_frame must be a bool"):
        load_multiple_features(as_frame="yes")


def test_auto_selection_reports_modality_names(data):
    h = HCL("auto", selection={"n_resamples": 0}).fit(frames(data.Xs))
    assert h.selection_.structure.names == tuple(NAMES)
    text = str(h.selection_.summary())
    assert "rna" in text and "{rna,protein,atac}" in text


def test_round_trip_with_missing_values_and_a_chosen_penalty(tmp_path):
    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    Xs = simulate(s, (6, 7), 300, noise_var=0.3, random_state=0).Xs
    dfs = {n: pd.DataFrame(X.copy(), columns=[f"{n}{j}" for j in range(X.shape[1])]) for n, X in zip("ab", Xs)}
    dfs["a"].iloc[:20, :] = np.nan  # 20 samples miss modality a: NaN reaches missing="em"
    h = HCL(s, missing="em").fit(dfs)
    g = load_fit(h.save(tmp_path / "em.npz"))
    assert g.missing == "em"
    for f in ("transform", "posterior_mean", "score_samples"):
        assert np.array_equal(getattr(g, f)(dfs), getattr(h, f)(dfs)), f
    h = HCL(s, alpha="bic").fit(Xs)
    g = load_fit(h.save(tmp_path / "bic.npz"))
    assert g.alpha == "bic" and np.array_equal(g.transform(Xs), h.transform(Xs))
