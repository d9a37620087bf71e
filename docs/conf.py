"""Sphinx configuration of the hcl_stats documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (CONTRIBUTING.md, "Documentation").
The API reference (``docs/api/``) is generated at every build from the ``__all__`` of the modules listed
in ``docs/api_groups.py``; a public module that is in no group is a warning (so the build fails on it).
The tutorials (``docs/tutorials/*.py``) are executed by sphinx-gallery at every build; an exception in
one fails the build.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# document (and run the tutorials against) the source tree next to this file
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
os.environ.setdefault("MPLBACKEND", "Agg")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import hcl_stats  # noqa: E402
import api_groups  # noqa: E402

project = "hcl_stats"
author = "the hcl_stats authors"
copyright = "the hcl_stats authors"
release = version = hcl_stats.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "tutorials/README.rst", "tutorials/GALLERY_HEADER.rst",
                    "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# -- autodoc / autosummary / numpydoc -------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {}
autodoc_typehints = "none"          # the numpydoc sections carry the types and shapes
autodoc_member_order = "bysource"
nitpicky = False
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
# optional heavy dependencies: document the deep models even where torch is not installed
try:
    import torch  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    autodoc_mock_imports = ["torch"]

# -- Markdown (docs/method.md) --------------------------------------------------------------------
myst_heading_anchors = 3

# -- tutorials --------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["tutorials"],
    "gallery_dirs": ["auto_tutorials"],
    "filename_pattern": r"/plot_",            # execute every tutorial
    "abort_on_example_error": True,             # an exception stops and fails the build
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib", "api_groups.strict_warnings"),
    "plot_gallery": "True",
    "write_computation_times": True,
}

# -- HTML -------------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"hcl_stats {release}"
html_static_path = []
html_theme_options = {"description": "Hierarchical multimodal factor models (HCL) as a statistical method",
                      "fixed_sidebar": True, "page_width": "1100px", "sidebar_width": "260px"}


def _lookup(dotted):
    """The object named ``dotted`` (a module, then attributes), or None."""
    import importlib

    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_reexport(app, env, node, contnode):
    """Link a reference to a re-exported name (``hcl_stats.HCL``, ``select_structure`` inside a module
    that imports it) to the page of the object, which is documented once, where it is defined."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    module = node.get("py:module") or ""
    candidates = [target] + ([f"{module}.{target}"] if module else [])
    for name in candidates:
        if not name.startswith("hcl_stats"):
            continue
        obj = _lookup(name)
        home, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if not (home and qualname and home.startswith("hcl_stats")):
            continue
        parts = home.split(".")
        # the defining module, then the same name without its private modules (as documented)
        public = ".".join(p for p in parts if not p.startswith("_"))
        for canonical in dict.fromkeys([f"{home}.{qualname}", f"{public}.{qualname}"]):
            if canonical == target:
                continue
            new = node.deepcopy()
            new["reftarget"] = canonical
            ref = env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], canonical,
                                                    new, contnode)
            if ref is not None:
                return ref
    return None


def setup(app):
    api_groups.write_api_pages(os.path.join(HERE, "api"), app)
    app.connect("missing-reference", _resolve_reexport)
