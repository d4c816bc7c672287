"""Sphinx configuration of fastnet's API reference (built by tests/test_docs.py with -W)."""

from __future__ import annotations

import os
import sys

# Document the checkout this file belongs to, also when it is not installed.
sys.path.insert(0, os.path.abspath(".."))

from fastnet import __version__  # noqa: E402

project = "fastnet"
author = "The fastnet-dlfs authors"
copyright = "2026, The fastnet-dlfs authors"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# numpydoc-style sections, parsed by napoleon (it ships with Sphinx).
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}

exclude_patterns = ["_build", "*.png"]
html_theme = "alabaster"
