"""Run a study: expand grid x replicates, run the tasks serially, on local processes (joblib) or
on a Dask cluster, and append each finished task's rows to a JSON Lines file.

Durability and resume
---------------------
Each finished task's rows are written with one ``write`` followed by ``flush`` and ``fsync``,
and every row carries its task id and the number of rows of its task. On start, the results
file is read back; a truncated last line (kill -9 during a write) and the rows of any task
that is not complete are dropped (the file is rewritten atomically without them), and the
complete tasks are skipped. So an interrupted run (Ctrl-C, kill -9, a lost worker) loses
nothing finished, and rerunning the same command resumes. Rows from a different config
(another config hash) are never mixed in: the run stops with an error unless ``fresh=True``.

Provenance
----------
``<name>.provenance.json`` records the package version, the git commit of the code (from the
package's own checkout, or, after a non-editable ``pip install .``, from the checkout in the
working directory together with whether the installed sources equal it: :func:`code_version`),
the config and the checks with their cut-offs (``checks_hash``, also stored in every row: the
verdicts are pre-registered).

Reproducibility
---------------
A task's numbers depend only on (seed, grid point, replicate) (see
:mod:`hcl_stats.harness.studies`), and each task runs with BLAS pinned to one thread
(threadpoolctl), so serial, multi-process and Dask runs give identical numbers whatever the
worker count. Rows are sorted by (grid index, replicate, method, estimator) when read.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..summary import Summary
from .config import StudyConfig
from .studies import run_task, task_id

__all__ = ["ResultStore", "run_study", "RunSummary", "provenance_base", "load_rows", "code_version"]


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


class ResultStore:
    """Append-only JSON Lines store of one study's rows, with its provenance file next to it."""

    def __init__(self, out_dir, name):
        self.dir = Path(out_dir) / "results"
        self.path = self.dir / f"{name}.jsonl"
        self.provenance_path = self.dir / f"{name}.provenance.json"

    def read(self, config_hash=None, repair=False):
        """Rows of complete tasks. With ``repair``, rewrite the file without truncated lines and
        incomplete tasks. Raises ValueError if rows of another config hash are found and
        ``config_hash`` is given."""
        if not self.path.exists():
            return []
        rows, bad = [], 0
        with open(self.path, "rb") as fh:
            data = fh.read()
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
        if config_hash is not None:
            other = {r.get("config_hash") for r in rows} - {config_hash}
            if other:
                raise ValueError(
                    f"results file {str(self.path)!r} holds rows of another configuration (config hash {sorted(other)[0]}, "
                    f"this config: {config_hash}); pass --fresh to discard them or write to another --out directory.")
        by_task = {}
        for r in rows:
            by_task.setdefault(r["task"], []).append(r)
        good = [r for t, rs in by_task.items() if len(rs) == rs[0].get("n_rows", -1) for r in rs]
        if repair and (bad or len(good) != len(rows)):
            tmp = self.path.with_suffix(".jsonl.tmp")
            with open(tmp, "w") as fh:
                for r in good:
                    fh.write(json.dumps(r, default=_json_default) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        good.sort(key=lambda r: (r["grid_index"], r["replicate"], r["method"], str(r.get("estimator"))))
        return good

    def append(self, rows):
        self.dir.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        with open(self.path, "a") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def clear(self):
        for p in (self.path, self.provenance_path):
            if p.exists():
                p.unlink()

    def read_provenance(self):
        if self.provenance_path.exists():
            with open(self.provenance_path) as fh:
                return json.load(fh)
        return None

    def write_provenance(self, prov):
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.provenance_path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(prov, fh, indent=1, default=_json_default)
        os.replace(tmp, self.provenance_path)


def load_rows(out_dir, cfg):
    """Rows of the complete tasks of the study ``cfg`` under ``out_dir`` that belong to its current
    grid and replicates (rows of removed grid points or replicates are ignored; no repair)."""
    wanted = {task_id(pt, r) for _, pt, r in cfg.tasks()}
    return [r for r in ResultStore(out_dir, cfg.name).read() if r["task"] in wanted and r.get("config_hash") == cfg.hash]


def _package_digest(pkg_dir):
    """sha256 of the package's Python sources (relative paths and contents), to tell whether an
    installed copy is the code of a checkout."""
    import hashlib

    h = hashlib.sha256()
    pkg_dir = Path(pkg_dir)
    for f in sorted(pkg_dir.rglob("*.py")):
        if "__pycache__" in f.parts:
            continue
        h.update(str(f.relative_to(pkg_dir).as_posix()).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


# what decides the rows a study computes: the package, the study configs and the build metadata
# (not the stored results, reports and figures a run itself writes into the checkout)
CODE_PATHS = ("hcl_stats", "simulations", "setup.cfg", "setup.py", "pyproject.toml")


def _repo_commit(root):
    """(commit, dirty) of the git work tree at ``root``, or (None, None). ``dirty``: a tracked file
    under :data:`CODE_PATHS` (the code or the configs, relative to the repository's top level)
    differs from the commit; changed results, reports or figures do not count."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if not commit:
            return None, None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                *(f":(top){p}" for p in CODE_PATHS)],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return None, None


def code_version(cwd=None, package_dir=None):
    """Where the running code comes from: a dict with ``git_commit`` (``"<sha>"``, ``"<sha>+dirty"``
    or None), ``source`` and ``package_matches_checkout``.

    1. The package is imported from a git checkout (an editable install or the source tree):
       that checkout's HEAD (``source = "package"``).
    2. Otherwise (a non-editable ``pip install .``: the package lives in site-packages), the git
       repository of the working directory ``cwd`` (default: the current one), if it holds an
       ``hcl_stats`` package: its HEAD, ``source = "cwd"``, and whether the installed sources are
       byte-identical to that checkout's (``package_matches_checkout``; when they are not, the
       commit gets the suffix ``+installed-differs``).

    ``package_dir`` (default: the directory of the imported ``hcl_stats``) is for tests.
    """
    pkg = Path(__file__).resolve().parents[1] if package_dir is None else Path(package_dir).resolve()
    root = pkg.parent
    if (root / ".git").exists():
        commit, dirty = _repo_commit(root)
        if commit:
            return {"git_commit": commit + ("+dirty" if dirty else ""), "source": "package", "package_matches_checkout": True}
    cwd = Path.cwd() if cwd is None else Path(cwd)
    top = None
    try:
        top = subprocess.run(["git", "-C", str(cwd), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        top = None
    if top and (Path(top) / "hcl_stats" / "__init__.py").is_file():
        commit, dirty = _repo_commit(top)
        if commit:
            same = _package_digest(pkg) == _package_digest(Path(top) / "hcl_stats")
            tag = commit + ("+dirty" if dirty else "") + ("" if same else "+installed-differs")
            return {"git_commit": tag, "source": "cwd", "package_matches_checkout": same}
    return {"git_commit": None, "source": None, "package_matches_checkout": None}


def _git_commit():
    return code_version()["git_commit"]


def provenance_base(cfg: StudyConfig) -> dict:
    from .. import __version__
    from .config import checks_hash

    code = code_version()
    return {
        "study": cfg.name, "kind": cfg.kind, "config_path": cfg.path, "config_hash": cfg.hash,
        "config": cfg.raw, "package_version": __version__, "git_commit": code["git_commit"],
        "code_source": code["source"], "package_matches_checkout": code["package_matches_checkout"],
        "checks": list(cfg.checks), "checks_hash": checks_hash(cfg),
        "seeds": {"seed": cfg.seed, "replicates": cfg.replicates,
                  "scheme": "replicate r: SeedSequence(seed).spawn(replicates)[r]; model child (r, 0); "
                            "data child (r, 1, hash(grid point))"},
        "python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
        "grid_points": cfg.grid_points(), "runs": [],
    }


@dataclass
class RunSummary:
    """What one call of :func:`run_study` did (``str`` is one line; ``summary()`` a
    :class:`hcl_stats.summary.Summary`).

    Attributes
    ----------
    study : str
    path : str
        The results file.
    n_tasks : int
        Tasks of the study.
    n_done_before : int
        Tasks already stored when the run started.
    n_run : int
        Tasks run now.
    wall_time : float
        Seconds.
    backend : str
    interrupted : bool
    """

    study: str
    path: str
    n_tasks: int
    n_done_before: int
    n_run: int
    wall_time: float
    backend: str
    interrupted: bool = False

    def summary(self) -> Summary:
        """The run as key / value lines.

        Returns
        -------
        hcl_stats.summary.Summary
        """
        return Summary(f"Study {self.study}", [
            ("State", "interrupted" if self.interrupted else "finished"),
            ("Tasks run", f"{self.n_run} in {self.wall_time:.1f} s ({self.backend})"),
            ("Already done", str(self.n_done_before)), ("Tasks in all", str(self.n_tasks)), ("Results", self.path)])

    def __str__(self):
        state = "interrupted" if self.interrupted else "finished"
        return (f"{self.study}: {state}; {self.n_run} tasks run in {self.wall_time:.1f} s ({self.backend}), "
                f"{self.n_done_before} already done, {self.n_tasks} in all -> {self.path}")


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _install_sigterm():
    """Treat SIGTERM (batch schedulers at their time limit, ``kill``) like Ctrl-C: stop cleanly;
    finished rows are already on disk either way."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _sigterm)


def _restore_sigterm(old):
    import signal

    if old is not None:
        signal.signal(signal.SIGTERM, old)


def _iter_serial(cfg, todo):
    for g, pt, r in todo:
        yield run_task(cfg, g, pt, r)


def _iter_joblib(cfg, todo, n_jobs):
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="2*n_jobs")
    yield from par(delayed(run_task)(cfg, g, pt, r) for g, pt, r in todo)


def _iter_dask(cfg, todo, scheduler, n_workers, state):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ImportError(f"running on a Dask cluster needs dask.distributed ({exc}); install it with pip install 'hcl_stats[dist]'.") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    state["backend"] = f"dask ({scheduler or f'LocalCluster, {n_workers} workers'})"
    try:
        futures = [client.submit(run_task, cfg, g, pt, r, pure=False, retries=2) for g, pt, r in todo]
        for fut in as_completed(futures):
            yield fut.result()
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_study(cfg: StudyConfig, out_dir, *, n_jobs: int = 1, scheduler: str | None = None,
              local_cluster: bool = False, progress: bool = True, fresh: bool = False,
              max_tasks: int | None = None) -> RunSummary:
    """Run (or resume) the study ``cfg``, writing rows to ``out_dir/results/<name>.jsonl``.

    Parameters
    ----------
    n_jobs : int
        Local worker processes (joblib, loky backend); 1 runs in this process. With
        ``local_cluster`` the number of Dask workers.
    scheduler : str, optional
        Address of a running Dask scheduler (e.g. "tcp://10.0.0.1:8786"); the workers must have
        hcl_stats installed.
    local_cluster : bool
        Start a Dask LocalCluster with ``n_jobs`` single-threaded worker processes.
    fresh : bool
        Discard existing results of this study in ``out_dir`` first.
    max_tasks : int, optional
        Run at most this many of the remaining tasks (for benchmarks and tests).
    """
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer; got {n_jobs!r}.")
    store = ResultStore(out_dir, cfg.name)
    if fresh:
        store.clear()
    done_rows = store.read(config_hash=cfg.hash, repair=True)
    done = {r["task"] for r in done_rows}
    tasks = cfg.tasks()
    todo = [(g, pt, r) for g, pt, r in tasks if task_id(pt, r) not in done]
    if max_tasks is not None:
        todo = todo[:max_tasks]
    prov = store.read_provenance() or provenance_base(cfg)
    if prov.get("config_hash") != cfg.hash:
        prov = provenance_base(cfg)
    prov.update({k: v for k, v in provenance_base(cfg).items() if k not in ("runs",)})
    state = {"backend": "serial" if n_jobs == 1 and not scheduler and not local_cluster else f"joblib ({n_jobs} processes)"}
    if scheduler or local_cluster:
        state["backend"] = "dask"
    run = {"start": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "n_jobs": n_jobs,
           "n_tasks_todo": len(todo), "n_tasks_done_before": len(done)}
    interrupted = False
    t0 = time.perf_counter()
    n_run = 0
    if todo:
        if scheduler or local_cluster:
            it = _iter_dask(cfg, todo, scheduler, n_jobs, state)
        elif n_jobs == 1:
            it = _iter_serial(cfg, todo)
        else:
            it = _iter_joblib(cfg, todo, n_jobs)
        old_term = _install_sigterm()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=cfg.name, unit="task", dynamic_ncols=True, file=sys.stderr)
        try:
            code = prov.get("git_commit")
            registered = prov.get("checks_hash")
            for rows in it:
                for row in rows:
                    row["git_commit"] = code   # resuming across code changes is visible in the report
                    row["checks_hash"] = registered  # the checks (cut-offs) pre-registered for these rows
                store.append(rows)
                n_run += 1
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt:
            interrupted = True
            print(f"\ninterrupted: {n_run} tasks of this run are saved in {store.path}; rerun the same command to resume.",
                  file=sys.stderr)
        finally:
            if bar is not None:
                bar.close()
            if hasattr(it, "close"):
                it.close()
            _restore_sigterm(old_term)
    wall = time.perf_counter() - t0
    run.update(end=time.strftime("%Y-%m-%dT%H:%M:%S%z"), backend=state["backend"], n_tasks_run=n_run,
               wall_time=wall, interrupted=interrupted)
    prov.setdefault("runs", []).append(run)
    store.write_provenance(prov)
    summary = RunSummary(cfg.name, str(store.path), len(tasks), len(done), n_run, wall, state["backend"], interrupted)
    if interrupted:
        raise KeyboardInterrupt(str(summary))
    return summary
