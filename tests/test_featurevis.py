"""Feature visualisation of activation directions (TopoAct's node view): the optimised images
point the layer's activation along the target, reproducibly, batch-independently, and the
visualisation of a class's mean activation is read by the model as that class."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.activations import FeatureVisualizer, summarize
from advtopo.errors import AdvtopoError


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.Identity(), nn.Linear(6, 3))


def test_linear_layer_reaches_the_target_direction():
    model = linear_model()
    target = np.array([[1.0, -1.0, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, -1.0]], dtype=np.float32)
    fv = FeatureVisualizer(model, "1", summary="flatten", steps=300, lr=0.1, jitter=0, tv=0.0, cossim_pow=4, seed=0)
    res = fv.fit(target, (1, 8, 8))
    assert res.images.shape == (2, 1, 8, 8) and res.images.dtype == np.float32
    assert res.images.min() >= 0.0 and res.images.max() <= 1.0
    assert np.all(res.cosine > 0.95), res.cosine
    # a random image does not point that way: the optimisation did the work
    with torch.no_grad():
        rnd = model[1](torch.rand(2, 64, generator=torch.Generator().manual_seed(1)))
    cos0 = F.cosine_similarity(rnd, torch.from_numpy(target), dim=1).numpy()
    assert np.all(cos0 < 0.8), cos0


def test_deterministic_and_batch_independent():
    model = linear_model(1)
    rng = np.random.default_rng(0)
    d = rng.normal(size=(4, 6)).astype(np.float32)
    kw = dict(summary="flatten", steps=40, lr=0.1, jitter=1, tv=0.01, seed=3)
    a = FeatureVisualizer(model, "1", **kw).fit(d, (1, 8, 8))
    b = FeatureVisualizer(model, "1", **kw).fit(d, (1, 8, 8))
    assert np.array_equal(a.images, b.images) and np.array_equal(a.cosine, b.cosine)
    # same seed -> same init noise per position in the batch, so compare image 0 alone vs in a batch
    one = FeatureVisualizer(model, "1", **kw).fit(d[:1], (1, 8, 8))
    assert np.allclose(one.images[0], a.images[0], atol=1e-5)
    # every image of a batch depends only on its own direction (and its position's init noise):
    # changing the other rows leaves image 2 as it was
    other = d.copy()
    other[[0, 1, 3]] = rng.normal(size=(3, 6))
    c = FeatureVisualizer(model, "1", **kw).fit(other, (1, 8, 8))
    assert not np.allclose(c.images[0], a.images[0], atol=1e-3)
    assert np.allclose(c.images[2], a.images[2], atol=1e-5) and abs(c.cosine[2] - a.cosine[2]) < 1e-5


def test_bad_inputs_are_clear_errors():
    model = linear_model()
    with pytest.raises(AdvtopoError, match="unknown layer 'fc9'"):
        FeatureVisualizer(model, "fc9").fit(np.ones((1, 6)), (1, 8, 8))
    with pytest.raises(AdvtopoError, match="directions have 5 columns but layer '1'.*gives 6"):
        FeatureVisualizer(model, "1").fit(np.ones((1, 5)), (1, 8, 8))
    with pytest.raises(AdvtopoError, match="steps=0 is not valid"):
        FeatureVisualizer(model, "1", steps=0).fit(np.ones((1, 6)), (1, 8, 8))
    with pytest.raises(AdvtopoError, match="summary"):
        FeatureVisualizer(model, "1", summary="median").fit(np.ones((1, 6)), (1, 8, 8))
    with pytest.raises(AdvtopoError, match="finite"):
        FeatureVisualizer(model, "1").fit(np.full((1, 6), np.nan), (1, 8, 8))


def test_summarize_differentiable_gives_the_stored_values():
    t = torch.randn(5, 4, 3, 3, requires_grad=True)
    for s in ("flatten", "gap", "gmp", "top_l2", "random_position"):
        a = summarize(t, s, differentiable=True)
        assert a.requires_grad
        assert torch.equal(a.detach(), summarize(t, s))


def test_class_mean_visualisation_is_read_as_that_class(lenet):
    """On a briefly trained lenet5 (sklearn digits, 8x8), the visualisation of each class's mean
    relu3 activation is classified as that class for most classes (TopoAct's 'what a node shows')."""
    model, data = lenet
    acts = []
    hook = dict(model.named_modules())["relu3"].register_forward_hook(lambda m, i, o: acts.append(o.detach()))
    with torch.no_grad():
        model(data.x)
    hook.remove()
    A = acts[0].numpy()
    means = np.stack([A[data.y.numpy() == c].mean(0) for c in range(10)])
    res = FeatureVisualizer(model, "relu3", summary="flatten", seed=0).fit(means, (1, 8, 8))
    with torch.no_grad():
        pred = model(torch.from_numpy(res.images)).argmax(1).numpy()
    hits = int((pred == np.arange(10)).sum())
    assert hits >= 8, (pred, res.cosine)
    assert np.median(res.cosine) > 0.8, res.cosine
