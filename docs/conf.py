"""Sphinx configuration of the fixar-hw documentation (``python -m sphinx -W -b html docs out``)."""

import os
import sys

sys.path.insert(0, os.path.abspath("_ext"))

import fixar_hw

project = "fixar-hw"
author = "the fixar-hw authors"
copyright = "the fixar-hw authors, BSD-2-Clause"
release = version = fixar_hw.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_parser",
    "sphinxarg.ext",
    "fixar_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"fixar-hw {release}"
html_theme_options = {"description": "FPGA generators for on-chip DRL training",
                      "fixed_sidebar": True}

autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# Only the pages' own ``{doctest}`` blocks run as doctests; the docstrings' examples are run by
# the test suite where their modules are tested.
doctest_test_doctest_blocks = ""
doctest_global_setup = """
import warnings
from amaranth.hdl import UnusedElaboratable
warnings.simplefilter("ignore", UnusedElaboratable)
"""
