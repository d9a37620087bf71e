"""Solver parts (EM, ALS, PaperGD, SpectralInit) and the one stopping criterion:
converged_ == (stop_crit_ <= tol_) for every method, options the method does not use are errors,
the optimality measures against finite differences, loglik_ against an independent computation,
and score / score_samples / get_covariance / get_precision against scikit-learn's FactorAnalysis."""
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from hcl_stats import HCL, Structure, simulate
from hcl_stats.covariance import sample_covariance
from hcl_stats.estimation import METHODS
from hcl_stats.estimation.ml import _Layout, _estep, fit_ml, optimality
from hcl_stats.estimation.paper import _denoise, paper_objective, paper_refine, paper_stop_crit
from hcl_stats.estimation.solvers import ALS, EM, PaperGD, SpectralInit
from hcl_stats.exceptions import ConvergenceWarning
from hcl_stats.likelihood import loglik_from_cov

S = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
NF = (12, 15, 18)


@pytest.fixture(scope="module")
def data():
    return simulate(S, NF, 400, noise_var=0.5, random_state=0)


def _fit(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return HCL(S, **kw).fit(data.Xs)


# -- one meaning of "converged" ----------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(shrinkage=False), dict(noise="modality"), dict(method="als"),
                                dict(method="als", shrinkage=False), dict(method="paper"), dict(method="init"),
                                dict(alpha=0.1), dict(alpha=0.1, l1_ratio=0.0), dict(alpha="bic"),
                                dict(max_iter=3), dict(method="als", max_iter=2), dict(method="paper", max_iter=5)])
def test_converged_is_stop_crit_below_tol(data, kw):
    h = _fit(data, **kw)
    assert h.converged_ == bool(h.stop_crit_ <= h.tol_)
    assert h.results_.converged == h.converged_ and h.results_.stop_crit == h.stop_crit_ or np.isnan(h.stop_crit_)
    assert np.isfinite(h.objective_) and np.isfinite(h.loglik_)
    if kw.get("method") == "init":
        assert np.isnan(h.stop_crit_) and np.isnan(h.tol_) and not h.converged_ and h.n_iter_ == 0
    else:
        assert np.isfinite(h.stop_crit_) and h.tol_ > 0
    if kw.get("max_iter") in (2, 3):
        assert not h.converged_        # a few iterations do not reach a stationary point


def test_converged_missing_data(data):
    Xs = [x.copy() for x in data.Xs]
    Xs[0][:20, :4] = np.nan
    for kw, conv in ((dict(), True), (dict(max_iter=2), False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            h = HCL(S, missing="em", **kw).fit(Xs)
        assert h.converged_ == bool(h.stop_crit_ <= h.tol_) == conv


def test_estimation_result_enforces_the_rule():
    from hcl_stats.estimation import EstimationResult

    r = EstimationResult(loadings=np.zeros((2, 1)), noise_var=np.ones(2), n_iter=3, converged=True,
                         stop_crit=1e-3, tol=1e-6)
    assert r.converged is False and r.info["stopping_rule_met"] is True
    r = EstimationResult(loadings=np.zeros((2, 1)), noise_var=np.ones(2), n_iter=3, stop_crit=1e-8, tol=1e-6)
    assert r.converged is True


# -- options: the part holds them; an option the method does not use is an error ----------------
UNUSED = {
    "ml": [("lr", 5.0), ("lr_decay", 0.5), ("decay_every", 3), ("min_iter", 4)],
    "als": [("lr", 5.0), ("min_iter", 4), ("decay_every", 3)],
    "paper": [("accelerate", None), ("shrinkage", True), ("shrinkage", False)],
    "init": [("shrinkage", True), ("max_iter", 50), ("tol", 1e-3), ("lr", 1e-3), ("accelerate", None)],
}


@pytest.mark.parametrize("method,option,value", [(m, o, v) for m, ov in UNUSED.items() for o, v in ov])
def test_an_option_the_method_does_not_use_is_an_error(data, method, option, value):
    with pytest.raises(ValueError, match=rf"The '{option}' parameter of HCL is not used by method='{method}'"):
        HCL(S, method=method, **{option: value}).fit(data.Xs)


def test_the_issue_example_raises(data):
    with pytest.raises(ValueError, match=r"The 'lr' parameter of HCL is not used by method='als'"):
        HCL(S, method="als", noise="feature", lr=5.0, accelerate=None).fit(data.Xs)
    with pytest.raises(ValueError, match=r"The 'noise' parameter of HCL must be one of \('modality',\) for method='als'"):
        HCL(S, method="als", noise="feature", accelerate=None).fit(data.Xs)


@pytest.mark.parametrize("method", ["ml", "als", "paper", "init"])
def test_unknown_keyword_to_a_registered_method_is_an_error(data, method):
    st = sample_covariance(data.Xs)
    with pytest.raises(TypeError, match="lrr"):
        METHODS[method](st, S, lrr=1.0)


def test_solver_part_equals_method_string_and_options(data):
    a = _fit(data, max_iter=7)
    b = _fit(data, solver=EM(max_iter=7))
    np.testing.assert_array_equal(a.loadings_, b.loadings_)
    c = _fit(data, method="paper", lr=2e-4, min_iter=50)
    d = _fit(data, solver=PaperGD(lr=2e-4, min_iter=50))
    np.testing.assert_array_equal(c.loadings_, d.loadings_)
    e = _fit(data, solver=ALS(shrinkage=False))
    assert e.noise_model_ == "isotropic" and e.method_ == "als" and e.solver_ == ALS(shrinkage=False)
    f = _fit(data, solver=SpectralInit())
    np.testing.assert_array_equal(f.loadings_, _fit(data, method="init").loadings_)


def test_solver_with_top_level_options_or_other_method_is_an_error(data):
    with pytest.raises(ValueError, match=r"The 'max_iter' parameter of HCL is a solver option"):
        HCL(S, solver=EM(), max_iter=5).fit(data.Xs)
    with pytest.raises(ValueError, match=r"The 'method' parameter of HCL must be left at its default"):
        HCL(S, method="paper", solver=EM()).fit(data.Xs)
    with pytest.raises(ValueError, match=r"The 'solver' parameter of HCL must be"):
        HCL(S, solver="em").fit(data.Xs)
    with pytest.raises(ValueError, match=r"The 'alpha' parameter of HCL \(sparse loadings\) is supported by method='ml' only"):
        HCL(S, solver=PaperGD(), alpha=0.1).fit(data.Xs)


@pytest.mark.parametrize("part,option,value,expected", [
    (EM, "max_iter", 0, "an int in"), (EM, "accelerate", "anderson", "one of"), (EM, "shrinkage", 1, "a bool"),
    (ALS, "accelerate", "magic", "one of"), (ALS, "polish", "yes", "a bool"),
    (PaperGD, "lr", -1.0, r"a float in \(0, inf\)"), (PaperGD, "lr_decay", 2.0, "a float in"),
    (PaperGD, "decay_every", 0, "an int in"), (PaperGD, "tol", -1.0, "a float in")])
def test_parts_validate_their_options(part, option, value, expected):
    with pytest.raises(ValueError, match=rf"The '{option}' parameter of {part.__name__} must be {expected}"):
        part(**{option: value}).validate()
    with pytest.raises(TypeError):
        part(not_an_option=1)


def test_parts_params_repr_and_clone():
    sk = pytest.importorskip("sklearn.base")
    p = PaperGD(lr=1e-3)
    assert p.get_params()["lr"] == 1e-3 and repr(p) == "PaperGD(lr=0.001)"
    p.set_params(min_iter=5)
    assert p.min_iter == 5
    with pytest.raises(ValueError, match="Invalid parameter 'alpha'"):
        p.set_params(alpha=1)
    h = HCL(S, solver=EM(accelerate=None))
    c = sk.clone(h)
    assert c.solver is not h.solver and c.solver == h.solver and c.get_params()["solver"].accelerate is None
    assert "solver=EM(accelerate=None)" in repr(h)
    assert EM().noise_models[0] == "feature" and EM().handles_missing and EM().handles_wide
    assert ALS(shrinkage=False).supported_noise() == ("isotropic",) and not PaperGD().handles_missing


def test_gtol_is_a_deprecated_alias_of_tol(data):
    with pytest.warns(FutureWarning, match="'gtol' parameter of HCL is deprecated") as rec:
        h = HCL(S, gtol=1e-6).fit(data.Xs)
    assert rec[0].filename == __file__
    assert h.tol_ == 1e-6 and h.solver_.tol == 1e-6


def test_warnings_point_at_the_caller(data):
    with pytest.warns(ConvergenceWarning) as rec:
        HCL(S, max_iter=2).fit(data.Xs)
    assert rec[0].filename == __file__
    with pytest.warns(ConvergenceWarning) as rec:
        HCL(S, max_iter=2).fit_covariance(sample_covariance(data.Xs).cov, NF, n_samples=400)
    assert rec[0].filename == __file__
    Xs = [x.copy() for x in data.Xs]
    Xs[1][:5, :2] = np.nan
    with pytest.warns(ConvergenceWarning) as rec:
        HCL(S, missing="em", max_iter=2).fit(Xs)
    assert rec[0].filename == __file__


def test_paper_mode_does_not_warn_and_is_not_stationary_at_the_default_budget(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        h = HCL(S, method="paper").fit(data.Xs)
    assert h.n_iter_ == 102 and h.results_.info["stopping_rule_met"]
    assert not h.converged_ and h.stop_crit_ > 1e3 * h.tol_
    assert "stopped by the authors' step schedule" in str(h.summary())


def test_paper_stop_crit_is_small_started_at_a_stationary_point(data):
    """The ALS fit without shrinkage minimises the paper's objective (same target S_W, same noise):
    paper mode started there with tiny steps is stationary, and converged_ says so."""
    st = sample_covariance(data.Xs)
    als = METHODS["als"](st, S, shrinkage=False, tol=1e-10, max_iter=20000)
    assert als.converged
    res = METHODS["paper"](st, S, init=als.loadings, lr=1e-12)
    assert res.converged and res.stop_crit <= 1e-6
    res0 = METHODS["paper"](st, S)   # from the spectral start, the default schedule
    assert not res0.converged and res0.stop_crit > 1e-3


def _fd_grad(f, X, mask, h=1e-6):
    G = np.zeros_like(X)
    for idx in zip(*np.nonzero(mask)):
        E = np.zeros_like(X)
        E[idx] = h
        G[idx] = (f(X + E) - f(X - E)) / (2 * h)
    return G


def test_paper_stop_crit_against_finite_differences(data):
    st = sample_covariance(data.Xs)
    _, S_W = _denoise(st, S)
    mask = S.support_mask(NF)
    W0 = METHODS["init"](st, S).loadings
    W, *_ = paper_refine(W0, S_W, mask, max_iter=3)
    G = _fd_grad(lambda X: paper_objective(X, S_W), W, mask, h=1e-5)
    want = np.linalg.norm(G) / (2 * np.linalg.norm(S_W) * np.linalg.norm(W))
    assert paper_stop_crit(W, S_W, mask) == pytest.approx(want, rel=1e-5)


def _ml_fd_measure(cov, W, psi, rows, mask, alpha=0.0, l1_ratio=1.0, structure=None):
    """The scaled optimality measure from finite-difference gradients of the average
    log-likelihood, written independently of hcl_stats.estimation.ml (noise per modality)."""
    ll = lambda X, ps: loglik_from_cov(cov, X, ps)  # noqa: E731
    G = _fd_grad(lambda X: ll(X, psi), W, mask, h=1e-6)
    if alpha > 0:     # distance to alpha * subdifferential, entry / row by row
        D = np.zeros_like(G)
        for sub, cs in structure.column_slices.items():
            lg = alpha * (1 - l1_ratio) * np.sqrt(cs.stop - cs.start)
            for m in sub:
                for j in range(rows[m].start, rows[m].stop):
                    g, w = G[j, cs], W[j, cs]
                    if np.any(w != 0):
                        d = np.where(w != 0, g - alpha * l1_ratio * np.sign(w) - lg * w / np.linalg.norm(w),
                                     np.maximum(np.abs(g) - alpha * l1_ratio, 0))
                    else:
                        s_ = np.sign(g) * np.maximum(np.abs(g) - alpha * l1_ratio, 0)
                        n_ = np.linalg.norm(s_)
                        d = s_ * (max(n_ - lg, 0) / n_ if n_ > 0 else 0)
                    D[j, cs] = d
        G = D
    gp = []
    for r in rows:
        h = 1e-6 * psi[r][0]
        up, dn = psi.copy(), psi.copy()
        up[r] += h
        dn[r] -= h
        gp.append(psi[r][0] * (ll(W, up) - ll(W, dn)) / (2 * h) / np.sqrt(r.stop - r.start))
    p = W.shape[0]
    Wn = W if np.any(W) else np.sqrt(psi)[:, None]
    return max(np.linalg.norm(G) * np.linalg.norm(Wn) / p, np.linalg.norm(gp) / np.sqrt(len(rows)))


@pytest.mark.parametrize("alpha,l1_ratio", [(0.0, 1.0), (0.05, 1.0), (0.1, 0.0), (0.1, 0.5)])
def test_ml_stop_crit_against_finite_differences(data, alpha, l1_ratio):
    """Away from the optimum (3 iterations) the reported stop_crit equals the measure recomputed
    from finite differences; at the converged fit the finite-difference measure is tiny too."""
    st = sample_covariance(data.Xs)
    rows = S.row_slices(NF)
    mask = S.support_mask(NF)
    full = fit_ml(st, S, noise="modality", alpha=alpha, l1_ratio=l1_ratio)
    a_abs = full.info.get("alpha_abs", 0.0)
    assert full.converged and full.stop_crit <= 1e-10
    fd_opt = _ml_fd_measure(st.cov, full.loadings, full.noise_var, rows, mask, a_abs, l1_ratio, S)
    assert fd_opt < 1e-6
    # a non-stationary point: the measure at it, by the package and by finite differences
    lay = _Layout(S, NF)
    W = full.loadings + 0.05 * mask * np.random.default_rng(1).standard_normal(full.loadings.shape)
    if alpha > 0:
        W[full.loadings == 0] = 0.0      # keep the zeros (both branches of the distance are exercised)
    psi = full.noise_var * 1.1
    got = optimality(_estep(st.cov, W, psi), np.diag(st.cov), W, psi, lay, "modality", a_abs, l1_ratio)
    want = _ml_fd_measure(st.cov, W, psi, rows, mask, a_abs, l1_ratio, S)
    assert got == pytest.approx(want, rel=1e-4)
    assert got > 1e3 * full.stop_crit


def test_penalised_ml_at_a_solution_matches_cvxpy_rows(data):
    """The penalised M-step rows solve their convex problem (cvxpy): at the converged penalised fit
    the zeros are where cvxpy puts them and the subdifferential distance is at most tol."""
    cp = pytest.importorskip("cvxpy")
    st = sample_covariance(data.Xs)
    res = fit_ml(st, S, noise="modality", alpha=0.1, l1_ratio=1.0)
    assert res.converged
    lay = _Layout(S, NF)
    A, B = _estep(st.cov, res.loadings, res.noise_var)[:2]
    m = 2
    r, C = lay.rows[m], lay.cols[m]
    Bcc = B[np.ix_(C, C)]
    for j in range(r.start, r.start + 4):
        w = cp.Variable(len(C))
        obj = 0.5 * cp.quad_form(w, cp.psd_wrap(Bcc)) - A[j, C] @ w + res.info["alpha_abs"] * res.noise_var[j] * cp.norm1(w)
        cp.Problem(cp.Minimize(obj)).solve()
        np.testing.assert_allclose(res.loadings[j, C], w.value, atol=1e-5 * max(1.0, np.abs(w.value).max()))


# -- the log-likelihood of the data, whatever the surrogate --------------------------------------
def test_loglik_is_the_data_loglik_under_shrinkage(data):
    h = _fit(data)      # the default: ML on the shrunk covariance
    X = np.hstack(data.Xs)
    Sigma = h.loadings_ @ h.loadings_.T + np.diag(h.noise_var_features_)
    want = np.mean(sps.multivariate_normal(mean=X.mean(0), cov=Sigma).logpdf(X))
    assert h.loglik_ == pytest.approx(want, rel=1e-12)
    assert h.loglik_ == pytest.approx(h.score(data.Xs), rel=1e-12)
    assert abs(h.objective_ - h.loglik_) > 1e-3     # the surrogate's value differs
    txt = str(h.summary())
    assert "Log-likelihood (data)" in txt and "Objective (solver)" in txt and "shrunk covariance" in txt


def test_loglik_more_features_than_samples():
    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    d = simulate(s, (50, 60), 80, noise_var=0.3, random_state=3)
    h = _fit(d) if False else HCL(s).fit(d.Xs)
    X = np.hstack(d.Xs)
    Sigma = h.get_covariance()
    want = np.mean(sps.multivariate_normal(mean=X.mean(0), cov=Sigma).logpdf(X))
    assert h.loglik_ == pytest.approx(want, rel=1e-10)


def test_loglik_observed_data_with_missing_entries(data):
    Xs = [x.copy() for x in data.Xs]
    Xs[0][:30, :5] = np.nan
    Xs[2][50:80, :] = np.nan
    h = HCL(S, missing="em").fit(Xs)
    X = np.hstack(Xs)
    Sigma = h.get_covariance()
    lls = []
    for x in X:
        o = ~np.isnan(x)
        lls.append(sps.multivariate_normal(mean=h.mean_[o], cov=Sigma[np.ix_(o, o)]).logpdf(x[o]))
    assert h.loglik_ == pytest.approx(np.mean(lls), rel=1e-10)


def test_score_and_covariance_follow_sklearn_factor_analysis():
    fa_mod = pytest.importorskip("sklearn.decomposition")
    s = Structure({(0,): 3}, 1)
    d = simulate(s, (10,), 500, noise_var=0.4, random_state=2)
    h = HCL(s, noise="feature", shrinkage=False).fit(d.Xs)
    X = d.Xs[0]
    fa = fa_mod.FactorAnalysis(n_components=3).fit(X)
    fa.components_ = h.loadings_.T.copy()
    fa.noise_variance_ = h.noise_var_features_.copy()
    fa.mean_ = h.mean_.copy()
    np.testing.assert_allclose(h.get_covariance(), fa.get_covariance(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h.get_precision(), fa.get_precision(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h.score_samples(d.Xs), fa.score_samples(X), rtol=1e-12)
    assert h.score(d.Xs) == pytest.approx(fa.score(X), rel=1e-12)
    assert h.loglik_ == pytest.approx(fa.score(X), rel=1e-12)
    np.testing.assert_allclose(h.get_precision() @ h.get_covariance(), np.eye(10), atol=1e-10)


def test_save_load_keeps_the_solver_and_the_criterion(data, tmp_path):
    from hcl_stats.io import load_fit

    h = _fit(data, solver=PaperGD(lr=2e-4, min_iter=20))
    g = load_fit(h.save(tmp_path / "fit.npz"))
    assert g.solver == h.solver and g.get_params() == h.get_params() and g.method_ == "paper"
    for a in ("stop_crit_", "tol_", "objective_", "loglik_", "converged_", "n_iter_"):
        assert getattr(g, a) == getattr(h, a), a
    assert str(g.summary()) == str(h.summary())
    i = _fit(data, method="init")
    j = load_fit(i.save(tmp_path / "init.npz"))
    assert np.isnan(j.stop_crit_) and np.isnan(j.tol_) and not j.converged_


def test_loglik_of_a_population_covariance_is_the_expected_loglik(data):
    C = data.covariance()
    h = HCL(S).fit_covariance(C, NF)
    assert h.n_samples_ is None
    assert h.loglik_ == pytest.approx(loglik_from_cov(C, h.loadings_, h.noise_var_features_), rel=1e-12)
    # at the truth the expected log-likelihood is -1/2 (p log 2 pi + log|C| + p)
    p = C.shape[0]
    want = -0.5 * (p * np.log(2 * np.pi) + np.linalg.slogdet(C)[1] + p)
    assert h.loglik_ == pytest.approx(want, rel=1e-6)


def test_deprecated_ml_path_warns_at_the_caller(data):
    from hcl_stats.estimation.ml import ml_path

    with pytest.warns(FutureWarning, match="ml_path is deprecated") as rec:
        ml_path(sample_covariance(data.Xs), S, alphas=[0.5], max_iter=20)
    assert rec[0].filename == __file__


def test_missing_data_stop_crit_against_finite_differences(data):
    """EM on incomplete data: the reported stop_crit (3 iterations, not stationary) equals the
    scaled gradient of the mean observed-data log-likelihood by finite differences, on the unit
    scale the fit works on (per-feature noise: each feature divided by its observed std)."""
    from hcl_stats.estimation.missing import _scales, fit_missing, loglik_samples_incomplete

    Xs = [x.copy() for x in data.Xs]
    Xs[0][:30, :5] = np.nan
    Xs[2][50:80, :] = np.nan
    res = fit_missing(Xs, S, max_iter=3)
    assert not res.converged
    X = np.hstack(Xs)
    lay = _Layout(S, NF)
    sc = _scales(X, lay, "feature")
    Xz = X / sc
    mu, W, psi = res.info["mean"] / sc, res.loadings / sc[:, None], res.noise_var / sc**2
    ll = lambda W_, psi_: float(np.mean(loglik_samples_incomplete(Xz, mu, W_, psi_)))  # noqa: E731
    G = _fd_grad(lambda X_: ll(X_, psi), W, lay.mask)
    gp = np.zeros_like(psi)
    for j in range(psi.size):
        e = np.zeros_like(psi)
        e[j] = 1e-6 * psi[j]
        gp[j] = psi[j] * (ll(W, psi + e) - ll(W, psi - e)) / (2 * e[j])
    p = W.shape[0]
    want = max(np.linalg.norm(G) * np.linalg.norm(W) / p, np.linalg.norm(gp) / np.sqrt(p))
    assert res.stop_crit == pytest.approx(want, rel=1e-4)


def test_subdiff_distance_of_an_integer_gradient_is_computed_in_float():
    """Integer gradients (e.g. from a user's hand-made check) are not truncated: the distance to the
    subdifferential of alpha * pen at W equals the one computed from the same gradient in float."""
    from hcl_stats.estimation.ml import subdiff_distance

    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    nf = (3, 3)
    W = np.zeros((6, 3))
    W[:, 0] = 0.5
    W[:3, 1] = [1.0, 0.0, -2.0]
    G = np.array([[1, -2, 0], [3, 0, 0], [0, 1, 0], [2, 0, 1], [0, 0, -3], [1, 0, 2]])
    D_int = subdiff_distance(G, W, s, nf, alpha=0.7, l1_ratio=0.5)
    D_float = subdiff_distance(G.astype(float), W, s, nf, alpha=0.7, l1_ratio=0.5)
    assert D_int.dtype == np.float64
    np.testing.assert_allclose(D_int, D_float, rtol=0, atol=0)
    assert np.any(np.abs(D_float - np.round(D_float)) > 1e-3)   # the distances are not integers


def test_documented_defaults_of_the_solver_parts_are_pinned_and_used_by_hcl():
    """The defaults HCL's docstring and docs/method.md (section 14) state; a fit records the tolerance
    of the part it ran (so a changed default cannot go unnoticed)."""
    assert EM().get_params() == {"accelerate": "squarem", "change_tol": 1e-13, "criterion": "likelihood",
                                 "max_iter": 1000, "shrinkage": True, "tol": None, "window": 10}
    assert EM.DEFAULT_TOL == {"likelihood": 1e-3, "gradient": 1e-10}
    assert EM().tol_value == 1e-3 and EM(criterion="gradient").tol_value == 1e-10
    assert ALS().get_params() == {"accelerate": "squarem", "max_iter": 500, "polish": True, "shrinkage": True,
                                  "tol": 1e-6}
    assert PaperGD().get_params() == {"change_tol": 1e-6, "decay_every": 10, "lr": 1e-4, "lr_decay": 0.1,
                                      "max_iter": 1000, "min_iter": 100, "tol": 1e-6}
    s = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)
    d = simulate(s, (6, 7), 400, noise_var=0.5, random_state=3)
    for method, tol in (("ml", 1e-3), ("als", 1e-6), ("paper", 1e-6)):
        h = HCL(s, method=method).fit(d.Xs)
        assert h.tol_ == tol, method
        assert h.converged_ == (h.stop_crit_ <= 1e-3 if method == "ml" else h.stop_crit_ <= 1e-6), method
    h = HCL(s, solver=EM(criterion="gradient")).fit(d.Xs)
    assert h.tol_ == 1e-10 and h.converged_ == (h.stop_crit_ <= 1e-10)


def test_population_covariance_is_fitted_with_the_gradient_rule_and_its_tolerance():
    """Without a sample size the likelihood rule has no scale: the default EM falls back to the gradient
    rule with that rule's tolerance 1e-10 (not the likelihood rule's 1e-3 nats per iteration); a tol set
    by the user is kept."""
    s = Structure({(0, 1): 2, (0,): 1, (1,): 1}, 2)
    Sigma = simulate(s, (8, 9), 10, noise_var=0.5, random_state=1).covariance()
    h = HCL(s).fit_covariance(Sigma, (8, 9))
    assert h.results_.info["criterion"] == "gradient" and h.tol_ == 1e-10
    assert h.converged_ and h.stop_crit_ <= 1e-10
    h = HCL(s, solver=EM(tol=1e-6)).fit_covariance(Sigma, (8, 9))
    assert h.tol_ == 1e-6 and h.results_.info["criterion"] == "gradient"
