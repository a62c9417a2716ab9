"""Models in a study: checkpoints of every kind, custom architectures, objects from Python."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from advtopo.models import create_model, save_checkpoint
from advtopo.study import StudyConfig, open_run, run_study

pytestmark = pytest.mark.timeout(300)


def study(models: list[dict], **over) -> dict:
    d = {"name": "models", "seed": 0, "device": "cpu",
         "dataset": {"name": "digits", "split": "test", "subset": 30},
         "models": models,
         "attacks": [{"name": "pgd", "eps": [0.0, 0.2], "steps": 2}],
         "layers": [{"module": "relu2", "summary": "top_l2"}, {"module": "fc1"}],
         "capture": {"batch_size": 30},
         "mapper": [{"n_intervals": 3, "overlap": 0.3, "min_samples": 2}],
         "persistence": {"enabled": False}, "vulnerability": {"enabled": False}}
    d.update(over)
    return d


def _logits(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


@pytest.fixture(scope="module")
def lenet_files(tmp_path_factory):
    """One random-weight digits lenet5 saved four ways."""
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(3)
    model = create_model("lenet5", input_size=8).eval()
    sd = model.state_dict()
    save_checkpoint(d / "advtopo.pt", model, {"arch": "lenet5", "input_size": 8})
    torch.save(sd, d / "plain.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, d / "wrapped.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(d / "weights.safetensors"))
    return model, d


def test_checkpoint_models_run_end_to_end(lenet_files, tmp_path):
    """Every kind of checkpoint runs through train (import), attack, capture and mapper."""
    model, d = lenet_files
    files = {"adv": "advtopo.pt", "plain": "plain.pt", "wrapped": "wrapped.pth", "st": "weights.safetensors"}
    cfg = study([{"name": n, "arch": "lenet5", "checkpoint": str(d / f)} for n, f in files.items()])
    root = run_study(StudyConfig.from_dict(cfg), out=tmp_path / "run", verbose=False)
    run = open_run(root)
    idx = json.loads((root / "index.json").read_text())
    assert len(idx["graphs"]) == 4 * 2 * 2
    from advtopo.data import load_dataset

    x = load_dataset("digits", "test", subset=30, seed=0).x
    ref = _logits(model, x).argmax(1)
    df = run.samples
    for name in files:  # the study used exactly the saved weights: same predictions
        pred = df[(df.model == name) & (df.eps == 0)].sort_values("sample_id")["prediction"].to_numpy()
        assert np.array_equal(pred, ref), name
