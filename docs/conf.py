"""Sphinx configuration: MyST markdown pages, the Furo theme, warnings as errors (make docs)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from docutils import nodes

_ROOT = Path(__file__).resolve().parent.parent
_PROJECT = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]

project = "airflow-provider-iotda"
author = "airflow-provider-iotda developers"
copyright = "airflow-provider-iotda developers"
release = version = _PROJECT["version"]

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# Headings up to ### get anchors, so pages can link to sections ([text](page.md#anchor)).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

html_theme = "furo"
html_title = f"airflow-provider-iotda {release}"
html_static_path = ["_static"]
pygments_style = "sphinx"

#: ``# [START name]`` / ``# [END name]`` lines of example DAGs: they delimit what a page
#: includes; those of regions nested in an included one are not shown.
_MARKER = re.compile(r"^\s*# \[(START|END) [\w-]+\]\s*$")


def _drop_markers(app: Any, doctree: nodes.document) -> None:
    for block in doctree.findall(nodes.literal_block):
        text = block.astext()
        kept = "\n".join(line for line in text.splitlines() if not _MARKER.match(line))
        if kept != text:
            block.rawsource = kept
            block.children = [nodes.Text(kept)]


def setup(app: Any) -> dict[str, Any]:
    app.connect("doctree-read", _drop_markers)
    return {"parallel_read_safe": True}
