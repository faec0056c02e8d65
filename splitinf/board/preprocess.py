"""The detector's input from a frame, in NumPy: what the exported graphs take. The same float32 arithmetic as
the torch side (:func:`splitinf.models.tf_compat.resize_bilinear_legacy`, then [-1, 1]), so that the fp32
export sees the inputs the eager model sees."""

from __future__ import annotations

from typing import Any

import numpy as np


def _taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF1's legacy bilinear taps: ``src = dst · in / out`` (no half-pixel centres), float32 as in TF's kernel."""
    src = np.arange(out_size, dtype=np.float32) * np.float32(in_size / out_size)
    low = np.floor(src)
    high = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return np.clip(low.astype(np.int64), 0, in_size - 1), high, (src - low).astype(np.float32)


def resize_bilinear_legacy(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 [C, H, W] → [C, *size] with TF1's ``resize_bilinear(align_corners=False)``."""
    if image.shape[-2:] == tuple(size):
        return image
    y0, y1, ly = _taps(image.shape[-2], size[0])
    x0, x1, lx = _taps(image.shape[-1], size[1])
    top, bottom = image[:, y0, :], image[:, y1, :]
    top = top[..., x0] + (top[..., x1] - top[..., x0]) * lx
    bottom = bottom[..., x0] + (bottom[..., x1] - bottom[..., x0]) * lx
    return top + (bottom - top) * ly[:, None]


def model_input(image: Any, size: tuple[int, int]) -> np.ndarray:
    """A uint8 RGB frame [3, H, W] → the network input [1, 3, *size] in [-1, 1] (SSDLite's preprocessing)."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"expected a uint8 RGB frame of shape [3, H, W], got {array.dtype} {array.shape}")
    resized = resize_bilinear_legacy(array.astype(np.float32), size)
    return (resized * np.float32(2.0 / 255.0) - np.float32(1.0))[None]
