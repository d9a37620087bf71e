"""Benchmark of incomplete data (issue 11, part 3): the EM over the observed entries
(hcl_stats.estimation.missing.fit_missing) and the available-case structure selection
(hcl_stats.incomplete.select_structure_incomplete).

Data: the selection design of benchmarks/results/selection.md (its main design "M=3 main": structure
{012}:2 {01}:2 {12}:1 + specific 2 each, p = (100, 80, 60), n = 1000, noise 1, iid N(0, 1) loadings);
replicate r draws the data from ``SeedSequence(base).spawn(seeds)[r]`` and the missingness from an
independent child of it. Designs:

- ``one_modality_30pct``: each sample misses one whole modality (chosen uniformly) with probability 0.3;
- ``half_without_one``: modality r mod 3 is absent for a random half of the cohort;
- ``scattered_10pct``: every entry missing independently with probability 0.1 (many patterns; extra).

Per replicate, with the true structure: the Gram error ||W_hat W_hat^T - W W^T||_F / ||W W^T||_F of
(a) the EM fit on the incomplete data, (b) the complete-data fit on the same samples before removing
anything (``HCL(structure)`` defaults, and plain ML = the EM on the complete data), (c) the complete
cases only (``HCL(structure)`` defaults on the rows without any NaN). Targets (issue 11): exact
structure in >= 90% of >= 20 seeds; Gram error (a) <= 1.3 x (b) and below (c).

Everything runs on one BLAS thread (threadpoolctl); times are process CPU times.

    python benchmarks/bench_missing.py                        # full run (30 seeds per design)
    python benchmarks/bench_missing.py --seeds 2 --out /tmp/missing_quick   # a quick check
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

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's hcl_stats

import hcl_stats  # noqa: E402
from hcl_stats import HCL, Structure, simulate  # noqa: E402
from hcl_stats.estimation.missing import fit_missing  # noqa: E402
from hcl_stats.incomplete import missing_report, select_structure_incomplete  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
P3 = (100, 80, 60)
N = 1000
DESIGNS = {
    "one_modality_30pct": "30% of the samples miss one whole modality (chosen at random)",
    "half_without_one": "one modality (replicate r: modality r mod 3) absent for a random half of the cohort",
    "scattered_10pct": "every entry missing independently with probability 0.1",
}


def gram_err(W, Wt):
    G = Wt @ Wt.T
    return float(np.linalg.norm(W @ W.T - G) / np.linalg.norm(G))


def make_missing(Xs, design, rng, r):
    Xs = [x.copy() for x in Xs]
    n = Xs[0].shape[0]
    if design == "one_modality_30pct":
        miss = rng.random(n) < 0.3
        which = rng.integers(0, len(Xs), n)
        for m in range(len(Xs)):
            Xs[m][miss & (which == m)] = np.nan
    elif design == "half_without_one":
        Xs[r % len(Xs)][rng.permutation(n)[: n // 2]] = np.nan
    elif design == "scattered_10pct":
        for X in Xs:
            X[rng.random(X.shape) < 0.1] = np.nan
    else:  # pragma: no cover
        raise ValueError(design)
    return Xs


def cpu(f):
    c0 = time.process_time()
    out = f()
    return out, time.process_time() - c0


def one(design, r, seq):
    s_data, s_miss = seq.spawn(2)
    data = simulate(S3, P3, N, noise_var=1.0, loadings="gaussian", random_state=np.random.default_rng(s_data))
    Xs = make_missing(data.Xs, design, np.random.default_rng(s_miss), r)
    rep = missing_report(Xs)
    Wt = data.loadings
    rec = dict(design=design, replicate=r, entry_fraction=rep.entry_fraction.tolist(), n_complete=rep.n_complete,
               n_patterns=rep.n_patterns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            st, t_sel = cpu(lambda: select_structure_incomplete(Xs))
            rec.update(selected=st.to_dict()["ranks"],
                       exact=bool(st == S3), select_cpu=t_sel)
        except ValueError as exc:
            rec.update(selected=None, exact=False, select_error=str(exc))
        em, t_em = cpu(lambda: fit_missing(Xs, S3))
        em_nopx, t_em_nopx = cpu(lambda: fit_missing(Xs, S3, px=False))   # the same EM without PX-EM
        em_full, t_em_full = cpu(lambda: fit_missing(data.Xs, S3))
        hcl_full, t_full = cpu(lambda: HCL(S3).fit(data.Xs))
        cc_rows = ~np.any(np.isnan(np.hstack(Xs)), axis=1)
        if cc_rows.sum() > 2 * S3.n_factors + 2:
            try:
                hcl_cc = HCL(S3).fit([x[cc_rows] for x in data.Xs])
                e_cc = gram_err(hcl_cc.loadings_, Wt)
            except ValueError as exc:
                e_cc, rec["cc_error"] = None, str(exc)
        else:
            e_cc = None
    rec.update(err_em=gram_err(em.loadings, Wt), err_full_default=gram_err(hcl_full.loadings_, Wt),
               err_full_ml=gram_err(em_full.loadings, Wt), err_complete_cases=e_cc,
               em_iter=em.n_iter, em_converged=bool(em.converged), em_cpu=t_em, em_full_cpu=t_em_full,
               em_nopx_iter=em_nopx.n_iter, em_nopx_converged=bool(em_nopx.converged), em_nopx_cpu=t_em_nopx,
               em_nopx_err=gram_err(em_nopx.loadings, Wt),
               em_nopx_dll=float(em.history["loglik"][-1] - em_nopx.history["loglik"][-1]),
               em_full_iter=em_full.n_iter,
               full_default_cpu=t_full, em_n_patterns=em.info["n_patterns"], em_groups=em.info["n_feature_groups"])
    rec["ratio_default"] = rec["err_em"] / rec["err_full_default"]
    rec["ratio_ml"] = rec["err_em"] / rec["err_full_ml"]
    return rec


def _git():
    """The commit of this checkout and whether its package or this script differ from it (read
    before the run: the modules are imported then)."""
    try:
        h = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "../hcl_stats",
                                "bench_missing.py"], capture_output=True, text=True, cwd=HERE).stdout.strip()
        return h + (" (with uncommitted changes to hcl_stats/ or this script)" if dirty else ", clean checkout")
    except OSError:  # pragma: no cover
        return "unknown"


def summarise(recs, design):
    R = [r for r in recs if r["design"] == design]
    if not R:
        return None
    k = len(R)
    ex = sum(r["exact"] for r in R)
    rd = np.array([r["ratio_default"] for r in R])
    rm = np.array([r["ratio_ml"] for r in R])
    cc = [r for r in R if r["err_complete_cases"] is not None]
    below_cc = sum(r["err_em"] < r["err_complete_cases"] for r in cc)
    med = lambda key: float(np.median([r[key] for r in R]))  # noqa: E731
    return dict(design=design, seeds=k, exact=ex, ratio_default_median=float(np.median(rd)),
                ratio_default_max=float(rd.max()), ratio_default_le_1_3=int((rd <= 1.3).sum()),
                ratio_ml_median=float(np.median(rm)), ratio_ml_max=float(rm.max()),
                cc_seeds=len(cc), below_cc=below_cc,
                err_em=med("err_em"), err_full_default=med("err_full_default"), err_full_ml=med("err_full_ml"),
                err_cc=float(np.median([r["err_complete_cases"] for r in cc])) if cc else None,
                em_cpu=med("em_cpu"), em_full_cpu=med("em_full_cpu"), full_default_cpu=med("full_default_cpu"),
                select_cpu=float(np.median([r.get("select_cpu", np.nan) for r in R])),
                em_iter=med("em_iter"), converged=sum(r["em_converged"] for r in R), patterns=med("em_n_patterns"),
                em_nopx_iter=med("em_nopx_iter"), nopx_converged=sum(r["em_nopx_converged"] for r in R),
                em_nopx_cpu=med("em_nopx_cpu"), em_full_iter=med("em_full_iter"),
                px_speedup_cpu=float(np.median([r["em_nopx_cpu"] / r["em_cpu"] for r in R])),
                px_dll_max=float(np.max(np.abs([r["em_nopx_dll"] for r in R]))),
                cost_ratio=float(np.median([r["em_cpu"] / r["em_full_cpu"] for r in R])),
                misses=[r["selected"] for r in R if not r["exact"]][:3])


def write_md(path, meta, sums):
    L = ["# Incomplete data: EM over the observed entries and available-case selection", "",
         "Generated by `python benchmarks/bench_missing.py` (do not edit by hand).", "",
         f"- hcl_stats {meta['version']} (git {meta['git']}), Python {meta['python']}, numpy {meta['numpy']}",
         f"- {meta['platform']}, {meta['cpus']} CPUs (shared); BLAS limited to one thread: {meta['blas']}",
         f"- total wall time {meta['wall']:.0f} s; times below are process CPU times (one BLAS thread).", "",
         "Data: the selection design of benchmarks/results/selection.md (structure {012}:2 {01}:2 {12}:1 + specific 2 "
         "each, p = (100, 80, 60), n = 1000, noise 1, iid N(0, 1) loadings). Gram error = ||W_hat W_hat^T - W W^T||_F / "
         "||W W^T||_F with the true structure. *complete* = the fit on the same samples before any entry was removed "
         "(`HCL(structure)` defaults; *ML* = plain ML, i.e. the EM on the complete data); *complete cases* = "
         "`HCL(structure)` on the rows without NaN. Selection: `select_structure_incomplete` defaults (level 1e-3, "
         "noise 'feature').", "",
         "Targets (issue 11): exact structure in >= 90% of >= 20 seeds; Gram error <= 1.3 x the complete-data fit and "
         "below the complete-case fit.", "",
         "| design | seeds | exact structure | Gram error EM / complete (median, max; seeds <= 1.3) | EM / complete ML (median, max) | EM below complete cases | median Gram error: EM, complete, complete ML, complete cases |",
         "|---|---|---|---|---|---|---|"]
    for s in sums:
        if s is None:
            continue
        cc = "-" if s["err_cc"] is None else f"{s['err_cc']:.4f}"
        L.append(f"| {s['design']}: {DESIGNS[s['design']]} | {s['seeds']} | {s['exact']}/{s['seeds']} | "
                 f"{s['ratio_default_median']:.3f}, {s['ratio_default_max']:.3f}; {s['ratio_default_le_1_3']}/{s['seeds']} | "
                 f"{s['ratio_ml_median']:.3f}, {s['ratio_ml_max']:.3f} | {s['below_cc']}/{s['cc_seeds']} | "
                 f"{s['err_em']:.4f}, {s['err_full_default']:.4f}, {s['err_full_ml']:.4f}, {cc} |")
    L += ["", "Cost (median CPU seconds per fit, one BLAS thread):", "",
          "| design | missingness patterns | EM iterations (converged) | EM on incomplete data | EM on the complete data | EM incomplete / complete | HCL default on complete data | selection |",
          "|---|---|---|---|---|---|---|---|"]
    for s in sums:
        if s is None:
            continue
        L.append(f"| {s['design']} | {s['patterns']:.0f} | {s['em_iter']:.0f} ({s['converged']}/{s['seeds']}) | "
                 f"{s['em_cpu']:.2f} s | {s['em_full_cpu']:.2f} s | {s['cost_ratio']:.2f} | {s['full_default_cpu']:.2f} s | "
                 f"{s['select_cpu']:.2f} s |")
    L += ["", "PX-EM (`fit_missing(..., px=True)`, the default) against the same EM without it (`px=False`), same "
          "data, same run, same stopping rule (tol=1e-13, gtol=1e-10, the defaults of fit_ml); iterations and CPU "
          "are medians, CPU ratio = median of the per-seed ratios:", "",
          "| design | iterations: PX-EM, plain M-step, EM on the complete data | CPU: PX-EM, plain M-step | CPU plain / PX-EM | max abs difference of the final average log-likelihood |",
          "|---|---|---|---|---|"]
    for s in sums:
        if s is None:
            continue
        L.append(f"| {s['design']} | {s['em_iter']:.0f} ({s['converged']}/{s['seeds']} converged), "
                 f"{s['em_nopx_iter']:.0f} ({s['nopx_converged']}/{s['seeds']}), {s['em_full_iter']:.0f} | "
                 f"{s['em_cpu']:.2f} s, {s['em_nopx_cpu']:.2f} s | {s['px_speedup_cpu']:.2f} | {s['px_dll_max']:.1e} |")
    miss = [(s["design"], s["misses"]) for s in sums if s is not None and s["misses"]]
    L += ["", "Selection misses (first three per design): " + ("none" if not miss else
                                                              "; ".join(f"{d}: {m}" for d, m in miss))]
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--scattered-seeds", type=int, default=10)
    ap.add_argument("--base", type=int, default=2026)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "missing"))
    a = ap.parse_args(argv)
    git = _git()
    t0 = time.perf_counter()
    recs = []
    with threadpool_limits(limits=1):
        for design in DESIGNS:
            k = a.scattered_seeds if design == "scattered_10pct" else a.seeds
            for r, seq in enumerate(np.random.SeedSequence(a.base).spawn(k)):
                rec = one(design, r, seq)
                recs.append(rec)
                print(f"{design} {r}: exact {rec['exact']} ratio {rec['ratio_default']:.3f} em {rec['err_em']:.4f} "
                      f"cc {rec['err_complete_cases']} cpu {rec['em_cpu']:.2f}", flush=True)
        blas = "; ".join(f"{d.get('internal_api')} {d.get('version')} num_threads={d.get('num_threads')}"
                         for d in threadpool_info())
    meta = dict(version=hcl_stats.__version__, git=git, python=platform.python_version(), numpy=np.__version__,
                platform=platform.platform(), cpus=os.cpu_count(), blas=blas, wall=time.perf_counter() - t0,
                base=a.base)
    sums = [summarise(recs, d) for d in DESIGNS]
    with open(a.out + ".json", "w") as f:
        json.dump(dict(meta=meta, summaries=sums, records=recs), f, indent=1)
    write_md(a.out + ".md", meta, sums)
    print(open(a.out + ".md").read())


if __name__ == "__main__":
    sys.exit(main())
