"""ALS (method="als", shrinkage=False) at the paper setting: cost per sweep, convergence over seeds, and
the whole fit against the reference "sample covariance + one full eigh" measured in the same run.

Design: Structure.full(3, 3) (K = 21, r = 3 for all 7 subsets), p = (100, 500, 800), noise variance 6,
n samples simulated per seed (seeds 0..S-1). Per seed, interleaved: sample_covariance(Xs); scipy.linalg.eigh
of the covariance (all eigenpairs); HCL(method="als", shrinkage=False).fit_covariance (the whole fit:
noise estimate, spectral initialisation, sweeps); then 10 plain sweeps from the initialisation timed
alone (ms per sweep). CPU seconds (time.process_time) with BLAS pinned to one thread (threadpoolctl);
the ratio fit / (cov + eigh) is per seed, in the same run. "Converged" is the documented rule (relative
decrease <= tol and scaled masked gradient <= gtol) met within the default budget (max_iter sweeps).

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_als.py --seeds 20 --ns 5000,20000
Writes results/als.json and results/als.md.
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

from hcl_stats import HCL, Structure, simulate  # noqa: E402
from hcl_stats.covariance import sample_covariance  # noqa: E402
from hcl_stats.estimation import als as A  # noqa: E402
from hcl_stats.exceptions import ConvergenceWarning  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STRUCTURE = Structure.full(3, 3)
N_FEATURES = (100, 500, 800)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--ns", default="5000,20000")
    ap.add_argument("--tag", default="als")
    ap.add_argument("--from-log", help="only summarise the JSON rows printed by an earlier (possibly stopped) run")
    args = ap.parse_args(argv)
    rows = []
    if args.from_log:
        rows = [json.loads(line) for line in Path(args.from_log).read_text().splitlines() if line.startswith("{")]
        args.ns = ",".join(str(n) for n in sorted({r["n"] for r in rows}))
        args.seeds = max(sum(r["n"] == n for r in rows) for n in {r["n"] for r in rows})
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        threads = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
        for n in ([] if args.from_log else [int(v) for v in args.ns.split(",")]):
            for seed in range(args.seeds):
                data = simulate(STRUCTURE, N_FEATURES, n, noise_var=6.0, rng=seed)
                c0 = time.process_time()
                st = sample_covariance(data.Xs)
                t_cov = time.process_time() - c0
                c0 = time.process_time()
                sla.eigh(st.cov)
                t_eigh = time.process_time() - c0
                c0 = time.process_time()
                h = HCL(STRUCTURE, method="als", shrinkage=False).fit_covariance(st.cov, N_FEATURES, st.n_samples)
                t_fit = time.process_time() - c0
                res = h.results_
                prob = A._Problem(A._Target(dense=st.cov, shift=float(res.info["sigma2"])), STRUCTURE, N_FEATURES)
                W = res.info["init"] * prob.mask
                TW = prob.tw(W)
                c0 = time.process_time()
                for _ in range(10):
                    W, TW = prob.sweep(W, TW)
                t_sweep = (time.process_time() - c0) / 10
                row = {"n": n, "seed": seed, "cov": t_cov, "eigh": t_eigh, "fit": t_fit, "ratio": t_fit / (t_cov + t_eigh),
                       "sweep_ms": 1000 * t_sweep, "sweeps": int(res.n_iter), "converged": bool(res.converged),
                       "kkt": float(res.history["kkt"][-1]), "n_extrapolated": int(res.history["n_extrapolated"]),
                       "inner_per_sweep": prob.n_inner / 10}
                rows.append(row)
                print(json.dumps(row), flush=True)
    res = {"host": platform.node(), "time": time.strftime("%Y-%m-%d %H:%M %Z"), "blas_threads": threads,
           "from_log": args.from_log,
           "load_avg": os.getloadavg(), "args": vars(args),
           "settings": {"max_iter": 500, "tol": 1e-10, "gtol": 1e-6, "accelerate": "squarem",
                        "inner_max": A._SWEEP_INNER_MAX, "guards": A._N_GUARD}, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(res, indent=1))
    L = ["# ALS at the paper setting (issue 12, part 1)", "",
         f"Measured {res['time']} on {res['host']} (shared machine, load average {res['load_avg'][0]:.1f}); BLAS threads {threads}; "
         "CPU seconds (`time.process_time`). p = (100, 500, 800), K = 21 (r = 3 for all 7 subsets), noise 6; "
         f"defaults max_iter = 500 sweeps, tol = 1e-10, gtol = 1e-6, SQUAREM; LOBPCG at most {A._SWEEP_INNER_MAX} iterations "
         f"per block update with {A._N_GUARD} guard vectors.", "",
         "| n | seeds | ms per sweep (median, max) | converged within 500 sweeps | sweeps (median, max) | whole fit s (median) | cov + eigh s (median) | fit / (cov + eigh) (median, max) |",
         "|---|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in rows}):
        rs = [r for r in rows if r["n"] == n]
        g = lambda k: np.array([r[k] for r in rs], float)  # noqa: E731
        L.append(f"| {n} | {len(rs)} | {np.median(g('sweep_ms')):.1f}, {g('sweep_ms').max():.1f} | {int(g('converged').sum())} / {len(rs)} | "
                 f"{np.median(g('sweeps')):.0f}, {g('sweeps').max():.0f} | {np.median(g('fit')):.2f} | "
                 f"{np.median(g('cov') + g('eigh')):.2f} | {np.median(g('ratio')):.1f}, {g('ratio').max():.1f} |")
    L += ["", f"Regenerate: `OPENBLAS_NUM_THREADS=1 python benchmarks/bench_als.py --seeds {args.seeds} --ns {args.ns}`."]
    (RESULTS / f"{args.tag}.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
