"""Evaluation API and the `advtopo train` / `advtopo evaluate` commands."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advtopo.adversarial import TrainConfig, attack_dataset, evaluate, predict_batch, train_model
from advtopo.cli import main
from advtopo.data import load_dataset
from advtopo.errors import AdvtopoError
from advtopo.models import create_model, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("cff")
    train = load_dataset("synthetic", "train", n=600, noise=0.3)
    test = load_dataset("synthetic", "test", n=100, noise=0.3)
    cfg = TrainConfig(method="standard", epochs=2, batch_size=50, eval_subset=50, eval_eps=0.1, eval_steps=2)
    train_model("cff", train, test, cfg, out, quiet=True)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", "test", n=120, noise=0.3)


def test_predict_batch(ckpt, data):
    model, _ = load_checkpoint(ckpt)
    p = predict_batch(model, data.x, data.y, batch_size=50)
    assert set(p) == {"prediction", "correct", "confidence", "true_prob", "margin", "loss"}
    assert all(len(v) == len(data) for v in p.values())
    assert np.array_equal(p["correct"], p["margin"] > 0)
    assert ((p["confidence"] > 0) & (p["confidence"] <= 1)).all()
    assert np.allclose(p["loss"], -np.log(p["true_prob"]), atol=1e-4)
    x_adv = attack_dataset(model, data.x, data.y, "pgd", 0.2, batch_size=50, attack_kwargs={"steps": 5})
    q = predict_batch(model, x_adv, data.y)
    assert q["loss"].mean() > p["loss"].mean()


def test_evaluate_table(ckpt, data):
    model, _ = load_checkpoint(ckpt)
    df = evaluate(model, data, attack="fgsm", eps_list=[0, 0.1, 0.2], batch_size=40)
    assert list(df.columns) == ["attack", "eps", "accuracy", "n"]
    assert df["accuracy"].iloc[0] > 0.9
    assert df["accuracy"].is_monotonic_decreasing
    again = evaluate(model, data, attack="pgd", eps_list=[0.1], attack_kwargs={"steps": 3}, batch_size=40)
    same = evaluate(model, data, attack="pgd", eps_list=[0.1], attack_kwargs={"steps": 3}, batch_size=40)
    assert again.equals(same), "seeded evaluation must be reproducible"
    with pytest.raises(AdvtopoError, match="eps"):
        evaluate(model, data, eps_list=[-0.1])
    with pytest.raises(AdvtopoError, match="unknown attack"):
        evaluate(model, data, attack="nope")
    with pytest.raises(AdvtopoError, match="cannot take"):
        evaluate(model, load_dataset("synthetic", "test", n=10, shape=(3, 32, 32)), eps_list=[0])


def test_cli_evaluate_writes_csv_and_json(ckpt, tmp_path, capsys):
    out = tmp_path / "r.csv"
    rc = main(["evaluate", "--checkpoint", str(ckpt), "--dataset", "synthetic", "--subset", "60",
               "--attack", "pgd", "--steps", "2", "--eps", "0,0.1", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "accuracy" in text and "0.1000" in text
    assert out.read_text().splitlines()[0] == "model,attack,eps,accuracy,n"
    js = tmp_path / "r.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--dataset", "synthetic", "--subset", "60",
                 "--attack", "fgsm", "--eps", "0.1", "--out", str(js)]) == 0
    rows = json.loads(js.read_text())["rows"]
    assert rows[0]["attack"] == "fgsm" and rows[0]["n"] == 60


def test_cli_evaluate_plain_state_dict(tmp_path, capsys):
    model = create_model("cff")
    torch.save({f"w{i}": t for i, t in enumerate(model.state_dict().values())}, tmp_path / "foreign.pt")
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "foreign.pt"), "--arch", "cff", "--dataset", "synthetic",
               "--subset", "20", "--eps", "0"])
    assert rc == 0
    assert "matched" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["evaluate", "--checkpoint", "/nonexistent.pt", "--dataset", "synthetic"], "does not exist"),
    (["evaluate", "--checkpoint", "CKPT", "--dataset", "synthetic", "--attack", "pgdd"], "did you mean 'pgd'"),
    (["evaluate", "--checkpoint", "CKPT", "--dataset", "synthetic", "--eps", "0,-0.1"], "--eps"),
    (["evaluate", "--checkpoint", "CKPT", "--dataset", "mnistt"], "unknown dataset 'mnistt'"),
    (["evaluate", "--checkpoint", "CKPT", "--dataset", "synthetic", "--out", "x.txt"], ".csv or .json"),
    (["train", "--model", "lenet", "--dataset", "synthetic", "--out", "OUT"], "did you mean 'lenet5'"),
    (["train", "--model", "lenet5", "--dataset", "synthetic", "--eps", "-1", "--out", "OUT"], "--eps: -1 is out of range"),
    (["train", "--model", "lenet5", "--dataset", "synthetic", "--method", "madry", "--out", "OUT"],
     "allowed: standard, fgsm, pgd, trades"),
])
def test_cli_errors_one_line_exit_2(ckpt, tmp_path, capsys, argv, message):
    argv = [str(ckpt) if a == "CKPT" else str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_train_then_skip(tmp_path, capsys):
    argv = ["train", "--model", "cff", "--dataset", "synthetic", "--method", "fgsm", "--eps", "0.1",
            "--epochs", "1", "--subset", "200", "--eval-subset", "50", "--eval-steps", "2", "--out", str(tmp_path),
            "--quiet"]
    assert main(argv) == 0
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "metrics.csv").exists()
    assert main(argv[:-1]) == 0
    assert "skipped" in capsys.readouterr().out
