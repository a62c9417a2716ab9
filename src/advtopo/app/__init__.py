"""app stage: the local web app over a run directory, and its static HTML export.

``serve(run_dir, host="127.0.0.1", port=8765, open_browser=True, block=True)`` serves the
JSON API and the front end (d3 vendored, nothing loads from the internet);
``export_html(run_dir, out_path, graph_ids=None)`` writes one self-contained HTML file.
See docs/app.md.
"""
from __future__ import annotations

from .data import RunData
from .export import build_html, export_html
from .notebook import show
from .png import encode_png
from .server import AppServer, serve

__all__ = ["AppServer", "RunData", "build_html", "encode_png", "export_html", "serve", "show"]
