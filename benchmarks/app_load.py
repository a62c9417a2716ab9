"""Load on ``advtopo serve``: N concurrent requests over graph, image and summary routes.

Serves ``runs/demo`` when it exists, else a fixture run built by ``tests/app_fixture.py`` (2,000
samples, 18 graphs), in its own ``advtopo serve`` process, or measures a server already running
(``--url``). Each round releases ``--concurrency`` requests
at once (a barrier), each on its own connection, cycling through the run's graphs, clean and
adversarial thumbnails and the summary routes (index, vulnerability, samples, datapaths);
``--idle N`` first opens N connections that send nothing and keeps them open throughout.
Prints p50 / p99 / max latency and the failures (connection errors, timeouts, non-200).

    python benchmarks/app_load.py                     # 200 concurrent x 5 rounds
    python benchmarks/app_load.py --idle 1100         # the same with 1,100 idle connections open
    python benchmarks/app_load.py --url http://127.0.0.1:8765/ --run runs/demo   # another server
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def routes(run_dir: Path) -> list[str]:
    """The request paths, cycling over graphs, thumbnails and summary routes."""
    idx = json.loads((run_dir / "index.json").read_text())
    graphs = [g["id"] for g in idx["graphs"]]
    n = int((idx.get("dataset") or {}).get("n_samples") or 50)
    adv = sorted((idx.get("images") or {}).get("adversarial") or {})
    summary = ["/api/index", "/api/vulnerability", "/api/samples?ids=1,2,3", "/api/datapaths"]
    out = []
    for i in range(400):
        kind = i % 4
        if kind == 0:
            out.append("/api/graph/" + quote(graphs[i % len(graphs)], safe=""))
        elif kind == 1:
            out.append(f"/api/image/clean/{(7 * i) % n}.png")
        elif kind == 2 and adv:
            out.append(f"/api/image/adversarial/{'/'.join(quote(p, safe='') for p in adv[i % len(adv)].split('/'))}"
                       f"/{(11 * i) % n}.png")
        else:
            out.append(summary[(i // 4) % len(summary)])
    return out


def one(host: str, port: int, path: str, timeout: float) -> tuple[float, str | None]:
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        conn.close()
        err = None if r.status == 200 else f"HTTP {r.status}"
    except Exception as exc:  # noqa: BLE001  (counted and named in the report)
        err = type(exc).__name__
    return time.perf_counter() - t0, err


def load(host: str, port: int, paths: list[str], concurrency: int, rounds: int, timeout: float) -> dict:
    lat, errors, per_round = [], {}, []
    for r in range(rounds):
        barrier = threading.Barrier(concurrency)
        results: list[tuple[float, str | None]] = [(0.0, None)] * concurrency

        def worker(k: int) -> None:
            path = paths[(r * concurrency + k) % len(paths)]
            barrier.wait()
            results[k] = one(host, port, path, timeout)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for secs, err in results:
            lat.append(secs)
            if err:
                errors[err] = errors.get(err, 0) + 1
        r_ms = np.asarray([secs for secs, _ in results]) * 1000
        per_round.append(f"p50 {np.percentile(r_ms, 50):.0f} ms, p99 {np.percentile(r_ms, 99):.0f} ms")
    a = np.asarray(lat) * 1000
    return {"requests": len(lat), "failed": sum(errors.values()), "errors": errors,
            "p50_ms": round(float(np.percentile(a, 50)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1),
            "max_ms": round(float(a.max()), 1), "rounds_detail": per_round}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="run directory (default runs/demo, else a fixture run)")
    ap.add_argument("--url", default=None, help="measure this running server instead of starting one")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=0, help="idle connections opened first and held")
    ap.add_argument("--timeout", type=float, default=120.0, help="client timeout per request (s)")
    ap.add_argument("--per-class", type=int, default=200,
                    help="samples per class of the fixture run (default 200: 2,000 samples, like a demo run)")
    args = ap.parse_args(argv)

    run_dir = args.run or (ROOT / "runs" / "demo")
    tmp = None
    if not (run_dir / "index.json").is_file():
        sys.path.insert(0, str(ROOT / "tests"))
        from app_fixture import make_fixture_run

        tmp = tempfile.TemporaryDirectory()
        run_dir = make_fixture_run(Path(tmp.name) / "run", n_per_class=args.per_class)
    srv = None
    if args.url:
        u = urlsplit(args.url)
        host, port = u.hostname, u.port or 80
    else:  # its own process, as `advtopo serve` runs: the client's threads do not share its interpreter
        srv = subprocess.Popen([sys.executable, "-m", "advtopo.cli", "serve", str(run_dir), "--port", "0",
                                "--no-browser"], stdout=subprocess.PIPE, text=True)
        line = srv.stdout.readline()  # advtopo: serving RUN at http://127.0.0.1:PORT/
        if "serving" not in line:
            srv.kill()
            raise SystemExit(f"advtopo serve did not start: {line!r}")
        u = urlsplit(line.rsplit(" at ", 1)[1].strip())
        host, port = u.hostname, u.port
    idle = []
    try:
        for _ in range(args.idle):
            idle.append(socket.create_connection((host, port), timeout=10))
        t0 = time.perf_counter()
        res = load(host, port, routes(run_dir), args.concurrency, args.rounds, args.timeout)
        res["seconds"] = round(time.perf_counter() - t0, 1)
        idle_alive = 0
        for s in idle:  # still open (the server may close idle ones past its limit or timeout)
            s.setblocking(False)
            try:
                idle_alive += s.recv(1) != b""
            except BlockingIOError:
                idle_alive += 1
            except OSError:
                pass
    finally:
        for s in idle:
            s.close()
        if srv is not None:
            srv.terminate()
            srv.wait(timeout=30)
    res.update(run=str(run_dir if tmp is None else f"fixture run (tests/app_fixture.py, {args.per_class} per class)"),
               concurrency=args.concurrency, rounds=args.rounds, idle=args.idle, idle_still_open=idle_alive,
               machine=f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(json.dumps(res, indent=1))
    return 0 if res["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
