"""ALS (method="als", shrinkage=False) at the paper setting: cost per sweep, convergence over seeds, and
the whole fit against the reference "sample covariance + one full eigh" measured in the same run.

Design: Structure.full(3, 3) (K = 21, r = 3 for all 7 subsets), p = (100, 500, 800), noise variance 6,
n samples simulated per seed (seeds 0..S-1). Per seed, interleaved: sample_covariance(Xs); scipy.linalg.eigh
of the covariance (all eigenpairs); the registered method fit_als(stats, structure) with its defaults (the
whole fit: noise estimate, spectral initialisation, sweeps, Newton polish); then, from the initialisation,
one untimed sweep (which computes the guard vectors) and 10 plain sweeps timed alone (ms per sweep). CPU
seconds (time.process_time) with BLAS pinned to one thread (threadpoolctl); the ratio fit / (cov + eigh) is
per seed, in the same run. "Converged" is the documented rule, stop_crit <= tol at the returned loadings,
within the default budget (max_iter sweeps plus Newton steps). The commit of the checkout and the load
average (start and end) are recorded.

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_als.py --seeds 20 --ns 20000,5000
Writes results/als.json and results/als.md (``--tag`` changes the names).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import linalg as sla  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import subprocess  # noqa: E402

from hcl_stats import Structure, simulate  # noqa: E402
from hcl_stats.covariance import sample_covariance  # noqa: E402
from hcl_stats.estimation import als as A  # noqa: E402
from hcl_stats.estimation.als import fit_als  # noqa: E402
from hcl_stats.exceptions import ConvergenceWarning  # noqa: E402
from hcl_stats.metrics import overall_gram_error  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STRUCTURE = Structure.full(3, 3)
N_FEATURES = (100, 500, 800)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--ns", default="5000,20000")
    ap.add_argument("--tag", default="als")
    ap.add_argument("--tol", type=float, default=1e-6, help="fit_als tol (default: its default, 1e-6)")
    ap.add_argument("--commit", help="the commit the code was exported from (default: git rev-parse HEAD of this checkout)")
    ap.add_argument("--from-log", help="only summarise the JSON rows printed by an earlier (possibly stopped) run")
    args = ap.parse_args(argv)
    rows = []
    if args.from_log:
        rows = [json.loads(line) for line in Path(args.from_log).read_text().splitlines() if line.startswith("{")]
        args.ns = ",".join(str(n) for n in sorted({r["n"] for r in rows}))
        args.seeds = max(sum(r["n"] == n for r in rows) for n in {r["n"] for r in rows})
    here = Path(__file__).resolve().parent.parent
    commit, dirty = args.commit, ""
    if commit is None:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hcl_stats/estimation/als.py", "benchmarks/bench_als.py"],
                               cwd=here, capture_output=True, text=True).stdout.strip()
    load_start = os.getloadavg()
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        threads = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
        for n in ([] if args.from_log else [int(v) for v in args.ns.split(",")]):
            for seed in range(args.seeds):
                data = simulate(STRUCTURE, N_FEATURES, n, noise_var=6.0, random_state=seed)
                c0 = time.process_time()
                st = sample_covariance(data.Xs)
                t_cov = time.process_time() - c0
                c0 = time.process_time()
                sla.eigh(st.cov)
                t_eigh = time.process_time() - c0
                c0 = time.process_time()
                res = fit_als(st, STRUCTURE, tol=args.tol)
                t_fit = time.process_time() - c0
                prob = A._Problem(A._Target(dense=st.cov, shift=float(res.info["sigma2"])), STRUCTURE, N_FEATURES)
                W = res.info["init"] * prob.mask
                W, TW = prob.sweep(W, prob.tw(W))
                n_inner0 = prob.n_inner
                c0 = time.process_time()
                for _ in range(10):
                    W, TW = prob.sweep(W, TW)
                t_sweep = (time.process_time() - c0) / 10
                h = res.history
                row = {"n": n, "seed": seed, "cov": t_cov, "eigh": t_eigh, "fit": t_fit, "ratio": t_fit / (t_cov + t_eigh),
                       "sweep_ms": 1000 * t_sweep, "n_iter": int(res.n_iter), "sweeps": int(h["n_sweeps"]),
                       "newton": int(h["n_newton"]), "cg": int(h["n_cg"]), "converged": bool(res.converged),
                       "stop_crit": float(res.info["stop_crit"]), "tol": float(res.info["tol"]),
                       "n_extrapolated": int(h["n_extrapolated"]), "inner_per_sweep": (prob.n_inner - n_inner0) / 10,
                       "gram_err": float(overall_gram_error(res.loadings, data.loadings, relative=True)),
                       "monotone": bool(np.all(np.diff(h["objective"]) <= 1e-12 * h["objective"][0]))}
                rows.append(row)
                print(json.dumps(row), flush=True)
    res = {"host": platform.node(), "time": time.strftime("%Y-%m-%d %H:%M %Z"), "blas_threads": threads,
           "commit": commit, "als_files_modified_vs_commit": bool(dirty), "from_log": args.from_log,
           "load_avg_start": load_start, "load_avg_end": os.getloadavg(), "args": vars(args),
           "settings": {"max_iter": 500, "tol": args.tol, "accelerate": "squarem", "polish": True,
                        "inner_max": A._SWEEP_INNER_MAX, "guards": A._N_GUARD, "polish_rate": A._POLISH_RATE,
                        "cg_max": A._CG_MAX, "cg_eta": A._CG_ETA}, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(res, indent=1))
    la, lb = res["load_avg_start"], res["load_avg_end"]
    L = ["# ALS at the paper setting (issue 12, part 1)", "",
         f"Measured {res['time']} on {res['host']} at commit {commit}"
         f"{' (ALS files modified)' if dirty else ''} (shared machine, 2 cores; load average {la[0]:.1f} at the start, "
         f"{lb[0]:.1f} at the end); BLAS threads {threads}; CPU seconds (`time.process_time`). p = (100, 500, 800), "
         "K = 21 (r = 3 for all 7 subsets), noise 6; fit_als defaults: max_iter = 500 (sweeps + Newton steps), "
         f"tol = {args.tol:g} on stop_crit, SQUAREM, polish; LOBPCG at most {A._SWEEP_INNER_MAX} iterations per block update "
         f"with {A._N_GUARD} guard vectors; polish once a step's decrease is >= {A._POLISH_RATE} x the previous one, "
         f"CG at most {A._CG_MAX} iterations to a residual {A._CG_ETA} x the gradient.", "",
         f"| n | seeds | ms per sweep (median, max) | converged (stop_crit <= {args.tol:g}) | sweeps (median, max) | "
         "Newton steps (median, max) | CG products (median) | whole fit s (median) | cov + eigh s (median) | "
         "fit / (cov + eigh) (median, max) | objective monotone | relative Gram error vs truth (median) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in rows}):
        rs = [r for r in rows if r["n"] == n]
        g = lambda k: np.array([r[k] for r in rs], float)  # noqa: E731
        L.append(f"| {n} | {len(rs)} | {np.median(g('sweep_ms')):.1f}, {g('sweep_ms').max():.1f} | "
                 f"{int(g('converged').sum())} / {len(rs)} | {np.median(g('sweeps')):.0f}, {g('sweeps').max():.0f} | "
                 f"{np.median(g('newton')):.0f}, {g('newton').max():.0f} | {np.median(g('cg')):.0f} | "
                 f"{np.median(g('fit')):.2f} | {np.median(g('cov') + g('eigh')):.2f} | "
                 f"{np.median(g('ratio')):.1f}, {g('ratio').max():.1f} | {int(g('monotone').sum())} / {len(rs)} | {np.median(g('gram_err')):.4f} |")
    extra = "" if args.tol == 1e-6 else f" --tol {args.tol:g} --tag {args.tag}"
    L += ["", f"Regenerate: `OPENBLAS_NUM_THREADS=1 python benchmarks/bench_als.py --seeds {args.seeds} --ns {args.ns}{extra}`."]
    (RESULTS / f"{args.tag}.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
