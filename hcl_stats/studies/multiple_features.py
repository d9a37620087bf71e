"""Deprecated location of the UCI Multiple Features study: its code is in
:mod:`hcl_stats.harness.real_data`, the study is run by the script
``simulations/real_data/multiple_features.py CONFIG``. Importing this module (or running it with
``python -m hcl_stats.studies.multiple_features CONFIG``, which still works) emits a
FutureWarning; it will be removed in a future release."""
import sys

from ..contrastive._deprecation import warn_moved_module
from ..harness.real_data import (DROP_METHODS, SHORT, classify, figures, main, report, report_default,  # noqa: F401
                                 representations, run, run_default, write)

__all__ = ["SHORT", "DROP_METHODS", "representations", "classify", "run", "run_default", "report_default", "figures",
           "report", "write", "main"]

warn_moved_module("hcl_stats.studies.multiple_features",
                  "hcl_stats.harness.real_data (run the study with simulations/real_data/multiple_features.py)")

if __name__ == "__main__":
    sys.exit(main())
