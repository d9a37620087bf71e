"""Contract tests for every estimator of the package.

1. scikit-learn's own estimator checks (``parametrize_with_checks``) on every estimator whose input is
   scikit-learn's (X, y): the downstream models. Expected failures are documented once, in
   ``SKLEARN_XFAILS`` of ``tests/test_downstream.py`` (estimator name -> {check name: reason}).
2. The package's multi-view contract on every estimator that takes ``Xs`` (a list of (n_samples, p_m)
   arrays): clone, pickle, ``fit`` returns self, refit replaces the state, not-fitted errors, input
   messages naming ``Xs``, reproducibility for a fixed ``random_state``, ``get_params``/``set_params``,
   ``repr``, no warnings on a well-posed fit.

The estimators are discovered by walking the package: every public class defined in ``hcl_stats`` with a
``fit`` method must be listed in ``MULTIVIEW``, ``SUPERVISED`` or ``NOT_ESTIMATORS`` below, or
``test_every_estimator_is_classified`` fails naming it. Classes are named by their class name, so the
suite holds wherever a class lives (``hcl_stats.contrastive`` or ``hcl_stats.contrastive.linear``, ...).
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import pathlib
import pickle
import pkgutil
import warnings

import numpy as np
import pytest

import hcl_stats
from hcl_stats import Structure, simulate
from hcl_stats.exceptions import NotFittedError

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError as SkNotFittedError  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None


# -- discovery -------------------------------------------------------------------------------------
def _walk_classes():
    """Every public class with a ``fit`` method defined in an importable hcl_stats module, by name."""
    found, skipped = {}, {}
    for info in pkgutil.walk_packages(hcl_stats.__path__, "hcl_stats."):
        if info.name.endswith("__main__"):
            continue
        try:
            with warnings.catch_warnings():
                # deprecated shims (old import paths) warn on import; their classes are found where they live now
                warnings.simplefilter("ignore", FutureWarning)
                module = importlib.import_module(info.name)
        except ImportError as exc:  # an optional dependency (torch) is absent
            skipped[info.name] = str(exc)
            continue
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and obj.__module__.startswith("hcl_stats") and not name.startswith("_")
                    and callable(getattr(obj, "fit", None))):
                found.setdefault(obj.__name__, obj)
    return found, skipped


CLASSES, SKIPPED_MODULES = _walk_classes()

# multi-view estimators (fit(Xs)) -> how to build a small instance (see FACTORIES)
MULTIVIEW = ["HCL", "NaiveSVD", "PerModalityPCA", "SLIDE", "JIVE", "LinearContrastiveHCL",
             "DeepHCL", "FactorCL", "COrAL", "CoMM", "Cross", "CrossSelf", "SupCon"]
# scikit-learn (X, y) estimators
SUPERVISED = ["CorrectedLeastSquares", "GroupLasso", "GroupLassoCV", "LogisticDownstream", "GroupLassoLogistic"]
# classes with a fit method that are not estimators a user builds
NOT_ESTIMATORS = {
    "DeepContrastive": "abstract base of the deep models (no network of its own)",
}
DEEP = {"DeepHCL", "FactorCL", "COrAL", "CoMM", "Cross", "CrossSelf", "SupCon"}


def test_every_estimator_is_classified():
    known = set(MULTIVIEW) | set(SUPERVISED) | set(NOT_ESTIMATORS)
    unclassified = sorted(set(CLASSES) - known)
    assert not unclassified, (f"estimators not classified in tests/test_common.py (add them to MULTIVIEW, "
                              f"SUPERVISED or NOT_ESTIMATORS): {unclassified}")


def test_every_classified_estimator_exists():
    # a renamed or removed estimator must be reclassified, not silently dropped from the suite
    missing = sorted(n for n in [*MULTIVIEW, *SUPERVISED, *NOT_ESTIMATORS]
                     if n not in CLASSES and not (n in DEEP | {"DeepContrastive"} and not HAS_TORCH))
    assert not missing, f"classified in tests/test_common.py but not found in hcl_stats: {missing}"


# -- data ------------------------------------------------------------------------------------------
STRUCTURE = Structure({(0, 1): 1, (0,): 1, (1,): 1}, n_modalities=2)


def _data(n_features=(6, 8), n_samples=160, seed=0):
    d = simulate(STRUCTURE, n_features=n_features, n_samples=n_samples, noise_var=0.2, random_state=seed) \
        if "random_state" in inspect.signature(simulate).parameters else \
        simulate(STRUCTURE, n_features=n_features, n_samples=n_samples, noise_var=0.2, rng=seed)
    Xs = [np.ascontiguousarray(X, dtype=np.float64) for X in d.Xs]
    y = (Xs[0][:, 0] + Xs[1][:, 0] > 0).astype(int)
    return Xs, y


# -- factories -------------------------------------------------------------------------------------
_ALIASES = {"n_components": ("n_components", "rank", "dim")}


def _build(cls, **params):
    """``cls(**params)`` with the glossary's names mapped to the names the class has today."""
    names = set(cls._get_param_names()) if hasattr(cls, "_get_param_names") else \
        set(inspect.signature(cls).parameters)
    out = {}
    for key, value in params.items():
        for alias in _ALIASES.get(key, (key,)):
            if alias in names:
                out[alias] = value
                break
        else:
            raise KeyError(f"{cls.__name__} has none of {_ALIASES.get(key, (key,))}")
    return cls(**out)


TINY = dict(epochs=2, batch_size=32, patience=10, random_state=0)


def _hcl_methods():
    try:
        from hcl_stats.estimation import METHODS
        return sorted(METHODS)
    except ImportError:  # pragma: no cover - the registry moved
        return ["init", "paper", "ml", "als"]


def _factories():
    f = {}
    C = CLASSES
    for method in _hcl_methods():
        f[f"HCL[{method}]"] = (lambda method=method: C["HCL"](STRUCTURE, method=method))
    f["NaiveSVD"] = lambda: _build(C["NaiveSVD"], n_components=3)
    f["PerModalityPCA"] = lambda: _build(C["PerModalityPCA"], n_components=1)
    f["SLIDE"] = lambda: C["SLIDE"](STRUCTURE, random_state=0)
    f["JIVE"] = lambda: C["JIVE"](1, 1, random_state=0)
    f["LinearContrastiveHCL"] = lambda: C["LinearContrastiveHCL"](STRUCTURE, random_state=0)
    if HAS_TORCH:
        f["DeepHCL"] = lambda: _build(C["DeepHCL"], structure=STRUCTURE, hidden=(16,), **TINY)
        f["FactorCL"] = lambda: _build(C["FactorCL"], hidden=(16,), n_components=8, critic_hidden=8, **TINY)
        f["COrAL"] = lambda: C["COrAL"](d=8, heads=2, enc_hidden=(16,), n_tokens=3, token_dim=4, head_hidden=(16,),
                                        head_out=8, **TINY)
        f["CoMM"] = lambda: C["CoMM"](d=8, heads=2, enc_hidden=(16,), n_tokens=3, token_dim=4, head_hidden=(16,),
                                      head_out=8, **TINY)
        for name in ("Cross", "CrossSelf", "SupCon"):
            f[name] = (lambda name=name: _build(C[name], hidden=(16,), n_components=8, proj_dim=8, **TINY))
    return f


FACTORIES = _factories()
MV_IDS = sorted(FACTORIES)


def test_every_multiview_estimator_has_a_factory():
    have = {k.split("[")[0] for k in FACTORIES}
    expected = {n for n in MULTIVIEW if n in CLASSES}
    assert expected <= have, f"multi-view estimators without a factory in tests/test_common.py: {expected - have}"


def _needs_y(est):
    return bool(getattr(est, "supervised", False))


def _fit(est, Xs, y):
    return est.fit(Xs, y) if _needs_y(est) else est.fit(Xs)


def _fitted_attrs(est):
    return sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("_"))


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, z) for x, z in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a is b or a == b


def _same_params(p, q):
    return p.keys() == q.keys() and all(_same(p[k], q[k]) for k in p)


NOT_FITTED = (NotFittedError, SkNotFittedError)

# multi-view contract failures still open at the end of the session: {factory id: {check: reason}}
MV_XFAILS: dict[str, dict[str, str]] = {}


def _xfail(request, est_id, check):
    reason = MV_XFAILS.get(est_id, {}).get(check)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def other_data():
    return _data(n_features=(7, 5), n_samples=140, seed=1)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    if not HAS_TORCH:
        yield
        return
    import torch
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


_FIT_CACHE = {}


def _fitted(est_id, data):
    """One fitted instance per estimator for the read-only checks (fitting the deep models is the cost)."""
    if est_id not in _FIT_CACHE:
        Xs, y = data
        _FIT_CACHE[est_id] = _fit(FACTORIES[est_id](), Xs, y)
    return _FIT_CACHE[est_id]


def _mark(est_id):
    marks = [pytest.mark.deep] if est_id.split("[")[0] in DEEP else []
    return pytest.param(est_id, marks=marks, id=est_id)


MV_PARAMS = [_mark(i) for i in MV_IDS]


# -- the multi-view contract -----------------------------------------------------------------------
@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_fit_returns_self_and_transform_shape(est_id, data, request):
    _xfail(request, est_id, "fit_returns_self")
    Xs, y = data
    est = FACTORIES[est_id]()
    assert _fit(est, Xs, y) is est
    Z = est.transform(Xs)
    assert isinstance(Z, np.ndarray) and Z.ndim == 2 and Z.shape[0] == Xs[0].shape[0]
    assert Z.dtype == np.float64 and np.all(np.isfinite(Z))


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_clone_is_unfitted_with_equal_params(est_id, data, request):
    _xfail(request, est_id, "clone")
    est = _fitted(est_id, data)
    c = clone(est)
    assert type(c) is type(est) and c is not est
    assert _same_params(c.get_params(), est.get_params())
    assert _fitted_attrs(c) == [], f"clone carries fitted attributes {_fitted_attrs(c)}"
    with pytest.raises(NOT_FITTED, match="fit"):
        c.transform(data[0])


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_pickle_round_trip(est_id, data, request):
    _xfail(request, est_id, "pickle")
    est = _fitted(est_id, data)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(data[0]), est.transform(data[0]))
    assert _same_params(back.get_params(), est.get_params())


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_refit_replaces_state(est_id, data, other_data, request):
    _xfail(request, est_id, "refit")
    Xs2, y2 = other_data
    est = _fit(FACTORIES[est_id](), *data)
    _fit(est, Xs2, y2)
    fresh = _fit(FACTORIES[est_id](), Xs2, y2)
    assert _fitted_attrs(est) == _fitted_attrs(fresh)
    np.testing.assert_allclose(est.transform(Xs2), fresh.transform(Xs2), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="Xs"):  # the old shapes are gone
        est.transform(data[0])


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_not_fitted_errors_name_fit(est_id, data, request):
    _xfail(request, est_id, "not_fitted")
    est = FACTORIES[est_id]()
    for method in ("transform", "score", "score_samples", "posterior_mean", "summary"):
        if callable(getattr(est, method, None)):
            args = () if method == "summary" else (data[0],)
            with pytest.raises(NOT_FITTED, match="fit"):
                getattr(est, method)(*args)


BAD_INPUTS = {
    "one_modality_fewer": lambda Xs: Xs[:1],
    "one_modality_more": lambda Xs: Xs + [Xs[0]],
    "wrong_p": lambda Xs: [Xs[0][:, :-1], Xs[1]],
    "nan": lambda Xs: [np.where(np.arange(Xs[0].size).reshape(Xs[0].shape) == 5, np.nan, Xs[0]), Xs[1]],
    "one_d": lambda Xs: [Xs[0][:, 0], Xs[1]],
    "strings": lambda Xs: [Xs[0].astype(str), Xs[1]],
    "not_a_list": lambda Xs: Xs[0],
}


@pytest.mark.parametrize("bad", sorted(BAD_INPUTS))
@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_bad_input_at_transform_names_Xs(est_id, bad, data, request):
    _xfail(request, est_id, f"transform:{bad}")
    est = _fitted(est_id, data)
    with pytest.raises(ValueError, match="Xs"):
        est.transform(BAD_INPUTS[bad](list(data[0])))


FIT_BAD = ["nan", "one_d", "strings", "not_a_list"]


@pytest.mark.parametrize("bad", FIT_BAD)
@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_bad_input_at_fit_names_Xs(est_id, bad, data, request):
    _xfail(request, est_id, f"fit:{bad}")
    Xs, y = data
    est = FACTORIES[est_id]()
    with pytest.raises(ValueError, match="Xs"):
        _fit(est, BAD_INPUTS[bad](list(Xs)), y)


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_fit_modalities_not_matching_structure_names_Xs(est_id, data, request):
    _xfail(request, est_id, "fit:modalities_vs_structure")
    Xs, y = data
    est = FACTORIES[est_id]()
    if not isinstance(est.get_params().get("structure"), Structure):
        pytest.skip("no structure given: any number of modalities is valid")
    # a structure for two modalities and three arrays given: refused, the message names Xs
    with pytest.raises(ValueError, match="Xs"):
        _fit(est, Xs + [Xs[0]], y)


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_reproducible_for_fixed_random_state(est_id, data, request):
    _xfail(request, est_id, "reproducible")
    Xs, y = data
    a = FACTORIES[est_id]()
    if "random_state" in a.get_params():
        a.set_params(random_state=3)
    b = clone(a)
    np.testing.assert_array_equal(_fit(a, Xs, y).transform(Xs), _fit(b, Xs, y).transform(Xs))


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_get_set_params_round_trip_and_repr(est_id, data, request):
    _xfail(request, est_id, "params")
    est = FACTORIES[est_id]()
    params = est.get_params()
    assert params, "get_params returned nothing"
    assert est.set_params(**params) is est
    assert _same_params(est.get_params(), params)
    # each parameter is stored as given (scikit-learn's rule: __init__ does not transform it)
    sig = inspect.signature(type(est).__init__).parameters
    assert set(params) == {k for k, p in sig.items() if k != "self" and p.kind not in (p.VAR_POSITIONAL,
                                                                                      p.VAR_KEYWORD)}
    with pytest.raises(ValueError, match="no_such_parameter"):
        est.set_params(no_such_parameter=1)
    assert type(est).__name__ in repr(est)
    assert type(est).__name__ in repr(_fitted(est_id, data))


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_no_warning_on_well_posed_fit(est_id, data, request):
    _xfail(request, est_id, "no_warnings")
    Xs, y = data
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        _fit(FACTORIES[est_id](), Xs, y).transform(Xs)
    assert not rec, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in rec]


# -- scikit-learn's checks on the (X, y) estimators ------------------------------------------------
# hcl_stats.base.BaseEstimator deliberately does not import scikit-learn; the checks themselves tell whether
# the estimators honour scikit-learn's contract, so scikit-learn's collection-time warning about it is muted
_NOT_SKLEARN_BASE = ".*does not inherit from `sklearn.base.BaseEstimator`"


def _sklearn_xfails():
    """SKLEARN_XFAILS of tests/test_downstream.py, the one place the expected failures are documented:
    {estimator name: (instance, {check name: reason})} (or {estimator name: {check name: reason}})."""
    path = pathlib.Path(__file__).with_name("test_downstream.py")
    spec = importlib.util.spec_from_file_location("_contract_test_downstream", path)
    module = importlib.util.module_from_spec(spec)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NOT_SKLEARN_BASE, category=UserWarning)
            spec.loader.exec_module(module)
    except Exception:  # pragma: no cover - test_downstream cannot be imported: fail its own tests, not these
        return {}
    out = {}
    for name, entry in dict(getattr(module, "SKLEARN_XFAILS", {})).items():
        est, reasons = entry if isinstance(entry, tuple) else (None, entry)
        out[name] = (est, dict(reasons))
    return out


SKLEARN_XFAILS = _sklearn_xfails()


def _sk_estimators():
    """One instance per (X, y) estimator: test_downstream's (small settings) when it lists one."""
    out = []
    for name in SUPERVISED:
        if name in CLASSES:
            est = SKLEARN_XFAILS.get(name, (None, {}))[0]
            out.append(clone(est) if est is not None else CLASSES[name]())
    return out


def _expected_failed(est):
    return dict(SKLEARN_XFAILS.get(type(est).__name__, (None, {}))[1])


def test_every_supervised_estimator_is_checked():
    assert sorted(type(e).__name__ for e in _sk_estimators()) == sorted(n for n in SUPERVISED if n in CLASSES)


try:
    from sklearn.utils.estimator_checks import parametrize_with_checks
except ImportError:  # pragma: no cover
    parametrize_with_checks = None

if parametrize_with_checks is not None and "expected_failed_checks" in inspect.signature(
        parametrize_with_checks).parameters:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NOT_SKLEARN_BASE, category=UserWarning)
        _with_checks = parametrize_with_checks(_sk_estimators(), expected_failed_checks=_expected_failed)

    @_with_checks
    def test_sklearn_compatible_estimator(estimator, check):
        from hcl_stats.exceptions import ConvergenceWarning, EstimationWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EstimationWarning)  # tiny random designs: the corrected H gets clipped
            warnings.simplefilter("ignore", ConvergenceWarning)  # logistic fits on separable blobs
            check(estimator)
else:  # pragma: no cover - scikit-learn < 1.6
    @pytest.mark.skip(reason="needs scikit-learn >= 1.6 (expected_failed_checks)")
    def test_sklearn_compatible_estimator():
        pass


@pytest.mark.parametrize("est_id", MV_PARAMS)
def test_fit_transform_matches_fit_then_transform(est_id, data, request):
    _xfail(request, est_id, "fit_transform")
    Xs, y = data
    est = FACTORIES[est_id]()
    if not callable(getattr(est, "fit_transform", None)):
        pytest.skip("no fit_transform")
    Z = est.fit_transform(Xs, y) if _needs_y(est) else est.fit_transform(Xs)
    np.testing.assert_allclose(Z, est.transform(Xs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Z, _fit(FACTORIES[est_id](), Xs, y).transform(Xs), rtol=1e-10, atol=1e-12)
