"""Any map-style ``torch.utils.data.Dataset`` as an :class:`ImageDataset`.

Items are ``(image, label)`` with the image a tensor (C x H x W or H x W), a PIL image or
a numpy array (H x W x C, H x W or C x H x W), uint8 (0..255) or float in [0, 1].
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from advtopo.data.datasets import ImageDataset, subset_indices
from advtopo.errors import AdvtopoError

_NORMALIZE_HINT = ("advtopo works in [0, 1] pixel space (attacks clip there): remove Normalize from the "
                   "dataset's transform and give the model its mean and std instead (mean = [...], std = [...] "
                   "on the model), so normalisation happens inside the model")


def _label(value: Any, i: int) -> int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise AdvtopoError(f"item {i}: the label must be one integer, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise AdvtopoError(f"item {i}: the label must be an integer class index, got {value!r}")
    return int(value)


def _image(img: Any, i: int) -> torch.Tensor:
    """One image -> float32 C x H x W in [0, 1]."""
    if hasattr(img, "mode") and hasattr(img, "convert") and hasattr(img, "size"):  # a PIL image
        if img.mode not in ("L", "RGB"):
            img = img.convert("L" if img.mode in ("1", "I", "I;16", "F", "LA") else "RGB")
        arr = np.asarray(img)
        t = torch.from_numpy(np.array(arr[:, :, None] if arr.ndim == 2 else arr)).permute(2, 0, 1)
    elif isinstance(img, np.ndarray):
        arr = img
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3 and arr.shape[-1] in (1, 3) and arr.shape[0] not in (1, 3):
            arr = arr.transpose(2, 0, 1)  # H x W x C, as from PIL / cv2
        t = torch.from_numpy(np.ascontiguousarray(arr))
    elif isinstance(img, torch.Tensor):
        t = img.detach().cpu()
        if t.ndim == 2:
            t = t[None]
    else:
        raise AdvtopoError(f"item {i}: the image must be a torch tensor, a PIL image or a numpy array, "
                           f"got {type(img).__name__}")
    if t.ndim != 3:
        raise AdvtopoError(f"item {i}: the image must be C x H x W (or H x W), got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.to(torch.float32).div_(255.0)
    if not t.is_floating_point():
        raise AdvtopoError(f"item {i}: image dtype {t.dtype} is not supported; use uint8 (0..255) or float in [0, 1]")
    t = t.to(torch.float32)
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise AdvtopoError(f"item {i}: image values lie in [{lo:.3g}, {hi:.3g}], outside [0, 1]; {_NORMALIZE_HINT}")
    return t


def _known_labels(ds: Any) -> np.ndarray | None:
    """The labels without loading images: ``targets`` / ``labels`` (torchvision datasets),
    through ``torch.utils.data.Subset`` too; None when the dataset has neither."""
    if isinstance(ds, torch.utils.data.Subset):
        parent = _known_labels(ds.dataset)
        return None if parent is None else parent[np.asarray(ds.indices, dtype=np.int64)]
    for attr in ("targets", "labels"):
        value = getattr(ds, attr, None)
        if value is None or callable(value):
            continue
        try:
            arr = np.asarray(value.cpu() if isinstance(value, torch.Tensor) else value)
        except (TypeError, ValueError):
            continue
        if arr.ndim == 1 and len(arr) == len(ds) and np.issubdtype(arr.dtype, np.integer):
            return arr.astype(np.int64)
    return None


def from_torch_dataset(ds: Any, class_names: Sequence[str] | None = None, name: str = "custom",
                       subset: int | None = None, seed: int = 0, split: str = "test",
                       labels: Sequence[int] | np.ndarray | None = None) -> ImageDataset:
    """Read a map-style dataset into an :class:`ImageDataset` (float32 NCHW in [0, 1]).

    With ``subset``, the rows are the stratified seeded subset :meth:`ImageDataset.subset`
    would choose, and only those items are read, provided the labels are known without
    reading items: pass ``labels=`` or give the dataset a ``targets`` / ``labels`` attribute
    (torchvision's datasets have one). Otherwise every item is read once for its label
    (images dropped) and the chosen ones read again. ``class_names`` default to the
    dataset's ``classes`` attribute, else "0", "1", ...
    """
    if not hasattr(ds, "__getitem__") or not hasattr(ds, "__len__"):
        raise AdvtopoError(f"from_torch_dataset needs a map-style dataset (with __len__ and __getitem__), "
                           f"got {type(ds).__name__}; an IterableDataset cannot be indexed")
    n = len(ds)
    if n == 0:
        raise AdvtopoError(f"dataset {name!r} is empty")
    if subset is not None and subset < 1:
        raise AdvtopoError(f"subset size n={subset} must be >= 1")
    y_all = np.asarray(labels, dtype=np.int64) if labels is not None else _known_labels(ds)
    if y_all is not None and y_all.shape != (n,):
        raise AdvtopoError(f"labels has shape {y_all.shape}, expected ({n},) (one per item of the dataset)")
    if y_all is None and subset is not None and subset < n:
        y_all = np.asarray([_label(ds[i][1], i) for i in range(n)], dtype=np.int64)
    rows = np.arange(n) if subset is None or subset >= n else subset_indices(y_all, subset, seed=seed)

    images, ys = [], []
    for i in rows:
        item = ds[int(i)]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise AdvtopoError(f"item {int(i)} of dataset {name!r} must be (image, label), got {type(item).__name__}")
        img = _image(item[0], int(i))
        if images and img.shape != images[0].shape:
            raise AdvtopoError(f"item {int(i)}: image shape {tuple(img.shape)} differs from item {int(rows[0])}'s "
                               f"{tuple(images[0].shape)}; resize in the dataset's transform (all images one size)")
        images.append(img)
        ys.append(_label(item[1], int(i)))
    y = torch.tensor(ys, dtype=torch.int64)
    if y_all is not None and not np.array_equal(y.numpy(), y_all[rows]):
        raise AdvtopoError(f"dataset {name!r}: the labels given (labels= or its targets attribute) differ from "
                           "the labels its items return")
    if class_names is None:
        base = ds.dataset if isinstance(ds, torch.utils.data.Subset) else ds
        classes = getattr(base, "classes", None)
        if isinstance(classes, (list, tuple)) and classes:
            class_names = [str(c) for c in classes]
        else:
            top = int(max(y_all.max() if y_all is not None else 0, y.max()))
            class_names = [str(c) for c in range(top + 1)]
    class_names = [str(c) for c in class_names]
    if int(y.min()) < 0 or int(y.max()) >= len(class_names):
        raise AdvtopoError(f"dataset {name!r}: labels range over [{int(y.min())}, {int(y.max())}] but there are "
                           f"{len(class_names)} class names")
    return ImageDataset(torch.stack(images), y, class_names, name, split, np.asarray(rows, dtype=np.int64))
