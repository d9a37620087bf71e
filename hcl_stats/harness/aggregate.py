"""Summaries of stored rows: per (method, estimator, x) means and standard errors over
replicates, and the theory checks of a study config evaluated on them."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

__all__ = ["metric_value", "aggregate", "x_key", "evaluate_checks", "status_counts", "metric_keys", "loglog_slope",
           "check_spec"]


def metric_value(row, metric):
    """The value of ``metric`` in a row; ``"name[*]"`` averages every ``name[...]`` entry."""
    m = row.get("metrics", {})
    if metric.endswith("[*]"):
        base = metric[:-3] + "["
        vals = [v for k, v in m.items() if k.startswith(base)]
        return float(np.mean(vals)) if vals else None
    v = m.get(metric)
    return None if v is None else float(v)


def metric_keys(rows, prefix):
    keys = []
    for r in rows:
        for k in r.get("metrics", {}):
            if k.startswith(prefix + "[") and k not in keys:
                keys.append(k)
    return keys


def x_key(cfg_or_rows):
    """The grid parameter a study varies (the first grid key)."""
    grid = cfg_or_rows.grid if hasattr(cfg_or_rows, "grid") else cfg_or_rows
    return next(iter(grid))


def aggregate(rows, metric, x, *, method=None, estimator=None):
    """{(method, estimator): dict(x=array, mean, se, n, values)} over ok rows, sorted by x."""
    acc = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("status") != "ok":
            continue
        if method is not None and r["method"] != method:
            continue
        if estimator is not None and r.get("estimator") != estimator:
            continue
        v = metric_value(r, metric)
        if v is None or not math.isfinite(v):
            continue
        acc[(r["method"], r.get("estimator"))][r["point"][x]].append(v)
    out = {}
    for key, d in acc.items():
        xs = sorted(d)
        vals = [np.asarray(d[v]) for v in xs]
        out[key] = {
            "x": np.asarray(xs, dtype=float),
            "mean": np.array([v.mean() for v in vals]),
            "se": np.array([v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else np.nan for v in vals]),
            "n": np.array([v.size for v in vals]),
            "values": vals,
        }
    return out


def status_counts(rows):
    """{(method, estimator): {status: count, "note": first note}} (unavailable / error rows)."""
    out = {}
    for r in rows:
        d = out.setdefault((r["method"], r.get("estimator")), {"ok": 0, "unavailable": 0, "error": 0, "note": ""})
        d[r["status"]] = d.get(r["status"], 0) + 1
        if r["status"] != "ok" and not d["note"]:
            d["note"] = r.get("note", "")[:300]
    return out


def loglog_slope(x, y, confidence):
    """Least-squares slope of log(y) on log(x) over all (replicate) values, with a
    heteroscedasticity-robust (HC1) standard error and Student-t intervals.

    Returns a dict with ``slope``, ``se``, ``df``, ``n`` (values used), ``dropped`` (non-positive
    values, which have no logarithm), the two-sided interval ``ci`` at ``confidence`` and the
    one-sided upper / lower bounds ``upper`` / ``lower`` at ``confidence``; None if fewer than two
    distinct x or three values remain.
    """
    from scipy import stats as sst

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    dropped = int(np.sum(~ok))
    lx, ly = np.log(x[ok]), np.log(y[ok])
    n = lx.size
    if n < 3 or np.unique(lx).size < 2:
        return None
    xc = lx - lx.mean()
    sxx = float(np.sum(xc * xc))
    slope = float(np.sum(xc * (ly - ly.mean())) / sxx)
    resid = ly - ly.mean() - slope * xc
    df = n - 2
    se = float(np.sqrt(np.sum(xc * xc * resid * resid) * n / df) / sxx)
    t2 = float(sst.t.ppf(0.5 + confidence / 2.0, df))
    t1 = float(sst.t.ppf(confidence, df))
    return {"slope": slope, "se": se, "df": df, "n": n, "dropped": dropped,
            "ci": (slope - t2 * se, slope + t2 * se), "upper": slope + t1 * se, "lower": slope - t1 * se}


SLOPE_RULES = ("ci_within", "estimate_within")


def check_spec(c):
    """The pre-registered cut-offs of a check (what the report shows next to its verdict)."""
    keys = ("expected", "tolerance", "confidence", "rule", "threshold", "max_slope")
    return {k: c[k] for k in keys if k in c}


def evaluate_checks(cfg, rows):
    """Evaluate the config's [[checks]] on stored rows: list of dicts with name, verdict
    ("PASS", "FAIL", or "N/A" when the check could not be evaluated), the measured value, a
    one-line detail and the pre-registered cut-offs (``spec``).

    - "slope": least-squares slope of log(metric) on log(x) over every replicate's value (not over
      means), with a 100*confidence% interval (HC1 standard error, t quantiles). Rule
      "ci_within": PASS iff the whole interval lies in expected +- tolerance; "estimate_within":
      PASS iff the estimate does (the interval is shown).
    - "decreasing": the same regression; PASS iff the one-sided upper confidence bound of the
      slope is below ``max_slope`` (default 0): the metric falls in x at that confidence, a test
      across the whole grid (not the first against the last point).
    - "below" / "above": mean at the largest x against ``threshold`` (with its standard error).

    When the rows record the checks they were computed under (``checks_hash``) and the config's
    checks differ, the verdict is "N/A" (the cut-offs were not pre-registered for those rows).
    """
    from .config import checks_hash

    out = []
    registered = {r.get("checks_hash") for r in rows if r.get("checks_hash") is not None}
    current = checks_hash(cfg)
    for c in cfg.checks:
        x = c.get("x") or x_key(cfg)
        agg = aggregate(rows, c["metric"] if "metric" in c else "support_recall", x, method=c["method"],
                        estimator=c.get("estimator"))
        res = {"name": c["name"], "kind": c["kind"], "description": c.get("description", ""), "method": c["method"],
               "estimator": c.get("estimator"), "metric": c.get("metric"), "x": x, "spec": check_spec(c)}
        if registered and registered != {current}:
            out.append(dict(res, verdict="N/A", value=None,
                            detail=f"the config's checks (hash {current}) differ from those recorded with the rows "
                                   f"({', '.join(sorted(registered))}): cut-offs changed after the run; rerun the study"))
            continue
        if not agg:
            out.append(dict(res, verdict="N/A", value=None, detail="no finished rows for this method (unavailable or not run)"))
            continue
        a = next(iter(agg.values()))
        if c["kind"] in ("slope", "decreasing"):
            xs = np.concatenate([np.full(v.size, xv) for xv, v in zip(a["x"], a["values"])])
            ys = np.concatenate(a["values"])
            conf = float(c["confidence"])
            fit = loglog_slope(xs, ys, conf)
            if fit is None:
                out.append(dict(res, verdict="N/A", value=None, detail="needs at least two grid values and three positive values"))
                continue
            lo, hi = fit["ci"]
            drop = f"; {fit['dropped']} non-positive values left out" if fit["dropped"] else ""
            reps = f"{fit['n']} values at {a['x'].size} grid points ({int(a['n'].min())}-{int(a['n'].max())} replicates each){drop}"
            if c["kind"] == "slope":
                e, t = float(c["expected"]), float(c["tolerance"])
                rule = c["rule"]
                ok = (e - t <= lo and hi <= e + t) if rule == "ci_within" else (e - t <= fit["slope"] <= e + t)
                detail = (f"log-log slope of {c['metric']} in {x}: {fit['slope']:.3f}, {100 * conf:g}% CI [{lo:.3f}, {hi:.3f}] "
                          f"(pre-registered: {e} +- {t}, rule {rule}); {reps}")
            else:
                ms = float(c.get("max_slope", 0.0))
                ok = fit["upper"] < ms
                detail = (f"log-log slope of {c['metric']} in {x}: {fit['slope']:.3f}, one-sided {100 * conf:g}% upper bound "
                          f"{fit['upper']:.3f} (pre-registered: falls iff the bound is below {ms:g}); mean {a['mean'][0]:.4g} at "
                          f"{x} = {a['x'][0]:g}, {a['mean'][-1]:.4g} at {x} = {a['x'][-1]:g}; {reps}")
            out.append(dict(res, verdict="PASS" if ok else "FAIL", value=fit["slope"], ci=[lo, hi], upper=fit["upper"],
                            n_values=fit["n"], detail=detail))
        else:
            last = float(a["mean"][-1])
            se = float(a["se"][-1])
            thr = float(c["threshold"])
            ok = last <= thr if c["kind"] == "below" else last >= thr
            rel = "<=" if c["kind"] == "below" else ">="
            out.append(dict(res, verdict="PASS" if ok else "FAIL", value=last,
                            detail=f"mean {c['metric']} at {x} = {a['x'][-1]:g}: {last:.4g} (se {se:.2g}; pre-registered: {rel} {thr:g}; "
                                   f"{a['n'][-1]} replicates)"))
    return out
