"""A study on a real Dask cluster: a `dask scheduler` and `dask worker` processes (separate OS
processes, not a LocalCluster). It gives the same files as a sequential run, puts the device
stages on the worker that offers a GPU resource, survives a worker killed with SIGKILL mid-task,
and refuses a worker that cannot see the run directory before any task runs."""
from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from advtopo.study import load_config, run_study  # noqa: E402
from advtopo.study.config import dumps_toml  # noqa: E402
from advtopo.study.executors import DEVICE_STAGES, executor_from_config  # noqa: E402

pytestmark = pytest.mark.timeout(300)

DASK = Path(sys.executable).with_name("dask")
ADVTOPO = Path(sys.executable).with_name("advtopo")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def tiny_config() -> dict:
    """tests/test_study_run.py's tiny study, trained 10 epochs (a train task long enough to be killed
    in), with a small datapaths stage (every stage that uses the device is in it)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_study_run import tiny

    d = tiny(datapaths={"enabled": True, "n_samples": 10, "steps": 2, "n_detail": 2})
    for m in d["models"]:
        m["train"]["epochs"] = 10
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and named workers, each in its own process group (killed as a whole)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.procs: dict[str, subprocess.Popen] = {}
        self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1",
                                  "--port", self.address.rpartition(":")[2], "--no-dashboard"])

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV,
                                            start_new_session=True, cwd=self.folder)
        log.close()

    def add_worker(self, name: str, *extra: str, wrap: list[str] = ()) -> None:
        cmd = [str(DASK), "worker", self.address, "--host", "127.0.0.1", "--name", name, "--nthreads", "1",
               "--nworkers", "1", "--no-dashboard", "--local-directory", str(self.folder / name), *extra]
        self._start(name, [*wrap, *cmd])

    def client(self, n_workers: int):
        from distributed import Client

        c = Client(self.address, timeout="30s")
        try:
            c.wait_for_workers(n_workers, timeout=60)
        except TimeoutError:
            c.close()
            raise AssertionError(f"{n_workers} workers did not join:\n{self.logs()}") from None
        return c

    def workers(self, client) -> dict[str, str]:
        """Worker name -> address."""
        return {w["name"]: a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.folder.glob("*.log")))

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cluster_cfg") / "tiny.toml"
    path.write_text(dumps_toml(tiny_config()))
    return path


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory, one_torch_thread) -> Path:
    """The same study run sequentially in this process (one torch thread, like each worker)."""
    root = tmp_path_factory.mktemp("cluster_ref") / "run"
    run_study(load_config(config_file), out=root, verbose=False)
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """w0 offers a GPU resource (`--resources GPU=1`), w1 does not."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.add_worker("w0", "--resources", "GPU=1")
        c.add_worker("w1")
        client = c.client(2)
        c.names = {a: n for n, a in c.workers(client).items()}
        client.close()
        yield c
    finally:
        c.close()


def assert_same_results(root: Path, reference: Path) -> None:
    """Every file the same bytes, except what records time or place: manifest.json, index.json's
    'created', each DONE.json's 'seconds', and the train tasks' logs (throughput), checkpoint
    config (timings) and so their DONE.json's result and file hashes; the trained weights must
    be equal."""
    import torch

    def files(r: Path) -> set[str]:
        return {p.relative_to(r).as_posix() for p in r.rglob("*") if p.is_file()}

    assert files(root) == files(reference)
    for rel in sorted(files(reference)):
        a, b = reference / rel, root / rel
        if rel == "manifest.json":
            continue
        if rel == "index.json" or rel.endswith("/DONE.json"):
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
            for doc in (ja, jb):
                doc.pop("created", None), doc.pop("seconds", None)
                if rel.startswith("tasks/train/"):  # timings in metrics and hashes; weights compared below
                    doc.pop("result", None), doc.pop("files", None)
            assert ja == jb, rel
        elif rel.startswith("tasks/train/") and rel.endswith(".pt"):
            sa = torch.load(a, map_location="cpu", weights_only=False)
            sb = torch.load(b, map_location="cpu", weights_only=False)
            weights_a, weights_b = sa.get("state_dict", sa.get("model")), sb.get("state_dict", sb.get("model"))
            assert weights_a is not None and set(weights_a) == set(weights_b), rel
            assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a), rel
        elif rel.startswith("tasks/train/") and rel.rpartition("/")[2].startswith("metrics."):
            continue  # per-epoch throughput and seconds
        else:
            assert a.read_bytes() == b.read_bytes(), rel


def manifest_tasks(root: Path) -> dict[str, dict]:
    return json.loads((root / "manifest.json").read_text())["tasks"]


def test_device_stages_are_the_stages_that_use_the_device():
    """DEVICE_STAGES (the tasks that ask for a GPU) lists exactly the stage functions that call _device."""
    from advtopo.study.config import StudyConfig
    from advtopo.study.plan import make_plan
    from advtopo.study.tasks import _resolve

    plan = make_plan(StudyConfig.from_dict(tiny_config()))
    uses_device = {t.stage for t in plan.tasks if "_device(runtime)" in inspect.getsource(_resolve(t.fn))}
    assert {t.stage for t in plan.tasks} >= DEVICE_STAGES
    assert uses_device == set(DEVICE_STAGES)


def test_executor_settings_merge_config_and_command_line():
    from advtopo.errors import AdvtopoError
    from advtopo.study.config import ExecutorConfig

    assert executor_from_config(None).name == "sequential"
    assert executor_from_config(ExecutorConfig(scheduler="tcp://10.0.0.5:8786")).address == "tcp://10.0.0.5:8786"
    assert executor_from_config(ExecutorConfig(scheduler="tcp://a:1"), kind="sequential").name == "sequential"
    assert executor_from_config(ExecutorConfig(kind="sequential"), scheduler="tcp://b:2").address == "tcp://b:2"
    ex = executor_from_config(ExecutorConfig(kind="dask", workers=3, gpu_resource=True))
    assert (ex.address, ex.n_workers, ex.gpu_resource) == (None, 3, True)
    for bad, key in [({"kind": "ray"}, "executor.kind"), ({"scheduler": "tcp://a b:1"}, "executor.scheduler"),
                     ({"workers": 0}, "executor.workers"), ({"kind": "sequential", "scheduler": "tcp://a:1"},
                                                            "executor.scheduler")]:
        with pytest.raises(AdvtopoError, match=key):
            ExecutorConfig(**bad)


def test_cluster_run_matches_sequential_and_puts_device_stages_on_the_gpu_worker(
        cluster, config_file, reference, tmp_path, capsys):
    from advtopo.cli import main

    root = tmp_path / "run"
    assert main(["run", str(config_file), "--out", str(root), "--scheduler", cluster.address,
                 "--gpu-resource", "--quiet"]) == 0, cluster.logs()
    assert_same_results(root, reference)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["executor"] == "dask" and manifest["status"] == "complete"
    placed = {(t["stage"], cluster.names[t["worker"]]) for t in manifest["tasks"].values()}
    assert {stage for stage, name in placed if name == "w1"}.isdisjoint(DEVICE_STAGES)
    assert {stage for stage, _ in placed} >= DEVICE_STAGES
    assert not list(root.glob(".advtopo-storage-check-*"))  # the nonce file is removed


def test_a_worker_killed_mid_task_is_replaced_and_the_results_are_identical(
        cluster, config_file, reference, tmp_path):
    """SIGKILL the worker (its whole process group: nanny and worker) as soon as it executes a train
    task; the scheduler reruns that task on the other worker and the study completes unchanged."""
    def executing_keys(dask_worker) -> list[str]:  # run on each worker (nested: pickled by value)
        return [ts.key for ts in dask_worker.state.executing]

    root = tmp_path / "run"
    client = cluster.client(2)
    study = subprocess.Popen([str(ADVTOPO), "run", str(config_file), "--out", str(root), "--scheduler",
                              cluster.address, "--no-gpu-resource", "--quiet"], env=ENV, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = killed_key = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and study.poll() is None:
            for address, keys in client.run(executing_keys).items():
                train = [k for k in keys if k.startswith("train-")]
                if train:
                    victim, killed_key = address, train[0]
                    break
            else:
                time.sleep(0.05)
        assert victim is not None, f"no train task seen executing; study output:\n{study.communicate()[0]}"
        cluster.kill(cluster.names[victim])
        out, _ = study.communicate(timeout=180)
        assert study.returncode == 0, f"{out}\n{cluster.logs()}"
    finally:
        client.close()
        if study.poll() is None:
            os.killpg(study.pid, signal.SIGKILL)
            study.wait()
    assert_same_results(root, reference)
    rerun = manifest_tasks(root)[killed_key.split("-")[1]]
    assert rerun["status"] == "done" and rerun["worker"] != victim


def test_a_worker_that_cannot_see_the_run_directory_is_refused_before_any_task(config_file, tmp_path, capsys):
    """A worker in its own mount namespace, with an empty tmpfs over the run directory's parent:
    the storage check names it and the path, and no task starts."""
    unshare = shutil.which("unshare")
    probe = [unshare, "--user", "--map-root-user", "--mount", "true"] if unshare else None
    if probe is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("needs `unshare --user --mount` (user namespaces) to give a worker its own view of the disk")
    hidden = tmp_path / "shared"
    hidden.mkdir()
    cluster = Cluster(tmp_path / "cluster")
    try:
        cluster.add_worker("blind", wrap=["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                                          f'mount -t tmpfs none "{hidden}" && exec "$0" "$@"'])
        client = cluster.client(1)
        address = cluster.workers(client)["blind"]
        client.close()
        d = tiny_config()
        d["executor"] = {"scheduler": cluster.address}  # the config's [executor] table, no CLI option
        cfg = tmp_path / "blind.toml"
        cfg.write_text(dumps_toml(d))
        from advtopo.cli import main

        root = hidden / "run"
        assert main(["run", str(cfg), "--out", str(root), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"worker {address} cannot see the run directory {root.resolve()}" in err
        assert not (root / "tasks").exists() and not list(root.glob(".advtopo-storage-check-*"))
    finally:
        cluster.close()
