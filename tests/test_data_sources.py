"""Data the user has: image folders, torch Datasets, and subsets that read only the chosen rows.

Every image here is a real file written with Pillow; expected pixels are computed in the
test (Pillow by hand, or the exact bytes written), not taken from the code under test.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from advtopo.data import (DATASETS, ImageDataset, from_torch_dataset, list_image_folder, load_dataset,
                          subset_indices)
from advtopo.errors import AdvtopoError


def _rand(rng, h, w, c=3):
    return rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)


def _expected(path, size, mode):
    """torchvision Resize(size) + CenterCrop(size) on a PIL image, written out by hand."""
    im = Image.open(path).convert(mode)
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    im = im.resize((nw, nh), Image.BILINEAR)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    arr = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@pytest.fixture()
def mixed_folder(tmp_path):
    """3 classes, PNG and JPEG, RGB and L modes, various sizes, odd extension cases, a nested
    folder and a non-image file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    specs = {"zebra": [("a.png", 40, 30, 3), ("b.JPG", 33, 50, 3)],
             "Ant": [("c.PNG", 20, 20, 1), ("d.jpeg", 64, 48, 1), ("sub/e.png", 17, 29, 3)],
             "bee": [("f.webp", 32, 32, 3), ("g.bmp", 25, 40, 3)]}
    for cls, files in specs.items():
        for name, h, w, c in files:
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_rand(rng, h, w, c)).save(path)
    (root / "bee" / "notes.txt").write_text("not an image")
    return root


def test_imagefolder_classes_files_and_pixels(mixed_folder):
    files, labels, classes = list_image_folder(mixed_folder)
    assert classes == ["Ant", "bee", "zebra"]  # sorted as strings, as torchvision does
    assert [f.relative_to(mixed_folder).as_posix() for f in files] == [
        "Ant/c.PNG", "Ant/d.jpeg", "Ant/sub/e.png", "bee/f.webp", "bee/g.bmp", "zebra/a.png", "zebra/b.JPG"]
    assert labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    for channels, mode in ((3, "RGB"), (1, "L")):
        ds = load_dataset("imagefolder", "test", root=mixed_folder, size=16, channels=channels)
        assert isinstance(ds, ImageDataset) and ds.class_names == classes
        assert ds.x.shape == (7, channels, 16, 16) and ds.x.dtype == torch.float32
        assert ds.y.tolist() == labels.tolist() and ds.indices.tolist() == list(range(7))
        for i, f in enumerate(files):
            np.testing.assert_allclose(ds.x[i].numpy(), _expected(f, 16, mode), atol=1e-6, err_msg=str(f))


def test_imagefolder_exact_bytes_without_resize(tmp_path):
    rng = np.random.default_rng(1)
    raw = {}
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            arr = _rand(rng, 9, 7)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
            raw[(cls, i)] = arr
    ds = load_dataset("imagefolder", "train", root=tmp_path)
    assert ds.x.shape == (6, 3, 9, 7)
    got = (ds.x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    want = np.stack([raw[(c, i)] for c in ("a", "b") for i in range(3)])
    assert np.array_equal(got, want)
    # size equal to the image's size changes nothing; a non-square size crops the centre
    same = load_dataset("imagefolder", "train", root=tmp_path, size=[9, 7])
    assert torch.equal(same.x, ds.x)
    crop = load_dataset("imagefolder", "train", root=tmp_path, size=[9, 5])
    assert torch.equal(crop.x, ds.x[:, :, :, 1:6])


def test_imagefolder_subset_decodes_only_chosen_files(tmp_path):
    rng = np.random.default_rng(2)
    for c in range(4):
        (tmp_path / f"c{c}").mkdir()
        for i in range(10 + c):
            Image.fromarray(_rand(rng, 12, 12)).save(tmp_path / f"c{c}" / f"{i:02d}.png")
    full = load_dataset("imagefolder", "test", root=tmp_path, size=8)
    ref = full.subset(8, seed=5)
    assert torch.bincount(ref.y, minlength=4).tolist() == [2, 2, 2, 2]  # stratified
    files, labels, _ = list_image_folder(tmp_path)
    assert np.array_equal(subset_indices(labels, 8, seed=5), ref.indices)
    for i, f in enumerate(files):  # corrupt every file the subset does not need
        if i not in set(ref.indices.tolist()):
            f.write_bytes(b"not a png")
    sub = load_dataset("imagefolder", "test", root=tmp_path, size=8, subset=8, seed=5)
    assert torch.equal(sub.x, ref.x) and torch.equal(sub.y, ref.y)
    assert np.array_equal(sub.indices, ref.indices)
    with pytest.raises(AdvtopoError, match=r"image .*\.png cannot be read"):
        load_dataset("imagefolder", "test", root=tmp_path, size=8)


def test_imagefolder_train_test_subfolders(tmp_path):
    rng = np.random.default_rng(3)
    for split, classes, n in (("train", ("cat", "dog"), 3), ("val", ("bird", "cat", "dog"), 2)):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(_rand(rng, 8, 8)).save(tmp_path / split / c / f"{i}.png")
    train = load_dataset("imagefolder", "train", root=tmp_path)
    test = load_dataset("imagefolder", "test", root=tmp_path)  # val/ serves as test
    # one class list for both splits, so label 1 is 'cat' in each
    assert train.class_names == test.class_names == ["bird", "cat", "dog"]
    assert train.y.tolist() == [1, 1, 1, 2, 2, 2] and test.y.tolist() == [0, 0, 1, 1, 2, 2]
    want = np.asarray(Image.open(tmp_path / "val" / "bird" / "1.png"), dtype=np.float32) / 255
    np.testing.assert_allclose(test.x[1].permute(1, 2, 0).numpy(), want)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(AdvtopoError, match="needs root="):
        load_dataset("imagefolder", "test")
    with pytest.raises(AdvtopoError, match="does not exist"):
        load_dataset("imagefolder", "test", root=tmp_path / "nope")
    with pytest.raises(AdvtopoError, match=r"no class folders; expected the layout root/<class_name>/"):
        load_dataset("imagefolder", "test", root=tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(_rand(np.random.default_rng(0), 10, 10)).save(tmp_path / "a" / "x.png")
    with pytest.raises(AdvtopoError, match=r"class folder .*b holds no images"):
        load_dataset("imagefolder", "test", root=tmp_path)
    Image.fromarray(_rand(np.random.default_rng(0), 12, 10)).save(tmp_path / "b" / "y.jpg")
    with pytest.raises(AdvtopoError, match=r"images differ in size: .*pass size="):
        load_dataset("imagefolder", "test", root=tmp_path)
    with pytest.raises(AdvtopoError, match="channels=4 must be 1"):
        load_dataset("imagefolder", "test", root=tmp_path, size=8, channels=4)
    with pytest.raises(AdvtopoError, match=r"size=\[8, 8, 8\] must be an int or \[height, width\]"):
        load_dataset("imagefolder", "test", root=tmp_path, size=[8, 8, 8])
    with pytest.raises(AdvtopoError, match=r"no option 'sise' \(did you mean 'size'\?\); its options: size, channels"):
        load_dataset("imagefolder", "test", root=tmp_path, sise=8)
    (tmp_path / "b" / "y.jpg").write_bytes(b"\xff\xd8\xff truncated")
    with pytest.raises(AdvtopoError, match=r"image .*y\.jpg cannot be read"):
        load_dataset("imagefolder", "test", root=tmp_path, size=8)


def test_imagefolder_in_a_study(tmp_path):
    """[dataset] name = "imagefolder" with options: the data stage and a tiny study run."""
    from advtopo.study import StudyConfig, run_study

    rng = np.random.default_rng(4)
    names = ["circle", "square", "stripe"]
    for c, name in enumerate(names):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(12):
            arr = np.clip(_rand(rng, 14, 11).astype(int) // 4 + 60 * c, 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "data" / name / f"{i}.png")
    cfg = {"name": "folder", "seed": 0, "device": "cpu",
           "dataset": {"name": "imagefolder", "root": str(tmp_path / "data"), "split": "test", "subset": 12,
                       "train_subset": 24, "options": {"size": 8, "channels": 1}},
           "models": [{"name": "m", "arch": "lenet5",
                       "train": {"method": "standard", "eps": 0.0, "epochs": 1, "batch_size": 16,
                                 "eval_subset": 6, "eval_steps": 1}}],
           "attacks": [{"name": "pgd", "eps": [0.0, 0.1], "steps": 1}],
           "layers": [{"module": "fc1"}],
           "mapper": [{"n_intervals": 3, "overlap": 0.3, "min_samples": 2}],
           "persistence": {"enabled": False}}
    for measure in ("separability", "stability"):  # other stages, not under test here: kept off for speed
        if measure in StudyConfig.__dataclass_fields__:
            cfg[measure] = {"enabled": False}
    run_study(StudyConfig.from_dict(cfg), out=tmp_path / "run", verbose=False)
    idx = json.loads((tmp_path / "run" / "index.json").read_text())
    assert idx["dataset"]["n_samples"] == 12 and idx["dataset"]["image_shape"] == [1, 8, 8]
    assert idx["dataset"]["class_names"] == names
    ref = load_dataset("imagefolder", "test", root=tmp_path / "data", size=8, channels=1).subset(12, seed=0)
    clean = np.load(tmp_path / "run" / idx["images"]["clean"])
    assert np.array_equal(clean[..., 0], (ref.x[:, 0] * 255).round().numpy().astype(np.uint8))


# --- subsets of npz and CIFAR read only the chosen rows, and are the same rows as before ------

@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_npz_subset_matches_full_load(tmp_path, compressed, dtype):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (300, 6, 5, 3), dtype=np.uint8)
    x = x if dtype == "uint8" else (x / 255).astype(np.float32)
    y = rng.integers(0, 4, 300)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "d.npz", x=x, y=y)
    full = load_dataset("npz", "test", root=tmp_path / "d.npz")
    sub = load_dataset("npz", "test", root=tmp_path / "d.npz", subset=37, seed=2)
    ref = full.subset(37, seed=2)
    assert torch.equal(sub.x, ref.x) and torch.equal(sub.y, ref.y) and np.array_equal(sub.indices, ref.indices)
    want = x[ref.indices].transpose(0, 3, 1, 2).astype(np.float32)
    np.testing.assert_allclose(sub.x.numpy(), want / 255 if dtype == "uint8" else want, rtol=0, atol=1e-7)


def test_npz_subset_errors(tmp_path):
    np.savez(tmp_path / "short.npz", x=np.zeros((5, 4, 4), np.uint8), y=np.arange(8) % 2)
    with pytest.raises(AdvtopoError, match="x has 5 rows, fewer than the labels"):
        load_dataset("npz", "test", root=tmp_path / "short.npz", subset=6)
    np.savez(tmp_path / "neg.npz", x=-np.ones((8, 4, 4), np.float32), y=np.arange(8) % 2)
    with pytest.raises(AdvtopoError, match=r"must be in \[0, 1\]"):
        load_dataset("npz", "test", root=tmp_path / "neg.npz", subset=4)


def _cifar_batch(path, n, rng):
    d = {b"labels": rng.integers(0, 10, n).tolist(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=2)


def test_cifar_subset_matches_full_load(tmp_path):
    rng = np.random.default_rng(6)
    for i in range(1, 6):
        _cifar_batch(tmp_path / f"data_batch_{i}", 30, rng)
    _cifar_batch(tmp_path / "test_batch", 40, rng)
    for split, n in (("train", 23), ("test", 11)):
        full = load_dataset("cifar10", split, root=tmp_path)
        sub = load_dataset("cifar10", split, root=tmp_path, subset=n, seed=4)
        ref = full.subset(n, seed=4)
        assert torch.equal(sub.x, ref.x) and torch.equal(sub.y, ref.y) and np.array_equal(sub.indices, ref.indices)
    # rows of batches 1..5 map to the right file: compare one chosen row with the raw bytes
    train_sub = load_dataset("cifar10", "train", root=tmp_path, subset=23, seed=4)
    row = int(train_sub.indices[-1])
    raw = pickle.load(open(tmp_path / f"data_batch_{row // 30 + 1}", "rb"), encoding="bytes")[b"data"][row % 30]
    assert np.array_equal((train_sub.x[-1] * 255).round().flatten().numpy().astype(np.uint8), raw)


def test_existing_subsets_unchanged():
    """Subset rows are a function of (labels, n, seed): the digits rows recorded before the
    lazy loaders existed (seed 3, n 20) are still chosen."""
    ds = load_dataset("digits", "test", subset=20, seed=3)
    full = load_dataset("digits", "test")
    rng = np.random.default_rng(3)  # the original algorithm, written out
    y = full.y.numpy()
    perm = rng.permutation(len(y))
    by_class = [perm[y[perm] == c] for c in np.unique(y)]
    order = [b[k] for k in range(max(map(len, by_class))) for b in by_class if k < len(b)]
    assert np.array_equal(ds.indices, full.indices[np.sort(order[:20])])


# --- any torch Dataset --------------------------------------------------------------------

class Shapes(torch.utils.data.Dataset):
    """A small real dataset: uint8 C x H x W tensors, a ``targets`` list, and a record of
    which items were read."""

    classes = ["dark", "mid", "light"]

    def __init__(self, n=30, kind="tensor", with_targets=True, normalise=False):
        rng = np.random.default_rng(7)
        self.labels_ = rng.integers(0, 3, n)
        self.images = [rng.integers(0, 80, (8, 8, 3)).astype(np.uint8) + 80 * int(c) for c in self.labels_]
        self.kind, self.normalise, self.read = kind, normalise, []
        if with_targets:
            self.targets = self.labels_.tolist()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        self.read.append(i)
        arr = self.images[i]
        if self.kind == "pil":
            img = Image.fromarray(arr)
        elif self.kind == "numpy":
            img = arr
        else:
            img = torch.from_numpy(arr).permute(2, 0, 1)
            if self.normalise:
                img = (img.float() / 255 - 0.5) / 0.25
        return img, int(self.labels_[i])


@pytest.mark.parametrize("kind", ["tensor", "pil", "numpy"])
def test_from_torch_dataset_full(kind):
    src = Shapes(kind=kind)
    ds = from_torch_dataset(src, name="shapes")
    assert ds.class_names == ["dark", "mid", "light"] and ds.name == "shapes"
    assert ds.x.shape == (30, 3, 8, 8) and ds.x.dtype == torch.float32
    want = np.stack(src.images).transpose(0, 3, 1, 2).astype(np.float32) / 255
    np.testing.assert_allclose(ds.x.numpy(), want, atol=1e-7)
    assert ds.y.tolist() == src.labels_.tolist()


def test_from_torch_dataset_subset_reads_only_chosen_items():
    src = Shapes(with_targets=True)
    ref = from_torch_dataset(Shapes()).subset(9, seed=1)
    sub = from_torch_dataset(src, subset=9, seed=1)
    assert sorted(src.read) == ref.indices.tolist()  # no other item was touched
    assert torch.equal(sub.x, ref.x) and torch.equal(sub.y, ref.y)
    # without targets every item is read once for its label, then the chosen ones
    bare = Shapes(with_targets=False)
    sub2 = from_torch_dataset(bare, subset=9, seed=1, class_names=["a", "b", "c"])
    assert torch.equal(sub2.x, ref.x) and len(bare.read) == 30 + 9 and sub2.class_names == ["a", "b", "c"]
    # torch's Subset keeps its parent's targets
    part = torch.utils.data.Subset(Shapes(), list(range(10, 30)))
    sub3 = from_torch_dataset(part, subset=6, seed=0)
    assert len(part.dataset.read) == 6 and sub3.class_names == ["dark", "mid", "light"]


def test_from_torch_dataset_errors():
    with pytest.raises(AdvtopoError, match=r"outside \[0, 1\].*remove Normalize"):
        from_torch_dataset(Shapes(normalise=True))
    with pytest.raises(AdvtopoError, match="labels has shape"):
        from_torch_dataset(Shapes(), labels=[0, 1])
    with pytest.raises(AdvtopoError, match="differ from the labels its items return"):
        from_torch_dataset(Shapes(), labels=[0] * 30)
    with pytest.raises(AdvtopoError, match="map-style"):
        from_torch_dataset(iter([]))


def test_registry_has_imagefolder():
    assert "imagefolder" in DATASETS.names()


def test_cli_lists_imagefolder_options(capsys):
    from advtopo.cli import main

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    line = out[out.index("imagefolder"):].splitlines()
    assert any("options: size=None, channels=3" in ln for ln in line[:4])


def test_study_config_rejects_unknown_dataset_option(tmp_path):
    from advtopo.study import StudyConfig

    d = {"name": "x", "dataset": {"name": "imagefolder", "root": str(tmp_path), "options": {"size": 32, "chanels": 1}},
         "models": [{"arch": "lenet5"}]}
    with pytest.raises(AdvtopoError, match=r"no option 'chanels' \(did you mean 'channels'\?\)"):
        StudyConfig.from_dict(d).validate()
