"""Diagnostics of the Trifeature synergy gap (issue 14): is the Syn label learnable at this size,
is the linear probe the limiting part, and which COrAL settings move Syn. Pilot seed only (5).

Usage (from the repository root, one thread, nice 19)::

    python reports/contrastive/diag_synergy.py learnability
    python reports/contrastive/diag_synergy.py fit --method COrAL --epochs 20 [--set d=128,mask_ratio=0.5] [--tag x]
        [--n-train 10000] [--unbiased] [--faithful] [--light]
    python reports/contrastive/diag_synergy.py fit --method COrAL --epochs 20 --set pos_embedding=sincos,decay_1d=False

``--set`` values ``True`` / ``False`` are read as booleans, integers and floats as numbers, the
rest as strings. ``--faithful`` predates COrAL's ``pos_embedding`` and ``decay_1d`` options and
patches the package at run time; prefer the options.

Rows are appended to ``benchmarks/results/contrastive_synergy_diag.json`` (pilots: never judged).
Probes of one representation (all fitted on the labelled ``train`` split, tuned on ``val``):

- ``lin``: the benchmark's probe (standardised features, sklearn L2 logistic, C on a grid by
  validation balanced accuracy, test balanced accuracy);
- ``official``: the official probe (``evaluation/linear_probe.py`` of COrAL / CoMM): raw features,
  torch L-BFGS logistic regression (100 iterations) with penalty 0.5 ||W|| / C, C swept 1e-6..1e6
  then refined around the best, by validation macro accuracy, final fit on train + val;
- ``official_leak``: the same, but with the test split as its validation split, as
  ``main_trifeature.py`` calls it (its val and test loaders are the same set): C chosen on test and
  the final probe fitted on train + test (reported to measure the leak, never used for a target);
- ``mlp``: an MLP probe (2 x 256) on the representation, early-stopped on validation (is the
  synergy there, but not linearly?);
- ``lin_s``, ``lin_u``: the benchmark's probe on the fused part s only and on the unique parts only.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from math import log10  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = ROOT / "benchmarks" / "results" / "contrastive_synergy_diag.json"


def _task(seed, biased=True, **sizes):
    import bench_contrastive as B
    from hcl_stats.contrastive.tasks import trifeature_vectors

    seq = np.random.SeedSequence(B.MASTER_SEED).spawn(seed + 1)[seed]
    s = {k: v for k, v in B.TRIFEATURE_BUDGET.items() if k.startswith("n_")}
    s.update(sizes)
    return trifeature_vectors(random_state=int(seq.generate_state(1)[0]), biased_pretrain=biased, **s)


def _torch_logreg(Z, y, C, n_classes, max_iter=100):
    import torch

    lin = torch.nn.Linear(Z.shape[1], n_classes)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), line_search_fn="strong_wolfe", max_iter=max_iter)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(Z), y) + (1.0 / C) * 0.5 * lin.weight.norm(p=2)
        loss.backward()
        return loss

    opt.step(closure)
    return lin


def official_probe(Ztr, ytr, Zva, yva, Zte, yte):
    """The official linear probe (see the module docstring); returns test macro accuracy and C."""
    import torch
    from sklearn.metrics import balanced_accuracy_score

    T = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    L = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
    ztr, zva, zte, tr_y = T(Ztr), T(Zva), T(Zte), L(ytr)
    k = int(max(ytr.max(), yva.max(), yte.max()) + 1)
    cache = {}

    def acc(C):
        if C not in cache:
            with torch.no_grad():
                pred = _torch_logreg(ztr, tr_y, C, k)(zva).argmax(1).numpy()
            cache[C] = balanced_accuracy_score(yva, pred)
        return cache[C]

    coarse = [1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6]
    best = max(coarse, key=acc)
    costs = [c for c in np.logspace(log10(best) - 2, log10(best) + 2, 29).tolist() if 1e-6 <= c <= 1e6]
    while len(costs) > 1:
        c25, c50, c75 = costs[len(costs) // 4], costs[len(costs) // 2], costs[-len(costs) // 4]
        a25, a50, a75 = acc(c25), acc(c50), acc(c75)
        m = max(a25, a50, a75)
        costs = costs[: len(costs) // 2] if m == a25 else costs[len(costs) // 2:] if m == a75 else costs[len(costs) // 4: -len(costs) // 4]
    best = max(cache, key=cache.get)
    lin = _torch_logreg(torch.cat([ztr, zva]), torch.cat([tr_y, L(yva)]), best, k)
    with torch.no_grad():
        pred = lin(zte).argmax(1).numpy()
    return float(balanced_accuracy_score(yte, pred)), float(best)


def mlp_probe(Ztr, ytr, Zva, yva, Zte, yte, seed=0, max_epochs=300, patience=30, return_pred=False):
    """MLP (2 x 256) on standardised features, Adam lr 1e-3, batch 64, epoch chosen on validation
    (the benchmark's MLP bound, ``bench_contrastive.fit_mlp_probe``, on any features); test
    balanced accuracy (or test predictions)."""
    from sklearn.metrics import balanced_accuracy_score

    import bench_contrastive as B

    Ztr, Zva, Zte = B._standardise(Ztr, Zva, Zte)
    k = int(max(ytr.max(), yva.max(), yte.max()) + 1)
    pred, _ = B.fit_mlp_probe(Ztr, ytr, Zva, yva, Zte, k, seed, max_epochs, patience)
    return pred if return_pred else float(balanced_accuracy_score(yte, pred))


def _append(row):
    rows = json.loads(OUT.read_text()) if OUT.exists() else []
    rows.append(row)
    OUT.write_text(json.dumps(rows, indent=1, default=float))
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}, default=float), flush=True)


def learnability(seed):
    """Syn from the raw inputs: the benchmark's MLP bound with 2000, 10000 (official probe size) and
    20000 labelled rows; and a two-stage decoder that knows pi: texture_1 from x1 and colour_2 from x2
    by MLP classifiers, Syn = [colour_2 == pi(texture_1)]."""
    import bench_contrastive as B
    from sklearn.metrics import balanced_accuracy_score

    for n_train in (2000, 10000, 20000):
        c0 = time.process_time()
        t = _task(seed, n_pretrain=10, n_train=n_train)
        acc, ep = B.mlp_bound(t, "Syn", seed)
        _append(dict(kind="learnability", seed=seed, probe="MLP bound (raw inputs)", n_train=n_train, Syn=acc, epochs=ep,
                     cpu=time.process_time() - c0))
    for n_train in (2000, 10000):
        c0 = time.process_time()
        t = _task(seed, n_pretrain=10, n_train=n_train)
        pi = t.info["bijection"]
        preds = {}
        for key, m in (("texture1", 0), ("colour2", 1)):
            lab = {sp: getattr(t, sp).latents[key][:, 0] for sp in ("train", "val", "test")}
            preds[key] = mlp_probe(t.train.Xs[m], lab["train"], t.val.Xs[m], lab["val"], t.test.Xs[m], lab["test"],
                                   seed=seed, return_pred=True)
        syn_hat = (preds["colour2"] == pi[preds["texture1"]]).astype(int)
        _append(dict(kind="learnability", seed=seed, probe="two-stage (knows pi)", n_train=n_train,
                     Syn=float(balanced_accuracy_score(t.test.y["Syn"], syn_hat)),
                     acc_texture1=float(np.mean(preds["texture1"] == t.test.latents["texture1"][:, 0])),
                     acc_colour2=float(np.mean(preds["colour2"] == t.test.latents["colour2"][:, 0])),
                     cpu=time.process_time() - c0))


def _sincos(n_tokens, d):
    """Fixed 1-D sine-cosine position embeddings (1, n_tokens, d), as the official
    ``build_1d_sincos_posemb`` (``modules/input_adapters.py``)."""
    import torch

    pos = torch.arange(n_tokens, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(np.log(10000.0) / d))
    pe = torch.zeros(n_tokens, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe[None]


def _faithful():
    """Two small deviations of our COrAL / CoMM from the official code, switched to the official
    behaviour for a pilot without touching the package: fixed (not learned) sine-cosine position
    embeddings of the tokens (official ``PatchedInputAdapter(sincos_pos_emb=True,
    learnable_pos_emb=False)``), and no weight decay on 1-d parameters (biases, norms, the pooling
    query; official ``utils.set_weight_decay_per_param``)."""
    import torch

    from hcl_stats.contrastive.deep import coral

    orig_build = coral._FusionBase._build

    def build(self, n_features, n_classes):
        net = orig_build(self, n_features, n_classes)
        toks = list(net.tok_s) + (list(net.tok_u) if net.unique_path else [])
        for tok in toks:
            tok.pos = torch.nn.Parameter(_sincos(tok.n_tokens, tok.pos.shape[-1]), requires_grad=False)
        return net

    coral._FusionBase._build = build
    orig_adamw = torch.optim.AdamW

    def adamw(params, lr, weight_decay):
        params = [p for p in params if p.requires_grad]
        return orig_adamw([{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                           {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=lr)

    torch.optim.AdamW = adamw


def fit(seed, method, epochs, overrides, tag, biased=True, n_train=None, faithful=False, light=False):
    import torch

    import bench_contrastive as B
    from hcl_stats.contrastive.deep import COrAL, CoMM, Cross

    torch.set_num_threads(1)
    if faithful:
        _faithful()
    t = _task(seed, biased=biased, **({} if n_train is None else {"n_train": n_train}))
    kw = dict(epochs=epochs, batch_size=64, lr=1e-4, optimizer="adamw", weight_decay=1e-3, patience=None, random_state=seed)
    kw.update(overrides)
    if method == "Cross":  # the benchmark's Cross on Trifeature
        kw.update(hidden=(128, 128), n_components=64, proj_dim=128)
    m = {"COrAL": COrAL, "CoMM": CoMM, "Cross": Cross}[method](**kw)

    def monitor(model, ep, step):
        Ztr, Zva = model.transform(t.train.Xs), model.transform(t.val.Xs)
        return {lab: B.fixed_probe(Ztr, t.train.y[lab], Zva, t.val.y[lab]) for lab in ("R", "U", "Syn")}

    c0 = time.process_time()
    m.fit(t.pretrain.Xs, monitor=monitor, monitor_every=5)
    cpu_fit = time.process_time() - c0
    Z = {k: m.transform(getattr(t, k).Xs) for k in ("train", "val", "test")}
    y = {k: getattr(t, k).y["Syn"] for k in ("train", "val", "test")}
    args = lambda Zs: (Zs["train"], y["train"], Zs["val"], y["val"], Zs["test"], y["test"])  # noqa: E731
    row = dict(kind="fit", seed=seed, method=method, tag=tag, pretraining="biased" if biased else "unbiased",
               overrides=overrides, faithful=faithful, n_train=t.train.n_samples, steps=m.n_steps_, cpu_fit=cpu_fit, dim=int(Z["test"].shape[1]),
               curve=[(int(st), v) for _, st, v in m.history_["monitor"]])
    row["lin"] = B.logistic_probe(*args(Z))[0]
    for lab in ("R", "U"):
        row[f"lin_{lab}"] = B.logistic_probe(Z["train"], t.train.y[lab], Z["val"], t.val.y[lab], Z["test"], t.test.y[lab])[0]
    if not light:
        row["official"], row["official_C"] = official_probe(*args(Z))
        leak = (Z["train"], y["train"], Z["test"], y["test"], Z["test"], y["test"])
        row["official_leak"] = official_probe(*leak)[0]
        row["mlp"] = mlp_probe(*args(Z), seed=seed)
    d = getattr(m, "d", Z["test"].shape[1])
    if method == "COrAL":
        row["lin_s"] = B.logistic_probe(*args({k: v[:, :d] for k, v in Z.items()}))[0]
        row["lin_u"] = B.logistic_probe(*args({k: v[:, d:] for k, v in Z.items()}))[0]
        if not light:
            row["mlp_s"] = mlp_probe(*args({k: v[:, :d] for k, v in Z.items()}), seed=seed)
        for lab in ("R", "U"):
            for part, sl in (("s", slice(0, d)), ("u", slice(d, None))):
                row[f"lin_{lab}_{part}"] = B.logistic_probe(Z["train"][:, sl], t.train.y[lab], Z["val"][:, sl], t.val.y[lab],
                                                            Z["test"][:, sl], t.test.y[lab])[0]
    row["cpu_total"] = time.process_time() - c0
    _append(row)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["learnability", "fit"])
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--method", default="COrAL")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--set", default="")
    ap.add_argument("--tag", default="")
    ap.add_argument("--unbiased", action="store_true")
    ap.add_argument("--light", action="store_true", help="linear probes only (no official / MLP probes)")
    ap.add_argument("--faithful", action="store_true", help="fixed sin-cos position embeddings, no decay on 1-d parameters")
    ap.add_argument("--n-train", type=int, default=None, help="labelled rows of the probes (default: the budget's 2000)")
    a = ap.parse_args()
    ov = {}
    for kv in filter(None, a.set.split(",")):
        k, v = kv.split("=")
        ov[k] = (v == "True" if v in ("True", "False") else int(v) if v.lstrip("-").isdigit()
                 else float(v) if v.replace(".", "", 1).replace("e-", "", 1).isdigit() else v)
    if a.what == "learnability":
        learnability(a.seed)
    else:
        fit(a.seed, a.method, a.epochs, ov, a.tag, biased=not a.unbiased, n_train=a.n_train, faithful=a.faithful, light=a.light)


if __name__ == "__main__":
    main()
