"""Real-data studies: the code of the UCI Multiple Features study (structure selection over the 6
modalities, HCL fit, variance explained per modality x subset, and 10-class classification from
the representation against concatenated PCA, per-modality PCA, JIVE, GFA and the linear
contrastive HCL at equal dimension; plus the effect of dropping one modality, and the default
path ``HCL("auto")``).

The study is a script outside the package that calls :func:`main` with its config::

    OPENBLAS_NUM_THREADS=1 python simulations/real_data/multiple_features.py simulations/configs/multiple_features.toml

(``python -m hcl_stats.studies.multiple_features CONFIG``, the old entry point, still works for
one release with a FutureWarning.)

Writes ``results.json`` (everything measured), ``REPORT.md`` and the figures to ``out_dir``; the
figures and the report are drawn from ``results.json`` only (``--report-only`` redraws them).

Protocol. Features are standardised (config ``data.standardize``). The structure is selected once
from all 2000 samples without the labels (unsupervised, so the test rows' features are seen by the
selection; every model is then fitted on the training rows of each split only). Splits: repeated
stratified train/test splits; on each, the representation is fitted on the training rows, features
are standardised with the training mean/sd, and a multinomial logistic regression is fitted with C
chosen on a stratified validation part of the training rows (largest validation accuracy), refitted
on all training rows and scored on the test rows (accuracy and macro-F1).
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["SHORT", "DROP_METHODS", "representations", "classify", "run", "run_default", "report_default", "figures",
           "report", "write", "main"]

SHORT = ("fou", "fac", "kar", "mor", "pix", "zer")
DROP_METHODS = ("HCL", "HCL (posterior mean)", "concatenated PCA")


def _load_config(path):
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib
    with open(path, "rb") as fh:
        return tomllib.load(fh)


# -- representations ---------------------------------------------------------------------------
def _split_budget(total, weights):
    w = np.asarray(weights, float)
    w = w / w.sum() * total
    k = np.maximum(1, np.floor(w).astype(int))
    while k.sum() < total:
        k[np.argmax(w - k)] += 1
    while k.sum() > total:
        k[np.argmax(k)] -= 1
    return [int(v) for v in k]


def representations(structure, cfg, compact, filter_methods=True):
    """name -> function(Xtr, Xte) returning (Ztr, Zte), all of dimension K = structure.n_factors
    (except the raw-feature reference)."""
    from ..baselines import JIVE, NaiveSVD, PerModalityPCA
    from ..model import HCL

    K = structure.n_factors
    M = structure.n_modalities
    d = [sum(r for s, r in structure.ranks.items() if m in s) for m in range(M)]
    shared = sum(r for s, r in structure.ranks.items() if len(s) >= 2)
    spec = [structure.ranks.get((m,), 0) for m in range(M)]
    fitcfg = cfg["fit"]

    def hcl(Xtr, Xte):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = HCL(structure, method=fitcfg["method"], identifiability=fitcfg["identifiability"]).fit(Xtr)
        return est.transform(Xtr), est.transform(Xte)

    def hcl_posterior(Xtr, Xte, method=None, max_iter=None):
        from ..representation import represent

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = HCL(structure, method=method or fitcfg["method"], identifiability=fitcfg["identifiability"],
                      max_iter=max_iter).fit(Xtr)
        return represent(est, Xtr, kind="posterior"), represent(est, Xte, kind="posterior")

    def hcl_ml_posterior(Xtr, Xte):
        return hcl_posterior(Xtr, Xte, method="ml", max_iter=int(fitcfg.get("ml_max_iter", 300)))

    def concat_pca(Xtr, Xte):
        est = NaiveSVD(K).fit(Xtr)
        return est.transform(Xtr), est.transform(Xte)

    def per_mod(Xtr, Xte):
        ks = _split_budget(K, d)
        ks = [min(k, X.shape[1]) for k, X in zip(ks, Xtr)]
        est = PerModalityPCA(ks).fit(Xtr)
        return est.transform(Xtr), est.transform(Xte)

    def jive(Xtr, Xte):
        est = JIVE(shared, spec, tol=1e-6, max_iter=300).fit(Xtr)
        return est.transform(Xtr), est.transform(Xte)

    def gfa(Xtr, Xte):
        from cca_zoo.probabilistic import GFA

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = GFA(n_components=K, drop_k=False, random_state=0, max_iter=int(cfg["peers"]["gfa_max_iter"]),
                    n_posterior_samples=1).fit(Xtr)
        from ..representation import paper_encoder_from_loadings

        W = np.vstack(g.weights_)
        mu = np.concatenate([X.mean(0) for X in Xtr])
        C = paper_encoder_from_loadings(W)  # the paper's encoder (W^T W)^{-1} W^T, as for HCL
        return (np.hstack(Xtr) - mu) @ C.T, (np.hstack(Xte) - mu) @ C.T

    def contrastive(Xtr, Xte):
        from ..contrastive import LinearContrastiveHCL

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = LinearContrastiveHCL(structure, init="spectral", random_state=0).fit(Xtr)
        return est.transform(Xtr), est.transform(Xte)

    def raw(Xtr, Xte):
        return np.hstack(Xtr), np.hstack(Xte)

    reps = {"HCL": hcl, "HCL (posterior mean)": hcl_posterior, "concatenated PCA": concat_pca,
            "per-modality PCA": per_mod, "JIVE": jive}
    if compact:
        reps["HCL (ml fit, posterior mean)"] = hcl_ml_posterior
        try:
            import cca_zoo  # noqa: F401
            reps["GFA (cca-zoo)"] = gfa
        except ImportError:
            pass
        if cfg["peers"].get("contrastive", True):
            reps["linear contrastive HCL"] = contrastive
    reps["raw features (reference)"] = raw
    allowed = cfg["selection"].get("compact_methods" if compact else "full_methods") if filter_methods else None
    if allowed is not None:
        reps = {k: v for k, v in reps.items() if k in allowed}
    return reps


# -- classification -----------------------------------------------------------------------------
def classify(Ztr, ytr, Zte, yte, ccfg, random_state):
    """Multinomial logistic regression from a representation: C chosen on a stratified validation
    part of the training rows (``ccfg["val_size"]``, split with ``random_state``), refitted on all
    training rows, scored on the test rows. Returns dict with ``accuracy``, ``macro_f1`` and ``C``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def model(C):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=int(ccfg["max_iter"])))

    itr, iva = train_test_split(np.arange(len(ytr)), test_size=ccfg["val_size"], stratify=ytr, random_state=random_state)
    best, bestC = -1.0, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for C in ccfg["C_grid"]:
            acc = accuracy_score(ytr[iva], model(C).fit(Ztr[itr], ytr[itr]).predict(Ztr[iva]))
            if acc > best:
                best, bestC = acc, C
        pred = model(bestC).fit(Ztr, ytr).predict(Zte)
    return dict(accuracy=float(accuracy_score(yte, pred)), macro_f1=float(f1_score(yte, pred, average="macro")), C=bestC)


def _splits(y, n_splits, test_size, random_state):
    from sklearn.model_selection import StratifiedShuffleSplit

    return list(StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=random_state).split(np.zeros(len(y)), y))


def _level(scfg):
    """The selection's test level: config key ``level`` (``alpha``, its old name, still read)."""
    return float(scfg["level"] if "level" in scfg else scfg["alpha"])


def _select(Xs, level, max_rank, names):
    from ..selection import select_structure

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        st = select_structure(Xs, level=level, max_rank=max_rank, names=names)
    return st, time.perf_counter() - t0, sorted({str(x.message) for x in w})


def _full_fit(Xs, structure, cfg):
    from ..model import HCL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = HCL(structure, method=cfg["fit"]["method"], identifiability=cfg["fit"]["identifiability"]).fit(Xs)
    r = est.results_
    return dict(variance_explained=r.variance_explained().tolist(), noise_share=r.noise_share().tolist(),
                noise_var=r.noise_var.tolist(), n_iter=int(r.n_iter), converged=bool(r.converged),
                fit_time=float(r.fit_time), summary_markdown=r.summary().as_markdown())


def run(cfg, log=print, on_progress=None):
    """Run the configured study (selection, fit, classification per representation, drop one).

    Parameters
    ----------
    cfg : dict
        The study config (``simulations/configs/multiple_features.toml``, read with tomllib).
    log : callable, default print
        Called with one line of progress text at a time.
    on_progress : callable or None
        Called with the partial results dict after every stage (to store partial results).

    Returns
    -------
    dict
        Everything measured (JSON-serialisable; :func:`write` stores it as ``results.json``).
    """
    from ..datasets import load_multiple_features

    seed = int(cfg["seed"])
    data = load_multiple_features(standardize=bool(cfg["data"]["standardize"]))
    Xs, y = data.Xs, data.y
    ccfg = cfg["classification"]
    scfg = cfg["selection"]
    # the configs' representation functions are built lazily per variant
    out = dict(config=cfg, modality_names=list(data.modality_names), short_names=list(SHORT),
               n_features=list(data.n_features), configs={}, drop_one={})
    splits = _splits(y, int(ccfg["n_splits"]), float(ccfg["test_size"]), seed)
    variants = [("compact", int(scfg["compact_max_rank"]))]
    if scfg.get("run_full", True):
        variants.append(("full", None))
    for vname, max_rank in variants:
        st, sel_time, sel_warn = _select(Xs, _level(scfg), max_rank, SHORT)
        log(f"[{vname}] selected K = {st.n_factors}, {st.n_subsets} subsets in {sel_time:.1f} s")
        res = dict(max_rank=max_rank, structure=st.to_dict(), K=st.n_factors, selection_time=sel_time,
                   selection_warnings=sel_warn, table=st.table(), full_fit=_full_fit(Xs, st, cfg), methods={})
        reps = representations(st, cfg, compact=(vname == "compact"))
        for mname, fn in reps.items():
            rows = []
            for i, (tr, te) in enumerate(splits):
                t0 = time.perf_counter()
                try:
                    Ztr, Zte = fn([X[tr] for X in Xs], [X[te] for X in Xs])
                except Exception as exc:  # a failing method is a result
                    rows.append(dict(split=i, error=f"{type(exc).__name__}: {exc}"))
                    log(f"[{vname}] {mname} split {i}: ERROR {exc}")
                    break
                t_rep = time.perf_counter() - t0
                r = classify(Ztr, y[tr], Zte, y[te], ccfg, seed + i)
                r.update(split=i, rep_time=t_rep, dim=int(Ztr.shape[1]))
                rows.append(r)
            res["methods"][mname] = rows
            if on_progress is not None:
                on_progress(out)
            acc = [r["accuracy"] for r in rows if "accuracy" in r]
            log(f"[{vname}] {mname}: accuracy {np.mean(acc) if acc else float('nan'):.4f} +- {np.std(acc, ddof=1) if len(acc) > 1 else 0:.4f}")
        out["configs"][vname] = res
        if on_progress is not None:
            on_progress(out)
        if vname == "compact":
            _drop_one(Xs, y, data, splits, cfg, out, log, on_progress)
    return out


def _drop_one(Xs, y, data, splits, cfg, out, log, on_progress):
    ccfg = cfg["classification"]
    scfg = cfg["selection"]
    seed = int(cfg["seed"])
    # drop one modality (compact selection on the 5 others; HCL vs concatenated PCA at equal K)
    n_drop = int(cfg["drop_one"]["n_splits"])
    dsplits = splits[:n_drop]
    for drop in [None] + list(range(len(Xs))):
        keep = [m for m in range(len(Xs)) if m != drop]
        Xk = [Xs[m] for m in keep]
        st, sel_time, _ = _select(Xk, _level(scfg), int(scfg["compact_max_rank"]), [SHORT[m] for m in keep])
        reps = representations(st, cfg, compact=True, filter_methods=False)
        entry = dict(K=st.n_factors, structure=st.to_dict(), methods={})
        for mname in DROP_METHODS:
            rows = []
            for i, (tr, te) in enumerate(dsplits):
                Ztr, Zte = reps[mname]([X[tr] for X in Xk], [X[te] for X in Xk])
                rows.append(classify(Ztr, y[tr], Zte, y[te], ccfg, seed + i))
            entry["methods"][mname] = rows
        key = "none" if drop is None else data.modality_names[drop]
        out["drop_one"][key] = entry
        if on_progress is not None:
            on_progress(out)
        log(f"[drop {key}] K = {st.n_factors}: HCL {np.mean([r['accuracy'] for r in entry['methods']['HCL']]):.4f}, "
            f"PCA {np.mean([r['accuracy'] for r in entry['methods']['concatenated PCA']]):.4f}")


# -- the default path: HCL("auto") with no options ------------------------------------------------
def run_default(cfg, log=print, on_progress=None):
    """The default path a new user runs: ``HCL("auto").fit(Xs)`` with no options, on the
    standardised and on the raw data; the stability of the selection over ``n_resamples``
    subsamples, the goodness-of-fit test, and classification from the posterior mean against
    concatenated PCA at the same K. Every warning raised is recorded."""
    from ..baselines import NaiveSVD
    from ..datasets import load_multiple_features
    from ..model import HCL
    from ..selection import select_structure

    dcfg = cfg.get("default", {})
    seed = int(cfg["seed"])
    ccfg = cfg["classification"]
    out = dict(config=cfg, short_names=list(SHORT), data={})
    for std in (True, False):
        data = load_multiple_features(standardize=std)
        Xs, y = data.Xs, data.y
        key = "standardized" if std else "raw"
        t0 = time.process_time()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            est = HCL("auto").fit(Xs)
        fit_cpu = time.process_time() - t0
        st = est.structure_
        ent = dict(K=st.n_factors, structure=st.to_dict(), table=st.table(), fit_cpu=fit_cpu,
                   finite=bool(np.all(np.isfinite(est.loadings_)) and np.all(np.isfinite(est.noise_var_features_))),
                   n_iter=int(est.n_iter_), converged=bool(est.converged_),
                   warnings=sorted({f"{x.category.__name__}: {x.message}" for x in w}),
                   runtime_warnings=sum(issubclass(x.category, RuntimeWarning) for x in w),
                   summary=est.summary().as_text(), selection_summary=est.selection_.summary().as_markdown())
        log(f"[default, {key}] K = {st.n_factors}, {st.n_subsets} subsets, {fit_cpu:.0f} s CPU; "
            f"{len(ent['warnings'])} distinct warnings, {ent['runtime_warnings']} RuntimeWarnings")
        if std:
            t0 = time.process_time()
            with warnings.catch_warnings(record=True) as w2:
                warnings.simplefilter("always")
                _, det = select_structure(Xs, return_details=True, n_resamples=int(dcfg.get("n_resamples", 50)),
                                          random_state=seed)
            stab = det.stability
            ent["stability"] = dict(n_resamples=stab.n_resamples, fraction=stab.fraction, agreement=stab.agreement,
                                    modal_frequency=stab.modal_frequency, stable=stab.stable,
                                    K=[None if s is None else s.n_factors for s in stab.structures],
                                    rank_frequencies={",".join(map(str, S)): {str(k): v for k, v in f.items()}
                                                      for S, f in stab.rank_frequencies.items()},
                                    summary=det.summary().as_markdown(), cpu=time.process_time() - t0,
                                    warned=any("unstable selection" in str(x.message) for x in w2))
            log(f"[default] stability: agreement {stab.agreement:.0%}, modal {stab.modal_frequency:.0%} "
                f"over {stab.n_resamples} subsamples ({ent['stability']['cpu']:.0f} s CPU)")
            if on_progress is not None:
                on_progress(out | {"data": out["data"] | {key: ent}})
            t0 = time.process_time()
            try:
                with warnings.catch_warnings(record=True) as w3:
                    warnings.simplefilter("always")
                    g = est.goodness_of_fit(max_iter=int(dcfg.get("gof_max_iter", 500)))
                ent["goodness_of_fit"] = dict(statistic=float(g.statistic), df=float(g.df), pvalue=float(g.pvalue),
                                              summary=g.summary().as_markdown(), cpu=time.process_time() - t0,
                                              warnings=sorted({str(x.message) for x in w3}))
                log(f"[default] goodness of fit: statistic {g.statistic:.1f} on {g.df:g} df, p = {g.pvalue:.3g}")
            except Exception as exc:  # a failing check is a result
                ent["goodness_of_fit"] = dict(error=f"{type(exc).__name__}: {exc}")
                log(f"[default] goodness of fit failed: {exc}")
            if on_progress is not None:
                on_progress(out | {"data": out["data"] | {key: ent}})
            splits = _splits(y, int(ccfg["n_splits"]), float(ccfg["test_size"]), seed)
            K = st.n_factors
            meth = {"HCL default (posterior mean)": [], "concatenated PCA": []}
            for i, (tr, te) in enumerate(splits):
                Xtr, Xte = [X[tr] for X in Xs], [X[te] for X in Xs]
                t0 = time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    h = HCL(st, identifiability="warn").fit(Xtr)
                r = classify(h.posterior_mean(Xtr), y[tr], h.posterior_mean(Xte), y[te], ccfg, seed + i)
                r.update(split=i, rep_cpu=time.process_time() - t0, dim=K)
                meth["HCL default (posterior mean)"].append(r)
                pca = NaiveSVD(K).fit(Xtr)
                r = classify(pca.transform(Xtr), y[tr], pca.transform(Xte), y[te], ccfg, seed + i)
                r.update(split=i, dim=K)
                meth["concatenated PCA"].append(r)
                log(f"[default] split {i}: HCL {meth['HCL default (posterior mean)'][-1]['accuracy']:.4f}, "
                    f"PCA {r['accuracy']:.4f}")
            ent["classification"] = meth
        out["data"][key] = ent
        if on_progress is not None:
            on_progress(out)
    s_, r_ = out["data"]["standardized"], out["data"]["raw"]
    out["same_structure_raw_vs_standardized"] = s_["structure"] == r_["structure"]
    return out


def report_default(res) -> str:
    """The markdown report of the default-path study from the results dict ``res`` of :func:`run_default`."""
    d = res["data"]["standardized"]
    raw = res["data"]["raw"]
    L = ["## The default path: `HCL(\"auto\").fit(Xs)`, no options", "",
         "What a new user gets: the structure selected with the default noise model (one noise variance per feature), "
         "the default fit (maximum likelihood on the shrunk covariance), the selection's stability over subsamples, "
         "the goodness-of-fit test, and classification from the posterior mean against concatenated PCA at the same K "
         "(the structure is selected once on all rows without labels; each split refits HCL on its training rows).", "",
         "| data | K | subsets | CPU (s) of HCL(\"auto\").fit | finite output | RuntimeWarnings | converged |",
         "|---|---|---|---|---|---|---|"]
    for key in ("standardized", "raw"):
        e = res["data"][key]
        L.append(f"| {key} | {e['K']} | {len(e['structure']['ranks'])} | {e['fit_cpu']:.0f} | {e['finite']} | "
                 f"{e['runtime_warnings']} | {e['converged']} ({e['n_iter']} iterations) |")
    L += ["", f"Same structure selected on the raw and the standardised data: **{res['same_structure_raw_vs_standardized']}** "
          "(the default noise model is scale-equivariant).", "", "Warnings of the default fit (standardised data):", ""]
    L += [f"- {w[:600]}" for w in d["warnings"]] or ["- none"]
    L += ["", "```", d["table"], "```", ""]
    st = d.get("stability")
    if st:
        L += [f"### Stability over {st['n_resamples']} subsamples of {st['fraction']:.0%} of the rows", "",
              f"The full-data structure was selected in **{st['agreement']:.0%}** of the subsamples; the most frequent "
              f"structure in {st['modal_frequency']:.0%}. The instability warning fired: **{st['warned']}**. "
              f"K over the subsamples: median {np.median([k for k in st['K'] if k is not None]):.0f}, range "
              f"{min(k for k in st['K'] if k is not None)}-{max(k for k in st['K'] if k is not None)}. "
              f"({st['cpu']:.0f} s CPU.)", "", st["summary"], ""]
    g = d.get("goodness_of_fit")
    if g:
        L += ["### Goodness of fit", ""]
        L += ([f"Failed: {g['error']}", ""] if "error" in g else [g["summary"], ""])
    c = d.get("classification")
    if c:
        L += ["### Classification at the same K", "", "| representation | dim | accuracy | macro-F1 |", "|---|---|---|---|"]
        for m, rows in c.items():
            a, sa, _ = _ms(rows, "accuracy")
            f, sf, _ = _ms(rows, "macro_f1")
            L.append(f"| {m} | {rows[0]['dim']} | {a:.4f} +- {sa:.4f} | {f:.4f} +- {sf:.4f} |")
        L.append("")
    L += ["Selection evidence (standardised data):", "", d["selection_summary"], ""]
    return "\n".join(L)


# -- report (from stored results only) ---------------------------------------------------------
def _ms(rows, key):
    v = np.array([r[key] for r in rows if key in r])
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def figures(res, out_dir):
    """Draw the study's figures from the results dict ``res`` into ``out_dir`` (PNG files)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_structure_heatmap
    from ..structure import Structure

    out_dir = Path(out_dir)
    for vname, v in res["configs"].items():
        st = Structure.from_dict(v["structure"])
        ve = np.array(v["full_fit"]["variance_explained"])
        fig, ax = plt.subplots(figsize=(2.5 + 0.55 * st.n_subsets, 3.6))
        plot_structure_heatmap(ve, st, ax=ax, annotate=st.n_subsets <= 12,
                               title=f"Multiple Features, {vname} selection (K = {st.n_factors}): share of each modality's variance")
        fig.tight_layout()
        fig.savefig(out_dir / f"structure_{vname}.png", dpi=110)
        plt.close(fig)
    # accuracy
    names = list(res["configs"])
    fig, axes = plt.subplots(1, len(names), figsize=(7 * len(names), 4.2), squeeze=False)
    for ax, vname in zip(axes[0], names):
        meth = res["configs"][vname]["methods"]
        labels, mu, sd = [], [], []
        for m, rows in meth.items():
            a, s, n = _ms(rows, "accuracy")
            if n:
                labels.append(m)
                mu.append(a)
                sd.append(s)
        ax.barh(range(len(labels)), mu, xerr=sd, color=["C3" if lab.startswith("HCL") else "C0" for lab in labels])
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels)
        lo = max(0.0, min(mu) - 0.05)
        ax.set_xlim(lo, 1.0)
        ax.set_xlabel("test accuracy (mean +- sd over splits)")
        ax.set_title(f"{vname}: K = {res['configs'][vname]['K']}")
        for i, (a, s) in enumerate(zip(mu, sd)):
            ax.text(a + s + 0.002, i, f"{a:.3f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy.png", dpi=110)
    plt.close(fig)
    # drop one
    keys = list(res["drop_one"])
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(keys))
    for j, (m, c) in enumerate(zip(DROP_METHODS, ("C3", "C1", "C0"))):
        vals = [_ms(res["drop_one"][k]["methods"].get(m, []), "accuracy") for k in keys]
        ax.bar(x + (j - 1) * 0.27, [v[0] for v in vals], 0.27, yerr=[v[1] for v in vals], color=c, label=m)
    ax.set_xticks(x)
    ax.set_xticklabels(["none dropped" if k == "none" else f"drop {k}" for k in keys], rotation=20)
    allv = [_ms(res["drop_one"][k]["methods"].get(m, []), "accuracy")[0] for k in keys for m in DROP_METHODS]
    allv = [v for v in allv if np.isfinite(v)] or [0.5]
    ax.set_ylim(max(0.0, min(allv) - 0.05), 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title("Dropping one modality (compact selection redone on the other five; equal K)")
    ax.legend(loc="lower left", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "drop_one.png", dpi=110)
    plt.close(fig)


def report(res):
    """The study's REPORT.md text (markdown) from the results dict ``res`` of :func:`run`."""
    cfg = res["config"]
    cc = cfg["classification"]
    L = ["# UCI Multiple Features: hierarchical structure and classification from the representation", "",
         "Generated by `python simulations/real_data/multiple_features.py simulations/configs/multiple_features.toml` "
         "from `results.json` (all numbers measured in that run).", "",
         "## Data and standardisation", "",
         "2000 handwritten digits (10 classes x 200), 6 modalities: " +
         ", ".join(f"{s} = {n} ({p})" for s, n, p in zip(res["short_names"], res["modality_names"], res["n_features"])) +
         ". Licence CC BY 4.0; see `hcl_stats/datasets/README.md`.", "",
         f"- Every feature is centred and scaled to unit variance (standardize = {cfg['data']['standardize']}): the six feature "
         "sets are on unrelated scales (integer pixel counts 0-6, morphological features spanning orders of magnitude).",
         "- The model's noise is then one variance for all features (HCL paper mode), which the standardisation makes at "
         "least comparable across modalities.",
         "- Structure selection (`hcl_stats.select_structure`, level = "
         f"{_level(cfg['selection'])}) is run once on all 2000 samples without labels; every representation is then fitted "
         "on the training rows of each split only.", "",
         "## Structure selection", ""]
    for vname, v in res["configs"].items():
        cap = f"max_rank = {v['max_rank']} per modality" if v["max_rank"] else "no rank cap (the default)"
        L += [f"### {vname} ({cap}): K = {v['K']} factors in {len(v['structure']['ranks'])} subsets "
              f"(selection {v['selection_time']:.1f} s)", "", "```", v["table"], "```", ""]
        if v["selection_warnings"]:
            L += ["Warnings from the selection:", ""] + [f"- {w[:400]}" for w in v["selection_warnings"]] + [""]
        ff = v["full_fit"]
        L += [f"HCL fit on all samples: {ff['n_iter']} iterations, converged {ff['converged']}, {ff['fit_time']:.1f} s; "
              f"noise share per modality {', '.join(f'{s} {x:.2f}' for s, x in zip(res['short_names'], ff['noise_share']))}.", "",
              f"![variance explained, {vname}](structure_{vname}.png)", ""]
    L += ["## Classification from the representation", "",
          f"{cc['n_splits']} repeated stratified splits (test {cc['test_size']:.0%}); multinomial logistic regression on "
          f"standardised representations, C in {cc['C_grid']} chosen on a stratified validation part ({cc['val_size']:.0%}) "
          "of the training rows, refitted on all training rows. Mean +- sd over splits. Equal dimension: concatenated PCA "
          "uses K components; per-modality PCA splits K across modalities in proportion to each modality's selected signal "
          "rank; JIVE gets joint rank = the total rank of HCL's shared subsets and individual ranks = HCL's specific ranks; "
          "GFA (cca-zoo) uses K components without pruning; the linear contrastive HCL uses HCL's structure. "
          "'HCL' is the paper encoder (W^T W)^-1 W^T x of the default (paper-mode) fit; 'posterior mean' is "
          "E[z | x] = W^T Sigma^-1 x under the fitted model (hcl_stats.representation); 'ml fit' is HCL(method='ml') with "
          f"at most {cfg['fit'].get('ml_max_iter', 300)} iterations.", ""]
    for vname, v in res["configs"].items():
        L += [f"### {vname}: K = {v['K']}", "", "| representation | dim | accuracy | macro-F1 | fit time per split (s) |",
              "|---|---|---|---|---|"]
        for m, rows in v["methods"].items():
            err = [r["error"] for r in rows if "error" in r]
            a, sa, n = _ms(rows, "accuracy")
            f, sf, _ = _ms(rows, "macro_f1")
            t, _, _ = _ms(rows, "rep_time")
            dim = next((r["dim"] for r in rows if "dim" in r), "-")
            if n == 0:
                L.append(f"| {m} | - | failed: {err[0] if err else '?'} | - | - |")
            else:
                L.append(f"| {m} | {dim} | {a:.4f} +- {sa:.4f} | {f:.4f} +- {sf:.4f} | {t:.2f} |")
        L.append("")
    L += ["![accuracy](accuracy.png)", "", "## Dropping one modality", "",
          f"Compact selection redone on the remaining five modalities; HCL (paper encoder and posterior mean) vs concatenated PCA at the same K; "
          f"first {cfg['drop_one']['n_splits']} of the splits above.", "",
          "| dropped | K | HCL accuracy | HCL (posterior mean) accuracy | concatenated PCA accuracy |", "|---|---|---|---|---|"]
    for k, e in res["drop_one"].items():
        cells = []
        for m in DROP_METHODS:
            a, sa, n = _ms(e["methods"].get(m, []), "accuracy")
            cells.append(f"{a:.4f} +- {sa:.4f}" if n else "-")
        L.append(f"| {k} | {e['K']} | " + " | ".join(cells) + " |")
    L += ["", "![drop one modality](drop_one.png)", ""]
    return "\n".join(L)


def write(res, out_dir):
    """Store ``res`` as ``out_dir/results.json`` and write the figures and ``out_dir/REPORT.md`` from it
    (led by the default-path report when ``out_dir/default/results.json`` exists)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(res, indent=1, default=float))
    figures(res, out_dir)
    text = report(res)
    dfile = out_dir / "default" / "results.json"
    if dfile.exists():   # the default path leads; the configured (hand-tuned) study follows
        head, rest = text.split("\n", 1)
        text = (head + "\n\n" + report_default(json.loads(dfile.read_text())) + "\n"
                + "# The configured study (hand-tuned selection, paper-mode encoder)\n\n"
                + "Measured by the full run of this module (`results.json`, with the code version recorded in the "
                "repository history of that file); the default path above was run separately "
                "(`--default-path`, `default/results.json`).\n" + rest)
    (out_dir / "REPORT.md").write_text(text + "\n")


def main(argv=None):
    """Command line of the study: ``CONFIG [--report-only] [--out-dir DIR] [--default-path]``
    (see ``simulations/real_data/multiple_features.py``). Returns the exit status 0."""
    import argparse

    ap = argparse.ArgumentParser(description="UCI Multiple Features study")
    ap.add_argument("config")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--default-path", action="store_true",
                    help="run only the default-path study (HCL('auto'), no options) into <out_dir>/default/")
    a = ap.parse_args(argv)
    cfg = _load_config(a.config)
    out_dir = Path(a.out_dir or cfg["out_dir"])
    if a.default_path:
        from threadpoolctl import threadpool_limits

        ddir = out_dir / "default"
        ddir.mkdir(parents=True, exist_ok=True)

        def _partial_d(o):
            (ddir / "results.partial.json").write_text(json.dumps(o, indent=1, default=float))

        if not a.report_only:
            with threadpool_limits(limits=1):
                res = run_default(cfg, log=lambda s: print(s, flush=True), on_progress=_partial_d)
            (ddir / "results.json").write_text(json.dumps(res, indent=1, default=float))
        res = json.loads((ddir / "results.json").read_text())
        (ddir / "REPORT.md").write_text("# UCI Multiple Features with the default settings\n\n" + report_default(res) + "\n")
        return 0
    if a.report_only:
        res = json.loads((out_dir / "results.json").read_text())
    else:
        from threadpoolctl import threadpool_limits

        out_dir.mkdir(parents=True, exist_ok=True)

        def _partial(o):
            (out_dir / "results.partial.json").write_text(json.dumps(o, indent=1, default=float))

        with threadpool_limits(limits=1):
            res = run(cfg, log=lambda s: print(s, flush=True), on_progress=_partial)
    write(res, out_dir)
    return 0

