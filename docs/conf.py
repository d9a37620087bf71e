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
autodoc_default_options = {"members": False, "inherited-members": False}
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


def setup(app):
    api_groups.write_api_pages(os.path.join(HERE, "api"), app)
