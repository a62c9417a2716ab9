"""DeepFool (L2, Linf): exact on a linear classifier (closed form), and on a trained MNIST
LeNet5 it reaches the same decision boundary at the same distance as torchattacks' DeepFool."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from advtopo.adversarial import create_attack
from advtopo.adversarial.attacks import DeepFool
from advtopo.errors import AdvtopoError


@pytest.fixture
def linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(1 * 6 * 6, 5))
    with torch.no_grad():
        model[1].weight.mul_(5.0)  # boundaries close by: the steps stay inside [0, 1]
    x = 0.4 + 0.2 * torch.rand(40, 1, 6, 6)  # far from the [0, 1] bounds: no clipping
    with torch.no_grad():
        y = model(x).argmax(1)
    return model.eval(), x, y


@pytest.mark.parametrize("norm,dual", [("L2", 2), ("Linf", 1)])
def test_exact_minimal_perturbation_of_a_linear_classifier(linear, norm, dual):
    model, x, y = linear
    W, b = model[1].weight.detach(), model[1].bias.detach()
    f = x.flatten(1) @ W.T + b
    w = W.unsqueeze(0) - W[y].unsqueeze(1)  # (n, k, D)
    gap, w_norm = (f - f.gather(1, y[:, None])).abs(), w.norm(p=dual, dim=2)
    dist = gap / w_norm
    dist[torch.arange(len(y)), y] = float("inf")
    best = dist.argmin(1)
    rows = torch.arange(len(y))
    expected = (gap[rows, best] + 1e-4) / w_norm[rows, best]  # the boundary plus DeepFool's 1e-4 push
    x_adv = DeepFool(model, norm=norm, overshoot=0.0)(x, y)
    measured = (x_adv - x).flatten(1).norm(p=2 if norm == "L2" else float("inf"), dim=1)
    np.testing.assert_allclose(measured.numpy(), expected.numpy(), rtol=1e-4, atol=1e-7)  # one step is exact
    with torch.no_grad():
        assert (model(x_adv).argmax(1) != y).all()


def test_budget_clips_and_no_eps_is_unbounded(linear):
    model, x, y = linear
    free = DeepFool(model)(x, y)
    clipped = create_attack("deepfool", model, eps=0.01)(x, y)
    assert (clipped - x).flatten(1).norm(dim=1).max() <= 0.01 + 1e-6
    assert (free - x).flatten(1).norm(dim=1).max() > 0.01
    with pytest.raises(AdvtopoError, match="norm='L1'.*'L2' or 'Linf'"):
        DeepFool(model, norm="L1")


def test_agrees_with_torchattacks_on_a_trained_lenet5():
    torchattacks = pytest.importorskip("torchattacks")
    from advtopo.data import load_dataset
    from advtopo.models.pretrained import load_pretrained

    model, _ = load_pretrained("mnist-lenet5-std")
    model.eval()
    ds = load_dataset("mnist", "test").subset(32, seed=0)
    x, y = torch.as_tensor(ds.x), torch.as_tensor(ds.y)
    with torch.no_grad():
        right = model(x).argmax(1) == y
    x, y = x[right], y[right]
    ours = DeepFool(model, steps=50, overshoot=0.02)(x, y)
    theirs = torchattacks.DeepFool(model, steps=50, overshoot=0.02)(x, y)
    with torch.no_grad():
        lo, lt = model(ours), model(theirs)
    assert (lo.argmax(1) != y).all()  # ours crosses the boundary for every sample
    # torchattacks clips every step and stops ON the boundary (top-2 logits tie, argmax may
    # keep the label): count "reached the boundary" for it
    top2 = lt.topk(2, dim=1).values
    reached = (lt.argmax(1) != y) | ((top2[:, 0] - top2[:, 1]) <= 1e-4 * lt.abs().max(1).values)
    assert reached.all()
    n_ours = (ours - x).flatten(1).norm(dim=1)
    n_theirs = (theirs - x).flatten(1).norm(dim=1)
    ratio = (n_ours / n_theirs).numpy()
    assert 0.99 <= np.median(ratio) <= 1.02, np.quantile(ratio, [0.1, 0.5, 0.9])
    for e in np.linspace(0.25, 4.0, 16):  # fooling rate within an L2 budget: within one sample
        assert abs(float((n_ours <= e).float().mean() - (n_theirs <= e).float().mean())) <= 1.01 / len(y)
