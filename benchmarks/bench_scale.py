"""Out-of-core fit: HCL.fit on n = 10^6 rows, p = 1400, from chunks generated on the fly.

The data never exist in memory as a whole: a generator yields row chunks (each a list of
per-modality arrays) drawn from the model x = W z + e of the paper design (Structure.full(3, 3),
p = (100, 500, 800), noise variance 6); HCL().fit(generator) accumulates the covariance in one
pass (Chan merging, BLAS dsyrk) and fits the default method. Records wall time (split into
accumulation and fit), peak traced memory (tracemalloc: numpy allocations) and peak RSS
(resource.getrusage), and the relative overall Gram error of the fit.

Usage: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_scale.py --n 1000000 --chunk 5000
Writes results/bench_scale.json and results/bench_scale.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from hcl_stats import HCL, Structure  # noqa: E402
from hcl_stats.covariance import covariance_from_chunks  # noqa: E402
from hcl_stats.metrics import overall_gram_error  # noqa: E402
from hcl_stats.simulate import make_loadings  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STRUCTURE = Structure.full(3, 3)
N_FEATURES = (100, 500, 800)
NOISE = 6.0


def chunks(W, n, chunk, seed):
    rows = STRUCTURE.row_slices(N_FEATURES)
    streams = np.random.SeedSequence(seed).spawn((n + chunk - 1) // chunk)
    for i, start in enumerate(range(0, n, chunk)):
        rng = np.random.default_rng(streams[i])
        m = min(chunk, n - start)
        X = rng.standard_normal((m, W.shape[1])) @ W.T
        X += np.sqrt(NOISE) * rng.standard_normal(X.shape)
        yield [X[:, r] for r in rows]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=5000)
    args = ap.parse_args(argv)
    threads = int(os.environ["OPENBLAS_NUM_THREADS"])
    W = make_loadings(STRUCTURE, N_FEATURES, random_state=2026)
    with threadpool_limits(limits=threads, user_api="blas"):
        tracemalloc.start()
        t0 = time.perf_counter()
        hcl = HCL(STRUCTURE).fit(chunks(W, args.n, args.chunk, 1))
        t_total = time.perf_counter() - t0
        _, peak_fit = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t_fitcov = hcl.results_.fit_time  # the fit from the accumulated covariance
        t_acc = t_total - t_fitcov        # generating + accumulating the chunks
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    p = sum(N_FEATURES)
    rec = {"n": args.n, "p": p, "chunk": args.chunk, "openblas_threads": threads,
           "fit_from_chunks_s": t_total, "accumulate_only_s": t_acc, "fit_from_covariance_s": t_fitcov,
           "tracemalloc_peak_bytes_fit": peak_fit,
           "ru_maxrss_bytes": rss, "pxp_float64_bytes": 8 * p * p,
           "rel_overall_gram_error": overall_gram_error(hcl.loadings_, W, relative=True),
           "python": platform.python_version(), "numpy": np.__version__, "load_avg_at_end": os.getloadavg()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_scale.json").write_text(json.dumps(rec, indent=1))
    gb = 1024**3
    lines = ["# bench_scale: HCL().fit on chunks generated on the fly", "",
             f"`OPENBLAS_NUM_THREADS={threads} python benchmarks/bench_scale.py --n {args.n} --chunk {args.chunk}`", "",
             "| quantity | value |", "|---|---|",
             f"| n x p | {args.n} x {p} (the data would take {args.n * p * 8 / gb:.1f} GiB) |",
             f"| chunk rows | {args.chunk} ({args.chunk * p * 8 / 2**20:.0f} MiB per chunk) |",
             f"| HCL().fit(generator), total | {t_total:.1f} s |",
             f"| of which generating the chunks + accumulating the covariance | {t_acc:.1f} s |",
             f"| of which the fit from the accumulated covariance | {t_fitcov:.1f} s |",
             f"| peak traced memory (tracemalloc, whole fit) | {peak_fit / 2**20:.0f} MiB |",
             f"| peak RSS of the process (getrusage) | {rss / 2**20:.0f} MiB |",
             f"| one p x p float64 matrix | {8 * p * p / 2**20:.1f} MiB |",
             f"| relative overall Gram error of the fit | {rec['rel_overall_gram_error']:.4f} |",
             f"| load average at the end (2 CPUs, shared) | {rec['load_avg_at_end'][0]:.1f} |", ""]
    (RESULTS / "bench_scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
