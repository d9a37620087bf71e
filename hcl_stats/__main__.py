"""``python -m hcl_stats`` runs the ``hcl-stats`` command line."""
import sys

from .cli import main

sys.exit(main())
