"""The results layer hcl_stats.summary: Table and Summary in text, Markdown, LaTeX and HTML."""
import re

import pytest

from hcl_stats.summary import Summary, Table

NASTY = "<b>a&b_c 5% $x$ #1 {y} ~^\\"


def test_legacy_positional_signature_keeps_the_old_text_layout():
    s = Summary("T", [("Method", "ml"), ("Converged", "yes")], ["modality", "{0,1}"], [["rna", "0.25"], ["x", "1"]])
    # the layout of the old model.Summary: title, "=" rule as wide as the table + 2, info, "-" rule,
    # right-aligned columns, closing "=" rule
    assert s.as_text() == "\n".join([
        "T",
        "=================",
        "Method    : ml",
        "Converged : yes",
        "-----------------",
        "modality  {0,1}",
        "     rna   0.25",
        "       x      1",
        "=================",
    ])
    assert str(s) == repr(s) == s.as_text()
    assert s.header == ["modality", "{0,1}"] and s.rows == [["rna", "0.25"], ["x", "1"]]
    assert s.info == [("Method", "ml"), ("Converged", "yes")] and len(s.tables) == 1


def test_alignment_left_right_center_in_text_markdown_latex_html():
    t = Table(["name", "value", "mid"], [["a", "1.5", "x"], ["long name", "10", "yyy"]], align="lrc")
    lines = t.text_lines()
    assert lines == ["name       value  mid", "a            1.5   x", "long name     10  yyy"]
    md = t.as_markdown()
    assert "|---|---:|:---:|" in md
    assert r"\begin{tabular}{lrc}" in t.as_latex()
    h = t.as_html()
    assert '<td style="text-align: right">1.5</td>' in h and '<th style="text-align: left">name</th>' in h
    # a single letter applies to every column; default: right in text, plain "---" in Markdown
    assert Table(["a", "b"], [["xx", "y"]], align="l").text_lines() == ["a   b", "xx  y"]
    d = Table(["a", "b"], [["xx", "y"]])
    assert d.text_lines() == [" a  b", "xx  y"] and "|---|---|" in d.as_markdown()


def test_escaping_in_latex_html_and_markdown():
    t = Table(["col_1", "p|q"], [[NASTY, "a|b"]], title="caption <i>")
    s = Summary("Title & <script>", info=[("k_1", "50% <x>")], tables=[t], notes=["n $1 # 2 | 3"])
    tex = s.as_latex()
    for raw, esc in [("&", r"\&"), ("_", r"\_"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("{", r"\{"),
                     ("<", r"\textless{}"), ("~", r"\textasciitilde{}"), ("\\", r"\textbackslash{}")]:
        assert esc in tex, raw
    assert r"Title \& \textless{}script\textgreater{}" in tex and r"col\_1" in tex and r"k\_1 & 50\% " in tex
    body = tex.replace(r"\begin", "").replace(r"\end", "")
    # no unescaped special character is left in the text: every &, %, $, #, _ is preceded by a backslash
    # except the column separators " & " and the row ends
    assert not re.search(r"(?<!\\)[%$#_]", body.replace("\\\\", ""))
    h = s.as_html()
    assert "<script>" not in h and "&lt;script&gt;" in h and "<b>" not in h and "&lt;b&gt;a&amp;b_c" in h
    assert "caption &lt;i&gt;" in h and "50% &lt;x&gt;" in h and "<i>" not in h
    assert s._repr_html_() == h
    md = s.as_markdown()
    assert r"| col_1 | p\|q |" in md and r"a\|b |" in md and r"n $1 # 2 \| 3" in md
    # every table row still has exactly n_columns + 1 unescaped pipes
    for line in md.splitlines():
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 3, line


def test_several_tables_titles_and_notes():
    s = Summary("Evidence", info={"Samples": "200"})
    s.add_table(["step", "rank"], [["1", "2"]], title="Step 1: ranks", align="lr")
    s.add_table(Table(["subset", "k"], [["{a,b}", "1"], ["{a}", "3"]], title="Step 2"))
    s.add_info("Level", "0.05")
    s.add_note("first note")
    assert [t.title for t in s.tables] == ["Step 1: ranks", "Step 2"]
    txt = s.as_text()
    lines = txt.splitlines()
    assert lines[0] == "Evidence" and set(lines[1]) == {"="}
    assert "Samples : 200" in lines and "Level   : 0.05" in lines
    i1, i2 = lines.index("Step 1: ranks"), lines.index("Step 2")
    assert set(lines[i1 - 1]) == {"-"} and set(lines[i2 - 1]) == {"-"} and i1 < i2
    assert lines[i1 + 1] == "step  rank" and lines[i2 + 2] == " {a,b}  1"
    assert lines[-1] == "Note: first note" and set(lines[-2]) == {"="}
    md = s.as_markdown()
    assert md.index("*Step 1: ranks*") < md.index("*Step 2*") and "> Note: first note" in md
    assert len(re.findall(r"^\|---", md, flags=re.M)) == 2
    tex = s.as_latex()
    assert tex.count(r"\begin{tabular}") == 3 and r"\caption{Evidence}" in tex and r"\textit{Step 2}" in tex
    h = s.as_html()
    assert h.count("<table>") == 2 and "<caption>Step 2</caption>" in h and "<p>Note: first note</p>" in h


def test_empty_summary_and_cells_converted_to_text():
    s = Summary("Only a title")
    assert s.as_text() == "Only a title\n============\n============"
    assert s.header is None and s.rows is None
    t = Table(["a", "b"], [[1, None]])
    assert t.rows == [["1", ""]]


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"rows\[1\] has 3 cells, expected 2"):
        Table(["a", "b"], [["1", "2"], ["1", "2", "3"]])
    with pytest.raises(ValueError, match=r"align must be one of 'l', 'r', 'c' per column \(2 columns\).*'lx'"):
        Table(["a", "b"], [], align="lx")
    with pytest.raises(ValueError, match=r"align .* got 'lrr'"):
        Table(["a", "b"], [], align="lrr")
    with pytest.raises(TypeError, match=r"header must be a sequence of column names, got str"):
        Table("ab", [])
    with pytest.raises(ValueError, match=r"info\[0\] must be a \(key, value\) pair"):
        Summary("t", info=["abc"])
    with pytest.raises(TypeError, match=r"tables\[0\] must be a hcl_stats.summary.Table, got list"):
        Summary("t", tables=[["a"]])
    with pytest.raises(ValueError, match="rows were given without a header"):
        Summary("t", (), None, [["1"]])


def test_missing_report_summary():
    import numpy as np

    from hcl_stats.incomplete import missing_report

    rng = np.random.default_rng(0)
    X0, X1 = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    X0[0, 1] = np.nan          # sample 0 partly observes modality 0
    X1[[2, 3]] = np.nan        # samples 2 and 3 miss modality 1
    rep = missing_report([X0, X1], names=["a|b", "c"])
    s = rep.summary()
    assert isinstance(s, Summary) and ("Complete samples", "7") in s.info
    t1, t2 = s.tables
    assert t1.rows == [["a|b", "3", "3.3%", "0", "1"], ["c", "2", "20.0%", "2", "0"]]
    assert t2.rows == [["a|b", "10", "8"], ["c", "8", "8"]]
    assert r"| a\|b | 3 | 3.3% | 0 | 1 |" in s.as_markdown()
    assert "Missing per modality" in str(s) and str(rep).startswith("Missing per modality: ")
