#!/bin/sh
# Run from the repository root. The runs of benchmarks/results/contrastive.md (issue 14), in priority order, one process at a time,
# one thread each. Each invocation rewrites its results file after every fit.
set -x
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
B="python benchmarks/bench_contrastive.py"
$B --task factorcl --seeds 5 --shares 0,1 --methods "raw input,SupCon,Cross,Cross+Self,FactorCL-SUP"
$B --task trifeature --seeds 5
$B --task factorcl --seeds 5 --shares 0,1 --methods "FactorCL-SSL" --suffix _ssl
$B --task factorcl --seeds 5 --shares 1 --methods "OurCL-SUP (no upper bounds),OurCL-SUP (no factorisation)" --suffix _ablation
$B --task factorcl_noisy --seeds 3 --shares 0,1 --methods "raw input,Cross,FactorCL-SUP"
$B --task factorcl --seeds 2 --shares 1 --methods "FactorCL-SUP (critic 128)" --suffix _critic128
$B --report
