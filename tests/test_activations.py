"""Capture correctness (hooks == a manual forward pass), streaming store, bounded memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from advtopo.activations import (SUMMARIES, capture, images_uint8, open_activations, read_activations,
                                 sample_table, summarize)
from advtopo.errors import AdvtopoError
from advtopo.models import create_model


@pytest.fixture(scope="module")
def model_and_x():
    torch.manual_seed(0)
    model = create_model("lenet5").eval()
    x = torch.rand(37, 1, 28, 28)
    y = torch.randint(0, 10, (37,))
    return model, x, y


def _manual(model, x):
    """The lenet5 forward pass written out by hand."""
    with torch.no_grad():
        c2 = model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x)))))
        fc1 = model.fc1(model.flatten(model.pool2(c2)))
        return {"relu2": c2, "fc1": fc1, "logits": model.fc2(model.relu3(fc1))}


def _expected(t: torch.Tensor, summary: str, ids: np.ndarray, seed: int) -> np.ndarray:
    if t.ndim == 2:
        return t.numpy()
    n, c = t.shape[:2]
    flat = t.reshape(n, c, -1)
    if summary == "flatten":
        return t.reshape(n, -1).numpy()
    if summary == "gap":
        return flat.mean(2).numpy()
    if summary == "gmp":
        return flat.max(2).values.numpy()
    if summary == "top_l2":
        pos = [int(torch.linalg.norm(flat[i], dim=0).argmax()) for i in range(n)]
    else:
        from advtopo.activations.summaries import _positions
        pos = _positions(ids, flat.shape[2], seed)
    return np.stack([flat[i, :, p].numpy() for i, p in enumerate(pos)])


@pytest.mark.parametrize("summary", SUMMARIES)
def test_hooked_values_equal_manual_forward(model_and_x, summary):
    model, x, y = model_and_x
    ids = np.arange(100, 137)
    out = capture(model, x, {"relu2": summary, "fc1": summary}, y, batch_size=8, sample_ids=ids, seed=3)
    ref = _manual(model, x)
    for layer in ("relu2", "fc1"):
        np.testing.assert_allclose(out["activations"][layer], _expected(ref[layer], summary, ids, 3),
                                   rtol=1e-5, atol=1e-6)
    assert out["stats"]["prediction"].tolist() == ref["logits"].argmax(1).tolist()
    assert np.array_equal(out["stats"]["correct"], (ref["logits"].argmax(1) == y).numpy())


def test_random_position_is_seeded_and_batch_independent(model_and_x):
    model, x, _ = model_and_x
    a = capture(model, x, {"relu2": "random_position"}, batch_size=5, seed=1)["activations"]["relu2"]
    b = capture(model, x, {"relu2": "random_position"}, batch_size=37, seed=1)["activations"]["relu2"]
    c = capture(model, x, {"relu2": "random_position"}, batch_size=37, seed=2)["activations"]["relu2"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_store_roundtrip_equals_memory(model_and_x, tmp_path):
    model, x, y = model_and_x
    layers = {"relu2": "top_l2", "fc1": "flatten", "conv1": "gap"}
    mem = capture(model, x, layers, y, batch_size=10)
    disk = capture(model, x, layers, y, batch_size=10, store=tmp_path / "acts.zarr")
    stored = read_activations(tmp_path / "acts.zarr")
    assert set(stored) == set(layers)
    for k in layers:
        np.testing.assert_array_equal(stored[k], mem["activations"][k])
    np.testing.assert_array_equal(disk["stats"]["loss"], mem["stats"]["loss"])
    with pytest.raises(AdvtopoError, match="did you mean 'fc1'"):
        read_activations(tmp_path / "acts.zarr", "fc_1")


def test_unknown_layer_and_summary_are_clear_errors(model_and_x):
    model, x, _ = model_and_x
    with pytest.raises(AdvtopoError, match=r"unknown layer 'fc3'.*valid layers: .*fc1"):
        capture(model, x, ["fc3"])
    with pytest.raises(AdvtopoError, match=r"summary of layer 'fc1'='gapp'.*did you mean 'gap'"):
        capture(model, x, {"fc1": "gapp"})


def test_capture_streams_with_bounded_memory(tmp_path):
    """1,536 samples of conv1 flattened (25,088 floats each) = 154 MB; the capture may hold
    about one batch of it, never the whole."""
    torch.manual_seed(0)
    model = create_model("lenet5").eval()
    n, bs = 1536, 64
    x = torch.rand(n, 1, 28, 28)
    total = n * 32 * 28 * 28 * 4
    tracemalloc.start()
    try:
        capture(model, x, {"conv1": "flatten"}, batch_size=bs, store=tmp_path / "big.zarr")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < total / 10, f"peak {peak / 1e6:.1f} MB vs total {total / 1e6:.1f} MB"
    arr = read_activations(tmp_path / "big.zarr", "conv1")
    assert arr.shape == (n, 25088)
    with torch.no_grad():
        np.testing.assert_allclose(arr[-3:], model.conv1(x[-3:]).reshape(3, -1).numpy(), rtol=1e-5, atol=1e-6)


def test_images_uint8_and_sample_table():
    x = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
    img = images_uint8(x)
    assert img.shape == (1, 2, 2, 1) and img.dtype == np.uint8
    assert img[0, :, :, 0].tolist() == [[0, 128], [255, 64]]
    df = sample_table([0, 1], [10, 11], "test", [3, 4], "m", "pgd", 0.1, True, [3, 5], [0.9, 0.8],
                      [1.0, -1.0], [0.1, 2.0])
    assert list(df.columns) == ["sample_id", "dataset_index", "split", "label", "model", "attack", "eps",
                                "is_adversarial", "prediction", "correct", "confidence", "margin", "loss"]
    assert df["correct"].tolist() == [True, False]


def test_summarize_dense_is_identity():
    t = torch.randn(4, 7)
    for s in SUMMARIES:
        np.testing.assert_array_equal(summarize(t, s).numpy(), t.numpy())


def _small_store(tmp_path, rows=10, dim=4, chunk_rows=4):
    from advtopo.activations import ActivationWriter

    X = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim)
    X[4:8] = 0.0  # an all-zero chunk is stored too (else it would be indistinguishable from a lost one)
    w = ActivationWriter(tmp_path / "s.zarr", rows, {"fc1": dim}, chunk_rows=chunk_rows)
    w.write(0, {"fc1": X})
    w.close()
    return tmp_path / "s.zarr", X


def test_store_keeps_all_zero_chunks_and_reads_back(tmp_path):
    path, X = _small_store(tmp_path)
    assert (path / "fc1" / "c" / "1" / "0").is_file()
    np.testing.assert_array_equal(read_activations(path, "fc1"), X)


def test_missing_chunk_is_an_error_naming_layer_and_chunk(tmp_path):
    from advtopo.activations import CorruptActivations

    path, _ = _small_store(tmp_path)
    (path / "fc1" / "c" / "1" / "0").unlink()
    with pytest.raises(CorruptActivations, match=r"layer 'fc1' is missing 1 of 3 chunks: 1 \(rows 4-7\)"):
        read_activations(path, "fc1")
    with pytest.raises(CorruptActivations, match="missing"):
        open_activations(path)  # out-of-core readers are checked too


def test_flipped_byte_is_an_error_naming_the_chunk(tmp_path):
    from advtopo.activations import CorruptActivations

    path, _ = _small_store(tmp_path)
    chunk = path / "fc1" / "c" / "2" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CorruptActivations, match=r"layer 'fc1' chunk 2 \(rows 8-9\) is corrupt"):
        read_activations(path)


def test_lost_array_metadata_is_an_error_naming_the_layer(tmp_path):
    from advtopo.activations import CorruptActivations

    path, _ = _small_store(tmp_path)
    (path / "fc1" / "zarr.json").unlink()
    with pytest.raises(CorruptActivations, match="'fc1'"):
        read_activations(path, "fc1")
