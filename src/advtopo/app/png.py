"""Minimal PNG encoder (zlib + struct) for uint8 images: no imaging library needed."""
from __future__ import annotations

import struct
import zlib

import numpy as np


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(img: np.ndarray) -> bytes:
    """Encode ``img`` (uint8 HxW, HxWx1, HxWx3 or HxWx4; or CxHxW with C in 1/3) as PNG."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))  # CHW -> HWC
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        color_type, channels = 0, 1
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        color_type, channels = (2, 3) if a.shape[2] == 3 else (6, 4)
    else:
        raise ValueError(f"cannot encode an image of shape {a.shape} as PNG")
    h, w = a.shape[:2]
    raw = np.ascontiguousarray(a).reshape(h, w * channels)
    rows = np.concatenate([np.zeros((h, 1), np.uint8), raw], axis=1)  # filter type 0 per row
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b""))
