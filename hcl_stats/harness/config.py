"""Declarative study configurations: the TOML schema, its validation, and grid expansion.

A study config is a TOML file (parsed with :mod:`tomllib`) with these tables; every key is
checked before any work starts, and an error names the file, the key, what was expected and
what was found.

``[study]``
    ``name`` (str), ``kind`` ("recovery", "downstream" or "selection"), ``seed`` (int >= 0),
    ``replicates`` (int >= 1), ``description`` (str, optional), ``figures`` (list of figure
    names, optional; default by kind).
``[structure]``
    ``spec``: ``"full"`` (all 2^M - 1 subsets at ``rank``) or a spec string such as
    ``"012:2,01:2,0:1"`` (digits are 0-based modality indices, after the colon the rank);
    ``n_modalities`` (int, with ``"full"``); ``rank`` (int, with ``"full"``; may also be a grid
    parameter).
``[design]``
    Fixed values of the simulation parameters (any of :data:`PARAMETERS`).
``[grid]``
    Lists of values of any of :data:`PARAMETERS`; the study runs the Cartesian product
    (``design`` values are overridden by ``grid`` values).
``[methods]``
    ``names``: estimator names (see :mod:`hcl_stats.harness.methods`).
``[metrics]``
    ``names``: metric sets computed per replicate and method (see :data:`METRIC_SETS`).
``[downstream]`` (kinds "downstream" and "selection")
    ``estimators`` (list of "cls", "group_lasso"), ``zero_groups`` (list of subset specs such
    as ``"01"``: structures irrelevant to the task), ``cv`` (int, folds of GroupLassoCV),
    ``representation`` ("paper" or "posterior"), ``alphas`` (relative penalties, optional),
    ``rule`` ("min" or "1se"), ``tol`` (KKT tolerance of the group-lasso solver, default 1e-6).
``[[checks]]``
    Theory checks on the stored results, each with ``name``, ``kind`` ("slope", "decreasing",
    "below", "above"), ``metric``, ``method`` and the kind's own keys, all required: the cut-offs
    are pre-registered in the config before a run, recorded with the rows (``checks_hash``) and
    shown in the report. "slope": least-squares slope of log(metric) on log(x) over every
    replicate, with a ``confidence`` interval (e.g. 0.95); ``rule`` "ci_within" passes iff the
    interval lies in ``expected`` +- ``tolerance`` ("estimate_within": iff the estimate does).
    "decreasing": the same slope; passes iff its one-sided upper ``confidence`` bound is below
    ``max_slope`` (optional, default 0). "below"/"above": mean metric at the largest x
    below/at least ``threshold``. Optional: ``x``, ``estimator``, ``description``. A metric
    ``"name[*]"`` averages all blocks of ``name``.
``[theory]``
    ``checks``: names in :data:`hcl_stats.theory.CHECKS` run by ``hcl-stats verify``;
    ``quick`` (bool).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import numbers
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..structure import Structure

__all__ = ["ConfigError", "StudyConfig", "load_config", "parse_config", "parse_structure_spec",
           "PARAMETERS", "METRIC_SETS", "KINDS", "config_hash", "grid_point_key", "checks_hash"]

KINDS = ("recovery", "downstream", "selection")

# simulation parameters: name -> (checker description, checker)
def _pos_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1


def _pos_num(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0


def _nonneg_num(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0


def _features(v):
    return isinstance(v, list) and len(v) >= 1 and all(_pos_int(x) for x in v)


PARAMETERS = {
    "n_samples": ("a positive integer (representation / estimation sample size n)", _pos_int),
    "n_labelled": ("a positive integer (labelled sample size m of the downstream task)", _pos_int),
    "n_test": ("a positive integer (test sample size for the excess risk)", _pos_int),
    "n_features": ("a list of positive integers, one per modality (p_m)", _features),
    "noise_var": ("a positive number (noise variance c)", _pos_num),
    "signal": ("a positive number (scale of the loadings)", _pos_num),
    "rank": ("a positive integer (rank of every subset with spec = 'full')", _pos_int),
    "response_noise_var": ("a non-negative number (c_y)", _nonneg_num),
    "draw": ("'samples' (draw X and form S_n) or 'wishart' (draw S_n from its exact Wishart law)",
             lambda v: v in ("samples", "wishart")),
}
_DEFAULTS = {"signal": 1.0, "draw": "samples", "response_noise_var": 0.1, "n_test": 10000}
_REQUIRED = {"recovery": ("n_samples", "n_features", "noise_var"),
             "downstream": ("n_samples", "n_labelled", "n_features", "noise_var"),
             "selection": ("n_samples", "n_labelled", "n_features", "noise_var")}

METRIC_SETS = {
    "gram": "per-block Gram error ||W_mS W_mS^T - hat||_F",
    "rel_gram": "per-block Gram error relative to ||W_mS W_mS^T||_F",
    "sin": "per-block sin-theta distance between column spaces",
    "overall": "overall Gram error ||W W^T - hat||_F and its relative version",
    "noise": "noise-variance estimate and its error",
    "param": "downstream: ||beta_hat - beta|| (after per-structure alignment) and per-group errors",
    "risk": "downstream: excess prediction risk on a test sample",
    "support": "downstream: selected groups, true/false positive rates, exact support recovery",
}
_DEFAULT_METRICS = {"recovery": ["gram", "rel_gram", "overall", "noise"],
                    "downstream": ["param", "risk"], "selection": ["param", "risk", "support"]}
_DEFAULT_FIGURES = {"recovery": ["recovery_blocks", "recovery_overall"],
                    "downstream": ["downstream"], "selection": ["selection"]}
FIGURES = ("recovery_blocks", "recovery_overall", "downstream", "selection")
CHECK_KINDS = {
    "slope": ("metric", "method", "expected", "tolerance", "confidence", "rule"),
    "decreasing": ("metric", "method", "confidence"),
    "below": ("metric", "method", "threshold"),
    "above": ("metric", "method", "threshold"),
}
_CHECK_OPTIONAL = {"x", "estimator", "name", "kind", "description", "at", "max_slope"}


class ConfigError(ValueError):
    """A study configuration is malformed (the message names the file and the key)."""


@dataclass(frozen=True)
class StudyConfig:
    """A validated study configuration (see the module docstring for the schema)."""

    name: str
    kind: str
    seed: int
    replicates: int
    structure_spec: dict
    design: dict
    grid: dict
    methods: tuple
    metrics: tuple
    downstream: dict
    checks: tuple
    theory: dict
    figures: tuple
    description: str = ""
    path: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    # -- grid ---------------------------------------------------------------------------
    def grid_points(self) -> list[dict]:
        """The Cartesian product of ``grid`` over ``design``: one dict of parameters per point."""
        keys = list(self.grid)
        points = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            pt = dict(_DEFAULTS)
            pt.update(self.design)
            pt.update(dict(zip(keys, values)))
            points.append(pt)
        return points

    def structure(self, point: dict | None = None) -> Structure:
        spec = self.structure_spec
        if spec["spec"] == "full":
            rank = (point or {}).get("rank", spec.get("rank"))
            return Structure.full(int(spec["n_modalities"]), int(rank))
        return parse_structure_spec(spec["spec"], spec.get("n_modalities"))

    def tasks(self) -> list[tuple[int, dict, int]]:
        """(grid index, grid point, replicate) for every task, replicate-major within a point."""
        return [(g, pt, r) for g, pt in enumerate(self.grid_points()) for r in range(self.replicates)]

    @property
    def hash(self) -> str:
        return config_hash(self)


def checks_hash(cfg: StudyConfig) -> str:
    """sha256 (12 hex digits) of the checks with their cut-offs, recorded with every row when a
    study runs (the pre-registration of its verdicts)."""
    return hashlib.sha256(json.dumps(list(cfg.checks), sort_keys=True).encode()).hexdigest()[:12]


def grid_point_key(point: dict) -> str:
    """A stable text key of a grid point (canonical JSON)."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"))


def config_hash(cfg: StudyConfig) -> str:
    """sha256 (16 hex digits) of everything that determines a replicate's numbers: the config
    without ``replicates``, the grid values, figures, checks and descriptions (adding
    replicates or grid points keeps finished rows valid: a task's seed depends only on
    (seed, grid point, replicate), and the grid point is part of the task id)."""
    d = {"kind": cfg.kind, "seed": cfg.seed, "structure": cfg.structure_spec, "methods": list(cfg.methods),
         "metrics": list(cfg.metrics), "downstream": cfg.downstream, "design": cfg.design,
         "grid_keys": sorted(cfg.grid)}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def parse_structure_spec(spec: str, n_modalities=None) -> Structure:
    """Parse ``"012:2,01:2,0:1"`` (subset digits : rank, comma separated) into a Structure.

    ``n_modalities`` defaults to one more than the largest index used. Raises ValueError naming
    the offending item.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"structure spec must be a non-empty string like '012:2,01:2,0:1'; got {spec!r}.")
    ranks = {}
    for item in spec.split(","):
        item = item.strip()
        if ":" not in item:
            raise ValueError(f"structure spec item {item!r} must be 'digits:rank' (e.g. '01:2'); got {spec!r}.")
        sub, r = item.split(":", 1)
        sub = sub.strip().strip("{}()").replace(" ", "")
        if not sub.isdigit() or not r.strip().isdigit():
            raise ValueError(f"structure spec item {item!r} must be 'digits:rank' with modality digits 0-9 and a positive integer rank; got {spec!r}.")
        key = tuple(int(c) for c in sub)
        if key in ranks:
            raise ValueError(f"structure spec repeats subset {sub!r}; got {spec!r}.")
        ranks[key] = int(r)
    M = n_modalities if n_modalities is not None else 1 + max(max(k) for k in ranks)
    return Structure(ranks, int(M))


# -- validation -------------------------------------------------------------------------------
def _err(where, key, expected, got):
    return ConfigError(f"{where}: key '{key}' must be {expected}; got {got!r}.")


def _check_keys(where, table, name, allowed):
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: '{name}' must be a table; got {table!r}.")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key '{name}.{unknown[0]}' (allowed keys in [{name}]: {sorted(allowed)}).")


def parse_config(raw: dict, path=None) -> StudyConfig:
    """Validate a parsed TOML dict; raise :class:`ConfigError` naming the file and key."""
    where = str(path) if path is not None else "<config>"
    top = {"study", "structure", "design", "grid", "methods", "metrics", "downstream", "checks", "theory"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"{where}: unknown table or key '{unknown[0]}' (allowed: {sorted(top)}).")
    for req in ("study", "structure", "methods"):
        if req not in raw:
            raise ConfigError(f"{where}: missing table [{req}].")

    st = raw["study"]
    _check_keys(where, st, "study", {"name", "kind", "seed", "replicates", "description", "figures"})
    for k in ("name", "kind", "seed", "replicates"):
        if k not in st:
            raise ConfigError(f"{where}: missing key 'study.{k}'.")
    if not isinstance(st["name"], str) or not st["name"].replace("_", "").replace("-", "").isalnum():
        raise _err(where, "study.name", "a name of letters, digits, '_' or '-'", st["name"])
    if st["kind"] not in KINDS:
        raise _err(where, "study.kind", f"one of {KINDS}", st["kind"])
    kind = st["kind"]
    if not (isinstance(st["seed"], int) and not isinstance(st["seed"], bool) and st["seed"] >= 0):
        raise _err(where, "study.seed", "a non-negative integer", st["seed"])
    if not _pos_int(st["replicates"]):
        raise _err(where, "study.replicates", "a positive integer", st["replicates"])
    figures = st.get("figures", _DEFAULT_FIGURES[kind])
    if not isinstance(figures, list) or any(f not in FIGURES for f in figures):
        raise _err(where, "study.figures", f"a list of names from {FIGURES}", figures)

    sraw = raw["structure"]
    _check_keys(where, sraw, "structure", {"spec", "n_modalities", "rank"})
    if "spec" not in sraw:
        raise ConfigError(f"{where}: missing key 'structure.spec' ('full' or e.g. '012:2,01:2,0:1').")
    sspec = dict(sraw)
    if sspec["spec"] == "full":
        if not _pos_int(sspec.get("n_modalities")):
            raise _err(where, "structure.n_modalities", "a positive integer (needed with spec = 'full')", sspec.get("n_modalities"))
    else:
        try:
            parse_structure_spec(sspec["spec"], sspec.get("n_modalities"))
        except ValueError as exc:
            raise ConfigError(f"{where}: key 'structure.spec': {exc}") from None

    def check_param(key, value, table):
        if key not in PARAMETERS:
            raise ConfigError(f"{where}: unknown key '{table}.{key}' (allowed parameters: {sorted(PARAMETERS)}).")
        desc, ok = PARAMETERS[key]
        if not ok(value):
            raise _err(where, f"{table}.{key}", desc, value)

    design = raw.get("design", {})
    _check_keys(where, design, "design", PARAMETERS)
    for k, v in design.items():
        check_param(k, v, "design")
    grid = raw.get("grid", {})
    _check_keys(where, grid, "grid", PARAMETERS)
    for k, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise _err(where, f"grid.{k}", "a non-empty list of values", vals)
        for v in vals:
            check_param(k, v, "grid")
        if len({json.dumps(v) for v in vals}) != len(vals):
            raise _err(where, f"grid.{k}", "a list without repeated values", vals)
    merged = dict(_DEFAULTS, **design, **{k: v[0] for k, v in grid.items()})
    for req in _REQUIRED[kind]:
        if req not in merged:
            raise ConfigError(f"{where}: missing parameter '{req}' (give it in [design] or [grid]) for a study of kind {kind!r}.")
    if sspec["spec"] == "full" and "rank" not in sspec and "rank" not in grid:
        raise ConfigError(f"{where}: missing key 'structure.rank' (needed with spec = 'full', or give grid.rank).")
    # every grid point must give a valid structure / feature count
    nmod = int(sspec["n_modalities"]) if sspec["spec"] == "full" else parse_structure_spec(sspec["spec"], sspec.get("n_modalities")).n_modalities
    for nf in grid.get("n_features", [merged["n_features"]]):
        if len(nf) != nmod:
            raise _err(where, "grid.n_features" if "n_features" in grid else "design.n_features",
                       f"a list of {nmod} feature counts (one per modality of the structure)", nf)

    meth = raw["methods"]
    _check_keys(where, meth, "methods", {"names"})
    names = meth.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _err(where, "methods.names", "a non-empty list of method names", names)
    from .methods import known_method_names

    known = known_method_names()
    bad = [n for n in names if n not in known]
    if bad:
        raise _err(where, "methods.names", f"names from {sorted(known)}", bad[0])
    if len(set(names)) != len(names):
        raise _err(where, "methods.names", "a list without repeated names", names)
    if kind == "recovery" and "oracle" in names:
        raise _err(where, "methods.names", "names without 'oracle' (the true loadings; downstream studies only)", "oracle")

    mraw = raw.get("metrics", {"names": _DEFAULT_METRICS[kind]})
    _check_keys(where, mraw, "metrics", {"names"})
    metrics = mraw.get("names", _DEFAULT_METRICS[kind])
    if not isinstance(metrics, list) or any(m not in METRIC_SETS for m in metrics):
        raise _err(where, "metrics.names", f"a list of names from {sorted(METRIC_SETS)}", metrics)

    dstream = raw.get("downstream", {})
    _check_keys(where, dstream, "downstream", {"estimators", "zero_groups", "cv", "representation", "alphas", "rule", "tol"})
    if kind != "recovery":
        est = dstream.get("estimators", ["cls", "group_lasso"])
        if not isinstance(est, list) or not est or any(e not in ("cls", "group_lasso") for e in est):
            raise _err(where, "downstream.estimators", "a non-empty list from ['cls', 'group_lasso']", est)
        zg = dstream.get("zero_groups", [])
        if not isinstance(zg, list) or not all(isinstance(z, str) and z.isdigit() for z in zg):
            raise _err(where, "downstream.zero_groups", "a list of subset digit strings such as '01'", zg)
        cv = dstream.get("cv", 3)
        if not (isinstance(cv, int) and cv >= 2):
            raise _err(where, "downstream.cv", "an integer >= 2", cv)
        rep = dstream.get("representation", "paper")
        if rep not in ("paper", "posterior"):
            raise _err(where, "downstream.representation", "'paper' or 'posterior'", rep)
        alphas = dstream.get("alphas")
        if alphas is not None and (not isinstance(alphas, list) or not alphas or not all(_pos_num(x) and x <= 1 for x in alphas)):
            raise _err(where, "downstream.alphas", "a non-empty list of relative penalties in (0, 1] (lambda = alpha * lambda_max)", alphas)
        rule = dstream.get("rule", "min")
        if rule not in ("min", "1se"):
            raise _err(where, "downstream.rule", "'min' or '1se' (the cross-validation rule)", rule)
        tol = dstream.get("tol", 1e-6)
        if not _pos_num(tol):
            raise _err(where, "downstream.tol", "a positive number (KKT tolerance of the group-lasso solver)", tol)
        dstream = {"estimators": est, "zero_groups": zg, "cv": cv, "representation": rep, "alphas": alphas,
                   "rule": rule, "tol": float(tol)}
        if kind == "selection" and "group_lasso" not in est:
            raise _err(where, "downstream.estimators", "a list containing 'group_lasso' for a selection study", est)
        if kind == "selection" and not zg:
            raise _err(where, "downstream.zero_groups", "a non-empty list for a selection study (which structures are irrelevant)", zg)
        # zero groups must be subsets of the structure
        s0 = StudyConfig(st["name"], kind, 0, 1, sspec, design, grid, (), (), {}, (), {}, ()).structure(merged)
        for z in zg:
            if tuple(int(c) for c in z) not in s0.subsets:
                raise _err(where, "downstream.zero_groups", f"subsets of the structure {[''.join(map(str, s)) for s in s0.subsets]}", z)
    elif dstream:
        raise ConfigError(f"{where}: table [downstream] is only allowed for kinds 'downstream' and 'selection' (study.kind = {kind!r}).")

    checks = raw.get("checks", [])
    if not isinstance(checks, list):
        raise _err(where, "checks", "an array of tables [[checks]]", checks)
    out_checks = []
    for i, c in enumerate(checks):
        cw = f"checks[{i}]"
        if not isinstance(c, dict) or "kind" not in c or "name" not in c:
            raise ConfigError(f"{where}: '{cw}' must be a table with keys 'name' and 'kind'.")
        if c["kind"] not in CHECK_KINDS:
            raise _err(where, f"{cw}.kind", f"one of {sorted(CHECK_KINDS)}", c["kind"])
        allowed = set(CHECK_KINDS[c["kind"]]) | _CHECK_OPTIONAL
        _check_keys(where, c, cw, allowed)
        for k in CHECK_KINDS[c["kind"]]:
            if k not in c:
                raise ConfigError(f"{where}: missing key '{cw}.{k}' for a check of kind {c['kind']!r}.")
        if c["method"] not in names:
            raise _err(where, f"{cw}.method", f"one of the study's methods {names}", c["method"])
        for k in ("expected", "tolerance", "threshold", "max_slope"):
            if k in c and not (isinstance(c[k], numbers.Real) and not isinstance(c[k], bool)):
                raise _err(where, f"{cw}.{k}", "a number", c[k])
        if "tolerance" in c and not c["tolerance"] > 0:
            raise _err(where, f"{cw}.tolerance", "a positive number", c["tolerance"])
        if "confidence" in c and not (isinstance(c["confidence"], float) and 0.5 <= c["confidence"] < 1):
            raise _err(where, f"{cw}.confidence", "a number in [0.5, 1) (the confidence level of the slope's interval, e.g. 0.95)", c["confidence"])
        if "rule" in c and c["rule"] not in ("ci_within", "estimate_within"):
            raise _err(where, f"{cw}.rule", "'ci_within' (the whole interval in expected +- tolerance) or 'estimate_within'", c["rule"])
        if "x" in c and c["x"] not in grid:
            raise _err(where, f"{cw}.x", f"a grid parameter from {sorted(grid)}", c["x"])
        out_checks.append(dict(c))

    th = raw.get("theory", {})
    _check_keys(where, th, "theory", {"checks", "quick"})
    tchecks = th.get("checks", [])
    if not isinstance(tchecks, list) or not all(isinstance(x, str) for x in tchecks):
        raise _err(where, "theory.checks", "a list of check names (hcl_stats.theory.CHECKS)", tchecks)
    if not isinstance(th.get("quick", True), bool):
        raise _err(where, "theory.quick", "true or false", th.get("quick"))

    return StudyConfig(name=st["name"], kind=kind, seed=int(st["seed"]), replicates=int(st["replicates"]),
                       structure_spec=sspec, design=dict(design), grid={k: list(v) for k, v in grid.items()},
                       methods=tuple(names), metrics=tuple(metrics), downstream=dstream,
                       checks=tuple(out_checks), theory={"checks": tchecks, "quick": th.get("quick", True)},
                       figures=tuple(figures), description=str(st.get("description", "")),
                       path=str(path) if path is not None else None, raw=copy.deepcopy(raw))


def load_config(path) -> StudyConfig:
    """Read and validate a study config (TOML). Raises :class:`ConfigError` naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    return parse_config(raw, path)
