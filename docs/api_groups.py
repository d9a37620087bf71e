"""The API reference, grouped by layer and concept, generated at every build from the modules' ``__all__``.

Each group lists modules; each module's page is a table (autosummary) of the public classes and
functions it defines (or, for a package, defines in its private submodules), each with its own page
generated from its numpydoc docstring. Constants are listed by name. A public module of
``hcl_stats`` that is in no group and not in ``NOT_DOCUMENTED`` makes the build warn (and ``-W``
fail), so the reference cannot silently fall behind the code.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import warnings

# (title, page name, introduction, modules); the order is that of the layers (CONTRIBUTING.md)
GROUPS = [
    ("Structure and simulation", "structure",
     "Which subsets of modalities share factors and at what rank, and the generator of the model "
     "(docs/method.md, sections 2 and 3).",
     ["hcl_stats.structure", "hcl_stats.simulate"]),
    ("Statistics of the data", "statistics",
     "Sufficient statistics (in memory, out of core, from the data when p > n), the Gaussian "
     "log-likelihood, recovery metrics and missingness reports.",
     ["hcl_stats.covariance", "hcl_stats.likelihood", "hcl_stats.metrics", "hcl_stats.incomplete"]),
    ("The estimator, estimation methods and solvers", "estimation",
     "``HCL`` and its results; the estimation methods registered by name in "
     "``hcl_stats.estimation.METHODS`` and their building blocks (docs/method.md, sections 4, 11, 12, 13).",
     ["hcl_stats.model", "hcl_stats.estimation", "hcl_stats.estimation.solvers", "hcl_stats.estimation.init",
      "hcl_stats.estimation.lowrank", "hcl_stats.estimation.paper", "hcl_stats.estimation.ml",
      "hcl_stats.estimation.als", "hcl_stats.estimation.missing", "hcl_stats.estimation.noise",
      "hcl_stats.estimation.shrinkage", "hcl_stats.estimation.sparse", "hcl_stats.estimation.sparse_path",
      "hcl_stats.estimation.rotation", "hcl_stats.estimation.linalg"]),
    ("Structure selection and model checking", "selection",
     "Rank tests, Moebius reconciliation and stability (docs/method.md, section 10); likelihood-ratio "
     "tests and information criteria of competing structures.",
     ["hcl_stats.selection", "hcl_stats.goodness"]),
    ("Representation and downstream prediction", "downstream",
     "Representations of new samples and the errors-in-variables corrected downstream estimators "
     "(docs/method.md, section 6).",
     ["hcl_stats.representation", "hcl_stats.downstream", "hcl_stats.downstream.linear",
      "hcl_stats.downstream.group_lasso", "hcl_stats.downstream.logistic", "hcl_stats.downstream.inference",
      "hcl_stats.downstream.risk"]),
    ("Baselines", "baselines",
     "Neighbouring methods with the same input and output conventions (docs/method.md, section 9).",
     ["hcl_stats.baselines"]),
    ("Contrastive learning", "contrastive",
     "The linear contrastive estimator, the synthetic contrastive tasks and the deep models "
     "(docs/method.md, section 8). The deep models need the ``deep`` extra (torch).",
     ["hcl_stats.contrastive", "hcl_stats.contrastive.linear", "hcl_stats.contrastive.tasks",
      "hcl_stats.contrastive.deep", "hcl_stats.contrastive.deep.hcl", "hcl_stats.contrastive.deep.factorcl",
      "hcl_stats.contrastive.deep.coral", "hcl_stats.contrastive.deep.cross", "hcl_stats.contrastive.deep.training"]),
    ("Theory checks, simulation harness and command line", "harness",
     "The simulation checks of the theory, the study harness (configs, runner, aggregation, "
     "report) and the ``hcl-stats`` command.",
     ["hcl_stats.theory", "hcl_stats.harness", "hcl_stats.harness.config", "hcl_stats.harness.runner",
      "hcl_stats.harness.studies", "hcl_stats.harness.methods", "hcl_stats.harness.aggregate",
      "hcl_stats.harness.report", "hcl_stats.harness.figures", "hcl_stats.harness.real_data",
      "hcl_stats.cli"]),
    ("Input, output and data sets", "io",
     "Labelled tables and MuData in, saved fits out; the shipped data set.",
     ["hcl_stats.io", "hcl_stats.datasets"]),
    ("Foundations", "foundations",
     "Errors and warnings, result summaries, the estimator base class, input checks and plots.",
     ["hcl_stats.exceptions", "hcl_stats.summary", "hcl_stats.base", "hcl_stats._validation",
      "hcl_stats.plotting"]),
]

LISTED = {m for group in GROUPS for m in group[3]}

# public modules deliberately left out of the reference: the entry point of ``python -m hcl_stats``
# and the deprecated aliases of moved modules (they re-export the documented objects and warn)
NOT_DOCUMENTED = {"hcl_stats.__main__", "hcl_stats.studies", "hcl_stats.studies.multiple_features",
                  "hcl_stats.contrastive_tasks", "hcl_stats.deep", "hcl_stats.deep.coral", "hcl_stats.deep.cross",
                  "hcl_stats.deep.factorcl", "hcl_stats.deep.hcl", "hcl_stats.deep._train"}


def _public_modules():
    import hcl_stats

    names = {"hcl_stats"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # walk_packages imports the deprecated packages
        infos = list(pkgutil.walk_packages(hcl_stats.__path__, "hcl_stats."))
    for info in infos:
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.add(info.name)
    return names


def _listed_ancestor(modname):
    parts = modname.split(".")
    for k in range(len(parts) - 1, 1, -1):
        if ".".join(parts[:k]) in LISTED:
            return ".".join(parts[:k])
    return None


def _import_quietly(modname):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # a deprecated alias may warn on import
        return importlib.import_module(modname)


def _not_exported(modname, parent):
    mod, pkg = _import_quietly(modname), _import_quietly(parent)
    exported = {id(getattr(pkg, n, None)) for n in getattr(pkg, "__all__", [])}
    lost = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name, None)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == modname and id(obj) not in exported:
            lost.append(name)
    return lost


def _documented_objects(modname):
    """(classes, functions, constants) that ``modname`` exports and defines (in itself or, for a
    package, in its private submodules); re-exports of other public modules are left to them."""
    mod = _import_quietly(modname)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    classes, functions, constants = [], [], []
    for name in names:
        obj = getattr(mod, name, None)
        if obj is None or inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            home = getattr(obj, "__module__", "") or ""
            # defined here, or in a submodule without a section of its own (private or not listed)
            own = home == modname or (home.startswith(modname + ".") and home not in LISTED)
            if not own:
                continue
            (classes if inspect.isclass(obj) else functions).append(name)
        else:
            constants.append(name)
    return classes, functions, constants


def _title(text, char):
    return f"{text}\n{char * len(text)}\n"


def _module_section(modname):
    classes, functions, constants = _documented_objects(modname)
    out = [_title(f"``{modname}``", "-"), f".. automodule:: {modname}\n   :no-members:\n",
           f".. currentmodule:: {modname}\n"]
    # classes get docs/_templates/autosummary/class.rst (their public methods documented)
    for label, names in (("Classes", classes), ("Functions", functions)):
        if not names:
            continue
        out.append(f".. rubric:: {label}\n")
        out.append(".. autosummary::\n   :toctree: generated\n\n" + "".join(f"   {n}\n" for n in names))
    if constants:
        out.append("Constants: " + ", ".join(f"``{c}``" for c in constants) + ".\n")
    return "\n".join(out)


def write_api_pages(out_dir, app=None):
    """Write ``index.rst`` and one page per group into ``out_dir`` (git-ignored); the modules are
    imported with the configuration's ``autodoc_mock_imports`` mocked (torch where it is missing)."""
    from sphinx.ext.autodoc.mock import mock

    with mock(list(getattr(app.config, "autodoc_mock_imports", []) if app is not None else [])):
        _write_api_pages(out_dir)


def _write_api_pages(out_dir):
    from sphinx.util import logging

    log = logging.getLogger("hcl_stats.api")
    os.makedirs(out_dir, exist_ok=True)
    listed = set()
    toc = []
    for title, page, intro, modules in GROUPS:
        present = []
        for modname in modules:
            try:
                importlib.util.find_spec(modname)
                spec = importlib.util.find_spec(modname)
            except ModuleNotFoundError:
                spec = None
            if spec is not None:
                present.append(modname)
        listed.update(modules)
        if not present:
            continue
        body = [_title(title, "="), intro + "\n"] + [_module_section(m) for m in present]
        _write(os.path.join(out_dir, page + ".rst"), "\n".join(body))
        toc.append(page)
    for modname in sorted(_public_modules() - listed - NOT_DOCUMENTED - {"hcl_stats"}):
        parent = _listed_ancestor(modname)
        if parent is None:
            log.warning(f"public module {modname} is in no group of docs/api_groups.py: add it to GROUPS "
                        "(or to NOT_DOCUMENTED with a reason)")
            continue
        # a public submodule without a section: what it defines must be exported by its listed package
        lost = _not_exported(modname, parent)
        if lost:
            log.warning(f"{modname} defines {lost}, which {parent} does not export: add {modname} to "
                        "GROUPS in docs/api_groups.py, or export them from the package")
    index = [_title("API reference", "="),
             "Grouped by layer and concept; the layers and the rule that imports only go down are in "
             ":doc:`/contributing`. The package namespace ``hcl_stats`` re-exports the main entry points "
             "(:class:`~hcl_stats.HCL`, :class:`~hcl_stats.Structure`, :func:`~hcl_stats.simulate.simulate`, "
             ":func:`~hcl_stats.select_structure`, ...); each is documented once, in the module that "
             "defines it.\n",
             ".. toctree::\n   :maxdepth: 2\n\n" + "".join(f"   {p}\n" for p in toc)]
    _write(os.path.join(out_dir, "index.rst"), "\n".join(index))


def _write(path, text):
    """Write only when the content changed (keeps incremental builds incremental)."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def strict_warnings(gallery_conf, fname):
    """Run before each tutorial: a FutureWarning from hcl_stats (a deprecated name) is an error."""
    warnings.filterwarnings("error", category=FutureWarning, module=r"(hcl_stats|__main__)")
