"""Concurrent writers, with real processes: two `advtopo run` of one config on one directory (one
writes, the other is told who does), a killed run (its lock is taken over, its manifest reads
`interrupted`), and two processes running the same task (one computes, the other waits)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advtopo.study import StudyConfig, run_study
from advtopo.study.config import dumps_toml
from advtopo.rundir.lock import RUN_LOCK, holder, run_status
from advtopo.study.tasks import DONE, Task, verify_task

pytestmark = pytest.mark.timeout(300)

TESTS = Path(__file__).parent


def small() -> dict:
    """One briefly trained model, one layer, two eps: a few seconds per run."""
    return {"name": "small", "seed": 1, "device": "cpu",
            "dataset": {"name": "digits", "split": "test", "subset": 60, "train_subset": 300},
            "models": [{"name": "std", "arch": "lenet5",
                        "train": {"method": "standard", "eps": 0.0, "epochs": 1, "batch_size": 64,
                                  "eval_subset": 20, "eval_steps": 1}}],
            "attacks": [{"name": "pgd", "eps": [0.0, 0.2], "steps": 2}],
            "layers": [{"module": "fc1"}],
            "capture": {"batch_size": 25},
            "mapper": [{"n_intervals": 4, "overlap": 0.3, "min_samples": 2}],
            "separability": {"enabled": False}, "stability": {"enabled": False},
            "persistence": {"enabled": False}}


def snapshot(root: Path) -> dict[str, object]:
    """Every file of a run directory by content, less what differs between identical runs:
    timings (manifest.json, DONE.json "seconds", index.json "created"), the lock, and the train
    task's own files (its checkpoint and metrics record wall-clock times)."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel in ("manifest.json", RUN_LOCK) or rel.startswith("tasks/train/"):
            continue
        if rel == "index.json" or rel.endswith("/" + DONE):
            doc = json.loads(p.read_text())
            for k in ("created", "seconds", "cached"):
                doc.pop(k, None)
            out[rel] = doc
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "small.toml"
    path.write_text(dumps_toml(small()))
    return path


@pytest.fixture(scope="module")
def reference(cfg_path, tmp_path_factory, one_torch_thread) -> dict[str, object]:
    """The snapshot of a single, undisturbed run."""
    root = tmp_path_factory.mktemp("ref") / "run"
    run_study(StudyConfig.from_toml(cfg_path), out=root, verbose=False)
    return snapshot(root)


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start_run(cfg_path: Path, root: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "advtopo.cli", "run", str(cfg_path), "--out", str(root), "--quiet",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())


def wait_for(condition, proc: subprocess.Popen, what: str, limit: float = 180.0) -> None:
    """Poll until ``condition()`` (``limit`` is a safety net against a hang, not a measurement)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"no {what} after {limit:.0f} s"
        time.sleep(0.02)


def data_done(root: Path):
    return lambda: any((root / "tasks" / "data").glob(f"*/{DONE}"))


def assert_names_holder(stderr: str, pid: int, root: Path) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("advtopo run: error: ")
    assert f"run directory {root} is in use by pid {pid} on host {platform.node()} since " in lines[0]
    assert "--wait" in lines[0]


def test_two_runs_started_together_one_writes_the_other_is_refused(cfg_path, reference, tmp_path):
    root = tmp_path / "run"
    procs = [start_run(cfg_path, root), start_run(cfg_path, root)]
    errs = [p.communicate(timeout=240)[1] for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], errs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    assert_names_holder(errs[loser], procs[winner].pid, root)
    assert snapshot(root) == reference
    assert not (root / RUN_LOCK).exists() and json.loads((root / "manifest.json").read_text())["status"] == "complete"


def test_a_run_started_mid_run_is_refused_or_waits(cfg_path, reference, tmp_path):
    root = tmp_path / "run"
    first = start_run(cfg_path, root)
    try:
        wait_for(data_done(root), first, "a finished data task")
        first.send_signal(signal.SIGSTOP)  # mid-run for as long as the test needs: it keeps its lock
        second = subprocess.run([sys.executable, "-m", "advtopo.cli", "run", str(cfg_path), "--out", str(root)],
                                capture_output=True, text=True, env=env(), timeout=240)
        assert second.returncode == 2
        assert_names_holder(second.stderr, first.pid, root)
        assert holder(root / RUN_LOCK)["pid"] == first.pid and run_status(root, "running") == "running"
        waiting = start_run(cfg_path, root, "--wait")
        line = waiting.stderr.readline()  # printed when it finds the lock held, then it waits
        assert f"is in use by pid {first.pid}" in line and "waiting for it to finish" in line
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(240) == 0
    assert waiting.wait(240) == 0, waiting.stderr.read()
    m = json.loads((root / "manifest.json").read_text())
    assert m["status"] == "complete" and {t["status"] for t in m["tasks"].values()} == {"cached"}
    assert snapshot(root) == reference


def test_a_killed_run_reads_interrupted_and_its_lock_is_taken_over(cfg_path, reference, tmp_path, capfd,
                                                                   one_torch_thread):
    from advtopo.cli import main

    root = tmp_path / "run"
    killed = start_run(cfg_path, root)
    wait_for(data_done(root), killed, "a finished data task")
    killed.kill()  # SIGKILL: no Python cleanup, the manifest keeps saying "running"
    killed.wait(30)
    assert json.loads((root / "manifest.json").read_text())["status"] == "running"
    assert (root / RUN_LOCK).exists() and holder(root / RUN_LOCK) is None
    capfd.readouterr()
    assert main(["runs", str(tmp_path)]) == 0
    assert "interrupted" in capfd.readouterr().out
    run_study(StudyConfig.from_toml(cfg_path), out=root, verbose=False)
    err = capfd.readouterr().err
    assert f"taking over the lock of a run that did not finish (pid {killed.pid} on host {platform.node()}" in err
    assert snapshot(root) == reference and not (root / RUN_LOCK).exists()
    # a re-run (changed mapper) killed while it holds the lock: `advtopo show` says interrupted
    changed = cfg_path.parent / "changed.toml"
    changed.write_text(dumps_toml({**small(), "mapper": [{"n_intervals": 5, "overlap": 0.3, "min_samples": 2}]}))
    rerun = start_run(changed, root)
    wait_for(lambda: json.loads((root / "manifest.json").read_text())["status"] == "running", rerun,
             "the re-run's manifest")
    assert holder(root / RUN_LOCK)["pid"] == rerun.pid
    rerun.kill()
    rerun.wait(30)
    assert main(["show", str(root)]) == 0
    assert "status interrupted" in capfd.readouterr().out


# --- two processes, one task ----------------------------------------------------------------------

def gated_task(params, inputs, out_dir, runtime):
    """A task that writes half its output, then waits until the test opens its gate."""
    gate = Path(params["gate"])
    (out_dir / "first.txt").write_text(f"written by {os.getpid()}")
    (gate / f"started-{os.getpid()}").write_text("")  # after first.txt: a test that sees it may kill us
    while not (gate / "go").exists():
        time.sleep(0.02)
    (out_dir / "second.txt").write_text("done")
    return {"pid": os.getpid()}


def start_task(spec: dict, root: Path) -> subprocess.Popen:
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from advtopo.study.tasks import execute_task; "
            "info = execute_task(json.loads(sys.argv[2]), sys.argv[3], {}); print(json.dumps(info))")
    return subprocess.Popen([sys.executable, "-c", code, str(TESTS), json.dumps(spec), str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())


def gated_spec(gate: Path) -> dict:
    return Task(stage="gated", label="gated task", fn="test_study_concurrency:gated_task",
                params={"gate": str(gate)}).spec()


def test_two_processes_on_one_task_one_computes_the_other_waits(tmp_path):
    root, gate = tmp_path / "run", tmp_path / "gate"
    gate.mkdir()
    spec = gated_spec(gate)
    first = start_task(spec, root)
    wait_for(lambda: (gate / f"started-{first.pid}").exists(), first, "the first process's start")
    second = start_task(spec, root)
    line = second.stderr.readline()
    assert f"task gated task: waiting for pid {first.pid} on host {platform.node()}" in line
    (gate / "go").touch()
    a, b = (json.loads(p.communicate(timeout=120)[0]) for p in (first, second))
    assert a["cached"] is False and b["cached"] is True and a["result"] == b["result"] == {"pid": first.pid}
    assert [p.name for p in gate.glob("started-*")] == [f"started-{first.pid}"]
    final = root / "tasks" / "gated" / spec["key"]
    assert verify_task(final, full=True) == []
    assert sorted(p.name for p in final.parent.iterdir()) == [spec["key"]]  # no partial, no lock left


def test_a_task_whose_process_was_killed_is_taken_over(tmp_path):
    root, gate = tmp_path / "run", tmp_path / "gate"
    gate.mkdir()
    spec = gated_spec(gate)
    killed = start_task(spec, root)
    wait_for(lambda: (gate / f"started-{killed.pid}").exists(), killed, "the first process's start")
    killed.kill()
    killed.wait(30)
    partial = root / "tasks" / "gated" / (spec["key"] + ".partial")
    assert (partial / "first.txt").read_text() == f"written by {killed.pid}"
    (gate / "go").touch()
    again = start_task(spec, root)
    out, err = again.communicate(timeout=120)
    info = json.loads(out)
    assert info["cached"] is False and info["result"] == {"pid": again.pid} and "waiting" not in err
    final = root / "tasks" / "gated" / spec["key"]
    assert (final / "first.txt").read_text() == f"written by {again.pid}"
    assert verify_task(final, full=True) == []
    assert sorted(p.name for p in final.parent.iterdir()) == [spec["key"]]
