"""Image folders in the usual class-per-subfolder layout (torchvision's ``ImageFolder``).

::

    root/<class_name>/**/*.png|jpg|jpeg|bmp|webp|ppm|pgm|tif|tiff      (one folder for every split)
    root/train/<class_name>/...  and  root/test/<class_name>/...        (or root/val/ for test)

Classes are the subfolder names sorted as strings, files are listed in the same order as
torchvision's ``ImageFolder.samples`` (``sorted(os.walk(...))``, then sorted file names), so
``ImageDataset.indices`` index that list. The labels come from the folder names alone, so a
subset is chosen before any image is opened and only its files are decoded.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from advtopo.data.datasets import DATASETS, SOURCES, LazyDataset
from advtopo.errors import AdvtopoError

# torchvision's IMG_EXTENSIONS, compared case-insensitively
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT = ("root/<class_name>/<image>.png|jpg|jpeg|bmp|webp (one folder per class), "
          "optionally under root/train/ and root/test/ (or root/val/)")

SOURCES["imagefolder"] = ("your images: root/<class>/*.png|jpg|... (torchvision ImageFolder layout; "
                          "train/ and test/ or val/ subfolders optional); resized and centre-cropped with Pillow")


def _split_dir(root: Path, split: str) -> tuple[Path, list[Path]]:
    """The folder of ``split`` and every split folder (whose class folders are united)."""
    test_dir = root / "test" if (root / "test").is_dir() else root / "val"
    if (root / "train").is_dir() and test_dir.is_dir():
        return (root / "train" if split == "train" else test_dir), [root / "train", test_dir]
    return root, [root]


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def list_image_folder(root: str | os.PathLike[str], split: str = "test") -> tuple[list[Path], np.ndarray, list[str]]:
    """The image files of ``split``, their labels and the class names, without opening an image.

    Why separate: the labels alone decide a subset, so only the chosen files are ever read.
    With ``train/`` and ``test/`` (or ``val/``) subfolders the class list is the union over
    both, so a class index means the same in either split even if one lacks that class.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise AdvtopoError(f"image folder {root} does not exist; expected the layout {LAYOUT}")
    folder, split_dirs = _split_dir(root, split)
    classes = sorted({c for d in split_dirs for c in _class_dirs(d)})
    if not classes:
        raise AdvtopoError(f"image folder {folder} has no class folders; expected the layout {LAYOUT}")
    files: list[Path] = []
    labels: list[int] = []
    present = set(_class_dirs(folder))
    for label, cls in enumerate(classes):
        if cls not in present:
            continue  # a class absent from this split (split layout only)
        n_before = len(files)
        for dirpath, _, fnames in sorted(os.walk(folder / cls, followlinks=True)):
            for fname in sorted(fnames):
                if fname.lower().endswith(IMG_EXTENSIONS):
                    files.append(Path(dirpath) / fname)
                    labels.append(label)
        if len(files) == n_before and len(split_dirs) == 1:
            raise AdvtopoError(f"class folder {folder / cls} holds no images ({', '.join(IMG_EXTENSIONS)}); "
                               f"remove it or add images (expected the layout {LAYOUT})")
    if not files:
        raise AdvtopoError(f"image folder {folder} holds no images in its class folders "
                           f"({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}); "
                           f"expected the layout {LAYOUT}")
    return files, np.asarray(labels, dtype=np.int64), classes


def _size_hw(size: int | list[int] | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif isinstance(size, (list, tuple)) and len(size) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size):
        hw = (int(size[0]), int(size[1]))
    else:
        raise AdvtopoError(f"imagefolder size={size!r} must be an int or [height, width]")
    if min(hw) < 1:
        raise AdvtopoError(f"imagefolder size={size!r} must be positive")
    return hw


def resize_center_crop(img, size: tuple[int, int]):
    """Scale a PIL image so it covers ``size`` (H, W), keeping its aspect, then crop the centre.

    For a square ``size`` this is torchvision's ``Resize(s)`` + ``CenterCrop(s)`` on a PIL
    image: the shorter side becomes ``s``, the longer ``floor(s * long / short)``, bilinear
    (Pillow's, antialiased), crop offsets ``round((new - s) / 2)``.
    """
    from PIL import Image

    th, tw = size
    w, h = img.size
    if th * w >= tw * h:  # height is the binding side
        nh, nw = th, (th * w) // h
    else:
        nh, nw = (tw * h) // w, tw
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
    if (top, left, th, tw) != (0, 0, nh, nw):
        img = img.crop((left, top, left + tw, top + th))
    return img


def _decode(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert(mode)  # decodes; RGBA/P/LA/I;16 -> RGB or L as torchvision's loader
            if size is not None:
                im = resize_center_crop(im, size)
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # Pillow raises many types for bad files (OSError, SyntaxError, ...)
        raise AdvtopoError(f"image {path} cannot be read ({type(exc).__name__}: {exc}); "
                           "fix or remove the file") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_images(files: list[Path], channels: int = 3, size: int | list[int] | None = None,
                workers: int | None = None) -> torch.Tensor:
    """Decode ``files`` to float32 N x C x H x W in [0, 1] (uint8 / 255), in parallel threads.

    Without ``size`` every image must already have the same height and width.
    """
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise AdvtopoError(f"imagefolder channels={channels!r} must be 1 (grey) or 3 (RGB)")
    hw = _size_hw(size)
    workers = workers or min(8, os.cpu_count() or 1)
    if workers > 1 and len(files) > 16:
        with ThreadPoolExecutor(workers) as pool:  # Pillow releases the GIL while decoding
            arrays = list(pool.map(lambda f: _decode(f, mode, hw), files))
    else:
        arrays = [_decode(f, mode, hw) for f in files]
    if not arrays:
        return torch.zeros((0, channels, *(hw or (0, 0))), dtype=torch.float32)
    shape = arrays[0].shape
    for f, a in zip(files, arrays):
        if a.shape != shape:
            raise AdvtopoError(f"images differ in size: {files[0]} is {shape[0]}x{shape[1]}, {f} is "
                               f"{a.shape[0]}x{a.shape[1]}; pass size= (e.g. options = {{ size = 32 }}) "
                               "to resize and centre-crop them all")
    x = np.stack(arrays).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).div_(255.0)


@DATASETS.register("imagefolder", help="your images in class-per-folder layout (root=folder; options size, channels)")
def imagefolder(split: str = "train", root=None, size: int | list[int] | None = None,
                channels: int = 3) -> LazyDataset:
    """Images in ``root/<class>/`` (torchvision ImageFolder layout), classes from folder names.

    ``size``: an int or [height, width]; each image is scaled so it covers that size and
    centre-cropped (torchvision ``Resize`` + ``CenterCrop``); without it all images must
    share one size. ``channels``: 3 (RGB) or 1 (grey, Pillow's "L"). If ``root`` has
    ``train/`` and ``test/`` (or ``val/``) subfolders they are the splits; otherwise the
    same folder serves every split (train and test are then the same images).
    """
    if root is None:
        raise AdvtopoError(f"dataset 'imagefolder' needs root= a folder in the layout {LAYOUT}")
    if channels not in (1, 3):
        raise AdvtopoError(f"imagefolder channels={channels!r} must be 1 (grey) or 3 (RGB)")
    _size_hw(size)
    files, labels, classes = list_image_folder(root, split)

    def read(rows: np.ndarray) -> torch.Tensor:
        return read_images([files[i] for i in rows], channels=channels, size=size)

    return LazyDataset(Path(root).expanduser().name or "imagefolder", split, labels, read, classes)
