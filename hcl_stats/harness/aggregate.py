"""Summaries of stored rows: per (method, estimator, x) means and standard errors over
replicates, and the theory checks of a study config evaluated on them."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

__all__ = ["metric_value", "aggregate", "x_key", "evaluate_checks", "status_counts", "metric_keys"]


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


def evaluate_checks(cfg, rows):
    """Evaluate the config's [[checks]] on stored rows: list of dicts with name, verdict
    ("PASS", "FAIL" or "N/A"), the measured value and a one-line detail."""
    out = []
    for c in cfg.checks:
        x = c.get("x") or x_key(cfg)
        agg = aggregate(rows, c["metric"] if "metric" in c else "support_recall", x, method=c["method"],
                        estimator=c.get("estimator"))
        res = {"name": c["name"], "kind": c["kind"], "description": c.get("description", ""), "method": c["method"],
               "estimator": c.get("estimator"), "metric": c.get("metric"), "x": x}
        if not agg:
            out.append(dict(res, verdict="N/A", value=None, detail="no finished rows for this method (unavailable or not run)"))
            continue
        a = next(iter(agg.values()))
        if c["kind"] == "slope":
            if a["x"].size < 2:
                out.append(dict(res, verdict="N/A", value=None, detail="needs at least two grid values"))
                continue
            ok = a["mean"] > 0
            lx, ly = np.log(a["x"][ok]), np.log(a["mean"][ok])
            slope = float(np.polyfit(lx, ly, 1)[0])
            lo, hi = c["expected"] - c["tolerance"], c["expected"] + c["tolerance"]
            verdict = "PASS" if lo <= slope <= hi else "FAIL"
            out.append(dict(res, verdict=verdict, value=slope,
                            detail=f"log-log slope of the mean {c['metric']} in {x}: {slope:.3f} (expected {c['expected']} +- {c['tolerance']})"))
        elif c["kind"] == "decreasing":
            first, last = float(a["mean"][0]), float(a["mean"][-1])
            verdict = "PASS" if last < first else "FAIL"
            out.append(dict(res, verdict=verdict, value=last / first if first else None,
                            detail=f"mean {c['metric']}: {first:.4g} at {x} = {a['x'][0]:g}, {last:.4g} at {x} = {a['x'][-1]:g}"))
        else:
            last = float(a["mean"][-1])
            thr = float(c["threshold"])
            ok = last <= thr if c["kind"] == "below" else last >= thr
            rel = "<=" if c["kind"] == "below" else ">="
            out.append(dict(res, verdict="PASS" if ok else "FAIL", value=last,
                            detail=f"mean {c['metric']} at {x} = {a['x'][-1]:g}: {last:.4g} (required {rel} {thr:g}; {a['n'][-1]} replicates)"))
    return out
