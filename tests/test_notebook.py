"""advtopo.app.show in notebooks: a run in an IFrame on a loopback server (which loopback pages
may frame, no other), a lone MapperGraph as a self-contained srcdoc page; the example notebook
executed in a real kernel; both views drawn inside their frame in chromium."""
from __future__ import annotations

import functools
import html
import http.server
import json
import os
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from advtopo.app import notebook, show
from advtopo.errors import AdvtopoError
from advtopo.mapper.graph import MapperGraph
from advtopo.rundir import Run
from app_fixture import make_fixture_run

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = make_fixture_run(tmp_path_factory.mktemp("nb") / "run", n_per_class=4, with_extras=False)
    yield root
    notebook.stop_servers()


def _srcdoc(frame_html: str) -> str:
    start = frame_html.index('srcdoc="') + len('srcdoc="')
    return html.unescape(frame_html[start:frame_html.index('"', start)])


def test_a_graph_renders_itself_as_a_self_contained_page(run_dir):
    run = Run(run_dir)
    gid = run.graph_entries()[0].id
    graph = MapperGraph.from_dict(run.graph(gid))
    frame = graph._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and frame.count("<iframe") == 1
    assert " src=" not in frame[frame.rindex('" title='):]  # the iframe loads nothing
    page = _srcdoc(frame)
    assert "window.ADVTOPO_EMBED=" in page and "<script src=" not in page and 'href="http' not in page
    assert "window.ADVTOPO_POOL=" in page  # the export's machinery, pooled lists included


def test_a_run_is_served_on_loopback_and_only_loopback_pages_may_frame_it(run_dir):
    v = notebook.view(run_dir)
    assert v.url.startswith("http://127.0.0.1:") and f'src="{v.url}"' in v._repr_html_()
    assert f'src="{v.url}"' in Run(run_dir)._repr_html_()  # the same server, reused
    with urllib.request.urlopen(v.url, timeout=20) as r:
        csp = r.headers["Content-Security-Policy"]
        assert r.headers.get("X-Frame-Options") is None
    assert "frame-ancestors 'self' http://127.0.0.1:* http://localhost:*" in csp
    assert "https:" not in csp and "*" not in csp.replace(":*", "")


def test_show_refuses_what_it_cannot_show(tmp_path):
    with pytest.raises(AdvtopoError, match="not a run directory"):
        show(tmp_path)
    with pytest.raises(AdvtopoError, match="not int"):
        show(42)


def test_show_returns_the_view_outside_ipython(run_dir):
    v = show(run_dir)
    assert isinstance(v, notebook.NotebookView) and v.url


def test_the_example_notebook_runs(run_dir, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    monkeypatch.setenv("ADVTOPO_RUN", str(run_dir))
    # a kernel of this interpreter, whatever kernels the user has installed
    spec = tmp_path / "jupyter" / "kernels" / "advtopo-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "advtopo tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nbclient.NotebookClient(nb, timeout=180, kernel_name="advtopo-test",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert Path(printed.split()[0]).resolve() == Path(sys.executable).resolve()  # the kernel is this venv's python
    frames = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(frames) == 3
    assert frames[0].startswith('<iframe src="http://127.0.0.1:') and frames[1].startswith('<iframe src="http://127.0.0.1:')
    assert frames[2].startswith("<iframe srcdoc=") and "window.ADVTOPO_EMBED=" in _srcdoc(frames[2])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")
def test_both_views_draw_inside_a_loopback_notebook_page(run_dir, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    run = Run(run_dir)
    graph = MapperGraph.from_dict(run.graph(run.graph_entries()[0].id))
    n_nodes = len(graph.to_dict()["nodes"])
    (tmp_path / "nb.html").write_text("<!doctype html><body>" + notebook.view(run_dir)._repr_html_()
                                      + graph._repr_html_() + "</body>", encoding="utf-8")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    errors: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            # evil.test: a site that is not loopback (resolved to 127.0.0.1 by chromium only)
            b = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP evil.test 127.0.0.1"])
            page = b.new_page(viewport={"width": 1400, "height": 1600})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/nb.html")
            served, static = page.frames[1], page.frames[2]
            for frame in (served, static):
                frame.wait_for_selector("body[data-ready='1']", timeout=30000)
            served.wait_for_selector("#graph-list, .panel", timeout=30000)
            static.wait_for_selector(".panel g.node", timeout=30000)
            assert static.locator(".panel").count() == 1
            assert static.locator(".panel g.node").count() == n_nodes
            # the same page from another site: the run's server refuses to be framed
            other = b.new_page()
            with other.expect_console_message(lambda m: "frame-ancestors" in m.text, timeout=30000):
                other.goto(f"http://evil.test:{httpd.server_address[1]}/nb.html")
            other.frames[2].wait_for_selector(".panel g.node", timeout=30000)  # srcdoc needs no server
            ready = [f.evaluate("document.body ? document.body.dataset.ready || '' : ''") for f in other.frames]
            assert ready.count("1") == 1 and not other.frames[1].url.startswith("http://127.0.0.1"), (ready, other.frames[1].url)
            b.close()
    finally:
        httpd.shutdown()
    assert not [e for e in errors if "frame" in e.lower() or "refused" in e.lower()], errors
