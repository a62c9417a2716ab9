"""Datapaths through residual blocks (advtopo.datapaths.residual, flow's block pairs): the skip
share against the block's branch and shortcut computed by hand, the block-to-block flow strength
against the weights chained by hand, and the report's residual section."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.datapaths import DatapathExtractor, datapath_report, layer_connections
from advtopo.datapaths.residual import block_parts, critical_skip_share, skip_share
from advtopo.errors import AdvtopoError
from advtopo.models import create_model


def _share(r: torch.Tensor, s: torch.Tensor) -> np.ndarray:
    rs, ss = r.abs().sum((2, 3)), s.abs().sum((2, 3))
    return (ss / (rs + ss)).numpy()


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    m = create_model("resnet18", input_size=16).eval()
    for mod in m.modules():  # non-trivial batch-norm statistics, as after training
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
    return m


def _block_input(model, name, x):
    got = {}
    h = dict(model.named_modules())[name].register_forward_hook(lambda _m, i, _o: got.update(x=i[0]))
    with torch.no_grad():
        model(x)
    h.remove()
    return got["x"]


def test_skip_share_equals_the_block_computed_by_hand(resnet):
    x = torch.rand(5, 3, 16, 16)
    got = skip_share(resnet, ["layer1.0", "layer2.0"], x, batch_size=2)
    with torch.no_grad():
        b = resnet.layer1[0]
        xin = _block_input(resnet, "layer1.0", x)
        r = b.bn2(b.conv2(F.relu(b.bn1(b.conv1(xin)))))
        np.testing.assert_allclose(got["layer1.0"], _share(r, xin), rtol=1e-4, atol=1e-5)  # identity skip
        b = resnet.layer2[0]
        xin = _block_input(resnet, "layer2.0", x)
        r = b.bn2(b.conv2(F.relu(b.bn1(b.conv1(xin)))))
        s = b.shortcut(xin)  # 1x1 conv + batch norm
        np.testing.assert_allclose(got["layer2.0"], _share(r, s), rtol=1e-4, atol=1e-5)
    assert got["layer2.0"].shape == (5, 128)


def test_skip_share_preact_and_wideresnet():
    torch.manual_seed(1)
    m = create_model("preact_resnet18", input_size=16).eval()
    x = torch.rand(3, 3, 16, 16)
    got = skip_share(m, ["layer2.0"], x)["layer2.0"]
    with torch.no_grad():
        b = m.layer2[0]
        xin = _block_input(m, "layer2.0", x)
        act = F.relu(b.bn1(xin))
        r = b.conv2(F.relu(b.bn2(b.conv1(act))))
        np.testing.assert_allclose(got, _share(r, b.shortcut(act)), rtol=1e-4, atol=1e-5)
    w = create_model("wideresnet", depth=10, widen_factor=1).eval()
    assert block_parts(w.block1.layer[0], torch.rand(1, 16, 8, 8)).residual_end == "conv2"
    assert skip_share(w, ["block2.layer.0"], torch.rand(2, 3, 16, 16))["block2.layer.0"].shape == (2, 32)


class _Scaled(nn.Module):
    """A block whose output is not branch + skip: refused, not measured wrongly."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return 2 * self.conv2(self.conv1(x)) + x


def test_unknown_layouts_are_refused(resnet):
    with pytest.raises(AdvtopoError, match="not a residual block"):
        skip_share(resnet, ["fc"], torch.rand(1, 3, 16, 16))
    net = nn.Sequential(_Scaled())
    with pytest.raises(AdvtopoError, match="layout not supported"):
        skip_share(net, ["0"], torch.rand(2, 3, 8, 8))
    assert np.isnan(critical_skip_share(np.ones((1, 3)), np.zeros((1, 3), bool))[0])
    np.testing.assert_allclose(critical_skip_share(np.array([[0.2, 0.4, 0.9]]), np.array([[1, 1, 0]], bool)), [0.3])


def test_block_pairs_get_flow_strength_from_the_chained_weights(resnet):
    conns = layer_connections(resnet, ["layer1.0", "layer1.1", "layer2.0", "layer3.1"], (3, 16, 16))
    c11, c20, c31 = conns
    w = lambda conv: conv.weight.detach().abs().sum((2, 3))  # noqa: E731
    b = resnet.layer1[1]
    np.testing.assert_allclose(c11.strength, (w(b.conv2) @ w(b.conv1) + torch.eye(64)).numpy(), rtol=1e-5)
    assert c11.skip == "identity" and c11.to_dict()["supported"] is True
    b = resnet.layer2[0]
    np.testing.assert_allclose(c20.strength, (w(b.conv2) @ w(b.conv1) + w(b.shortcut[0])).numpy(), rtol=1e-5)
    assert c20.skip == "conv" and c20.strength.shape == (128, 64)
    assert c31.strength is None and "not directly connected" in c31.reason  # layer2.0 -> layer3.1 skips blocks


def test_report_residual_section(resnet):
    torch.manual_seed(2)
    x = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        y = resnet(x).argmax(1).numpy()
    xa = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    ext = DatapathExtractor(["layer1.1", "layer2.0"], steps=5)
    rep = datapath_report(resnet, x, y, {0.1: xa}, ext, n_detail=2)
    res = rep["residual"]
    assert res["blocks"] == ["layer1.1", "layer2.0"]
    clean = ext.fit(resnet, x)
    share = skip_share(resnet, ["layer2.0"], x)["layer2.0"]
    want = critical_skip_share(share, clean.critical["layer2.0"])
    assert res["skip_share"]["layer2.0"]["clean"] == pytest.approx(np.nanmean(want), abs=1e-4)
    assert res["detail"][1]["clean"]["layer2.0"] == pytest.approx(want[1], abs=1e-4)
    assert [c["supported"] for c in rep["connections"]] == [True]
    for d in rep["detail"]:  # flow edges now exist between the two blocks
        assert d["clean"]["flow"][0]["edges"] is not None


def test_plain_networks_have_no_residual_section(lenet):
    model, test = lenet
    rep = datapath_report(model, test.x[:4], test.y[:4].numpy(), {0.1: test.x[:4]},
                          DatapathExtractor(["relu1", "relu2"], steps=3), n_detail=1)
    assert "residual" not in rep
