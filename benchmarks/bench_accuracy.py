"""Accuracy of the estimators in the paper's recovery setting (issue 3 targets).

Design: Structure.full(3, 3), p = (100, 500, 800), authors' loading generator, Gaussian latents.
Parts (run each once, then ``--report`` merges them into results/bench_accuracy.md):

- ``main``:      noise variance 6, n in {5000, 10000, 20000}, ``--seeds`` replicates (>= 20);
- ``lownoise``:  noise variance 0.1, n = 5000;
- ``crossing``:  noise variance 6, n in {30000, 50000} (fewer seeds): where does each method's
                 relative overall Gram error cross 1 (the zero estimator)?

Methods (all from the same CovarianceStats of each replicate):
  paper           HCL(method="paper")                     the authors' estimator
  ml              HCL(method="ml", shrinkage=False)       plain Gaussian ML (EM on S_n)
  default         HCL()  = method="ml", shrinkage=True    ML on the shrunk covariance
  als_shrink      HCL(method="als", shrinkage=True)       exact block updates on the shrunk target
  shrunk_target   F F^T itself (unstructured spiked-model shrinkage; a reference, not a method)

Replicate r of a configuration draws from SeedSequence(20260).spawn(seeds)[r] (the same loadings
across n for a given r, since simulate spawns the loading stream first).

Usage:
  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_accuracy.py main --seeds 20 --methods paper,ml,default --ns 5000,10000
  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_accuracy.py main --seeds 20 --methods paper,ml,default --ns 20000
  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_accuracy.py lownoise --seeds 20
  OPENBLAS_NUM_THREADS=1 python benchmarks/bench_accuracy.py crossing --seeds 5
  python benchmarks/bench_accuracy.py --report
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from hcl_stats import HCL, Structure, simulate  # noqa: E402
from hcl_stats.covariance import sample_covariance  # noqa: E402
from hcl_stats.estimation import METHODS  # noqa: E402
from hcl_stats.estimation.ml import _block_ranks  # noqa: E402
from hcl_stats.estimation.shrinkage import noise_and_shrunk_factor  # noqa: E402
from hcl_stats.metrics import overall_gram_error  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STRUCTURE = Structure.full(3, 3)
N_FEATURES = (100, 500, 800)
PARTS = {
    "main": dict(noise_var=6.0, ns=[5000, 10000, 20000]),
    "lownoise": dict(noise_var=0.1, ns=[5000]),
    "crossing": dict(noise_var=6.0, ns=[30000, 50000]),
}
METHOD_SPECS = {
    "paper": ("paper", {}),
    "ml": ("ml", {"shrinkage": False}),
    "default": ("ml", {"shrinkage": True}),
    "als_shrink": ("als", {"shrinkage": True}),
}


def _default_is_ml_shrink():
    from hcl_stats.estimation.solvers import solver_for_method

    h = HCL(STRUCTURE)   # shrinkage=None: the method's default, True for the EM part of "ml"
    return h.method == "ml" and h.shrinkage is None and solver_for_method(h.method).shrinkage is True


def run_part(part, seeds, methods, ns=None):
    cfg = PARTS[part]
    children = np.random.SeedSequence(20260).spawn(seeds)
    rows = []
    for n in (cfg["ns"] if ns is None else ns):
        for r in range(seeds):
            data = simulate(STRUCTURE, N_FEATURES, n, noise_var=cfg["noise_var"], random_state=children[r])
            stats = sample_covariance(data.Xs)
            rec = {"n": n, "noise_var": cfg["noise_var"], "replicate": r}
            for name in methods:
                meth, opts = METHOD_SPECS[name]
                t0 = time.perf_counter()
                res = METHODS[meth](stats, STRUCTURE, **opts)
                rec[f"{name}_time"] = time.perf_counter() - t0
                rec[name] = overall_gram_error(res.loadings, data.loadings, relative=True)
                rec[f"{name}_iter"] = int(res.n_iter)
            rows_ = STRUCTURE.row_slices(N_FEATURES)
            _, F, _ = noise_and_shrunk_factor(stats.cov, n, STRUCTURE.n_factors, rows=rows_,
                                              block_ranks=_block_ranks(STRUCTURE))
            Fk = np.zeros_like(data.loadings)  # F has q <= K columns; pad to compare
            Fk[:, :F.shape[1]] = F
            rec["shrunk_target"] = overall_gram_error(Fk, data.loadings, relative=True)
            rows.append(rec)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)
    return rows


def report():
    parts = {}
    for part in PARTS:
        for f in sorted(RESULTS.glob(f"bench_accuracy_{part}*.json")):
            blob = json.loads(f.read_text())
            if part in parts:
                parts[part]["rows"] += blob["rows"]
                parts[part]["meta"]["wall_s"] += blob["meta"]["wall_s"]
            else:
                parts[part] = blob
    lines = ["# bench_accuracy: relative overall Gram error ||W_hat W_hat^T - W W^T||_F / ||W W^T||_F", "",
             "Produced by `benchmarks/bench_accuracy.py` (see its docstring for the commands). Medians over",
             "replicates; 1.0 is the error of the zero estimator. `default` is `HCL()` = ML on the",
             "per-modality-whitened, spiked-model-shrunk covariance.", ""]
    for part, blob in parts.items():
        meta = blob["meta"]
        rows = blob["rows"]
        names = [m for m in ["paper", "ml", "default", "als_shrink", "shrunk_target"] if m in rows[0]]
        lines += [f"## {part}: noise variance {PARTS[part]['noise_var']}, {meta['seeds']} seeds", "",
                  f"OPENBLAS_NUM_THREADS={meta['openblas_threads']}, {meta['python']}, numpy {meta['numpy']}, "
                  f"wall time {meta['wall_s']:.0f} s.", ""]
        head = "| n | " + " | ".join(names) + " | default / paper | default / ml |"
        lines += [head, "|" + "---|" * (len(names) + 3)]
        for n in sorted({r["n"] for r in rows}):
            sub = [r for r in rows if r["n"] == n]
            med = {m: float(np.median([r[m] for r in sub])) for m in names}
            q = {m: (float(np.quantile([r[m] for r in sub], 0.25)), float(np.quantile([r[m] for r in sub], 0.75)))
                 for m in names}
            cells = [f"{med[m]:.3f} [{q[m][0]:.3f}, {q[m][1]:.3f}]" for m in names]
            ratio_p = np.median([r["default"] / r["paper"] for r in sub]) if "paper" in med else np.nan
            ratio_m = np.median([r["default"] / r["ml"] for r in sub]) if "ml" in med else np.nan
            lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio_p:.3f} | {ratio_m:.3f} |")
        lines.append("")
        tnames = [m for m in ["paper", "ml", "default", "als_shrink"] if f"{m}_time" in rows[0]]
        lines += ["Median fit time from the covariance (s) and iterations:", "",
                  "| n | " + " | ".join(tnames) + " |", "|" + "---|" * (len(tnames) + 1)]
        for n in sorted({r["n"] for r in rows}):
            sub = [r for r in rows if r["n"] == n]
            cells = [f"{np.median([r[m + '_time'] for r in sub]):.2f} s / {np.median([r[m + '_iter'] for r in sub]):.0f} it"
                     for m in tnames]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines.append("")
    # crossing of 1: log-log interpolation of the medians over every n measured at noise variance 6
    allrows = [r for p in ("main", "crossing") if p in parts for r in parts[p]["rows"]]
    if allrows:
        lines += ["## Where the median relative error crosses 1 (noise variance 6)", "",
                  "Linear interpolation of log(median error) in log(n) between the measured n.", ""]
        ns = sorted({r["n"] for r in allrows})
        for m in ["paper", "ml", "default", "als_shrink", "shrunk_target"]:
            if m not in allrows[0]:
                continue
            med = [float(np.median([r[m] for r in allrows if r["n"] == n])) for n in ns]
            cross = None
            if med[0] < 1:
                cross = f"below 1 already at n = {ns[0]}"
            else:
                for (n0, e0), (n1, e1) in zip(zip(ns, med), zip(ns[1:], med[1:])):
                    if e0 >= 1 > e1:
                        t = np.log(e0) / (np.log(e0) - np.log(e1))
                        cross = f"n ~ {np.exp(np.log(n0) + t * (np.log(n1) - np.log(n0))):.0f}"
                        break
                if cross is None:
                    cross = f"not below 1 up to n = {ns[-1]}"
            lines.append(f"- {m}: {cross} (medians: " + ", ".join(f"{n}: {e:.3f}" for n, e in zip(ns, med)) + ")")
        lines.append("")
    (RESULTS / "bench_accuracy.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", nargs="?", choices=sorted(PARTS))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--methods", default="paper,ml,default,als_shrink")
    ap.add_argument("--ns", default=None, help="comma-separated subset of the part's n (results file gets a suffix)")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    if args.report:
        report()
        return
    if args.part is None:
        ap.error("give a part (main, lownoise, crossing) or --report")
    assert _default_is_ml_shrink(), "HCL's default changed: update METHOD_SPECS['default']"
    threads = int(os.environ["OPENBLAS_NUM_THREADS"])
    t0 = time.perf_counter()
    with threadpool_limits(limits=threads, user_api="blas"):
        ns = None if args.ns is None else [int(v) for v in args.ns.split(",")]
        rows = run_part(args.part, args.seeds, args.methods.split(","), ns)
    import numpy

    meta = {"seeds": args.seeds, "openblas_threads": threads, "python": platform.python_version(),
            "numpy": numpy.__version__, "blas": [i.get("internal_api") for i in threadpool_info()],
            "wall_s": time.perf_counter() - t0, "argv": sys.argv}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.ns is None else "_n" + "_".join(str(v) for v in ns)
    (RESULTS / f"bench_accuracy_{args.part}{suffix}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
