"""The ``hcl-stats`` command line (also ``python -m hcl_stats``).

Subcommands
-----------
simulate CONFIG [CONFIG ...]   run (or resume) studies declared in TOML configs
report                         figures, tables and REPORT.md from stored results
verify                         theory checks (hcl_stats.theory) and the configs' checks on stored results
reproduce [--quick]            every study -> theory checks -> figures -> report
fit DATA [DATA ...]            fit HCL to data files (one .npy/.csv per modality, or one .npz)
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


def _load_modalities(paths, delimiter):
    import numpy as np

    Xs, names = [], []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise CLIError(f"data file {path!r} does not exist.")
        suf = p.suffix.lower()
        try:
            if suf == ".npy":
                Xs.append(np.load(p, allow_pickle=False))
                names.append(p.stem)
            elif suf == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    for k in z.files:
                        Xs.append(z[k])
                        names.append(k)
            elif suf in (".csv", ".txt", ".tsv"):
                delim = delimiter or ("\t" if suf == ".tsv" else ",")
                with open(p) as fh:
                    first = fh.readline()
                try:
                    [float(v) for v in first.strip().split(delim)]
                    skip = 0
                except ValueError:
                    skip = 1  # a header line
                Xs.append(np.loadtxt(p, delimiter=delim, skiprows=skip, ndmin=2))
                names.append(p.stem)
            else:
                raise CLIError(f"data file {path!r} must be .npy, .npz or .csv/.tsv/.txt; got suffix {suf!r}.")
        except CLIError:
            raise
        except Exception as exc:
            raise CLIError(f"cannot read data file {path!r}: {exc}") from None
    return Xs, names


def cmd_fit(args):
    import numpy as np

    from . import HCL
    from .harness import parse_structure_spec

    Xs, names = _load_modalities(args.data, args.delimiter)
    if len(Xs) < 2:
        raise CLIError(f"fit needs at least two modalities (one file each, or one .npz with several arrays); got {len(Xs)}.")
    if args.structure == "auto":
        structure = "auto"
    else:
        try:
            structure = parse_structure_spec(args.structure, len(Xs)).with_names(names)
        except ValueError as exc:
            raise CLIError(f"--structure: {exc}") from None
    kw = {} if args.method is None else {"method": args.method}
    if args.noise is not None:
        kw["noise"] = args.noise
    if structure == "auto":
        kw["selection"] = {"level": args.level, "max_rank": args.max_rank, "n_resamples": args.n_resamples}
    elif (args.level, args.max_rank, args.n_resamples) != (1e-3, None, 10):
        raise CLIError("--level, --max-rank and --n-resamples apply to --structure auto only.")
    try:
        est = HCL(structure, identifiability=args.identifiability, **kw).fit(Xs)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    print(est.summary())
    if est.selection_ is not None:
        print(est.selection_.summary())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    s = est.structure_
    save = {"loadings": est.loadings_, "noise_var": est.noise_var_, "noise_var_features": est.noise_var_features_,
            "mean": est.mean_, "n_features": np.array(est.n_features_),
            "structure": np.array(",".join("".join(map(str, sub)) + f":{s.rank(sub)}" for sub in s.subsets)),
            "modalities": np.array(names)}
    if args.transform:
        save["representation"] = est.transform(Xs)
    np.savez(out, **save)
    Path(str(out.with_suffix("")) + "_summary.txt").write_text(str(est.summary()) + "\n")
    print(f"saved: {out} (loadings, noise variances, mean, structure{', representation' if args.transform else ''}) "
          f"and {str(out.with_suffix(''))}_summary.txt")
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

    f = sub.add_parser("fit", help="fit HCL to data files and save the results",
                       description="Fit the hierarchical multimodal factor model to data: one file per modality "
                                   "(.npy, or .csv/.tsv with an optional header line; rows are samples) or one .npz "
                                   "holding one array per modality. Prints the summary and saves the loadings, noise "
                                   "variances and structure to --out (.npz) with a text summary next to it.",
                       epilog="Example: hcl-stats fit codes.npy notes.npy labs.csv --structure 012:2,01:2,0:1,1:1,2:1 --out fit.npz")
    f.add_argument("data", nargs="+", metavar="DATA", help="data files, one per modality (or one .npz)")
    f.add_argument("--structure", required=True,
                   help="'auto' (select from data) or subsets with ranks, e.g. '012:2,01:2,0:1' (digits: 0-based modality indices)")
    f.add_argument("--method", help="estimation method (default: HCL's default); see hcl_stats.estimation.METHODS")
    f.add_argument("--noise", choices=("feature", "modality", "isotropic"),
                   help="noise model, the same for the selection and the fit: one variance per feature, per modality, "
                        "or one for all (default: the method's default, 'feature' for the default method)")
    f.add_argument("--level", type=float, default=1e-3, help="--structure auto: level of each rank test (default: %(default)s)")
    f.add_argument("--max-rank", type=int, default=None, help="--structure auto: largest rank tested per modality")
    f.add_argument("--n-resamples", type=int, default=10,
                   help="--structure auto: subsamples for the stability report (default: %(default)s; 0 = none)")
    f.add_argument("--out", default="hcl_fit.npz", help="output .npz (default: %(default)s)")
    f.add_argument("--transform", action="store_true", help="also save the representation of the samples")
    f.add_argument("--delimiter", help="CSV delimiter (default ',' or tab for .tsv)")
    f.add_argument("--identifiability", choices=("raise", "warn", "ignore"), default="raise",
                   help="what to do when the structure violates the identifiability conditions (default: %(default)s)")
    f.set_defaults(func=cmd_fit)
    return p


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
