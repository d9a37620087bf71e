"""CPU per fit of the recovery study's cheaper methods, this code against an earlier git revision, in one run.

Design: the recovery study's tasks (simulations/configs/recovery.toml: M = 3, all 7 subsets at
rank 3, p = (100, 500, 800), noise variance 6), each covariance drawn as the study draws it
(``harness.studies``, seeds of the task), at the sample sizes and replicates given. For each task and
code version, a fresh subprocess with BLAS pinned to one thread fits, through the study's own
entry point (``harness.methods.fit_method``), ``naive_svd``, ``init``, ``paper`` and ``slide``, and
times the default estimator's start (``estimation.ml.em_start`` with shrinkage and
``noise="feature"``: the noise estimate, the shrunk covariance and the spectral start, everything
of the default fit before its EM iterations). Each is run ``--repeats`` times and the smallest
CPU time (``time.process_time``) is kept. The two versions alternate (A B B A ...) so the
machine's load affects both alike. Both versions run from ``git worktree`` checkouts of the given
revisions (``--head`` defaults to HEAD), so uncommitted edits in the working tree do not enter.

Reported per method: CPU seconds per fit of both versions (median over tasks), their ratio, and the
largest relative Frobenius difference between the two versions' loadings (also of W W^T, which
does not depend on the sign of an eigenvector) and noise variances.

Usage
-----
    python benchmarks/bench_method_cost.py --base e653126 --ns 5000,12000,30000 --replicates 3
Writes benchmarks/results/method_cost.md and .json.
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
METHODS = ("naive_svd", "init", "paper", "slide", "default_start")

WORKER = r"""
import json, sys, time, warnings
import numpy as np
from threadpoolctl import threadpool_limits
import hcl_stats
from hcl_stats.harness.config import load_config
from hcl_stats.harness import studies
from hcl_stats.harness.methods import FitContext, fit_method
from hcl_stats.estimation import ml
from hcl_stats.simulate import make_loadings
root, n, r, repeats, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
methods = sys.argv[6].split(",")
assert hcl_stats.__file__.startswith(root), (hcl_stats.__file__, root)
warnings.simplefilter("ignore")
cfg = load_config(root + "/simulations/configs/recovery.toml")
point = [p for p in cfg.grid_points() if p["n_samples"] == n][0]
structure = cfg.structure(point)
nf = tuple(point["n_features"])
seeds = studies.task_seeds(cfg.seed, r, cfg.replicates, point)
W = make_loadings(structure, nf, np.random.default_rng(seeds["model"]), kind="paper", scale=float(point["signal"]))
res, arrays = {}, {}
with threadpool_limits(1):
    stats, xs, scale = studies._draw_stats(structure, W, point, np.random.default_rng(seeds["data"]))
    ctx = FitContext(stats=stats, structure=structure, data=xs, data_scale=scale,
                     seed=int(seeds["data"].generate_state(1)[0]))
    for m in methods:
        cpu = []
        for _ in range(repeats):
            t = time.process_time()
            if m == "default_start":
                sigma2, S, W0, info = ml.em_start(stats, structure, True, "feature")
                loadings, noise = W0, np.asarray(sigma2, float) * np.ones(stats.cov.shape[0])
            else:
                f = fit_method(m, ctx)
                loadings, noise = f.loadings, f.noise_var
            cpu.append(time.process_time() - t)
        res[m] = min(cpu)
        arrays[m + "_W"] = np.asarray(loadings, float)
        if noise is not None:
            arrays[m + "_noise"] = np.asarray(noise, float)
np.savez(out, **arrays)
print(json.dumps(res))
"""


def _run(tree, n, r, repeats, out, methods):
    env = dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", WORKER, str(tree), str(n), str(r), str(repeats), out, ",".join(methods)],
                         env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if res.returncode:
        raise RuntimeError(f"worker failed in {tree} (n = {n}, replicate {r}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-300))


def _rev(rev):
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                          check=True).stdout.strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="git revision to compare with (checked out in a temporary worktree)")
    ap.add_argument("--head", default="HEAD", help="git revision measured against it (default HEAD)")
    ap.add_argument("--ns", default="5000,12000,30000")
    ap.add_argument("--replicates", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2, help="fits per method and task; the smallest CPU time is kept")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "method_cost"))
    a = ap.parse_args(argv)
    methods = a.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; expected a comma-separated subset of {list(METHODS)}.")
    base, head = _rev(a.base), _rev(a.head)
    tmp = Path(tempfile.mkdtemp(prefix="hcl_method_cost_"))
    trees = {"base": tmp / "base", "head": tmp / "head"}
    for name, rev in (("base", base), ("head", head)):
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(trees[name]), rev], check=True,
                       capture_output=True)
    rows = []
    try:
        order = 0
        for n in [int(x) for x in a.ns.split(",")]:
            for r in range(a.replicates):
                names = ["base", "head"] if order % 2 == 0 else ["head", "base"]
                order += 1
                cpu, arr = {}, {}
                for name in names:
                    f = str(tmp / f"{name}_{n}_{r}.npz")
                    cpu[name] = _run(trees[name], n, r, a.repeats, f, methods)
                    arr[name] = dict(np.load(f))
                for m in methods:
                    Wb, Wh = arr["base"][m + "_W"], arr["head"][m + "_W"]
                    row = {"n": n, "replicate": r, "method": m, "base_s": cpu["base"][m], "head_s": cpu["head"][m],
                           "ratio": cpu["base"][m] / cpu["head"][m], "rel_loadings": _rel(Wb, Wh),
                           "rel_gram": _rel(Wb @ Wb.T, Wh @ Wh.T)}
                    if m + "_noise" in arr["base"]:
                        row["rel_noise"] = _rel(arr["base"][m + "_noise"], arr["head"][m + "_noise"])
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        for t in trees.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(t)], capture_output=True)
    meta = {"base": base, "head": head, "ns": a.ns, "replicates": a.replicates, "repeats": a.repeats, "blas_threads": 1,
            "cpus": os.cpu_count(), "load_end": os.getloadavg(), "python": platform.python_version(),
            "numpy": np.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(a.out + ".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# CPU per fit of the recovery study's methods: {head} against {base}", "",
             f"`python benchmarks/bench_method_cost.py --base {base} --head {head} --ns {a.ns} --replicates "
             f"{a.replicates} --repeats {a.repeats}`; {meta['date']}, {meta['cpus']} CPUs shared (load average at "
             f"the end {', '.join(f'{x:.1f}' for x in meta['load_end'])}), one BLAS thread, CPU time (smallest of "
             f"{a.repeats} fits), the two versions alternating, each from a git worktree of its revision. Recovery "
             "design (p = (100, 500, 800), 21 factors, noise variance 6), covariances drawn as the study draws "
             "them; `default_start` is the default fit's start (noise estimate, shrunk covariance, spectral "
             "start), not its EM iterations.", "",
             "| method | CPU s per fit, base (median) | CPU s per fit, head (median) | speed-up (median, min-max) | "
             "largest relative change: loadings | W W^T | noise |",
             "|---|---|---|---|---|---|---|"]
    for m in methods:
        rs = [row for row in rows if row["method"] == m]
        b = np.array([row["base_s"] for row in rs])
        h = np.array([row["head_s"] for row in rs])
        rat = b / h
        nz = [row["rel_noise"] for row in rs if "rel_noise" in row]
        noise_cell = f"{max(nz):.1e}" if nz else "-"
        lines.append(f"| {m} | {np.median(b):.3f} | {np.median(h):.3f} | {np.median(rat):.2f} ({rat.min():.2f}-"
                     f"{rat.max():.2f}) | {max(row['rel_loadings'] for row in rs):.1e} | "
                     f"{max(row['rel_gram'] for row in rs):.1e} | {noise_cell} |")
    tb = sum(np.median([row["base_s"] for row in rows if row["method"] == m]) for m in methods)
    th = sum(np.median([row["head_s"] for row in rows if row["method"] == m]) for m in methods)
    lines += ["", f"Sum of the medians over these methods: {tb:.3f} s (base) and {th:.3f} s (head) per task.", "",
              "Per task (CPU s, base / head):", "",
              "| n | replicate | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for n in [int(x) for x in a.ns.split(",")]:
        for r in range(a.replicates):
            cells = []
            for m in methods:
                row = next(x for x in rows if x["n"] == n and x["replicate"] == r and x["method"] == m)
                cells.append(f"{row['base_s']:.3f} / {row['head_s']:.3f}")
            lines.append(f"| {n} | {r} | " + " | ".join(cells) + " |")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
