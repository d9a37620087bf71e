"""Benchmarks of the contrastive objectives: FactorCL synthetic, vector Trifeature, HCL's linear model.

Usage::

    python benchmarks/bench_contrastive.py --task factorcl|trifeature|linear|all [--seeds 5] [--quick]
    python benchmarks/bench_contrastive.py --report      # tables + figure from stored results only

Each run: one seed = one draw of the task (data, fixed maps) and one model initialisation,
from ``SeedSequence(20261123).spawn(n_seeds)[seed]``. Probes (logistic regression for labels,
ridge for real responses) are fitted on the labelled ``train`` split on standardised features,
their regularisation chosen on ``val`` from a fixed grid, and scored once on ``test``.
One torch thread and one BLAS thread per process (set below, before numpy/torch load).
Results: ``benchmarks/results/contrastive_<task>.json`` (every run), then ``--report`` writes
``benchmarks/results/contrastive.md`` and ``reports/contrastive/`` (table and figure).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPORTS = ROOT / "reports" / "contrastive"
MASTER_SEED = 20261123
C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
ALPHA_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


# ---------------------------------------------------------------------------------------
# probes (regularisation chosen on the validation split, never on test)
# ---------------------------------------------------------------------------------------
def _standardise(Ztr, *others):
    mu, sd = Ztr.mean(0), Ztr.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return [(Z - mu) / sd for Z in (Ztr,) + others]


def logistic_probe(Ztr, ytr, Zva, yva, Zte, yte):
    """Balanced accuracy on test of an L2 logistic regression, C chosen by validation balanced accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    Ztr, Zva, Zte = _standardise(Ztr, Zva, Zte)
    best = (-1.0, None)
    for C in C_GRID:
        clf = LogisticRegression(C=C, max_iter=2000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(Ztr, ytr)
        s = balanced_accuracy_score(yva, clf.predict(Zva))
        if s > best[0]:
            best = (s, clf)
    return float(balanced_accuracy_score(yte, best[1].predict(Zte))), float(best[1].C)


def _ridge_fit(Ztr, Ytr, alpha):
    G = Ztr.T @ Ztr + alpha * np.eye(Ztr.shape[1])
    return np.linalg.solve(G, Ztr.T @ Ytr)


def ridge_probe(Ztr, Ytr, Zva, Yva, Zte):
    """Ridge regression (intercept via centring), alpha chosen by validation MSE; returns test predictions."""
    Ztr, Zva, Zte = _standardise(Ztr, Zva, Zte)
    mu = Ytr.mean(0)
    best = (np.inf, None)
    for a in ALPHA_GRID:
        B = _ridge_fit(Ztr, Ytr - mu, a)
        e = np.mean((Zva @ B + mu - Yva) ** 2)
        if e < best[0]:
            best = (e, B)
    return Zte @ best[1] + mu


def canonical_correlations(A, B):
    """Canonical correlations between the columns of A and of B (n x a, n x b)."""
    A = A - A.mean(0)
    B = B - B.mean(0)
    qa = np.linalg.qr(A)[0]
    qb = np.linalg.qr(B)[0]
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)


# ---------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------
CORAL_MASK = "static"


def deep_methods(task, quick, epochs=None, patience=None):
    from hcl_stats.deep import COrAL, Cross, CrossSelf, DeepHCL, FactorCL

    ep = epochs or (3 if quick else 12)
    common = dict(epochs=ep, patience=patience or 2, batch_size=128)
    if task == "factorcl":
        return {
            "Cross": lambda s: Cross(random_state=s, **common),
            "Cross+Self": lambda s: CrossSelf(random_state=s, **common),
            "FactorCL-SUP": lambda s: FactorCL("supervised", random_state=s, **common),
        }
    if task == "trifeature":
        return {
            "Cross": lambda s: Cross(random_state=s, **common),
            "Cross+Self": lambda s: CrossSelf(random_state=s, **common),
            "FactorCL-SSL": lambda s: FactorCL("ssl", random_state=s, **common),
            "COrAL": lambda s: COrAL(random_state=s, d=16, heads=2, mask=CORAL_MASK, **common),
            "DeepHCL": lambda s: DeepHCL(rank=8, random_state=s, **common),
        }
    return {
        "Cross": lambda s: Cross(random_state=s, **common),
        "Cross+Self": lambda s: CrossSelf(random_state=s, **common),
        "FactorCL-SSL": lambda s: FactorCL("ssl", random_state=s, **common),
        "COrAL": lambda s: COrAL(random_state=s, d=16, heads=2, mask=CORAL_MASK, **common),
        "DeepHCL(authors)": lambda s: DeepHCL(STRUCTURE, loss="authors", random_state=s, **common),
        "DeepHCL(spectral)": lambda s: DeepHCL(STRUCTURE, loss="spectral", random_state=s, **common),
    }


STRUCTURE = None  # set in run_linear


def _fit_deep(model, split, task_name, y=None):
    Xs = split.Xs
    if task_name == "linear" and type(model).__name__ == "FactorCL":
        Xs = [Xs[0], np.hstack(Xs[1:])]  # FactorCL is bimodal: x1 vs (x2, x3)
    model.fit(Xs, y)
    return model


def _embed(model, split, task_name):
    Xs = split.Xs
    if task_name == "linear" and type(model).__name__ == "FactorCL":
        Xs = [Xs[0], np.hstack(Xs[1:])]
    return model.transform(Xs)


# ---------------------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------------------
def run_factorcl(seed_seq, seed, quick, methods):
    from hcl_stats.contrastive_tasks import factorcl_synthetic

    out = []
    shares = (0.0, 1 / 3, 2 / 3, 1.0)
    for k, share in enumerate(shares):
        ss = seed_seq.spawn(len(shares))[k]
        task = factorcl_synthetic(n_samples=1500 if quick else 2000, unique_share=share, rng=ss)
        sp = task.pretrain
        raw = logistic_probe(np.hstack(task.train.Xs), task.train.y["label"], np.hstack(task.val.Xs),
                             task.val.y["label"], np.hstack(task.test.Xs), task.test.y["label"])
        out.append(dict(task="factorcl", seed=seed, unique_share=task.info["unique_share"], method="raw input",
                        accuracy=raw[0], C=raw[1], fit_time=0.0, epochs=0, mi_x1x2=task.info["mi_x1x2"]))
        for name, make in methods.items():
            if name not in SELECTED:
                continue
            m = make(seed)
            t0, c0 = time.perf_counter(), time.process_time()
            m.fit(sp.Xs, sp.y["label"] if m.supervised else None)
            ft, ct = time.perf_counter() - t0, time.process_time() - c0
            acc, C = logistic_probe(m.transform(task.train.Xs), task.train.y["label"], m.transform(task.val.Xs),
                                    task.val.y["label"], m.transform(task.test.Xs), task.test.y["label"])
            out.append(dict(task="factorcl", seed=seed, unique_share=task.info["unique_share"], method=name,
                            accuracy=acc, C=C, fit_time=ft, cpu_time=ct, epochs=m.n_epochs_, mi_x1x2=task.info["mi_x1x2"]))
            print(f"factorcl seed={seed} share={share:.2f} {name}: acc={acc:.3f} ({ft:.1f}s, {m.n_epochs_} ep)", flush=True)
    return out


def run_trifeature(seed_seq, seed, quick, methods):
    from hcl_stats.contrastive_tasks import trifeature_vectors

    sizes = dict(n_pretrain=1000, n_train=500, n_val=300, n_test=500) if quick else \
        dict(n_pretrain=2000, n_train=1000, n_val=500, n_test=1000)
    task = trifeature_vectors(rng=seed_seq, **sizes)
    out = []
    for name, make in [("raw input", None)] + list(methods.items()):
        if make is not None and name not in SELECTED:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        if make is None:
            Z = {k: np.hstack(getattr(task, k).Xs) for k in ("train", "val", "test")}
            ep = 0
        else:
            m = make(seed)
            m.fit(task.pretrain.Xs)
            Z = {k: m.transform(getattr(task, k).Xs) for k in ("train", "val", "test")}
            ep = m.n_epochs_
        ft, ct = time.perf_counter() - t0, time.process_time() - c0
        row = dict(task="trifeature", seed=seed, method=name, fit_time=ft, cpu_time=ct, epochs=ep)
        for lab in ("R", "U", "Syn"):
            row[lab] = logistic_probe(Z["train"], task.train.y[lab], Z["val"], task.val.y[lab], Z["test"], task.test.y[lab])[0]
        out.append(row)
        print(f"trifeature seed={seed} {name}: R={row['R']:.3f} U={row['U']:.3f} Syn={row['Syn']:.3f} ({ft:.1f}s, {ep} ep)", flush=True)
    return out


def run_linear(seed_seq, seed, quick, methods):
    global STRUCTURE
    from hcl_stats import HCL, Structure
    from hcl_stats.contrastive import LinearContrastiveHCL
    from hcl_stats.contrastive_tasks import hierarchical_task

    STRUCTURE = Structure.full(3, 2)
    sizes = dict(n_pretrain=1500, n_train=500, n_val=300, n_test=800) if quick else \
        dict(n_pretrain=2000, n_train=800, n_val=400, n_test=1000)
    task = hierarchical_task(STRUCTURE, n_features=(30, 40, 50), noise_var=1.0, rng=seed_seq, **sizes)
    methods = dict(methods)
    out = []
    entries = [("raw input", None), ("HCL (covariance)", "hcl"), ("HCL ML (posterior)", "hcl_ml"),
               ("Linear contrastive", "lin")] + list(methods.items())
    for name, make in entries:
        if make is not None and not isinstance(make, str) and name not in SELECTED:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        own = None
        if make is None:
            Z = {k: np.hstack(getattr(task, k).Xs) for k in ("train", "val", "test")}
            ep = 0
        elif make == "hcl":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = HCL(STRUCTURE).fit(task.pretrain.Xs)
            Z = {k: h.transform(getattr(task, k).Xs) for k in ("train", "val", "test")}
            own = True
            ep = h.n_iter_
        elif make == "hcl_ml":
            from hcl_stats.representation import posterior_mean

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = HCL(STRUCTURE, method="ml").fit(task.pretrain.Xs)
            Z = {k: posterior_mean(h, getattr(task, k).Xs) for k in ("train", "val", "test")}
            own = True
            ep = h.n_iter_
        elif make == "lin":
            h = LinearContrastiveHCL(STRUCTURE, random_state=seed).fit(task.pretrain.Xs)
            Z = {k: h.transform(getattr(task, k).Xs) for k in ("train", "val", "test")}
            own = True
            ep = h.n_iter_
        else:
            m = make(seed)
            _fit_deep(m, task.pretrain, "linear")
            Z = {k: _embed(m, getattr(task, k), "linear") for k in ("train", "val", "test")}
            ep = m.n_epochs_
            own = name.startswith("DeepHCL")
        ft, ct = time.perf_counter() - t0, time.process_time() - c0
        row = dict(task="linear", seed=seed, method=name, fit_time=ft, cpu_time=ct, epochs=int(ep), dim=int(Z["test"].shape[1]))
        yhat = ridge_probe(Z["train"], task.train.y["y"], Z["val"], task.val.y["y"], Z["test"])
        yte = task.test.y["y"]
        row["R2_y"] = float(1 - np.mean((yhat - yte) ** 2) / np.var(yte))
        for s, zs in task.test.latents.items():
            lab = "{" + "".join(str(i + 1) for i in s) + "}"
            pred = ridge_probe(Z["train"], task.train.latents[s], Z["val"], task.val.latents[s], Z["test"])
            row[f"cc_decode{lab}"] = float(canonical_correlations(pred, zs).mean())
            if own:
                cs = STRUCTURE.column_slice(s)
                row[f"cc_block{lab}"] = float(canonical_correlations(Z["test"][:, cs], zs).mean())
        out.append(row)
        print(f"linear seed={seed} {name}: R2={row['R2_y']:.3f} cc(12)={row['cc_decode{12}']:.3f} ({ft:.1f}s)", flush=True)
    return out


TASKS = {"factorcl": run_factorcl, "trifeature": run_trifeature, "linear": run_linear}
SELECTED: set = set()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="all", choices=list(TASKS) + ["all"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default=None, help="comma-separated subset of the deep methods")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and 3 epochs (smoke test)")
    ap.add_argument("--report", action="store_true", help="only write tables and figure from stored results")
    ap.add_argument("--suffix", default="", help="suffix of the results file (e.g. to run methods in parallel)")
    ap.add_argument("--seed-start", type=int, default=0, help="first seed to run (seeds seed_start .. seeds-1)")
    ap.add_argument("--epochs", type=int, default=None, help="override the maximum number of epochs")
    ap.add_argument("--patience", type=int, default=None, help="override the early-stopping patience")
    ap.add_argument("--coral-mask", default="static", choices=["static", "schedule"], help="COrAL masking ratio")
    ap.add_argument("--tag", default="", help="appended to the deep methods' names (variants in separate rows)")
    args = ap.parse_args(argv)
    if args.report:
        return report()
    import torch

    global CORAL_MASK
    CORAL_MASK = args.coral_mask
    torch.set_num_threads(1)
    tasks = list(TASKS) if args.task == "all" else [args.task]
    seqs = np.random.SeedSequence(MASTER_SEED).spawn(args.seeds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for t in tasks:
        methods = deep_methods(t, args.quick, args.epochs, args.patience)
        SELECTED.clear()
        SELECTED.update(methods if args.methods is None else [m for m in args.methods.split(",") if m])
        if args.tag:
            methods = {f"{k} {args.tag}": v for k, v in methods.items()}
            SELECTED.update({f"{k} {args.tag}" for k in list(SELECTED)})
        rows = []
        t0 = time.perf_counter()
        name = f"contrastive_{t}{'_quick' if args.quick else ''}{args.suffix}.json"
        for seed in range(args.seed_start, args.seeds):
            rows += TASKS[t](seqs[seed], seed, args.quick, methods)
            _write(name, rows, t, args, t0, torch, complete=seed == args.seeds - 1)


def _write(name, rows, t, args, t0, torch, complete):
    meta = dict(task=t, seeds=args.seeds, quick=args.quick, wall_time=time.perf_counter() - t0,
                    torch_threads=torch.get_num_threads(), torch=torch.__version__, python=sys.version.split()[0],
                    machine=platform.machine(), cpu_count=os.cpu_count(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                load_avg=os.getloadavg(), complete=complete, seeds_done=len({r["seed"] for r in rows}))
    (RESULTS / name).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {RESULTS / name} ({meta['wall_time']:.0f}s)", flush=True)


# ---------------------------------------------------------------------------------------
# report (from stored results only)
# ---------------------------------------------------------------------------------------
def _load(task):
    """All stored runs of a task (files of several invocations merged; a (method, seed, share)
    present in more than one file is taken from the first)."""
    rows, metas, seen = [], [], set()
    for f in sorted(RESULTS.glob(f"contrastive_{task}*.json")):
        if "_quick" in f.name or "_timing" in f.name:
            continue
        d = json.loads(f.read_text())
        for r in d["rows"]:
            key = (r["method"], r["seed"], round(r.get("unique_share", -1), 3))
            if key not in seen:
                seen.add(key)
                rows.append(r)
        metas.append(d["meta"])
    return rows, metas


def _ms(v):
    v = np.asarray(v, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def _methods_in(rows):
    seen = []
    for r in rows:
        if r["method"] not in seen:
            seen.append(r["method"])
    return seen


def report():
    REPORTS.mkdir(parents=True, exist_ok=True)
    lines = ["# Contrastive benchmarks", "",
             "Generated by `python benchmarks/bench_contrastive.py --report` from the stored runs "
             "(`benchmarks/results/contrastive_*.json`). Mean ± sd over seeds; probes tuned on a validation "
             "split, scored on test. Times: wall-clock seconds per fit, one torch and one BLAS thread per "
             "process, on a shared 2-core machine (load average at the end of each run in the metadata).", ""]
    figs = {}
    # FactorCL
    rows, metas = _load("factorcl")
    if rows:
        shares = sorted({round(r["unique_share"], 3) for r in rows})
        meths = _methods_in(rows)
        lines += ["## FactorCL synthetic (noise sd 1, finite I(X1;X2)): test accuracy vs share of unique information", "",
                  "n = 2000 per draw (1200 pretrain = probe train, 400 val, 400 test); 100 features per modality; FactorCL-SUP uses the labels of the pretrain split, the others do not.", "",
                  f"I(X1; X2) = {np.mean([r['mi_x1x2'] for r in rows]):.2f} nats (exact, Gaussian); seeds: {len({r['seed'] for r in rows})}.", "",
                  "| method | " + " | ".join(f"unique {s:.2f}" for s in shares) + " | fit time per run (s) | total (s) |",
                  "|---|" + "---|" * (len(shares) + 2)]
        curves = {}
        for m in meths:
            cells, curve = [], []
            for s in shares:
                v = [r["accuracy"] for r in rows if r["method"] == m and round(r["unique_share"], 3) == s]
                cells.append(_ms(v) if v else "-")
                curve.append((s, np.mean(v), np.std(v, ddof=1) if len(v) > 1 else 0.0))
            ft = [r["fit_time"] for r in rows if r["method"] == m]
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {np.mean(ft):.1f} | {np.sum(ft):.0f} |")
            curves[m] = curve
        lines.append("")
        figs["factorcl"] = curves
    rows, metas = _load("trifeature")
    if rows:
        meths = _methods_in(rows)
        lines += ["## Vector Trifeature: balanced accuracy of linear probes (R: shape, 8 classes; U: texture of "
                  "modality 1, 8 classes; Syn: colour2 = pi(texture1), binary, chance 0.5)", "",
                  f"Seeds: {len({r['seed'] for r in rows})}. Representations trained on the biased set (every pair satisfies the bijection); probes on unbiased sets.", "",
                  "| method | seeds | R | U | Syn | fit time per run (s) | total (s) |", "|---|---|---|---|---|---|---|"]
        for m in meths:
            rr = [r for r in rows if r["method"] == m]
            ft = [r["fit_time"] for r in rr]
            lines.append(f"| {m} | {len(rr)} | {_ms([r['R'] for r in rr])} | {_ms([r['U'] for r in rr])} | {_ms([r['Syn'] for r in rr])} | {np.mean(ft):.1f} | {np.sum(ft):.0f} |")
        lines.append("")
        figs["trifeature"] = {m: [np.mean([r[k] for r in rows if r["method"] == m]) for k in ("R", "U", "Syn")] for m in meths}
    rows, metas = _load("linear")
    if rows:
        meths = _methods_in(rows)
        subs = [k[len("cc_decode"):] for k in rows[0] if k.startswith("cc_decode")]
        lines += ["## HCL's linear model, 3 modalities (p = 30, 40, 50; all 7 subsets at rank 2; noise variance 1; "
                  "n = 2000 for the representation, 800 / 400 / 1000 labelled train / val / test)", "",
                  "Downstream: R^2 on test of a ridge probe for y = beta^T z + noise. Block recovery: mean canonical "
                  "correlation on test between the true z_S and its ridge prediction from the whole representation "
                  "(`decode`); for HCL-type representations also between z_S and the representation's own S block "
                  "(`block`, no fitting).", "",
                  "| method | seeds | dim | R^2(y) | " + " | ".join(f"decode {s}" for s in subs) + " | fit time (s) |",
                  "|---|---|---|---|" + "---|" * len(subs) + "---|"]
        for m in meths:
            rr = [r for r in rows if r["method"] == m]
            cells = [_ms([r[f"cc_decode{s}"] for r in rr]) for s in subs]
            lines.append(f"| {m} | {len(rr)} | {rr[0]['dim']} | {_ms([r['R2_y'] for r in rr])} | " + " | ".join(cells) + f" | {np.mean([r['fit_time'] for r in rr]):.1f} |")
        own = [m for m in meths if any(k.startswith("cc_block") for k in next(r for r in rows if r["method"] == m))]
        if own:
            lines += ["", "Own-block canonical correlations (the S block of the representation vs z_S):", "",
                      "| method | " + " | ".join(f"block {s}" for s in subs) + " |", "|---|" + "---|" * len(subs)]
            for m in own:
                rr = [r for r in rows if r["method"] == m]
                lines.append(f"| {m} | " + " | ".join(_ms([r[f'cc_block{s}'] for r in rr]) for s in subs) + " |")
        lines.append("")
        figs["linear"] = {m: [np.mean([r[f"cc_decode{s}"] for r in rows if r["method"] == m]) for s in subs] for m in meths}
        figs["linear_subs"] = subs
    runs_per_bench = {"factorcl": 20, "trifeature": 5, "linear": 5}
    tim = []
    for t in TASKS:
        for f in sorted(RESULTS.glob(f"contrastive_{t}_timing.json")):
            d = json.loads(f.read_text())
            for m in _methods_in(d["rows"]):
                rr = [r for r in d["rows"] if r["method"] == m and "cpu_time" in r]
                if rr and m != "raw input":
                    ct = float(np.mean([r["cpu_time"] for r in rr]))
                    tim.append(f"| {t} | {m} | {len(rr)} | {ct:.1f} | {float(np.mean([r['fit_time'] for r in rr])):.1f} | "
                               f"{runs_per_bench[t]} | {ct * runs_per_bench[t] / 60:.1f} |")
    if tim:
        lines += ["## CPU time per method (seed 0 only, one torch / BLAS thread)", "",
                  "CPU seconds of the process per fit (`time.process_time`, insensitive to the machine's load, "
                  "unlike the wall times above), and the CPU minutes a full benchmark (all seeds, all shares) "
                  "needs per method; with one thread that is also the wall time on an idle core.", "",
                  "| task | method | fits timed | CPU s per fit | wall s per fit | fits per benchmark | CPU min per benchmark |",
                  "|---|---|---|---|---|---|---|"] + tim + [""]
    meta_lines = []
    for f in sorted(RESULTS.glob("contrastive_*.json")):
        if "_quick" in f.name:
            continue
        meta = json.loads(f.read_text())["meta"]
        meta_lines.append(f"- `{f.name}`: {meta.get('seeds_done', meta['seeds'])} seed(s), wall time {meta['wall_time']:.0f} s, torch {meta['torch']} "
                          f"with {meta['torch_threads']} thread, {meta['cpu_count']} CPUs, load average at end "
                          f"{tuple(round(x, 1) for x in meta['load_avg'])}, {meta['date']}")
    lines += ["## Runs", ""] + meta_lines + [""]
    text = "\n".join(lines)
    (RESULTS / "contrastive.md").write_text(text)
    (REPORTS / "contrastive_tables.md").write_text(text)
    _figure(figs)
    print(text)


def _figure(figs):
    if not figs:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if "factorcl" in figs:
        ax = axes[0]
        for m, curve in figs["factorcl"].items():
            c = np.array(curve)
            ax.errorbar(c[:, 0], c[:, 1], yerr=c[:, 2], marker="o", capsize=3, label=m)
        ax.set_xlabel("share of unique information in the label")
        ax.set_ylabel("test accuracy")
        ax.set_title("FactorCL synthetic (+ noise)")
        ax.legend(fontsize=8)
    if "trifeature" in figs:
        ax = axes[1]
        ms = list(figs["trifeature"])
        x = np.arange(3)
        w = 0.8 / len(ms)
        for i, m in enumerate(ms):
            ax.bar(x + i * w, figs["trifeature"][m], w, label=m)
        ax.axhline(0.5, color="k", lw=0.5, ls="--")
        ax.set_xticks(x + 0.4 - w / 2, ["R", "U", "Syn"])
        ax.set_ylabel("balanced accuracy")
        ax.set_title("vector Trifeature")
        ax.legend(fontsize=7)
    if "linear" in figs:
        ax = axes[2]
        subs = figs["linear_subs"]
        ms = list(figs["linear"])
        x = np.arange(len(subs))
        w = 0.8 / len(ms)
        for i, m in enumerate(ms):
            ax.bar(x + i * w, figs["linear"][m], w, label=m)
        ax.set_xticks(x + 0.4 - w / 2, subs)
        ax.set_ylabel("mean canonical correlation with z_S")
        ax.set_title("linear hierarchical model: block recovery")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(REPORTS / "contrastive.png", dpi=120)


if __name__ == "__main__":
    main()
