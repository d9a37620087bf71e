"""The ``hcl-stats`` command line (also ``python -m hcl_stats``).

Subcommands
-----------
simulate CONFIG [CONFIG ...]   run (or resume) studies declared in TOML configs
report                         figures, tables and REPORT.md from stored results
verify                         theory checks (hcl_stats.theory) and the configs' checks on stored results
reproduce [--quick]            every study -> theory checks -> figures -> report
fit DATA [DATA ...]            fit HCL to data files (one .npy/.csv per modality, or one .npz); save the fit
transform FIT DATA [DATA ...]  representation of samples under a saved fit
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

_QUICK_SUFFIX = "_quick"


class CLIError(Exception):
    """A usage error reported as 'hcl-stats: error: ...' with exit status 2."""


def _n_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def _find_config_dir(given):
    if given:
        p = Path(given)
        if not p.is_dir():
            raise CLIError(f"--configs must be a directory of study configs (*.toml); got {given!r}, which is not a directory.")
        return p
    for p in (Path.cwd() / "simulations" / "configs", Path(__file__).resolve().parents[1] / "simulations" / "configs"):
        if p.is_dir():
            return p
    raise CLIError("cannot find the study configs: run from the repository root (which has simulations/configs/) "
                   "or pass --configs DIR.")


def _study_configs(config_dir, quick):
    """All configs of one flavour: *_quick.toml when quick, the others otherwise (validated first)."""
    from .harness import load_config

    order = {"recovery": 0, "downstream_m": 1, "downstream_n": 2, "selection": 3}  # the paper's order
    files = sorted((f for f in Path(config_dir).glob("*.toml") if f.stem.endswith(_QUICK_SUFFIX) == bool(quick)),
                   key=lambda f: (order.get(f.stem.removesuffix(_QUICK_SUFFIX), 99), f.stem))
    files = [f for f in files if _is_harness_config(f)]
    if not files:
        raise CLIError(f"no {'quick ' if quick else ''}study configs (*{'_quick' if quick else ''}.toml with a [study] table) in {config_dir}.")
    return [load_config(f) for f in files]


def _is_harness_config(path):
    """A simulation-study config has a [study] table (other TOML files, e.g. real-data studies run by
    their own modules, are skipped). Unreadable TOML counts as a study config, so that its error is
    reported."""
    from .harness.config import tomllib

    try:
        with open(path, "rb") as fh:
            return "study" in tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return True


def _with_replicates(cfg, n):
    """The first ``n`` replicates of ``cfg`` (their seeds and rows are those of the full config)."""
    import dataclasses

    if n is None:
        return cfg
    if n < 1:
        raise CLIError(f"--replicates must be a positive integer; got {n}.")
    return dataclasses.replace(cfg, replicates=min(n, cfg.replicates))


def _default_out(quick):
    return Path("reports") / "quick" if quick else Path("reports")


def _check_out(out, quick):
    """Quick results never go to the full report directory and vice versa."""
    out = Path(out)
    if quick and out.resolve() == Path("reports").resolve():
        raise CLIError(f"--out {out} is the directory of the full report; quick runs write to reports/quick/ (or another directory).")
    return out


def _run_kwargs(args):
    if args.scheduler and args.local_cluster:
        raise CLIError("--scheduler and --local-cluster are exclusive: give one.")
    if args.jobs < 1:
        raise CLIError(f"--jobs must be a positive integer; got {args.jobs}.")
    return dict(n_jobs=args.jobs, scheduler=args.scheduler, local_cluster=args.local_cluster,
                progress=not args.no_progress)


def _add_run_options(p):
    p.add_argument("-j", "--jobs", type=int, default=_n_cpus(),
                   help="local worker processes (joblib), or Dask workers with --local-cluster (default: the CPUs available, %(default)s)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on a running Dask scheduler, e.g. tcp://10.0.0.1:8786 (workers need hcl_stats installed)")
    p.add_argument("--local-cluster", action="store_true", help="start a Dask LocalCluster with --jobs single-threaded workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--replicates", type=int, metavar="N",
                   help="run only the first N replicates (same seeds and rows as the full run, which resumes from them)")


# -- subcommands --------------------------------------------------------------------------------
def cmd_simulate(args):
    from .harness import load_config, run_study
    from .harness.report import write_report

    configs = [load_config(c) for c in args.configs]  # every config validated before any work
    kw = _run_kwargs(args)
    configs = [_with_replicates(c, args.replicates) for c in configs]
    for cfg in configs:
        quick = cfg.name.endswith(_QUICK_SUFFIX)
        out = _check_out(args.out or _default_out(quick), quick)
        print(run_study(cfg, out, fresh=args.fresh, max_tasks=args.max_tasks, **kw))
        if args.report:
            print(f"report: {write_report([cfg], out, command=' '.join(['hcl-stats'] + sys.argv[1:]))}")
    return 0


def cmd_report(args):
    from .harness.report import write_report

    configs = _study_configs(_find_config_dir(args.configs), args.quick)
    out = _check_out(args.out or _default_out(args.quick), args.quick)
    cmd = "hcl-stats reproduce" + (" --quick" if args.quick else "")
    path = write_report(configs, out, command=cmd, title=f"hcl_stats simulation report{' (quick)' if args.quick else ''}",
                        progress=not args.no_progress)
    print(f"report: {path}")
    return 0


def _print_verdicts(checks, theory, err):
    """Print every verdict; returns (failed, could not run)."""
    fails = not_run = 0
    for study, c in checks:
        print(f"[{c['verdict']:4s}] {study}: {c['name']} -- {c['detail']}")
        fails += c["verdict"] == "FAIL"
        not_run += c["verdict"] not in ("PASS", "FAIL")
    for v in theory:
        print(f"[{v['verdict']:4s}] theory: {v['name']} -- {v['detail']}")
        fails += v["verdict"] == "FAIL"
        not_run += v["verdict"] not in ("PASS", "FAIL")
    if err:
        print(f"[N/A ] theory: {err}")
        not_run += not any(v["verdict"] not in ("PASS", "FAIL") for v in theory)
    return fails, not_run


def cmd_verify(args):
    """Exit status: 0 all checks ran and passed; 1 some check failed; 3 some check could not run
    (no stored rows for a study, a method without finished rows, an exception, an unknown name)."""
    from .harness import load_rows
    from .harness.aggregate import evaluate_checks
    from .harness.report import run_theory_checks

    configs = _study_configs(_find_config_dir(args.configs), args.quick)
    out = _check_out(args.out or _default_out(args.quick), args.quick)
    names = args.checks.split(",") if args.checks else None
    if names is None:
        listed = [n for cfg in configs for n in cfg.theory["checks"]]
        names = listed or None
    theory, err = run_theory_checks(names, quick=args.quick, out_dir=out, progress=not args.no_progress)
    checks = []
    for cfg in configs:
        rows = load_rows(out, cfg)
        if not rows:
            checks.append((cfg.name, {"name": "(all checks)", "verdict": "N/A",
                                      "detail": f"no stored results in {out}/results (run hcl-stats simulate first)"}))
            continue
        try:
            checks += [(cfg.name, c) for c in evaluate_checks(cfg, rows)]
        except Exception as exc:  # reported as a check that could not run
            checks.append((cfg.name, {"name": "(all checks)", "verdict": "N/A",
                                      "detail": f"evaluating the checks raised {type(exc).__name__}: {exc}"}))
    fails, not_run = _print_verdicts(checks, theory, err)
    print(f"{fails} failed check(s), {not_run} check(s) could not run; theory verdicts stored in {out}/results/theory.json")
    if not_run:
        return 3
    return 1 if fails else 0


def cmd_reproduce(args):
    from .harness import run_study
    from .harness.report import run_theory_checks, write_report

    t0 = time.perf_counter()
    configs = _study_configs(_find_config_dir(args.configs), args.quick)  # all validated first
    out = _check_out(args.out or _default_out(args.quick), args.quick)
    kw = _run_kwargs(args)
    for cfg in configs:
        print(run_study(_with_replicates(cfg, args.replicates), out, fresh=args.fresh, **kw), flush=True)
    if not args.skip_theory:
        names = [n for cfg in configs for n in cfg.theory["checks"]] or None
        theory, err = run_theory_checks(names, quick=args.quick, out_dir=out, progress=not args.no_progress)
        print(f"theory checks: {sum(v['verdict'] == 'PASS' for v in theory)} of {len(theory)} passed" + (f" ({err})" if err else ""))
    cmd = "hcl-stats reproduce" + (" --quick" if args.quick else "")
    path = write_report(configs, out, command=cmd, title=f"hcl_stats simulation report{' (quick)' if args.quick else ''}",
                        progress=not args.no_progress)
    print(f"report: {path} ({time.perf_counter() - t0:.0f} s in all)")
    return 0


class Modality:
    """One modality read from a data file: values (n, p), and the labels the file gave."""

    def __init__(self, X, source, name, feature_names=None, sample_names=None, note=""):
        self.X, self.source, self.name = X, source, name
        self.feature_names, self.sample_names, self.note = feature_names, sample_names, note

    @property
    def where(self):
        return f"modality {self.name!r} (file {self.source})"


def _is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _column_numbers(cells):
    """True for a row 0, 1, 2, ... or 1, 2, 3, ... (integers as written, at least 3): column numbers."""
    if len(cells) < 3 or not all(c.strip().lstrip("-").isdigit() for c in cells):
        return False
    v = [int(c) for c in cells]
    return v == list(range(v[0], v[0] + len(v))) and v[0] in (0, 1)


def _sniff_table(path, delim, header, index_col):
    """Decide header and sample-name column of a text table from its first two lines.
    Returns (header?, index column?, header cells or None, description)."""
    with open(path, newline="") as fh:
        first = fh.readline().rstrip("\r\n")
        second = fh.readline().rstrip("\r\n")
    if not first.strip():
        raise CLIError(f"data file {str(path)!r} is empty (its first line is blank).")
    c1, c2 = first.split(delim), second.split(delim) if second.strip() else None
    if c2 is None:
        raise CLIError(f"data file {str(path)!r} has fewer than two lines; it needs one row per sample (at least two).")
    if len(c1) == 1 and len(first) > 1 and delim == "," and ("\t" in first or ";" in first):
        raise CLIError(f"data file {str(path)!r}: its first line has no ',' but has {'tabs' if chr(9) in first else ';'}; "
                       "pass --delimiter (e.g. --delimiter ';' or use the .tsv suffix for tabs).")
    if index_col == "auto":
        idx = (not _is_number(c2[0])) or (not c1[0].strip() and len(c1) == len(c2) and len(c1) > 1)
        why_idx = "its first column holds sample names" if idx else ""
    else:
        idx = index_col == "yes"
        why_idx = "first column holds sample names (--index-col yes)" if idx else ""
    cells = c1[1:] if idx else c1
    if header == "auto":
        if not all(_is_number(c) for c in cells):
            hdr, why = True, "header detected (first row holds column names)"
        elif _column_numbers(cells) and not _column_numbers(c2[1:] if idx else c2):
            hdr, why = True, "header detected (first row is the column numbers " + ", ".join(cells[:3]) + ", ...; pass --header no if it is data)"
        else:
            hdr, why = False, "no header (first row is numeric data; pass --header yes if it holds column names)"
    else:
        hdr = header == "yes"
        why = f"{'header' if hdr else 'no header'} (--header {header})"
    if idx and not hdr and index_col == "auto" and not c1[0].strip():
        idx = False
    desc = why + (f"; {why_idx}" if why_idx else "")
    return hdr, idx, ([c.strip().strip('"') for c in cells] if hdr else None), desc


def _read_text_table(p, delim, header, index_col):
    import numpy as np

    hdr, idx, names, desc = _sniff_table(p, delim, header, index_col)
    with open(p, newline="") as fh:
        fh.readline()
        n_cols = len(fh.readline().rstrip("\r\n").split(delim))
    if hdr and len(names) + idx != n_cols:
        raise CLIError(f"data file {str(p)!r}: the header has {len(names) + idx} fields but the first data row has {n_cols}.")
    if idx and n_cols < 2:
        raise CLIError(f"data file {str(p)!r} has only a sample-name column and no features.")
    usecols = range(1, n_cols) if idx else None
    X = np.loadtxt(p, delimiter=delim, skiprows=int(hdr), usecols=usecols, ndmin=2, dtype=np.float64)
    samples = None
    if idx:
        samples = [v.strip().strip('"') for v in np.loadtxt(p, delimiter=delim, skiprows=int(hdr), usecols=0, dtype=str, ndmin=1)]
    return X, names, samples, desc


def _unique_names(entries):
    """Modality names, unique: a file's stem (or an .npz key); clashes get their parent folders
    prepended until they differ, then '#2', '#3'."""
    names = [e[1] for e in entries]
    for depth in range(1, 8):
        dup = {n for n in names if names.count(n) > 1}
        if not dup:
            return names
        for i, (path, base) in enumerate(entries):
            if names[i] in dup:
                parents = Path(path).resolve().parent.parts[-depth:]
                names[i] = "/".join([*parents, base])
    seen = {}
    for i, n in enumerate(names):
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n}#{seen[n]}"
    return names


def _load_modalities(paths, delimiter, header="auto", index_col="auto"):
    """Read the data files: a list of Modality (names unique)."""
    import numpy as np

    mods, entries = [], []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise CLIError(f"data file {path!r} does not exist.")
        suf = p.suffix.lower()
        try:
            if suf == ".npy":
                mods.append(Modality(np.load(p, allow_pickle=False), str(path), None, note="numpy array"))
                entries.append((path, p.stem))
            elif suf == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    if "header" in z.files and "loadings" in z.files:
                        raise CLIError(f"data file {path!r} is a saved fit, not data.")
                    for k in z.files:
                        mods.append(Modality(z[k], f"{path}[{k}]", None, note="numpy array"))
                        entries.append((path, k))
            elif suf in (".csv", ".txt", ".tsv"):
                delim = delimiter or ("\t" if suf == ".tsv" else ",")
                X, names, samples, desc = _read_text_table(p, delim, header, index_col)
                mods.append(Modality(X, str(path), None, feature_names=names, sample_names=samples, note=desc))
                entries.append((path, p.stem))
            else:
                raise CLIError(f"data file {path!r} must be .npy, .npz or .csv/.tsv/.txt; got suffix {suf!r}.")
        except CLIError:
            raise
        except Exception as exc:
            raise CLIError(f"cannot read data file {path!r}: {exc}") from None
    for m, name in zip(mods, _unique_names(entries)):
        m.name = name
    for m in mods:
        X = np.asarray(m.X)
        if X.ndim != 2:
            raise CLIError(f"{m.where} must be a 2-D table (rows: samples, columns: features); got shape {X.shape}.")
        if X.shape[1] == 0:
            raise CLIError(f"{m.where} has no features (0 columns).")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise CLIError(f"{m.where} must hold numbers; got dtype {X.dtype}.")
        m.X = np.asarray(X, dtype=np.float64)
        if m.feature_names is not None:
            uniq, counts = np.unique(np.array(m.feature_names), return_counts=True)
            if np.any(counts > 1):
                raise CLIError(f"{m.where}: duplicate column names {uniq[counts > 1][:5].tolist()} in the header; "
                               "feature names must be unique.")
    return mods


def _check_modalities(mods, for_fit=True):
    """Same samples in every file (matched by sample name when the files give them), finite values,
    and for a fit no constant modality or feature: every message names the file. Reorders rows in
    place (to the sample order of the first file with sample names)."""
    import numpy as np

    from .io import align_rows

    named = [m for m in mods if m.sample_names is not None]
    if named:
        try:
            orders = align_rows([m.sample_names for m in named], [m.where for m in named], "the data files")
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        for m, o in zip(named, orders):
            if o is not None:
                m.X, m.sample_names = m.X[o], [m.sample_names[i] for i in o]
                m.note += f"; rows put in the sample order of {named[0].source}"
    if len(set(m.X.shape[0] for m in mods)) > 1:
        raise CLIError("the data files must have the same number of rows (samples); got "
                       + ", ".join(f"{m.source}: {m.X.shape[0]}" for m in mods) + ".")
    for m in mods:
        X = m.X
        finite = np.isfinite(X)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            raise CLIError(f"{m.where} has {int((~finite).sum())} missing or infinite values (first at data row "
                           f"{bad[0] + 1}, column {bad[1] + 1}); HCL needs complete numeric data.")
        if not for_fit:
            continue
        const = np.flatnonzero(np.all(X == X[:1], axis=0))
        if const.size == X.shape[1]:
            raise CLIError(f"{m.where} is constant: all its {X.shape[1]} features take one value on every sample, so it "
                           "carries no information; leave the file out.")
        if const.size:
            names = [m.feature_names[j] for j in const[:10]] if m.feature_names else [f"column {j + 1}" for j in const[:10]]
            raise CLIError(f"{m.where}: {const.size} constant features (zero variance), e.g. {names}; remove them from "
                           "the file (they carry no information and make the noise model degenerate).")


def _named_error(exc, mods):
    """An estimator error with 'Xs[m]' replaced by the modality's name and file, and the 0-based
    modality indices of the message explained."""
    import re

    def where(mt):
        m = int(mt.group(1))
        return mods[m].where if m < len(mods) else mt.group(0)

    msg = re.sub(r"Xs\[(\d+)\](?:\.shape\[1\])?", where, str(exc))
    legend = ", ".join(f"{m} = {mod.name!r} ({mod.source})" for m, mod in enumerate(mods))
    return f"{msg} [modalities: {legend}]"


def _write_representation(path, Z, columns, samples):
    import numpy as np

    samples = [str(i) for i in range(Z.shape[0])] if samples is None else samples
    with open(path, "w", newline="") as fh:
        fh.write(",".join(["sample", *(_csv_cell(c) for c in columns)]) + "\n")
        for s_, row in zip(samples, Z):
            fh.write(_csv_cell(s_) + "," + ",".join(np.char.mod("%.17g", row)) + "\n")


def _csv_cell(v):
    v = str(v)
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n') else v


def _alpha_arg(text):
    """--alpha: 'bic', 'cv' or a non-negative number."""
    import argparse

    if text in ("bic", "cv"):
        return text
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'bic', 'cv' or a number >= 0; got {text!r}") from None
    if not (v >= 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected 'bic', 'cv' or a number >= 0; got {text!r}")
    return v


def cmd_fit(args):
    from . import HCL
    from .harness import parse_structure_spec

    mods = _load_modalities(args.data, args.delimiter, args.header, args.index_col)
    if len(mods) < 2:
        raise CLIError(f"fit needs at least two modalities (one file each, or one .npz with several arrays); got {len(mods)}.")
    _check_modalities(mods)
    for m in mods:
        print(f"read {m.source}: modality {m.name!r}, {m.X.shape[0]} samples x {m.X.shape[1]} features ({m.note})")
    names = [m.name for m in mods]
    if args.structure == "auto":
        structure = "auto"
    else:
        try:
            structure = parse_structure_spec(args.structure, len(mods)).with_names(names)
        except ValueError as exc:
            raise CLIError(f"--structure: {exc}") from None
    kw = {} if args.method is None else {"method": args.method}
    if args.noise is not None:
        kw["noise"] = args.noise
    if args.alpha is not None:
        kw["alpha"] = args.alpha
    if args.l1_ratio is not None:
        if args.alpha is None:
            raise CLIError("--l1-ratio applies with --alpha only (the mix of the sparsity penalty).")
        kw["l1_ratio"] = args.l1_ratio
    if structure == "auto":
        kw["selection"] = {"level": args.level, "max_rank": args.max_rank, "n_resamples": args.n_resamples}
    elif (args.level, args.max_rank, args.n_resamples) != (1e-3, None, 10):
        raise CLIError("--level, --max-rank and --n-resamples apply to --structure auto only.")
    Xs = {m.name: m.X for m in mods}
    t0 = time.perf_counter()
    try:
        est = HCL(structure, identifiability=args.identifiability, **kw).fit(Xs)
    except ValueError as exc:
        raise CLIError(_named_error(exc, mods)) from None
    fit_s = time.perf_counter() - t0
    if any(m.feature_names is not None for m in mods):  # the files' column names travel with the fit
        import numpy as np

        est.feature_names_in_ = [None if m.feature_names is None else np.array(m.feature_names, dtype=str) for m in mods]
    print(est.summary())
    if est.selection_ is not None:
        print(est.selection_.summary())
    if getattr(est, "alpha_path_", None) is not None:
        print("penalty path (alpha relative to alpha_max):")
        print(est.alpha_path_.to_frame().to_string(index=False))
    out = Path(args.out)
    est.save(out)
    stem = str(out.with_suffix(""))
    Path(stem + "_summary.txt").write_text(str(est.summary()) + "\n")
    written = [f"{out} (the fit: hcl_stats.load_fit)", f"{stem}_summary.txt"]
    if args.transform:
        samples = next((m.sample_names for m in mods if m.sample_names is not None), None)
        _write_representation(stem + "_representation.csv", est.transform([m.X for m in mods]),
                              est.get_feature_names_out(), samples)
        written.append(f"{stem}_representation.csv (samples x {est.structure_.n_factors} factors)")
    print(f"fit: {fit_s:.1f} s; saved: " + ", ".join(written))
    return 0


def cmd_transform(args):
    """Representation of new samples under a saved fit."""
    import numpy as np

    from .io import load_fit

    try:
        est = load_fit(args.fit)
    except (OSError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    mods = _load_modalities(args.data, args.delimiter, args.header, args.index_col)
    names = est.structure_.names
    if len(mods) != len(names):
        raise CLIError(f"the fit {args.fit} has {len(names)} modalities {list(names)}; got {len(mods)} data files.")
    _check_modalities(mods, for_fit=False)
    fitted = getattr(est, "feature_names_in_", None) or [None] * len(mods)
    Xs = []
    for m, want, p in zip(mods, fitted, est.n_features_):
        X = m.X
        if want is not None and m.feature_names is not None and list(m.feature_names) != list(want):
            pos = {v: j for j, v in enumerate(m.feature_names)}
            missing = [v for v in want.tolist() if v not in pos]
            if missing or len(pos) != len(want):
                raise CLIError(f"{m.where}: its columns must be the {len(want)} features of the fit's modality "
                               f"{names[len(Xs)]!r}; {len(missing)} are missing (e.g. {missing[:5]}), file has {len(pos)}.")
            X = X[:, [pos[v] for v in want.tolist()]]
            m.note += "; columns matched by name"
        if X.shape[1] != p:
            raise CLIError(f"{m.where} has {X.shape[1]} features; the fit's modality {names[len(Xs)]!r} has {p}.")
        Xs.append(X)
    for m in mods:
        print(f"read {m.source}: as modality {names[mods.index(m)]!r}, {m.X.shape[0]} samples x {m.X.shape[1]} features ({m.note})")
    kind = args.kind
    Z = est.transform(Xs) if kind == "paper" else est.posterior_mean(Xs)
    samples = next((m.sample_names for m in mods if m.sample_names is not None), None)
    _write_representation(args.out, np.asarray(Z), est.get_feature_names_out(), samples)
    print(f"saved: {args.out} ({Z.shape[0]} samples x {Z.shape[1]} factors, representation {kind!r})")
    return 0


def build_parser():
    from . import __version__

    p = argparse.ArgumentParser(
        prog="hcl-stats",
        description="Hierarchical Contrastive Learning (HCL): simulation studies of the paper, reports, theory checks, "
                    "and fitting the hierarchical multimodal factor model to data.",
        epilog="Main command: 'hcl-stats reproduce --quick' (all quick studies -> theory checks -> figures -> "
               "reports/quick/REPORT.md). Run 'hcl-stats SUBCOMMAND --help' for the options of each subcommand.")
    p.add_argument("--version", action="version", version=f"hcl_stats {__version__}")
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    s = sub.add_parser("simulate", help="run or resume simulation studies declared in TOML configs",
                       description="Run (or resume: finished tasks are skipped) the studies of the given configs. "
                                   "Rows go to OUT/results/<study>.jsonl as each replicate finishes; quick configs "
                                   "(*_quick.toml) default to reports/quick/, others to reports/.")
    s.add_argument("configs", nargs="+", metavar="CONFIG", help="study config(s), e.g. simulations/configs/recovery_quick.toml")
    s.add_argument("--out", help="output directory (default: reports/ or reports/quick/ for *_quick configs)")
    s.add_argument("--fresh", action="store_true", help="discard stored results of these studies first")
    s.add_argument("--max-tasks", type=int, help="run at most this many remaining tasks per study")
    s.add_argument("--report", action="store_true", help="also write figures, tables and REPORT.md")
    _add_run_options(s)
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("report", help="figures, tables and REPORT.md from stored results",
                       description="Draw every figure and table from the stored results (no model is fitted) and "
                                   "write OUT/REPORT.md.")
    r.add_argument("--quick", action="store_true", help="the quick studies (reports/quick/)")
    r.add_argument("--out", help="results/report directory (default: reports/ or reports/quick/)")
    r.add_argument("--configs", help="directory of the study configs (default: simulations/configs)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_report)

    v = sub.add_parser("verify", help="run the theory checks and the studies' checks on stored results",
                       description="Run hcl_stats.theory checks (stored in OUT/results/theory.json for the report) and "
                                   "evaluate each study config's [[checks]] on its stored results. Exit status 1 if "
                                   "any check fails, 3 if any check could not run (no stored results, an exception, "
                                   "an unknown check name).")
    v.add_argument("--quick", action="store_true", help="quick theory checks and the quick studies' results")
    v.add_argument("--checks", help="comma-separated theory check names (default: all of hcl_stats.theory.CHECKS)")
    v.add_argument("--out", help="results directory (default: reports/ or reports/quick/)")
    v.add_argument("--configs", help="directory of the study configs (default: simulations/configs)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_verify)

    q = sub.add_parser("reproduce", help="all studies -> theory checks -> figures -> report",
                       description="Run (or resume) every study, the theory checks, then write the figures, tables "
                                   "and REPORT.md. --quick runs the *_quick.toml studies into reports/quick/ (a few "
                                   "minutes on 2 cores); without it the full studies go to reports/.")
    q.add_argument("--quick", action="store_true", help="the quick variants (reports/quick/)")
    q.add_argument("--out", help="output directory (default: reports/ or reports/quick/)")
    q.add_argument("--configs", help="directory of the study configs (default: simulations/configs)")
    q.add_argument("--fresh", action="store_true", help="discard stored results first")
    q.add_argument("--skip-theory", action="store_true", help="do not run hcl_stats.theory checks")
    _add_run_options(q)
    q.set_defaults(func=cmd_reproduce)

    f = sub.add_parser("fit", help="fit HCL to data files and save the fit",
                       description="Fit the hierarchical multimodal factor model to data: one file per modality "
                                   "(.npy, or .csv/.tsv/.txt text tables, rows = samples) or one .npz holding one array "
                                   "per modality. Text tables: a header row of column names is detected (or set with "
                                   "--header) and a first column of sample names too (--index-col); with sample names "
                                   "the files' rows are matched by name. What was detected is printed for each file. "
                                   "Modalities are named after the files (parent folders added when two files share a "
                                   "name). Prints the summary and writes OUT (the saved fit, read back by "
                                   "hcl_stats.load_fit or 'hcl-stats transform'), STEM_summary.txt and, with "
                                   "--transform, STEM_representation.csv (STEM: OUT without its suffix) (one row per sample: sample name, then one "
                                   "column per factor, named '{modalities}:j').",
                       epilog="Example: hcl-stats fit codes.npy notes.npy labs.csv --structure 012:2,01:2,0:1,1:1,2:1 --out fit.npz")
    f.add_argument("data", nargs="+", metavar="DATA", help="data files, one per modality (or one .npz)")
    f.add_argument("--structure", required=True,
                   help="'auto' (select from data) or subsets with ranks, e.g. '012:2,01:2,0:1' (digits: 0-based modality indices, in the order of the files)")
    f.add_argument("--method", help="estimation method (default: HCL's default); see hcl_stats.estimation.METHODS")
    f.add_argument("--noise", choices=("feature", "modality", "isotropic"),
                   help="noise model, the same for the selection and the fit: one variance per feature, per modality, "
                        "or one for all (default: the method's default, 'feature' for the default method)")
    f.add_argument("--alpha", type=_alpha_arg, default=None, metavar="{bic,cv,FLOAT}",
                   help="sparse loadings: 'bic' or 'cv' chooses the penalty from data (path with alpha = 0 on the grid, "
                        "relaxed refit), a number is a fixed penalty as a fraction of alpha_max (default: no penalty)")
    f.add_argument("--l1-ratio", type=float, default=None,
                   help="with --alpha: 1 = elementwise sparsity (default), 0 = whole features per subset (row groups)")
    f.add_argument("--level", type=float, default=1e-3, help="--structure auto: level of each rank test (default: %(default)s)")
    f.add_argument("--max-rank", type=int, default=None, help="--structure auto: largest rank tested per modality")
    f.add_argument("--n-resamples", type=int, default=10,
                   help="--structure auto: subsamples for the stability report (default: %(default)s; 0 = none)")
    f.add_argument("--out", default="hcl_fit.npz", help="the saved fit (.npz; default: %(default)s)")
    f.add_argument("--transform", action="store_true", help="also write the representation of the samples to STEM_representation.csv")
    _add_table_options(f)
    f.add_argument("--identifiability", choices=("raise", "warn", "ignore"), default="raise",
                   help="what to do when the structure violates the identifiability conditions (default: %(default)s)")
    f.set_defaults(func=cmd_fit)

    t = sub.add_parser("transform", help="representation of samples under a saved fit",
                       description="Read a fit saved by 'hcl-stats fit' (or HCL.save) and data files, one per modality "
                                   "in the fit's order (read as for 'fit'; columns matched by name when both the fit and "
                                   "the file have feature names), and write the representation as CSV: one row per "
                                   "sample (sample name, then one column per factor).",
                       epilog="Example: hcl-stats transform fit.npz new_rna.csv new_protein.csv new_atac.csv --out z.csv")
    t.add_argument("fit", metavar="FIT", help="a saved fit (.npz)")
    t.add_argument("data", nargs="+", metavar="DATA", help="data files, one per modality of the fit")
    t.add_argument("--out", default="hcl_representation.csv", help="output CSV (default: %(default)s)")
    t.add_argument("--kind", choices=("paper", "posterior"), default="paper",
                   help="'paper': the encoder (W^T W)^-1 W^T (as HCL.transform); 'posterior': E[z | x] (default: %(default)s)")
    _add_table_options(t)
    t.set_defaults(func=cmd_transform)
    return p


def _add_table_options(p):
    p.add_argument("--delimiter", help="text-table delimiter (default ',' or tab for .tsv)")
    p.add_argument("--header", choices=("auto", "yes", "no"), default="auto",
                   help="text tables: is the first row column names? 'auto' (default): yes when a cell is not a number, "
                        "or when the row is the column numbers 0,1,2,... or 1,2,3,... (at least 3)")
    p.add_argument("--index-col", choices=("auto", "yes", "no"), default="auto",
                   help="text tables: is the first column sample names? 'auto' (default): yes when the first data row "
                        "starts with a non-number, or the header's first cell is empty (as pandas writes an index)")


def main(argv=None):
    from .harness import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ConfigError) as exc:
        print(f"hcl-stats {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional dependency (e.g. dask.distributed for --local-cluster/--scheduler)
        print(f"hcl-stats {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"hcl-stats {args.command}: interrupted ({exc}); rerun the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
