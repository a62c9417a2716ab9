"""The demo study sequentially vs on a Dask cluster of separate worker processes.

    python benchmarks/study_cluster.py [--subset 100] [--workers 2] [--json out.json]

Runs ``advtopo run`` on the built-in demo config (src/advtopo/study/demo.toml; ``--subset``
studies fewer test images so that both runs fit in a few minutes, ``--subset 0`` keeps the
demo's 1,000) twice from an empty run directory: once sequentially (torch uses every core
for its intra-op threads), once with ``--scheduler`` on a `dask scheduler` and ``--workers``
`dask worker` processes of one thread and one BLAS thread each, started beforehand (their
start-up is timed apart; ``--sequential-threads 1`` gives the sequential run one thread
too). Prints both wall times, the ratio and how many published files
are byte-identical (runs with different thread counts may round differently). Numbers go to
docs/benchmarks-study.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from advtopo.study import demo_config_path
from advtopo.study.config import dumps_toml
from advtopo.utils import atomic_write_text

BIN = Path(sys.executable).parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(folder: Path, n_workers: int) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler and n single-threaded workers, each in its own process group."""
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, **ONE_THREAD}
    cmds = [[str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", address.rpartition(":")[2],
             "--no-dashboard"]]
    cmds += [[str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--name", f"w{i}", "--nthreads", "1",
              "--nworkers", "1", "--no-dashboard", "--local-directory", str(folder / f"w{i}")]
             for i in range(n_workers)]
    procs = []
    for i, cmd in enumerate(cmds):
        log = open(folder / f"cluster{i}.log", "w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(n_workers, timeout=120)
    return address, procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def timed_run(config: Path, out: Path, *extra: str, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "advtopo"), "run", str(config), "--out", str(out), "--quiet", *extra],
                   check=True, env=env)
    return time.perf_counter() - t0


def same_files(a: Path, b: Path) -> tuple[int, int]:
    """(byte-identical, total) over the published files (outside tasks/, manifest and index aside)."""
    rels = [p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.relative_to(a).parts[0] != "tasks"
            and p.name not in ("manifest.json", "index.json")]
    return sum((b / r).is_file() and (a / r).read_bytes() == (b / r).read_bytes() for r in rels), len(rels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subset", type=int, default=100, help="test images studied (0: the demo's 1,000)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--sequential-threads", type=int, default=None,
                    help="OMP_NUM_THREADS of the sequential run (default: torch's own, one per core)")
    ap.add_argument("--cluster-first", action="store_true",
                    help="run on the cluster first (on a shared machine, run both orders: load changes)")
    ap.add_argument("--json", default=None, help="write the numbers here too")
    args = ap.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="study_cluster_"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = tomllib.loads(demo_config_path().read_text())
    cfg["device"] = "cpu"
    if args.subset:
        cfg["dataset"]["subset"] = args.subset
        cfg["datapaths"]["n_samples"] = min(cfg["datapaths"]["n_samples"], args.subset)
        cfg["datapaths"]["n_detail"] = min(cfg["datapaths"]["n_detail"], args.subset)
    config = work / "demo.toml"
    atomic_write_text(config, dumps_toml(cfg))
    load_before = os.getloadavg()

    seq_env = None
    if args.sequential_threads:
        seq_env = {**os.environ, **{k: str(args.sequential_threads) for k in ONE_THREAD}}

    def on_cluster() -> tuple[float, float]:
        t0 = time.perf_counter()
        address, procs = start_cluster(work, args.workers)
        started = time.perf_counter() - t0
        try:
            return timed_run(config, work / "cluster", "--scheduler", address), started
        finally:
            stop(procs)

    if args.cluster_first:
        seconds_cluster, seconds_start = on_cluster()
        seconds_seq = timed_run(config, work / "sequential", env=seq_env)
    else:
        seconds_seq = timed_run(config, work / "sequential", env=seq_env)
        seconds_cluster, seconds_start = on_cluster()
    identical, total = same_files(work / "sequential", work / "cluster")
    manifest = json.loads((work / "cluster" / "manifest.json").read_text())
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "subset": args.subset or 1000, "tasks": len(manifest["tasks"]), "workers": args.workers,
        "order": "cluster first" if args.cluster_first else "sequential first",
        "sequential_threads": args.sequential_threads or "torch default",
        "sequential_s": round(seconds_seq, 1), "cluster_s": round(seconds_cluster, 1),
        "cluster_start_s": round(seconds_start, 1),
        "speedup": round(seconds_seq / seconds_cluster, 2),
        "published_files_identical": f"{identical}/{total}",
    }
    print(f"demo study, {result['subset']} images, {result['tasks']} tasks, {os.cpu_count()} cores, "
          f"{result['order']} (load {load_before[0]:.1f} before, {result['load_average_after'][0]:.1f} after)")
    print(f"  sequential ({result['sequential_threads']} threads): {seconds_seq:7.1f} s")
    print(f"  {args.workers}-worker Dask cluster:    {seconds_cluster:7.1f} s  "
          f"(+ {seconds_start:.1f} s to start the scheduler and workers)")
    print(f"  ratio sequential/cluster: {result['speedup']:.2f}x; published files identical: {identical}/{total}")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
