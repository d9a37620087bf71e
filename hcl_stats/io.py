"""Real data in and out: labelled tables (pandas DataFrames), MuData, and saved fits.

Tables in
---------
:func:`as_arrays` turns what a user hands to :meth:`hcl_stats.HCL.fit` into the list of arrays
the estimators work on, and keeps the labels:

- a list of arrays: returned unchanged (no names);
- a list of DataFrames (arrays may be mixed in): feature names from the columns, sample labels
  from the index; modalities keep the structure's names (``m0``, ``m1``, ... by default);
- a dict ``{modality name: DataFrame or array}``: the keys name the modalities (in the dict's
  order, or in the order of a named ``Structure``);
- a ``mudata.MuData``: the modalities of ``mdata.mod`` (``.X`` or ``.layers[use_layer]``), named by
  their keys, features by ``var_names``, samples by ``mdata.obs_names``.

Rows are matched by label, never dropped: when the tables index the same samples in different
orders they are put in the order of the first table (for MuData: ``mdata.obs_names``); when the
sets of samples differ the input is refused with a message naming the modality and the samples
that are missing. Non-numeric columns, duplicate feature names, duplicate sample labels that
would need aligning and a modality with no features are errors naming the modality.

Saved fits
----------
:func:`save_fit` / :func:`load_fit` (also ``HCL.save`` and ``hcl_stats.load_fit``) write and read
a fitted :class:`~hcl_stats.HCL` as one ``.npz`` file readable with ``allow_pickle=False``:

- ``header``: a 0-d unicode array holding a JSON object with ``format`` (``"hcl_stats.fit"``),
  ``format_version`` (an integer, :data:`FORMAT_VERSION`), ``hcl_stats_version``, ``params``
  (the estimator's hyperparameters; ``structure`` is ``"auto"`` or a structure description),
  ``structure`` (the fitted structure: ``{"n_modalities", "ranks": {"0,1": 2, ...}, "names"}``),
  ``n_features``, ``n_samples``, ``method``, ``noise_model``, ``n_iter``, ``converged``,
  ``fit_time``, ``modality_names``, ``factor_names``, ``has_feature_names`` (one bool per modality),
  ``selection_summary`` (text, or null) and ``arrays`` (the names of the arrays below);
- ``loadings`` (p, K), ``noise_var_features`` (p,), ``mean`` (p,), ``feature_var`` (p,): float64;
- ``feature_names_<m>`` (p_m,) unicode, for each modality m (0-based) that had feature names;
- ``history_<key>`` (n_iter,) float64, the refinement trace;
- ``extra_<name>``: optional arrays added by the caller (the CLI stores nothing there).

A file with a ``format_version`` newer than this hcl_stats reads is refused with a message
asking to upgrade; an older one is read by the converter for its version (none yet: 1 is the
first). The loaded estimator transforms exactly as the saved one (same arrays, same code path).
"""
from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["as_arrays", "Tables", "save_fit", "load_fit", "write_mudata", "FORMAT_VERSION", "FORMAT_NAME"]

FORMAT_NAME = "hcl_stats.fit"
FORMAT_VERSION = 1


# -- type tests without importing pandas / mudata ---------------------------------------------------
def _has_class(x, module: str, name: str) -> bool:
    return any(c.__name__ == name and c.__module__.split(".")[0] == module for c in type(x).__mro__)


def is_dataframe(x) -> bool:
    return _has_class(x, "pandas", "DataFrame")


def is_mudata(x) -> bool:
    return _has_class(x, "mudata", "MuData")


def _is_anndata(x) -> bool:
    return _has_class(x, "anndata", "AnnData")


def is_table_input(Xs) -> bool:
    """True when ``Xs`` carries labels :func:`as_arrays` must read (a dict, a MuData, or a list
    holding a DataFrame)."""
    if is_mudata(Xs) or isinstance(Xs, Mapping):
        return True
    return isinstance(Xs, (list, tuple)) and any(is_dataframe(X) for X in Xs)


def _preview(labels, k=5) -> str:
    labels = [v.item() if isinstance(v, np.generic) else v for v in labels]
    more = f", ... ({len(labels)} in all)" if len(labels) > k else ""
    return "[" + ", ".join(repr(v) for v in labels[:k]) + more + "]"


class Tables(NamedTuple):
    """Arrays with their labels, as read by :func:`as_arrays`.

    Attributes
    ----------
    arrays : list of ndarray (n_samples, p_m), or the input unchanged when it carries no labels
    modality_names : tuple of str or None
        From dict keys or ``mdata.mod``; None for a list.
    feature_names : list of (ndarray of str or None) or None
        One entry per modality (None for a modality given as a plain array).
    index : sequence or None
        The sample labels (a pandas Index or a list), None for arrays only.
    """

    arrays: object
    modality_names: tuple | None = None
    feature_names: list | None = None
    index: object = None


def _frame_to_array(df, label, name):
    """One DataFrame -> (float64 array, feature names). Non-numeric columns and duplicate names
    are errors naming the modality."""
    import pandas as pd

    if df.shape[1] == 0:
        raise ValueError(f"{name}[{label}] has 0 features (columns); every modality needs at least one. Remove it "
                         "from the input (and from the structure).")
    bad = [(str(c), str(t)) for c, t in df.dtypes.items()
           if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))
           or pd.api.types.is_complex_dtype(t)]
    if bad:
        cols = ", ".join(f"{c!r} ({t})" for c, t in bad[:5]) + (f", ... ({len(bad)} in all)" if len(bad) > 5 else "")
        raise ValueError(f"{name}[{label}] must have numeric columns only; got non-numeric columns {cols}. Drop them or "
                         "encode them as numbers first (e.g. sample identifiers belong in the index).")
    names = np.array([str(c) for c in df.columns], dtype=str)
    uniq, counts = np.unique(names, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"{name}[{label}] has duplicate feature names {_preview(uniq[counts > 1])}; feature names must be "
                         "unique within a modality (loadings are reported by name). Rename or aggregate them first.")
    # C order, as numpy arrays usually come: the fit then sees exactly the numbers and layout it
    # would see from the equivalent array (pandas versions differ in the layout they return)
    arr = np.ascontiguousarray(df.to_numpy(dtype=np.float64, na_value=np.nan))
    return arr, names


def _align(indexes, labels, name, *, reference=None, ref_label=None):
    """Row order of each table so that all follow ``reference`` (default: the first index).
    Same samples in another order -> reordered; different samples -> ValueError."""
    ref = indexes[0] if reference is None else reference
    ref_label = labels[0] if ref_label is None else ref_label
    ref = list(ref)
    orders = []
    for idx, label in zip(indexes, labels):
        idx = list(idx)
        if idx == ref:
            orders.append(None)
            continue
        s_idx, s_ref = set(idx), set(ref)
        if len(s_idx) != len(idx) or len(s_ref) != len(ref):
            dup_of = label if len(s_idx) != len(idx) else ref_label
            raise ValueError(f"{name}: the samples of {label} are not in the order of {ref_label} and {dup_of} has duplicate "
                             "sample labels, so the rows cannot be matched by label. Make the index unique (or give the "
                             "modalities with identical indexes).")
        if s_idx != s_ref:
            extra = [v for v in idx if v not in s_ref]
            missing = [v for v in ref if v not in s_idx]
            raise ValueError(f"{name}: every modality must hold the same samples (rows are matched by label, none is "
                             f"dropped); {label} has {len(idx)} samples and {ref_label} has {len(ref)}: {len(missing)} of "
                             f"{ref_label}'s samples are missing from {label} {_preview(missing)} and {len(extra)} of "
                             f"{label}'s are not in {ref_label} {_preview(extra)}. Keep the shared samples first, e.g. "
                             "common = a.index.intersection(b.index); a.loc[common], b.loc[common].")
        pos = {v: i for i, v in enumerate(idx)}
        orders.append(np.fromiter((pos[v] for v in ref), dtype=np.intp, count=len(ref)))
    return orders


align_rows = _align   # public: the CLI matches the rows of the modality tables by sample label


def _layer_matrix(adata, mod, use_layer, name):
    if use_layer is None:
        X = adata.X
        if X is None:
            raise ValueError(f"{name}.mod[{mod!r}].X is None; pass use_layer= naming one of its layers "
                             f"{sorted(adata.layers.keys())}.")
    else:
        layer = use_layer.get(mod) if isinstance(use_layer, Mapping) else use_layer
        if layer is None:
            X = adata.X
        else:
            if layer not in adata.layers:
                raise ValueError(f"use_layer={layer!r}: modality {mod!r} has no such layer; its layers are "
                                 f"{sorted(adata.layers.keys())}.")
            X = adata.layers[layer]
    if hasattr(X, "toarray"):  # scipy sparse: densified (HCL works from dense sufficient statistics)
        X = X.toarray()
    return np.asarray(X, dtype=np.float64) if np.asarray(X).dtype.kind in "biuf" else np.asarray(X)


def _from_mudata(mdata, use_layer, name):
    mods = dict(mdata.mod)
    if not mods:
        raise ValueError(f"{name} is a MuData with no modalities (mdata.mod is empty).")
    if isinstance(use_layer, Mapping):
        unknown = sorted(set(use_layer) - set(mods))
        if unknown:
            raise ValueError(f"use_layer names modalities {unknown} that are not in {name}.mod {sorted(mods)}.")
    arrays, fnames, indexes, labels = [], [], [], []
    for mod, ad in mods.items():
        if ad.n_vars == 0:
            raise ValueError(f"{name}.mod[{mod!r}] has 0 features (n_vars = 0); every modality needs at least one. "
                             f"Remove it first (del mdata.mod[{mod!r}]; mdata.update()).")
        if ad.n_obs == 0:
            raise ValueError(f"{name}.mod[{mod!r}] has 0 samples (n_obs = 0).")
        X = _layer_matrix(ad, mod, use_layer, name)
        names = np.array([str(v) for v in ad.var_names], dtype=str)
        uniq, counts = np.unique(names, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(f"{name}.mod[{mod!r}] has duplicate feature names (var_names) {_preview(uniq[counts > 1])}; "
                             "make them unique first (mdata.mod[...].var_names_make_unique()).")
        arrays.append(X)
        fnames.append(names)
        indexes.append(list(ad.obs_names))
        labels.append(f"{name}.mod[{mod!r}]")
    ref = list(mdata.obs_names)
    orders = _align(indexes, labels, name, reference=ref, ref_label=f"{name}.obs_names")
    arrays = [X if o is None else X[o] for X, o in zip(arrays, orders)]
    return Tables(arrays, tuple(str(m) for m in mods), fnames, mdata.obs_names)


def as_arrays(Xs, *, use_layer=None, name: str = "Xs") -> Tables:
    """Read labelled input into arrays and labels (see the module docstring for what is accepted).

    Parameters
    ----------
    Xs : list of array or DataFrame, dict of them, or MuData
    use_layer : str or dict, optional
        MuData only: the layer of each modality to use instead of ``.X`` (one name for all, or
        ``{modality: layer}``).
    name : str
        The argument's name in error messages.

    Returns
    -------
    Tables
        ``arrays`` is the input unchanged when it carries no labels (a list of arrays, an
        out-of-core source), else a list of float64 arrays with the rows matched by label.
    """
    if is_mudata(Xs):
        return _from_mudata(Xs, use_layer, name)
    if use_layer is not None:
        raise ValueError(f"use_layer applies to MuData input only; got use_layer={use_layer!r} with {name} of type "
                         f"{type(Xs).__name__}.")
    if isinstance(Xs, Mapping):
        if len(Xs) == 0:
            raise ValueError(f"{name} must contain at least one modality; got an empty dict.")
        keys = list(Xs)
        bad = [k for k in keys if not isinstance(k, (str, numbers.Integral)) or isinstance(k, bool)]
        if bad:
            raise ValueError(f"{name}: the keys of a dict of modalities must be modality names (str); got keys {bad!r}.")
        mod_names = tuple(str(k) for k in keys)
        if len(set(mod_names)) != len(mod_names):
            raise ValueError(f"{name}: the modality names must be distinct as strings; got {list(keys)!r}.")
        values = [Xs[k] for k in keys]
        labels = [f"{name}[{k!r}]" for k in mod_names]
        label_keys = [repr(k) for k in mod_names]
    elif isinstance(Xs, (list, tuple)) and any(is_dataframe(X) for X in Xs):
        mod_names = None
        values = list(Xs)
        labels = [f"{name}[{m}]" for m in range(len(values))]
        label_keys = [str(m) for m in range(len(values))]
    else:
        return Tables(Xs)
    arrays, fnames, indexes, idx_labels = [], [], [], []
    for X, lab, key in zip(values, labels, label_keys):
        if _is_anndata(X):
            raise ValueError(f"{lab} is an AnnData; pass the MuData holding it, or X.to_df().")
        if is_dataframe(X):
            arr, names = _frame_to_array(X, key, name)
            arrays.append(arr)
            fnames.append(names)
            indexes.append(X.index)
            idx_labels.append(lab)
        else:
            arrays.append(X)
            fnames.append(None)
    index = None
    if indexes:
        orders = iter(_align(indexes, idx_labels, name))
        for m, v in enumerate(values):
            if is_dataframe(v):
                o = next(orders)
                if o is not None:
                    arrays[m] = arrays[m][o]
        index = indexes[0]
        n = len(index)
        rows = [np.shape(X)[0] if np.ndim(X) >= 1 else None for X in arrays]
        bad = [(lab, r) for lab, r in zip(labels, rows) if r != n]
        if bad:
            raise ValueError(f"{name}: every modality must have the same number of rows (samples); the DataFrames have {n} "
                             f"and {', '.join(f'{lab} has {r}' for lab, r in bad)}.")
    if all(f is None for f in fnames):
        fnames = None
    return Tables(arrays, mod_names, fnames, index)


# -- saved fits ----------------------------------------------------------------------------------------
def _jsonable(v, what):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x, f"{what}[{k!r}]") for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, what) for x in v]
    raise ValueError(f"save: {what} = {v!r} (type {type(v).__name__}) cannot be stored in the JSON header of a saved fit; "
                     "use plain numbers, strings, lists or dicts.")


def _float_or_none(v):
    return None if v is None or not np.isfinite(v) else float(v)


def save_fit(hcl, path, *, extra=None) -> Path:
    """Write a fitted HCL to ``path`` (a ``.npz`` file; the name is used as given).

    Parameters
    ----------
    hcl : fitted HCL
    path : str or path-like
    extra : dict of str -> ndarray, optional
        Additional arrays stored as ``extra_<name>`` (not read back by :func:`load_fit`).

    Returns
    -------
    Path
        The file written.
    """
    import sys

    from .structure import Structure

    # the running package's version (io is imported as part of it; no import of the package
    # itself, which is a higher layer)
    __version__ = getattr(sys.modules.get(__package__), "__version__", None)

    hcl._check_fitted()
    params = hcl.get_params()
    sparam = params.pop("structure")
    part = params.pop("solver", None)
    params = {k: _jsonable(v, f"HCL parameter {k!r}") for k, v in params.items()}
    params["solver"] = None if part is None else {"part": type(part).__name__,
                                                  "params": _jsonable(part.get_params(), "solver parameters")}
    params["structure"] = sparam.to_dict() if isinstance(sparam, Structure) else _jsonable(sparam, "structure")
    arrays = {"loadings": np.asarray(hcl.loadings_, np.float64),
              "noise_var_features": np.asarray(hcl.noise_var_features_, np.float64),
              "mean": np.asarray(hcl.mean_, np.float64),
              "feature_var": np.asarray(hcl.results_.feature_var, np.float64)}
    fn = getattr(hcl, "feature_names_in_", None)
    if fn is not None:
        for m, names in enumerate(fn):
            if names is not None:
                arrays[f"feature_names_{m}"] = np.asarray(names, dtype=str)
    history = {}
    for k, v in (hcl.history_ or {}).items():
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            continue  # a non-numeric trace entry is not stored
        if a.ndim == 1:
            arrays[f"history_{k}"] = a
            history[k] = True
    for k, v in (extra or {}).items():
        a = np.asarray(v)
        if a.dtype == object:
            raise ValueError(f"save: extra[{k!r}] must be a numeric or string array (files are read without pickle); "
                             f"got dtype object.")
        arrays[f"extra_{k}"] = a
    sel = getattr(hcl, "selection_", None)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "hcl_stats_version": __version__,
        "params": params,
        "structure": hcl.structure_.to_dict(),
        "n_features": [int(p) for p in hcl.n_features_],
        "n_samples": None if hcl.n_samples_ is None else int(hcl.n_samples_),
        "method": getattr(hcl, "method_", hcl.method),
        "noise_model": hcl.noise_model_,
        "n_iter": int(hcl.n_iter_),
        "converged": bool(hcl.converged_),
        "stop_crit": _float_or_none(getattr(hcl, "stop_crit_", None)),
        "tol": _float_or_none(getattr(hcl, "tol_", None)),
        "objective": _float_or_none(getattr(hcl, "objective_", None)),
        "loglik": _float_or_none(getattr(hcl, "loglik_", None)),
        "objective_label": getattr(hcl.results_, "objective_label", None),
        "fit_time": None if hcl.results_.fit_time is None else float(hcl.results_.fit_time),
        "modality_names": list(hcl.structure_.names),
        "factor_names": [str(v) for v in hcl.get_feature_names_out()],
        "has_feature_names": [False] * len(hcl.n_features_) if fn is None else [f is not None for f in fn],
        "selection_summary": None if sel is None else str(sel.summary()),
        "arrays": sorted(arrays),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, header=np.array(json.dumps(header)), **arrays)
    return path


def read_header(path) -> dict:
    """The JSON header of a saved fit (checked: format and version)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_fit: {str(path)!r} does not exist.")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"load_fit: cannot read {str(path)!r} as an hcl_stats saved fit (.npz): {exc}") from None
    if not hasattr(z, "files"):  # a .npy file holding one array
        raise ValueError(f"load_fit: {str(path)!r} is not an hcl_stats saved fit (a single .npy array, not an .npz).")
    with z:
        if "header" not in z.files:
            raise ValueError(f"load_fit: {str(path)!r} is not an hcl_stats saved fit (no 'header' entry; it holds "
                             f"{sorted(z.files)[:8]}).")
        try:
            header = json.loads(str(z["header"][()]))
        except Exception as exc:
            raise ValueError(f"load_fit: cannot read the header of {str(path)!r}: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"load_fit: {str(path)!r} is not an hcl_stats saved fit (header format "
                         f"{header.get('format') if isinstance(header, dict) else header!r}, expected {FORMAT_NAME!r}).")
    v = header.get("format_version")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"load_fit: {str(path)!r} has an invalid format_version {v!r} (expected an integer >= 1).")
    if v > FORMAT_VERSION:
        raise ValueError(f"load_fit: {str(path)!r} was written in format version {v} (by hcl_stats "
                         f"{header.get('hcl_stats_version')}); this hcl_stats reads versions up to {FORMAT_VERSION}. "
                         "Upgrade hcl_stats to load it.")
    return header


def load_fit(path):
    """Read a fit written by :meth:`HCL.save` / :func:`save_fit`.

    Returns
    -------
    HCL
        A fitted estimator: ``transform``, ``posterior_mean``, ``represent``, ``score_samples``,
        ``summary``, ``loadings_frame`` work as on the saved one (identical arrays). Not restored:
        the selection evidence (``selection_`` is None; its summary text is in the header), the
        method's extra ``info``, and the training covariance (``goodness_of_fit`` needs ``Xs``).

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file; a file that is not a saved fit, or one in a newer format version.
    """
    from .model import HCL, HCLResults
    from .structure import Structure

    path = Path(path)
    header = read_header(path)
    with np.load(path, allow_pickle=False) as z:
        arr = {k: z[k] for k in z.files if k != "header"}
    missing = [k for k in ("loadings", "noise_var_features", "mean", "feature_var") if k not in arr]
    if missing:
        raise ValueError(f"load_fit: {str(path)!r} lacks the arrays {missing} of format version {header['format_version']}.")
    params = dict(header["params"])
    sp = params.pop("structure")
    structure_param = Structure.from_dict(sp) if isinstance(sp, dict) else sp
    if "solver" not in params:
        # written before the solver parts: the old defaults of the method options meant "the method's default"
        for k, old in (("lr", 1e-4), ("lr_decay", 0.1), ("decay_every", 10), ("min_iter", 100), ("shrinkage", True)):
            if params.get(k) == old:
                params[k] = None
    sol = params.pop("solver", None)
    if sol is not None:
        from .estimation.solvers import SOLVERS

        parts = {cls.__name__: cls for cls in SOLVERS.values()}
        if sol.get("part") not in parts:
            raise ValueError(f"load_fit: {str(path)!r} names an unknown solver part {sol.get('part')!r} "
                             f"(known: {sorted(parts)}).")
        params["solver"] = parts[sol["part"]](**sol.get("params", {}))
    est = HCL(structure_param, **params)
    structure = Structure.from_dict(header["structure"])
    n_features = tuple(int(p) for p in header["n_features"])
    history = {k[len("history_"):]: v for k, v in arr.items() if k.startswith("history_")}
    est.structure_ = structure
    est.n_features_ = n_features
    est.n_samples_ = header["n_samples"]
    est.mean_ = arr["mean"]
    est.loadings_ = arr["loadings"]
    est.noise_var_features_ = arr["noise_var_features"]
    est.n_iter_ = int(header["n_iter"])
    est.converged_ = bool(header["converged"])
    nan = float("nan")
    for key in ("stop_crit", "tol", "objective", "loglik"):
        v = header.get(key)
        setattr(est, key + "_", nan if v is None else float(v))
    est.method_ = header["method"]
    try:
        est.solver_ = est._solver()
    except ValueError:  # pragma: no cover - parameters of a file written by another version
        est.solver_ = None
    est.history_ = history
    est.results_ = HCLResults(structure, n_features, est.loadings_, est.noise_var_features_, est.n_iter_,
                              est.converged_, history, header["method"], est.n_samples_, arr["feature_var"],
                              fit_time=header.get("fit_time"), stop_crit=est.stop_crit_, tol=est.tol_,
                              objective=est.objective_, loglik=est.loglik_)
    est.results_.objective_label = header.get("objective_label")
    est.noise_var_ = est.results_.noise_var
    est.noise_model_ = header["noise_model"]
    est.selection_ = None
    est._selection_result = None
    est.results_.noise_model = est.noise_model_
    est.results_.selection = None
    est._gof_stats = None
    has = header.get("has_feature_names") or []
    if any(has):
        est.feature_names_in_ = [arr[f"feature_names_{m}"] if h else None for m, h in enumerate(has)]
    est.modality_names_ = tuple(header["modality_names"])
    return est


# -- MuData out ----------------------------------------------------------------------------------------
def write_mudata(hcl, mdata, *, use_layer=None, kind="paper", key="X_hcl", loadings_key="hcl_loadings"):
    """Store a fit in a MuData, as muon does for MOFA+: the representation of ``mdata``'s samples
    in ``mdata.obsm[key]`` (n_obs, K), each modality's loadings in
    ``mdata.mod[m].varm[loadings_key]`` (p_m, K), and ``mdata.uns["hcl"]`` (factor names,
    modality names, structure, kind).

    The modalities are matched by name with the fit's and their features must be those of the
    fit, in order. Returns ``mdata`` (modified in place).
    """
    if not is_mudata(mdata):
        raise ValueError(f"mdata must be a mudata.MuData; got {type(mdata).__name__}.")
    Z = hcl.represent(mdata, kind=kind, use_layer=use_layer)
    Z = np.asarray(Z, dtype=np.float64)
    W = hcl.loadings_
    rows = hcl.structure_.row_slices(hcl.n_features_)
    for m, name in enumerate(hcl.structure_.names):
        mdata.mod[name].varm[loadings_key] = np.array(W[rows[m]])
    mdata.obsm[key] = Z
    mdata.uns["hcl"] = {"factor_names": [str(v) for v in hcl.get_feature_names_out()],
                        "modality_names": list(hcl.structure_.names), "kind": kind,
                        "structure": json.dumps(hcl.structure_.to_dict()), "obsm_key": key,
                        "varm_key": loadings_key}
    return mdata
