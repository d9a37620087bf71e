"""CPU per EM iteration of the default fit, this checkout against an earlier git revision, in one run.

Design: the recovery study's (simulations/configs/recovery.toml: M = 3, all 7 subsets at rank 3,
p = (100, 500, 800), noise variance 6), covariances drawn as the study draws them, at the sample
sizes and replicates given. Each fit is ``HCL(structure, solver=EM(max_iter=N, tol=0, change_tol=0))`` (with
``criterion="gradient"`` where the version has it)
(so every fit runs exactly N iterations) from the sample covariance, in a fresh subprocess per code
version with BLAS pinned to one thread; the two versions alternate (A B B A ...) so that the
machine's load affects both alike. Reported: CPU seconds per iteration of the EM loop (the fit's
CPU minus that of a fit with max_iter=1, divided by N - 1), their ratio, and the relative
Frobenius difference between the two versions' Gram matrices W W^T after N iterations.

Usage
-----
    python benchmarks/bench_em_iteration.py --base 7d0f680 --iters 300 --ns 5000,20000 --replicates 3
Writes benchmarks/results/em_iteration.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time, warnings
import numpy as np
from threadpoolctl import threadpool_limits
import hcl_stats
from hcl_stats import HCL, EM
from hcl_stats.harness.config import load_config
from hcl_stats.harness.studies import task_seeds, _draw_stats
from hcl_stats.simulate import make_loadings
root, n, r, iters, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
assert hcl_stats.__file__.startswith(root), (hcl_stats.__file__, root)
cfg = load_config(root + "/simulations/configs/recovery.toml")
point = {"n_samples": n, "n_features": [100, 500, 800], "noise_var": 6.0, "signal": 1.0, "draw": "wishart"}
structure = cfg.structure(point)
seeds = task_seeds(cfg.seed, r, cfg.replicates, point)
W = make_loadings(structure, (100, 500, 800), np.random.default_rng(seeds["model"]), kind="paper", scale=1.0)
stats, _, _ = _draw_stats(structure, W, point, np.random.default_rng(seeds["data"]))
warnings.simplefilter("ignore")
cpu = {}
with threadpool_limits(1):
    for k in (1, iters):
        t = time.process_time()
        # the gradient rule with zero tolerances runs exactly k iterations (versions before the
        # likelihood rule have no ``criterion`` and use the gradient rule)
        rule = {"criterion": "gradient"} if "criterion" in EM().get_params() else {}
        h = HCL(structure, solver=EM(max_iter=k, tol=0.0, change_tol=0.0, **rule)).fit_covariance(
            stats.cov, stats.n_features, stats.n_samples, mean=stats.mean)
        cpu[k] = time.process_time() - t
        assert h.n_iter_ == k
np.save(out, h.loadings_)
print(json.dumps({"cpu_1": cpu[1], "cpu_n": cpu[iters]}))
"""


def _run(tree, n, r, iters, out):
    env = dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", WORKER, str(tree), str(n), str(r), str(iters), out], env=env,
                         capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="git revision to compare with (checked out in a temporary worktree)")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--ns", default="5000,20000")
    ap.add_argument("--replicates", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "em_iteration"))
    a = ap.parse_args(argv)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "hcl_stats"], capture_output=True, text=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="hcl_em_bench_"))
    base_tree = tmp / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(base_tree), a.base], check=True,
                   capture_output=True)
    rows = []
    try:
        order = 0
        for n in [int(x) for x in a.ns.split(",")]:
            for r in range(a.replicates):
                trees = [("base", base_tree), ("this", ROOT)]
                if order % 2:
                    trees.reverse()
                order += 1
                res = {}
                for name, tree in trees:
                    f = str(tmp / f"{name}_{n}_{r}.npy")
                    m = _run(tree, n, r, a.iters, f)
                    res[name] = dict(m, per_iter=(m["cpu_n"] - m["cpu_1"]) / (a.iters - 1), W=np.load(f))
                Gb, Gt = res["base"]["W"] @ res["base"]["W"].T, res["this"]["W"] @ res["this"]["W"].T
                rows.append({"n": n, "replicate": r, "base_ms": 1e3 * res["base"]["per_iter"],
                             "this_ms": 1e3 * res["this"]["per_iter"],
                             "ratio": res["base"]["per_iter"] / res["this"]["per_iter"],
                             "rel_gram_diff": float(np.linalg.norm(Gb - Gt) / np.linalg.norm(Gb))})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], capture_output=True)
    meta = {"base": a.base, "this": head + ("+dirty" if dirty else ""), "iters": a.iters, "blas_threads": 1,
            "cpus": os.cpu_count(), "load_end": os.getloadavg(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(a.out + ".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# CPU per EM iteration: {meta['this']} against {a.base}", "",
             f"`python benchmarks/bench_em_iteration.py --base {a.base} --iters {a.iters} --ns {a.ns} "
             f"--replicates {a.replicates}`; {meta['date']}, {meta['cpus']} CPUs shared (load average at the end "
             f"{', '.join(f'{x:.1f}' for x in meta['load_end'])}), one BLAS thread, CPU time, the two versions "
             "alternating. Recovery design (p = (100, 500, 800), 21 factors, noise variance 6); every fit runs "
             f"exactly {a.iters} EM iterations.", "",
             "| n | replicate | ms per iteration, base | ms per iteration, this | speed-up | relative Gram difference |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['n']} | {row['replicate']} | {row['base_ms']:.2f} | {row['this_ms']:.2f} | "
                     f"{row['ratio']:.2f} | {row['rel_gram_diff']:.1e} |")
    rat = np.array([row["ratio"] for row in rows])
    lines += ["", f"Speed-up: median {np.median(rat):.2f} (min {rat.min():.2f}, max {rat.max():.2f}) over "
              f"{len(rows)} fits."]
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
