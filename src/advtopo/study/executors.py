"""Executors: run a study's tasks in this process or on a Dask cluster.

Both take the task list, run every task after its inputs and return ``{key: DONE info}``;
tasks are pure and cached (see advtopo.study.tasks), so an executor only decides where
and in which order they run.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advtopo.study.tasks import Task, execute_task, is_done, topo_order

ProgressFn = Callable[[int, int, Task, dict[str, Any]], None]


class SequentialExecutor:
    """Runs tasks one after another in this process."""

    name = "sequential"

    def run(self, tasks: list[Task], root: Path, runtime: dict[str, Any],
            progress: ProgressFn | None = None) -> dict[str, dict[str, Any]]:
        order = topo_order(tasks)
        out: dict[str, dict[str, Any]] = {}
        for i, t in enumerate(order):
            if progress and not is_done(root, t.stage, t.key):
                progress(i, len(order), t, {"status": "start"})
            out[t.key] = execute_task(t.spec(), root, runtime)
            if progress:
                progress(i + 1, len(order), t, out[t.key])
        return out


def _worker_setup() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _dask_execute(spec: dict[str, Any], root: str, runtime: dict[str, Any], *_deps: Any) -> dict[str, Any]:
    _worker_setup()
    return execute_task(spec, root, runtime)


class DaskExecutor:
    """Runs independent tasks in parallel on a Dask cluster (a LocalCluster by default:
    processes, one thread and one BLAS thread each, no dashboard)."""

    name = "dask"

    def __init__(self, n_workers: int | None = None, address: str | None = None) -> None:
        self.n_workers = n_workers or max(1, (os.cpu_count() or 2))
        self.address = address

    def run(self, tasks: list[Task], root: Path, runtime: dict[str, Any],
            progress: ProgressFn | None = None) -> dict[str, dict[str, Any]]:
        from dask.distributed import Client, LocalCluster, as_completed

        order = topo_order(tasks)
        cluster = None
        if self.address:
            client = Client(self.address)
        else:
            cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                                                "OPENBLAS_NUM_THREADS": "1"})
            client = Client(cluster)
        try:
            futures = {}
            for t in order:
                deps = [futures[d.key] for d in t.deps.values()]
                futures[t.key] = client.submit(_dask_execute, t.spec(), str(root), runtime, *deps,
                                               key=f"{t.stage}-{t.key}", pure=False)
            by_future = {f.key: t for t, f in zip(order, futures.values())}
            out: dict[str, dict[str, Any]] = {}
            for n, fut in enumerate(as_completed(list(futures.values())), 1):
                t = by_future[fut.key]
                out[t.key] = fut.result()
                if progress:
                    progress(n, len(order), t, out[t.key])
            return out
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def make_executor(name: str = "sequential", **kw: Any):
    from advtopo.errors import check_choice

    check_choice("executor", name, ["sequential", "dask"])
    return SequentialExecutor() if name == "sequential" else DaskExecutor(**kw)
