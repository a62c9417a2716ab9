"""The app's server under load (real server, real sockets): bursts of concurrent requests are all
answered, rebuild requests are queued within bounds and each answered, and idle or slow
connections hold no worker. No latency thresholds: benchmarks/app_load.py measures those."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from advtopo.app import AppServer, serve
from advtopo.app.httpd import PooledHTTPServer, PooledRequestHandler
from app_fixture import make_fixture_run
from test_app_security import add_activations

TIMEOUT = 120  # generous: the machine may be shared


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_fixture_run(tmp_path_factory.mktemp("load") / "run")


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def burst(n: int, job) -> list:
    """Run ``job(k)`` in ``n`` threads released together; returns each result or the exception."""
    barrier = threading.Barrier(n)
    out: list = [None] * n

    def run(k: int) -> None:
        barrier.wait()
        try:
            out[k] = job(k)
        except Exception as exc:  # noqa: BLE001  (a failure, counted by the test)
            out[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_200_concurrent_requests_over_graph_image_and_summary_routes(run_dir):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from app_load import routes

    paths = routes(run_dir)
    assert {p.split("?")[0].split("/")[2] for p in paths} >= {"graph", "image", "index", "vulnerability", "samples"}
    with serve(run_dir, port=0, open_browser=False, block=False) as srv:
        answers = burst(200, lambda k: get(srv.port, paths[k]))
    failures = [(paths[k], a if isinstance(a, Exception) else a[0]) for k, a in enumerate(answers)
                if isinstance(a, Exception) or a[0] != 200]
    assert failures == []
    idx = json.loads((run_dir / "index.json").read_text())
    graph_answer = next(a for k, a in enumerate(answers) if paths[k].startswith("/api/graph/"))
    assert json.loads(graph_answer[1])["nodes"]
    assert all(a[1][:8] == b"\x89PNG\r\n\x1a\n" for k, a in enumerate(answers) if paths[k].endswith(".png"))
    assert len(idx["graphs"]) == 18


def _post(port: int, token: str, body: dict) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("POST", "/api/recompute", json.dumps(body),
                 {"Content-Type": "application/json", "X-Advtopo-Token": token})
    r = conn.getresponse()
    data = json.loads(r.read())
    conn.close()
    return r.status, dict(r.getheaders()), data


def _wait(port: int, token: str, job: dict) -> dict:
    for _ in range(TIMEOUT * 10):
        job = json.loads(get(port, f"/api/recompute/{job['id']}", {"X-Advtopo-Token": token})[1])
        if job["state"] in ("done", "error"):
            return job
        time.sleep(0.1)
    return job


REQUESTS = [{"n_intervals": n, "overlap": o} for n in (3, 4, 5, 6, 7) for o in (0.2, 0.3, 0.4, 0.5)]  # 20


def test_20_concurrent_recomputes_are_queued_and_each_answered(tmp_path, run_dir):
    run = add_activations(make_fixture_run(tmp_path / "run", n_per_class=4, with_extras=False))
    gid = next(g["id"] for g in json.loads((run / "index.json").read_text())["graphs"]
               if g["model"] == "cnn_std" and g["layer"] == "fc1" and g["eps"] > 0)
    with serve(run, port=0, open_browser=False, block=False) as srv:  # 2 job threads, 32 may wait
        answers = burst(20, lambda k: _post(srv.port, srv.token, {"graph": gid, **REQUESTS[k]}))
        assert all(not isinstance(a, Exception) and a[0] == 202 for a in answers), answers
        for status, _, job in answers:
            assert job["state"] in ("queued", "running", "done")
            if job["state"] == "queued":
                assert 1 <= job["position"] <= 20
        done = [_wait(srv.port, srv.token, job) for _, _, job in answers]
        assert [j["state"] for j in done] == ["done"] * 20, [j["message"] for j in done if j["state"] != "done"]
        listed = {g["id"] for g in json.loads(get(srv.port, "/api/index")[1])["graphs"]}
        assert {j["graph_id"] for j in done} <= listed and len({j["graph_id"] for j in done}) == 20


def test_recompute_queue_is_bounded(tmp_path):
    """One job thread, at most 2 waiting: of 20 requests at once some are answered 429 (Retry-After),
    the rest are queued and done; none is lost."""
    run = add_activations(make_fixture_run(tmp_path / "run", n_per_class=60, with_extras=False), dim=8)
    gid = next(g["id"] for g in json.loads((run / "index.json").read_text())["graphs"]
               if g["model"] == "cnn_std" and g["layer"] == "fc1" and g["eps"] > 0)
    with AppServer(run, port=0, recompute_workers=1, max_queued=2).start() as srv:
        answers = burst(20, lambda k: _post(srv.port, srv.token, {"graph": gid, **REQUESTS[k]}))
        assert not any(isinstance(a, Exception) for a in answers), answers
        busy = [a for a in answers if a[0] == 429]
        queued = [a for a in answers if a[0] == 202]
        assert len(busy) + len(queued) == 20 and busy and queued
        for _, headers, body in busy:
            assert headers["Retry-After"] == "5" and "waiting" in body["error"]
        for _, _, job in queued:
            assert job.get("position", 1) <= 2
        assert all(_wait(srv.port, srv.token, job)["state"] == "done" for _, _, job in queued)


def test_idle_and_slow_connections_hold_no_worker(run_dir):
    """200 connections that send nothing and 50 that send half a request, with 2 workers: a normal
    request is still answered, and the server closes the idle ones after its read timeout."""
    with AppServer(run_dir, port=0, workers=2, read_timeout=3).start() as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) for _ in range(200)]
        slow = []
        for i in range(50):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
            part = (f"GET /api/index HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n" if i % 2 else
                    f"POST /api/recompute HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Type: application/json\r\n"
                    f"X-Advtopo-Token: {srv.token}\r\nContent-Length: 100\r\n\r\n{{\"graph\": ")
            s.sendall(part.encode())
            slow.append(s)
        try:
            for path in ("/api/index", "/api/graph/" + quote(json.loads((run_dir / "index.json").read_text())
                                                             ["graphs"][0]["id"])):
                status, data = get(srv.port, path)
                assert status == 200 and data
            for s in idle + slow:  # then the server closes each after its read timeout (3 s)
                try:
                    assert s.recv(65536) == b""  # end of stream; a socket left open would time out here
                except ConnectionResetError:
                    pass
        finally:
            for s in idle + slow:
                s.close()


def test_past_the_connection_limit_the_oldest_idle_one_is_closed():
    """1,100 idle connections against 1,024 allowed (here 40 against 20): new requests are answered."""

    class Hello(PooledRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args) -> None:
            pass

    httpd = PooledHTTPServer(("127.0.0.1", 0), Hello, workers=2, read_timeout=60, max_connections=20)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    idle = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(40)]
    try:
        for _ in range(3):
            assert get(port, "/") == (200, b"hello")
        closed = 0
        for s in idle:
            s.settimeout(0.5)
            try:
                closed += s.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed += 1
        assert closed >= 20  # the oldest made room; 60 s read timeout: none expired
    finally:
        for s in idle:
            s.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_keep_alive_and_pipelined_requests(run_dir):
    with serve(run_dir, port=0, open_browser=False, block=False) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
        for _ in range(3):  # one connection, kept alive between requests
            conn.request("GET", "/api/vulnerability")
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["samples"]
        conn.close()
        head = f"GET /api/index HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
            s.sendall((head * 2 + head.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")).encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 3
