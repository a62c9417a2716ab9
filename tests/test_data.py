"""Datasets: shapes, ranges, labels, determinism, and clear errors on missing/corrupt files."""
from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from advtopo.data import DATASETS, load_dataset
from advtopo.errors import AdvtopoError


def _check(ds, n_classes=10):
    assert ds.x.dtype == torch.float32 and ds.x.ndim == 4
    assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0
    assert ds.y.dtype == torch.int64 and len(ds.y) == len(ds.x)
    assert len(ds.class_names) == n_classes
    assert int(ds.y.min()) >= 0 and int(ds.y.max()) < n_classes


def test_registry_lists_all():
    assert {"mnist", "fashion-mnist", "digits", "cifar10", "cifar100", "npz", "synthetic"} <= set(DATASETS.names())


def test_unknown_dataset_suggests():
    with pytest.raises(AdvtopoError, match="did you mean 'mnist'"):
        load_dataset("mnsit")


def test_bad_split():
    with pytest.raises(AdvtopoError, match="split"):
        load_dataset("digits", split="validation")


def test_mnist_full_and_cached(tmp_path, monkeypatch):
    ds = load_dataset("mnist", "test")
    _check(ds)
    assert ds.x.shape == (10000, 1, 28, 28)
    # the first test digits of MNIST are 7, 2, 1, 0, 4
    assert ds.y[:5].tolist() == [7, 2, 1, 0, 4]
    # balanced classes roughly as in the real data
    assert 850 < int((ds.y == 1).sum()) < 1200


def test_mnist_cache_rebuilds_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVTOPO_CACHE", str(tmp_path))
    a = load_dataset("mnist", "test")
    x_path = tmp_path / "mnist" / "test_x.npy"
    assert x_path.exists()
    x_path.write_bytes(b"garbage")  # a damaged cache must not be trusted
    b = load_dataset("mnist", "test")
    assert torch.equal(a.x, b.x)


def test_mnist_truncated_csv_names_file(tmp_path):
    bad = tmp_path / "mnist_test.csv"
    bad.write_text("label," + ",".join(f"p{i}" for i in range(784)) + "\n" + "7," + ",".join(["0"] * 784) + "\n")
    with pytest.raises(AdvtopoError, match="mnist_test.csv"):
        load_dataset("mnist", "test", root=tmp_path)


def test_digits_and_subset_deterministic():
    ds = load_dataset("digits", "train")
    _check(ds)
    a, b = ds.subset(200, seed=3), ds.subset(200, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(ds.subset(200, seed=4).y, a.y)
    counts = torch.bincount(a.y, minlength=10)
    assert counts.min() >= 19  # stratified
    assert set(load_dataset("digits", "test").indices).isdisjoint(set(ds.indices))


def test_synthetic_is_deterministic_and_learnable():
    a = load_dataset("synthetic", "train", n=500, seed=1)
    b = load_dataset("synthetic", "train", n=500, seed=1)
    _check(a)
    assert torch.equal(a.x, b.x)
    # nearest class-mean classifier does well: the classes are learnable
    means = torch.stack([a.x[a.y == c].mean(0) for c in range(10)]).flatten(1)
    t = load_dataset("synthetic", "test", n=200, seed=1)
    pred = torch.cdist(t.x.flatten(1), means).argmin(1)
    assert (pred == t.y).float().mean() > 0.9


def _write_idx(path, arr, gz=True):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_fashion_mnist_from_folder(tmp_path):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, (20,)))
    ds = load_dataset("fashion-mnist", "test", root=tmp_path)
    _check(ds)
    assert ds.class_names[0] == "T-shirt/top" and ds.x.shape == (20, 1, 28, 28)


def test_fashion_mnist_truncated_and_missing(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 28)))
    raw = gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz").read()
    gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb").write(raw[:-100])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((20,)))
    with pytest.raises(AdvtopoError, match="truncated"):
        load_dataset("fashion-mnist", "test", root=tmp_path)
    with pytest.raises(AdvtopoError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "test", root=tmp_path / "nope")


def _write_cifar_batch(path, n, rng, label_key=b"labels"):
    d = {b"batch_label": b"test batch", b"labels" if label_key == b"labels" else b"fine_labels":
         rng.integers(0, 10 if label_key == b"labels" else 100, n).tolist(),
         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=2)


def test_cifar10_from_standard_batches(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        _write_cifar_batch(root / f"data_batch_{i}", 8, rng)
    _write_cifar_batch(root / "test_batch", 6, rng)
    with open(root / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [n.encode() for n in
                     ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]]}, fh)
    train = load_dataset("cifar10", "train", root=tmp_path)
    _check(train)
    assert train.x.shape == (40, 3, 32, 32)
    # channel-first layout: the first 1024 bytes are the red plane
    raw = pickle.load(open(root / "data_batch_1", "rb"), encoding="bytes")[b"data"][0]
    assert torch.allclose(train.x[0, 0].flatten() * 255, torch.tensor(raw[:1024], dtype=torch.float32))
    assert load_dataset("cifar10", "test", root=root).x.shape == (6, 3, 32, 32)


def test_cifar_missing_and_malicious(tmp_path):
    with pytest.raises(AdvtopoError, match="test_batch"):
        load_dataset("cifar10", "test", root=tmp_path)
    with pytest.raises(AdvtopoError, match="root"):
        load_dataset("cifar10", "test")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(AdvtopoError, match="forbidden"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar100(tmp_path):
    rng = np.random.default_rng(1)
    _write_cifar_batch(tmp_path / "test", 5, rng, label_key=b"fine_labels")
    ds = load_dataset("cifar100", "test", root=tmp_path)
    _check(ds, n_classes=100)


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (10, 12, 12, 3), dtype=np.uint8), y=np.arange(10) % 3,
             class_names=np.array(["a", "b", "c"]))
    ds = load_dataset("npz", root=tmp_path / "d.npz")
    _check(ds, n_classes=3)
    assert ds.x.shape == (10, 3, 12, 12)
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(AdvtopoError, match="'x' and 'y'"):
        load_dataset("npz", root=tmp_path / "bad.npz")
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:50])
    with pytest.raises(AdvtopoError, match="trunc.npz"):
        load_dataset("npz", root=tmp_path / "trunc.npz")
