"""Peer benchmark: hcl_stats (structure selection + default HCL fit) against SLIDE (hcl_stats.baselines),
GFA (cca-zoo), MOFA+ (mofapy2) and AJIVE (mvlearn) on the same simulated data sets.

For every design and replicate, each method is fitted on the same data with one BLAS thread; we record
the fit time, whether the exact structure was found (peers' factors are mapped to sharing patterns,
see ``_pattern_structure``) and, per true block (m, S), the sine of the largest principal angle
between span(W_{m,S}) and span(W_hat_{m,S}) (``hcl_stats.metrics.sin_theta`` when the ranks match;
1 when the subset is missing or found with a smaller rank; with a larger rank, the largest angle
between the true space and its closest subspace of the estimate).

Incomplete data (issue 11): the designs ``missing_*`` remove entries from the main peer-comparison design
(30% of the samples miss one whole modality; or one modality absent for half the cohort, modality
r mod 3 in replicate r). There hcl_stats = the available-case selection
(``hcl_stats.incomplete.select_structure_incomplete``, what ``select_structure`` runs on NaN) + the EM
over the observed entries (``hcl_stats.estimation.missing.fit_missing``, what ``HCL(missing="em")``
runs); MOFA+ gets the NaN (it models missing values); GFA is given the NaN too (cca-zoo's port refuses
them: its error is recorded) and, separately, the complete cases. SLIDE, AJIVE and paper mode take
complete data only and are not run there. Results of these designs go to
benchmarks/results/peers_missing.{json,md}::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_peers.py --designs missing_one_modality_30pct missing_half_without_one \
        --out benchmarks/results/peers_missing.json --report-dir /tmp/peers_missing_report

Peers that are not installed are skipped (their rows say so). Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_peers.py            # full run (writes results)
    python benchmarks/bench_peers.py --quick --out /tmp/peers_quick.json  # small, for tests
    python benchmarks/bench_peers.py --report-only                     # redraw table/figure from JSON

Results: benchmarks/results/peers.json and peers.md; table and figure in reports/peers/.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import sys  # noqa: E402

# run this checkout's hcl_stats (not an installed copy): the script's directory, not the
# repository root, is on sys.path when it is run as a script
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.linalg import subspace_angles  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from hcl_stats import HCL, Structure, simulate  # noqa: E402
from hcl_stats.baselines import SLIDE  # noqa: E402
from hcl_stats.metrics import sin_theta  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACTIVE_SHARE = 0.01  # a peer's factor is active in a modality when it explains > 1% of its variance

DESIGNS = {
    "baselines_md": dict(
        label="3 modalities, p = (100, 80, 60), {012}:2 {01}:2 {12}:1 + specific 2 each, Gaussian loadings, noise 1",
        structure=Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3),
        n_features=(100, 80, 60), n_samples=1000, noise_var=1.0, loadings="gaussian", reps=10),
    "paper": dict(
        label="paper setting: p = (100, 500, 800), all 7 subsets at rank 3, paper loadings, noise 6, n = 30000",
        structure=Structure.full(3, 3), n_features=(100, 500, 800), n_samples=30000, noise_var=6.0,
        loadings="paper", reps=1,
        # SLIDE's path + 3 x 3 bi-cross-validation at n = 30000, p = 1400 takes hours on one thread;
        # GFA and MOFA+ are capped at 200 iterations (about 1.5 s each here): both are reported as capped.
        methods=["hcl_stats", "GFA (cca-zoo)", "MOFA+ (mofapy2)", "AJIVE (mvlearn)"], peer_max_iter=200),
    "four_modalities": dict(
        label="4 modalities, p = (60, 50, 40, 30), {0123}:2 {012}:1 {01}:1 {23}:2 + specific {0}:1 {2}:2 {3}:1 (no {1}), Gaussian loadings, noise 1",
        structure=Structure({(0, 1, 2, 3): 2, (0, 1, 2): 1, (0, 1): 1, (2, 3): 2, (0,): 1, (2,): 2, (3,): 1}, 4),
        n_features=(60, 50, 40, 30), n_samples=1000, noise_var=1.0, loadings="gaussian", reps=5),
}
MISSING_METHODS = ["hcl_stats", "GFA (cca-zoo)", "GFA (cca-zoo), complete cases", "MOFA+ (mofapy2)"]
for _key, _how, _txt in (("missing_one_modality_30pct", "one_modality_30pct",
                          "30% of the samples miss one whole modality (chosen at random)"),
                         ("missing_half_without_one", "half_without_one",
                          "modality r mod 3 absent for a random half of the cohort")):
    DESIGNS[_key] = dict(DESIGNS["baselines_md"], reps=5, missing=_how, methods=MISSING_METHODS,
                         label=f"baselines_md data with missing values: {_txt} (SLIDE, AJIVE, paper mode: complete data only, not run)")
QUICK = {
    "quick": dict(label="quick: 3 modalities, p = (20, 15, 10), {012}:1 {01}:1 + specific 1 each, n = 300",
                  structure=Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3),
                  n_features=(20, 15, 10), n_samples=300, noise_var=0.5, loadings="gaussian", reps=1),
}


# ---------------------------------------------------------------------------------------------
def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _pattern_structure(patterns, loadings_cols, n_features, M):
    """Group a peer's factors by their sharing pattern into an HCL-layout (structure, loadings).

    patterns: list of tuples (active modalities) per factor; loadings_cols: (p, K) loadings."""
    ranks = {}
    for s in patterns:
        if s:
            ranks[s] = ranks.get(s, 0) + 1
    if not ranks or len({m for s in ranks for m in s}) < M:
        return None, None
    st = Structure(ranks, M)
    rows = st.row_slices(n_features)
    W = np.zeros((sum(n_features), st.n_factors))
    fill = {s: st.column_slice(s).start for s in st.subsets}
    for k, s in enumerate(patterns):
        if not s:
            continue
        j = fill[s]
        for m in s:
            W[rows[m], j] = loadings_cols[rows[m], k]
        fill[s] += 1
    return st, W


def make_missing(Xs, how, rng, r):
    """Remove entries (NaN): ``one_modality_30pct`` (each sample misses one whole modality, chosen
    uniformly, with probability 0.3) or ``half_without_one`` (modality r mod M absent for a random half)."""
    Xs = [np.array(X, dtype=float) for X in Xs]
    n = Xs[0].shape[0]
    if how == "one_modality_30pct":
        miss = rng.random(n) < 0.3
        which = rng.integers(0, len(Xs), n)
        for m in range(len(Xs)):
            Xs[m][miss & (which == m)] = np.nan
    elif how == "half_without_one":
        Xs[r % len(Xs)][rng.permutation(n)[: n // 2]] = np.nan
    else:
        raise ValueError(f"unknown missingness design {how!r}")
    return Xs


def _active_patterns(Wcols, factor_var, Xs):
    """Which modalities each factor loads on: share of the modality's total variance > ACTIVE_SHARE
    (variances over the observed entries when there are missing values)."""
    tot = [float(np.nanvar(X, axis=0, ddof=1).sum()) for X in Xs]
    bounds = np.cumsum([0] + [X.shape[1] for X in Xs])
    pats = []
    for k in range(Wcols.shape[1]):
        act = tuple(m for m in range(len(Xs))
                    if factor_var[k] * np.sum(Wcols[bounds[m]:bounds[m + 1], k] ** 2) / tot[m] > ACTIVE_SHARE)
        pats.append(act)
    return pats


def block_errors(W_hat, st_hat, W_true, st_true, n_features):
    """Per true block (m, S): largest principal-angle sine (see module docstring)."""
    if st_hat is not None and st_hat == st_true:
        return {f"{m}|{s}": v for (m, s), v in sin_theta(W_hat, W_true, st_true, n_features).items()}
    out = {}
    rows_t = st_true.row_slices(n_features)
    for m, s in st_true.blocks():
        A = W_true[rows_t[m], st_true.column_slice(s)]
        if st_hat is None or s not in st_hat.subsets or st_hat.rank(s) < st_true.rank(s):
            out[f"{m}|{s}"] = 1.0
            continue
        B = W_hat[st_hat.row_slices(n_features)[m], st_hat.column_slice(s)]
        if not np.any(B):
            out[f"{m}|{s}"] = 1.0
            continue
        # largest angle between span(A) and its closest subspace of span(B)
        Qa = np.linalg.qr(A)[0]
        Qb = np.linalg.qr(B)[0]
        sv = np.clip(np.linalg.svd(Qb.T @ Qa, compute_uv=False), 0.0, 1.0)
        out[f"{m}|{s}"] = float(np.sqrt(max(0.0, 1.0 - sv.min() ** 2)))
    return out


# ---------------------------------------------------------------------------------------------
def run_hcl(Xs, true, seed):
    from hcl_stats import select_structure

    if any(np.isnan(X).any() for X in Xs):   # incomplete data: available-case selection + EM
        from hcl_stats.estimation.missing import fit_missing
        from hcl_stats.incomplete import select_structure_incomplete

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = select_structure_incomplete(Xs)
            res = fit_missing(Xs, st)
        return dict(time=time.perf_counter() - t0, structure=st, loadings=res.loadings, n_iter=res.n_iter)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = select_structure(Xs)
        est = HCL(st, identifiability="warn").fit(Xs)
    return dict(time=time.perf_counter() - t0, structure=est.structure_, loadings=est.loadings_)


def run_hcl_paper(Xs, true, seed):
    """select_structure + HCL(method="paper") (the authors' estimator step for step)."""
    from hcl_stats import select_structure

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = select_structure(Xs)
        est = HCL(st, method="paper", identifiability="warn").fit(Xs)
    return dict(time=time.perf_counter() - t0, structure=est.structure_, loadings=est.loadings_)


def run_slide(Xs, true, seed):
    t0 = time.perf_counter()
    est = SLIDE("auto", random_state=seed).fit(Xs)
    return dict(time=time.perf_counter() - t0, structure=est.structure_, loadings=est.loadings_)


def run_gfa(Xs, true, seed, max_iter=None):
    try:
        from cca_zoo.probabilistic import GFA
    except ImportError:
        return None
    K = max(15, true.n_factors + 4)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = GFA(n_components=K, random_state=seed, max_iter=max_iter or 10000, n_posterior_samples=1).fit(Xs)
    t = time.perf_counter() - t0
    W = np.vstack(g.weights_)
    pats = _active_patterns(W, np.ones(W.shape[1]), Xs)  # GFA's latents have unit prior variance
    st, Wh = _pattern_structure(pats, W, [X.shape[1] for X in Xs], len(Xs))
    return dict(time=t, structure=st, loadings=Wh, n_iter=int(g.n_iter_))


def run_gfa_complete_cases(Xs, true, seed, max_iter=None):
    """GFA on the samples without any missing entry."""
    keep = ~np.any(np.isnan(np.hstack(Xs)), axis=1)
    return run_gfa([X[keep] for X in Xs], true, seed, max_iter=max_iter)


def run_mofa(Xs, true, seed, max_iter=None, convergence_mode="fast"):
    try:
        from mofapy2.run.entry_point import entry_point
    except ImportError:
        return None
    K = max(15, true.n_factors + 4)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ent = entry_point()
        ent.set_data_options(scale_views=False)
        ent.set_data_matrix([[X - np.nanmean(X, axis=0)] for X in Xs], likelihoods=["gaussian"] * len(Xs))
        ent.set_model_options(factors=K, spikeslab_weights=True, ard_weights=True)
        ent.set_train_options(iter=max_iter or 1000, convergence_mode=convergence_mode, seed=seed, quiet=True, verbose=False)
        ent.build()
        ent.run()
    t = time.perf_counter() - t0
    Wl = ent.model.nodes["W"].getExpectation()
    Z = ent.model.nodes["Z"].getExpectation()
    Z = Z[0] if isinstance(Z, list) else Z
    W = np.vstack(Wl)
    zvar = np.var(Z, axis=0, ddof=1)
    Wc = W * np.sqrt(zvar)
    pats = _active_patterns(Wc, np.ones(W.shape[1]), Xs)
    st, Wh = _pattern_structure(pats, Wc, [X.shape[1] for X in Xs], len(Xs))
    return dict(time=t, structure=st, loadings=Wh, n_iter=len(ent.model.getTrainingStats()["time"])
                if hasattr(ent.model, "getTrainingStats") else None)


def run_ajive(Xs, true, seed):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mvlearn.decomposition import AJIVE
    except ImportError:
        return None
    M = len(Xs)
    d = [sum(r for s, r in true.ranks.items() if m in s) for m in range(M)]  # true initial signal ranks
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aj = AJIVE(init_signal_ranks=d, random_state=seed).fit(Xs)
    t = time.perf_counter() - t0
    n = Xs[0].shape[0]
    ranks, blocks = {}, {}
    rj = int(aj.joint_rank_)
    if rj > 0:
        ranks[tuple(range(M))] = rj
        UJ = aj.joint_scores_
        for m, X in enumerate(Xs):
            J = UJ @ (UJ.T @ (X - X.mean(0)))
            _, D, Vt = np.linalg.svd(J, full_matrices=False)
            blocks[(m, tuple(range(M)))] = (Vt[:rj].T * D[:rj]) / np.sqrt(n - 1)
    for m in range(M):
        r = int(aj.individual_ranks_[m])
        if r > 0:
            ranks[(m,)] = r
            blocks[(m, (m,))] = (aj.individual_loadings_[m][:, :r] * aj.individual_svals_[m][:r]) / np.sqrt(n - 1)
    if len({m for s in ranks for m in s}) < M:
        return dict(time=t, structure=None, loadings=None)
    st = Structure(ranks, M)
    nf = [X.shape[1] for X in Xs]
    rows = st.row_slices(nf)
    W = np.zeros((sum(nf), st.n_factors))
    for (m, s), B in blocks.items():
        W[rows[m], st.column_slice(s)] = B
    return dict(time=t, structure=st, loadings=W)


METHODS = {"hcl_stats": run_hcl, "hcl_stats (paper mode)": run_hcl_paper, "SLIDE": run_slide, "GFA (cca-zoo)": run_gfa, "MOFA+ (mofapy2)": run_mofa,
           "AJIVE (mvlearn)": run_ajive, "GFA (cca-zoo), complete cases": run_gfa_complete_cases}


def _git_commit():
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except Exception:
        return None


def environment():
    from hcl_stats import HCL as _H

    return dict(
        git_commit=_git_commit(), hcl_default_method=_H().method,
        python=platform.python_version(), platform=platform.platform(),
        versions={k: _version(k) for k in ("hcl_stats", "numpy", "scipy", "cca-zoo", "mofapy2", "mvlearn", "threadpoolctl")},
        blas=[{k: i.get(k) for k in ("internal_api", "version", "num_threads")} for i in threadpool_info()],
        env_threads={v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    )


def run(designs, seed=2026, methods=None, log=print, on_record=None):
    methods = methods or list(METHODS)
    complete_only = [m for m in METHODS if m != "GFA (cca-zoo), complete cases"]
    records = []
    with threadpool_limits(limits=1):
        env = environment()
        env["blas_inside_limit"] = [{k: i.get(k) for k in ("internal_api", "num_threads")} for i in threadpool_info()]
        for dname, d in designs.items():
            seeds = np.random.SeedSequence([seed, sum(map(ord, dname))]).spawn(d["reps"])
            for r, ss in enumerate(seeds):
                data = simulate(d["structure"], d["n_features"], d["n_samples"], d["noise_var"], random_state=ss,
                                loadings=d["loadings"])
                Xs = data.Xs
                if d.get("missing"):
                    rng_miss = np.random.default_rng(np.random.SeedSequence([seed, sum(map(ord, dname)), r, 1]))
                    Xs = make_missing(data.Xs, d["missing"], rng_miss, r)
                for name in methods:
                    if name not in d.get("methods", complete_only):
                        records.append(dict(design=dname, rep=r, method=name, skipped="not run on this design (see DESIGNS)"))
                        continue
                    kw = {"max_iter": d["peer_max_iter"]} if d.get("peer_max_iter") and name in ("GFA (cca-zoo)", "MOFA+ (mofapy2)") else {}
                    try:
                        res = METHODS[name](Xs, d["structure"], r, **kw)
                    except Exception as exc:  # a peer failing is a result, not a crash
                        res = dict(time=None, structure=None, loadings=None, error=f"{type(exc).__name__}: {exc}")
                    if res is None:
                        records.append(dict(design=dname, rep=r, method=name, skipped="not installed"))
                        log(f"{dname} rep {r} {name}: skipped (not installed)")
                        continue
                    errs = (block_errors(res["loadings"], res["structure"], data.loadings, d["structure"], data.n_features)
                            if res.get("loadings") is not None else {f"{m}|{s}": 1.0 for m, s in d["structure"].blocks()})
                    rec = dict(design=dname, rep=r, method=name, time=res["time"], n_iter=res.get("n_iter"),
                               capped_iter=kw.get("max_iter"),
                               exact=bool(res["structure"] is not None and res["structure"] == d["structure"]),
                               structure=None if res["structure"] is None else res["structure"].to_dict(),
                               block_errors=errs, error=res.get("error"))
                    records.append(rec)
                    if on_record is not None:
                        on_record(records)
                    log(f"{dname} rep {r} {name}: time {rec['time'] if rec['time'] is None else round(rec['time'], 2)} s, "
                        f"exact {rec['exact']}, mean err {np.mean(list(errs.values())):.3f}, max {max(errs.values()):.3f}"
                        + (f" ERROR {rec['error']}" if rec['error'] else ""))
    return dict(environment=env, designs={k: dict(label=v["label"], structure=v["structure"].to_dict(),
                                                   n_features=v["n_features"], n_samples=v["n_samples"],
                                                   noise_var=v["noise_var"], loadings=v["loadings"], reps=v["reps"],
                                                   missing=v.get("missing"))
                                           for k, v in designs.items()},
                records=records, seed=seed)


# ---------------------------------------------------------------------------------------------
def records_from_log(path, designs):
    """Rebuild summary records from a run log (lines 'design rep r method: time t s, exact b, mean err e, max m').

    Used when a long run was stopped before writing its JSON: per-block errors were not logged, so
    such records carry only the mean and max block error (flagged ``from_log``)."""
    import re

    pat = re.compile(r"^(\S+) rep (\d+) (.+?): time ([\d.]+) s, exact (True|False), mean err ([\d.]+), max ([\d.]+)")
    out = []
    for line in Path(path).read_text().splitlines():
        m = pat.match(line)
        if m and m.group(1) in designs:
            out.append(dict(design=m.group(1), rep=int(m.group(2)), method=m.group(3), time=float(m.group(4)),
                            exact=m.group(5) == "True", mean_err=float(m.group(6)), max_err=float(m.group(7)),
                            from_log=str(path), error=None))
    return out


def _mean_max(r):
    if "block_errors" in r:
        v = list(r["block_errors"].values())
        return float(np.mean(v)), float(np.max(v))
    return r["mean_err"], r["max_err"]


def summarise(results):
    rows = []
    for dname in results["designs"]:
        for name in METHODS:
            recs = [r for r in results["records"] if r["design"] == dname and r["method"] == name]
            if not recs:
                continue
            if all("skipped" in r for r in recs):
                rows.append(dict(design=dname, method=name, skipped=recs[0]["skipped"]))
                continue
            ok = [r for r in recs if r.get("time") is not None]
            times = np.array([r["time"] for r in ok]) if ok else np.array([np.nan])
            mean_err = np.array([_mean_max(r)[0] for r in recs])
            max_err = np.array([_mean_max(r)[1] for r in recs])
            rows.append(dict(design=dname, method=name, skipped=False, n=len(recs),
                             exact=int(sum(r["exact"] for r in recs)),
                             time_median=float(np.median(times)), time_min=float(np.min(times)), time_max=float(np.max(times)),
                             err_mean=float(np.mean(mean_err)), err_mean_lo=float(np.min(mean_err)), err_mean_hi=float(np.max(mean_err)),
                             err_max_median=float(np.median(max_err)), capped=recs[0].get("capped_iter"),
                             from_log=any(r.get("from_log") for r in recs),
                             errors=sorted({r["error"] for r in recs if r.get("error")})))
    return rows


def markdown(results):
    env = results["environment"]
    out = ["# Peer benchmark: hcl_stats vs SLIDE, GFA, MOFA+, AJIVE", "",
           "Generated by `benchmarks/bench_peers.py` (numbers below are measured, one BLAS thread per method).", "",
           f"- Python {env['python']} on {env['platform']}; hcl_stats commit {env.get('git_commit')} "
           f"(HCL default method {env.get('hcl_default_method')!r})",
           *[f"- merged run: methods {m['methods']} on {m['designs']} at commit {m['environment'].get('git_commit')} "
             f"(HCL default method {m['environment'].get('hcl_default_method')!r})" for m in results.get("merged_runs", [])],
           "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
           "- BLAS inside the run: " + ", ".join(f"{b['internal_api']} {b['num_threads']} thread(s)" for b in env["blas_inside_limit"]),
           f"- thread environment variables: {env['env_threads']}",
           *([f"- records of {results['imported_log']['designs']} for the methods not re-run were rebuilt from the log "
              f"`{results['imported_log']['path']}` of a first run (started at commit fc0e32a, HCL default method 'paper' then; "
              "stopped during the paper design because the machine was heavily shared); they carry only mean/max block errors"]
             if results.get("imported_log") else []),
           f"- seed {results['seed']}; replicate r of a design draws from SeedSequence([seed, design id]).spawn(reps)[r]", "",
           "Block error: per true block (m, S), the sine of the largest principal angle between the true and the estimated "
           "column spaces (1 when the subset is missing or found with a smaller rank); 'mean err' averages over blocks then "
           "replicates (range over replicates in brackets); 'max err' is the median over replicates of the worst block. "
           "Peers' factors are assigned to a subset by the modalities in which they explain more than "
           f"{ACTIVE_SHARE:.0%} of the variance. hcl_stats = `select_structure` + `HCL(structure)` with HCL's default fit at the "
           "recorded commit; hcl_stats (paper mode) = the same selection + `HCL(structure, method='paper')` (the authors' estimator); "
           "SLIDE = `hcl_stats.baselines.SLIDE('auto')` (group-lasso path + 3 x 3 bi-cross-validation, then the authors' fit); "
           "GFA and MOFA+ with K = max(15, K_true + 4) and their defaults; AJIVE given the true initial signal ranks per view.",
           *(["", "Designs with missing values (NaN): hcl_stats = `hcl_stats.incomplete.select_structure_incomplete` (the "
              "available-case selection `select_structure` runs on NaN) + `hcl_stats.estimation.missing.fit_missing` (the EM "
              "over the observed entries `HCL(missing='em')` runs); MOFA+ is given the NaN (it models missing entries); GFA "
              "is given the NaN (the cca-zoo port refuses them: the recorded error) and, in its own row, the complete cases "
              "only. Errors are over all samples' loadings (the truth), whatever rows a method used."]
             if any(d.get("missing") for d in results["designs"].values()) else []), ""]
    rows = summarise(results)
    for dname, d in results["designs"].items():
        out += [f"## {dname}: {d['label']}", "", f"{d['reps']} replicate(s).", "",
                "| method | exact structure | median fit time (s) [min, max] | mean err [range] | max err (median) |",
                "|---|---|---|---|---|"]
        for r in rows:
            if r["design"] != dname:
                continue
            if r["skipped"]:
                out.append(f"| {r['method']} | skipped: {r['skipped']} | - | - | - |")
                continue
            note = f" (errors: {'; '.join(r['errors'])})" if r["errors"] else ""
            if r.get("from_log"):
                note += " (from the run log of a first run, see below)"
            if r.get("capped"):
                note += f" (capped at {r['capped']} iterations)"
            out.append(f"| {r['method']}{note} | {r['exact']}/{r['n']} | {r['time_median']:.2f} [{r['time_min']:.2f}, {r['time_max']:.2f}] | "
                       f"{r['err_mean']:.3f} [{r['err_mean_lo']:.3f}, {r['err_mean_hi']:.3f}] | {r['err_max_median']:.3f} |")
        out.append("")
    return "\n".join(out)


def figure(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summarise(results) if not r["skipped"]]
    designs = list(results["designs"])
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        xs, ex, tm, er = [], [], [], []
        for i, dn in enumerate(designs):
            r = next((r for r in rows if r["design"] == dn and r["method"] == m), None)
            if r is None:
                continue
            xs.append(i + (j - (len(methods) - 1) / 2) * width)
            ex.append(r["exact"] / r["n"])
            tm.append(r["time_median"])
            er.append(r["err_mean"])
        axes[0].bar(xs, ex, width, label=m)
        axes[1].bar(xs, tm, width, label=m)
        axes[2].bar(xs, er, width, label=m)
    for ax, t in zip(axes, ["share of replicates with the exact structure", "median fit time (s, log scale)",
                            "mean block error (largest principal-angle sine)"]):
        ax.set_xticks(range(len(designs)))
        ax.set_xticklabels(designs, rotation=15)
        ax.set_title(t, fontsize=10)
    axes[1].set_yscale("log")
    axes[0].set_ylim(0, 1.05)
    axes[2].set_ylim(0, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(methods), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results, json_path, md_path, report_dir):
    json_path, md_path, report_dir = Path(json_path), Path(md_path), Path(report_dir)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=float))
    md = markdown(results)
    md_path.write_text(md + "\n")
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "peers.md").write_text(md + "\n\n![peer benchmark](peers.png)\n")
    figure(results, report_dir / "peers.png")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small design, one replicate")
    ap.add_argument("--designs", nargs="*", default=None, help=f"subset of {list(DESIGNS)}")
    ap.add_argument("--methods", nargs="*", default=None, help=f"subset of {list(METHODS)}")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/peers.json"))
    ap.add_argument("--md", default=None)
    ap.add_argument("--report-dir", default=None)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--reps", type=int, default=None, help="override the number of replicates of every design")
    ap.add_argument("--import-log", nargs=2, metavar=("LOG", "DESIGNS"), default=None,
                    help="add records rebuilt from a stopped run's log for the comma-separated DESIGNS (with --merge)")
    ap.add_argument("--merge", action="store_true",
                    help="add the records of this run to the existing --out JSON (replacing same design and method)")
    a = ap.parse_args(argv)
    md = a.md or str(Path(a.out).with_suffix(".md"))
    rdir = a.report_dir or (str(ROOT / "reports/peers") if not a.quick else str(Path(a.out).parent / "peers_report"))
    if a.report_only:
        results = json.loads(Path(a.out).read_text())
    else:
        designs = QUICK if a.quick else {k: v for k, v in DESIGNS.items() if a.designs is None or k in a.designs}
        if a.reps is not None:
            designs = {k: dict(v, reps=a.reps) for k, v in designs.items()}
        def _partial(records):  # keep what is done if the run is stopped
            Path(a.out).with_suffix(".partial.json").write_text(json.dumps(dict(records=records), default=float))

        results = run(designs, seed=a.seed, methods=a.methods, log=lambda s: print(s, flush=True), on_record=_partial)
        if a.import_log:
            dn = a.import_log[1].split(",")
            have = {(r["design"], r["method"]) for r in results["records"]}
            results["records"] += [r for r in records_from_log(a.import_log[0], dn) if (r["design"], r["method"]) not in have]
            for k in dn:
                d = DESIGNS[k]
                results["designs"].setdefault(k, dict(label=d["label"], structure=d["structure"].to_dict(), n_features=d["n_features"],
                                                      n_samples=d["n_samples"], noise_var=d["noise_var"], loadings=d["loadings"],
                                                      reps=d["reps"]))
            results["imported_log"] = dict(path=a.import_log[0], designs=dn)
        if a.merge and Path(a.out).exists():
            old = json.loads(Path(a.out).read_text())
            new_keys = {(r["design"], r["method"]) for r in results["records"]}
            old["records"] = [r for r in old["records"] if (r["design"], r["method"]) not in new_keys] + results["records"]
            for k, v in results["designs"].items():
                old["designs"].setdefault(k, v)
            old.setdefault("merged_runs", []).append(dict(environment=results["environment"], methods=a.methods,
                                                          designs=list(results["designs"])))
            results = old
    write(results, a.out, md, rdir)
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
