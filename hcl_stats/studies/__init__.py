"""Deprecated: the real-data studies are scripts outside the package now
(``simulations/real_data/``), their code lives in :mod:`hcl_stats.harness.real_data`.
``python -m hcl_stats.studies.multiple_features CONFIG`` still works for one release
(FutureWarning)."""
