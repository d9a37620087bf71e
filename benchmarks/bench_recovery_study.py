"""Benchmark: the cost of the full recovery study (simulations/configs/recovery.toml:
13 sample sizes x 100 replicates, p = (100, 500, 800), r = 3, five methods) on 2 cores.

Runs the first ``--replicates`` replicates of every grid point (the same seeds and rows as the
full study, which later resumes from them) or only reads rows already stored, then
extrapolates from the CPU seconds of each task (``task_cpu_time``, measured in the worker with
BLAS pinned to one thread: the wall time of that task on an idle core) to the full study on
``--cores`` cores, in total and per method. Wall times are also reported (on a shared machine
they are inflated by the load). Writes a Markdown table to benchmarks/results/recovery_study.md.

How the extrapolation is measured: every task runs with BLAS pinned to one thread and records its
CPU seconds (``time.process_time`` in the worker); on a shared machine CPU time, not wall time,
is the cost of a task on an idle core. The full study is 1300 independent tasks, so its wall time
on C idle cores is about 1300 x (mean CPU seconds per task) / C. The sample is the first
``--replicates`` replicates of every grid point (all 13 sample sizes), run serially by default
(one process: the machine is shared) into a scratch directory (default
``/tmp/hcl_recovery_bench``), so the committed report's rows are not touched.

Usage
-----
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_recovery_study.py --replicates 2 -j 1
    python benchmarks/bench_recovery_study.py --no-run --out reports   # only read stored rows
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "simulations" / "configs" / "recovery.toml"))
    ap.add_argument("--out", default="/tmp/hcl_recovery_bench")
    ap.add_argument("--replicates", type=int, default=2)
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--cores", type=int, default=2, help="cores of the target machine for the extrapolation")
    ap.add_argument("--no-run", action="store_true", help="only read stored rows")
    ap.add_argument("--result", default=str(ROOT / "benchmarks" / "results" / "recovery_study.md"))
    args = ap.parse_args(argv)

    from hcl_stats.harness import load_config, load_rows, run_study

    cfg = load_config(args.config)
    run_info = None
    if not args.no_run:
        part = dataclasses.replace(cfg, replicates=min(args.replicates, cfg.replicates))
        t0 = time.perf_counter()
        s = run_study(part, args.out, n_jobs=args.jobs, progress=True, fresh=True)
        run_info = (s.n_run, time.perf_counter() - t0)
    rows = load_rows(args.out, cfg)
    tasks = {}
    for r in rows:
        tasks.setdefault(r["task"], r)
    cpu = [r["task_cpu_time"] for r in tasks.values() if r.get("task_cpu_time") is not None]
    wall = [r["task_time"] for r in tasks.values()]
    per_method = {}
    for r in rows:
        c = r.get("info", {}).get("cpu_time")
        if c is not None:
            per_method.setdefault(r["method"], []).append(c)
    n_full = len(cfg.tasks())
    load = os.getloadavg()
    lines = [
        "# Full recovery study: measured cost and extrapolation",
        "",
        f"Config `{Path(args.config).name}`: {len(cfg.grid_points())} sample sizes x {cfg.replicates} replicates = {n_full} tasks; "
        f"methods {list(cfg.methods)}; p = {cfg.design.get('n_features')}, r = {cfg.structure_spec.get('rank')}, draw = {cfg.design.get('draw')}.",
        "",
        f"Measured on {platform.node()} ({os.cpu_count()} CPUs, shared; load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}), "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}: {len(tasks)} finished tasks stored ({len(cpu)} with CPU times); "
        f"BLAS threads per task: 1 (threadpoolctl in the worker); git commit {rows[0].get('git_commit') if rows else None}.",
        "",
        "How it is measured: each task records its CPU seconds (`time.process_time`, BLAS pinned to one thread), which is "
        "its wall time on an idle core; the full study is 1300 independent tasks, so on C idle cores it takes about "
        "1300 x (mean CPU seconds per task) / C. "
        + ("The sample: the first replicates of every grid point (all 13 sample sizes), "
           f"run with {args.jobs} worker process(es) on this shared machine." if not args.no_run else
           f"The sample: the rows stored in {args.out} (read with --no-run; not run by this command)."),
        "",
    ]
    if run_info:
        lines += [f"This run: {run_info[0]} tasks in {run_info[1]:.0f} s wall with {args.jobs} worker processes.", ""]
    if cpu:
        c = float(np.mean(cpu))
        est = n_full * c / args.cores
        lines += [
            "| quantity | value |", "|---|---|",
            f"| CPU seconds per task (mean, min-max) | {c:.1f} ({min(cpu):.1f}-{max(cpu):.1f}) |",
            f"| wall seconds per task on this busy machine (mean) | {np.mean(wall):.1f} |",
            f"| **estimated full study on {args.cores} idle cores** ({n_full} tasks x CPU per task / {args.cores}) | **{est / 60:.0f} min** |",
            "",
            "Per method (CPU seconds per fit, mean):", "",
            "| method | CPU s per fit | share of a task | full study on {0} cores alone (min) |".format(args.cores), "|---|---|---|---|",
        ]
        for m, v in per_method.items():
            lines.append(f"| {m} | {np.mean(v):.2f} | {np.mean(v) / c:.0%} | {n_full * np.mean(v) / args.cores / 60:.0f} |")
        rest = c - sum(np.mean(v) for v in per_method.values())
        lines.append(f"| data draw (Wishart), metrics, overhead | {rest:.2f} | {rest / c:.0%} | {n_full * rest / args.cores / 60:.0f} |")
        lines.append("")
        for slow in sorted(per_method, key=lambda m: -np.mean(per_method[m]))[:1]:
            wo = c - np.mean(per_method[slow])
            lines += [f"Without `{slow}` (the most expensive method) the full study would take about "
                      f"{n_full * wo / args.cores / 60:.0f} min on {args.cores} idle cores.", ""]
        its = [r.get("info", {}).get("n_iter") for r in rows if r["method"] == "slide" and r.get("status") == "ok"]
        its = [i for i in its if i is not None]
        if its:
            lines += [f"SLIDE iterations per fit: {min(its)}-{max(its)} (median {int(np.median(its))}; limit 1000). SLIDE runs "
                      "with its own per-view scaling (unit Frobenius norm) and eps = 1e-6, iterated on the covariance "
                      "(benchmarks/results/slide.md).", ""]
        lines += ["`init` is not listed: it is taken from the `paper` fit (the same noise estimate and "
                  "initialisation), so it costs nothing extra.", ""]
    Path(args.result).parent.mkdir(parents=True, exist_ok=True)
    Path(args.result).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
