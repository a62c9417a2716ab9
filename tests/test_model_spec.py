"""Any model by spec (registry, package.module:factory, file.py:factory), normalisation, checkpoint
reading and strict loading, layer listing (reused / in-place / blocks) and capture of blocks."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn

from advtopo.activations import capture
from advtopo.errors import AdvtopoError
from advtopo.models import (arch_file, build_model, check_layers, create_model, list_layers, load_weights,
                            read_state_dict, resolve_arch)

USER_MODEL = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Block(nn.Module):
        """A residual block: its output is relu(bn(conv(x)) + x), written with an in-place add."""

        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.relu = nn.ReLU()

        def forward(self, x):
            out = self.bn(self.conv(x))
            out += x                      # overwrites bn's output in place
            return self.relu(out)


    class Net(nn.Module):
        def __init__(self, width=4, num_classes=10, in_channels=1):
            super().__init__()
            self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
            self.act = nn.ReLU(inplace=True)
            self.layer1 = nn.Sequential(Block(width), Block(width))
            self.shared = nn.ReLU()
            self.fc1 = nn.Linear(width * 8 * 8, 16)
            self.fc2 = nn.Linear(16, num_classes)

        def forward(self, x):
            x = self.layer1(self.act(self.stem(x)))
            x = self.shared(self.fc1(x.flatten(1)))
            return self.fc2(self.shared(x))   # 'shared' runs twice


    def make_net(width=4, num_classes=10):
        return Net(width=width, num_classes=num_classes)


    def make_no_classes(width=4):
        return Net(width=width)


    def not_a_model():
        return 42


    CONSTANT = 3
''')


@pytest.fixture
def user_file(tmp_path):
    folder = tmp_path / "cfg" / "models"
    folder.mkdir(parents=True)
    (folder / "mynet.py").write_text(USER_MODEL)
    return tmp_path / "cfg"


def _x(c=1, side=8, n=3):
    return torch.rand(n, c, side, side, generator=torch.Generator().manual_seed(3))


def test_file_spec_with_arch_kwargs_relative_to_base_dir(user_file):
    torch.manual_seed(0)
    model, info = build_model("models/mynet.py:make_net", {"width": 6}, base_dir=user_file, num_classes=7)
    assert type(model).__name__ == "Net" and model.stem.out_channels == 6
    assert model(_x()).shape == (3, 7)  # num_classes passed because the factory accepts it
    assert not model.training and info["arch_kwargs"] == {"width": 6} and info["checkpoint"] is None
    # a factory without num_classes gets only arch_kwargs
    model2, _ = build_model("models/mynet.py:make_no_classes", base_dir=user_file, num_classes=7)
    assert model2(_x()).shape == (3, 10)
    # an absolute path works without base_dir
    factory = resolve_arch(f"{user_file / 'models' / 'mynet.py'}:Net")
    assert factory.__name__ == "Net"


def test_arch_file_is_the_absolute_file_of_a_file_spec_only(user_file, monkeypatch):
    path = (user_file / "models" / "mynet.py").resolve()
    assert arch_file("models/mynet.py:make_net", user_file) == path
    assert arch_file(f"{path}:Net") == path  # absolute: base_dir not needed
    monkeypatch.chdir(user_file)
    assert arch_file("models/mynet.py:make_net") == path  # relative without base_dir: the working directory
    # registry names and modules name no file
    assert arch_file("lenet5") is None and arch_file("torchvision.models:resnet18") is None


def test_module_spec_on_sys_path(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    model, info = build_model("mypkg.nets:make_net", {"width": 3})
    assert model.stem.out_channels == 3 and info["arch"] == "mypkg.nets:make_net"
    with pytest.raises(AdvtopoError, match=r"has no attribute 'make_nett' \(did you mean 'make_net'\?\); "
                                           r"callables defined there: Block, Net, make_net, make_no_classes, not_a_model"):
        resolve_arch("mypkg.nets:make_nett")


def test_bad_specs_say_what_is_wrong(user_file, tmp_path, monkeypatch):
    with pytest.raises(AdvtopoError, match=r"unknown model 'wrn28_1O' \(did you mean 'wrn28_10'\?\).*"
                                           r"or give 'package.module:factory' or 'path/to/file.py:factory'"):
        resolve_arch("wrn28_1O")
    with pytest.raises(AdvtopoError, match=r"arch file .*nothere\.py does not exist"):
        resolve_arch("nothere.py:f", base_dir=user_file)
    with pytest.raises(AdvtopoError, match="names a file but no factory"):
        resolve_arch("models/mynet.py")
    with pytest.raises(AdvtopoError, match=r"arch module 'no_such_pkg_x.nets' cannot be imported: "
                                           r"ModuleNotFoundError: No module named 'no_such_pkg_x'"):
        resolve_arch("no_such_pkg_x.nets:f")
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('needs a GPU driver')\n")
    with pytest.raises(AdvtopoError, match="broken.py failed to import: RuntimeError: needs a GPU driver"):
        resolve_arch(f"{broken}:f")
    with pytest.raises(AdvtopoError, match="'CONSTANT' in file .* is a int, not a callable"):
        resolve_arch("models/mynet.py:CONSTANT", base_dir=user_file)
    with pytest.raises(AdvtopoError, match="returned a int, not a torch.nn.Module"):
        build_model("models/mynet.py:not_a_model", base_dir=user_file)
    with pytest.raises(AdvtopoError, match=r"does not accept 'depth'; its arguments: num_classes, width"):
        build_model("models/mynet.py:make_net", {"depth": 3}, base_dir=user_file)
    with pytest.raises(AdvtopoError, match=r"does not accept 'widht'.*its arguments: .*widen_factor"):
        build_model("wideresnet", {"widht": 3})
    with pytest.raises(AdvtopoError, match="depth must be 6n\\+4"):
        build_model("wideresnet", {"depth": 20})
    with pytest.raises(AdvtopoError, match="give both mean and std"):
        build_model("lenet5", mean=[0.5])
    with pytest.raises(AdvtopoError, match="arch_kwargs sets num_classes=100 but the data needs num_classes=10"):
        build_model("wrn28_10", {"num_classes": 100}, num_classes=10)


def test_mean_std_inside_model_equals_normalising_by_hand(user_file):
    torch.manual_seed(0)
    plain, _ = build_model("models/mynet.py:make_net", base_dir=user_file)
    names_before = [n for n, _ in plain.named_modules()]
    keys_before = list(plain.state_dict())
    normed, info = build_model("models/mynet.py:make_net", base_dir=user_file, mean=[0.3], std=[0.2])
    normed.load_state_dict(plain.state_dict())
    x = _x()
    with torch.no_grad():
        assert torch.equal(normed(x), plain((x - 0.3) / 0.2))
    # the user's dotted names are unchanged (one extra module, input_normalize) and so is the state_dict
    assert [n for n, _ in normed.named_modules() if n != "input_normalize"] == names_before
    assert list(normed.state_dict()) == keys_before
    assert info["mean"] == [0.3] and info["std"] == [0.2] and info["normalization_source"] == "given"
    # layer capture sees the normalised input: stem's output equals stem((x - m) / s)
    got = capture(normed, x, ["stem"])["activations"]["stem"]
    with torch.no_grad():
        want = plain.stem((x - 0.3) / 0.2).flatten(1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(AdvtopoError, match="already has an attribute 'input_normalize'"):
        from advtopo.models import add_input_normalization

        add_input_normalization(normed, [0.1], [0.2])
    # the registry's RobustBench-style archs take [0,1] input; mean/std for 3 channels
    wrn, info = build_model("wideresnet", {"depth": 10, "widen_factor": 1}, mean=[0.49, 0.48, 0.45],
                            std=[0.25, 0.24, 0.26])
    assert wrn(_x(c=3, side=32)).shape == (3, 10)


def test_reused_inplace_and_block_flags(user_file):
    model, _ = build_model("models/mynet.py:make_net", base_dir=user_file)
    infos = {i.name: i for i in list_layers(model, (1, 8, 8))}
    assert infos["shared"].reused and infos["shared"].calls == 2
    assert infos["act"].inplace and infos["stem"].overwritten  # ReLU(inplace) overwrites stem's output
    assert infos["layer1.0.bn"].overwritten and not infos["layer1.0.bn"].inplace  # `out += x`
    assert infos["layer1.0"].container and infos["layer1"].container and not infos["fc1"].container
    assert infos["layer1.0"].output_shape == (4, 8, 8) and infos["fc2"].n_params == 16 * 10 + 10
    with pytest.raises(AdvtopoError, match=r"layer 'shared' \(ReLU\) runs 2 times per forward pass.*"
                                           r"give each use its own module"):
        check_layers(model, ["fc1", "shared"], input_shape=(1, 8, 8))
    with pytest.raises(AdvtopoError, match=r"unknown layer 'layer1.0.bnn' \(did you mean 'layer1.0.bn'\?\)"):
        check_layers(model, ["layer1.0.bnn"])
    assert check_layers(model, ["layer1.1", "layer1.0.bn", "stem"], input_shape=(1, 8, 8)) == ["layer1.1", "layer1.0.bn", "stem"]


def test_block_output_and_overwritten_layer_capture_match_manual_hooks(user_file):
    torch.manual_seed(1)
    model, _ = build_model("models/mynet.py:make_net", base_dir=user_file)
    for m in model.modules():  # non-trivial BN statistics so eval-mode BN has an effect
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = _x(n=5)
    seen = {}

    def keep(name):
        return lambda m, i, o: seen.__setitem__(name, o.detach().clone())

    hooks = [model.get_submodule(n).register_forward_hook(keep(n)) for n in ("layer1.0", "layer1.1.bn", "stem")]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    got = capture(model, x, ["layer1.0", "layer1.1.bn", "stem"], batch_size=2)["activations"]
    # the block's output is the value after the residual addition and the ReLU
    np.testing.assert_allclose(got["layer1.0"], seen["layer1.0"].flatten(1).numpy(), rtol=1e-6, atol=1e-6)
    # bn's output is overwritten by `out += x` after the hook: capture must store bn's own output
    np.testing.assert_allclose(got["layer1.1.bn"], seen["layer1.1.bn"].flatten(1).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["stem"], seen["stem"].flatten(1).numpy(), rtol=1e-6, atol=1e-6)
    assert (got["stem"] < 0).any()  # before the in-place ReLU, not after


def _lenet_state():
    torch.manual_seed(0)
    return create_model("lenet5").state_dict()


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model_state_dict", "model", "net", "nested", "module.",
                                  "_orig_mod.", "module+compile", "safetensors"])
def test_read_state_dict_wrappers(tmp_path, wrap):
    from safetensors.torch import save_file

    sd = _lenet_state()
    path = tmp_path / ("w.safetensors" if wrap == "safetensors" else "w.pt")
    if wrap == "plain":
        torch.save(sd, path)
    elif wrap in ("state_dict", "model_state_dict", "model", "net"):
        torch.save({wrap: sd, "epoch": 3, "acc": torch.tensor(0.9)}, path)
    elif wrap == "nested":
        torch.save({"checkpoint": 1, "model": {"state_dict": sd}}, path)
    elif wrap in ("module.", "_orig_mod."):
        torch.save({f"{wrap}{k}": v for k, v in sd.items()}, path)
    elif wrap == "module+compile":
        torch.save({"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}}, path)
    else:
        save_file({f"module.{k}": v.contiguous() for k, v in sd.items()}, str(path))
    got = read_state_dict(path)
    assert sorted(got) == sorted(sd) and all(torch.equal(got[k], sd[k]) for k in sd)  # safetensors sorts keys


def test_bad_files_are_user_errors_naming_the_file(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(AdvtopoError, match="empty.pt is empty"):
        read_state_dict(tmp_path / "empty.pt")
    torch.save(_lenet_state(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(AdvtopoError, match="cut.pt is not a readable torch file"):
        read_state_dict(tmp_path / "cut.pt")
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    with pytest.raises(AdvtopoError, match="cut.safetensors is not a valid safetensors file"):
        read_state_dict(tmp_path / "cut.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(AdvtopoError, match="list.pt holds no state_dict"):
        read_state_dict(tmp_path / "list.pt")
    with pytest.raises(AdvtopoError, match="does not exist"):
        build_model("lenet5", checkpoint=tmp_path / "nope.pt")


def test_load_weights_is_strict_by_name():
    sd = _lenet_state()
    model = create_model("lenet5")
    missing = {k: v for k, v in sd.items() if k != "conv2.bias"}
    with pytest.raises(AdvtopoError, match="missing key 'conv2.bias'"):
        load_weights(model, missing)
    extra = {**sd, "head.weight": torch.zeros(2)}
    with pytest.raises(AdvtopoError, match="unexpected key 'head.weight'"):
        load_weights(model, extra)
    wrong = {**sd, "fc1.weight": torch.zeros(200, 100)}
    with pytest.raises(AdvtopoError, match=r"tensor 'fc1.weight' has shape \(200, 100\) in the checkpoint but "
                                           r"\(200, 3136\) in the model"):
        load_weights(model, wrong)
    renamed = {f"features.{i}": v for i, v in enumerate(sd.values())}
    with pytest.raises(AdvtopoError, match="match='order'"):
        load_weights(model, renamed)
    report = load_weights(model, renamed, match="order")  # explicit opt-in keeps the old behaviour
    assert report["translation"] == "order" and len(report["renamed"]) == len(sd)
    assert torch.equal(model.fc2.weight, sd["fc2.weight"])
    with pytest.raises(AdvtopoError, match="match='fuzzy' is not valid"):
        load_weights(model, sd, match="fuzzy")


def test_zoo_checkpoint_by_name():
    from advtopo.models.pretrained import list_pretrained

    entries = list_pretrained()
    if not entries:
        pytest.skip("no built-in zoo checkpoints in this install")
    e = entries[0]
    model, info = build_model(e.arch, checkpoint=f"zoo:{e.name}", **e.model_kwargs())
    assert info["sha256"] == e.sha256 and info["checkpoint"] == f"zoo:{e.name}"
    with pytest.raises(AdvtopoError, match="unknown zoo checkpoint"):
        build_model(e.arch, checkpoint="zoo:no-such-model")


def test_cli_layers_any_spec(user_file, monkeypatch, capsys):
    from advtopo.cli import main

    monkeypatch.chdir(user_file)  # the file spec is relative to the working directory
    assert main(["layers", "models/mynet.py:make_net", "--arch-kwargs", '{"width": 5}', "--input-shape", "1,8,8"]) == 0
    out = capsys.readouterr().out
    assert "layer1.0.bn" in out and "(5, 8, 8)" in out and "REUSED x2" in out
    assert "overwritten later" in out and "block" in out
    assert main(["layers", "models/mynet.py:make_net", "--arch-kwargs", "{width: 5}"]) == 2
    assert "--arch-kwargs is not valid JSON" in capsys.readouterr().err
    assert main(["layers", "models/mynet.py:nope"]) == 2
    assert "callables defined there" in capsys.readouterr().err
    assert main(["layers", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "wrn28_10" in listing and "dm_wrn28_10" in listing and "preact_resnet18_rb" in listing
    # one real process: the error is one line, no traceback, exit 2
    bad = subprocess.run([sys.executable, "-m", "advtopo.cli", "layers", "models/mynet.py:make_net",
                          "--arch-kwargs", '{"depth": 3}'], capture_output=True, text=True, cwd=user_file)
    assert bad.returncode == 2 and "does not accept 'depth'" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_advtopo_checkpoint_of_a_custom_normalised_model_round_trips(user_file, tmp_path):
    from advtopo.models import load_checkpoint, save_checkpoint

    torch.manual_seed(2)
    model, info = build_model("models/mynet.py:make_net", {"width": 3}, base_dir=user_file, mean=[0.5], std=[0.25])
    config = {k: info[k] for k in ("arch", "arch_kwargs", "mean", "std")} | {"base_dir": str(user_file)}
    save_checkpoint(tmp_path / "c.pt", model, config)
    loaded, cfg = load_checkpoint(tmp_path / "c.pt")
    x = _x()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))  # normalisation re-applied from the config
    assert hasattr(loaded, "input_normalize") and cfg["translation"] is None
    again, info2 = build_model("models/mynet.py:make_net", {"width": 3}, base_dir=user_file, mean=[0.5], std=[0.25],
                               checkpoint=tmp_path / "c.pt")
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    assert info2["sha256"] and info2["renamed"] == []
