"""advtopo's mapper against every peer in the same run: KeplerMapper, giotto-tda, tda-mapper, gudhi.

    python benchmarks/mapper_peers.py                          # 20k, 60k, 100k x 512; one graph + 15-setting sweep
    python benchmarks/mapper_peers.py --sizes 20000 --modes one,sweep --json out.json
    python benchmarks/mapper_peers.py --quick                  # 2k x 32, seconds (after the venvs exist)
    python benchmarks/mapper_peers.py --setup-only             # only create the peers' virtual environments
    python benchmarks/mapper_peers.py --mnist-mlp 20000 --modes one   # real activations (or --npy acts.npy)

Why subprocesses and venvs: the peers' pins conflict with advtopo's and with each other's
(giotto-tda 0.6.2 needs scikit-learn 1.3.x and numpy < 2, tda-mapper 0.12.0 numpy < 2, gudhi
3.13's MapperComplex breaks on numpy >= 2.4), so each peer gets its own virtual environment
under ``.bench-venvs/PEER`` (created here from ``benchmarks/peers/requirements-PEER.txt``,
from PyPI) and runs ``benchmarks/peers/run_peer.py`` in a subprocess; data goes as ``.npy``.
advtopo and KeplerMapper 2.1.0 run from the project's own .venv (this interpreter).

Protocol: the same data (``advtopo.mapper.synthetic_activations``), the same precomputed lens
(row L2 norm), DBSCAN with the same eps (k-distance knee, not timed) and min_samples=5, two
workers where the tool has a parallel option (advtopo n_jobs=2, giotto-tda n_jobs=2,
tda-mapper n_jobs=2; KeplerMapper and gudhi 3.13's MapperComplex have none). Each peer's
node memberships are compared with advtopo's graph built on *that peer's own cover*
(advtopo gets the peer's cover elements as closed lens intervals) and with advtopo's
KeplerMapper-exact cover (``cover="kmapper"``, the closest built-in cover for all four).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from advtopo.mapper import auto_eps, synthetic_activations
from advtopo.utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "benchmarks" / "peers" / "run_peer.py"
VENVS = ROOT / ".bench-venvs"
PEERS = ("kmapper", "giotto", "tdamapper", "gudhi")
VENV_PEERS = ("giotto", "tdamapper", "gudhi")  # kmapper 2.1.0 is in the project's .venv
ONE_GRAPH = [(20, 0.5)]
SWEEP = [(n, p) for n in (10, 15, 20, 25, 30) for p in (0.2, 0.35, 0.5)]


def compare_memberships(ours: list, theirs: list) -> dict:
    """Node-for-node comparison of two graphs as multisets of member sets (node names and order ignored).

    ``identical`` is True when every node of one graph has a node with exactly the same rows in the other.
    """
    a = Counter(frozenset(int(i) for i in m) for m in ours)
    b = Counter(frozenset(int(i) for i in m) for m in theirs)
    common = sum((a & b).values())
    return {"identical": a == b, "nodes_ours": sum(a.values()), "nodes_theirs": sum(b.values()),
            "common": common, "only_ours": sum(a.values()) - common, "only_theirs": sum(b.values()) - common}


def _members(npz: np.lib.npyio.NpzFile, i: int, clusters_only: bool = False) -> list[np.ndarray]:
    """Graph i's node memberships; ``clusters_only`` leaves out nodes the tool flags as DBSCAN noise."""
    indptr, indices = npz[f"m{i}_indptr"], npz[f"m{i}_indices"]
    nodes = [indices[indptr[k]:indptr[k + 1]] for k in range(len(indptr) - 1)]
    if clusters_only and f"n{i}_noise" in npz.files:
        nodes = [m for m, noise in zip(nodes, npz[f"n{i}_noise"]) if not noise]
    return nodes


def _noise_nodes(npz: np.lib.npyio.NpzFile, n_graphs: int) -> int:
    return sum(int(npz[f"n{i}_noise"].sum()) for i in range(n_graphs) if f"n{i}_noise" in npz.files)


def python_of(tool: str) -> str:
    return sys.executable if tool in ("advtopo", "kmapper") else str(VENVS / tool / "bin" / "python")


def ensure_venv(peer: str, base_python: str) -> None:
    """Create .bench-venvs/PEER from its pinned requirements once (a marker file says it is complete)."""
    venv = VENVS / peer
    marker = venv / ".installed"
    req = ROOT / "benchmarks" / "peers" / f"requirements-{peer}.txt"
    if marker.exists() and marker.read_text() == req.read_text():
        return
    print(f"creating {venv} from {req.name} (PyPI) ...", flush=True)
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(req)], check=True)
    marker.write_text(req.read_text())


def run_tool(tool: str, workdir: Path, spec: dict, timeout: float) -> tuple[dict, np.lib.npyio.NpzFile]:
    atomic_write_json(workdir / "spec.json", spec)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    proc = subprocess.run([python_of(tool), str(RUNNER), tool, str(workdir)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads((workdir / f"{tool}.json").read_text())
    result["process_s"] = time.perf_counter() - t0
    return result, np.load(workdir / f"{tool}.npz")


def bench_size(n: int, args, peers: list[str], X: np.ndarray | None = None, data: str = "synthetic") -> list[dict]:
    if X is None:
        X, _ = synthetic_activations(n, args.dim, seed=0)
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    lens = np.sqrt(np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64)))
    eps = args.eps if args.eps else auto_eps(X, args.min_samples, random_state=0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mapper-peers-") as tmp:
        work = Path(tmp)
        np.save(work / "X.npy", X)
        np.save(work / "lens.npy", lens)
        for mode in args.modes:
            settings = ONE_GRAPH if mode == "one" else SWEEP
            spec = {"eps": float(eps), "min_samples": args.min_samples, "n_jobs": args.n_jobs, "mode": mode,
                    "settings": [list(s) for s in settings]}
            ours, ours_npz = run_tool("advtopo", work, dict(spec, cover="kmapper"), args.timeout)
            print(f"[{n} {mode}] advtopo (kmapper cover) {ours['seconds']:.2f} s", flush=True)
            for peer in peers:
                row = {"data": data, "n": n, "dim": int(X.shape[1]), "eps": round(float(eps), 4), "mode": mode,
                       "peer": peer, "ours_kmapper_cover_s": ours["seconds"], "load_before": os.getloadavg()[0]}
                try:
                    theirs, theirs_npz = run_tool(peer, work, spec, args.timeout)
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    row["error"] = " | ".join(str(err).strip().splitlines()[-2:])[:400]
                    print(f"[{n} {mode}] {peer}: {row['error']}", flush=True)
                    rows.append(row)
                    continue
                row.update(peer_version=theirs["version"], peer_s=theirs["seconds"],
                           peer_numpy=theirs["numpy"])
                vs_kmapper = [compare_memberships(_members(ours_npz, i), _members(theirs_npz, i))
                              for i in range(len(settings))]
                row["vs_kmapper_cover"] = _summary(vs_kmapper)
                if peer == "kmapper":
                    row["ours_s"], row["same_cover"] = ours["seconds"], row["vs_kmapper_cover"]
                    row["cover_used"] = "kmapper (KeplerMapper-exact, built in)"
                else:
                    covers = {k: theirs_npz[k] for k in theirs_npz.files if k.startswith("c")}
                    np.savez(work / "covers.npz", **covers)
                    same, same_npz = run_tool("advtopo", work, dict(spec, cover="explicit"), args.timeout)
                    row["ours_s"] = same["seconds"]
                    row["same_cover"] = _summary([compare_memberships(_members(same_npz, i), _members(theirs_npz, i))
                                                  for i in range(len(settings))])
                    if _noise_nodes(theirs_npz, len(settings)):
                        row["peer_noise_nodes"] = _noise_nodes(theirs_npz, len(settings))
                        row["same_cover_without_noise_nodes"] = _summary(
                            [compare_memberships(_members(same_npz, i), _members(theirs_npz, i, clusters_only=True))
                             for i in range(len(settings))])
                    row["cover_used"] = f"{peer}'s own cover elements as closed lens intervals"
                row["ratio"] = row["peer_s"] / row["ours_s"]
                row["load_after"] = os.getloadavg()[0]
                print(f"[{n} {mode}] {peer} {theirs['version']}: {row['peer_s']:.2f} s "
                      f"vs advtopo {row['ours_s']:.2f} s "
                      f"= {row['ratio']:.1f}x; same cover: {row['same_cover']}; vs kmapper cover: "
                      f"{row['vs_kmapper_cover']}; without the peer's noise nodes ({row.get('peer_noise_nodes', 0)}): "
                      f"{row.get('same_cover_without_noise_nodes', '-')}; "
                      f"load {row['load_before']:.1f}->{row['load_after']:.1f}", flush=True)
                rows.append(row)
    return rows


def _summary(comparisons: list[dict]) -> dict:
    """All settings of one mode: how many graphs are identical and the total node differences."""
    return {"graphs_identical": sum(c["identical"] for c in comparisons), "graphs": len(comparisons),
            "nodes_ours": sum(c["nodes_ours"] for c in comparisons),
            "nodes_theirs": sum(c["nodes_theirs"] for c in comparisons),
            "only_ours": sum(c["only_ours"] for c in comparisons),
            "only_theirs": sum(c["only_theirs"] for c in comparisons)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20000,60000,100000", help="comma-separated row counts of the synthetic data")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--modes", default="one,sweep", help="one (20 intervals, 50%% overlap) and/or sweep (15 settings)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    ap.add_argument("--quick", action="store_true", help="2k x 32, seconds")
    ap.add_argument("--eps", type=float, default=0.0, help="DBSCAN eps (default: the k-distance knee)")
    ap.add_argument("--min-samples", type=int, default=5)
    ap.add_argument("--n-jobs", type=int, default=2, help="workers for the tools that have a parallel option")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per tool run")
    ap.add_argument("--venv-python", default="python3.11", help="interpreter the peers' venvs are created from")
    ap.add_argument("--setup-only", action="store_true")
    ap.add_argument("--json", help="write all rows here")
    ap.add_argument("--npy", help="real activations (n x d .npy) to run instead of the synthetic sizes")
    ap.add_argument("--mnist-mlp", type=int, default=0,
                    help="real activations instead of the synthetic sizes: the 512-unit hidden layer of an MLP "
                         "trained on MNIST, this many rows (benchmarks/mapper.py's)")
    args = ap.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        ap.error(f"--peers: unknown {unknown}; allowed: {', '.join(PEERS)}")
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - {"one", "sweep"}:
        ap.error("--modes: allowed one, sweep")
    args.modes = modes
    for peer in peers:
        if peer in VENV_PEERS:
            ensure_venv(peer, args.venv_python)
    if args.setup_only:
        return 0
    sizes = [2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.dim = 32
    meta = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "load_start": os.getloadavg()}
    print(json.dumps(meta), flush=True)
    rows = []
    if args.npy or args.mnist_mlp:
        if args.npy:
            X, data = np.load(args.npy), f"real: {Path(args.npy).name}"
        else:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from mapper import mnist_mlp_activations

            X, data = mnist_mlp_activations(args.mnist_mlp), "real: MNIST MLP hidden layer"
        rows += bench_size(len(X), args, peers, X=X, data=data)
    else:
        for n in sizes:
            rows += bench_size(n, args, peers)
            if args.json:
                atomic_write_json(args.json, {"meta": meta, "rows": rows})
    if args.json:
        atomic_write_json(args.json, {"meta": meta, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
