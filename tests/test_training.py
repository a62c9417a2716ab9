"""Training: config validation, schedules, an end-to-end run, resume after kill -9."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from advtopo.adversarial import TrainConfig, evaluate, train_model
from advtopo.adversarial.training import eps_at, lr_factor
from advtopo.data import load_dataset
from advtopo.errors import AdvtopoError
from advtopo.models import load_checkpoint

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_config_validation():
    assert TrainConfig.from_dict({"method": "fgsm", "eps": 0.1}).step_size == pytest.approx(0.125)
    assert TrainConfig(method="pgd", eps=0.3, steps=10).step_size == pytest.approx(0.075)
    with pytest.raises(AdvtopoError, match="unknown training option 'epoch'.*did you mean 'epochs'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(AdvtopoError, match="method='pgdd'.*did you mean 'pgd'.*allowed: standard, fgsm, pgd, trades"):
        TrainConfig(method="pgdd")
    with pytest.raises(AdvtopoError, match="eps=-0.1"):
        TrainConfig(eps=-0.1)
    with pytest.raises(AdvtopoError, match="schedule="):
        TrainConfig(schedule="linear")
    with pytest.raises(AdvtopoError, match="epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(AdvtopoError, match="needs eps > 0"):
        TrainConfig(method="pgd", eps=0)


def test_schedules():
    for name in ("constant", "cosine", "multistep", "onecycle"):
        cfg = TrainConfig(schedule=name)
        f = [lr_factor(cfg, s, 100) for s in range(101)]
        assert max(f) <= 1.0 + 1e-9 and min(f) >= 0
    assert lr_factor(TrainConfig(schedule="multistep"), 80, 100) == pytest.approx(0.01)
    cfg = TrainConfig(eps=0.3, eps_warmup_epochs=2)
    assert eps_at(cfg, 0, 10) == pytest.approx(0.015)
    assert eps_at(cfg, 19, 10) == pytest.approx(0.3)
    assert eps_at(cfg, 50, 10) == pytest.approx(0.3)


def test_end_to_end_train_attack_evaluate(tmp_path):
    train = load_dataset("synthetic", "train", n=800, noise=0.3, shape=(1, 16, 16))
    test = load_dataset("synthetic", "test", n=200, noise=0.3, shape=(1, 16, 16))
    cfg = TrainConfig(method="fgsm", eps=0.1, epochs=1, batch_size=25, eval_subset=100, eval_steps=3)
    res = train_model("lenet5", train, test, cfg, tmp_path / "run", quiet=True)
    assert not res["skipped"] and res["resumed_from"] == 0
    row = res["metrics"]
    assert set(row) >= {"epoch", "clean_acc", "pgd_acc", "loss", "time", "images_per_s"}
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and len(lines) == 2
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 1
    model, config = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert config["arch"] == "lenet5" and config["dataset"] == "synthetic" and config["seed"] == 0
    assert config["recipe"]["method"] == "fgsm" and "clean_acc" in config["metrics"]
    df = evaluate(model, test, attack="pgd", eps_list=[0, 0.1], attack_kwargs={"steps": 3}, batch_size=100)
    assert list(df["eps"]) == [0.0, 0.1] and (df["n"] == 200).all()
    assert df["accuracy"].iloc[0] > 0.6 and df["accuracy"].iloc[1] <= df["accuracy"].iloc[0]
    # completed training is skipped; a changed recipe in the same folder is an error
    again = train_model("lenet5", train, test, cfg, tmp_path / "run", quiet=True)
    assert again["skipped"]
    with pytest.raises(AdvtopoError, match="different config.*eps"):
        train_model("lenet5", train, test, TrainConfig(method="fgsm", eps=0.2, epochs=1), tmp_path / "run", quiet=True)


def test_trades_and_pgd_run(tmp_path):
    train = load_dataset("synthetic", "train", n=200, noise=0.3)
    test = load_dataset("synthetic", "test", n=50, noise=0.3)
    for method in ("pgd", "trades"):
        cfg = TrainConfig(method=method, eps=0.1, steps=2, epochs=1, batch_size=100, eval_subset=50,
                          eval_steps=2, schedule="cosine", optimizer="sgd", lr=0.01, eps_warmup_epochs=0.5)
        res = train_model("cff", train, test, cfg, tmp_path / method, quiet=True)
        assert res["metrics"]["epoch"] == 1 and torch.isfinite(torch.tensor(res["metrics"]["loss"]))


def test_input_shape_mismatch(tmp_path):
    train = load_dataset("synthetic", "train", n=20, shape=(3, 32, 32))
    with pytest.raises(AdvtopoError, match="lenet5"):
        from advtopo.models import create_model
        train_model(create_model("lenet5"), train, train, TrainConfig(epochs=1), tmp_path, quiet=True, arch="lenet5")


SCRIPT = """
import sys
from advtopo.adversarial import TrainConfig, train_model
from advtopo.data import load_dataset
train = load_dataset("synthetic", "train", n=400, noise=0.3, shape=(1, 16, 16))
test = load_dataset("synthetic", "test", n=100, noise=0.3, shape=(1, 16, 16))
cfg = TrainConfig(method="pgd", eps=0.1, steps=2, epochs=3, batch_size=50, eval_subset=50, eval_steps=2,
                  eps_warmup_epochs=1, schedule="cosine", seed=3)
res = train_model("lenet5", train, test, cfg, sys.argv[1], quiet=True)
print("RESUMED_FROM", res["resumed_from"])
"""


def _run(out: Path, wait: bool = True) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="2")
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    ref = _run(tmp_path / "ref")
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    # interrupted run: kill -9 as soon as the first epoch is committed
    killed_dir = tmp_path / "killed"
    proc = _run(killed_dir)
    deadline = time.time() + 300
    while not (killed_dir / "last.pt").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not (killed_dir / "checkpoint.pt").exists(), "the run finished before it could be killed"
    state = torch.load(killed_dir / "last.pt", weights_only=True)
    done = int(state["epoch"])
    assert 1 <= done < 3
    # no half-written files are left under their final names
    assert all(not p.name.endswith(".tmp") or p.name.startswith(".") for p in killed_dir.iterdir())
    again = _run(killed_dir)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"RESUMED_FROM {done}" in out
    a, _ = load_checkpoint(tmp_path / "ref" / "checkpoint.pt")
    b, _ = load_checkpoint(killed_dir / "checkpoint.pt")
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), f"{k} differs after resume"
    rows = [json.loads(l) for l in (killed_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    ref_rows = [json.loads(l) for l in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    assert [r["pgd_acc"] for r in rows] == [r["pgd_acc"] for r in ref_rows]


@pytest.mark.gpu
def test_cuda_fast_path(tmp_path, cuda):
    train = load_dataset("synthetic", "train", n=512, shape=(3, 32, 32))
    test = load_dataset("synthetic", "test", n=128, shape=(3, 32, 32))
    cfg = TrainConfig(method="pgd", eps=8 / 255, steps=2, epochs=1, batch_size=256, optimizer="sgd",
                      amp_bf16=True, channels_last=True, eval_subset=128, eval_steps=2, device="cuda")
    res = train_model("resnet18", train, test, cfg, tmp_path, quiet=True)
    assert res["metrics"]["images_per_s"] > 0
