"""Simulation harness: config validation, seeding, durable resumable runs, identical numbers
across backends, the exact Wishart draw, figures and report from stored rows."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from hcl_stats import Structure
from hcl_stats.harness import ConfigError, ResultStore, load_config, parse_config, run_study
from hcl_stats.harness.studies import draw_covariance, replicate_seed, run_task, task_seeds

TINY_RECOVERY = """
[study]
name = "tiny_recovery"
kind = "recovery"
seed = 7
replicates = 3

[structure]
spec = "full"
n_modalities = 3
rank = 1

[design]
n_features = [6, 8, 10]
noise_var = 0.5
draw = "{draw}"

[grid]
n_samples = [300, 1200]

[methods]
names = ["naive_svd", "init", "paper", "default"]

[[checks]]
name = "falls"
kind = "decreasing"
confidence = 0.95
metric = "rel_gram[*]"
method = "paper"
"""

TINY_DOWNSTREAM = """
[study]
name = "tiny_selection"
kind = "selection"
seed = 3
replicates = 2

[structure]
spec = "full"
n_modalities = 3
rank = 1

[design]
n_features = [6, 8, 10]
noise_var = 0.1
n_samples = 5000
n_test = 500
draw = "wishart"

[grid]
n_labelled = [100, 300]

[methods]
names = ["paper", "oracle"]

[downstream]
estimators = ["cls", "group_lasso"]
zero_groups = ["01"]
alphas = [1.0, 0.1, 0.01]
"""


def write_config(tmp_path, text, name="tiny.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def tiny_cfg(tmp_path):
    return load_config(write_config(tmp_path, TINY_RECOVERY.format(draw="samples")))


def numbers(rows):
    """The numbers of a study, independent of row order and timings."""
    return sorted((r["task"], r["method"], str(r["estimator"]), r["status"], json.dumps(r["metrics"], sort_keys=True))
                  for r in rows)


def assert_same_numbers(a, b):
    na, nb = numbers(a), numbers(b)
    diff = [(x, y) for x, y in zip(na, nb) if x != y]
    assert len(na) == len(nb) and not diff, f"{len(diff)} rows differ, first: {diff[:1]}"


# -- config validation ------------------------------------------------------------------------
@pytest.mark.parametrize("edit, key", [
    (("[design]", "[design]\nn_sample = 5"), "design.n_sample"),
    (("seed = 7", "seed = -1"), "study.seed"),
    (("noise_var = 0.5", "noise_var = 'big'"), "design.noise_var"),
    (('names = ["naive_svd", "init", "paper", "default"]', 'names = ["naive_svd", "nope"]'), "methods.names"),
    (("n_samples = [300, 1200]", "n_samples = []"), "grid.n_samples"),
    (('kind = "recovery"', 'kind = "recover"'), "study.kind"),
    (('metric = "rel_gram[*]"', 'metric = "rel_gram[*]"\ntolerance = "x"'), "checks[0].tolerance"),
    (("n_features = [6, 8, 10]", "n_features = [6, 8]"), "design.n_features"),
])
def test_bad_config_names_key_and_file(tmp_path, edit, key):
    text = TINY_RECOVERY.format(draw="samples").replace(*edit)
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")) as exc:
        load_config(path)
    assert str(path) in str(exc.value)


def test_unknown_table_and_missing_keys(tmp_path):
    with pytest.raises(ConfigError, match="unknown table or key 'extra'"):
        load_config(write_config(tmp_path, TINY_RECOVERY.format(draw="samples") + "\n[extra]\na = 1\n"))
    with pytest.raises(ConfigError, match="missing parameter 'noise_var'"):
        load_config(write_config(tmp_path, TINY_RECOVERY.format(draw="samples").replace("noise_var = 0.5", "")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write_config(tmp_path, "[study\nname="))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_shipped_configs_are_valid():
    from pathlib import Path

    from hcl_stats.cli import _is_harness_config

    files = sorted((Path(__file__).resolve().parents[1] / "simulations" / "configs").glob("*.toml"))
    files = [f for f in files if _is_harness_config(f)]
    names = {f.stem for f in files}
    for study in ("recovery", "downstream_m", "downstream_n", "selection"):
        assert study in names and f"{study}_quick" in names
    for f in files:
        cfg = load_config(f)
        assert cfg.tasks()
    full = load_config(Path(__file__).resolve().parents[1] / "simulations" / "configs" / "recovery.toml")
    assert len(full.grid["n_samples"]) == 13 and full.replicates == 100
    assert set(full.methods) == {"naive_svd", "init", "paper", "slide", "default"}


# -- seeding ----------------------------------------------------------------------------------
def test_replicate_seed_is_spawned_child():
    for r in range(4):
        a = replicate_seed(20, r, 4).generate_state(4)
        b = np.random.SeedSequence(20).spawn(4)[r].generate_state(4)
        c = np.random.SeedSequence(20).spawn(100)[r].generate_state(4)
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_data_depend_only_on_seed_point_replicate(tiny_cfg):
    pts = tiny_cfg.grid_points()
    s1 = task_seeds(7, 1, 3, pts[0])
    s2 = task_seeds(7, 1, 50, pts[0])
    assert np.array_equal(s1["data"].generate_state(2), s2["data"].generate_state(2))
    assert not np.array_equal(s1["data"].generate_state(2), task_seeds(7, 1, 3, pts[1])["data"].generate_state(2))
    # the model (loadings) is shared across sample sizes within a replicate
    assert np.array_equal(s1["model"].generate_state(2), task_seeds(7, 1, 3, pts[1])["model"].generate_state(2))
    a = run_task(tiny_cfg, 1, pts[1], 2)
    b = run_task(tiny_cfg, 1, pts[1], 2)
    assert numbers(a) == numbers(b)


# -- Wishart draw -----------------------------------------------------------------------------
def test_wishart_draw_matches_covariance_law_and_pseudo_data():
    from hcl_stats.covariance import sample_covariance
    from hcl_stats.simulate import make_loadings, population_covariance

    s = Structure.full(2, 1)
    nf = (4, 5)
    W = make_loadings(s, nf, np.random.default_rng(0))
    psi = np.full(9, 0.7)
    Sigma = population_covariance(W, 0.7, nf)
    rng = np.random.default_rng(1)
    n, reps = 40, 3000
    covs = np.empty((reps, 9, 9))
    means = np.empty((reps, 9))
    for i in range(reps):
        means[i], covs[i], _ = draw_covariance(W, psi, n, rng)
    # E[S_n] = Sigma; Var of an unbiased covariance entry: (Sigma_ij^2 + Sigma_ii Sigma_jj) / (n - 1)
    se = np.sqrt((Sigma ** 2 + np.outer(np.diag(Sigma), np.diag(Sigma))) / (n - 1) / reps)
    assert np.all(np.abs(covs.mean(0) - Sigma) < 4.5 * se)
    var = (Sigma ** 2 + np.outer(np.diag(Sigma), np.diag(Sigma))) / (n - 1)
    assert np.allclose(covs.var(0), var, rtol=0.15, atol=0.02)
    assert np.allclose(np.cov(means.T) * n, Sigma, rtol=0.15, atol=0.05)
    mean, cov, pseudo = draw_covariance(W, psi, 500, rng)
    X = pseudo()
    st = sample_covariance([X[:, :4], X[:, 4:]])
    assert X.shape == (9 + s.n_factors + 1, 9)
    assert np.allclose(st.cov, cov, atol=1e-12) and np.allclose(st.mean, mean, atol=1e-12)


# -- durable, resumable, backend-independent runs ----------------------------------------------
def test_serial_two_process_and_dask_give_identical_numbers(tmp_path, tiny_cfg):
    serial = run_study(tiny_cfg, tmp_path / "a", n_jobs=1, progress=False)
    assert serial.n_run == 6
    two = run_study(tiny_cfg, tmp_path / "b", n_jobs=2, progress=False)
    assert two.n_run == 6
    ra = ResultStore(tmp_path / "a", tiny_cfg.name).read()
    rb = ResultStore(tmp_path / "b", tiny_cfg.name).read()
    assert len(ra) == 6 * 4 and all(r["status"] == "ok" for r in ra)
    assert_same_numbers(ra, rb)
    pytest.importorskip("distributed")
    run_study(tiny_cfg, tmp_path / "c", n_jobs=2, local_cluster=True, progress=False)
    rc = ResultStore(tmp_path / "c", tiny_cfg.name).read()
    assert_same_numbers(ra, rc)


def test_resume_after_truncation_gives_the_uninterrupted_rows(tmp_path, tiny_cfg):
    run_study(tiny_cfg, tmp_path / "full", progress=False)
    full = ResultStore(tmp_path / "full", tiny_cfg.name).read()
    out = tmp_path / "part"
    s = run_study(tiny_cfg, out, max_tasks=3, progress=False)
    assert s.n_run == 3
    store = ResultStore(out, tiny_cfg.name)
    text = store.path.read_text()
    lines = text.splitlines(keepends=True)
    # a kill -9 during a write: the last task's rows cut in the middle of a line
    store.path.write_text("".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])
    s = run_study(tiny_cfg, out, progress=False)
    assert s.n_done_before == 2 and s.n_run == 4
    sm = s.summary()
    assert ("Already done", "2") in sm.info and ("State", "finished") in sm.info
    assert sm.title == f"Study {tiny_cfg.name}" and "Tasks run    : 4 in" in str(sm)
    assert numbers(store.read()) == numbers(full)
    s = run_study(tiny_cfg, out, progress=False)  # nothing left to do
    assert s.n_run == 0
    prov = json.loads(store.provenance_path.read_text())
    assert prov["config_hash"] == tiny_cfg.hash and len(prov["runs"]) == 3 and prov["package_version"]


def test_resume_after_kill_9_of_a_running_study(tmp_path, tiny_cfg):
    run_study(tiny_cfg, tmp_path / "full", progress=False)
    full = ResultStore(tmp_path / "full", tiny_cfg.name).read()
    out = tmp_path / "killed"
    code = (f"from hcl_stats.harness import load_config, run_study\n"
            f"run_study(load_config({tiny_cfg.path!r}), {str(out)!r}, progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    store = ResultStore(out, tiny_cfg.name)
    t0 = time.time()
    while time.time() - t0 < 60 and not (store.path.exists() and store.path.stat().st_size > 0):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open(store.path, "a") as fh:  # and a torn write on top
        fh.write('{"study": "tiny_recovery", "task": "x')
    run_study(tiny_cfg, out, progress=False)
    assert numbers(store.read()) == numbers(full)


def test_rows_of_another_config_are_refused(tmp_path, tiny_cfg):
    run_study(tiny_cfg, tmp_path, max_tasks=1, progress=False)
    other = parse_config(dict(tiny_cfg.raw, methods={"names": ["naive_svd", "paper"]}), "other.toml")
    with pytest.raises(ValueError, match="another configuration"):
        run_study(other, tmp_path, progress=False)
    assert run_study(other, tmp_path, fresh=True, progress=False).n_run == 6


def test_init_shared_with_paper_equals_init_method(tiny_cfg):
    from hcl_stats import HCL
    from hcl_stats.covariance import sample_covariance
    from hcl_stats.harness.methods import FitContext, fit_method
    from hcl_stats.harness.studies import _draw_stats, _fit_all
    from hcl_stats.simulate import make_loadings

    pt = tiny_cfg.grid_points()[0]
    s = tiny_cfg.structure(pt)
    W = make_loadings(s, pt["n_features"], np.random.default_rng(0))
    stats, xs, _ = _draw_stats(s, W, pt, np.random.default_rng(1))
    fits = _fit_all(tiny_cfg, FitContext(stats, s, xs), ["init", "paper"])
    direct = fit_method("init", FitContext(stats, s, xs))
    assert np.array_equal(fits["init"].loadings, direct.loadings)


def test_unavailable_method_is_recorded_not_raised(tmp_path, monkeypatch):
    import hcl_stats.harness.methods as hm

    def boom(ctx):
        raise hm.MethodUnavailable("hcl_stats.baselines.SLIDE is not importable (test)")

    monkeypatch.setattr(hm, "_fit_slide", boom)
    text = TINY_RECOVERY.format(draw="wishart").replace('"paper", "default"]', '"paper", "slide"]')
    cfg = load_config(write_config(tmp_path, text))
    g, pt, r = cfg.tasks()[0]
    rows = run_task(cfg, g, pt, r)
    st = {row["method"]: row["status"] for row in rows}
    assert st == {"naive_svd": "ok", "init": "ok", "paper": "ok", "slide": "unavailable"}
    assert "not importable" in [row for row in rows if row["method"] == "slide"][0]["note"]


def test_slide_runs_on_wishart_pseudo_data(tmp_path):
    pytest.importorskip("hcl_stats.baselines")
    text = TINY_RECOVERY.format(draw="wishart").replace('"paper", "default"]', '"paper", "slide"]')
    cfg = load_config(write_config(tmp_path, text))
    g, pt, r = cfg.tasks()[-1]
    rows = {row["method"]: row for row in run_task(cfg, g, pt, r)}
    assert rows["slide"]["status"] == "ok", rows["slide"]["note"]
    assert rows["slide"]["metrics"]["rel_overall"] < 2.0


def test_downstream_selection_study_figures_and_report(tmp_path):
    from hcl_stats.harness.report import write_report

    cfg = load_config(write_config(tmp_path, TINY_DOWNSTREAM))
    run_study(cfg, tmp_path / "out", n_jobs=1, progress=False)
    rows = ResultStore(tmp_path / "out", cfg.name).read()
    assert {r["status"] for r in rows} == {"ok"}
    ora = [r for r in rows if r["method"] == "oracle" and r["estimator"] == "group_lasso"]
    assert all(0 <= r["metrics"]["support_recall"] <= 1 for r in ora)
    assert all(np.isfinite(r["metrics"]["param_error"]) and np.isfinite(r["metrics"]["excess_risk_pop"]) for r in rows)
    path = write_report([cfg], tmp_path / "out", command="hcl-stats simulate tiny.toml")
    text = path.read_text()
    assert "tiny_selection_selection.png" in text and "hcl-stats simulate tiny.toml" in text
    assert (tmp_path / "out" / "figures" / "tiny_selection_selection.pdf").exists()
    assert (tmp_path / "out" / "tables" / "tiny_selection.tex").read_text().startswith(r"\begin{table}")


def test_recovery_report_and_checks(tmp_path, tiny_cfg):
    from hcl_stats.harness.aggregate import evaluate_checks
    from hcl_stats.harness.report import write_report

    run_study(tiny_cfg, tmp_path, progress=False)
    rows = ResultStore(tmp_path, tiny_cfg.name).read()
    checks = evaluate_checks(tiny_cfg, rows)
    assert [c["verdict"] for c in checks] == ["PASS"]
    text = write_report([tiny_cfg], tmp_path, command="cmd").read_text()
    assert "tiny_recovery_recovery_blocks.png" in text and "**PASS**" in text
    for stem in ("recovery_blocks", "recovery_overall"):
        assert (tmp_path / "figures" / f"tiny_recovery_{stem}.png").stat().st_size > 10000


# -- statistical verdicts, pre-registration, provenance, progress ---------------------------------
def _rows_for(cfg, values, method="paper", metric="rel_overall"):
    """Synthetic stored rows: values[x] = list of replicate values of ``metric``."""
    rows = []
    for x, vals in values.items():
        for r, v in enumerate(vals):
            rows.append({"status": "ok", "method": method, "estimator": None, "point": {"n_samples": x},
                         "metrics": {metric: v}, "task": f"{x}-{r}", "grid_index": 0, "replicate": r})
    return rows


CHECKS_CFG = TINY_RECOVERY.format(draw="samples").split("[[checks]]")[0] + """
[[checks]]
name = "falls"
kind = "decreasing"
confidence = 0.95
metric = "rel_overall"
method = "paper"

[[checks]]
name = "rate"
kind = "slope"
confidence = 0.95
rule = "ci_within"
expected = -0.5
tolerance = 0.1
metric = "rel_overall"
method = "paper"
"""


def test_loglog_slope_exact_power_law_and_interval():
    from hcl_stats.harness.aggregate import loglog_slope

    x = np.repeat([100.0, 400.0, 1600.0], 4)
    fit = loglog_slope(x, 3.0 * x ** -0.5, 0.95)
    assert fit["slope"] == pytest.approx(-0.5, abs=1e-12) and fit["se"] < 1e-12
    rng = np.random.default_rng(0)
    x = np.repeat([100.0, 200.0, 400.0, 800.0, 1600.0], 6)
    cover = 0
    for _ in range(400):  # coverage of the 95% interval under a true power law with log-normal noise
        fit = loglog_slope(x, 3.0 * x ** -0.5 * np.exp(0.1 * rng.standard_normal(x.size)), 0.95)
        cover += fit["ci"][0] < -0.5 < fit["ci"][1]
    assert 0.90 <= cover / 400 <= 0.99
    y = 3.0 * x ** -0.5 * np.exp(0.1 * rng.standard_normal(x.size))
    fit = loglog_slope(x, y, 0.95)
    lo, hi = fit["ci"]
    assert fit["df"] == x.size - 2
    assert fit["lower"] > lo and fit["upper"] < hi  # one-sided bounds are inside the two-sided interval
    # HC1 standard error by the sandwich formula
    lx, ly = np.log(x), np.log(y)
    Xd = np.column_stack([np.ones_like(lx), lx])
    beta = np.linalg.lstsq(Xd, ly, rcond=None)[0]
    e = ly - Xd @ beta
    B = np.linalg.inv(Xd.T @ Xd)
    V = B @ (Xd.T * e ** 2) @ Xd @ B * x.size / (x.size - 2)
    assert fit["se"] == pytest.approx(np.sqrt(V[1, 1]), rel=1e-10)
    assert loglog_slope([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], 0.95) is None
    assert loglog_slope(x, np.where(np.arange(x.size) == 0, -1.0, y), 0.95)["dropped"] == 1


def test_decreasing_is_a_test_across_the_grid_not_first_against_last(tmp_path):
    from hcl_stats.harness.aggregate import evaluate_checks

    cfg = load_config(write_config(tmp_path, CHECKS_CFG))
    rng = np.random.default_rng(1)
    # last mean below the first, but the fall is not significant: the old first-vs-last rule passed
    noisy = {300: list(0.021 + 0.006 * rng.standard_normal(5)), 1200: list(0.0205 + 0.006 * rng.standard_normal(5))}
    noisy[1200][0] = noisy[300][0] - 0.004
    res = {c["name"]: c for c in evaluate_checks(cfg, _rows_for(cfg, noisy))}
    assert np.mean(noisy[1200]) < np.mean(noisy[300])
    assert res["falls"]["verdict"] == "FAIL" and res["falls"]["upper"] >= 0
    clean = {x: list(x ** -0.5 * np.exp(0.05 * rng.standard_normal(5))) for x in (300, 1200)}
    res = {c["name"]: c for c in evaluate_checks(cfg, _rows_for(cfg, clean))}
    assert res["falls"]["verdict"] == "PASS" and res["falls"]["upper"] < 0
    assert res["rate"]["verdict"] == "PASS" and res["rate"]["ci"][0] >= -0.6 and res["rate"]["ci"][1] <= -0.4
    assert res["rate"]["spec"] == {"expected": -0.5, "tolerance": 0.1, "confidence": 0.95, "rule": "ci_within"}
    assert "pre-registered" in res["rate"]["detail"]


def test_slope_rule_ci_within_is_stricter_than_estimate_within(tmp_path):
    from hcl_stats.harness.aggregate import evaluate_checks

    rng = np.random.default_rng(2)
    vals = {x: list(x ** -0.5 * np.exp(0.4 * rng.standard_normal(3))) for x in (300, 1200)}
    strict = load_config(write_config(tmp_path, CHECKS_CFG.replace("tolerance = 0.1", "tolerance = 0.3"), "a.toml"))
    loose = load_config(write_config(tmp_path, CHECKS_CFG.replace("tolerance = 0.1", "tolerance = 0.3")
                                     .replace('rule = "ci_within"', 'rule = "estimate_within"'), "b.toml"))
    a = evaluate_checks(strict, _rows_for(strict, vals))[1]
    b = evaluate_checks(loose, _rows_for(loose, vals))[1]
    assert a["value"] == b["value"] and -0.8 <= b["value"] <= -0.2
    assert (a["verdict"], b["verdict"]) == ("FAIL", "PASS")


def test_checks_edited_after_the_run_are_not_verdicts(tmp_path):
    from hcl_stats.harness.aggregate import evaluate_checks
    from hcl_stats.harness.config import checks_hash

    cfg = load_config(write_config(tmp_path, CHECKS_CFG))
    rows = _rows_for(cfg, {x: [x ** -0.5] * 3 for x in (300, 1200)})
    for r in rows:
        r["checks_hash"] = checks_hash(cfg)
    assert [c["verdict"] for c in evaluate_checks(cfg, rows)] == ["PASS", "PASS"]
    edited = load_config(write_config(tmp_path, CHECKS_CFG.replace("tolerance = 0.1", "tolerance = 0.5"), "e.toml"))
    res = evaluate_checks(edited, rows)
    assert [c["verdict"] for c in res] == ["N/A", "N/A"] and "cut-offs changed after the run" in res[0]["detail"]


@pytest.mark.parametrize("edit, msg", [
    (("confidence = 0.95\nmetric", "metric"), "missing key 'checks\\[0\\].confidence' for a check of kind 'decreasing'"),
    (("confidence = 0.95\nmetric", "confidence = 1.5\nmetric"), "checks\\[0\\].confidence' must be a number in \\[0.5, 1\\)"),
    (('rule = "ci_within"', 'rule = "close"'), "checks\\[1\\].rule' must be 'ci_within'"),
    (("tolerance = 0.1", "tolerance = 0.0"), "checks\\[1\\].tolerance' must be a positive number"),
])
def test_check_cutoffs_are_required_and_validated(tmp_path, edit, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(write_config(tmp_path, CHECKS_CFG.replace(*edit, 1)))


def test_rows_and_provenance_record_the_checks(tmp_path, tiny_cfg):
    from hcl_stats.harness.config import checks_hash

    run_study(tiny_cfg, tmp_path, progress=False, max_tasks=1)
    store = ResultStore(tmp_path, tiny_cfg.name)
    rows = store.read()
    assert rows and {r["checks_hash"] for r in rows} == {checks_hash(tiny_cfg)}
    prov = store.read_provenance()
    assert prov["checks"] == list(tiny_cfg.checks) and prov["checks_hash"] == checks_hash(tiny_cfg)


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_git_commit_is_recorded_after_a_non_editable_install(tmp_path):
    import shutil

    import hcl_stats
    from hcl_stats.harness.runner import code_version

    src = os.path.dirname(hcl_stats.__file__)
    repo = tmp_path / "checkout"
    shutil.copytree(src, repo / "hcl_stats", ignore=shutil.ignore_patterns("__pycache__", "data"))
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "x", cwd=repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    site = tmp_path / "site-packages" / "hcl_stats"           # what `pip install .` leaves: no .git above
    shutil.copytree(repo / "hcl_stats", site)
    v = code_version(cwd=repo / "hcl_stats", package_dir=site)
    assert v == {"git_commit": head, "source": "cwd", "package_matches_checkout": True}
    (site / "extra.py").write_text("x = 1\n")                # installed code is not the checkout's
    v = code_version(cwd=repo, package_dir=site)
    assert v["git_commit"] == head + "+installed-differs" and v["package_matches_checkout"] is False
    assert code_version(cwd=tmp_path, package_dir=site)["git_commit"] is None  # not in a checkout


def test_dirty_means_the_code_or_the_configs_differ_not_the_results(tmp_path):
    from hcl_stats.harness.runner import _repo_commit

    repo = tmp_path / "repo"
    for rel in ("hcl_stats/a.py", "simulations/configs/s.toml", "reports/results/s.jsonl", "setup.cfg"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x\n")
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "x", cwd=repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert _repo_commit(repo) == (head, False)
    (repo / "reports/results/s.jsonl").write_text("x\ny\n")      # a run writing its results: still clean
    (repo / "reports/new.md").write_text("untracked\n")
    assert _repo_commit(repo) == (head, False)
    assert _repo_commit(repo / "hcl_stats") == (head, False)      # from a subdirectory too
    for rel in ("simulations/configs/s.toml", "hcl_stats/a.py", "setup.cfg"):
        (repo / rel).write_text("changed\n")
        assert _repo_commit(repo) == (head, True), rel
        assert _repo_commit(repo / "hcl_stats") == (head, True), rel
        _git("checkout", "-q", "--", rel, cwd=repo)
    assert _repo_commit(repo) == (head, False)


def test_theory_checks_that_raise_are_reported_and_progress_is_shown(tmp_path, monkeypatch, capsys):
    from hcl_stats import theory
    from hcl_stats.harness.report import run_theory_checks

    name = next(iter(theory.CHECKS))

    def boom(names, quick=True):
        raise RuntimeError("no data")

    monkeypatch.setattr(theory, "run_checks", boom)
    verdicts, err = run_theory_checks([name, "no_such_check"], out_dir=tmp_path, progress=True)
    assert [v["verdict"] for v in verdicts] == ["N/A"] and "could not run: RuntimeError: no data" in verdicts[0]["detail"]
    assert "no_such_check" in err and "RuntimeError" in err
    assert "theory checks" in capsys.readouterr().err
    stored = json.loads((tmp_path / "results" / "theory.json").read_text())
    assert stored["verdicts"][0]["verdict"] == "N/A" and stored["error"] == err


def test_draw_covariance_random_state_and_the_deprecated_rng():
    from hcl_stats.simulate import make_loadings

    s = Structure({(0, 1): 1, (0,): 1}, 2)
    W = make_loadings(s, (4, 5), random_state=0)
    psi = np.full(9, 0.7)
    a = draw_covariance(W, psi, 30, 5)
    b = draw_covariance(W, psi, 30, np.random.default_rng(5))      # a Generator is used as it is
    with pytest.warns(FutureWarning, match=r"'rng' parameter of draw_covariance is deprecated; use random_state") as rec:
        c = draw_covariance(W, psi, 30, rng=np.random.default_rng(5))
    assert rec[0].filename == __file__
    for x in (b, c):
        np.testing.assert_array_equal(a[1], x[1])
        np.testing.assert_array_equal(a[0], x[0])
    assert not np.array_equal(a[1], draw_covariance(W, psi, 30, 6)[1])


def test_verdict_table_is_one_table_with_escaped_cells():
    from types import SimpleNamespace

    from hcl_stats.harness.report import table_latex, table_markdown, verdict_table
    from hcl_stats.summary import Table

    studies = [{"cfg": SimpleNamespace(name="s1"),
                "checks": [{"name": "slope", "verdict": "PASS", "spec": {"max": 0.1}, "detail": "a | b"},
                           {"name": "level", "verdict": "FAIL", "spec": None, "detail": "x"}]}]
    t = verdict_table(studies, {"verdicts": [{"name": "t1", "verdict": "PASS", "quick": True, "detail": "ok"}]})
    assert isinstance(t, Table) and t.header == ["study", "check", "verdict", "pre-registered", "detail"]
    assert t.rows == [["s1", "slope", "**PASS**", "max = 0.1", "a | b"], ["s1", "level", "**FAIL**", "-", "x"],
                      ["theory (quick)", "t1", "**PASS**", "see hcl_stats.theory", "ok"]]
    md = t.as_markdown().splitlines()
    assert md[:2] == ["| study | check | verdict | pre-registered | detail |", "|---|---|---|---|---|"]
    assert md[2] == r"| s1 | slope | **PASS** | max = 0.1 | a \| b |" and len(md) == 5
    none = verdict_table([], None).rows
    assert none == [["theory", "(all)", "**N/A**", "-",
                     "not run: `hcl-stats verify` stores its verdicts in results/theory.json"]]
    # the study tables: Markdown as before, LaTeX escaped (the errors of || W ||, 5 %, a_b)
    assert table_markdown("T", ["n", "a_b"], [["1", "2"]]).splitlines() == ["*T*", "", "| n | a_b |", "|---|---|",
                                                                           "| 1 | 2 |"]
    tex = table_latex("||W - W*|| at 5%", ["n", "a_b"], [["1", "2"]])
    assert r"\caption{\textbar{}\textbar{}W - W*\textbar{}\textbar{} at 5\%}" in tex and r"n & a\_b \\ \hline" in tex
    assert tex.startswith(r"\begin{table}[ht]") and tex.endswith(r"\end{table}")


def test_convergence_table_counts_each_fit_once_and_leaves_out_paper_mode():
    from hcl_stats.harness.report import convergence_table

    def row(method, task, n, conv, it, est=None, meth="ml"):
        return {"method": method, "task": task, "status": "ok", "point": {"n_samples": n}, "estimator": est,
                "info": {"method": meth, "converged": conv, "n_iter": it}}

    rows = [row("default", "a", 100, True, 10, "ols"), row("default", "a", 100, True, 10, "lasso"),   # one fit, two rows
            row("default", "b", 100, False, 1000), row("default", "c", 200, True, 30),
            row("paper", "a", 100, False, 102, meth="paper"),
            {"method": "naive_svd", "task": "a", "status": "ok", "point": {"n_samples": 100}, "info": {}}]
    title, header, body = convergence_table(rows, "n_samples")
    assert len(header) == 2                      # paper mode and methods without the record are left out
    assert body == [["100", "1/2 (505)"], ["200", "1/1 (30)"]]
    assert convergence_table([rows[-1]], "n_samples") is None
