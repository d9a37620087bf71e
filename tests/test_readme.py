"""The README's usage example runs, its two set-up commands come first and stay true (the test command
is what `.ci/run` runs; the main job's entry point exists), and every extra it names exists in setup.cfg."""
import configparser
import importlib.util
import pathlib
import re
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
SETUP_CFG = ROOT / "setup.cfg"


def _setup_cfg():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(SETUP_CFG)
    return cfg


def _extras():
    return set(_setup_cfg()["options.extras_require"])


def _commands(text):
    return re.findall(r"^    (pip install .*)$", text, flags=re.M)


def _extras_named(text):
    """Every extra the text names: ``pip install ".[a,b]"``, ``hcl_stats[a]`` and the prose
    "the `a`, `b` and `c` extras" / "the `a` extra"."""
    names = set()
    for group in re.findall(r"""(?:hcl_stats|["']\.)\[([A-Za-z0-9_,\- ]+)\]""", text):
        names.update(x.strip() for x in group.split(","))
    for phrase in re.findall(r"the ((?:`[\w-]+`(?: \([^)]*\))?(?:, | and ))*`[\w-]+`(?: \([^)]*\))?) extras?\b", text):
        names.update(re.findall(r"`([\w-]+)`", phrase))
    return names | set(_extras_list(text))


def _extras_list(text):
    """The extras of the README's sentence "Extras, as `setup.cfg` names them: `a` (...), ... and `z` (...)."
    (the backticked names outside parentheses)."""
    m = re.search(r"Extras,\s+as\s+`setup.cfg`\s+names\s+them:(.*?)\.(?:\n\n|\s*$)", text, flags=re.S)
    if not m:
        return []
    return re.findall(r"`([\w-]+)`", re.sub(r"\([^)]*\)", "", m.group(1)))


def test_readme_example_runs(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    assert len(blocks[0].strip().splitlines()) <= 14
    with warnings.catch_warnings():
        # the README shows today's names: a deprecated spelling (the package's FutureWarning) fails here
        warnings.simplefilter("error", FutureWarning)
        exec(compile(blocks[0], str(README), "exec"), {})
    assert "HCL results" in capsys.readouterr().out


def test_readme_commands_match_ci():
    text = README.read_text()
    cmds = _commands(text)
    assert len(cmds) >= 2
    # the test command is an executed line of .ci/run (not a comment), exactly as the README writes it
    ci_lines = [ln.strip() for ln in CI.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert cmds[1] in ci_lines, f"`.ci/run` must run exactly the README's test command {cmds[1]!r}"
    # and it tests the installed package (non-editable install; the pytest script in importlib mode; the
    # doctests of the installed modules), with the guard of tests/conftest.py switched on
    assert "-e " not in cmds[1] and "--editable" not in cmds[1]
    assert "pytest --import-mode=importlib" in cmds[1] and "python -m pytest" not in cmds[1]
    assert "--pyargs hcl_stats" in cmds[1]
    assert "export HCL_STATS_TEST_INSTALLED=1" in ci_lines


def test_every_command_of_ci_is_in_readme():
    # .ci/run runs nothing the README does not show (the tests, then the documentation build)
    readme_cmds = _commands(README.read_text())
    ci_cmds = [ln.strip() for ln in CI.read_text().splitlines() if ln.strip().startswith("pip install")]
    assert len(ci_cmds) >= 2
    missing = [c for c in ci_cmds if c not in readme_cmds]
    assert not missing, f"`.ci/run` runs commands the README does not show: {missing}"
    docs = [c for c in ci_cmds if "sphinx-build" in c]
    assert docs and all(" -W" in c for c in docs), "the documentation build must turn warnings into errors (-W)"


def test_readme_main_job_entry_point_exists():
    main_job = _commands(README.read_text())[0]
    assert main_job == "pip install . && hcl-stats reproduce --quick"
    scripts = _setup_cfg()["options.entry_points"]["console_scripts"]
    assert re.search(r"^\s*hcl-stats\s*=\s*hcl_stats\.cli:main\s*$", scripts, flags=re.M), scripts
    from hcl_stats import cli

    src = pathlib.Path(cli.__file__).read_text()
    assert '"reproduce"' in src and '"--quick"' in src


def test_extras_named_in_readme_exist_in_setup_cfg():
    named = _extras_named(README.read_text())
    assert {"test", "deep", "dist", "tables", "mudata", "peers"} <= named, named  # the parser sees them
    unknown = sorted(named - _extras())
    assert not unknown, f"README names extras that setup.cfg does not define: {unknown} (defined: {sorted(_extras())})"


def test_every_extra_is_listed_in_readme():
    listed = _extras_list(README.read_text())
    assert listed, "README lost its sentence 'Extras, as `setup.cfg` names them: ...'"
    assert sorted(listed) == sorted(_extras()), (f"README's list of extras {sorted(listed)} differs from "
                                                 f"setup.cfg's {sorted(_extras())}")


def test_extras_named_in_package_messages_exist():
    import hcl_stats

    pkg = pathlib.Path(hcl_stats.__file__).parent
    bad = []
    for path in pkg.rglob("*.py"):
        for name in _extras_named(path.read_text(encoding="utf-8")):
            if name not in _extras():
                bad.append(f"{path.relative_to(pkg.parent)}: hcl_stats[{name}]")
    assert not bad, f"install hints naming extras setup.cfg does not define: {bad}"


def test_installed_copy_guard():
    # the guard of tests/conftest.py: a hcl_stats inside the checkout is refused, one elsewhere is accepted
    spec = importlib.util.spec_from_file_location("_conftest_for_guard", pathlib.Path(__file__).with_name("conftest.py"))
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    problem = conftest.installed_copy_problem(ROOT / "hcl_stats" / "__init__.py")
    assert problem is not None and "checkout" in problem and "HCL_STATS_TEST_INSTALLED" in problem
    assert conftest.installed_copy_problem(pathlib.Path("/opt/venv/lib/site-packages/hcl_stats/__init__.py")) is None


@pytest.mark.skipif(importlib.util.find_spec("hcl_stats") is None, reason="hcl_stats not importable")
def test_ci_run_tests_the_installed_copy_when_asked():
    # under .ci/run the env var is set, and then this very run must import hcl_stats from outside the checkout
    import os

    import hcl_stats

    if os.environ.get("HCL_STATS_TEST_INSTALLED", "") in ("", "0"):
        pytest.skip("not a CI run (HCL_STATS_TEST_INSTALLED unset): the checkout is tested")
    assert not pathlib.Path(hcl_stats.__file__).resolve().is_relative_to(ROOT.resolve()), hcl_stats.__file__
