"""What one replicate of a study computes, per study kind.

A *task* is (grid point, replicate r). Its random numbers come only from (seed, grid point, r):
replicate r starts from ``SeedSequence(seed).spawn(replicates)[r]`` (spawn key ``(r,)``); the
model (loadings, beta) uses its child ``(r, 0)``, so it depends on the structure and the
feature counts but not on n, m or the noise; the data use the child
``(r, 1, h(grid point))`` with ``h`` a hash of the grid point (for downstream studies the
representation sample hashes the point without the labelled/test sizes, so one replicate
shares its representation fit across values of m). Nothing depends on the order in which
tasks run, on the backend or on the number of workers.

Data draws (``draw`` parameter)
-------------------------------
``"samples"``: the authors' simulator (:func:`hcl_stats.simulate`), then the sample covariance.
``"wishart"``: the sample covariance drawn from its exact law. With x = A u, A = [W, diag(sqrt
psi)] and u ~ N(0, I_d), d = K + p, the centred scatter of n Gaussian samples is
A L L^T A^T with L L^T ~ Wishart_d(I, n - 1) (Bartlett: L lower triangular, L_ii^2 ~
chi^2_{n-1-i}, L_ij ~ N(0, 1) below the diagonal), and the sample mean is A u_0 / sqrt(n),
independent of it. Cost O(p^2 d) whatever n, so n = 10^6 is as cheap as n = 500. Data-based
methods (SLIDE) get (d + 1) pseudo-samples with exactly that mean and sample covariance; every
estimator in the harness depends on the data only through them.
"""
from __future__ import annotations

import hashlib
import time
import traceback
import warnings

import numpy as np

from .._validation import check_random_state, user_stacklevel
from ..covariance import CovarianceStats, sample_covariance
from ..simulate import make_loadings, simulate
from .config import StudyConfig, grid_point_key
from .methods import FitContext, MethodUnavailable, fit_method

__all__ = ["run_task", "task_id", "task_seeds", "draw_covariance", "replicate_seed"]


def _h32(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def task_id(point: dict, r: int) -> str:
    """Stable identifier of a task: hash of the grid point and the replicate index."""
    return f"{hashlib.sha256(grid_point_key(point).encode()).hexdigest()[:12]}:{r}"


def replicate_seed(seed: int, r: int, n_rep: int) -> np.random.SeedSequence:
    """``SeedSequence(seed).spawn(n_rep)[r]`` (its spawn key is ``(r,)``, whatever ``n_rep``)."""
    if not 0 <= r < n_rep:
        raise ValueError(f"replicate index r must be in [0, {n_rep}); got {r}.")
    return np.random.SeedSequence(seed, spawn_key=(r,))


def task_seeds(seed: int, r: int, n_rep: int, point: dict, shared_keys=()) -> dict:
    """The seed sequences of one task: model, data, and (downstream) representation sample."""
    ss = replicate_seed(seed, r, n_rep)
    ent, key = ss.entropy, tuple(ss.spawn_key)
    shared_point = {k: v for k, v in point.items() if k not in shared_keys}
    return {
        "model": np.random.SeedSequence(ent, spawn_key=key + (0,)),
        "data": np.random.SeedSequence(ent, spawn_key=key + (1, _h32(grid_point_key(point)))),
        "shared": np.random.SeedSequence(ent, spawn_key=key + (2, _h32(grid_point_key(shared_point)))),
    }


def draw_covariance(W, noise_features, n_samples, random_state=None, *, rng=None):
    """Draw (CovarianceStats-like mean, cov, pseudo-data factory) of n Gaussian samples of
    x = W z + e, z ~ N(0, I), e ~ N(0, diag(noise_features)), from the exact Wishart law.

    Parameters
    ----------
    W : ndarray of shape (p, K)
        The loadings.
    noise_features : ndarray of shape (p,)
        The noise variance of each feature.
    n_samples : int
        The number of samples n.
    random_state : None, int, SeedSequence or Generator, default None
        The source of randomness (a Generator is used as it is).
    rng : deprecated
        Old name of ``random_state`` (FutureWarning).

    Returns
    -------
    mean : ndarray of shape (p,)
    cov : ndarray of shape (p, p)
        The unbiased sample covariance.
    pseudo : callable
        ``pseudo()`` returns an array of shape (K + p + 1, p) whose column means are ``mean``
        and whose unbiased sample covariance is ``cov`` (or the drawn samples themselves when
        n - 1 < K + p).
    """
    if rng is not None:
        if random_state is not None:
            raise TypeError("draw_covariance() got both random_state and its deprecated spelling rng; pass "
                            "random_state only.")
        warnings.warn("The 'rng' parameter of draw_covariance is deprecated; use random_state (same values).",
                      FutureWarning, stacklevel=user_stacklevel())
        random_state = rng
    rng = check_random_state(random_state)
    p, K = W.shape
    d = K + p
    df = n_samples - 1
    sq = np.sqrt(noise_features)
    if df < d:  # Bartlett needs df >= d: draw the samples themselves
        U = rng.standard_normal((n_samples, d))
        X = U[:, :K] @ W.T + U[:, K:] * sq
        mean = X.mean(axis=0)
        Xc = X - mean
        cov = Xc.T @ Xc / df
        return mean, 0.5 * (cov + cov.T), (lambda: X)
    L = np.zeros((d, d))
    L[np.tril_indices(d, -1)] = rng.standard_normal(d * (d - 1) // 2)
    L[np.diag_indices(d)] = np.sqrt(rng.chisquare(df - np.arange(d)))
    B = W @ L[:K] + sq[:, None] * L[K:]          # A L, (p, d)
    cov = B @ B.T
    cov /= df
    cov = 0.5 * (cov + cov.T)
    u0 = rng.standard_normal(d)
    mean = (W @ u0[:K] + sq * u0[K:]) / np.sqrt(n_samples)

    def pseudo():
        # rows: sqrt(d / df) * H (A L)^T + 1 mean^T with H (d+1, d) orthonormal columns orthogonal to 1
        N = d + 1
        Y = np.vstack([B.T, np.zeros((1, p))]) * np.sqrt(d / df)
        w = np.full(N, 1.0 / np.sqrt(N))
        w[-1] -= 1.0
        w /= np.linalg.norm(w)
        Y -= 2.0 * np.outer(w, w @ Y)             # Householder reflection mapping e_N to 1/sqrt(N)
        return Y + mean

    return mean, cov, pseudo


def _draw_stats(structure, W, point, rng):
    """CovarianceStats of n samples and a factory of per-modality data (Xs)."""
    n = int(point["n_samples"])
    nf = tuple(point["n_features"])
    noise = float(point["noise_var"])
    rows = structure.row_slices(nf)
    if point.get("draw", "samples") == "samples":
        data = simulate(structure, nf, n, noise, random_state=rng, loadings=W)
        return sample_covariance(data.Xs), (lambda: data.Xs), 1.0
    mean, cov, pseudo = draw_covariance(W, np.full(sum(nf), noise), n, rng)
    stats = CovarianceStats(cov=cov, mean=mean, n_samples=n, n_features=nf)
    d = W.shape[0] + W.shape[1]
    scale = d / (n - 1) if n - 1 >= d else 1.0

    def xs():
        X = pseudo()
        return [np.ascontiguousarray(X[:, sl]) for sl in rows]

    return stats, xs, scale


def _filter_recovery(metrics: dict, sets) -> dict:
    keep = {}
    for k, v in metrics.items():
        base = k.split("[", 1)[0]
        if base in ("gram", "rel_gram", "sin") and base in sets:
            keep[k] = v
        elif base in ("overall", "rel_overall") and "overall" in sets:
            keep[k] = v
    return keep


def _row(cfg, point, g, r, method, status, fit_time=None, metrics=None, note="", estimator=None, info=None):
    return {"study": cfg.name, "config_hash": cfg.hash, "task": task_id(point, r), "grid_index": g,
            "point": point, "replicate": r, "method": method, "estimator": estimator, "status": status,
            "note": note, "fit_time": fit_time, "metrics": metrics or {}, "info": info or {}}


def _fit_all(cfg, ctx, methods):
    """Fit each method; returns {name: MethodFit or (status, note)}. 'init' is taken from the
    'paper' fit when both are asked for (same noise estimate and initialisation)."""
    out = {}
    order = sorted(methods, key=lambda m: (m == "init" and "paper" in methods))
    for name in order:
        if name == "init" and "paper" in methods and not isinstance(out.get("paper"), tuple):
            pf = out["paper"]
            W0 = pf.estimator.results_.info.get("init") if pf.estimator is not None else None
            if W0 is not None:
                from .methods import MethodFit
                from ..estimation.noise import bottom_eigenvalue_noise  # noqa: F401  (documentation)

                out[name] = MethodFit(np.asarray(W0), pf.noise_var, float("nan"),
                                      {"note": "initialisation of the 'paper' fit (identical to HCL(method='init'))"})
                continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = fit_method(name, ctx)
        except MethodUnavailable as exc:
            out[name] = ("unavailable", str(exc))
        except Exception as exc:  # recorded, not raised: one failing method must not stop a study
            out[name] = ("error", f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=3)[-400:]}")
    return out


# -- recovery ---------------------------------------------------------------------------------
def _recovery_task(cfg: StudyConfig, g: int, point: dict, r: int) -> list[dict]:
    from ..metrics import recovery_metrics

    structure = cfg.structure(point)
    nf = tuple(point["n_features"])
    seeds = task_seeds(cfg.seed, r, cfg.replicates, point)
    W = make_loadings(structure, nf, np.random.default_rng(seeds["model"]), kind="paper", scale=float(point["signal"]))
    t0 = time.perf_counter()
    stats, xs, scale = _draw_stats(structure, W, point, np.random.default_rng(seeds["data"]))
    draw_time = time.perf_counter() - t0
    ctx = FitContext(stats=stats, structure=structure, data=xs, data_scale=scale,
                     seed=int(seeds["data"].generate_state(1)[0]))
    fits = _fit_all(cfg, ctx, cfg.methods)
    rows = []
    for name in cfg.methods:
        f = fits[name]
        if isinstance(f, tuple):
            rows.append(_row(cfg, point, g, r, name, f[0], note=f[1]))
            continue
        m = _filter_recovery(recovery_metrics(f.loadings, W, structure, nf, sin="sin" in cfg.metrics), cfg.metrics)
        if "noise" in cfg.metrics:
            if f.noise_var is not None:
                est = float(np.mean(f.noise_var))
                m["noise_est"] = est
                m["noise_err"] = est - float(point["noise_var"])
        info = dict(f.info)
        info["draw_time"] = draw_time
        note = "; ".join(info.pop("warnings", [])) if "warnings" in info else info.pop("note", "")
        rows.append(_row(cfg, point, g, r, name, "ok", f.fit_time, m, note=note, info=info))
    return rows


# -- downstream / selection ----------------------------------------------------------------
class _Fitted:
    """The attributes of a fitted HCL that the representation functions read."""

    def __init__(self, loadings, noise_features, mean, structure, n_features):
        self.loadings_ = np.asarray(loadings, float)
        self.noise_var_features_ = np.asarray(noise_features, float)
        self.mean_ = np.asarray(mean, float)
        self.structure_ = structure
        self.n_features_ = tuple(n_features)


def _draw_beta(structure, rng, zero_groups):
    K = structure.n_factors
    b = rng.uniform(0.0, 1.0, size=K)
    for z in zero_groups:
        b[structure.column_slice(tuple(int(c) for c in z))] = 0.0
    return b / np.linalg.norm(b)


def _downstream_task(cfg: StudyConfig, g: int, point: dict, r: int) -> list[dict]:
    from .. import downstream as ds
    from .. import representation as rep
    from ..estimation.noise import bottom_eigenvalue_noise
    from ..metrics import align

    structure = cfg.structure(point)
    nf = tuple(point["n_features"])
    p, K = sum(nf), structure.n_factors
    noise = float(point["noise_var"])
    dcfg = cfg.downstream
    seeds = task_seeds(cfg.seed, r, cfg.replicates, point, shared_keys=("n_labelled", "n_test"))
    model_rng = np.random.default_rng(seeds["model"])
    W = make_loadings(structure, nf, model_rng, kind="paper", scale=float(point["signal"]))
    beta = _draw_beta(structure, model_rng, dcfg["zero_groups"])
    t0 = time.perf_counter()
    stats, xs, scale = _draw_stats(structure, W, point, np.random.default_rng(seeds["shared"]))
    lab_ss, test_ss, cv_ss = seeds["data"].spawn(3)
    cy = float(point["response_noise_var"])
    lab = simulate(structure, nf, int(point["n_labelled"]), noise, random_state=lab_ss, loadings=W, beta=beta,
                   response="linear", response_noise_var=cy)
    test = simulate(structure, nf, int(point["n_test"]), noise, random_state=test_ss, loadings=W, beta=beta,
                    response="linear", response_noise_var=cy)
    draw_time = time.perf_counter() - t0
    cv_seed = int(cv_ss.generate_state(1)[0])
    relevant = [s for s in structure.subsets if "".join(map(str, s)) not in dcfg["zero_groups"]]
    kind = dcfg["representation"]
    ctx = FitContext(stats=stats, structure=structure, data=xs, data_scale=scale,
                     seed=int(seeds["shared"].generate_state(1)[0]))
    fits = _fit_all(cfg, ctx, [m for m in cfg.methods if m != "oracle"])
    rows = []
    for name in cfg.methods:
        if name == "oracle":
            fitted = _Fitted(W, np.full(p, noise), np.zeros(p), structure, nf)
            fit_time, minfo = 0.0, {"note": "true loadings and noise variance (a bound no method reaches)"}
        else:
            f = fits[name]
            if isinstance(f, tuple):
                for e in dcfg["estimators"]:
                    rows.append(_row(cfg, point, g, r, name, f[0], note=f[1], estimator=e))
                continue
            nv = f.noise_var if f.noise_var is not None else np.full(p, bottom_eigenvalue_noise(stats.cov, K))
            fitted = _Fitted(f.loadings, nv, stats.mean, structure, nf)
            fit_time, minfo = f.fit_time, dict(f.info)
        _, rots = align(fitted.loadings_, W, structure, nf, return_rotations=True)
        A = rep.encoder_matrix(fitted, kind=kind)
        Z = (np.hstack(lab.Xs) - fitted.mean_) @ A.T
        ncov = rep.representation_noise_cov(fitted, kind=kind) if kind == "paper" else None
        for e in dcfg["estimators"]:
            t1 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    if e == "cls":
                        est = ds.CorrectedLeastSquares(fit_intercept=False).fit(Z, lab.y, ncov)
                    else:
                        kw = {"alphas": dcfg["alphas"]} if dcfg["alphas"] else {}
                        est = ds.GroupLassoCV(groups=structure, cv=dcfg["cv"], random_state=cv_seed, fit_intercept=False,
                                              rule=dcfg["rule"], tol=dcfg["tol"], **kw).fit(Z, lab.y, ncov)
                except Exception as exc:
                    rows.append(_row(cfg, point, g, r, name, "error", note=f"{type(exc).__name__}: {exc}", estimator=e))
                    continue
            t_est = time.perf_counter() - t1
            coef = np.asarray(est.coef_, float)
            icpt = float(getattr(est, "intercept_", 0.0))
            m = {}
            if "param" in cfg.metrics:
                errs = ds.coefficient_errors(coef, beta, structure, rotations=rots)
                m["param_error"] = errs.pop("overall")
                for lab_s, v in errs.items():
                    m[f"param[{lab_s}]"] = v
            if "risk" in cfg.metrics:
                m["excess_risk"] = ds.plugin_excess_risk(test.Xs, test.y, A, coef, W, beta, mean=fitted.mean_, intercept=icpt)
                m["excess_risk_pop"] = ds.population_excess_risk(A.T @ coef, W, np.full(p, noise), beta)
            if "support" in cfg.metrics and e == "group_lasso":
                sel = [tuple(s) for s in est.selected_groups_]
                sr = ds.support_recovery(sel, relevant, universe=structure.subsets)
                m.update({f"support_{k}": float(v) for k, v in sr.items()})
                for s in structure.subsets:
                    m[f"selected[{structure.label(s)}]"] = float(tuple(s) in sel)
            info = dict(minfo)
            info.update(draw_time=draw_time, estimator_time=t_est)
            note = "; ".join(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))[:500]
            if "warnings" in info:
                note = "; ".join([note] + info.pop("warnings")).strip("; ")[:500]
            note = note or info.pop("note", "")
            rows.append(_row(cfg, point, g, r, name, "ok", fit_time, m, note=note, estimator=e, info=info))
    return rows


_KINDS = {"recovery": _recovery_task, "downstream": _downstream_task, "selection": _downstream_task}


def run_task(cfg: StudyConfig, g: int, point: dict, r: int) -> list[dict]:
    """Compute one task (grid point ``point`` of index ``g``, replicate ``r``) with BLAS pinned to
    one thread; returns its tidy rows (one per method x estimator), each tagged with
    ``n_rows`` so that a partially written task is recognised on resume."""
    from threadpoolctl import threadpool_limits

    t0, c0 = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=1):
        rows = _KINDS[cfg.kind](cfg, g, point, r)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    for row in rows:
        row["n_rows"] = len(rows)
        row["task_time"] = wall      # wall clock (inflated on a busy machine)
        row["task_cpu_time"] = cpu   # CPU seconds of this process: the wall time on an idle core
    return rows
