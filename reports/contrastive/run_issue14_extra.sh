#!/bin/sh
# Run from the repository root after run_issue14.sh: sensitivity of the FactorCL-task result to the
# learning rate (the earlier code trained with 1e-3), 3 seeds, unique shares 0 and 1; and of the
# critic width (128 instead of 64) at both shares.
set -x
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
B="python benchmarks/bench_contrastive.py"
$B --task factorcl --seeds 3 --shares 0,1 --methods "Cross (lr 1e-3),FactorCL-SUP (lr 1e-3)" --suffix _lr1e-3
# critic width 128 at both shares (seeds 0-1 at share 1 ran in run_issue14.sh)
$B --task factorcl --seeds 2 --shares 0 --methods "FactorCL-SUP (critic 128)" --suffix _critic128_s0
$B --task factorcl --seed-start 2 --seeds 3 --shares 0,1 --methods "FactorCL-SUP (critic 128)" --suffix _critic128_s2
$B --report
