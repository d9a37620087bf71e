"""Speed of HCL.fit from Xs against the reference cost "sample covariance + one full symmetric
eigendecomposition of it" (issue 3 target: default fit <= 3x that), measured in the same run.

Paper design: Structure.full(3, 3), p = (100, 500, 800), noise variance 6. For each n, each
repeat times, interleaved: sample_covariance(Xs); scipy.linalg.eigh(cov) (all eigenpairs, the
default driver); HCL().fit(Xs) (the default); and HCL(method=...).fit(Xs) for the other methods.
Medians over repeats. BLAS threads are fixed with threadpoolctl and recorded.

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_speed.py --repeats 3
Writes results/bench_speed.json and results/bench_speed.md.
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
from threadpoolctl import threadpool_limits  # noqa: E402

from hcl_stats import HCL, Structure, simulate  # noqa: E402
from hcl_stats.covariance import sample_covariance  # noqa: E402
from hcl_stats.exceptions import ConvergenceWarning  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STRUCTURE = Structure.full(3, 3)
N_FEATURES = (100, 500, 800)
OTHERS = {"ml (shrinkage=False)": dict(method="ml", shrinkage=False), "paper": dict(method="paper")}


def _time(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ns", default="5000,10000,20000")
    args = ap.parse_args(argv)
    threads = int(os.environ["OPENBLAS_NUM_THREADS"])
    rows = []
    with threadpool_limits(limits=threads, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for n in [int(v) for v in args.ns.split(",")]:
            data = simulate(STRUCTURE, N_FEATURES, n, noise_var=6.0, random_state=n)
            t = {"cov": [], "eigh": [], "default": [], **{k: [] for k in OTHERS}}
            for _ in range(args.repeats):
                dt, st = _time(lambda: sample_covariance(data.Xs))
                t["cov"].append(dt)
                t["eigh"].append(_time(lambda: sla.eigh(st.cov))[0])
                t["default"].append(_time(lambda: HCL(STRUCTURE).fit(data.Xs))[0])
                for k, kw in OTHERS.items():
                    t[k].append(_time(lambda: HCL(STRUCTURE, **kw).fit(data.Xs))[0])
            med = {k: float(np.median(v)) for k, v in t.items()}
            ref = med["cov"] + med["eigh"]
            rec = {"n": n, "times": t, "median": med, "reference": ref,
                   "ratio": {k: med[k] / ref for k in ["default", *OTHERS]}}
            rows.append(rec)
            print(json.dumps({"n": n, "median": med, "ratio": rec["ratio"]}), flush=True)
    meta = {"openblas_threads": threads, "repeats": args.repeats, "python": platform.python_version(),
            "numpy": np.__version__, "load_avg_at_end": os.getloadavg(), "cpus": os.cpu_count()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    names = ["default", *OTHERS]
    lines = ["# bench_speed: HCL.fit(Xs) time / (sample covariance + full eigh)", "",
             f"`OPENBLAS_NUM_THREADS={threads} python benchmarks/bench_speed.py --repeats {args.repeats}`; "
             f"medians over {args.repeats} interleaved repeats; {os.cpu_count()} CPUs shared with other jobs "
             f"(load average at the end {meta['load_avg_at_end'][0]:.1f}), so absolute times are noisy and the "
             "ratios are the measurement. Design: Structure.full(3, 3), p = (100, 500, 800), noise variance 6.", "",
             "| n | cov (s) | eigh (s) | " + " | ".join(f"{k} (s)" for k in names) + " | "
             + " | ".join(f"{k} ratio" for k in names) + " |",
             "|" + "---|" * (3 + 2 * len(names))]
    for r in rows:
        m = r["median"]
        lines.append(f"| {r['n']} | {m['cov']:.2f} | {m['eigh']:.2f} | " + " | ".join(f"{m[k]:.2f}" for k in names)
                     + " | " + " | ".join(f"{r['ratio'][k]:.2f}" for k in names) + " |")
    lines += ["", "Target: default ratio <= 3."]
    (RESULTS / "bench_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
