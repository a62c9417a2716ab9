"""Executors: run a study's tasks in this process or on a Dask cluster.

Both take the task list, run every task after its inputs and return ``{key: DONE info}``;
tasks are pure and cached (see advtopo.study.tasks), so an executor only decides where
and in which order they run.

On a cluster (``DaskExecutor(address="tcp://HOST:PORT")``) the run directory must be on
storage every worker sees: the executor proves it before submitting anything by writing a
nonce file there and having every worker read it back. Tasks of the stages that use the
model's device can ask for a ``GPU`` resource, so on a cluster whose GPU workers were
started with ``--resources GPU=1`` they run there while the other stages run anywhere.
A worker that dies mid-task is replaced by the scheduler (the task reruns elsewhere;
tasks are safe to rerun), and a task that raises is retried ``retries`` times.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError, check_choice
from advtopo.study.tasks import Task, execute_task, is_done, topo_order
from advtopo.utils import atomic_write_text

ProgressFn = Callable[[int, int, Task, dict[str, Any]], None]

EXECUTORS = ("sequential", "dask")

# The stages whose functions put a model on the study's device (stages.py: _device(runtime)).
DEVICE_STAGES = frozenset({"train", "attack", "capture", "datapaths"})

GPU_RESOURCE = "GPU"

_ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?[^\s/:]+(?::\d+)?$")


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


def _single_thread_setup() -> None:
    """One BLAS/torch thread per worker: a LocalCluster's workers share this machine's cores."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)


_MALLOC_TUNED = False


def _undo_nanny_malloc_trim() -> None:
    """Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; in glibc that also
    freezes the mmap threshold at 128 KiB, so every tensor above it is mmap-ed and unmapped
    again, page faults included: torch work ran 2x slower in a worker than outside (measured,
    docs/benchmarks-study.md). Raise both thresholds to glibc's dynamic maxima, once per process."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED or "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): no such setting to undo
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)
    libc.mallopt(m_trim_threshold, 64 * 2**20)


def _dask_execute(spec: dict[str, Any], root: str, runtime: dict[str, Any], single_thread: bool,
                  *_deps: Any) -> dict[str, Any]:
    """Worker side of one task; the result says which worker ran it (for the manifest)."""
    from distributed import get_worker

    _undo_nanny_malloc_trim()
    address = get_worker().address
    if not Path(root).is_dir():  # a worker that joined after the storage check, without the shared mount
        raise AdvtopoError(f"worker {address} cannot see the run directory {root}; "
                           "it must be on storage every worker sees (the same path on every machine)")
    if single_thread:
        _single_thread_setup()
    return {**execute_task(spec, root, runtime), "worker": address}


def _read_probe(path: str) -> str | None:
    """Run on every worker by the storage check: the nonce it sees at ``path`` (None: no file)."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def check_shared_storage(client: Any, root: Path) -> list[str]:
    """Prove every worker sees ``root``: write a nonce there, have each worker read it back.

    Returns the worker addresses; raises AdvtopoError naming the workers that cannot see it."""
    nonce = secrets.token_hex(16)
    probe = Path(root) / f".advtopo-storage-check-{nonce}"
    atomic_write_text(probe, nonce)
    try:
        seen = client.run(_read_probe, str(probe), on_error="return")
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(w for w, text in seen.items() if text != nonce)
    if blind:
        who = f"worker {blind[0]}" if len(blind) == 1 else f"workers {', '.join(blind)}"
        raise AdvtopoError(f"{who} cannot see the run directory {root}; it must be on storage every worker sees "
                           "(the same path on every machine, e.g. an NFS mount)")
    return sorted(seen)


def check_address(address: str, param: str = "scheduler") -> str:
    """A Dask scheduler address: ``tcp://HOST:PORT`` (any Dask protocol) or ``HOST:PORT``."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise AdvtopoError(f"{param}={address!r} is not a Dask scheduler address; "
                           "expected tcp://HOST:PORT (as printed by `dask scheduler`)")
    return address


class DaskExecutor:
    """Runs independent tasks in parallel on a Dask cluster.

    ``address``: an existing scheduler (``tcp://HOST:PORT``); without it a LocalCluster of
    ``n_workers`` processes, one thread and one BLAS thread each, no dashboard.
    ``gpu_resource``: True asks for ``GPU=1`` for the tasks of :data:`DEVICE_STAGES`, False
    never, None when the study's device is cuda and some worker offers a GPU resource.
    ``retries``: how often a task that raises is resubmitted (a worker that dies is handled by
    the scheduler, which reruns its tasks elsewhere)."""

    name = "dask"

    def __init__(self, n_workers: int | None = None, address: str | None = None,
                 gpu_resource: bool | None = None, retries: int = 1, worker_timeout: float = 60.0) -> None:
        self.n_workers = n_workers or max(1, (os.cpu_count() or 2))
        self.address = check_address(address) if address else None
        self.gpu_resource = gpu_resource
        self.retries = retries
        self.worker_timeout = worker_timeout

    def _connect(self) -> tuple[Any, Any]:
        from dask.distributed import Client, LocalCluster

        if not self.address:
            cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                                                "OPENBLAS_NUM_THREADS": "1"})
            return Client(cluster), cluster
        try:
            client = Client(self.address, timeout="20s")
        except OSError as exc:
            raise AdvtopoError(f"cannot reach the Dask scheduler at {self.address} ({exc}); "
                               "start one with `dask scheduler` and pass the address it prints") from None
        try:
            client.wait_for_workers(1, timeout=self.worker_timeout)
        except TimeoutError:
            client.close()
            raise AdvtopoError(f"the Dask scheduler at {self.address} has no workers after "
                               f"{self.worker_timeout:.0f} s; start some with `dask worker {self.address}`") from None
        return client, None

    def _wants_gpu(self, client: Any, runtime: dict[str, Any]) -> bool:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        offered = any(w.get("resources", {}).get(GPU_RESOURCE, 0) >= 1 for w in workers)
        if self.gpu_resource is None:
            return offered and str(runtime.get("device", "")).startswith("cuda")
        if self.gpu_resource and not offered:
            raise AdvtopoError(f"gpu_resource is on, but no worker of the cluster offers a {GPU_RESOURCE} "
                               f"resource; start GPU workers with `dask worker ADDRESS --resources {GPU_RESOURCE}=1`")
        return bool(self.gpu_resource)

    def run(self, tasks: list[Task], root: Path, runtime: dict[str, Any],
            progress: ProgressFn | None = None) -> dict[str, dict[str, Any]]:
        from dask.distributed import as_completed
        from distributed.scheduler import KilledWorker

        root = Path(root).resolve()
        order = topo_order(tasks)
        client, cluster = self._connect()
        try:
            if self.address:
                check_shared_storage(client, root)
            gpu = self._wants_gpu(client, runtime)
            # the run directory is part of the Dask key: two runs of one config on one cluster stay apart
            tag = hashlib.sha256(str(root).encode()).hexdigest()[:8]
            futures = {}
            for t in order:
                deps = [futures[d.key] for d in t.deps.values()]
                futures[t.key] = client.submit(
                    _dask_execute, t.spec(), str(root), runtime, cluster is not None, *deps,
                    key=f"{t.stage}-{t.key}-{tag}", pure=False, retries=self.retries,
                    resources={GPU_RESOURCE: 1} if gpu and t.stage in DEVICE_STAGES else None)
            by_future = {f.key: t for t, f in zip(order, futures.values())}
            out: dict[str, dict[str, Any]] = {}
            for n, fut in enumerate(as_completed(list(futures.values())), 1):
                t = by_future[fut.key]
                try:
                    out[t.key] = fut.result()
                except KilledWorker as exc:  # every worker that ran it died: out of memory, say
                    raise AdvtopoError(f"task {t.label}: {exc.allowed_failures + 1} workers died while running it "
                                       "(out of memory? see the workers' logs); finished tasks are kept: "
                                       "a re-run resumes") from None
                if progress:
                    progress(n, len(order), t, out[t.key])
            return out
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def make_executor(name: str | None = "sequential", *, scheduler: str | None = None, workers: int | None = None,
                  gpu_resource: bool | None = None) -> SequentialExecutor | DaskExecutor:
    """An executor by name; a scheduler address implies dask (name None: dask iff one is given)."""
    name = name or ("dask" if scheduler else "sequential")
    check_choice("executor", name, EXECUTORS)
    if name == "sequential":
        if scheduler:
            raise AdvtopoError(f"scheduler={scheduler!r} needs the dask executor, not 'sequential'")
        return SequentialExecutor()
    return DaskExecutor(n_workers=workers, address=scheduler, gpu_resource=gpu_resource)


def executor_from_config(section: Any = None, **overrides: Any) -> SequentialExecutor | DaskExecutor:
    """The executor of a study's ``[executor]`` section, with the CLI's options (non-None) on top."""
    settings = {"kind": None, "scheduler": None, "workers": None, "gpu_resource": None}
    if section is not None:
        settings.update({k: getattr(section, k) for k in settings})
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("scheduler") and overrides.get("kind") is None:
        settings["kind"] = None  # --scheduler alone means dask, whatever the config's kind
    if overrides.get("kind") == "sequential" and not overrides.get("scheduler"):
        settings["scheduler"] = None  # --executor sequential runs here, whatever the config's scheduler
    return make_executor(settings["kind"], scheduler=settings["scheduler"], workers=settings["workers"],
                         gpu_resource=settings["gpu_resource"])
