"""Tables (Markdown and LaTeX), theory-check verdicts and ``REPORT.md``, assembled only from
stored results (rows in ``<out>/results/*.jsonl``, theory verdicts in ``<out>/results/theory.json``)."""
from __future__ import annotations

import json
import os
import math
import sys
import time
from pathlib import Path

import numpy as np

from .aggregate import aggregate, evaluate_checks, status_counts, x_key
from .config import StudyConfig
from .figures import FIGURE_FUNCTIONS, method_label, save
from .runner import ResultStore, load_rows
from ..summary import Table, latex_escape

__all__ = ["study_tables", "study_table", "verdict_table", "table_markdown", "table_latex", "write_study_outputs", "write_report",
           "run_theory_checks", "normalise_theory_results", "KEY_METRICS"]

KEY_METRICS = {
    "recovery": [("rel_gram[*]", "mean per-block relative Gram error"), ("rel_overall", "overall relative Gram error")],
    "downstream": [("param_error", "parameter error ||beta_hat - beta|| (aligned)"),
                   ("excess_risk_pop", "excess risk over the Bayes predictor")],
    "selection": [("support_recall", "recall of the relevant structures"),
                  ("support_precision", "precision of the selected structures"),
                  ("support_exact", "exact recovery of the relevant structures")],
}
_EST = {"cls": "CLS", "group_lasso": "GL-CV", None: ""}


def _fmt(m, se):
    if m is None or not math.isfinite(m):
        return "-"
    s = f"{m:.3g}"
    if se is not None and math.isfinite(se):
        s += f" ({se:.2g})"
    return s


def study_tables(cfg: StudyConfig, rows):
    """[(title, header, body rows)] : one table per key metric, rows = grid values, columns =
    method (x estimator), cells = mean (standard error) over replicates; plus a timing table."""
    x = x_key(cfg)
    tables = []
    for metric, title in KEY_METRICS[cfg.kind]:
        agg = aggregate(rows, metric, x)
        cols = [k for k in ((m, e) for m in cfg.methods for e in (cfg.downstream.get("estimators") or [None])) if k in agg]
        if not cols:
            continue
        xs = sorted({float(v) for a in agg.values() for v in a["x"]})
        header = [x] + [method_label(m, rows) + (f" / {_EST[e]}" if e else "") for m, e in cols]
        body = []
        for xv in xs:
            line = [f"{xv:g}"]
            for k in cols:
                a = agg[k]
                idx = np.nonzero(a["x"] == xv)[0]
                line.append(_fmt(float(a["mean"][idx[0]]), float(a["se"][idx[0]])) if idx.size else "-")
            body.append(line)
        tables.append((f"{title}: mean (standard error) over replicates", header, body))
    # timing
    times, cpus = {}, {}
    for r in rows:
        if r.get("status") == "ok" and r.get("fit_time") is not None and math.isfinite(r["fit_time"]):
            times.setdefault(r["method"], {})[r["task"]] = r["fit_time"]
            c = (r.get("info") or {}).get("cpu_time")
            if c is not None and math.isfinite(c):
                cpus.setdefault(r["method"], {})[r["task"]] = c
    if times:
        # CPU seconds (the time on an idle core) when the rows record them; wall seconds are inflated
        # by the load of a shared machine
        header = ["method", "mean CPU time per fit (s)", "max CPU time (s)", "mean wall time (s)", "fits"]
        body = []
        for m, v in times.items():
            c = list(cpus.get(m, {}).values())
            body.append([method_label(m, rows), f"{np.mean(c):.3g}" if c else "-", f"{np.max(c):.3g}" if c else "-",
                         f"{np.mean(list(v.values())):.3g}", str(len(v))])
        tables.append(("fit time per replicate (one process, BLAS pinned to one thread)", header, body))
    conv = convergence_table(rows, x)
    if conv is not None:
        tables.append(conv)
    return tables


def convergence_table(rows, x):
    """(title, header, body) of how many fits met their solver's criterion (``converged_``) and their
    median number of iterations, per grid value (rows) and iterative HCL method (columns); None when
    no stored row records it. Paper mode is left out: it stops by the authors' step schedule, not
    by a criterion (docs/method.md, section 14)."""
    cells, seen = {}, set()
    for r in rows:
        info = r.get("info") or {}
        if r.get("status") != "ok" or "converged" not in info or info.get("method") in ("paper", "init"):
            continue
        xv = r.get("point", {}).get(x)
        if xv is None or (r["method"], r["task"]) in seen:   # one fit per task (downstream rows repeat it per estimator)
            continue
        seen.add((r["method"], r["task"]))
        c = cells.setdefault(r["method"], {}).setdefault(float(xv), [0, 0, []])
        c[0] += bool(info["converged"])
        c[1] += 1
        c[2].append(int(info.get("n_iter", 0)))
    if not cells:
        return None
    methods = sorted(cells)
    xs = sorted({xv for d in cells.values() for xv in d})
    header = [x] + [method_label(m, rows) for m in methods]
    body = []
    for xv in xs:
        line = [f"{xv:g}"]
        for m in methods:
            c = cells[m].get(xv)
            line.append(f"{c[0]}/{c[1]} ({int(np.median(c[2]))})" if c else "-")
        body.append(line)
    return ("fits that met their solver's stopping criterion (converged_), of all fits, and the median number of "
            "iterations", header, body)


def study_table(title, header, body) -> Table:
    """One study table (as returned by :func:`study_tables`) as a :class:`hcl_stats.summary.Table`."""
    return Table(header, body, title=title)


def table_markdown(title, header, body):
    """A study table in Markdown (rendered by :meth:`hcl_stats.summary.Table.as_markdown`)."""
    return study_table(title, header, body).as_markdown()


def table_latex(title, header, body):
    """A study table as a LaTeX ``table`` float with its title as caption (every cell escaped)."""
    out = [r"\begin{table}[ht]", r"\centering", r"\caption{" + latex_escape(title) + "}",
           Table(header, body, align="l" + "r" * (len(header) - 1)).as_latex(), r"\end{table}"]
    return "\n".join(out)


def write_study_outputs(cfg: StudyConfig, out_dir, bar=None):
    """Figures (PNG + PDF) and tables (Markdown + LaTeX) of one study from its stored rows.
    Returns a dict with the paths, tables, checks and provenance (None if there are no rows).
    ``bar``: a progress bar advanced by one per figure and once for the tables."""
    out_dir = Path(out_dir)
    store = ResultStore(out_dir, cfg.name)
    rows = load_rows(out_dir, cfg)
    if not rows:
        if bar is not None:
            bar.update(len(cfg.figures) + 1)
        return None
    figs = []
    for name in cfg.figures:
        if bar is not None:
            bar.set_postfix_str(f"{cfg.name}: {name}")
        fig = FIGURE_FUNCTIONS[name](cfg, rows)
        figs.append(save(fig, out_dir / "figures" / f"{cfg.name}_{name}"))
        if bar is not None:
            bar.update(1)
    tables = study_tables(cfg, rows)
    tdir = out_dir / "tables"
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / f"{cfg.name}.md").write_text("\n\n".join(table_markdown(*t) for t in tables) + "\n")
    (tdir / f"{cfg.name}.tex").write_text("\n\n".join(table_latex(*t) for t in tables) + "\n")
    checks = evaluate_checks(cfg, rows)
    if bar is not None:
        bar.update(1)
    return {"cfg": cfg, "rows": rows, "figures": figs, "tables": tables, "checks": checks,
            "provenance": store.read_provenance(), "status": status_counts(rows)}


def normalise_theory_results(res):
    """Normalise what ``hcl_stats.theory.run_checks`` returns to a list of dicts with keys
    name, verdict ("PASS"/"FAIL"), detail."""
    items = res.items() if isinstance(res, dict) else ((getattr(r, "name", None) or (r.get("name") if isinstance(r, dict) else str(r)), r) for r in res)
    out = []
    for name, r in items:
        if hasattr(r, "to_row"):  # hcl_stats.theory.CheckResult
            row = r.to_row()
            ci = "" if not np.isfinite(row["ci_low"]) else f", 95% CI [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
            detail = f"{row['quantity']} = {row['estimate']:.3g}{ci}; expected {row['expected']}. {row['detail']}"
            bad = [c for c in getattr(r, "components", ()) if not c.passed]
            if bad:
                detail += " Failing parts: " + "; ".join(f"{c.name}: {c.quantity} = {c.estimate:.3g}, expected {c.expected}" for c in bad)
            out.append({"name": str(name), "verdict": "PASS" if row["passed"] else "FAIL", "detail": detail[:600],
                        "seconds": float(getattr(r, "data", {}).get("seconds", float("nan")))})
            continue
        if isinstance(r, (bool, np.bool_)):
            passed, detail = bool(r), ""
        elif isinstance(r, dict):
            passed = r.get("passed", r.get("ok", r.get("verdict") in ("PASS", True)))
            detail = r.get("detail", r.get("message", r.get("summary", "")))
            if not detail:
                detail = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("passed", "ok", "name") and not isinstance(v, (list, dict, np.ndarray)))[:300]
        else:
            passed = getattr(r, "passed", getattr(r, "ok", None))
            detail = str(getattr(r, "detail", getattr(r, "message", r)))
        out.append({"name": str(name), "verdict": "PASS" if passed else "FAIL", "detail": str(detail)[:400]})
    return out


def run_theory_checks(names=None, quick=True, out_dir=None, progress=False):
    """Run the checks of ``hcl_stats.theory`` (all of ``CHECKS`` by default), one at a time (with a
    progress bar if ``progress``), and store the verdicts in ``<out_dir>/results/theory.json``.
    A check that raises gets the verdict "N/A" with the exception as its detail (it could not
    run). Returns (verdicts, error message or None); the error is set when the module cannot be
    imported, a name is unknown, or any check raised."""
    verdicts, errors = [], []
    wall = None
    try:
        from .. import theory
    except ImportError as exc:
        errors.append(f"hcl_stats.theory is not importable ({exc})")
    else:
        names = list(names) if names else list(getattr(theory, "CHECKS", {}))
        unknown = [n for n in names if n not in theory.CHECKS]
        if unknown:
            errors.append(f"unknown theory check name(s) {unknown}; known: {sorted(theory.CHECKS)}")
            names = [n for n in names if n in theory.CHECKS]
        t0 = time.perf_counter()
        bar = None
        if progress and names:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(names), desc="theory checks", unit="check", dynamic_ncols=True, file=sys.stderr)
        try:
            for name in names:
                if bar is not None:
                    bar.set_postfix_str(name)
                try:
                    verdicts += normalise_theory_results(theory.run_checks([name], quick=quick))
                except Exception as exc:
                    msg = f"{type(exc).__name__}: {exc}"
                    verdicts.append({"name": name, "verdict": "N/A", "detail": f"could not run: {msg}"[:600]})
                    errors.append(f"{name} raised {msg}")
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        for v in verdicts:
            v["quick"] = quick
        wall = time.perf_counter() - t0
    err = "; ".join(errors)[:1000] if errors else None
    if out_dir is not None:
        p = Path(out_dir) / "results"
        p.mkdir(parents=True, exist_ok=True)
        (p / "theory.json").write_text(json.dumps({"verdicts": verdicts, "error": err, "quick": quick,
                                                   "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                                   "wall_time": wall}, indent=1))
    return verdicts, err


_NOTES = {
    "recovery": (
        "Reading the figures: errors are Gram errors ||W_mS W_mS^T - hat||_F divided by ||W_mS W_mS^T||_F "
        "(per block) or ||W W^T||_F (overall), so 1 (dashed) is the error of estimating zero; they are invariant "
        "to the rotation each structure is identified up to, so no alignment is needed. The dotted line has slope "
        "-1/2 (the n^(-1/2) rate). Paper mode (and its initialisation) estimates each block separately and never "
        "rotates the blocks of one structure into agreement across modalities, so its overall error stays near 1 "
        "while its per-block errors fall (docs/method.md, section 4). SLIDE is fitted by the authors' alternating "
        "algorithm given the true structure, with SLIDE's own per-view scaling (unit Frobenius norm) and stopping "
        "rule (eps = 1e-6), iterated on the sample covariance (its sufficient statistic). With draw = \"wishart\" "
        "the sample covariance is drawn from its exact law instead of simulating the n samples (same distribution). Weak signal: a block whose signal sits below the "
        "spiked-model detection threshold (noise variance x sqrt(p_m / n)) cannot be estimated better than zero by "
        "any method; the default estimator shrinks such blocks towards zero, so its relative error stays near 1 "
        "until the block becomes detectable, and its block-rate check can fail over a range of n where most "
        "blocks are undetectable (as at the paper's noise variance 6). The n^(-1/2) rate itself is checked where "
        "blocks are detectable by the theory check loading_rate."),
    "downstream": (
        "Reading the figures: the parameter error ||beta_hat - beta|| is computed after rotating each structure's "
        "coefficients by the rotation that aligns the estimated loadings with the true ones (an oracle step, for "
        "reporting only; predictions do not need it). The excess risk is that of the linear predictor x -> "
        "beta_hat^T C_hat x over the Bayes predictor E[y | x], computed exactly from the population covariance "
        "(the paper's test-sample version, against the plug-in true encoder, is stored as excess_risk). Corrected "
        "least squares and the group lasso use the errors-in-variables correction H = Z^T Z / m - C_hat Psi C_hat^T; "
        "the oracle uses the true loadings and noise. Paper-mode loadings are not aligned across modalities, so "
        "the corrected Gram matrix is badly wrong and corrected least squares can fail by orders of magnitude. "
        "The rate -1/2 in the labelled sample size m is asymptotic: with K regressors the norm of the "
        "least-squares error, sqrt(K sigma^2 / (m - K - 1)), has log-log slope -m / (2 (m - K - 1)), steeper "
        "than -1/2 when m is a few times K (-0.60 on average over m = 140 to 400 with K = 35), so a rate check "
        "in m over such a grid can fail on the fast side."),
    "selection": (
        "Reading the figures: beta is zero on the structures marked irrelevant; the group lasso over structures "
        "(3-fold cross-validation, each fold fitted on its training part only, one-standard-error rule) should keep "
        "the others and drop them. Left: how often each structure is selected; middle: share of relevant structures "
        "kept (recall); right: share of selected structures that are relevant (precision)."),
}


def _prov_lines(prov):
    if not prov:
        return []
    runs = prov.get("runs", [])
    total = sum(r.get("wall_time", 0) for r in runs)
    last = runs[-1] if runs else {}
    src = prov.get("code_source")
    src = f" (from the {'installed package' if src == 'package' else 'working directory'}'s checkout)" if src else ""
    return [f"- package {prov.get('package_version')}, git commit `{prov.get('git_commit')}`{src}, config hash `{prov.get('config_hash')}`, "
            f"checks hash `{prov.get('checks_hash')}`",
            f"- seeds: {prov['seeds']['scheme']} (seed = {prov['seeds']['seed']})",
            f"- {len(runs)} run(s), {total:.0f} s of wall time in all; last: {last.get('backend')}, "
            f"{last.get('n_tasks_run')} tasks in {last.get('wall_time', 0):.0f} s on {last.get('host')}"]


def _is_partial(study):
    cfg = study["cfg"]
    done = {}
    for r in study["rows"]:
        done.setdefault(r["grid_index"], set()).add(r["replicate"])
    return len(done) < len(cfg.grid_points()) or any(len(v) < cfg.replicates for v in done.values())


# studies and benchmarks with their own scripts, linked from the report when their outputs exist
_OTHER_STUDIES = [
    ("Real data: UCI Multiple Features (structure selection, variance explained, classification)",
     "reports/multiple_features/REPORT.md",
     "python simulations/real_data/multiple_features.py simulations/configs/multiple_features.toml"),
    ("Peers: hcl_stats vs SLIDE, GFA, MOFA+, AJIVE", "reports/peers/README.md", "python benchmarks/bench_peers.py"),
    ("Contrastive baselines: linear contrastive HCL, deep HCL, FactorCL, COrAL, Cross", "reports/contrastive/README.md",
     "python benchmarks/bench_contrastive.py --task {factorcl,trifeature,linear} --seeds 5"),
    ("Structure selection vs GFA", "benchmarks/results/selection.md", "python benchmarks/bench_selection.py"),
    ("Accuracy of the estimators (paper, ML, default)", "benchmarks/results/bench_accuracy.md", "python benchmarks/bench_accuracy.py"),
    ("Speed (fit time / (covariance + eigh))", "benchmarks/results/bench_speed.md", "python benchmarks/bench_speed.py"),
    ("Out-of-core fit at n = 10^6, p = 1400", "benchmarks/results/bench_scale.md", "python benchmarks/bench_scale.py"),
    ("Cost of the full recovery study", "benchmarks/results/recovery_study.md", "python benchmarks/bench_recovery_study.py"),
]


def _other_studies(out_dir):
    """Links to the studies and benchmarks that have their own scripts (only those present)."""
    out_dir = Path(out_dir).resolve()
    root = next((p for p in [out_dir, *out_dir.parents] if (p / "benchmarks").is_dir()), None)
    if root is None:
        return []
    rows = []
    for title, rel, cmd in _OTHER_STUDIES:
        target = root / rel
        if target.exists():
            link = os.path.relpath(target, out_dir)
            rows.append([f"[{title}]({link})", f"`{cmd}`"])
    if not rows:
        return []
    return ["## Other studies and benchmarks", "",
            "Each has its own script and stored results (numbers measured when it was last run):", "",
            Table(["study", "regenerate with"], rows).as_markdown(), ""]


def verdict_table(studies, theory) -> Table:
    """The verdicts of every study check and theory check as a :class:`hcl_stats.summary.Table`
    (columns study, check, verdict, pre-registered, detail)."""
    rows = []
    for s in studies:
        for c in s["checks"]:
            rows.append([s["cfg"].name, c["name"], f"**{c['verdict']}**", _spec_text(c.get("spec")), str(c["detail"])])
    if theory:
        for v in theory.get("verdicts", []):
            rows.append([f"theory ({'quick' if v.get('quick') else 'full'})", v["name"], f"**{v['verdict']}**",
                         "see hcl_stats.theory", str(v["detail"])])
        if theory.get("error"):
            rows.append(["theory", "(all)", "**N/A**", "-", str(theory["error"])])
    else:
        rows.append(["theory", "(all)", "**N/A**", "-",
                     "not run: `hcl-stats verify` stores its verdicts in results/theory.json"])
    return Table(["study", "check", "verdict", "pre-registered", "detail"], rows)


def _spec_text(spec):
    return ", ".join(f"{k} = {v}" for k, v in spec.items()) if spec else "-"


def write_report(configs, out_dir, command, title="hcl_stats simulation report", progress=False):
    """Figures, tables and ``REPORT.md`` for ``configs`` from the rows stored under ``out_dir``
    (with a progress bar over figures and tables if ``progress``)."""
    out_dir = Path(out_dir)
    studies = []
    missing = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(c.figures) + 1 for c in configs), desc="report", unit="step", dynamic_ncols=True,
                   file=sys.stderr)
    try:
        for cfg in configs:
            s = write_study_outputs(cfg, out_dir, bar=bar)
            (studies.append(s) if s else missing.append(cfg.name))
    finally:
        if bar is not None:
            bar.close()
    theory_path = out_dir / "results" / "theory.json"
    theory = json.loads(theory_path.read_text()) if theory_path.exists() else None
    from .. import __version__

    L = [f"# {title}", "",
         f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by hcl_stats {__version__} from the stored results in "
         f"`{out_dir}/results/` (figures are drawn only from those rows). Regenerate everything with:", "",
         f"    {command}", ""]
    if any(_is_partial(st) for st in studies):
        L += ["Some studies below are **partial runs** (fewer replicates than their configs ask for; each says so). "
              "The command above resumes them from the stored rows to the full size; the verdicts below are "
              "computed from the rows stored so far.", ""]
    L += ["## Verdicts", "",
          "Cut-offs of the study checks are pre-registered in the configs (recorded with the rows when a study runs; "
          "a verdict is N/A when the config's checks were edited after its rows were computed). Slopes are fitted to "
          "the log of every replicate's value against log(x), with heteroscedasticity-robust (HC1) t intervals.", "",
          verdict_table(studies, theory).as_markdown(), ""]
    if missing:
        L += [f"Studies without stored results (not run yet): {', '.join(missing)}.", ""]
    for s in studies:
        cfg = s["cfg"]
        pts = cfg.grid_points()
        n_rows = len(s["rows"])
        done = {}
        for r in s["rows"]:
            done.setdefault(r["grid_index"], set()).add(r["replicate"])
        n_done = sorted({len(v) for v in done.values()})
        partial = "" if n_done == [cfg.replicates] and len(done) == len(pts) else (
            f" (**partial run**: {len(done)} of {len(pts)} grid points, {n_done[0]}-{n_done[-1]} of {cfg.replicates} replicates stored)")
        L += [f"## {cfg.name}: {cfg.description}", "",
              f"- config `{Path(cfg.path).name if cfg.path else None}` (kind {cfg.kind}); {cfg.replicates} replicates per grid point{partial}; "
              f"grid: {', '.join(f'{k} in {v}' for k, v in cfg.grid.items())}; fixed: "
              f"{', '.join(f'{k} = {v}' for k, v in cfg.design.items())}",
              f"- structure: {cfg.structure(pts[0]).subsets} (ranks {dict(cfg.structure(pts[0]).ranks)})",
              f"- methods: {', '.join(method_label(m, s['rows']) for m in cfg.methods)}; {n_rows} stored rows"]
        L += _prov_lines(s["provenance"])
        commits = sorted({str(r.get("git_commit")) for r in s["rows"]})
        if len(commits) > 1:
            L.append(f"- **the stored rows come from {len(commits)} code versions** ({', '.join(c[:12] for c in commits)}): "
                     "the study was resumed after the code changed; rerun with --fresh for a single version")
        L += ["", _NOTES[cfg.kind]]
        for (m, e), d in s["status"].items():
            if d["ok"] == 0 or d["unavailable"] or d["error"]:
                L.append(f"- **{method_label(m)}{' / ' + str(e) if e else ''}**: {d['ok']} ok, {d['unavailable']} unavailable, "
                         f"{d['error']} failed; note: {d['note'][:200]}")
        L.append("")
        for png, pdf in s["figures"]:
            rel_png, rel_pdf = Path(png).relative_to(out_dir), Path(pdf).relative_to(out_dir)
            L += [f"![{rel_png.stem}]({rel_png})", "", f"[PDF]({rel_pdf})", ""]
        for t in s["tables"]:
            L += [table_markdown(*t), ""]
        L += [f"LaTeX tables: `tables/{cfg.name}.tex`.", ""]
    L += _other_studies(out_dir)
    (out_dir / "REPORT.md").write_text("\n".join(L) + "\n")
    return out_dir / "REPORT.md"
