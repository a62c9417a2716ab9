"""Public robust-zoo layouts load strictly and give the reference definitions' logits.

The references are RobustBench 1.1.1's own architecture files, loaded by path from the
installed wheel (tests/reference_archs/robustbench.py), plus two small layouts written for the
tests (advertorch LeNet5, TRADES SmallCNN). Random-weight reference models (BatchNorm statistics
randomised too, so eval-mode BN matters) are saved the way those code bases save them and loaded
with ``build_model(..., checkpoint=...)``.
"""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn as nn

from advtopo.activations import capture
from advtopo.errors import AdvtopoError
from advtopo.models import build_model, check_layers, list_layers, read_state_dict
from reference_archs import robustbench as rb
from reference_archs.others import AdvertorchLeNet5, TradesSmallCNN

ATOL = 1e-5


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random weights *and* BatchNorm statistics (the upstream init sets BN to 1/0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith("weight") and t.ndim == 1:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                fan_in = t[0].numel() if t.ndim > 1 else 1
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5)
    return model.eval()


def _x(n: int = 2, c: int = 3, side: int = 32) -> torch.Tensor:
    return torch.rand(n, c, side, side, generator=torch.Generator().manual_seed(7))


def _assert_same_logits(ref: nn.Module, ours: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        a, b = ref.eval()(x), ours.eval()(x)
    assert a.shape == b.shape
    rel = ((a - b).abs().max() / a.abs().max()).item()
    assert rel < 1e-6, rel  # float32 round-off at most (bit-identical on this CPU)
    assert a.std() > 0.01  # not a degenerate constant output


@pytest.fixture(scope="module")
def wrn28_ref():
    mod = rb.load("wide_resnet")
    torch.manual_seed(0)
    return _randomize(mod.WideResNet(depth=28, widen_factor=10), 1)


def test_wrn28_10_plain_state_dict(tmp_path, wrn28_ref, capsys):
    path = tmp_path / "wrn28.pt"
    torch.save(wrn28_ref.state_dict(), path)  # RobustBench / TRADES: torch.save(model.state_dict())
    t0 = time.perf_counter()
    model, info = build_model("wrn28_10", checkpoint=path)
    seconds = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n[measure] WRN-28-10 build + strict load of {path.stat().st_size / 1e6:.0f} MB: {seconds:.2f} s")
    assert info["translation"] is None and info["renamed"] == [] and len(info["sha256"]) == 64
    _assert_same_logits(wrn28_ref, model, _x())


def test_wrn28_10_dataparallel_wrapped(tmp_path, wrn28_ref):
    # DataParallel training loop: {"state_dict": model.state_dict(), "epoch": ...} with module. keys
    sd = {f"module.{k}": v for k, v in wrn28_ref.state_dict().items()}
    torch.save({"epoch": 99, "state_dict": sd, "best_acc": torch.tensor(0.6)}, tmp_path / "dp.pth")
    model, info = build_model("wrn28_10", checkpoint=tmp_path / "dp.pth")
    assert info["stripped"] == ["module."]
    _assert_same_logits(wrn28_ref, model, _x())


def test_wrn_residual_block_capture_matches_reference_module(wrn28_ref):
    """Capturing 'block3.layer.3' (a block: output after the residual addition) gives the
    reference's block output, and a layer overwritten in place upstream is captured correctly."""
    ours, _ = build_model("wrn28_10")
    ours.load_state_dict(wrn28_ref.state_dict())
    x = _x()
    seen = {}
    hooks = [wrn28_ref.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, o.detach().clone())) for n in ("block3.layer.3", "block2.layer.0.bn2")]
    with torch.no_grad():
        wrn28_ref(x)
    for h in hooks:
        h.remove()
    layers = ["block3.layer.3", "block2.layer.0.bn2"]
    check_layers(ours, layers, input_shape=(3, 32, 32))
    got = capture(ours, x, layers)["activations"]
    assert torch.allclose(torch.from_numpy(got["block3.layer.3"]), seen["block3.layer.3"].flatten(1), atol=ATOL)
    # upstream's relu2 is in place: bn2's output is overwritten after it returns. Capture must keep the
    # BN output (it has negative values), not the post-ReLU one.
    ref_cap = capture(wrn28_ref, x, ["block2.layer.0.bn2"])["activations"]["block2.layer.0.bn2"]
    assert (ref_cap < 0).any()
    assert torch.allclose(torch.from_numpy(ref_cap), seen["block2.layer.0.bn2"].flatten(1), atol=ATOL)
    infos = {i.name: i for i in list_layers(wrn28_ref, (3, 32, 32))}
    assert infos["block2.layer.0.bn2"].overwritten and infos["block2.layer.0.relu2"].inplace
    assert infos["block3.layer.3"].container and not infos["block3.layer.3"].reused


def test_wrn34_10_and_variants_keys_and_logits(tmp_path):
    mod = rb.load("wide_resnet")
    with torch.device("meta"):  # 46M parameters: compare key -> shape without allocating
        ref34 = mod.WideResNet(depth=34, widen_factor=10)
        ours34, _ = build_model("wrn34_10")
    assert {k: v.shape for k, v in ref34.state_dict().items()} == {k: v.shape for k, v in ours34.state_dict().items()}
    # the generic entry: depth/widen_factor, sub_block1 (unused but saved by some checkpoints), no fc bias
    ref = _randomize(mod.WideResNet(depth=16, widen_factor=2, sub_block1=True, bias_last=False, num_classes=100), 2)
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    ours, _ = build_model("wideresnet", {"depth": 16, "widen_factor": 2, "sub_block1": True, "bias_last": False},
                          checkpoint=tmp_path / "w.pt", num_classes=100)
    _assert_same_logits(ref, ours, _x())
    unused = {i.name: i for i in list_layers(ours, (3, 32, 32))}["sub_block1"]
    assert not unused.called
    with pytest.raises(AdvtopoError, match="never called"):
        check_layers(ours, ["sub_block1"], input_shape=(3, 32, 32))
    # a WRN-16-2 checkpoint is not a WRN-22-2: the first missing key is named
    with pytest.raises(AdvtopoError, match=r"missing key 'block1\.layer\.2\.bn1\.weight'"):
        build_model("wideresnet", {"depth": 22, "widen_factor": 2, "sub_block1": True, "bias_last": False},
                    checkpoint=tmp_path / "w.pt", num_classes=100)


def test_dm_wideresnet_safetensors_and_builtin_normalization(tmp_path):
    from safetensors.torch import save_file

    mod = rb.load("dm_wide_resnet")
    with torch.device("meta"):  # the full-size entries: same keys and shapes as upstream, nothing allocated
        for (depth, width), name in (((28, 10), "dm_wrn28_10"), ((70, 16), "dm_wrn70_16")):
            ref_big = mod.DMWideResNet(num_classes=10, depth=depth, width=width)
            ours_big, _ = build_model(name)
            assert ({k: v.shape for k, v in ref_big.state_dict().items()}
                    == {k: v.shape for k, v in ours_big.state_dict().items()})
    # logits on a narrow 28-layer one (same code path as 28-10, 25x fewer weights)
    ref = _randomize(mod.DMWideResNet(num_classes=10, depth=28, width=2), 3)
    assert "mean" not in ref.state_dict()  # non-persistent, as in the original
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "dm.safetensors"))
    model, info = build_model("dm_wideresnet", {"depth": 28, "width": 2}, checkpoint=tmp_path / "dm.safetensors")
    assert info["mean"] is None  # the model normalises itself with its built-in CIFAR-10 mean/std
    _assert_same_logits(ref, model, _x())
    # Swish variant
    ref_s = _randomize(mod.DMWideResNet(num_classes=10, depth=16, width=1, activation_fn=mod.Swish), 4)
    torch.save({"model_state_dict": ref_s.state_dict()}, tmp_path / "s.pt")
    ours_s, _ = build_model("dm_wideresnet", {"depth": 16, "width": 1, "activation": "swish"}, checkpoint=tmp_path / "s.pt")
    _assert_same_logits(ref_s, ours_s, _x())
    check_layers(model, ["layer.1.block.2", "layer.2", "init_conv", "logits"], input_shape=(3, 32, 32))


def test_resnet18_kuangliu_layout_model_state_dict(tmp_path):
    mod = rb.load("resnet")
    ref = _randomize(mod.ResNet18(), 5)
    torch.save({"model_state_dict": ref.state_dict(), "optimizer_state_dict": {}}, tmp_path / "r.pt")
    model, _ = build_model("resnet18_rb", checkpoint=tmp_path / "r.pt")
    _assert_same_logits(ref, model, _x())
    # the advtopo 'resnet18' (normalisation inside, 'fc' head) is a different layout: refused by name
    with pytest.raises(AdvtopoError, match="missing key 'normalize.mean'.*unexpected key 'linear.weight'"):
        build_model("resnet18", checkpoint=tmp_path / "r.pt")


@pytest.mark.parametrize("bn_before_fc", [False, True])
def test_preact_resnet18_layouts(tmp_path, bn_before_fc):
    mod = rb.load("resnet")
    ref = _randomize(mod.PreActResNet(mod.PreActBlock, [2, 2, 2, 2], bn_before_fc=bn_before_fc), 6)
    # fast_adversarial saves a bare state_dict; here with a torch.compile prefix and a {"net": ...} wrapper
    sd = {f"_orig_mod.{k}": v for k, v in ref.state_dict().items()}
    torch.save({"net": sd, "acc": 0.5}, tmp_path / "p.pth")
    model, info = build_model("preact_resnet18_rb", {"bn_before_fc": bn_before_fc}, checkpoint=tmp_path / "p.pth")
    assert info["stripped"] == ["_orig_mod."]
    _assert_same_logits(ref, model, _x())
    if bn_before_fc:  # a robust_overfitting checkpoint into the default layout: the extra BN is named
        with pytest.raises(AdvtopoError, match="unexpected key 'bn.weight'"):
            build_model("preact_resnet18_rb", checkpoint=tmp_path / "p.pth")


def test_robustbench_mu_sigma_buffers_become_input_normalization(tmp_path):
    """A state_dict saved from a RobustBench wrapper (Wong2020FastNet & co.) carries mu/sigma buffers."""
    mod = rb.load("resnet")
    ref = _randomize(mod.PreActResNet(mod.PreActBlock, [2, 2, 2, 2]), 8)
    mu = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    sigma = torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1)
    torch.save({**ref.state_dict(), "mu": mu, "sigma": sigma}, tmp_path / "wong.pt")
    model, info = build_model("preact_resnet18_rb", checkpoint=tmp_path / "wong.pt")
    assert info["normalization_source"] == "checkpoint buffers ['mu', 'sigma']"
    assert info["mean"] == pytest.approx(mu.flatten().tolist())
    x = _x()
    with torch.no_grad():
        want = ref((x - mu) / sigma)
        assert torch.allclose(model(x), want, atol=ATOL)
    assert "input_normalize" not in model.state_dict() and "mu" not in model.state_dict()


def test_advertorch_lenet5_known_layout(tmp_path):
    ref = _randomize(AdvertorchLeNet5(), 9)
    torch.save(ref.state_dict(), tmp_path / "mnist_lenet5_advtrained.pt")
    model, info = build_model("lenet5", checkpoint=tmp_path / "mnist_lenet5_advtrained.pt")
    assert info["translation"] == "advertorch LeNet5 (linear1, linear2)"
    assert ("linear1.weight", "fc1.weight") in info["renamed"]
    _assert_same_logits(ref, model, _x(c=1, side=28))
    # the same file through the older API keeps loading, now by name and not by order
    from advtopo.models import load_checkpoint

    loaded, cfg = load_checkpoint(tmp_path / "mnist_lenet5_advtrained.pt", arch="lenet5")
    assert cfg["translation"] == info["translation"]
    _assert_same_logits(ref, loaded, _x(c=1, side=28))


def test_trades_smallcnn_known_layout_and_reused_relu(tmp_path):
    ref = _randomize(TradesSmallCNN(), 10)
    torch.save(ref.state_dict(), tmp_path / "model-nn-epoch100.pt")
    model, info = build_model("smallcnn", checkpoint=tmp_path / "model-nn-epoch100.pt")
    assert info["translation"].startswith("TRADES SmallCNN")
    _assert_same_logits(ref, model, _x(c=1, side=28))
    # the original's single shared ReLU object is detected and refused for capture
    infos = {i.name: i for i in list_layers(ref, (1, 28, 28))}
    assert infos["feature_extractor.relu1"].reused and infos["feature_extractor.relu1"].calls == 6
    with pytest.raises(AdvtopoError, match="runs 6 times per forward.*give each use its own module"):
        check_layers(ref, ["classifier.relu2"], input_shape=(1, 28, 28))


def test_read_state_dict_of_public_layout_is_exact(tmp_path):
    mod = rb.load("resnet")
    ref = mod.ResNet18()
    torch.save({"state_dict": {"model": {f"module.{k}": v for k, v in ref.state_dict().items()}}}, tmp_path / "n.pt")
    got = read_state_dict(tmp_path / "n.pt")
    assert list(got) == list(ref.state_dict())
