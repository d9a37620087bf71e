"""The README's usage example runs, and the README states the two set-up commands first."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    assert len(blocks[0].strip().splitlines()) <= 14
    exec(compile(blocks[0], str(README), "exec"), {})
    assert "HCL results" in capsys.readouterr().out


def test_readme_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    cmds = re.findall(r"^    (pip install .*)$", text, flags=re.M)
    assert len(cmds) >= 2
    test_cmd = cmds[1]
    assert test_cmd in ci, "`.ci/run` must run exactly the README's test command"
