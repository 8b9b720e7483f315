"""Sphinx configuration of the captioner documentation (``make docs``; strict in ``make test``).

Sphinx with MyST-Parser and the Furo theme: the pages are Markdown, as the rest of the project's prose is;
autodoc reads the Python API from the docstrings; and a small local extension (``_ext/reference_pages.py``)
generates the command-line, HTTP and configuration references from the code at every build.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent / "src"))

from captioner import __version__  # noqa: E402

project = "captioner"
author = "the captioner authors"
copyright = "the captioner authors, MIT licence"
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "reference_pages"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "screenshots", "figures"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # links such as guides/web-app.md#the-json-api reach a heading

html_theme = "furo"
html_title = f"captioner {version}"
html_static_path: list[str] = []
html_show_sourcelink = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Types from other libraries in signatures: no inventory of theirs is fetched (the build runs offline).
nitpick_ignore_regex = [
    ("py:class", r"(os|pathlib|typing|collections\.abc|PIL|numpy|np)\b.*"),
    ("py:class", r"(Path|PathLike|Image\.Image|Sequence|Mapping|Iterable|Iterator|Callable|T)"),
    ("py:class", r"(BundleInfo|tuple\[.*)"),  # names under TYPE_CHECKING; tuple[X, ...] split by the signature parser
]
