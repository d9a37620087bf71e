"""Simulation harness: declarative study configs, a resumable parallel runner, figures and reports.

- :mod:`.config`: the TOML schema and its validation (:func:`load_config`);
- :mod:`.methods`: estimator names -> factories (resolved lazily);
- :mod:`.studies`: what one replicate computes, per study kind;
- :mod:`.runner`: :func:`run_study` (serial, joblib processes or Dask), durable JSON Lines rows;
- :mod:`.figures`: one function per figure, drawn only from stored rows;
- :mod:`.report`: tables (Markdown, LaTeX), theory-check verdicts and ``REPORT.md``.
"""
from .config import ConfigError, StudyConfig, load_config, parse_config, parse_structure_spec
from .runner import ResultStore, load_rows, run_study

__all__ = ["ConfigError", "StudyConfig", "load_config", "parse_config", "parse_structure_spec",
           "ResultStore", "load_rows", "run_study"]
