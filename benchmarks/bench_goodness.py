"""Benchmark of hcl_stats.goodness.goodness_of_fit: size under the true model, power with correlated latents.

Pre-registered (written before the judging run; the pilot run on other seeds chose the correction):

- Targets (issue 10): under the true model the rejection rate of the primary test (structured vs
  unstructured with the same K) at level 0.05 lies in [0.02, 0.09]; with pairwise latent correlation
  0.2 between all factors, n = 1000, it rejects in >= 90% of seeds.
- Correction judged: ``correction="auto"`` (the default): n - 1 for the nested test, Bartlett's
  multiplier n - 1 - (2p+5)/6 - 2K/3 for the saturated tests. The other corrections ("none",
  "bartlett", "swain") are computed from the same fits and reported beside it, not judged.
  Why: in the pilot (40 replicates per design, other seeds, benchmarks/results/goodness_pilot.md)
  Bartlett's multiplier applied to the nested statistic rejected 0/240 (it removes an inflation
  that cancels in the difference of the two saturated statistics), Swain's implied factor 5/240,
  n - 1 26/240 (0.108; 0.075 under isotropic and per-modality noise, 0.10-0.175 under per-feature
  noise). n - 1 is the only closed-form choice near the level; its excess under per-feature noise
  is the known weak point. ``correction="bootstrap"`` (a Bartlett factor estimated by parametric
  bootstrap, too slow to be the default) is measured on fewer replicates (``--boot-reps``).
- Monte Carlo band: with R replicates, a calibrated test's rejection count is Binomial(R, 0.05);
  the 99% binomial interval is reported with each rate.

Data: x = W z + e, W iid N(0, 1) on the active blocks (``make_loadings(kind="gaussian")``),
z ~ N(0, C), e ~ N(0, diag(psi)). "feature-spread" noise: psi_j = 10^u_j, u_j ~ U(-0.5, 0.5) iid
(variances spread over a factor of 10 within each modality); generated here because ``simulate``
takes one noise variance per modality. C = I under the null; for power C = 0.8 I + 0.2 11^T
(correlation 0.2 between every pair of latent factors). Replicate r of a design uses
``SeedSequence(base).spawn(R)[r]``; the pilot uses other bases.

Everything runs on one BLAS thread (threadpoolctl), sequentially, one process.

    python benchmarks/bench_goodness.py --pilot --reps 40          # choose the correction (other seeds)
    python benchmarks/bench_goodness.py --reps 200 --power-reps 30 --boot-reps 30   # the judged run
    python benchmarks/bench_goodness.py --confirm --reps 100 --power-reps 0 --designs 0,2,5   # fresh seeds
    python benchmarks/bench_goodness.py --reps 5 --power-reps 3 --out /tmp/gof   # a quick check

Post hoc (after the judged run): the judged run showed the same small excess of the n - 1 statistic
(mean 1.007-1.011 x df at n = 1000) under all three noise models; ``correction="bartlett_k"`` (the
nested statistic with n - 1 - 2K/3, the factor part of Bartlett's multiplier, whose (2p + 5)/6 part
cancels in the nested difference) was computed from the same fits and looked calibrated. It was then
checked on fresh seeds (``--confirm``, base seed 3000), with the same band [0.02, 0.09] fixed before
that run (designs 0, 2 and 5: the main design, the isotropic design that ``auto`` missed at 0.095,
and n = 400 where ``auto`` rejected 0.150). Rule fixed before the confirmation run: if
``bartlett_k`` is within [0.02, 0.09] on all three, ``auto`` becomes ``bartlett_k`` and the
confirmation run is its judged run; otherwise ``auto`` stays n - 1.

Writes <out>.md and <out>.json (default benchmarks/results/goodness[ _pilot]).
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
from scipy import stats as sps
from threadpoolctl import threadpool_info, threadpool_limits

import hcl_stats
from hcl_stats import Structure
from hcl_stats.covariance import CovarianceStats
from hcl_stats.goodness import _bartlett_multiplier, _swain_g, _swain_q, goodness_of_fit
from hcl_stats.simulate import make_loadings

HERE = os.path.dirname(os.path.abspath(__file__))
LEVEL = 0.05
SIZE_BAND = (0.02, 0.09)
POWER_TARGET = 0.90

S3 = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
P3 = (100, 80, 60)
S4 = Structure({(0, 1, 2, 3): 1, (0, 1, 2): 2, (1, 3): 1, (2, 3): 2, (0,): 3, (1,): 1, (3,): 2}, 4)
P4 = (80, 60, 50, 40)
S3s = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
P3s = (12, 10, 8)

# name, structure, n_features, n, noise kind of the data, noise model fitted
SIZE_DESIGNS = [
    ("M=3 (100,80,60), per-feature noise spread x10", S3, P3, 1000, "spread", "feature"),
    ("M=4 (80,60,50,40), per-feature noise spread x10", S4, P4, 1000, "spread", "feature"),
    ("M=3 (100,80,60), isotropic noise 1", S3, P3, 1000, "iso", "isotropic"),
    ("M=3 (100,80,60), per-modality noise (0.5,1,2)", S3, P3, 1000, "modality", "modality"),
    ("M=3 (12,10,8) small, per-feature noise spread x10", S3s, P3s, 200, "spread", "feature"),
    ("M=3 (100,80,60), per-feature noise spread x10, n=400", S3, P3, 400, "spread", "feature"),
]
POWER_DESIGNS = [
    ("M=3 (100,80,60), per-feature noise spread x10, latent corr 0.2", S3, P3, 1000, "spread", "feature"),
    ("M=4 (80,60,50,40), per-feature noise spread x10, latent corr 0.2", S4, P4, 1000, "spread", "feature"),
]


def draw(structure, n_features, n, noise_kind, seed, rho=0.0):
    """Sample covariance of one data set (and the data-generating noise)."""
    rng = np.random.default_rng(seed)
    r_load, r_psi, r_lat, r_noise = rng.spawn(4)
    W = make_loadings(structure, n_features, r_load, kind="gaussian")
    p, K = W.shape
    if noise_kind == "spread":
        psi = 10.0 ** r_psi.uniform(-0.5, 0.5, size=p)
    elif noise_kind == "iso":
        psi = np.ones(p)
    else:
        psi = np.repeat([0.5, 1.0, 2.0, 1.0][:len(n_features)], n_features)
    Z = r_lat.standard_normal((n, K))
    if rho:
        C = (1.0 - rho) * np.eye(K) + rho * np.ones((K, K))
        Z = Z @ np.linalg.cholesky(C).T
    X = Z @ W.T + r_noise.standard_normal((n, p)) * np.sqrt(psi)
    mean = X.mean(axis=0)
    Xc = X - mean
    S = Xc.T @ Xc / (n - 1)
    return CovarianceStats(cov=0.5 * (S + S.T), mean=mean, n_samples=n, n_features=tuple(n_features))


def corrected(res):
    """Nested and saturated statistics under each correction, from one correction='none' result."""
    n, p, K, df = res.n_samples, res.n_features, res.n_factors, res.df
    mB = _bartlett_multiplier(n, p, K) / (n - 1)
    raw = res.statistic_raw
    out = {"none": raw, "bartlett": raw * mB, "bartlett_k": raw * (n - 1 - 2 * K / 3) / (n - 1)}
    q_s, q_u = _swain_q(p, res.saturated_df), _swain_q(p, res.unstructured_saturated_df)
    out["swain"] = raw / (1.0 + (_swain_g(q_u) - _swain_g(q_s)) / (12.0 * (n - 1) * df))
    out["auto"] = out["bartlett_k"]   # since the confirmation run; n - 1 in goodness.md and goodness_confirm.md
    sat = res.saturated_statistic_raw
    sat_out = None
    if sat is not None:
        s_sw = 1.0 - (_swain_g(p) - _swain_g(_swain_q(p, res.saturated_df))) / (12.0 * res.saturated_df * (n - 1))
        sat_out = {"none": sat, "bartlett": sat * mB, "swain": sat * s_sw, "auto": sat * mB}
    return out, sat_out


def run_design(name, structure, n_features, n, noise_kind, noise, reps, base, rho=0.0):
    seeds = np.random.SeedSequence(base).spawn(reps)
    recs = []
    for r in range(reps):
        stats = draw(structure, n_features, n, noise_kind, seeds[r], rho)
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = goodness_of_fit(stats, structure, noise=noise, correction="none", warn=False)
        nested, sat = corrected(res)
        recs.append({"rep": r, "df": res.df, "saturated_df": res.saturated_df, "raw": res.statistic_raw,
                     "nested": nested, "saturated": sat, "converged": res.converged,
                     "heywood": {k: len(v) for k, v in res.heywood.items()}, "warnings": res.warnings,
                     "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0})
        if (r + 1) % 10 == 0 or r + 1 == reps:
            print(f"  {name}: {r + 1}/{reps}", file=sys.stderr, flush=True)
    return {"name": name, "n": n, "p": list(n_features), "K": structure.n_factors, "noise": noise,
            "data_noise": noise_kind, "rho": rho, "reps": reps, "base_seed": base, "records": recs}


def run_boot(name, structure, n_features, n, noise_kind, noise, reps, base, n_boot):
    seeds = np.random.SeedSequence(base).spawn(reps)
    recs = []
    for r in range(reps):
        stats = draw(structure, n_features, n, noise_kind, seeds[r])
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = goodness_of_fit(stats, structure, noise=noise, correction="bootstrap", n_boot=n_boot, random_state=r,
                                  warn=False)
        recs.append({"rep": r, "df": res.df, "raw": res.statistic_raw, "factor": res.correction_factor,
                     "pvalue": res.pvalue, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0})
        print(f"  bootstrap {name}: {r + 1}/{reps}", file=sys.stderr, flush=True)
    return {"name": name, "n": n, "reps": reps, "n_boot": n_boot, "base_seed": base, "records": recs}


def rates(d, which="nested"):
    out = {}
    for c in ("auto", "none", "bartlett", "swain", "bartlett_k"):
        rej, ok = 0, 0
        for rec in d["records"]:
            if which == "nested":
                x = rec["nested"].get(c, rec["nested"]["none"] * (1 - 2 * d["K"] / 3 / (d["n"] - 1)))
                df = rec["df"]
            else:
                if rec["saturated"] is None:
                    continue
                x, df = rec["saturated"].get(c, rec["saturated"]["bartlett"]), rec["saturated_df"]
            ok += 1
            rej += sps.chi2.sf(x, df) < LEVEL
        out[c] = (rej, ok)
    return out


def _band(R):
    lo, hi = sps.binom.ppf(0.005, R, LEVEL), sps.binom.ppf(0.995, R, LEVEL)
    return f"[{lo / R:.3f}, {hi / R:.3f}]"


def _env():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                             text=True).stdout.strip()
    except Exception:  # pragma: no cover
        rev = "?"
    pools = [f"{p['internal_api']} {p.get('version')} num_threads={p['num_threads']}" for p in threadpool_info()]
    import scipy
    return {"hcl_stats": hcl_stats.__version__, "git": rev, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "platform": platform.platform(),
            "cpus": os.cpu_count(), "blas": pools}


def markdown(env, size, power, wall, args, boot=()):
    L = ["# Goodness of fit: size and power of the likelihood-ratio test of a structure", "",
         f"Generated by `python benchmarks/bench_goodness.py {' '.join(args)}` (do not edit by hand)."
         + (" **Pilot run** (seeds differ from the judged run; used to choose the correction)." if "--pilot" in args
            else "")
         + (" **Confirmation run** (fresh seeds, after the judged run) of the post-hoc `bartlett_k`." if "--confirm" in
            args else ""), "",
         f"- hcl_stats {env['hcl_stats']} (git {env['git']}), Python {env['python']}, numpy {env['numpy']}, "
         f"scipy {env['scipy']}",
         f"- {env['platform']}, {env['cpus']} CPUs (shared with other jobs); BLAS limited to one thread: "
         + "; ".join(env["blas"]),
         f"- total wall time {wall:.0f} s", "",
         "Test: `goodness_of_fit(stats, structure, noise=...)`, structured vs unstructured factor model with the "
         "same K (ML on S_n by EM, two starts each), chi-square p-value, level 0.05. Corrections of the nested "
         "statistic: `auto` (the default of the code that made the run: n - 1 in the judged and confirmation runs, n - 1 - 2K/3 since), `none` (n - 1), `bartlett` (n - 1 - (2p+5)/6 - 2K/3), `swain` "
         "(factor implied by Swain's saturated expansions). Targets: size in "
         f"[{SIZE_BAND[0]}, {SIZE_BAND[1]}] (judged on `auto`), power >= {POWER_TARGET:.0%}. The 99% band is the "
         "central 99% interval of Binomial(R, 0.05) / R.", "",
         "Decided before this run (bench_goodness.py docstring): judged correction `auto`; size target "
         f"[{SIZE_BAND[0]}, {SIZE_BAND[1]}] at level {LEVEL}; power target {POWER_TARGET:.0%} at latent correlation 0.2, "
         "n = 1000.", "",
         "## Size under the true model (primary test: structured vs unstructured, same K)", "",
         "| design | n | p | K | noise model | reps | df | mean raw stat / df (se) | var raw stat / (2 df) | auto (judged) "
         "| none | bartlett | swain | bartlett_k (post hoc) | 99% band | target |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in size:
        R = rates(d)
        x = np.array([r["raw"] for r in d["records"]])
        df0 = d["records"][0]["df"]
        m = f"{np.mean(x) / df0:.3f} ({np.std(x, ddof=1) / np.sqrt(len(x)) / df0:.3f})"
        v = f"{np.var(x, ddof=1) / (2 * df0):.2f}"
        a, ok = R["auto"]
        hit = SIZE_BAND[0] <= a / ok <= SIZE_BAND[1]
        L.append(f"| {d['name']} | {d['n']} | {tuple(d['p'])} | {d['K']} | {d['noise']} | {ok} | "
                 f"{df0} | {m} | {v} | {a}/{ok} = {a / ok:.3f} | "
                 + " | ".join(f"{R[c][0] / R[c][1]:.3f}" for c in ("none", "bartlett", "swain", "bartlett_k"))
                 + f" | {_band(ok)} | {'met' if hit else 'MISSED'} |")
    L += ["", "## Size of the test against the saturated model (same fits)", "",
          "| design | reps | df | mean raw stat / df | bartlett (auto) | none | swain |", "|---|---|---|---|---|---|---|"]
    for d in size:
        R = rates(d, "saturated")
        ok = R["auto"][1]
        if ok == 0:
            L.append(f"| {d['name']} | 0 | - | - | - | - | - |")
            continue
        m = np.mean([r["saturated"]["none"] / r["saturated_df"] for r in d["records"] if r["saturated"]])
        L.append(f"| {d['name']} | {ok} | {d['records'][0]['saturated_df']} | {m:.3f} | "
                 + " | ".join(f"{R[c][0] / R[c][1]:.3f}" for c in ("auto", "none", "swain")) + " |")
    if power:
        L += ["", "## Power: latent factors correlated (0.2 between every pair)", "",
              "| design | n | reps | df | median statistic | auto rejects (judged) | bartlett | target |",
              "|---|---|---|---|---|---|---|---|"]
        for d in power:
            R = rates(d)
            a, ok = R["auto"]
            med = np.median([r["nested"]["auto"] for r in d["records"]])
            L.append(f"| {d['name']} | {d['n']} | {ok} | {d['records'][0]['df']} | {med:.0f} | {a}/{ok} = "
                     f"{a / ok:.3f} | {R['bartlett'][0] / ok:.3f} | {'met' if a / ok >= POWER_TARGET else 'MISSED'} |")
    if boot:
        L += ["", "## Size with correction=\"bootstrap\" (parametric-bootstrap Bartlett factor; not judged)", "",
              "The replicates are the first ones of the size design of the same name (same seeds).", "",
              "| design | n | reps | bootstrap samples | mean raw stat / df | mean estimated factor | rejects at 0.05 "
              "| median CPU per call |", "|---|---|---|---|---|---|---|---|"]
        for b in boot:
            rec = b["records"]
            rej = sum(r["pvalue"] < LEVEL for r in rec)
            L.append(f"| {b['name']} | {b['n']} | {len(rec)} | {b['n_boot']} | "
                     f"{np.mean([r['raw'] / r['df'] for r in rec]):.3f} | {np.mean([r['factor'] for r in rec]):.3f} | "
                     f"{rej}/{len(rec)} = {rej / len(rec):.3f} | {np.median([r['cpu'] for r in rec]):.1f} s |")
    L += ["", "## Fits", ""]
    for d in size + power:
        nc = sum(not all(r["converged"].values()) for r in d["records"])
        hw = sum(r["heywood"]["structured"] + r["heywood"]["unstructured"] > 0 for r in d["records"])
        wall = np.median([r["wall"] for r in d["records"]])
        cpu = np.median([r["cpu"] for r in d["records"]])
        L.append(f"- {d['name']} (latent corr {d['rho']}): {nc} replicate(s) with an EM fit not converged, {hw} with a "
                 f"Heywood warning; median time per call {wall:.2f} s wall, {cpu:.2f} s CPU")
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--power-reps", type=int, default=50)
    ap.add_argument("--pilot", action="store_true", help="other seeds; used to choose the correction")
    ap.add_argument("--confirm", action="store_true", help="fresh seeds; checks the post-hoc bartlett_k")
    ap.add_argument("--boot-reps", type=int, default=0, help="replicates of the bootstrap correction (design 0)")
    ap.add_argument("--n-boot", type=int, default=20)
    ap.add_argument("--designs", type=str, default=None, help="comma-separated indices of SIZE_DESIGNS")
    ap.add_argument("--out", type=str, default=None)
    ap.add_argument("--render", type=str, default=None, help="re-write the .md of a stored .json (no fitting)")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render) as fh:
            d = json.load(fh)
        md = markdown(d["env"], d["size"], d["power"], d["wall"], d["args"], d.get("bootstrap", []))
        with open(args.render[:-len(".json")] + ".md", "w") as fh:
            fh.write(md)
        print(md)
        return
    raw_args = sys.argv[1:] if argv is None else list(argv)
    tag = "goodness_pilot" if args.pilot else ("goodness_confirm" if args.confirm else "goodness")
    out = args.out or os.path.join(HERE, "results", tag)
    base = 7000 if args.pilot else (3000 if args.confirm else 1000)
    idx = range(len(SIZE_DESIGNS)) if args.designs is None else [int(i) for i in args.designs.split(",")]
    t0 = time.perf_counter()
    size, power, boot = [], [], []

    def save():  # after every design, so an interrupted run keeps what it measured
        wall = time.perf_counter() - t0
        with open(out + ".json", "w") as fh:
            json.dump({"env": env, "args": raw_args, "wall": wall, "size": size, "power": power, "bootstrap": boot},
                      fh, indent=1, default=float)
        md = markdown(env, size, power, wall, raw_args, boot)
        with open(out + ".md", "w") as fh:
            fh.write(md)
        return md

    with threadpool_limits(limits=1):
        env = _env()
        # the two judged parts first: size of the main design, power
        order = [i for i in idx if i == 0] + ["power"] + [i for i in idx if i != 0] + ["boot"]
        for i in order:
            if i == "power":
                for j, (name, s, P, n, kind, noise) in enumerate(POWER_DESIGNS):
                    if args.power_reps > 0:
                        power.append(run_design(name, s, P, n, kind, noise, args.power_reps, base + 100 + j,
                                                rho=0.2))
                        save()
            elif i == "boot":
                if args.boot_reps > 0:
                    name, s, P, n, kind, noise = SIZE_DESIGNS[0]
                    boot.append(run_boot(name, s, P, n, kind, noise, args.boot_reps, base + 0, args.n_boot))
                    save()
            elif args.reps > 0:
                name, s, P, n, kind, noise = SIZE_DESIGNS[i]
                size.append(run_design(name, s, P, n, kind, noise, args.reps, base + i))
                save()
    print(save())


if __name__ == "__main__":
    main()
