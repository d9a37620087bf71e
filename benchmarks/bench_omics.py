"""p >> n: the default fit and the structure selection from the n x p data, against one thin SVD.

Design: three modalities with feature counts in the ratio 1:2:3, n = 500 samples, K = 10 factors
(structure {0,1,2}: 3, {0,1}: 1, {0,2}: 1, {1,2}: 1, {0}: 2, {1}: 1, {2}: 1), Gaussian loadings
(entries N(0, 0.3^2) on the structure's support), per-feature noise variances drawn uniformly
in [0.5, 2] (seed 0), data seed 1 (``hcl_stats.simulate``).

Every case runs in its own subprocess on one BLAS thread (threadpoolctl) and reports the process
CPU time of the measured call (``time.process_time()``; the machine is shared, so wall time is
also recorded but not used for ratios) and the peak resident memory of the process
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes the data, about 8 n p bytes per
copy, and the interpreter):

- ``svd``: one thin SVD of the stacked n x p data (``numpy.linalg.svd(X, full_matrices=False)``),
  the time unit of the targets;
- ``fit``: ``HCL(structure).fit(Xs)`` with every default (method "ml", noise "feature",
  shrinkage) -- with p > n it works from the centred data (``DataStats``);
- ``fit_cov`` (p <= 12000 only): the same estimator from the dense p x p sample covariance
  (``METHODS["ml"](sample_covariance(Xs), ...)``), i.e. the covariance path of this code version;
- ``fit_base`` (with ``--base-commit``, p <= 12000): ``HCL(structure).fit(Xs)`` of an older commit
  (checked out in a temporary git worktree), the code before the p > n path;
- ``select``: ``select_structure(Xs, noise="feature")`` (the default), then the default fit of the
  selected structure (``HCL(structure="auto")``).

Targets (issue 11): at p = 50000 the default fit takes at most 10 x the thin SVD of the same run and
at most 2 GiB peak memory, converged; at p = 12000 it is at least 5 x faster than the covariance path
and agrees with it to 1e-6 in relative Gram error ||W W^T - W' W'^T||_F / ||W' W'^T||_F.

Usage: python benchmarks/bench_omics.py [--p 12000 50000] [--select-p 60000] [--base-commit 5e13835]
Writes results/omics.json and results/omics.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
N = 500
RANKS = {(0, 1, 2): 3, (0, 1): 1, (0, 2): 1, (1, 2): 1, (0,): 2, (1,): 1, (2,): 1}


def design(p):
    from hcl_stats import Structure, simulate

    s = Structure(RANKS, 3)
    nf = (p // 6, 2 * p // 6, p - 3 * (p // 6))
    psi = np.random.default_rng(0).uniform(0.5, 2.0, p)
    d = simulate(s, nf, N, psi, random_state=1, loadings="gaussian", loading_scale=0.3)
    return s, d


def rel_gram(A, B):
    """||A A^T - B B^T||_F / ||B B^T||_F without a p x p matrix and without cancellation: with
    [A, B] = Q [R_A, R_B] (thin QR), A A^T - B B^T = Q (R_A R_A^T - R_B R_B^T) Q^T."""
    K = A.shape[1]
    _, R = np.linalg.qr(np.hstack([A, B]))
    RA, RB = R[:, :K], R[:, K:]
    return float(np.linalg.norm(RA @ RA.T - RB @ RB.T) / np.linalg.norm(RB @ RB.T))


def run_case(case, p, out):
    """Child process: one measured call; writes a json record and the loadings (npy)."""
    import warnings

    from threadpoolctl import threadpool_limits

    s, d = design(p)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    import hcl_stats

    rec = {"case": case, "p": p, "n": N, "n_features": [int(x.shape[1]) for x in d.Xs], "hcl_stats_file": hcl_stats.__file__}
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0, w0 = time.process_time(), time.perf_counter()
        W = None
        if case == "svd":
            X = np.hstack(d.Xs)
            X -= X.mean(axis=0)
            np.linalg.svd(X, full_matrices=False)
        elif case in ("fit", "fit_base"):
            from hcl_stats import HCL

            h = HCL(s).fit(d.Xs)
            W = h.loadings_
            rec.update(n_iter=int(h.n_iter_), converged=bool(h.converged_),
                       n_estep=int(h.results_.info.get("n_estep", -1)))
        elif case == "fit_cov":
            from hcl_stats.covariance import sample_covariance
            from hcl_stats.estimation import METHODS

            res = METHODS["ml"](sample_covariance(d.Xs), s, noise="feature", shrinkage=True)
            W = res.loadings
            rec.update(n_iter=int(res.n_iter), converged=bool(res.converged))
        elif case == "select":
            from hcl_stats import HCL, select_structure

            t_sel = time.process_time()
            sel = select_structure(d.Xs, noise="feature")
            rec["select_cpu_s"] = time.process_time() - t_sel
            rec["selected"] = {"+".join(map(str, k)): int(v) for k, v in sel.ranks.items()}
            rec["selected_equals_truth"] = bool(sel == s)
            h = HCL(sel).fit(d.Xs)
            rec.update(n_iter=int(h.n_iter_), converged=bool(h.converged_))
            W = h.loadings_ if sel == s else None
        else:
            raise ValueError(f"case must be svd, fit, fit_cov, fit_base or select; got {case!r}")
        rec["cpu_s"] = time.process_time() - t0
        rec["wall_s"] = time.perf_counter() - w0
    rec["warnings"] = [f"{type(w.message).__name__}: {w.message}"[:300] for w in caught]
    rec["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rec["rss_after_data_bytes"] = rss_data
    if W is not None:
        np.save(out + ".npy", W)
        rec["rel_gram_error_vs_truth"] = rel_gram(W, d.loadings)
    Path(out).write_text(json.dumps(rec))


def spawn(case, p, tmp, cwd=None):
    out = os.path.join(tmp, f"{case}_{p}.json")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(cwd or ROOT)   # the checkout's hcl_stats, never an installed copy
    script = Path(__file__).resolve()
    print(f"[{time.strftime('%H:%M:%S')}] {case} p={p}", flush=True)
    subprocess.run([sys.executable, str(script), "--child", case, str(p), out], check=True, env=env,
                   cwd=str(cwd or ROOT))
    rec = json.loads(Path(out).read_text())
    W = np.load(out + ".npy") if os.path.exists(out + ".npy") else None
    return rec, W


def git_commit(cwd=ROOT):
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True).stdout.strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, nargs="+", default=[12000, 50000])
    ap.add_argument("--select-p", type=int, default=60000, help="p of the 'select' case (0: skip)")
    ap.add_argument("--base-commit", default=None, help="also time HCL.fit of this commit at p <= 12000")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        case, p, out = args.child
        run_case(case, int(p), out)
        return
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "hcl_stats"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line.strip()]
    meta = {"commit": git_commit(), "hcl_stats_uncommitted": dirty, "blas_threads": 1,
            "python": platform.python_version(), "numpy": np.__version__, "n": N, "ranks": str(RANKS),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.p:
            svd, _ = spawn("svd", p, tmp)
            fit, W = spawn("fit", p, tmp)
            row = {"p": p, "svd": svd, "fit": fit, "fit_over_svd": fit["cpu_s"] / svd["cpu_s"]}
            if p <= 12000:
                cov, Wc = spawn("fit_cov", p, tmp)
                row["fit_cov"] = cov
                row["cov_over_fit"] = cov["cpu_s"] / fit["cpu_s"]
                row["rel_gram_fit_vs_cov"] = rel_gram(W, Wc)
                if args.base_commit:
                    wt = os.path.join(tmp, "base")
                    subprocess.run(["git", "worktree", "add", "--detach", wt, args.base_commit], cwd=ROOT, check=True,
                                   capture_output=True)
                    try:
                        base, Wb = spawn("fit_base", p, tmp, cwd=wt)
                    finally:
                        subprocess.run(["git", "worktree", "remove", "--force", wt], cwd=ROOT, capture_output=True)
                    base["commit"] = args.base_commit
                    row["fit_base"] = base
                    row["base_over_fit"] = base["cpu_s"] / fit["cpu_s"]
                    row["rel_gram_fit_vs_base"] = rel_gram(W, Wb)
            records.append(row)
        sel = None
        if args.select_p:
            sel, _ = spawn("select", args.select_p, tmp)
            svd_s, _ = spawn("svd", args.select_p, tmp)
            sel["svd_cpu_s"] = svd_s["cpu_s"]
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    meta["load_avg_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "omics.json").write_text(json.dumps({"meta": meta, "cases": records, "select": sel}, indent=1))
    (RESULTS / "omics.md").write_text(report(meta, records, sel, argv))


def report(meta, records, sel, argv):
    gib = 1024**3
    cmd = "python benchmarks/bench_omics.py" + ("" if not argv else " " + " ".join(argv))
    L = ["# bench_omics: p >> n without p x p matrices", "",
         f"`{cmd}` -- commit {meta['commit'][:10]}"
         f"{' (uncommitted changes of other engineers in ' + ', '.join(meta['hcl_stats_uncommitted']) + ')' if meta['hcl_stats_uncommitted'] else ''}, "
         f"one BLAS thread, n = {meta['n']}, K = 10, modalities 1:2:3, {meta['started']} to {meta['finished']}, "
         f"load average at the end {meta['load_avg_at_end'][0]:.1f} (2 CPUs, shared).", "",
         "CPU seconds are `time.process_time()` of the measured call; memory is the peak RSS of the case's "
         "process (includes the data and the interpreter).", "",
         "| p | case | CPU s | wall s | peak RSS | EM iterations | converged | rel. Gram error vs truth |",
         "|---|---|---|---|---|---|---|---|"]
    for r in records:
        for key in ("svd", "fit", "fit_cov", "fit_base"):
            if key in r:
                c = r[key]
                L.append(f"| {r['p']} | {key}{' @' + c['commit'] if key == 'fit_base' else ''} | {c['cpu_s']:.1f} | "
                         f"{c['wall_s']:.1f} | {c['peak_rss_bytes'] / gib:.2f} GiB | {c.get('n_iter', '')} | "
                         f"{c.get('converged', '')} | "
                         f"{c['rel_gram_error_vs_truth']:.4f} |" if 'rel_gram_error_vs_truth' in c else
                         f"| {r['p']} | {key} | {c['cpu_s']:.1f} | {c['wall_s']:.1f} | {c['peak_rss_bytes'] / gib:.2f} GiB | | | |")
    L += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for r in records:
        f = r["fit"]
        if r["p"] >= 50000:
            L.append(f"| p = {r['p']}: fit CPU <= 10 x thin SVD | {r['fit_over_svd']:.2f} x "
                     f"({f['cpu_s']:.1f} s / {r['svd']['cpu_s']:.1f} s) | {'yes' if r['fit_over_svd'] <= 10 else 'NO'} |")
            L.append(f"| p = {r['p']}: peak memory <= 2 GiB | {f['peak_rss_bytes'] / gib:.2f} GiB | "
                     f"{'yes' if f['peak_rss_bytes'] <= 2 * gib else 'NO'} |")
            L.append(f"| p = {r['p']}: converged | {f['converged']} ({f['n_iter']} iterations) | "
                     f"{'yes' if f['converged'] else 'NO'} |")
        else:
            L.append(f"| p = {r['p']}: fit / thin SVD (no target) | {r['fit_over_svd']:.2f} x | |")
        if "fit_cov" in r:
            L.append(f"| p = {r['p']}: >= 5 x faster than the covariance path (this commit) | {r['cov_over_fit']:.1f} x "
                     f"({r['fit_cov']['cpu_s']:.1f} s / {f['cpu_s']:.1f} s) | {'yes' if r['cov_over_fit'] >= 5 else 'NO'} |")
            L.append(f"| p = {r['p']}: same answer as the covariance path, rel. Gram <= 1e-6 | "
                     f"{r['rel_gram_fit_vs_cov']:.1e} | {'yes' if r['rel_gram_fit_vs_cov'] <= 1e-6 else 'NO'} |")
        if "fit_base" in r:
            b = r["fit_base"]
            L.append(f"| p = {r['p']}: >= 5 x faster than HCL.fit at {b['commit']} (before the p > n path) | "
                     f"{r['base_over_fit']:.1f} x ({b['cpu_s']:.1f} s, {b['peak_rss_bytes'] / gib:.2f} GiB, "
                     f"{b['n_iter']} iterations, converged {b['converged']}) | "
                     f"{'yes' if r['base_over_fit'] >= 5 else 'NO'} |")
            L.append(f"| p = {r['p']}: rel. Gram difference to HCL.fit at {b['commit']} (no target: that fit's "
                     f"stopping rule was looser) | {r['rel_gram_fit_vs_base']:.1e} | |")
    if sel:
        L += ["", f"## select_structure(noise='feature') then the default fit, p = {sel['p']}", "",
              f"- selection: {sel['select_cpu_s']:.1f} CPU s; selection + fit: {sel['cpu_s']:.1f} CPU s "
              f"(one thin SVD of the data: {sel['svd_cpu_s']:.1f} s); peak RSS {sel['peak_rss_bytes'] / gib:.2f} GiB",
              f"- selected {sel['selected']} (equals the true structure: {sel['selected_equals_truth']}); "
              f"fit converged {sel['converged']} in {sel['n_iter']} iterations"
              + (f", rel. Gram error vs truth {sel['rel_gram_error_vs_truth']:.4f}" if "rel_gram_error_vs_truth" in sel else "")]
    warn = [(r["p"], k, w) for r in records for k in ("fit", "fit_cov") if k in r for w in r[k]["warnings"]]
    if sel:
        warn += [(sel["p"], "select", w) for w in sel["warnings"]]
    L += ["", "## Warnings raised", ""] + ([f"- p = {p} {k}: {w}" for p, k, w in warn] or ["none"])
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main(sys.argv[1:])
