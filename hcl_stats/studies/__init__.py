"""Real-data studies (each module runnable with ``python -m hcl_stats.studies.<name> CONFIG``)."""
