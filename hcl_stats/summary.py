"""One results layer for every printable summary of hcl_stats.

Every ``summary()`` of the package returns a :class:`Summary`: a title, a block of
key / value information lines, one or more :class:`Table` objects and notes, rendered as
plain text (``str``, statsmodels-style layout), Markdown, LaTeX (escaped) and HTML
(escaped; ``_repr_html_`` for notebooks). Cells are strings: format numbers before
building a table.

Examples
--------
>>> from hcl_stats.summary import Summary, Table
>>> t = Table(["modality", "a", "b"], [["x", "0.1", "."]], align="lrr")
>>> s = Summary("Results", info=[("Method", "ml")], tables=[t], notes=["a note"])
>>> print(s)
Results
==================
Method : ml
------------------
modality    a  b
x         0.1  .
==================
Note: a note
"""
from __future__ import annotations

import html
from collections.abc import Mapping

__all__ = ["Summary", "Table", "latex_escape", "markdown_escape"]

_LATEX_ESC = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
              "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
              "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
_ALIGNS = ("l", "r", "c")


def latex_escape(s) -> str:
    """``str(s)`` with the LaTeX special characters escaped (``\\ & % $ # _ { } ~ ^ < > |``)."""
    return "".join(_LATEX_ESC.get(c, c) for c in str(s))


def markdown_escape(s) -> str:
    """``str(s)`` safe inside a Markdown table cell: pipes escaped, line breaks as spaces."""
    return str(s).replace("\\|", "|").replace("|", r"\|").replace("\r\n", " ").replace("\n", " ")


def _cell(c) -> str:
    return "" if c is None else str(c)


def _pad(s: str, w: int, a: str) -> str:
    return s.ljust(w) if a == "l" else (s.center(w) if a == "c" else s.rjust(w))


class Table:
    """One table of a :class:`Summary`.

    Parameters
    ----------
    header : sequence of str, length n_columns
        Column names.
    rows : sequence of sequences of str, each of length n_columns
        The cells (``None`` is shown empty; other non-strings are converted by ``str``:
        format numbers before).
    title : str or None, default None
        A caption shown above the table.
    align : str, sequence of str or None, default None
        One of "l", "r", "c" per column (a string such as ``"lrr"`` or a list), or a
        single letter for every column. None = every column right-aligned in text, no
        alignment markers in Markdown.

    Attributes
    ----------
    header : list of str, length n_columns
    rows : list of list of str, shape (n_rows, n_columns)
    title : str or None
    align : list of str or None, length n_columns
    """

    def __init__(self, header, rows, title=None, align=None):
        if isinstance(header, str) or not hasattr(header, "__iter__"):
            raise TypeError(f"Table: header must be a sequence of column names, got {type(header).__name__}")
        self.header = [_cell(h) for h in header]
        if not self.header:
            raise ValueError("Table: header must name at least one column, got an empty header")
        n = len(self.header)
        if rows is None:
            rows = []
        if isinstance(rows, str) or not hasattr(rows, "__iter__"):
            raise TypeError(f"Table: rows must be a sequence of rows, got {type(rows).__name__}")
        self.rows = []
        for i, r in enumerate(rows):
            if isinstance(r, str) or not hasattr(r, "__iter__"):
                raise TypeError(f"Table: rows[{i}] must be a sequence of {n} cells, got {type(r).__name__}")
            r = [_cell(c) for c in r]
            if len(r) != n:
                raise ValueError(f"Table: rows[{i}] has {len(r)} cells, expected {n} (the length of header)")
            self.rows.append(r)
        self.title = None if title is None else str(title)
        self.align = self._check_align(align, n)

    @staticmethod
    def _check_align(align, n):
        if align is None:
            return None
        if isinstance(align, str) and len(align) == 1:
            align = align * n
        a = list(align)
        if len(a) != n or any(x not in _ALIGNS for x in a):
            raise ValueError(f"Table: align must be one of 'l', 'r', 'c' per column ({n} columns) or a single "
                             f"letter, got {align!r}")
        return a

    # ------------------------------------------------------------------ helpers
    @property
    def n_columns(self) -> int:
        return len(self.header)

    def _aligns(self):
        return self.align if self.align is not None else ["r"] * self.n_columns

    def _widths(self):
        return [max(len(x[j]) for x in [self.header] + self.rows) for j in range(self.n_columns)]

    @property
    def width(self) -> int:
        """Width of the text rendering of the header and rows (characters)."""
        w = self._widths()
        return sum(w) + 2 * (len(w) - 1)

    # ------------------------------------------------------------------ renderers
    def text_lines(self) -> list:
        """Header and rows as aligned text lines (columns separated by two spaces), no title."""
        w, a = self._widths(), self._aligns()
        fmt = lambda r: "  ".join(_pad(c, wj, aj) for c, wj, aj in zip(r, w, a)).rstrip()  # noqa: E731
        return [fmt(self.header)] + [fmt(r) for r in self.rows]

    def as_text(self) -> str:
        """The table as text: the title (if any) underlined, then header and rows."""
        out = []
        if self.title:
            out += [self.title, "-" * len(self.title)]
        return "\n".join(out + self.text_lines())

    def as_markdown(self) -> str:
        """The table in Markdown (GitHub pipes; pipes inside cells escaped); the title in italics above it."""
        out = []
        if self.title:
            out += [f"*{markdown_escape(self.title)}*", ""]
        sep = {"l": "---", "r": "---:", "c": ":---:"}
        marks = ["---"] * self.n_columns if self.align is None else [sep[x] for x in self.align]
        out.append("| " + " | ".join(markdown_escape(h) for h in self.header) + " |")
        out.append("|" + "|".join(marks) + "|")
        out += ["| " + " | ".join(markdown_escape(c) for c in r) + " |" for r in self.rows]
        return "\n".join(out)

    def as_latex(self) -> str:
        """The table as a LaTeX ``tabular`` (every cell escaped); the title as a comment line above it."""
        cols = "".join(self.align) if self.align is not None else "l" + "r" * (self.n_columns - 1)
        out = [r"% " + latex_escape(self.title)] if self.title else []
        out += [r"\begin{tabular}{" + cols + "}", r"\hline",
                " & ".join(latex_escape(h) for h in self.header) + r" \\ \hline"]
        out += [" & ".join(latex_escape(c) for c in r) + r" \\" for r in self.rows]
        out += [r"\hline", r"\end{tabular}"]
        return "\n".join(out)

    def as_html(self) -> str:
        """The table as an HTML ``<table>`` (every cell and the caption escaped)."""
        e = html.escape
        a = self.align
        sty = (lambda j: "") if a is None else \
            (lambda j: f' style="text-align: {dict(l="left", r="right", c="center")[a[j]]}"')
        out = ["<table>"]
        if self.title:
            out.append(f"<caption>{e(self.title)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th{sty(j)}>{e(h)}</th>" for j, h in enumerate(self.header))
                   + "</tr></thead>")
        out.append("<tbody>" + "".join("<tr>" + "".join(f"<td{sty(j)}>{e(c)}</td>" for j, c in enumerate(r))
                                       + "</tr>" for r in self.rows) + "</tbody>")
        out.append("</table>")
        return "".join(out)

    def _repr_html_(self):
        return self.as_html()

    def __str__(self):
        return self.as_text()

    def __repr__(self):
        return f"Table(title={self.title!r}, n_columns={self.n_columns}, n_rows={len(self.rows)})"


def _check_info(info):
    if info is None:
        return []
    if isinstance(info, Mapping):
        info = list(info.items())
    out = []
    for i, kv in enumerate(info):
        if isinstance(kv, str) or not hasattr(kv, "__len__") or len(kv) != 2:
            raise ValueError(f"Summary: info[{i}] must be a (key, value) pair, got {kv!r}")
        out.append((_cell(kv[0]), _cell(kv[1])))
    return out


class Summary:
    """A printable summary: title, key / value information, tables and notes.

    The text layout follows statsmodels: the title, a rule of ``=``, the information as
    ``key : value`` lines, each table after a rule of ``-`` (its title, if any, first),
    a closing rule of ``=``, then the notes. Also as Markdown, LaTeX and HTML (escaped).

    Parameters
    ----------
    title : str
    info : sequence of (str, str) or mapping, default ()
        The key / value lines shown above the tables.
    header : sequence of str or None, default None
        Backwards-compatible form ``Summary(title, info, header, rows)``: the header of a
        first table (without a title; every column right-aligned in text).
    rows : sequence of sequences of str or None, default None
        The rows of that first table.
    tables : sequence of Table, default ()
        Tables (after the one given by ``header`` / ``rows``, if any).
    notes : sequence of str, default ()
        Lines shown below the tables (warnings, reading notes).

    Attributes
    ----------
    title : str
    info : list of (str, str)
    tables : list of Table
    notes : list of str
    header : list of str or None
        The header of the first table (None without a table).
    rows : list of list of str or None
        The rows of the first table (None without a table).
    """

    def __init__(self, title, info=(), header=None, rows=None, *, tables=(), notes=()):
        self.title = _cell(title)
        self.info = _check_info(info)
        self.tables = []
        if header is not None:
            self.add_table(header, rows if rows is not None else [])
        elif rows is not None:
            raise ValueError("Summary: rows were given without a header; pass header= (the column names) too")
        for i, t in enumerate(tables):
            if not isinstance(t, Table):
                raise TypeError(f"Summary: tables[{i}] must be a hcl_stats.summary.Table, got {type(t).__name__}")
            self.tables.append(t)
        if isinstance(notes, str):
            notes = [notes]
        self.notes = [_cell(n) for n in notes]

    # ------------------------------------------------------------------ building
    def add_table(self, header, rows=None, title=None, align=None) -> Table:
        """Append a table: a :class:`Table`, or its ``header``, ``rows``, ``title``, ``align``.

        Parameters
        ----------
        header : Table or sequence of str
            A table, or the column names of a new one.
        rows, title, align
            As in :class:`Table` (None when ``header`` is a Table).

        Returns
        -------
        Table
            The table appended.
        """
        if isinstance(header, Table):
            if rows is not None or title is not None or align is not None:
                raise ValueError("Summary.add_table: rows, title and align must be None when a Table is given")
            t = header
        else:
            t = Table(header, rows if rows is not None else [], title=title, align=align)
        self.tables.append(t)
        return t

    def add_info(self, key, value) -> None:
        """Append one ``key : value`` information line."""
        self.info.append((_cell(key), _cell(value)))

    def add_note(self, note) -> None:
        """Append one note (shown below the tables)."""
        self.notes.append(_cell(note))

    @property
    def header(self):
        return self.tables[0].header if self.tables else None

    @property
    def rows(self):
        return self.tables[0].rows if self.tables else None

    # ------------------------------------------------------------------ renderers
    def as_text(self) -> str:
        """Plain text (statsmodels layout)."""
        widths = [t.width + 2 for t in self.tables]
        if not widths:
            widths = [len(self.title)] + [len(k) + 3 + len(v) for k, v in self.info]
        line = max(widths)
        out = [self.title, "=" * line]
        if self.info:
            kw = max(len(k) for k, _ in self.info)
            out += [f"{k.ljust(kw)} : {v}" for k, v in self.info]
        for t in self.tables:
            out.append("-" * line)
            if t.title:
                out.append(t.title)
            out += t.text_lines()
        out.append("=" * line)
        out += [f"Note: {n}" for n in self.notes]
        return "\n".join(out)

    def as_markdown(self) -> str:
        """Markdown: the title in bold, the information as a list, the tables, notes as quotes."""
        out = [f"**{markdown_escape(self.title)}**"]
        if self.info:
            out += [""] + [f"- {markdown_escape(k)}: {markdown_escape(v)}" for k, v in self.info]
        for t in self.tables:
            out += ["", t.as_markdown()]
        if self.notes:
            out += [""] + [f"> Note: {markdown_escape(n)}" for n in self.notes]
        return "\n".join(out)

    def as_latex(self) -> str:
        """LaTeX: a ``table`` float with the title as caption, one ``tabular`` per block (all text escaped)."""
        out = [r"\begin{table}", r"\centering", r"\caption{" + latex_escape(self.title) + "}"]
        if self.info:
            out += [r"\begin{tabular}{ll}", r"\hline"]
            out += [f"{latex_escape(k)} & {latex_escape(v)} \\\\" for k, v in self.info]
            out += [r"\hline", r"\end{tabular}"]
        for t in self.tables:
            out += [r"\par\medskip"]
            if t.title:
                out.append(r"\textit{" + latex_escape(t.title) + r"}\par\smallskip")
            out += [t.as_latex() if not t.title else Table(t.header, t.rows, align=t.align).as_latex()]
        if self.notes:
            out += [r"\par\medskip", r"\footnotesize"]
            out += [f"Note: {latex_escape(n)}\\par" for n in self.notes]
        out.append(r"\end{table}")
        return "\n".join(out)

    def as_html(self) -> str:
        """HTML (every text escaped): the title, the information, the tables, the notes."""
        e = html.escape
        out = [f'<div class="hcl-summary"><h4>{e(self.title)}</h4>']
        if self.info:
            out.append('<table class="hcl-summary-info">'
                       + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in self.info) + "</table>")
        out += [t.as_html() for t in self.tables]
        out += [f"<p>Note: {e(n)}</p>" for n in self.notes]
        out.append("</div>")
        return "".join(out)

    def _repr_html_(self):
        return self.as_html()

    def __str__(self):
        return self.as_text()

    __repr__ = __str__
