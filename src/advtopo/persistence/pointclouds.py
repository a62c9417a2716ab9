"""Layer point clouds: the layer-topology paper's top-L2 summary of a feature map."""
from __future__ import annotations

from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError


def top_l2_point_cloud(feature_map: Any) -> np.ndarray:
    """[N, C, H, W] (or [N, C, L]) -> [N, C]: per sample, the channel vector at the spatial
    position with the largest L2 norm. [N, C] passes through unchanged.

    One point per sample keeps clouds of every layer comparable (N x channels) without the
    N*H*W blow-up of using every position. Ties go to the first position (row-major).
    """
    if hasattr(feature_map, "detach"):
        feature_map = feature_map.detach().cpu().numpy()
    A = np.asarray(feature_map)
    if A.ndim == 2:
        return A
    if A.ndim not in (3, 4):
        raise AdvtopoError(f"feature_map must be [N, C], [N, C, L] or [N, C, H, W], got shape {A.shape}")
    N, C = A.shape[:2]
    flat = A.reshape(N, C, -1)
    best = np.einsum("ncl,ncl->nl", flat, flat).argmax(axis=1)
    return flat[np.arange(N), :, best]
