"""The local web server: a JSON API over one run directory plus the static front end.

Standard library only (``http.server.ThreadingHTTPServer``). Loopback by default; every
error is a small JSON object with a 4xx/5xx status, never a traceback page.
"""
from __future__ import annotations

import json
import mimetypes
import sys
import threading
import traceback
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from advtopo.errors import AdvtopoError
from advtopo.rundir import ArtefactInvalid, ArtefactMissing, layout
from advtopo.utils.io import strict_dumps

from .data import BadRequest, NotFound, RunData
from .embedding import EmbeddingService
from .export import STATIC_DIR, build_html
from .featurevis import FeatureVisService
from .recompute import RecomputeManager, RecomputeUnavailable
MAX_URL = 8192
MAX_BODY = 64 * 1024
MAX_IDS = 10000
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _int(value: str, what: str) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise HTTPError(400, f"{what} must be an integer") from None
    if v < 0 or v > 2**53:
        raise HTTPError(400, f"{what} out of range")
    return v


def _ids(value: str) -> list[int]:
    parts = [p for p in value.split(",") if p.strip()]
    if len(parts) > MAX_IDS:
        raise HTTPError(400, f"at most {MAX_IDS} ids per request")
    return [_int(p.strip(), "id") for p in parts]


class AppHandler(BaseHTTPRequestHandler):
    server_version = "advtopo"
    default_request_version = "HTTP/1.0"  # so even a malformed request line gets a status line + JSON
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # set per server class
    run: RunData
    recompute: RecomputeManager
    quiet: bool = True
    check_host: bool = True

    # ---- plumbing ----------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if not self.quiet:
            sys.stderr.write("advtopo serve: " + (format % args) + "\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, URI too long, bad method) -> JSON too
        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = "error"
        self._send_json({"error": message or reason, "status": code}, status=code, close=True)

    def _headers(self, status: int, ctype: str, length: int, extra: dict | None = None, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-cache")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Frame-Options", "DENY")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _send_bytes(self, data: bytes, ctype: str, status: int = 200, extra: dict | None = None,
                    close: bool = False) -> None:
        self._headers(status, ctype, len(data), extra, close)
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, obj: Any, status: int = 200, close: bool = False) -> None:
        data = strict_dumps(obj).encode()  # NaN / Infinity (an undefined rank correlation, ...): null
        self._send_bytes(data, "application/json; charset=utf-8", status, close=close)

    def _host_ok(self) -> bool:
        if not self.check_host:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):
            host = host[: host.find("]") + 1]
        else:
            host = host.rsplit(":", 1)[0]
        return host in LOOPBACK_HOSTS

    def _dispatch(self, method: str) -> None:
        try:
            if len(self.path) > MAX_URL:
                raise HTTPError(414, "request URL too long")
            if not self._host_ok():  # DNS-rebinding guard for the loopback-only server
                raise HTTPError(403, "forbidden host")
            url = urlsplit(self.path)
            raw_parts = url.path.split("/")[1:]
            parts = [unquote(p, errors="strict") for p in raw_parts]
            query = {k: v[-1] for k, v in parse_qs(url.query, max_num_fields=50).items()}
            if method == "POST":
                self._route_post(parts, query)
            else:
                self._route_get(parts, query)
        except HTTPError as exc:
            self._send_json({"error": exc.message, "status": exc.status}, exc.status)
        except (NotFound, ArtefactMissing) as exc:  # before ValueError: the reader's errors are ValueErrors
            self._send_json({"error": str(exc) or "not found", "status": 404}, 404)
        except (BadRequest, ArtefactInvalid, UnicodeDecodeError, ValueError) as exc:
            msg = str(exc) if isinstance(exc, (BadRequest, AdvtopoError)) else "bad request"
            self._send_json({"error": msg, "status": 400}, 400)
        except RecomputeUnavailable as exc:
            self._send_json({"error": str(exc), "status": 501}, 501)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:  # a bug: log it here, never send the traceback to the client
            traceback.print_exc(file=sys.stderr)
            try:
                self._send_json({"error": "internal server error", "status": 500}, 500)
            except Exception:
                pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _method_not_allowed(self) -> None:
        self._send_json({"error": "method not allowed", "status": 405}, 405)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed  # noqa: N815

    # ---- routes ------------------------------------------------------------------------
    def _route_get(self, parts: list[str], query: dict) -> None:
        if parts in ([""], ["index.html"]):
            return self._static(["index.html"])
        if parts and parts[0] == "static":
            return self._static(parts[1:])
        if parts and parts[0] == "report":
            return self._report(parts[1:])
        if parts[:1] != ["api"] or len(parts) < 2:
            raise NotFound("not found")
        run = self.run
        route, rest = parts[1], parts[2:]
        if route == "index" and not rest:
            idx = dict(run.index())
            idx["app"] = {"mode": "server", "recompute": self.recompute.available(),
                          "report": (self.run.root / layout.REPORT_DIR / "report.html").is_file()}
            return self._send_json(idx)
        if route == "graph" and len(rest) == 1:
            return self._send_bytes(run.graph_text(rest[0]), "application/json; charset=utf-8")
        if route == "samples" and not rest:
            return self._send_json({"samples": run.samples(_ids(query.get("ids", "")))})
        if route == "node" and len(rest) == 2:
            return self._send_json(run.node_detail(rest[0], rest[1]))
        if route == "node" and len(rest) == 3 and rest[2] == "members.csv":
            data = run.members_csv(rest[0], rest[1])
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{rest[0]}_{rest[1]}")
            return self._send_bytes(data, "text/csv; charset=utf-8",
                                    extra={"Content-Disposition": f'attachment; filename="{safe}_members.csv"'})
        if route == "image" and rest and rest[-1].endswith(".png"):
            sid = _int(rest[-1][:-4], "sample id")
            if rest[0] == "clean" and len(rest) == 2:
                png = run.image_png(sid)
            elif rest[0] == "adversarial" and len(rest) == 5:
                png = run.image_png(sid, rest[1], rest[2], rest[3])
            else:
                raise NotFound("not found")
            return self._send_bytes(png, "image/png", extra={"Cache-Control": "max-age=3600"})
        if route == "locate" and len(rest) == 1:
            graphs = [g for g in query.get("graphs", "").split(",") if g] or None
            if graphs and len(graphs) > 64:
                raise HTTPError(400, "too many graphs")
            return self._send_json(run.locate(_int(rest[0], "sample id"), graphs))
        if route == "diagram" and not rest:
            return self._send_json(run.diagram(query.get("key", "")))
        if route == "vulnerability" and not rest:
            return self._send_json(run.vulnerability())
        if route == "featurevis" and len(rest) == 2:
            rows = query.get("rows", "auto")
            if rest[1].endswith(".png"):
                return self._send_bytes(self.featurevis.png(rest[0], rest[1][:-4], rows), "image/png",
                                        extra={"Cache-Control": "max-age=3600"})
            try:
                return self._send_json({"available": True, **self.featurevis.info(rest[0], rest[1], rows)})
            except RecomputeUnavailable as exc:  # no model / activations in this run: not an error
                return self._send_json({"available": False, "reason": str(exc)})
        if route == "embedding" and len(rest) == 1:
            method = query.get("method", "pca")
            try:
                return self._send_json({"available": True, **self.embedding.get(rest[0], method)})
            except RecomputeUnavailable as exc:  # no activations in this run: not an error
                return self._send_json({"available": False, "reason": str(exc)})
        if route == "datapaths" and not rest:
            return self._send_json(run.datapaths())
        if route == "export.html" and not rest:
            graphs = [g for g in query.get("graphs", "").split(",") if g] or None
            if graphs and len(graphs) > 16:
                raise HTTPError(400, "at most 16 graphs per export")
            data = build_html(run, graphs, state=query.get("state"))
            return self._send_bytes(data, "text/html; charset=utf-8",
                                    extra={"Content-Disposition": 'attachment; filename="advtopo-export.html"'})
        if route == "recompute" and len(rest) == 1:
            return self._send_json(self.recompute.status(rest[0]))
        raise NotFound("not found")

    def _route_post(self, parts: list[str], query: dict) -> None:
        if parts != ["api", "recompute"]:
            raise HTTPError(405 if parts[:1] == ["api"] else 404, "not found")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "Content-Length required")
        n = _int(length, "Content-Length")
        if n > MAX_BODY:
            raise HTTPError(413, "request body too large")
        body = self.rfile.read(n)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise HTTPError(400, "body must be JSON") from None
        if not isinstance(params, dict):
            raise HTTPError(400, "body must be a JSON object")
        self._send_json(self.recompute.submit(params), status=202)

    def _static(self, parts: list[str]) -> None:
        if not parts or any(p in ("", ".", "..") or "/" in p or "\\" in p or "\x00" in p for p in parts):
            raise NotFound("not found")
        full = STATIC_DIR.joinpath(*parts).resolve()
        try:
            full.relative_to(STATIC_DIR)
        except ValueError:
            raise NotFound("not found") from None
        if not full.is_file():
            raise NotFound("not found")
        ctype = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "text/javascript"):
            ctype += "; charset=utf-8"
        self._send_bytes(full.read_bytes(), ctype)

    def _report(self, parts: list[str]) -> None:
        """``advtopo report``'s page and figures (RUN/report/), confined to that folder."""
        if parts in ([], [""]):
            parts = ["report.html"]
        if not (parts == ["report.html"] or (len(parts) == 2 and parts[0] == "figures"
                                             and parts[1].endswith((".png", ".svg")))):
            raise NotFound("not found")
        if any(p in ("", ".", "..") or "/" in p or "\\" in p or "\x00" in p for p in parts):
            raise NotFound("not found")
        base = (self.run.root / layout.REPORT_DIR).resolve()
        full = base.joinpath(*parts).resolve()
        try:
            full.relative_to(base)
        except ValueError:
            raise NotFound("not found") from None
        if not full.is_file():
            raise NotFound("no report: run `advtopo report RUN` first" if parts == ["report.html"] else "not found")
        ctype = {"html": "text/html; charset=utf-8", "png": "image/png", "svg": "image/svg+xml"}[full.suffix[1:]]
        self._send_bytes(full.read_bytes(), ctype)


class _QuietServer(ThreadingHTTPServer):
    """A browser that drops a connection (a new page, a cancelled image) is not an error:
    no traceback on stderr for those; everything else is still reported."""

    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class AppServer:
    """A running server: ``.url``, ``.run``, ``.shutdown()`` (use as a context manager)."""

    def __init__(self, run_dir: str | Path, host: str = "127.0.0.1", port: int = 8765, quiet: bool = True):
        self.run = RunData(run_dir)
        handler = type("Handler", (AppHandler,), {
            "run": self.run, "recompute": RecomputeManager(self.run), "quiet": quiet,
            "featurevis": FeatureVisService(self.run), "embedding": EmbeddingService(self.run),
            "check_host": host in LOOPBACK_HOSTS,
        })
        try:
            self.httpd = _QuietServer((host, port), handler)
        except OSError as exc:
            raise AdvtopoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; try --port") from exc
        self.httpd.daemon_threads = True
        h, p = self.httpd.server_address[:2]
        shown = "127.0.0.1" if h in ("0.0.0.0", "") else ("localhost" if h == "::1" else h)
        self.host, self.port = h, p
        self.url = f"http://{shown}:{p}/"
        self._thread: threading.Thread | None = None

    def start(self) -> AppServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="advtopo-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def shutdown(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          block: bool = True, quiet: bool = True) -> AppServer:
    """Serve the app for ``run_dir``.

    ``block=True`` serves until Ctrl-C; ``block=False`` starts a background thread and
    returns the :class:`AppServer` (call ``.shutdown()``). ``port=0`` picks a free port.
    """
    srv = AppServer(run_dir, host=host, port=port, quiet=quiet)
    print(f"advtopo: serving {srv.run.root} at {srv.url}", flush=True)
    if host not in LOOPBACK_HOSTS:
        print("advtopo: warning: listening beyond loopback; anyone who can reach this address can read the run",
              file=sys.stderr)
    if open_browser:
        threading.Timer(0.3, lambda: webbrowser.open(srv.url)).start()
    if not block:
        return srv.start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        print("advtopo: stopped", flush=True)
    finally:
        srv.httpd.server_close()
    return srv
