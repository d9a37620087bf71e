"""SLIDE given the structure at the recovery study's size: the committed code before issue 12 (unscaled
data, tol 1e-6 times the pseudo-data scale, 1000 iterations, data route) against the current one (SLIDE's
own per-view scaling to unit Frobenius norm, eps = 1e-6, iterated on the covariance), in the same run.

Design: simulations/configs/recovery.toml (p = (100, 500, 800), r = 3 for all 7 subsets, noise 6,
draw = "wishart"), the study's own seeds and draws (``hcl_stats.harness.studies``), replicates
0..R-1 at a few sample sizes. For each task both versions fit the same draw; recorded: CPU seconds per
fit (``time.process_time``, BLAS pinned to one thread), iterations, and the study's recovery metrics
(mean relative block Gram error, overall relative Gram error). The old code is loaded from
``git show <commit>:hcl_stats/baselines/_slide.py`` (default: the commit before the change).

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_slide.py --reps 5 --ns 5000,10000,30000
Writes results/slide.json and results/slide.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"


def _old_module(commit):
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:hcl_stats/baselines/_slide.py"],
                         capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "_slide_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("hcl_stats.baselines._slide_old", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ns", default="5000,10000,30000")
    ap.add_argument("--old-commit", default="f9d2002")
    ap.add_argument("--tag", default="slide")
    ap.add_argument("--attribution", action="store_true",
                    help="instead: fit five variants (scaling x route x stopping) on the same draws and write "
                         "results/slide_attribution.jsonl")
    args = ap.parse_args(argv)
    if args.attribution:
        return attribution(args)
    from hcl_stats.baselines import SLIDE
    from hcl_stats.harness import load_config
    from hcl_stats.harness.studies import _draw_stats, task_seeds
    from hcl_stats.metrics import recovery_metrics
    from hcl_stats.simulate import make_loadings

    old = _old_module(args.old_commit)
    cfg = load_config(ROOT / "simulations" / "configs" / "recovery.toml")
    points = {int(p["n_samples"]): p for p in cfg.grid_points()}
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        threads = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
        for n in [int(v) for v in args.ns.split(",")]:
            point = points[n]
            s = cfg.structure(point)
            nf = tuple(point["n_features"])
            for r in range(args.reps):
                seeds = task_seeds(cfg.seed, r, cfg.replicates, point)
                W = make_loadings(s, nf, np.random.default_rng(seeds["model"]), kind="paper", scale=float(point["signal"]))
                stats, xs, scale = _draw_stats(s, W, point, np.random.default_rng(seeds["data"]))
                seed = int(seeds["data"].generate_state(1)[0])
                out = {"n": n, "replicate": r}
                for name in ("old", "new"):
                    c0 = time.process_time()
                    if name == "old":
                        est = old.SLIDE(s, tol=1e-6 * scale, random_state=seed).fit(xs())
                    else:
                        est = SLIDE(s, random_state=seed).fit_covariance(stats.cov, nf, stats.n_samples)
                    cpu = time.process_time() - c0
                    m = recovery_metrics(est.loadings_, W, s, nf)
                    blocks = [v for k, v in m.items() if k.startswith("rel_gram[")]
                    out[name] = {"cpu": cpu, "n_iter": int(est.n_iter_), "converged": bool(est.converged_),
                                 "rel_block_mean": float(np.mean(blocks)), "rel_overall": float(m["rel_overall"])}
                rows.append(out)
                print(json.dumps(out), flush=True)
    summ = {}
    for name in ("old", "new"):
        summ[name] = {k: float(np.median([r[name][k] for r in rows])) for k in ("cpu", "n_iter", "rel_block_mean", "rel_overall")}
        summ[name]["cpu_max"] = float(np.max([r[name]["cpu"] for r in rows]))
        summ[name]["converged"] = int(sum(r[name]["converged"] for r in rows))
    res = {"host": platform.node(), "time": time.strftime("%Y-%m-%d %H:%M %Z"), "blas_threads": threads,
           "load_avg": os.getloadavg(), "args": vars(args), "rows": rows, "summary": summ}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(res, indent=1))
    o, nw = summ["old"], summ["new"]
    L = ["# SLIDE on its own scale (issue 12, part 2)", "",
         f"Measured {res['time']} on {res['host']} (shared, load average {res['load_avg'][0]:.1f}), BLAS threads {threads}; "
         f"{len(rows)} fits per version (n in {args.ns}, replicates 0..{args.reps - 1} of recovery.toml, the study's own "
         "draws); both versions fit the same draw in the same run. CPU seconds by `time.process_time`.", "",
         "| quantity (median over fits) | before (unscaled, data route) | after (Frobenius scaling, eps 1e-6, covariance) | after / before |",
         "|---|---|---|---|",
         f"| CPU s per fit | {o['cpu']:.2f} (max {o['cpu_max']:.2f}) | {nw['cpu']:.2f} (max {nw['cpu_max']:.2f}) | {nw['cpu'] / o['cpu']:.3f} |",
         f"| iterations | {o['n_iter']:.0f} | {nw['n_iter']:.0f} | |",
         f"| converged (of {len(rows)}) | {o['converged']} | {nw['converged']} | |",
         f"| mean relative block Gram error | {o['rel_block_mean']:.4f} | {nw['rel_block_mean']:.4f} | {nw['rel_block_mean'] / o['rel_block_mean']:.4f} |",
         f"| overall relative Gram error | {o['rel_overall']:.4f} | {nw['rel_overall']:.4f} | {nw['rel_overall'] / o['rel_overall']:.4f} |",
         "", "Per sample size (medians):", "", "| n | CPU s before | CPU s after | iterations after | block error before | after | overall before | after |",
         "|---|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in rows}):
        rs = [r for r in rows if r["n"] == n]
        med = lambda v, k: float(np.median([r[v][k] for r in rs]))  # noqa: E731
        L.append(f"| {n} | {med('old', 'cpu'):.2f} | {med('new', 'cpu'):.2f} | {med('new', 'n_iter'):.0f} | {med('old', 'rel_block_mean'):.4f} | "
                 f"{med('new', 'rel_block_mean'):.4f} | {med('old', 'rel_overall'):.4f} | {med('new', 'rel_overall'):.4f} |")
    L += ["", f"Regenerate: `OPENBLAS_NUM_THREADS=1 python benchmarks/bench_slide.py --reps {args.reps} --ns {args.ns}`."]
    (RESULTS / f"{args.tag}.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


def attribution(args):
    """Which part of the change moves the errors: the covariance route and its start, SLIDE's eps rule,
    or the per-view scaling (one row per draw, five variants)."""
    from hcl_stats.baselines import SLIDE
    from hcl_stats.harness import load_config
    from hcl_stats.harness.studies import _draw_stats, task_seeds
    from hcl_stats.metrics import recovery_metrics
    from hcl_stats.simulate import make_loadings

    old = _old_module(args.old_commit)
    cfg = load_config(ROOT / "simulations" / "configs" / "recovery.toml")
    points = {int(p["n_samples"]): p for p in cfg.grid_points()}
    out = []
    with threadpool_limits(limits=1, user_api="blas"):
        for n in [int(v) for v in args.ns.split(",")]:
            point = points[n]
            s = cfg.structure(point)
            nf = tuple(point["n_features"])
            for r in range(args.reps):
                seeds = task_seeds(cfg.seed, r, cfg.replicates, point)
                W = make_loadings(s, nf, np.random.default_rng(seeds["model"]), kind="paper", scale=float(point["signal"]))
                stats, xs, scale = _draw_stats(s, W, point, np.random.default_rng(seeds["data"]))
                seed = int(seeds["data"].generate_state(1)[0])

                def err(est):
                    m = recovery_metrics(est.loadings_, W, s, nf)
                    return {"rel_block_mean": float(np.mean([v for k, v in m.items() if k.startswith("rel_gram[")])),
                            "rel_overall": float(m["rel_overall"]), "n_iter": int(est.n_iter_)}

                v = {"old_unscaled_1000": err(old.SLIDE(s, tol=1e-6 * scale, random_state=seed).fit(xs())),
                     "old_scaled_eps": err(old.SLIDE(s, tol=1e-6, random_state=seed, view_scaling="frobenius").fit(xs())),
                     "new_unscaled_1000": err(SLIDE(s, tol=1e-300, random_state=seed, view_scaling=None)
                                              .fit_covariance(stats.cov, nf, n)),
                     "new_scaled_eps": err(SLIDE(s, random_state=seed).fit_covariance(stats.cov, nf, n)),
                     "new_scaled_1000": err(SLIDE(s, tol=1e-300, random_state=seed).fit_covariance(stats.cov, nf, n))}
                out.append({"n": n, "replicate": r, "variants": v})
                print(json.dumps(out[-1]), flush=True)
    (RESULTS / "slide_attribution.jsonl").write_text("".join(json.dumps(o) + "\n" for o in out))


if __name__ == "__main__":
    main()
