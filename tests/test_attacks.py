"""Attacks: bounds, eval-mode restore, targeted mode, eps=0, determinism, and agreement
with torchattacks on the same model and data."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advtopo.adversarial import ATTACKS, FGSM, PGD, PGDL2, create_attack
from advtopo.data import load_dataset
from advtopo.errors import AdvtopoError
from advtopo.models import create_model


@pytest.fixture(scope="module")
def trained():
    """A lenet5 trained for a few hundred steps on synthetic 28x28 data (a few seconds)."""
    torch.manual_seed(0)
    train = load_dataset("synthetic", "train", n=2000, noise=0.3)
    test = load_dataset("synthetic", "test", n=200, noise=0.3)
    model = create_model("lenet5")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(1):
        for x, y in train.loader(100, shuffle=True, seed=0):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    opt.zero_grad(set_to_none=True)
    model.eval()
    return model, test.x, test.y


def _acc(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


ALL = [
    ("fgsm", {}), ("fgsm", {"random_start": True, "seed": 1}),
    ("pgd", {"steps": 5, "seed": 1}), ("pgd", {"steps": 3, "restarts": 2, "seed": 1}),
    ("pgd_l2", {"steps": 5, "seed": 1}),
]


@pytest.mark.parametrize("name,kw", ALL)
def test_bounds_and_mode(trained, name, kw):
    model, x, y = trained
    x, y = x[:64], y[:64]
    eps = 3.0 if name == "pgd_l2" else 0.2
    model.train()
    atk = create_attack(name, model, eps=eps, **kw)
    x_adv = atk(x, y)
    assert model.training, "training mode must be restored"
    assert all(m.training for m in model.modules())
    model.eval()
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    d = (x_adv - x).flatten(1)
    if name == "pgd_l2":
        assert d.norm(dim=1).max() <= eps * (1 + 1e-5)
    else:
        assert d.abs().max() <= eps + 1e-6
    assert d.abs().max() > 0
    assert all(p.grad is None for p in model.parameters()), "attacks must not leave parameter grads"
    assert _acc(model, x_adv, y) < _acc(model, x, y)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "pgd_l2"])
def test_eps_zero_is_identity(trained, name):
    model, x, y = trained
    out = create_attack(name, model, eps=0)(x[:8], y[:8])
    assert torch.equal(out, x[:8])


@pytest.mark.parametrize("cls", [PGD, PGDL2])
def test_seed_determinism(trained, cls):
    model, x, y = trained
    a = cls(model, eps=0.2, steps=3, seed=7)(x[:32], y[:32])
    b = cls(model, eps=0.2, steps=3, seed=7)(x[:32], y[:32])
    c = cls(model, eps=0.2, steps=3, seed=8)(x[:32], y[:32])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("cls,eps", [(PGD, 0.3), (PGDL2, 4.0)])
def test_targeted(trained, cls, eps):
    model, x, y = trained
    x, y = x[:64], y[:64]
    target = (y + 1) % 10
    x_adv = cls(model, eps=eps, steps=20, targeted=True, seed=0)(x, target)
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == target).float().mean().item()
        before = (model(x).argmax(1) == target).float().mean().item()
    assert hit > before + 0.3


def test_restarts_never_weaker(trained):
    model, x, y = trained
    one = PGD(model, eps=0.15, steps=3, seed=3)(x, y)
    three = PGD(model, eps=0.15, steps=3, restarts=3, seed=3)(x, y)
    assert _acc(model, three, y) <= _acc(model, one, y)


def test_validation(trained):
    model, _, _ = trained
    with pytest.raises(AdvtopoError, match="eps"):
        PGD(model, eps=-0.1)
    with pytest.raises(AdvtopoError, match="steps"):
        PGD(model, eps=0.1, steps=0)
    with pytest.raises(AdvtopoError, match="unknown attack 'pgdd'.*did you mean 'pgd'"):
        create_attack("pgdd", model, eps=0.1)
    with pytest.raises(AdvtopoError, match="no option 'step'.*did you mean 'steps'"):
        create_attack("pgd", model, eps=0.1, step=3)
    assert {"fgsm", "pgd", "pgd_l2", "autoattack", "apgd", "cw"} <= set(ATTACKS.names())


def test_matches_torchattacks(trained):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = trained
    eps = 0.15
    ours = _acc(model, FGSM(model, eps=eps)(x, y), y)
    theirs = _acc(model, torchattacks.FGSM(model, eps=eps)(x, y), y)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)
    ours = _acc(model, PGD(model, eps=eps, alpha=0.02, steps=10, random_start=False)(x, y), y)
    theirs = _acc(model, torchattacks.PGD(model, eps=eps, alpha=0.02, steps=10, random_start=False)(x, y), y)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)
    ours = _acc(model, PGD(model, eps=eps, alpha=0.02, steps=10, seed=0)(x, y), y)
    torch.manual_seed(0)
    theirs = _acc(model, torchattacks.PGD(model, eps=eps, alpha=0.02, steps=10, random_start=True)(x, y), y)
    assert abs(ours - theirs) <= 0.02, (ours, theirs)  # different random starts
    # the attacks must actually bite for the comparison to mean something
    assert ours < _acc(model, x, y) - 0.2


def test_torchattacks_adapter(trained):
    pytest.importorskip("torchattacks")
    model, x, y = trained
    x, y = x[:32], y[:32]
    x_adv = create_attack("apgd", model, eps=0.1, steps=5)(x, y)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert _acc(model, x_adv, y) <= _acc(model, x, y)
    x_cw = create_attack("cw", model, steps=10)(x, y)
    assert x_cw.min() >= 0 and x_cw.max() <= 1
