"""Benchmark of sparse loading estimation (issue 15): does the data-driven penalty help when the
truth is sparse, and cost little when it is not?

Design: 3 modalities p = (100, 80, 60) with the selection benchmark's structure ({012} x2, {01} x2,
{12} x1, specific x2 each), noise variance 1 on every feature, Gaussian latents.
True loadings (generated here, not by hcl_stats.simulate):

- ``elementwise-d``: on each active block (m, S) every entry is non-zero with probability d
  (iid N(0, 1) where non-zero; each column keeps at least one non-zero), d in {0.1, 0.2, 0.3};
- ``rowgroup``: on each active block a random 30% of the modality's features load (a dense
  N(0, 1) row), the others load on nothing of that subset;
- ``dense``: iid N(0, 1) on every active block (``make_loadings(kind="gaussian")``).

Per data set: the dense ML fit with HCL's defaults (noise "feature", shrinkage) and the sparse path
with the same options (``l1_ratio=1`` for the elementwise and dense designs, ``l1_ratio=0`` for the
row-group design), from which the default data-driven choice (the extended BIC, gamma = 1), the
plain BIC (gamma = 0), the oracle best alpha on the grid and the penalised fit at the chosen alpha
are read. On the first ``--cv-seeds`` seeds also the 5-fold cross-validated choice, and the
ablations (no rotation; no relaxed refit).

Metrics: the overall relative Gram error ||W_hat W_hat^T - W W^T||_F / ||W W^T||_F (the package's
``overall_gram_error``), its ratio to the dense fit's on the same data; support F1: elementwise
designs compare the non-zero loadings after matching each subset's columns to the truth's by the
best permutation (W is identified up to a rotation per subset; the sparse basis up to a signed
permutation); the row-group design compares the (feature, subset) pairs with a non-zero row;
monotonicity of the path (support size non-decreasing as alpha falls).

Everything runs on one BLAS thread (threadpoolctl); times are process CPU seconds.

    python benchmarks/bench_sparse.py --seeds 20 --cv-seeds 5          # the recorded run
    python benchmarks/bench_sparse.py --seeds 2 --cv-seeds 1 --out /tmp/sp   # a quick check

Writes <out>.json (one record per data set and design) and prints a summary; the tables of
benchmarks/results/sparse.md are made with ``--table <out>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from itertools import permutations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import hcl_stats
from hcl_stats import Structure, simulate
from hcl_stats.covariance import sample_covariance
from hcl_stats.estimation.ml import fit_ml
from hcl_stats.estimation.sparse_path import cv_sparse_path, row_support, sparse_path
from hcl_stats.metrics import overall_gram_error
from hcl_stats.simulate import make_loadings

HERE = os.path.dirname(os.path.abspath(__file__))
S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
P3 = (100, 80, 60)
BASE_SEED = 20261215
DESIGNS = [("elementwise-0.1", 300), ("elementwise-0.1", 1000), ("elementwise-0.2", 300), ("elementwise-0.2", 1000),
           ("elementwise-0.3", 300), ("elementwise-0.3", 1000), ("rowgroup", 300), ("rowgroup", 1000),
           ("dense", 300), ("dense", 1000)]


def sparse_loadings(structure, n_features, rng, kind, density):
    """True loadings of the designs (see the module docstring)."""
    rows = structure.row_slices(n_features)
    if kind == "dense":
        return make_loadings(structure, n_features, rng, kind="gaussian")
    W = np.zeros((sum(n_features), structure.n_factors))
    for s, cs in structure.column_slices.items():
        r = cs.stop - cs.start
        for m in s:
            pm = n_features[m]
            if kind == "elementwise":
                M = rng.random((pm, r)) < density
                for k in range(r):
                    if not M[:, k].any():
                        M[rng.integers(pm), k] = True
            else:
                M = np.zeros((pm, r), bool)
                M[rng.choice(pm, max(int(round(density * pm)), r), replace=False)] = True
            W[rows[m], cs] = rng.standard_normal((pm, r)) * M
    return W


def entry_f1(W, Wt, structure):
    """F1 of the non-zero loadings after the best column permutation within each subset."""
    W = np.array(W)
    for _, cs in structure.column_slices.items():
        cols = np.arange(cs.start, cs.stop)
        best = max(permutations(range(cols.size)),
                   key=lambda pm: np.sum((W[:, cols[list(pm)]] != 0) & (Wt[:, cs] != 0)))
        W[:, cs] = W[:, cols[list(best)]]
    a, b = W != 0, Wt != 0
    return float(2 * np.sum(a & b) / max(a.sum() + b.sum(), 1))


def row_f1(W, Wt, structure, n_features):
    a, b = row_support(W, structure, n_features), row_support(Wt, structure, n_features)
    return float(2 * np.sum(a & b) / max(a.sum() + b.sum(), 1))


def run_one(design, n, seed_seq, with_cv):
    kind = design.split("-")[0]
    density = float(design.split("-")[1]) if "-" in design else 0.3
    r_load, r_data, r_cv = seed_seq.spawn(3)
    Wt = sparse_loadings(S3, P3, np.random.default_rng(r_load), kind, density)
    d = simulate(S3, P3, n, 1.0, random_state=r_data, loadings=Wt)
    st = sample_covariance(d.Xs)
    l1 = 0.0 if kind == "rowgroup" else 1.0
    f1 = (lambda W: row_f1(W, Wt, S3, P3)) if kind == "rowgroup" else (lambda W: entry_f1(W, Wt, S3))
    err = lambda W: overall_gram_error(W, Wt, relative=True)  # noqa: E731
    rec = {"design": design, "n": n, "l1_ratio": l1, "true_nnz": int(np.count_nonzero(Wt))}
    t = time.process_time()
    dense = fit_ml(st, S3, noise="feature", shrinkage=True)
    rec["cpu_dense"] = time.process_time() - t
    rec["err_dense"] = err(dense.loadings)
    t = time.process_time()
    P = sparse_path(st, S3, l1_ratio=l1)
    rec["cpu_path"] = time.process_time() - t
    errs = np.array([err(W) for W in P.loadings])
    f1s = np.array([f1(W) for W in P.loadings])
    b, bp = int(np.argmin(P.bic)), int(np.argmin(P.bic_plain))
    rec.update(alphas=P.alphas.tolist(), errs=errs.tolist(), f1s=f1s.tolist(), support=P.support_size.tolist(),
               converged=[bool(c) for c in P.converged],
               monotone=bool(np.all(np.diff(P.support_size) >= 0)),
               alpha_bic=float(P.alphas[b]), err_bic=float(errs[b]), f1_bic=float(f1s[b]),
               err_bic_penalised=err(P.loadings_penalised[b]),
               alpha_bic_plain=float(P.alphas[bp]), err_bic_plain=float(errs[bp]), f1_bic_plain=float(f1s[bp]),
               alpha_oracle=float(P.alphas[int(np.argmin(errs))]), err_oracle=float(errs.min()),
               f1_dense=f1(dense.loadings))
    if with_cv:
        t = time.process_time()
        C = cv_sparse_path(d.Xs, S3, n_folds=5, random_state=np.random.default_rng(r_cv), path=P, l1_ratio=l1)
        rec["cpu_cv"] = time.process_time() - t
        rec.update(alpha_cv=float(C.alphas[C.best]), err_cv=float(errs[C.best]), f1_cv=float(f1s[C.best]))
        for name, kw in (("norotation", dict(rotation=None)), ("norefit", dict(refit=False))):
            Q = sparse_path(st, S3, l1_ratio=l1, **kw)
            e = np.array([err(W) for W in Q.loadings])
            bq = int(np.argmin(Q.bic))
            rec.update({f"err_{name}_bic": float(e[bq]), f"f1_{name}_bic": f1(Q.loadings[bq]),
                        f"err_{name}_oracle": float(e.min())})
    return rec


def _env():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "../hcl_stats/estimation"], cwd=HERE,
                               capture_output=True, text=True).stdout.strip()
    except Exception:  # pragma: no cover
        rev, dirty = "?", "?"
    import scipy

    pools = [f"{p['internal_api']} num_threads={p['num_threads']}" for p in threadpool_info()]
    return {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
            "hcl_stats": hcl_stats.__version__, "git": rev, "estimation_dirty": dirty, "platform": platform.platform(),
            "cpus": os.cpu_count(), "threadpools_during_run": pools,
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def table(records):
    """Markdown rows: one per design (medians / means over seeds)."""
    out = ["| design | n | seeds | dense err (median) | chosen err (median) | ratio chosen / dense: mean, median, max | "
           "F1 chosen (mean, min) | alpha chosen (median) | plain BIC ratio (mean) | oracle ratio (mean) | "
           "penalised-only ratio (mean) | monotone paths | CPU path s (median) |",
           "|" + "---|" * 13]
    keys = []
    for r in records:
        if (r["design"], r["n"]) not in keys:
            keys.append((r["design"], r["n"]))
    for des, n in keys:
        rs = [r for r in records if r["design"] == des and r["n"] == n]
        ed = np.array([r["err_dense"] for r in rs])
        eb = np.array([r["err_bic"] for r in rs])
        ratio = eb / ed
        f1 = np.array([r["f1_bic"] for r in rs])
        out.append(f"| {des} | {n} | {len(rs)} | {np.median(ed):.3f} | {np.median(eb):.3f} | {ratio.mean():.3f}, "
                   f"{np.median(ratio):.3f}, {ratio.max():.3f} | {f1.mean():.3f}, {f1.min():.3f} | "
                   f"{np.median([r['alpha_bic'] for r in rs]):.3g} | "
                   f"{np.mean([r['err_bic_plain'] for r in rs] / ed):.3f} | {np.mean([r['err_oracle'] for r in rs] / ed):.3f} | "
                   f"{np.mean([r['err_bic_penalised'] for r in rs] / ed):.3f} | {sum(r['monotone'] for r in rs)} / {len(rs)} | "
                   f"{np.median([r['cpu_path'] for r in rs]):.1f} |")
    cv = [r for r in records if "err_cv" in r]
    if cv:
        out += ["", "| design | n | seeds | ratio EBIC / dense (mean) | ratio CV / dense (mean) | F1 EBIC, CV (mean) | "
                "no rotation: ratio (EBIC choice), F1 | no refit: ratio (EBIC choice), F1 | CPU CV s (median) |",
                "|" + "---|" * 9]
        for des, n in keys:
            rs = [r for r in cv if r["design"] == des and r["n"] == n]
            if not rs:
                continue
            ed = np.array([r["err_dense"] for r in rs])
            m = lambda k: np.mean(np.array([r[k] for r in rs]) / ed)  # noqa: E731
            f = lambda k: np.mean([r[k] for r in rs])  # noqa: E731
            out.append(f"| {des} | {n} | {len(rs)} | {m('err_bic'):.3f} | {m('err_cv'):.3f} | {f('f1_bic'):.3f}, {f('f1_cv'):.3f} | "
                       f"{m('err_norotation_bic'):.3f}, {f('f1_norotation_bic'):.3f} | {m('err_norefit_bic'):.3f}, "
                       f"{f('f1_norefit_bic'):.3f} | {np.median([r['cpu_cv'] for r in rs]):.1f} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--cv-seeds", type=int, default=5, help="seeds (the first ones) that also run CV and the ablations")
    ap.add_argument("--designs", default=None, help="comma-separated design indices into DESIGNS (default: all)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "sparse"))
    ap.add_argument("--table", default=None, help="only print the markdown tables of these comma-separated json files")
    a = ap.parse_args(argv)
    if a.table:
        recs = []
        for f in a.table.split(","):
            recs += json.load(open(f))["records"]
        order = {d: i for i, d in enumerate(DESIGNS)}
        recs.sort(key=lambda r: order[(r["design"], r["n"])])
        print(table(recs))
        return
    idx = range(len(DESIGNS)) if a.designs is None else [int(i) for i in a.designs.split(",")]
    recs = []
    t0 = time.process_time()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = _env()
        for i in idx:
            des, n = DESIGNS[i]
            for s, ss in enumerate(np.random.SeedSequence(BASE_SEED + i).spawn(a.seeds)):
                r = run_one(des, n, ss, s < a.cv_seeds)
                r["seed_index"] = s
                recs.append(r)
                print(f"{des} n={n} seed {s}: dense {r['err_dense']:.3f} chosen {r['err_bic']:.3f} "
                      f"(alpha {r['alpha_bic']:.3g}, F1 {r['f1_bic']:.2f})" + (f" cv {r['err_cv']:.3f}" if "err_cv" in r else ""),
                      flush=True)
                json.dump({"env": env, "cpu_total": time.process_time() - t0, "records": recs}, open(a.out + ".json", "w"))
    print(table(recs))


if __name__ == "__main__":
    main()
