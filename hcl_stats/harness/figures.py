"""One function per figure, drawn only from stored rows (a figure never fits a model).

Each function takes the study config and its rows and returns a matplotlib Figure; :func:`save`
writes it as PNG and PDF. Error bands are +- 1.96 standard errors of the mean over replicates.
Rates are shown on log-log axes with the theoretical slope -1/2 drawn as a reference.
"""
from __future__ import annotations

import numpy as np

from .aggregate import aggregate, metric_keys, status_counts, x_key

__all__ = ["FIGURE_FUNCTIONS", "fig_recovery_blocks", "fig_recovery_overall", "fig_downstream", "fig_selection",
           "save", "method_label"]

_COLORS = {"naive_svd": "#7f7f7f", "init": "#ff7f0e", "paper": "#d62728", "slide": "#9467bd",
           "default": "#1f77b4", "oracle": "#2ca02c"}
_EXTRA = ["#8c564b", "#e377c2", "#17becf", "#bcbd22"]
_XLABEL = {"n_samples": "sample size n", "n_labelled": "labelled sample size m", "noise_var": "noise variance c",
           "signal": "loading scale", "rank": "rank r"}


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _color(method, i=0):
    return _COLORS.get(method, _EXTRA[i % len(_EXTRA)])


def _default_name(rows):
    for r in rows:
        if r["method"] == "default" and r.get("status") == "ok" and r.get("info", {}).get("method"):
            return r["info"]["method"]
    return None


def method_label(method, rows=()):
    base = {"naive_svd": "naive SVD", "init": "Schur initialisation", "paper": "paper mode (authors')",
            "slide": "SLIDE (true structure)", "oracle": "oracle (true W)"}.get(method, method)
    d = _default_name(rows) if rows else None
    if method == "default":
        base = f"HCL default ({d})" if d else "HCL default"
    elif d == method and any(r["method"] == "default" for r in rows):
        base += " = HCL default"
    return base


def _plain_ticks(ax, xvalues=None):
    """Plain numbers (0.5, 2, 30) instead of 5 x 10^-1 on log axes; on short ranges (less than
    ~1.5 decades) the minor ticks at 2 and 5 times a power of ten are labelled too."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}")

    def minor(v, _):
        if v <= 0:
            return ""
        mant = v / 10 ** math.floor(math.log10(v) + 1e-9)
        return f"{v:g}" if round(mant, 6) in (2.0, 5.0) else ""

    if xvalues is not None and 1 < len(xvalues) <= 8 and ax.get_xscale() == "log":
        from matplotlib.ticker import FixedLocator

        ax.xaxis.set_major_locator(FixedLocator(list(xvalues)))
        ax.xaxis.set_major_formatter(fmt)
        ax.xaxis.set_minor_formatter(NullFormatter())
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale != "log" or (axis is ax.xaxis and xvalues is not None and 1 < len(xvalues) <= 8):
            continue
        lo, hi = (ax.get_xlim() if axis is ax.xaxis else ax.get_ylim())
        axis.set_major_locator(LogLocator(base=10))
        axis.set_major_formatter(fmt)
        axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)))
        axis.set_minor_formatter(FuncFormatter(minor) if hi / max(lo, 1e-300) < 40 else NullFormatter())
        major = axis.get_major_ticks()
        if major:
            axis.set_tick_params(which="minor", labelsize=major[0].label1.get_fontsize())


_STYLE = {"init": ("--", "^")}


def _band(ax, a, color, label, ls=None, marker=None, method=None):
    """Mean line with a 95% band (+- 1.96 SE; on a log axis the band is mean * exp(+- 1.96 SE / mean),
    the delta-method interval of log(mean), which stays positive)."""
    dls, dmk = _STYLE.get(method, ("-", "o"))
    ls, marker = ls or dls, marker or dmk
    x, m, se = a["x"], a["mean"], np.nan_to_num(a["se"])
    if method == "oracle":  # a wide pale line underneath: estimators close to the oracle stay visible
        ax.plot(x, m, ls=ls, marker=marker, ms=5, lw=4.0, color=color, alpha=0.45, label=label, zorder=1)
    else:
        ax.plot(x, m, ls=ls, marker=marker, ms=3.5, lw=1.6, color=color, label=label, zorder=3 if method == "init" else 2)
    if ax.get_yscale() == "log":
        f = np.exp(1.96 * se / np.maximum(m, 1e-300))
        lo, hi = m / f, m * f
    else:
        lo, hi = m - 1.96 * se, m + 1.96 * se
    ax.fill_between(x, lo, hi, color=color, alpha=0.12, lw=0)


def _slope_ref(ax, x, y0, slope=-0.5, label="slope $-1/2$"):
    """A reference line of the given log-log slope through (x[0], y0)."""
    x = np.asarray([x[0], x[-1]], float)
    ax.plot(x, y0 * (x / x[0]) ** slope, color="black", ls=":", lw=1.3, label=label)


def _unavailable_note(rows):
    notes = []
    for (m, e), d in status_counts(rows).items():
        if d["ok"] == 0:
            notes.append(f"{method_label(m)}{'/' + e if e else ''}: {'unavailable' if d['unavailable'] else 'failed'}")
    return "; ".join(sorted(set(notes)))


def _n_reps(rows):
    return len({r["replicate"] for r in rows})


def _finish(fig, rows, title):
    note = _unavailable_note(rows)
    fig.suptitle(title + (f"\n(not shown: {note})" if note else ""), fontsize=11)
    return fig


def _methods_in(rows, cfg):
    """Methods with results; "default" is dropped when it is the same estimator as another listed
    method (its numbers are then identical and the curves would hide each other)."""
    ms = [m for m in cfg.methods if any(r["method"] == m and r.get("status") == "ok" for r in rows)]
    d = _default_name(rows)
    if "default" in ms and d in ms:
        ms.remove("default")
    return ms


def fig_recovery_blocks(cfg, rows):
    """Per-block relative Gram error ||W_mS W_mS^T - hat||_F / ||W_mS W_mS^T||_F against n, one panel per
    block (rows: modalities; columns: the subsets containing the modality), log-log, slope -1/2."""
    plt = _plt()
    x = x_key(cfg)
    keys = metric_keys(rows, "rel_gram")
    structure = cfg.structure(cfg.grid_points()[0])
    by_mod = {}
    for k in keys:
        lab = k[len("rel_gram["):-1]
        mname = lab.split("|")[0]
        by_mod.setdefault(mname, []).append(k)
    nrow = len(by_mod)
    ncol = max(len(v) for v in by_mod.values()) if by_mod else 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.1 * ncol, 2.6 * nrow + 0.9), squeeze=False, sharex=True)
    methods = _methods_in(rows, cfg)
    for i, (mname, ks) in enumerate(by_mod.items()):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(ks):
                ax.axis("off")
                continue
            ax.set_xscale("log")
            ax.set_yscale("log")
            agg = aggregate(rows, ks[j], x)
            for mi, meth in enumerate(methods):
                a = agg.get((meth, None))
                if a is not None:
                    _band(ax, a, _color(meth, mi), method_label(meth, rows), method=meth)
            ref = agg.get((methods[-1], None)) if methods else None
            if ref is not None and ref["x"].size > 1:
                _slope_ref(ax, ref["x"], ref["mean"][0] * 1.6)
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
            ax.set_title(f"block {ks[j][len('rel_gram['):-1]}", fontsize=9)
            ax.tick_params(which="both", labelsize=7)
            if j == 0:
                ax.set_ylabel("relative Gram error", fontsize=8)
            if i == nrow - 1:
                ax.set_xlabel(_XLABEL.get(x, x), fontsize=8)
    xv = sorted({pt[x] for pt in cfg.grid_points()})
    for ax in axes.ravel():
        if ax.axison:
            _plain_ticks(ax, xv)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.5", ls="--", lw=0.8))
    labels.append("error of the zero estimator")
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 0.93))
    return _finish(fig, rows, f"{cfg.name}: per-block loading recovery ({structure.n_factors} factors, "
                              f"p = {tuple(cfg.grid_points()[0]['n_features'])}, c = {cfg.grid_points()[0]['noise_var']:g}; "
                              f"mean $\\pm$ 1.96 SE over {_n_reps(rows)} replicates)")


def fig_recovery_overall(cfg, rows):
    """Overall relative Gram error, mean per-block relative error and noise-variance error against n."""
    plt = _plt()
    x = x_key(cfg)
    panels = [("rel_overall", "overall relative Gram error\n$\\|\\hat W\\hat W^T - WW^T\\|_F / \\|WW^T\\|_F$", True),
              ("rel_gram[*]", "mean per-block relative Gram error", True)]
    if any("noise_err" in r.get("metrics", {}) for r in rows):
        panels.append(("noise_err", "noise variance: estimate $-$ truth", False))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.0), squeeze=False)
    methods = _methods_in(rows, cfg)
    for ax, (metric, ylabel, loglog) in zip(axes[0], panels):
        ax.set_xscale("log")
        if loglog:
            ax.set_yscale("log")
        agg = aggregate(rows, metric, x)
        for mi, meth in enumerate(methods):
            a = agg.get((meth, None))
            if a is not None:
                _band(ax, a, _color(meth, mi), method_label(meth, rows), method=meth)
        if loglog:
            ref = agg.get((methods[-1], None)) if methods else None
            if ref is not None and ref["x"].size > 1:
                _slope_ref(ax, ref["x"], ref["mean"][0] * 1.6)
            ax.axhline(1.0, color="0.5", lw=0.8, ls="--", label="zero estimator")
        else:
            ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel(_XLABEL.get(x, x))
        ax.set_ylabel(ylabel, fontsize=9)
    xv = sorted({pt[x] for pt in cfg.grid_points()})
    for ax in axes.ravel():
        _plain_ticks(ax, xv)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 0.9))
    return _finish(fig, rows, f"{cfg.name}: overall recovery (mean $\\pm$ 1.96 SE over {_n_reps(rows)} replicates)")


def fig_downstream(cfg, rows):
    """Downstream parameter error ||beta_hat - beta|| (after per-structure alignment) and excess risk
    over the Bayes predictor against the varied sample size, per method and estimator (log-log)."""
    plt = _plt()
    x = x_key(cfg)
    panels = [("param_error", "$\\|\\hat\\beta - \\beta\\|_2$ (aligned)"),
              ("excess_risk_pop", "excess risk over the Bayes predictor")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), squeeze=False)
    methods = _methods_in(rows, cfg)
    ests = cfg.downstream["estimators"]
    styles = {"cls": ("-", "o"), "group_lasso": ("--", "s")}
    est_label = {"cls": "corrected LS", "group_lasso": "group lasso (CV)"}
    for ax, (metric, ylabel) in zip(axes[0], panels):
        ax.set_xscale("log")
        ax.set_yscale("log")
        agg = aggregate(rows, metric, x)
        for mi, meth in enumerate(methods):
            for e in ests:
                a = agg.get((meth, e))
                if a is None:
                    continue
                a = dict(a, mean=np.maximum(a["mean"], 1e-6))
                ls, mk = styles[e]
                _band(ax, a, _color(meth, mi), f"{method_label(meth, rows)}, {est_label[e]}", ls=ls, marker=mk, method=meth)
        if metric == "param_error" and x == "n_labelled":  # the rate in m (in n the error levels off)
            ref = agg.get(("oracle", "cls")) or next(iter(agg.values()), None)
            if ref is not None and ref["x"].size > 1:
                _slope_ref(ax, ref["x"], ref["mean"][0] * 1.6)
        ax.set_xlabel(_XLABEL.get(x, x))
        ax.set_ylabel(ylabel)
    pt = cfg.grid_points()[0]
    fixed = {k: pt[k] for k in ("n_samples", "n_labelled", "noise_var") if k != x and k in pt}
    xv = sorted({pt[x] for pt in cfg.grid_points()})
    for ax in axes.ravel():
        _plain_ticks(ax, xv)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    h0, l0 = axes[0, 0].get_legend_handles_labels()
    for h, lab in zip(h0, l0):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.045 * ((len(labels) + 2) // 3), 1, 0.88))
    fx = ", ".join(f"{'n' if k == 'n_samples' else 'm' if k == 'n_labelled' else 'c'} = {v:g}" for k, v in fixed.items())
    return _finish(fig, rows, f"{cfg.name}: downstream prediction ({fx}, K = {cfg.structure(pt).n_factors}; "
                              f"mean $\\pm$ 1.96 SE over {_n_reps(rows)} replicates)")


def fig_selection(cfg, rows):
    """Selection of task-relevant structures by the group lasso: how often each structure is
    selected (irrelevant ones dashed) for the default estimator, and recall / precision per method."""
    plt = _plt()
    x = x_key(cfg)
    structure = cfg.structure(cfg.grid_points()[0])
    zero = set(cfg.downstream["zero_groups"])
    methods = _methods_in(rows, cfg)
    main = "default" if "default" in methods else (methods[0] if methods else None)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), squeeze=False, gridspec_kw={"width_ratios": [1.15, 1, 1]})
    ax = axes[0, 0]
    labels, freq, xs = [], [], None
    for s in structure.subsets:
        a = aggregate(rows, f"selected[{structure.label(s)}]", x, method=main, estimator="group_lasso").get((main, "group_lasso"))
        if a is None:
            continue
        xs = a["x"]
        irrelevant = "".join(map(str, s)) in zero
        labels.append(f"{structure.label(s)}{' (irrelevant)' if irrelevant else ''}")
        freq.append(a["mean"])
    if freq:
        F = np.vstack(freq)
        im = ax.imshow(F, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        for i in range(F.shape[0]):
            for j in range(F.shape[1]):
                ax.text(j, i, f"{F[i, j]:.2f}", ha="center", va="center", fontsize=7.5,
                        color="white" if F[i, j] > 0.6 else "black")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        for t in ax.get_yticklabels():
            if "irrelevant" in t.get_text():
                t.set_color("#d62728")
        ax.set_xticks(range(len(xs)))
        ax.set_xticklabels([f"{v:g}" for v in xs], fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    ax.set_xlabel(_XLABEL.get(x, x))
    ax.set_title(f"selection frequency, {method_label(main, rows)}", fontsize=9)
    for ax, metric, ylabel in ((axes[0, 1], "support_recall", "recall of relevant structures"),
                               (axes[0, 2], "support_precision", "precision of selected structures")):
        ax.set_xscale("log")
        agg = aggregate(rows, metric, x, estimator="group_lasso")
        for mi, meth in enumerate(methods):
            a = agg.get((meth, "group_lasso"))
            if a is not None:
                _band(ax, a, _color(meth, mi), method_label(meth, rows), method=meth)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(_XLABEL.get(x, x))
        ax.set_ylabel(ylabel)
    xv = sorted({pt[x] for pt in cfg.grid_points()})
    for ax in axes.ravel()[1:]:
        _plain_ticks(ax, xv)
    axes[0, 2].legend(fontsize=7.5, loc="lower right")
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    irr = ", ".join("{" + ",".join(z) + "}" for z in sorted(zero))
    return _finish(fig, rows, f"{cfg.name}: selection of task-relevant structures by the group lasso "
                              f"(irrelevant: {irr}; {_n_reps(rows)} replicates)")


FIGURE_FUNCTIONS = {"recovery_blocks": fig_recovery_blocks, "recovery_overall": fig_recovery_overall,
                    "downstream": fig_downstream, "selection": fig_selection}


def save(fig, path_stem):
    """Write ``path_stem``.png (150 dpi) and .pdf; returns the two paths."""
    from pathlib import Path

    plt = _plt()
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    # no time stamps in the files: regenerating a report from the same rows gives the same bytes
    fig.savefig(png, dpi=150, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return str(png), str(pdf)
