"""Sphinx configuration of the provider's documentation (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from airflow_provider_glue_labeling import __version__  # noqa: E402

project = "airflow-provider-glue-labeling"
author = "airflow-provider-glue-labeling contributors"
copyright = "2026, airflow-provider-glue-labeling contributors"
release = version = __version__
extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
exclude_patterns = ["_build", "*.png", "*.svg"]
html_theme = "alabaster"
html_static_path: list[str] = []
