"""The local web server: a JSON API over one run directory plus the static front end.

Standard library only (``advtopo.app.httpd``: an accept loop and a bounded pool of workers,
read timeouts). Loopback by default; every error is a small JSON object with a 4xx/5xx
status, never a traceback page.

Requests that compute or write (``POST /api/recompute``, feature visualisation, embedding)
must come from the app's own page -- a POST's ``Origin`` is the server's, a GET's
``Sec-Fetch-Site`` is ``same-origin`` or ``none`` -- or carry the session's token in the
``X-Advtopo-Token`` header (the page gets it in index.html; scripts from the startup line or
``RUN_DIR/app-cache/session.json``): another web site's page cannot drive the server. The
``Host`` header must name loopback (a DNS-rebinding guard), exactly once.
"""
from __future__ import annotations

import hmac
import json
import mimetypes
import os
import re
import secrets
import sys
import threading
import traceback
import webbrowser
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from advtopo.errors import AdvtopoError
from advtopo.rundir import ArtefactInvalid, ArtefactMissing, confine, layout
from advtopo.utils.io import strict_dumps

from .aevis import AevisService
from .cache import AppCache, CacheLimits
from .columns import graph_columns
from .data import BadRequest, NotFound, RunData
from .embedding import EmbeddingService
from .export import STATIC_DIR, build_html
from .featurevis import FeatureVisService
from .httpd import PooledHTTPServer, PooledRequestHandler
from .recompute import Busy, RecomputeManager, RecomputeUnavailable
from .topoact import TopoActService

MAX_URL = 8192
MAX_BODY = 64 * 1024
MAX_IDS = 10000
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
TOKEN_HEADER = "X-Advtopo-Token"
_HOST = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")
_SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site of the app's own requests and of a typed URL

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       # notebooks (advtopo.app.show) frame the app; only pages served from loopback may
       "frame-ancestors 'self' http://127.0.0.1:* http://localhost:*")


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


def parse_body(body: bytes) -> dict:
    """A request body: one JSON object whose values are numbers, strings, booleans or null."""
    try:
        params = json.loads(body or b"{}")
    except RecursionError:
        raise HTTPError(400, "body is nested too deeply: send one JSON object of numbers and strings") from None
    except ValueError:
        raise HTTPError(400, "body must be JSON") from None
    if not isinstance(params, dict):
        raise HTTPError(400, "body must be a JSON object")
    if any(isinstance(v, (dict, list)) for v in params.values()):
        raise HTTPError(400, "body values must be numbers or strings (no nested objects or lists)")
    return params


class AppHandler(PooledRequestHandler):
    server_version = "advtopo"
    default_request_version = "HTTP/1.0"  # so even a malformed request line gets a status line + JSON
    sys_version = ""
    protocol_version = "HTTP/1.1"
    # set per server class
    run: RunData
    recompute: RecomputeManager
    featurevis: FeatureVisService
    embedding: EmbeddingService
    topoact: TopoActService
    aevis: AevisService
    cache: AppCache
    token: str
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
            self.send_header("Content-Security-Policy", CSP)  # its frame-ancestors replaces X-Frame-Options
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

    def _check_host(self) -> None:
        """Exactly one well-formed Host header, naming loopback when the server listens there (a
        DNS-rebinding guard: ``evil.example`` resolving to 127.0.0.1 is refused)."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:
            raise HTTPError(400, "a request needs exactly one Host header")
        m = _HOST.fullmatch(hosts[0].strip())
        if not m or (m.group(2) is not None and int(m.group(2)) > 65535):
            raise HTTPError(400, "malformed Host header")
        if self.check_host and m.group(1).lower() not in LOOPBACK_HOSTS:
            raise HTTPError(403, "forbidden host")

    def _check_may_compute(self, method: str) -> None:
        """A request that computes or writes comes from the app's own page (Origin / Sec-Fetch-Site)
        or carries the session token; anything else (another site's form or image) is refused."""
        token = self.headers.get(TOKEN_HEADER)
        if token is not None:
            if hmac.compare_digest(token.encode(), self.token.encode()):
                return
            raise HTTPError(403, f"wrong {TOKEN_HEADER}; advtopo serve prints the token when it starts and keeps it "
                                 f"in RUN_DIR/{layout.app_session_path()}")
        own = "http://" + self.headers.get("Host", "").strip().lower()
        origins = [o.strip().lower() for o in self.headers.get_all("Origin") or []]
        if origins and origins != [own]:
            raise HTTPError(403, f"cross-site request refused (Origin {origins[0][:100]!r})")
        same_site = (origins == [own]) if method == "POST" else self.headers.get("Sec-Fetch-Site") in _SAME_SITE
        if not same_site:
            raise HTTPError(403, f"this request computes: it must come from the app's page, or carry the "
                                 f"{TOKEN_HEADER} header (advtopo serve prints the token when it starts and keeps "
                                 f"it in RUN_DIR/{layout.app_session_path()})")

    def _dispatch(self, method: str) -> None:
        try:
            if len(self.path) > MAX_URL:
                raise HTTPError(414, "request URL too long")
            self._check_host()
            url = urlsplit(self.path)
            raw_parts = url.path.split("/")[1:]
            parts = [unquote(p, errors="strict") for p in raw_parts]
            query = {k: v[-1] for k, v in parse_qs(url.query, max_num_fields=50).items()}
            if method == "POST":
                self._route_post(parts, query)
            else:
                if self.headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in self.headers:
                    self.close_connection = True  # a body nobody reads: do not take it for the next request
                self._route_get(parts, query)
        except HTTPError as exc:
            self._send_error_json(exc.status, exc.message, method)
        except (NotFound, ArtefactMissing) as exc:  # before ValueError: the reader's errors are ValueErrors
            self._send_error_json(404, str(exc) or "not found", method)
        except (BadRequest, ArtefactInvalid, UnicodeDecodeError, ValueError) as exc:
            msg = str(exc) if isinstance(exc, (BadRequest, AdvtopoError)) else "bad request"
            self._send_error_json(400, msg, method)
        except RecomputeUnavailable as exc:
            self._send_error_json(501, str(exc), method)
        except Busy as exc:
            self._send_error_json(429, str(exc), method, extra={"Retry-After": "5"})
        except TimeoutError:
            try:
                self._send_error_json(408, "the request did not arrive in time", method, close=True)
            except OSError:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug: log it here, never send the traceback to the client
            traceback.print_exc(file=sys.stderr)
            try:
                self._send_error_json(500, "internal server error", method, close=True)
            except Exception:
                self.close_connection = True

    def _send_error_json(self, status: int, message: str, method: str, close: bool = False,
                         extra: dict | None = None) -> None:
        # a refused POST may leave its body unread: close the connection rather than read it as a request
        data = strict_dumps({"error": message, "status": status}).encode()
        self._send_bytes(data, "application/json; charset=utf-8", status, extra=extra,
                         close=close or method == "POST")

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
            return self._index_page()
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
            data = run.graph_text(rest[0])
            self.cache.used("recompute", rest[0])  # for a recomputed graph: the cache keeps what is viewed
            return self._send_bytes(data, "application/json; charset=utf-8")
        if route == "samples" and not rest:
            return self._send_json({"samples": run.samples(_ids(query.get("ids", "")))})
        if route == "columns" and len(rest) == 1:  # per-row samples.parquet columns of a graph (app/columns.py)
            return self._send_json(graph_columns(run.reader, rest[0]))
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
            if rest[1].endswith(".png"):  # reads the cache only: an <img> of this URL computes nothing
                return self._send_bytes(self.featurevis.png(rest[0], rest[1][:-4], rows), "image/png",
                                        extra={"Cache-Control": "max-age=3600"})
            self._check_may_compute("GET")
            try:
                return self._send_json({"available": True, **self.featurevis.info(rest[0], rest[1], rows)})
            except RecomputeUnavailable as exc:  # no model / activations in this run: not an error
                return self._send_json({"available": False, "reason": str(exc)})
        if route == "embedding" and len(rest) == 1:
            method = query.get("method", "pca")
            self._check_may_compute("GET")
            try:
                return self._send_json({"available": True, **self.embedding.get(rest[0], method)})
            except RecomputeUnavailable as exc:  # no activations in this run: not an error
                return self._send_json({"available": False, "reason": str(exc)})
        if route == "datapaths" and not rest:
            return self._send_json(run.datapaths())
        if route == "aevis" and len(rest) == 1 and rest[0] in ("layer", "neuron"):  # app/aevis.py: computes
            self._check_may_compute("GET")
            try:
                if rest[0] == "layer":
                    return self._send_json({"available": True, **self.aevis.layer(
                        query.get("sample", ""), query.get("layer", ""), query.get("eps", ""),
                        query.get("sort", "activation"))})
                return self._send_json({"available": True, **self.aevis.neuron(
                    query.get("layer", ""), query.get("channel", ""), query.get("k", "12"))})
            except RecomputeUnavailable as exc:  # no model / images / datapaths.json in this run: not an error
                return self._send_json({"available": False, "reason": str(exc)})
        if route == "activation-graph" and not rest:  # activation_graph.json (advtopo.study.actgraph)
            from advtopo.study.actgraph import app_document

            return self._send_json(app_document(run.reader))
        if route in ("flow", "shape", "shape-summary", "featurevis-sample"):  # TopoAct's views (app/topoact.py)
            return self._topoact(route, rest, query)
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

    def _topoact(self, route: str, rest: list[str], query: dict) -> None:
        if route == "flow" and not rest:
            return self._send_json(self.topoact.flow(query.get("from", ""), query.get("to", ""), query.get("rows", "all")))
        if route == "shape" and len(rest) == 1:
            return self._send_json(self.topoact.shape(rest[0], query.get("min_jaccard")))
        if route == "shape-summary" and not rest:
            return self._send_json(self.topoact.summary())
        if route == "featurevis-sample" and len(rest) == 2:
            kind = query.get("kind", "clean")
            if rest[1].endswith(".png"):  # reads the cache only, as the node's PNG
                sid = _int(rest[1][:-4], "sample id")
                return self._send_bytes(self.featurevis.sample_png(rest[0], sid, kind), "image/png",
                                        extra={"Cache-Control": "max-age=3600"})
            self._check_may_compute("GET")
            try:
                return self._send_json({"available": True,
                                        **self.featurevis.sample_info(rest[0], _int(rest[1], "sample id"), kind)})
            except RecomputeUnavailable as exc:  # no model / activations in this run: not an error
                return self._send_json({"available": False, "reason": str(exc)})
        raise NotFound("not found")

    def _route_post(self, parts: list[str], query: dict) -> None:
        if parts != ["api", "recompute"]:
            raise HTTPError(405 if parts[:1] == ["api"] else 404, "not found")
        self._check_may_compute("POST")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(415, "Content-Type must be application/json")
        if "Transfer-Encoding" in self.headers:
            raise HTTPError(411, "send the body with a Content-Length (no chunked transfer)")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            raise HTTPError(411, "Content-Length required")
        if len(lengths) > 1:
            raise HTTPError(400, "one Content-Length header only")
        n = _int(lengths[0], "Content-Length")
        if n > MAX_BODY:
            raise HTTPError(413, "request body too large")
        body = self.rfile.read(n)
        if len(body) < n:
            raise HTTPError(400, "the body is shorter than its Content-Length")
        self._send_json(self.recompute.submit(parse_body(body)), status=202)

    def _index_page(self) -> None:
        """index.html with this session's token, which the page sends with what computes."""
        html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        meta = f'<meta charset="utf-8">\n<meta name="advtopo-token" content="{self.token}">'
        self._send_bytes(html.replace('<meta charset="utf-8">', meta, 1).encode("utf-8"), "text/html; charset=utf-8")

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


class AppServer:
    """A running server: ``.url``, ``.run``, ``.token``, ``.shutdown()`` (use as a context manager).

    ``workers``: threads answering requests; ``read_timeout``: seconds a connection may take to
    send a request (and a client to take an answer); ``cache_limits``: the bound of each app
    cache; ``recompute_workers`` / ``max_queued``: rebuilds run at once / waiting."""

    def __init__(self, run_dir: str | Path, host: str = "127.0.0.1", port: int = 8765, quiet: bool = True, *,
                 workers: int = 32, read_timeout: float = 30.0, cache_limits: CacheLimits | None = None,
                 recompute_workers: int = 2, max_queued: int = 32):
        for name, v in (("workers", workers), ("recompute_workers", recompute_workers), ("max_queued", max_queued)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1024:
                raise AdvtopoError(f"{name}={v!r} must be an integer from 1 to 1024")
        if not isinstance(read_timeout, (int, float)) or not 0 < read_timeout <= 3600:
            raise AdvtopoError(f"read_timeout={read_timeout!r} must be a number of seconds in (0, 3600]")
        self.run = RunData(run_dir)
        self.token = secrets.token_urlsafe(32)
        cache = AppCache(self.run, cache_limits)
        self.recompute = RecomputeManager(self.run, cache, workers=recompute_workers, max_queued=max_queued)
        handler = type("Handler", (AppHandler,), {
            "run": self.run, "recompute": self.recompute, "quiet": quiet, "cache": cache, "token": self.token,
            "featurevis": FeatureVisService(self.run, cache), "embedding": EmbeddingService(self.run, cache),
            "topoact": TopoActService(self.run), "aevis": AevisService(self.run),
            "check_host": host in LOOPBACK_HOSTS,
        })
        try:
            self.httpd = PooledHTTPServer((host, port), handler, workers=workers, read_timeout=read_timeout,
                                          max_body=MAX_BODY)
        except OSError as exc:
            raise AdvtopoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; try --port") from exc
        h, p = self.httpd.server_address[:2]
        shown = "127.0.0.1" if h in ("0.0.0.0", "") else ("[::1]" if h == "::1" else h)
        self.host, self.port = h, p
        self.url = f"http://{shown}:{p}/"
        self.session_file = self._write_session()
        self._thread: threading.Thread | None = None

    def _write_session(self) -> Path | None:
        """RUN_DIR/app-cache/session.json (owner-only): the URL and token, for scripts."""
        rel = layout.app_session_path()
        try:
            confine.write_json(self.run.root, rel, {"url": self.url, "token": self.token, "pid": os.getpid(),
                                                    "header": TOKEN_HEADER}, mode=0o600)
        except (OSError, AdvtopoError) as exc:
            print(f"advtopo: warning: cannot write {self.run.root / rel} ({exc}); scripts take the token from "
                  "the startup line 'advtopo: scripts that compute send the header ...'", file=sys.stderr)
            return None
        return self.run.root / rel

    def _remove_session(self) -> None:
        if self.session_file is None:
            return
        rel = layout.app_session_path()
        try:
            data = confine.read_bytes(self.run.root, rel)
            if data is not None and json.loads(data).get("token") == self.token:  # not another server's
                confine.remove(self.run.root, rel)
        except (OSError, ValueError, AdvtopoError):
            pass
        self.session_file = None

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
        self.close()

    def close(self) -> None:
        """Release the port, the workers and the session file."""
        self.httpd.server_close()
        self.recompute.close()
        self._remove_session()

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          block: bool = True, quiet: bool = True, **options: Any) -> AppServer:
    """Serve the app for ``run_dir``.

    ``block=True`` serves until Ctrl-C; ``block=False`` starts a background thread and
    returns the :class:`AppServer` (call ``.shutdown()``). ``port=0`` picks a free port.
    ``options``: AppServer's (workers, read_timeout, cache_limits, recompute_workers, max_queued).
    """
    srv = AppServer(run_dir, host=host, port=port, quiet=quiet, **options)
    print(f"advtopo: serving {srv.run.root} at {srv.url}", flush=True)
    where = f" (also in {srv.session_file})" if srv.session_file else ""
    print(f"advtopo: scripts that compute send the header {TOKEN_HEADER}: {srv.token}{where}", flush=True)
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
        srv.close()
    return srv
