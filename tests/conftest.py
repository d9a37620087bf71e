import os
import pathlib

import matplotlib
import pytest

matplotlib.use("Agg")

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]
# Set by .ci/run: the tests must exercise the installed package, not the source tree of this checkout.
INSTALLED_ENV = "HCL_STATS_TEST_INSTALLED"


def installed_copy_problem(module_file, checkout=CHECKOUT):
    """None when ``module_file`` (``hcl_stats.__file__``) lies outside ``checkout``, else the reason."""
    path = pathlib.Path(module_file).resolve()
    if path.is_relative_to(checkout.resolve()):
        return (f"{INSTALLED_ENV}=1 but hcl_stats is imported from the checkout ({path}), not from the installed "
                f"package: install it (pip install .) and run pytest --import-mode=importlib with the `pytest` "
                f"script (not `python -m pytest`, which puts the checkout first on sys.path)")
    return None


def pytest_configure(config):
    if os.environ.get(INSTALLED_ENV, "") not in ("", "0"):
        try:
            import hcl_stats
        except ImportError:  # a broken package fails the tests that import it, with their own traceback
            return
        problem = installed_copy_problem(hcl_stats.__file__)
        if problem:
            pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(12345)
