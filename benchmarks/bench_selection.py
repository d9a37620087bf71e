"""Benchmark of structure selection: hcl_stats.select_structure vs GFA (cca-zoo), same data.

Exact recovery = every subset and every rank of the selected structure equal to the truth.
GFA (variational Bayes with view-wise ARD, K = 15) gives a structure through
the view-wise activity pattern of each of its factors: view m is active on factor k when the mean
squared loading ||W_m[:, k]||^2 / p_m exceeds a threshold (0.01 by default, i.e. 1% of the
noise variance of the design; 0.001 and 0.1 are reported too); the rank of a subset is the
number of factors with that pattern.

Everything runs on one BLAS thread (threadpoolctl), sequentially, and the machine, versions and
thread settings are written next to the numbers.

    python benchmarks/bench_selection.py                      # the full run (100 seeds, GFA too)
    python benchmarks/bench_selection.py --seeds 5 --gfa-seeds 2 --out /tmp/sel   # a quick check

Writes <out>.md (tables) and <out>.json (one record per data set).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from collections import Counter

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import hcl_stats
from hcl_stats import HCL, Structure, select_structure, simulate

HERE = os.path.dirname(os.path.abspath(__file__))

# main design (also the peer comparison): {012} x2, {01} x2, {12} x1, specific x2 each
S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
P3 = (100, 80, 60)
# 4 modalities, unequal ranks, absent subsets ({0,1,2,3} x1, {0,1,2} x2, {1,3} x1, {2,3} x2;
# specific {0} x3, {1} x1, {3} x2; no {2}-specific, no other pairs or triples)
S4 = Structure({(0, 1, 2, 3): 1, (0, 1, 2): 2, (1, 3): 1, (2, 3): 2, (0,): 3, (1,): 1, (3,): 2}, 4)
P4 = (80, 60, 50, 40)
# 6 modalities
S6 = Structure({(0, 1, 2, 3, 4, 5): 1, (0, 1, 2): 1, (3, 4): 2, (1, 5): 1, (0,): 1, (1,): 1, (2,): 1,
                (3,): 1, (4,): 2, (5,): 1}, 6)
P6 = (40, 30, 50, 30, 40, 30)

GFA_THRESHOLDS = (0.001, 0.01, 0.1)


def _seeds(base, n):
    return np.random.SeedSequence(base).spawn(n)


def gfa_structure(weights, n_modalities, threshold):
    """Structure read off GFA's loadings: the activity pattern of each factor, counted."""
    patterns = Counter()
    for k in range(weights[0].shape[1]):
        act = tuple(m for m, W in enumerate(weights) if np.mean(W[:, k] ** 2) > threshold)
        if act:
            patterns[act] += 1
    if not patterns:
        return None
    try:
        return Structure(dict(patterns), n_modalities)
    except ValueError:  # some modality without any active factor
        return None


def run_select(Xs, truth, noise="isotropic"):
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            s = select_structure(Xs, noise=noise)
            err = None
        except ValueError as exc:
            s, err = None, str(exc)
    t_sel, c_sel = time.perf_counter() - t0, time.process_time() - c0
    rec = {"select_time": t_sel, "select_cpu": c_sel, "exact": bool(s == truth), "error": err,
           "selected": None if s is None else {",".join(map(str, k)): v for k, v in s.ranks.items()}}
    return rec, s


def run_select_and_fit(data):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        HCL(structure="auto", method="init", identifiability="ignore").fit(data.Xs)
    return time.perf_counter() - t0


def run_gfa(data, truth, seed):
    from cca_zoo.probabilistic import GFA

    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = GFA(n_components=15, random_state=seed, n_posterior_samples=1).fit(data.Xs)
    t, c = time.perf_counter() - t0, time.process_time() - c0
    out = {"gfa_time": t, "gfa_cpu": c, "gfa_n_components": int(g.n_components_), "gfa_n_iter": int(g.n_iter_)}
    for thr in GFA_THRESHOLDS:
        s = gfa_structure(g.weights_, truth.n_modalities, thr)
        out[f"gfa_exact@{thr:g}"] = bool(s == truth)
        if thr == 0.01:
            out["gfa_selected"] = None if s is None else {",".join(map(str, k)): v for k, v in s.ranks.items()}
    return out


def run_slide(data, truth, seed):
    from hcl_stats.baselines import select_structure_slide

    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = select_structure_slide(data.Xs, random_state=seed)
    return {"slide_time": time.perf_counter() - t0, "slide_cpu": time.process_time() - c0,
            "slide_exact": bool(s == truth)}


def design(name, truth, n_features, n_samples, n_seeds, gfa_seeds, base_seed, *, noise=1.0,
           loadings="gaussian", scale=1.0, fit_time=False, slide_seeds=0, hetero=0.0, select_noise="isotropic",
           log=print):
    """hetero > 0: every feature gets extra N(0, v_j) noise, v_j ~ Uniform(0, hetero) (diagonal noise)."""
    recs = []
    for r, ss in enumerate(_seeds(base_seed, n_seeds)):
        data = simulate(truth, n_features, n_samples, noise, random_state=ss, loadings=loadings, loading_scale=scale)
        Xs = data.Xs
        if hetero > 0:
            rng = np.random.default_rng(ss.spawn(1)[0])
            Xs = [X + rng.standard_normal(X.shape) * np.sqrt(rng.uniform(0.0, hetero, X.shape[1])) for X in Xs]
        rec, _ = run_select(Xs, truth, noise=select_noise)
        rec["replicate"] = r
        if fit_time:
            rec["select_fit_time"] = run_select_and_fit(data)
        if r < gfa_seeds:
            rec.update(run_gfa(data, truth, seed=r))
        if r < slide_seeds:
            rec.update(run_slide(data, truth, seed=r))
        recs.append(rec)
        if gfa_seeds and r < gfa_seeds:
            log(f"  [{name}] replicate {r}: select exact={rec['exact']} ({rec['select_time']:.3f} s), "
                f"GFA exact={rec['gfa_exact@0.01']} ({rec['gfa_time']:.1f} s wall, {rec['gfa_cpu']:.1f} s CPU)", flush=True)
    return {"name": name, "truth": repr(truth), "n_features": list(n_features), "n_samples": n_samples,
            "noise_var": noise, "loadings": loadings, "loading_scale": scale, "hetero": hetero,
            "select_noise": select_noise, "records": recs}


def null_design(n_seeds, base_seed):
    """Pure noise in every modality: select_structure must refuse (ValueError)."""
    refused = 0
    for ss in _seeds(base_seed, n_seeds):
        rng = np.random.default_rng(ss)
        Xs = [rng.standard_normal((500, p)) for p in P3]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                select_structure(Xs)
            except ValueError:
                refused += 1
    return refused


def _summ(d):
    recs = d["records"]
    n = len(recs)
    ex = sum(r["exact"] for r in recs)
    ts = np.array([r["select_time"] for r in recs])
    row = {"design": d["name"], "n": d["n_samples"], "p": d["n_features"], "seeds": n, "exact": ex,
           "sel_median": float(np.median(ts)), "sel_range": (float(ts.min()), float(ts.max())),
           "sel_cpu_median": float(np.median([r["select_cpu"] for r in recs]))}
    if "select_fit_time" in recs[0]:
        row["selfit_median"] = float(np.median([r["select_fit_time"] for r in recs]))
    g = [r for r in recs if "gfa_time" in r]
    if g:
        gt = np.array([r["gfa_time"] for r in g])
        row.update(gfa_seeds=len(g), gfa_median=float(np.median(gt)),
                   gfa_cpu_median=float(np.median([r["gfa_cpu"] for r in g])),
                   sel_cpu_median_on_gfa_seeds=float(np.median([r["select_cpu"] for r in g])),
                   gfa_iter_median=float(np.median([r["gfa_n_iter"] for r in g])), gfa_range=(float(gt.min()), float(gt.max())),
                   **{f"gfa_exact@{t:g}": sum(r[f"gfa_exact@{t:g}"] for r in g) for t in GFA_THRESHOLDS},
                   sel_exact_on_gfa_seeds=sum(r["exact"] for r in g),
                   sel_median_on_gfa_seeds=float(np.median([r["select_time"] for r in g])))
    sl = [r for r in recs if "slide_time" in r]
    if sl:
        row.update(slide_seeds=len(sl), slide_exact=sum(r["slide_exact"] for r in sl),
                   slide_median=float(np.median([r["slide_time"] for r in sl])),
                   slide_cpu_median=float(np.median([r["slide_cpu"] for r in sl])),
                   sel_exact_on_slide_seeds=sum(r["exact"] for r in sl))
    misses = Counter(json.dumps(r["selected"], sort_keys=True) if r["selected"] else (r["error"] or "")[:80]
                     for r in recs if not r["exact"])
    row["misses"] = misses.most_common(3)
    return row


def weak_gfa(n_seeds, out):
    """GFA and select_structure where the loadings are weak (near the per-modality detection edge)."""
    t_start = time.time()
    with threadpool_limits(limits=1):
        env = _env()
        ds = [design(f"M=3, loading scale {sc}", S3, P3, 1000, n_seeds, n_seeds, 2000, scale=sc) for sc in (0.15, 0.1)]
    rows = [_summ(d) for d in ds]
    with open(out + ".json", "w") as f:
        json.dump({"env": env, "wall_time": time.time() - t_start, "designs": ds}, f, indent=1, default=str)
    lines = ["# Structure selection at weak loadings: select_structure vs GFA", "",
             "Generated by `python benchmarks/bench_selection.py --weak-gfa N` (do not edit by hand). Same data sets "
             "as the first N replicates of the sweep rows of selection.md (base seed 2000).", "",
             f"- hcl_stats {env['hcl_stats']} (git {env['git']}), cca-zoo {env['cca_zoo']}; one BLAS thread; "
             f"shared 2-core machine; wall {time.time() - t_start:.0f} s", "",
             "| design | seeds | select_structure exact | GFA exact @0.01 (@0.001, @0.1) | CPU median select / GFA |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['design']} | {r['seeds']} | {r['exact']}/{r['seeds']} | {r['gfa_exact@0.01']}/{r['gfa_seeds']} "
                     f"({r['gfa_exact@0.001']}, {r['gfa_exact@0.1']}) | {r['sel_cpu_median']:.3f} s / {r['gfa_cpu_median']:.2f} s |")
    lines.append("")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


def _env():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    except Exception:  # pragma: no cover
        rev = "?"
    try:
        import cca_zoo
        czv = cca_zoo.__version__
    except Exception:
        czv = "not installed"
    import scipy
    pools = [f"{p['internal_api']} {p.get('version')} num_threads={p['num_threads']}" for p in threadpool_info()]
    return {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
            "cca_zoo": czv, "hcl_stats": hcl_stats.__version__, "git": rev, "platform": platform.platform(),
            "cpus": os.cpu_count(), "threadpools_during_run": pools}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100, help="data sets per main design (default 100)")
    ap.add_argument("--gfa-seeds", type=int, default=100, help="of those, how many GFA also fits (main design)")
    ap.add_argument("--gfa-seeds-other", type=int, default=20, help="GFA fits for the n = 500 and M = 4 designs")
    ap.add_argument("--slide-seeds", type=int, default=20,
                    help="SLIDE selection (hcl_stats.baselines.select_structure_slide) on the main design")
    ap.add_argument("--sweep-seeds", type=int, default=20, help="data sets per difficulty-sweep design")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "selection"))
    ap.add_argument("--weak-gfa", type=int, default=0, metavar="SEEDS",
                    help="instead of the full run: select_structure and GFA side by side at weak loadings "
                         "(scale 0.15 and 0.1) on SEEDS data sets each; written to <out>.weak.md/.json")
    args = ap.parse_args(argv)
    if args.weak_gfa:
        return weak_gfa(args.weak_gfa, args.out + ".weak")
    try:
        import cca_zoo  # noqa: F401
        have_gfa = True
    except Exception as exc:  # skip cleanly
        print(f"cca-zoo unavailable ({exc}); GFA is skipped")
        have_gfa = False
    g_main = args.gfa_seeds if have_gfa else 0
    g_other = args.gfa_seeds_other if have_gfa else 0
    t_start = time.time()
    with threadpool_limits(limits=1):
        env = _env()
        designs = []
        print("main design, n = 1000", flush=True)
        designs.append(design("M=3 main", S3, P3, 1000, args.seeds, g_main, 1000, fit_time=True,
                              slide_seeds=args.slide_seeds))
        print("n = 500")
        designs.append(design("M=3 main", S3, P3, 500, args.seeds, g_other, 1001))
        print("M = 4")
        designs.append(design("M=4 (absent subsets, unequal ranks)", S4, P4, 1000, args.seeds, g_other, 1002))
        designs.append(design("M=4 (absent subsets, unequal ranks)", S4, P4, 500, args.seeds, 0, 1003))
        print("sweep")
        sweep = []
        for sc in (0.3, 0.2, 0.15, 0.1):
            sweep.append(design(f"M=3, loading scale {sc}", S3, P3, 1000, args.sweep_seeds, 0, 2000, scale=sc))
        sweep.append(design("M=3, paper loadings, noise 1", S3, P3, 1000, args.sweep_seeds, 0, 2001, loadings="paper"))
        sweep.append(design("M=3, paper loadings, noise 0.1", S3, P3, 1000, args.sweep_seeds, 0, 2002,
                            loadings="paper", noise=0.1))
        sweep.append(design("M=6", S6, P6, 1000, args.sweep_seeds, 0, 2003))
        sweep.append(design("M=3 main, small n", S3, P3, 200, args.sweep_seeds, 0, 2004))
        for mode in ("isotropic", "diagonal"):
            sweep.append(design(f"M=3, noise 0.25 + per-feature U(0, 1) variances, noise='{mode}'", S3, P3, 1000,
                                args.sweep_seeds, 0, 2005, noise=0.25, hetero=1.0, select_noise=mode))
        refused = null_design(args.sweep_seeds, 3000)
    wall = time.time() - t_start
    rows = [_summ(d) for d in designs]
    srows = [_summ(d) for d in sweep]
    with open(args.out + ".json", "w") as f:
        json.dump({"env": env, "wall_time": wall, "designs": designs, "sweep": sweep,
                   "null_refused": [refused, args.sweep_seeds]}, f, indent=1, default=str)
    md = _markdown(env, rows, srows, refused, args.sweep_seeds, wall, have_gfa)
    with open(args.out + ".md", "w") as f:
        f.write(md)
    print(md)


def _markdown(env, rows, srows, refused, n_null, wall, have_gfa):
    out = ["# Structure selection benchmark", "",
           "Generated by `python benchmarks/bench_selection.py` (do not edit by hand).", "",
           f"- hcl_stats {env['hcl_stats']} (git {env['git']}), Python {env['python']}, numpy {env['numpy']}, "
           f"scipy {env['scipy']}, cca-zoo {env['cca_zoo']}",
           f"- {env['platform']}, {env['cpus']} CPUs (shared); BLAS limited to one thread: "
           + "; ".join(env["threadpools_during_run"]),
           f"- total wall time {wall:.0f} s. The machine (2 cores) was shared with other jobs during the run: wall times "
           "are inflated by contention, so process CPU times are reported beside them (one BLAS thread, so CPU time "
           "is close to the time on an idle core).", "",
           "Data: `simulate(structure, p, n, noise_var=1, loadings='gaussian')` (iid N(0,1) loadings on the active "
           "blocks) unless stated; replicate r of a design uses `SeedSequence(base).spawn(seeds)[r]`. Exact = every "
           "subset and every rank right. `select_structure` defaults (alpha = 1e-3). GFA: cca-zoo `GFA(n_components=15)`, "
           "structure from the view-wise activity of each factor (mean squared loading of the view > threshold).", "",
           "## Main designs", "",
           "| design | n | p | seeds | select_structure exact | median time (range) | GFA seeds | GFA exact @0.01 (@0.001, @0.1) | GFA median time (range) | select+HCL init fit |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = (f"{r['gfa_seeds']} | {r['gfa_exact@0.01']}/{r['gfa_seeds']} ({r['gfa_exact@0.001']}, {r['gfa_exact@0.1']}) | "
             f"{r['gfa_median']:.2f} s ({r['gfa_range'][0]:.2f} to {r['gfa_range'][1]:.2f})") if "gfa_seeds" in r else "0 | - | -"
        sf = f"{r['selfit_median']:.3f} s" if "selfit_median" in r else "-"
        out.append(f"| {r['design']} | {r['n']} | {tuple(r['p'])} | {r['seeds']} | {r['exact']}/{r['seeds']} | "
                   f"{r['sel_median']:.3f} s ({r['sel_range'][0]:.3f} to {r['sel_range'][1]:.3f}) | {g} | {sf} |")
    out += ["", "On the data sets GFA also fitted:", ""]
    for r in rows:
        if "gfa_seeds" in r:
            ratio = r["gfa_median"] / r["sel_median_on_gfa_seeds"]
            cratio = r["gfa_cpu_median"] / r["sel_cpu_median_on_gfa_seeds"]
            out.append(f"- {r['design']}, n = {r['n']}: select_structure exact {r['sel_exact_on_gfa_seeds']}/{r['gfa_seeds']}, "
                       f"GFA {r['gfa_exact@0.01']}/{r['gfa_seeds']}; median wall time {r['sel_median_on_gfa_seeds']:.3f} s vs "
                       f"{r['gfa_median']:.2f} s ({ratio:.0f}x less), median CPU time {r['sel_cpu_median_on_gfa_seeds']:.3f} s vs "
                       f"{r['gfa_cpu_median']:.2f} s ({cratio:.0f}x less); GFA median iterations {r['gfa_iter_median']:.0f}")
        if "slide_seeds" in r:
            out.append(f"- {r['design']}, n = {r['n']}: SLIDE selection (group-lasso path + 3x3 bi-cross-validation, "
                       f"`hcl_stats.baselines.select_structure_slide`) exact {r['slide_exact']}/{r['slide_seeds']}, "
                       f"median {r['slide_median']:.2f} s wall ({r['slide_cpu_median']:.2f} s CPU); select_structure {r['sel_exact_on_slide_seeds']}/{r['slide_seeds']} "
                       "on the same data sets")
    if not have_gfa:
        out.append("- GFA skipped: cca-zoo not importable.")
    out += ["", "## Difficulty sweep and other designs (select_structure only)", "",
            "| design | n | p | seeds | exact | median time (CPU) | most frequent misses |", "|---|---|---|---|---|---|---|"]
    for r in srows:
        miss = "; ".join(f"{m} (x{c})" for m, c in r["misses"]) or "-"
        out.append(f"| {r['design']} | {r['n']} | {tuple(r['p'])} | {r['seeds']} | {r['exact']}/{r['seeds']} | "
                   f"{r['sel_median']:.3f} s ({r['sel_cpu_median']:.3f} s) | {miss} |")
    out += ["", f"Pure noise (n = 500, p = {P3}): select_structure refused (ValueError: no factor above the noise) "
            f"in {refused} of {n_null} data sets.", ""]
    out += ["Misses in the main designs (most frequent selected structures):", ""]
    for r in rows:
        miss = "; ".join(f"{m} (x{c})" for m, c in r["misses"]) or "none"
        out.append(f"- {r['design']}, n = {r['n']}: {miss}")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
