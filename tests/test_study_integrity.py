"""What a study reads back is what it wrote: damaged task outputs are recomputed with a warning
naming the file, published files are copies (editing one leaves the cache alone), and re-runs
leave no temporary files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from advtopo.study import StudyConfig, run_study
from advtopo.rundir.lock import RUN_LOCK
from advtopo.study.tasks import DONE, verify_task, verify_tasks

from test_study_concurrency import small, snapshot

pytestmark = pytest.mark.timeout(300)


def config() -> StudyConfig:
    return StudyConfig.from_dict({**small(), "persistence": {"enabled": True}})  # persistence/ is a published tree


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_torch_thread) -> Path:
    root = tmp_path_factory.mktemp("integrity") / "run"
    run_study(config(), out=root, verbose=False)
    return root


@pytest.fixture
def run(reference, tmp_path) -> Path:
    """A copy of the reference run to damage."""
    root = tmp_path / "run"
    shutil.copytree(reference, root)
    return root


def statuses(root: Path) -> dict[str, str]:
    """Task folder (tasks/<stage>/<key>) -> its status in the manifest of the last run."""
    tasks = json.loads((root / "manifest.json").read_text())["tasks"]
    return {f"tasks/{t['stage']}/{key}": t["status"] for key, t in tasks.items()}


def capture_task(root: Path) -> Path:
    """The capture task of the clean samples (the one every mapper graph reads)."""
    for folder in sorted((root / "tasks" / "capture").iterdir()):
        if json.loads((folder / DONE).read_text())["label"] == "capture std clean":
            return folder
    raise AssertionError("no clean capture task")


def rerun_recomputes(root: Path, reference: Path, damaged: Path, named: str, capfd, **kw) -> None:
    """A re-run warns about ``damaged`` naming ``named``, recomputes it alone, and ends identical."""
    capfd.readouterr()
    run_study(config(), out=root, verbose=False, **kw)
    err = capfd.readouterr().err
    assert f"its cached output {damaged} is damaged ({named}" in err, err
    rel = damaged.relative_to(root).as_posix()
    st = statuses(root)
    assert st[rel] == "done" and {s for k, s in st.items() if k != rel} == {"cached"}
    assert snapshot(root) == snapshot(reference)
    assert verify_tasks(root, full=True) == {}


def test_the_completion_record_lists_every_file_with_size_and_hash(reference):
    folder = capture_task(reference)
    record = json.loads((folder / DONE).read_text())
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {DONE}
    assert record["format"] == 2 and set(record["files"]) == files
    assert "stats.npz" in files and "activations.zarr/fc1/c/0/0" in files
    assert all(set(f) == {"size", "sha256"} for f in record["files"].values())
    assert verify_tasks(reference, full=True) == {}


def test_a_truncated_completion_record_is_recomputed(run, reference, capfd):
    folder = capture_task(run)
    text = (folder / DONE).read_text()
    (folder / DONE).write_text(text[: len(text) // 2])
    assert verify_task(folder)[0].startswith(f"{DONE} cannot be read (JSONDecodeError")
    rerun_recomputes(run, reference, folder, f"{DONE} cannot be read", capfd)


def test_a_deleted_file_is_recomputed(run, reference, capfd):
    folder = capture_task(run)
    (folder / "stats.npz").unlink()
    rerun_recomputes(run, reference, folder, "stats.npz is missing", capfd)


def test_a_deleted_zarr_chunk_is_recomputed(run, reference, capfd):
    folder = capture_task(run)
    (folder / "activations.zarr" / "fc1" / "c" / "1" / "0").unlink()
    rerun_recomputes(run, reference, folder, "activations.zarr/fc1/c/1/0 is missing", capfd)


def test_a_truncated_file_is_recomputed(run, reference, capfd):
    folder = capture_task(run)
    chunk = folder / "activations.zarr" / "fc1" / "c" / "0" / "0"
    size = chunk.stat().st_size
    chunk.write_bytes(chunk.read_bytes()[:100])
    rerun_recomputes(run, reference, folder, f"activations.zarr/fc1/c/0/0 has 100 bytes, the record says {size}", capfd)


def test_a_file_the_task_did_not_write_is_recomputed(run, reference, capfd):
    folder = capture_task(run)
    (folder / "activations.zarr" / "fc1" / "c" / "9").mkdir()
    (folder / "activations.zarr" / "fc1" / "c" / "9" / "0").write_bytes(b"\0" * 64)
    rerun_recomputes(run, reference, folder, "activations.zarr/fc1/c/9/0 was not written by the task", capfd)


def test_an_edited_file_is_found_by_the_full_check_and_recomputed(run, reference, capfd):
    folder = capture_task(run)
    chunk = folder / "activations.zarr" / "fc1" / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF  # same size: the cheap check cannot see it
    chunk.write_bytes(bytes(data))
    assert verify_task(folder) == []
    problem = "activations.zarr/fc1/c/0/0 differs from what the task wrote (sha256 mismatch)"
    assert verify_task(folder, full=True) == [problem]
    assert verify_tasks(run, full=True) == {folder.relative_to(run).as_posix(): [problem]}
    rerun_recomputes(run, reference, folder, problem, capfd, full_verify=True)


def test_a_record_without_a_file_list_is_accepted_and_completed(run, reference, capfd):
    """Runs written before records listed their files are not recomputed; their list is added."""
    for record in run.glob(f"tasks/*/*/{DONE}"):
        doc = json.loads(record.read_text())
        del doc["files"], doc["format"]
        record.write_text(json.dumps(doc))
    run_study(config(), out=run, verbose=False)
    assert set(statuses(run).values()) == {"cached"}
    assert snapshot(run) == snapshot(reference)  # the records got their file lists back, the same ones
    folder = capture_task(run)
    (folder / "stats.npz").unlink()  # and damage is detected from now on
    rerun_recomputes(run, reference, folder, "stats.npz is missing", capfd)


def test_published_files_are_copies_not_links_into_the_cache(run, reference):
    idx = json.loads((run / "index.json").read_text())
    published = [run / idx["images"]["clean"], run / idx["graphs"][0]["path"], run / idx["vulnerability"],
                 *[p for p in (run / "persistence").rglob("*") if p.is_file()]]
    for p in (run / p for p in ("images", "mapper", "persistence")):
        for f in p.rglob("*"):
            assert not f.is_file() or f.stat().st_nlink == 1, f
    for p in published:  # edited in place (the same inode): the cache must not change
        with open(p, "r+b") as fh:
            fh.write(b"XX")
    assert verify_tasks(run, full=True) == {}
    run_study(config(), out=run, verbose=False)  # and a re-run publishes the right bytes again
    assert set(statuses(run).values()) == {"cached"}
    assert snapshot(run) == snapshot(reference)


def test_re_runs_leave_no_temporary_files_and_clear_what_dead_processes_left(run, reference):
    tasks = run / "tasks" / "capture"
    key = capture_task(run).name
    leftovers = [run / "images" / ".clean.npy.4242.tmp", run / "mapper" / ".x.json.4242.tmp",  # older advtopo's
                 run / ".index.json.abcdefgh.tmp", tasks / f"{key}.lock",  # a killed process's task lock
                 tasks / "0123456789abcdef0123.partial" / "stats.npz",  # a task no longer planned
                 tasks / f"{key}.damaged-0badf00d" / "stats.npz", run / "persistence" / "stale.npy"]
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"pid": 4242, "host": "gone"}))
    run_study(config(), out=run, verbose=False)
    run_study(config(), out=run, verbose=False)
    assert not [p for p in leftovers if p.exists()]
    assert not list(run.rglob("*.tmp")) and not list(run.rglob("*.partial")) and not list(run.rglob("*.lock"))
    assert not (run / RUN_LOCK).exists() and not list(tasks.glob("*.damaged-*"))
    assert set(statuses(run).values()) == {"cached"}
    assert snapshot(run) == snapshot(reference)
