"""The app inline in Jupyter / VS Code notebooks: ``advtopo.app.show(run_or_graph)``.

A run (a directory, :class:`advtopo.rundir.Run` or :class:`advtopo.app.RunData`) is shown in an
IFrame on a loopback server started in the background (one per run directory, reused; the
server lets only loopback pages frame it). A lone :class:`advtopo.mapper.MapperGraph` (or its
graph dict) needs no server: the static export's page with that one graph embedded, in an
iframe's ``srcdoc``. Both work offline: the front end is the vendored one in the package.
"""
from __future__ import annotations

import html
import itertools
import os
import threading
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError

IFRAME_HEIGHT = 720  # pixels; the app's grid needs about this much to show a panel and the sidebar
_servers: dict[Path, Any] = {}  # run root -> AppServer started for notebooks
_servers_lock = threading.Lock()
_view_numbers = itertools.count(1)


class NotebookView:
    """What ``show`` displays: an iframe (``_repr_html_``), and for a run the server's URL."""

    def __init__(self, html_text: str, url: str | None = None) -> None:
        self.html = html_text
        self.url = url

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"NotebookView(url={self.url!r})" if self.url else "NotebookView(static graph page)"


def run_server(run_dir: str | os.PathLike[str]) -> Any:
    """The loopback AppServer serving ``run_dir`` for notebooks (started on a free port the
    first time, in a background thread; reused afterwards)."""
    from .server import AppServer

    root = Path(run_dir).resolve()
    with _servers_lock:
        srv = _servers.get(root)
        if srv is None:
            srv = AppServer(root, host="127.0.0.1", port=0, quiet=True).start()
            _servers[root] = srv
        return srv


def stop_servers() -> None:
    """Shut down every server ``show`` started (they also stop with the kernel)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for srv in servers:
        srv.shutdown()


def run_view(run_dir: str | os.PathLike[str], height: int = IFRAME_HEIGHT) -> NotebookView:
    srv = run_server(run_dir)
    url = srv.url
    frame = (f'<iframe src="{html.escape(url, quote=True)}" title="advtopo: {html.escape(str(srv.run.root))}" '
             f'width="100%" height="{int(height)}" style="border:1px solid #ddd"></iframe>')
    return NotebookView(frame, url)


def graph_page(graph: Any, title: str = "graph") -> str:
    """The static export's page with one graph (a MapperGraph or its ``to_dict()``) embedded."""
    from advtopo.mapper.graph import MapperGraph, check_graph_dict
    from advtopo.mapper.shape import graph_shape

    from .export import embedded_page

    d = graph.to_dict() if isinstance(graph, MapperGraph) else graph
    if not isinstance(d, dict):
        raise AdvtopoError(f"show() takes a run directory, a Run or a MapperGraph, not {type(graph).__name__}")
    check_graph_dict(d)
    gid = title
    params = d.get("params") or {}
    entry = {"id": gid, "model": str(params.get("model", "graph")), "layer": str(params.get("layer", "-")),
             "attack": str(params.get("attack", "none")), "eps": float(params.get("attack_eps", 0.0) or 0.0),
             "path": f"{gid}.json", "mapper_set": "notebook", "rows": "both", "params": params,
             "stats": d.get("stats") or {}}
    index = {"format_version": 1, "name": title, "models": [entry["model"]], "attacks": [entry["attack"]],
             "layers": [entry["layer"]], "images": {}, "graphs": [entry],
             "app": {"mode": "static", "recompute": {"available": False, "reason": "a graph shown in a notebook"}}}
    embed = {"index": index, "graphs": {gid: d}, "vulnerability": {"samples": []}, "images": {},
             "shape": {gid: graph_shape(d)}, "state": {"graphs": [gid]}}
    page = embedded_page(embed)
    # in an iframe's srcdoc, relative URLs resolve against the notebook's page: the app's
    # history.replaceState("#view...") must stay on about:srcdoc
    head = page.index("<head>") + len("<head>")
    return page[:head] + '\n<base href="about:srcdoc">' + page[head:]


def graph_view(graph: Any, height: int = IFRAME_HEIGHT) -> NotebookView:
    title = f"graph-{next(_view_numbers)}"
    page = graph_page(graph, title)
    frame = (f'<iframe srcdoc="{html.escape(page, quote=True)}" title="advtopo: {title}" '
             f'width="100%" height="{int(height)}" style="border:1px solid #ddd"></iframe>')
    return NotebookView(frame)


def view(obj: Any, height: int = IFRAME_HEIGHT) -> NotebookView:
    """The NotebookView of a run (directory, Run, RunData) or of a graph (MapperGraph, dict)."""
    from advtopo.mapper.graph import MapperGraph
    from advtopo.rundir import Run

    from .data import RunData

    if isinstance(obj, (str, os.PathLike)):
        if not (Path(obj) / "index.json").is_file():
            raise AdvtopoError(f"{obj} is not a run directory (no index.json): show() takes a run directory, "
                               "a Run or a MapperGraph")
        return run_view(obj, height)
    if isinstance(obj, Run):
        return run_view(obj.root, height)
    if isinstance(obj, RunData):
        return run_view(obj.root, height)
    if isinstance(obj, (MapperGraph, dict)):
        return graph_view(obj, height)
    raise AdvtopoError(f"show() takes a run directory, a Run or a MapperGraph, not {type(obj).__name__}")


def show(obj: Any, height: int = IFRAME_HEIGHT) -> NotebookView | None:
    """Display the interactive view of ``obj`` inline (in IPython / Jupyter / VS Code), or
    return it (outside IPython: its ``_repr_html_`` is the iframe)."""
    v = view(obj, height)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ModuleNotFoundError:  # IPython is not advtopo's; outside it there is nothing to display on
        return v
    if get_ipython() is None:
        return v
    display(v)
    return None
