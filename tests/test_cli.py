"""The hcl-stats command line: help, error paths, simulate/report/verify/reproduce on a tiny
study, and fit on data files."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hcl_stats import Structure, load_fit, simulate
from hcl_stats.cli import main

TINY_QUICK = textwrap.dedent("""
    [study]
    name = "tiny_quick"
    kind = "recovery"
    seed = 1
    replicates = 5

    [structure]
    spec = "012:1,01:1,0:1,1:1,2:1"

    [design]
    n_features = [5, 6, 7]
    noise_var = 0.3

    [grid]
    n_samples = [400, 1600]

    [methods]
    names = ["naive_svd", "init"]

    [[checks]]
    name = "init improves with n"
    kind = "decreasing"
    confidence = 0.95
    metric = "rel_gram[*]"
    method = "init"
""")


@pytest.mark.parametrize("sub", [None, "simulate", "report", "verify", "reproduce", "fit"])
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main(([sub] if sub else []) + ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: hcl-stats" in out
    if sub == "fit":
        assert "--structure" in out and "012:2,01:2,0:1" in out


def test_python_dash_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "hcl_stats", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "reproduce" in res.stdout


def test_no_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_malformed_config_fails_before_any_work(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(TINY_QUICK)
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_QUICK.replace("replicates = 5", "replicates = 5\nreplicatez = 3"))
    out = tmp_path / "out"
    code = main(["simulate", str(good), str(bad), "--out", str(out), "--no-progress", "-j", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "study.replicatez" in err and str(bad) in err
    assert not out.exists()  # the good config did not run either


def test_bad_value_names_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY_QUICK.replace("noise_var = 0.3", "noise_var = -1"))
    assert main(["simulate", str(bad), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "design.noise_var" in err and "positive number" in err and "-1" in err


def test_simulate_report_verify_reproduce(tmp_path, capsys, monkeypatch):
    cdir = tmp_path / "configs"
    cdir.mkdir()
    (cdir / "tiny_quick.toml").write_text(TINY_QUICK)
    out = tmp_path / "q"
    assert main(["simulate", str(cdir / "tiny_quick.toml"), "--out", str(out), "-j", "1", "--no-progress"]) == 0
    assert "10 tasks run" in capsys.readouterr().out
    assert main(["report", "--quick", "--configs", str(cdir), "--out", str(out)]) == 0
    report = (out / "REPORT.md").read_text()
    assert "tiny_quick_recovery_blocks.png" in report and "hcl-stats reproduce --quick" in report
    import hcl_stats.harness.report as rep

    monkeypatch.setattr(rep, "run_theory_checks", lambda names=None, quick=True, out_dir=None, progress=False: ([], None))
    code = main(["verify", "--quick", "--configs", str(cdir), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "[PASS] tiny_quick: init improves with n" in text
    # reproduce resumes: nothing left to run
    assert main(["reproduce", "--quick", "--configs", str(cdir), "--out", str(out), "-j", "1", "--no-progress",
                 "--skip-theory"]) == 0
    assert "0 tasks run" in capsys.readouterr().out


def test_quick_runs_never_write_to_the_full_report(tmp_path, capsys, monkeypatch):
    cdir = tmp_path / "configs"
    cdir.mkdir()
    (cdir / "tiny_quick.toml").write_text(TINY_QUICK)
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--quick", "--configs", str(cdir), "--out", "reports", "--no-progress"]) == 2
    assert "quick runs write to reports/quick/" in capsys.readouterr().err


def test_run_option_errors(tmp_path, capsys):
    good = tmp_path / "tiny_quick.toml"
    good.write_text(TINY_QUICK)
    assert main(["simulate", str(good), "--out", str(tmp_path), "--scheduler", "tcp://x:1", "--local-cluster"]) == 2
    assert "exclusive" in capsys.readouterr().err
    assert main(["simulate", str(good), "--out", str(tmp_path), "-j", "0"]) == 2
    assert "--jobs must be a positive integer; got 0" in capsys.readouterr().err
    assert main(["report", "--configs", str(tmp_path / "none")]) == 2
    assert "--configs must be a directory" in capsys.readouterr().err


def _data_files(tmp_path):
    s = Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3)
    d = simulate(s, (8, 9, 10), 1500, noise_var=0.2, random_state=0)
    paths = []
    for m, X in enumerate(d.Xs):
        if m == 2:
            p = tmp_path / f"mod{m}.csv"
            np.savetxt(p, X, delimiter=",", header=",".join(f"f{j}" for j in range(X.shape[1])), comments="")
        else:
            p = tmp_path / f"mod{m}.npy"
            np.save(p, X)
        paths.append(str(p))
    return d, paths


def test_fit_on_files(tmp_path, capsys):
    d, paths = _data_files(tmp_path)
    out = tmp_path / "fit.npz"
    code = main(["fit", *paths, "--structure", "012:1,01:1,0:1,1:1,2:1", "--out", str(out), "--transform"])
    text = capsys.readouterr().out
    assert code == 0 and "HCL results" in text and "mod0" in text
    assert "modality 'mod2', 1500 samples x 10 features (header detected (first row holds column names))" in text
    fit = load_fit(out)
    assert fit.loadings_.shape == (27, 5) and fit.structure_.names == ("mod0", "mod1", "mod2")
    assert fit.structure_ == Structure({(0, 1, 2): 1, (0, 1): 1, (0,): 1, (1,): 1, (2,): 1}, 3, names=["mod0", "mod1", "mod2"])
    assert fit.feature_names_in_[0] is None and list(fit.feature_names_in_[2][:2]) == ["f0", "f1"]
    with np.load(out, allow_pickle=False) as z:  # names stored only for the modality that had them
        assert [k for k in z.files if k.startswith("feature_names")] == ["feature_names_2"]
    Z = np.loadtxt(tmp_path / "fit_representation.csv", delimiter=",", skiprows=1)
    with open(tmp_path / "fit_representation.csv") as fh:
        assert fh.readline().strip() == 'sample,"{mod0,mod1,mod2}:1","{mod0,mod1}:1",{mod0}:1,{mod1}:1,{mod2}:1'
    assert Z.shape == (1500, 6) and list(Z[:3, 0]) == [0, 1, 2]
    assert np.array_equal(Z[:, 1:], fit.transform(d.Xs))  # written with 17 digits: exact
    assert (tmp_path / "fit_summary.txt").exists()
    np.savez(tmp_path / "all.npz", a=d.Xs[0], b=d.Xs[1], c=d.Xs[2])
    assert main(["fit", str(tmp_path / "all.npz"), "--structure", "012:1,01:1,0:1,1:1,2:1", "--out", str(tmp_path / "f2.npz")]) == 0


@pytest.mark.parametrize("args, msg", [
    (["--structure", "01:x"], "structure spec item '01:x'"),
    (["--structure", "01:1,01:1"], "repeats subset"),
    (["--structure", "012:1,01:1,0:1,1:1,2:1,3:1"], "outside 0..2"),
])
def test_fit_errors(tmp_path, capsys, args, msg):
    _, paths = _data_files(tmp_path)
    assert main(["fit", *paths, *args, "--out", str(tmp_path / "f.npz")]) == 2
    assert msg in capsys.readouterr().err


def test_fit_file_errors(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "missing.npy"), "x.npy", "--structure", "01:1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["fit", str(bad), str(bad), "--structure", "01:1"]) == 2
    assert "must be .npy, .npz or .csv" in capsys.readouterr().err


def test_verify_fails_when_a_check_could_not_run(tmp_path, capsys, monkeypatch):
    import hcl_stats.harness.report as rep

    cdir = tmp_path / "configs"
    cdir.mkdir()
    (cdir / "tiny_quick.toml").write_text(TINY_QUICK)
    out = tmp_path / "q"
    monkeypatch.setattr(rep, "run_theory_checks", lambda names=None, quick=True, out_dir=None, progress=False: ([], None))
    # no stored rows: the study's checks could not run -> exit 3, not N/A with status 0
    assert main(["verify", "--quick", "--configs", str(cdir), "--out", str(out), "--no-progress"]) == 3
    text = capsys.readouterr().out
    assert "[N/A ] tiny_quick: (all checks) -- no stored results" in text and "1 check(s) could not run" in text
    # a theory check that raised -> exit 3 as well
    assert main(["simulate", str(cdir / "tiny_quick.toml"), "--out", str(out), "-j", "1", "--no-progress"]) == 0
    monkeypatch.setattr(rep, "run_theory_checks", lambda names=None, quick=True, out_dir=None, progress=False: (
        [{"name": "loading_rate", "verdict": "N/A", "detail": "could not run: RuntimeError: x"}], "loading_rate raised"))
    assert main(["verify", "--quick", "--configs", str(cdir), "--out", str(out), "--no-progress"]) == 3


def test_report_and_verify_show_progress(tmp_path, capsys, monkeypatch):
    from hcl_stats import theory

    cdir = tmp_path / "configs"
    cdir.mkdir()
    (cdir / "tiny_quick.toml").write_text(TINY_QUICK)
    out = tmp_path / "q"
    assert main(["simulate", str(cdir / "tiny_quick.toml"), "--out", str(out), "-j", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", "--quick", "--configs", str(cdir), "--out", str(out)]) == 0
    assert "report" in capsys.readouterr().err
    name = next(iter(theory.CHECKS))
    monkeypatch.setattr(theory, "run_checks", lambda names, quick=True: [])
    assert main(["verify", "--quick", "--checks", name, "--configs", str(cdir), "--out", str(out)]) == 0
    assert "theory checks" in capsys.readouterr().err


def test_fit_auto_uses_one_noise_model_and_the_selection_options(tmp_path, capsys):
    _, paths = _data_files(tmp_path)
    out = tmp_path / "fit.npz"
    code = main(["fit", *paths, "--structure", "auto", "--noise", "modality", "--level", "0.01", "--n-resamples", "2",
                 "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "Structure selection: evidence" in text
    assert "modality (one variance per modality)" in text and "Test level" in text and "0.01" in text
    assert "Stability" in text
    assert main(["fit", *paths, "--structure", "012:1,01:1,0:1,1:1,2:1", "--level", "0.01",
                 "--out", str(out)]) == 2
    assert "--level, --max-rank and --n-resamples apply to --structure auto only" in capsys.readouterr().err


# -- fit on real-looking files: headers, sample names, unique names, errors naming the file ------------
S2 = Structure({(0, 1): 1, (0,): 1, (1,): 1}, 2)


def _two(n=400, seed=0):
    return simulate(S2, (6, 7), n, noise_var=0.3, random_state=seed).Xs


def _csv(path, X, header=None, samples=None, delim=","):
    lines = [] if header is None else [delim.join(header)]
    for i, row in enumerate(X):
        cells = [repr(float(v)) for v in row]
        lines.append(delim.join(([samples[i]] if samples is not None else []) + cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_fit_header_of_column_numbers_is_detected(tmp_path, capsys):
    X1, X2 = _two()
    a = _csv(tmp_path / "a.csv", X1, header=[str(j) for j in range(6)])
    b = _csv(tmp_path / "b.csv", X2)  # no header
    assert main(["fit", a, b, "--structure", "01:1,0:1,1:1", "--out", str(tmp_path / "f.npz")]) == 0
    text = capsys.readouterr().out
    assert "modality 'a', 400 samples x 6 features (header detected (first row is the column numbers 0, 1, 2, ..." in text
    assert "modality 'b', 400 samples x 7 features (no header (first row is numeric data" in text
    fit = load_fit(tmp_path / "f.npz")
    assert np.array_equal(fit.loadings_, __import__("hcl_stats").HCL(S2.with_names(["a", "b"])).fit([X1, X2]).loadings_)
    assert list(fit.feature_names_in_[0]) == [str(j) for j in range(6)] and fit.feature_names_in_[1] is None
    # --header no: the first row is data, so the files disagree on the number of samples
    assert main(["fit", a, b, "--structure", "01:1,0:1,1:1", "--header", "no", "--out", str(tmp_path / "g.npz")]) == 2
    err = capsys.readouterr().err
    assert f"{a}: 401, {b}: 400" in err


def test_fit_sample_names_match_rows_and_same_stems_get_unique_names(tmp_path, capsys):
    X1, X2 = _two()
    ids = [f"p{i:03d}" for i in range(400)]
    perm = np.random.default_rng(1).permutation(400)
    a = _csv(tmp_path / "rna" / "data.csv", X1, header=["id"] + [f"g{j}" for j in range(6)], samples=ids)
    b = _csv(tmp_path / "prot" / "data.csv", X2[perm], header=["id"] + [f"q{j}" for j in range(7)],
             samples=[ids[i] for i in perm])
    out = tmp_path / "f.npz"
    assert main(["fit", a, b, "--structure", "01:1,0:1,1:1", "--out", str(out), "--transform"]) == 0
    text = capsys.readouterr().out
    assert "modality 'rna/data'" in text and "modality 'prot/data'" in text and "first column holds sample names" in text
    assert f"rows put in the sample order of {a}" in text
    fit = load_fit(out)
    assert fit.structure_.names == ("rna/data", "prot/data")
    ref = __import__("hcl_stats").HCL(S2).fit([X1, X2])
    np.testing.assert_allclose(fit.loadings_, ref.loadings_, rtol=0, atol=1e-10)
    with open(tmp_path / "f_representation.csv") as fh:
        assert fh.readline().startswith('sample,"{rna/data,prot/data}:1"') and fh.readline().startswith("p000,")
    # hcl-stats transform on the (reordered) files gives the same representation
    assert main(["transform", str(out), a, b, "--out", str(tmp_path / "z.csv")]) == 0
    Z = np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1, usecols=range(1, 4))
    assert np.array_equal(Z, fit.transform([X1, X2]))
    # samples that differ between files: refused, naming both files
    c = _csv(tmp_path / "c.csv", X2[:399], header=["id"] + [f"q{j}" for j in range(7)], samples=ids[1:])
    assert main(["fit", a, c, "--structure", "01:1,0:1,1:1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"(file {c}) has 399 samples" in err and "'p000'" in err and f"(file {a})" in err


def test_fit_same_file_twice_gets_distinct_names(tmp_path, capsys):
    X1, _ = _two()
    a = _csv(tmp_path / "a.csv", X1)
    assert main(["fit", a, a, "--structure", "01:1,0:1,1:1", "--identifiability", "ignore",
                 "--out", str(tmp_path / "f.npz")]) == 0
    assert load_fit(tmp_path / "f.npz").structure_.names[1].endswith("a#2")


@pytest.mark.parametrize("bad, msg", [
    ("constant", "is constant: all its 7 features take one value"),
    ("const_feature", "1 constant features (zero variance), e.g. ['q3']"),
    ("text", "could not convert string 'abc'"),
    ("nan", "has 1 missing or infinite values (first at data row 5, column 2)"),
    ("dup", "duplicate column names ['q1']"),
])
def test_fit_bad_files_are_named(tmp_path, capsys, bad, msg):
    X1, X2 = _two()
    a = _csv(tmp_path / "a.csv", X1)
    header = [f"q{j}" for j in range(7)]
    if bad == "constant":
        X2 = np.ones_like(X2)
    elif bad == "const_feature":
        X2 = X2.copy()
        X2[:, 3] = 2.5
    elif bad == "nan":
        X2 = X2.copy()
        X2[4, 1] = np.nan
    elif bad == "dup":
        header[2] = "q1"
    b = _csv(tmp_path / "b.csv", X2, header=header)
    if bad == "text":
        lines = (tmp_path / "b.csv").read_text().splitlines()
        lines[3] = "abc" + lines[3][lines[3].index(","):]
        (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    assert main(["fit", a, b, "--structure", "01:1,0:1,1:1", "--out", str(tmp_path / "f.npz")]) == 2
    err = capsys.readouterr().err
    assert msg in err and "b.csv" in err
    assert not (tmp_path / "f.npz").exists()


def test_fit_estimator_errors_name_the_file(tmp_path, capsys):
    X1, X2 = _two()
    a, b = _csv(tmp_path / "a.csv", X1), _csv(tmp_path / "b.csv", X2)
    assert main(["fit", a, b, "--structure", "01:7,0:1,1:1", "--out", str(tmp_path / "f.npz")]) == 2
    err = capsys.readouterr().err
    assert f"modality 0 has only 6 features (modality 'a' (file {a}))" in err
    assert f"[modalities: 0 = 'a' ({a}), 1 = 'b' ({b})]" in err


def test_transform_refuses_a_non_fit_and_wrong_columns(tmp_path, capsys):
    X1, X2 = _two()
    a = _csv(tmp_path / "a.csv", X1, header=[f"g{j}" for j in range(6)])
    b = _csv(tmp_path / "b.csv", X2, header=[f"q{j}" for j in range(7)])
    out = tmp_path / "f.npz"
    assert main(["fit", a, b, "--structure", "01:1,0:1,1:1", "--out", str(out)]) == 0
    b2 = _csv(tmp_path / "b2.csv", X2[:, ::-1], header=[f"q{j}" for j in range(7)][::-1])
    assert main(["transform", str(out), a, b2, "--out", str(tmp_path / "z.csv"), "--kind", "posterior"]) == 0
    assert "columns matched by name" in capsys.readouterr().out
    Z = np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1, usecols=range(1, 4))
    np.testing.assert_allclose(Z, load_fit(out).posterior_mean([X1, X2]), rtol=0, atol=1e-12)
    b3 = _csv(tmp_path / "b3.csv", X2, header=[f"r{j}" for j in range(7)])
    assert main(["transform", str(out), a, b3, "--out", str(tmp_path / "z.csv")]) == 2
    assert "7 are missing (e.g. ['q0'" in capsys.readouterr().err
    assert main(["transform", a, a, b, "--out", str(tmp_path / "z.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["fit", str(out), a, "--structure", "01:1,0:1,1:1"]) == 2
    assert "is a saved fit, not data" in capsys.readouterr().err


@pytest.mark.parametrize("lines, header, index", [
    (["1,2,3,4", "0.5,1.5,2.5,3.5"], True, False),        # column numbers from 1
    (["0,1,2", "0.5,1.5,2.5"], True, False),               # column numbers from 0
    (["0,1", "0.5,1.5"], False, False),                    # two cells: read as data
    (["2,3,4", "0.5,1.5,2.5"], False, False),              # not 0.. or 1..: data
    (["0,1,2", "3,4,5"], True, False),                     # integer data under column numbers
    (["0,1,2", "0,1,2"], False, False),                    # both rows look like column numbers: data
    (["0.0,1.0,2.0", "0.5,1.5,2.5"], False, False),        # written as floats: data
    ([",a,b", "x,1,2"], True, True),                       # pandas to_csv with an index
    ([",0,1,2", "0,1.5,2.5,3.5"], True, True),             # pandas index and integer column names
    (["id,a,b", "x,1,2"], True, True),
    (["x,1,2", "y,3,4"], False, True),                     # sample names, no header
])
def test_header_and_index_detection(tmp_path, lines, header, index):
    from hcl_stats.cli import _sniff_table

    p = tmp_path / "t.csv"
    p.write_text("\n".join(lines) + "\n")
    hdr, idx, _, _ = _sniff_table(p, ",", "auto", "auto")
    assert (hdr, idx) == (header, index)


def test_fit_tsv_and_a_wrong_delimiter(tmp_path, capsys):
    X1, X2 = _two()
    a = _csv(tmp_path / "a.tsv", X1, header=[f"g{j}" for j in range(6)], delim="\t")
    b = _csv(tmp_path / "b.txt", X2, header=[f"q{j}" for j in range(7)], delim=";")
    assert main(["fit", a, b, "--structure", "01:1,0:1,1:1", "--out", str(tmp_path / "f.npz")]) == 2
    err = capsys.readouterr().err
    assert f"data file {b!r}: its first line has no ',' but has ;" in err and "--delimiter" in err
    c = _csv(tmp_path / "c.csv", X2, header=[f"q{j}" for j in range(7)])
    assert main(["fit", a, c, "--structure", "01:1,0:1,1:1", "--out", str(tmp_path / "f.npz")]) == 0
    assert list(load_fit(tmp_path / "f.npz").feature_names_in_[0]) == [f"g{j}" for j in range(6)]
