"""UCI Multiple Features study (real data): structure selection, HCL fit, classification from the
representation against PCA, JIVE, GFA and the linear contrastive HCL; the effect of dropping one
modality; the default path ``HCL("auto")``. The code is :mod:`hcl_stats.harness.real_data`; this
script only runs it.

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 python simulations/real_data/multiple_features.py simulations/configs/multiple_features.toml
    OPENBLAS_NUM_THREADS=1 python simulations/real_data/multiple_features.py simulations/configs/multiple_features.toml --default-path
    python simulations/real_data/multiple_features.py simulations/configs/multiple_features.toml --report-only

Writes ``results.json`` (everything measured), ``REPORT.md`` and the figures to the config's
``out_dir`` (``reports/multiple_features``); ``--report-only`` redraws them from ``results.json``.
"""
import sys

from hcl_stats.harness.real_data import main

if __name__ == "__main__":
    sys.exit(main())
