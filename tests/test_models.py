"""Model zoo, layer listing, checkpoints (own and foreign), and the CLI's error contract."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from advtopo.errors import AdvtopoError
from advtopo.models import MODELS, check_layers, create_model, layer_shapes, load_checkpoint, save_checkpoint


@pytest.mark.parametrize("name,shape", [("lenet5", (1, 28, 28)), ("cff", (1, 28, 28)), ("smallcnn", (1, 28, 28)),
                                        ("resnet18", (3, 32, 32)), ("preact_resnet18", (3, 32, 32))])
def test_models_forward(name, shape):
    torch.manual_seed(0)
    model = create_model(name, in_channels=shape[0], input_size=shape[1])
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, 10)


def test_lenet5_architecture():
    model = create_model("lenet5")
    shapes = {n: s for n, _, s in layer_shapes(model, (1, 28, 28))}
    assert shapes["conv1"] == (32, 28, 28) and shapes["pool2"] == (64, 7, 7)
    assert model.fc1.in_features == 3136 and model.fc1.out_features == 200


def test_cff_has_no_bias():
    model = create_model("cff")
    assert all(m.bias is None for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert model.conv1.out_channels == 5 and model.fc1.out_features == 50


def test_bad_input_shape_is_user_error():
    with pytest.raises(AdvtopoError, match="does not fit"):
        layer_shapes(create_model("lenet5"), (3, 28, 28))


def test_check_layers_lists_valid():
    with pytest.raises(AdvtopoError, match="valid layers: conv1"):
        check_layers(create_model("lenet5"), ["fc9"])


def test_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = create_model("lenet5")
    save_checkpoint(tmp_path / "m.pt", model, {"arch": "lenet5", "dataset": "mnist", "seed": 3, "metrics": {"acc": 0.5}})
    loaded, cfg = load_checkpoint(tmp_path / "m.pt")
    assert cfg["seed"] == 3 and cfg["metrics"]["acc"] == 0.5
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(model.eval()(x), loaded(x))


def test_foreign_state_dict_matched_by_order(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18")
    foreign = {f"backbone.param{i}": v.clone() for i, (k, v) in enumerate(model.state_dict().items())
               if not k.endswith("num_batches_tracked")}
    torch.save(foreign, tmp_path / "foreign.pth")
    with pytest.raises(AdvtopoError, match="missing key 'normalize.mean'.*unexpected key 'backbone.param0'.*match='order'"):
        load_checkpoint(tmp_path / "foreign.pth", arch="resnet18", match="name")  # strict by name when asked
    # this legacy API's default ('auto') falls back to order and shape, and says so
    loaded, cfg = load_checkpoint(tmp_path / "foreign.pth", arch="resnet18")
    assert len(cfg["renamed"]) == len(foreign) and cfg["translation"] == "order"
    loaded, cfg = load_checkpoint(tmp_path / "foreign.pth", arch="resnet18", match="order")
    assert len(cfg["renamed"]) == len(foreign)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(model.eval()(x), loaded(x))
    with pytest.raises(AdvtopoError, match="plain state_dict"):
        load_checkpoint(tmp_path / "foreign.pth")


def test_foreign_safetensors_and_mismatch(tmp_path):
    from safetensors.torch import save_file

    model = create_model("cff")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    loaded, cfg = load_checkpoint(tmp_path / "w.safetensors", arch="cff")
    assert cfg["renamed"] == []
    bad = {k: v for k, v in create_model("lenet5").state_dict().items()}
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(AdvtopoError, match="tensors|shape"):
        load_checkpoint(tmp_path / "bad.pt", arch="cff")
    other = dict(model.state_dict())
    other["fc1.weight"] = torch.zeros(51, 2880)
    torch.save(other, tmp_path / "bad2.pt")
    with pytest.raises(AdvtopoError, match="fc1.weight.*\\(51, 2880\\)"):
        load_checkpoint(tmp_path / "bad2.pt", arch="cff")


def test_checkpoint_refuses_arbitrary_pickle(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(AdvtopoError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.pt", arch="cff")
    with pytest.raises(AdvtopoError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt", arch="cff")


def test_registry():
    assert {"lenet5", "cff", "smallcnn", "resnet18", "preact_resnet18"} <= set(MODELS.names())
    with pytest.raises(AdvtopoError, match="did you mean 'lenet5'"):
        create_model("lenet")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "advtopo.cli", *args], capture_output=True, text=True)


def test_cli_layers_and_errors(capsys):
    from advtopo.cli import main

    assert main(["layers", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "(3136,)" in out
    assert main(["layers", "lenet5", "--input-shape", "1,30,30"]) == 2
    assert "divisible by 4" in capsys.readouterr().err
    assert main(["layers", "lenet5", "--input-shape", "1,28"]) == 2
    assert main(["layers", "lenet5", "--input-shape", "3,32,32"]) == 0  # channels follow the input
    assert main(["layers", "lenet5", "--checkpoint", "/nonexistent.pt"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["datasets"]) == 0
    assert "CC BY-SA 3.0" in capsys.readouterr().out
    # one real process: a user error is one line on stderr, exit 2, no traceback
    bad = _cli("layers", "lenet9")
    assert bad.returncode == 2 and "unknown model 'lenet9'" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
