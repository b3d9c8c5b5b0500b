"""Sphinx configuration: MyST markdown pages, the Furo theme, warnings as errors (make docs)."""

from __future__ import annotations

import tomllib
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_PROJECT = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]

project = "airflow-provider-iotda"
author = "airflow-provider-iotda developers"
copyright = "airflow-provider-iotda developers"  # noqa: A001 - Sphinx's name
release = version = _PROJECT["version"]

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# Headings up to ### get anchors, so pages can link to sections ([text](page.md#anchor)).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
# Links to files outside docs/ (example DAGs, tests) are shown as code, not links: say so.
suppress_warnings: list[str] = []

html_theme = "furo"
html_title = f"airflow-provider-iotda {release}"
html_static_path = ["_static"]
pygments_style = "sphinx"
