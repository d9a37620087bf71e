"""The package's import layering: imports only go down (or sideways within a layer), and no module
imports a private name (``_x``) of another module.

Every module of ``hcl_stats`` is parsed with :mod:`ast` (no import is executed); every ``import`` and
``from ... import`` counts, also inside functions, ``if TYPE_CHECKING:`` blocks and ``try`` blocks,
relative or absolute, and ``importlib.import_module("hcl_stats...")`` calls with a literal name.
The layer of a module is looked up in ``LAYERS`` by its first component below ``hcl_stats``
(``hcl_stats.estimation.ml`` -> ``estimation``); the package ``__init__`` is orchestration.
A module that is not in the table fails ``test_every_module_is_classified``: a new module must be
given a layer here.
"""
from __future__ import annotations

import ast
import importlib.util
import pathlib

import pytest

# layer number, the top-level names in it, and why they sit there (one line per layer)
LAYER_TABLE = [
    (0, ("exceptions", "_validation", "_threads", "base", "plotting", "summary"),
     "foundations: errors, input checks, BLAS threads, the estimator base, plots and tables; know nothing of the model"),
    (1, ("structure", "covariance", "likelihood", "metrics", "simulate"),
     "the model and its statistics: what a structure is, its sufficient statistics, likelihood, metrics"),
    (2, ("estimation",),
     "estimation: solvers from sufficient statistics to loadings; need the model, not the estimator"),
    (3, ("selection", "incomplete", "goodness", "representation"),
     "inference on a fitted model: structure selection, missing data, model checks, representations"),
    (4, ("model", "io"),
     "the estimator HCL and its input/output (tables, saved fits): assembles layers 0-3"),
    (5, ("downstream", "baselines", "contrastive", "contrastive_tasks", "deep", "datasets", "theory"),
     "applications built on the estimator: prediction, baselines, contrastive and deep models, data, theory"),
    (6, ("harness", "cli", "__main__", "__init__", "studies"),
     "orchestration: studies (harness; the deprecated hcl_stats.studies re-exports harness.real_data), command "
     "line and the package namespace; may import everything"),
]
LAYERS = {name: layer for layer, names, _ in LAYER_TABLE for name in names}


def _package_root() -> pathlib.Path:
    """The hcl_stats that the tests import (the installed copy under CI, the checkout otherwise)."""
    spec = importlib.util.find_spec("hcl_stats")
    assert spec is not None and spec.origin is not None, "hcl_stats is not importable"
    return pathlib.Path(spec.origin).parent


ROOT = _package_root()


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _all_modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        name = _module_name(path)
        if path.name == "__init__.py" and name == "hcl_stats":
            name = "hcl_stats.__init__"
        out[name] = path
    return out


MODULES = _all_modules()


def _is_package(path: pathlib.Path) -> bool:
    return path.name == "__init__.py"


def _layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts == ["hcl_stats"]:
        return LAYERS["__init__"]
    return LAYERS.get(parts[1])


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_exists(name: str) -> bool:
    rel = pathlib.Path(*name.split(".")[1:]) if "." in name else pathlib.Path()
    base = ROOT / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _resolve_relative(module: str, path: pathlib.Path, level: int, target: str | None) -> str:
    package = module.split(".") if _is_package(path) else module.split(".")[:-1]
    if module == "hcl_stats.__init__":
        package = ["hcl_stats"]
    if level > 1:
        package = package[: len(package) - (level - 1)]
    return ".".join(package + ([target] if target else []))


def imports_of(module: str, path: pathlib.Path):
    """Yield ``(lineno, imported module, imported name or None, source text)`` for every import of
    an hcl_stats module in ``path``; ``imported name`` is the object taken with ``from X import name``
    when it is not itself a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "hcl_stats" or alias.name.startswith("hcl_stats."):
                    yield node.lineno, alias.name, None, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, path, node.level, node.module)
            else:
                base = node.module or ""
            if not (base == "hcl_stats" or base.startswith("hcl_stats.")):
                continue
            src = f"from {'.' * node.level}{node.module or ''} import "
            for alias in node.names:
                if alias.name == "*":
                    yield node.lineno, base, None, src + "*"
                elif _module_exists(f"{base}.{alias.name}"):
                    yield node.lineno, f"{base}.{alias.name}", None, src + alias.name
                else:
                    yield node.lineno, base, alias.name, src + alias.name
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if (fname == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                target = node.args[0].value
                if target.startswith("."):
                    level = len(target) - len(target.lstrip("."))
                    target = _resolve_relative(module, path, level, target.lstrip(".") or None)
                if target == "hcl_stats" or target.startswith("hcl_stats."):
                    yield node.lineno, target, None, f"import_module({node.args[0].value!r})"


def violations_of(module: str, path: pathlib.Path) -> list[str]:
    """The layering and private-name violations of one module, one readable line each."""
    own = _layer_of(module)
    out = []
    rel = path.relative_to(ROOT.parent) if path.is_relative_to(ROOT.parent) else path
    for lineno, target, name, src in imports_of(module, path):
        target_layer = _layer_of(target)
        if own is not None and target_layer is not None and target_layer > own:
            out.append(f"{rel}:{lineno}: `{src}` -- layer {own} module {module} imports layer {target_layer} "
                       f"module {target}")
        if name is not None and _is_private(name) and target != module:
            out.append(f"{rel}:{lineno}: `{src}` -- imports the private name {name!r} of {target}")
    return out


# Violations present when this test was written; each belongs to the owner of the importing module.
# The test is strict: once a module is fixed, its entry must be removed (the test then reports XPASS(strict)).
KNOWN_VIOLATIONS: dict[str, str] = {}


def test_every_module_is_classified():
    unclassified = sorted(m for m in MODULES if _layer_of(m) is None)
    assert not unclassified, (f"modules not in tests/test_layers.py LAYER_TABLE (give each a layer): "
                              f"{unclassified}")


def test_layer_table_names_exist_or_are_planned():
    # every name in the table is a layer name, not a typo: a module or package of that name exists,
    # or it is one of the names the layout announces (summary, the contrastive package)
    planned = {"summary", "contrastive", "__main__", "__init__"}
    for name in LAYERS:
        assert name in planned or _module_exists(f"hcl_stats.{name}"), name


def test_imports_are_parsed():
    # the parser sees relative, absolute and function-level imports (checked on a module that has all)
    found = {t for m, p in MODULES.items() for _, t, _, _ in imports_of(m, p)}
    assert "hcl_stats.structure" in found and "hcl_stats._validation" in found


def test_checker_catches_each_kind_of_import(tmp_path):
    # a made-up layer-1 module (named as hcl_stats.structure) with one violation of each kind the test must see
    src = tmp_path / "fake.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import numpy as np\n"
        "from . import base\n"                                  # layer 0: fine
        "from ._validation import check_Xs\n"                   # public name of a private module: fine
        "if TYPE_CHECKING:\n"
        "    from .model import HCL\n"                          # layer 4 inside TYPE_CHECKING
        "def f():\n"
        "    import hcl_stats.selection\n"                      # layer 3 inside a function
        "    from hcl_stats.estimation.ml import fit_ml\n"      # layer 2, absolute
        "    return importlib.import_module('hcl_stats.cli')\n"  # layer 6 by name
        "from .metrics import _private_helper\n"                # private name, same layer
        "from .estimation import ml\n"                          # a submodule: layer 2
    )
    found = violations_of("hcl_stats.structure", src)
    text = "\n".join(found)
    for needle in ("from .model import HCL", "import hcl_stats.selection", "from hcl_stats.estimation.ml import fit_ml",
                   "import_module('hcl_stats.cli')", "'_private_helper'", "from .estimation import ml"):
        assert needle in text, (needle, found)
    assert len(found) == 6, found
    assert "base" not in text and "check_Xs" not in text and "numpy" not in text


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_respect_layers(module, request):
    if module in KNOWN_VIOLATIONS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_VIOLATIONS[module]))
    found = violations_of(module, MODULES[module])
    assert not found, "layering violations (tests/test_layers.py LAYER_TABLE):\n" + "\n".join(found)


if __name__ == "__main__":  # print today's violations
    for m, p in sorted(MODULES.items()):
        for v in violations_of(m, p):
            print(v)
