"""Frames as a device holds them, without torch: uint8 RGB arrays [3, H, W] read, resized and JPEG-encoded
with OpenCV, and the shared data folder they come from. A board imports this; :mod:`splitinf.data` wraps it
for the torch side (a CPU tensor is accepted wherever an array is: NumPy reads it without a copy).

The data lives outside the repository (per-image licences): ``$SPLITINF_DATA`` if set, else
``../shared/data`` next to the working directory (a checkout beside the shared data, as in this project).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np


class DataError(ValueError):
    """Data that is missing or cannot be decoded."""


def data_root() -> Path:
    """The shared data folder; a clear error naming the variable and what was looked for."""
    env = os.environ.get("SPLITINF_DATA")
    candidate = Path(env) if env else Path.cwd().parent / "shared" / "data"
    if candidate.is_dir():
        return candidate
    where = f"SPLITINF_DATA={env}" if env else f"SPLITINF_DATA is not set and {candidate} does not exist"
    raise DataError(f"shared data folder not found ({where}): set SPLITINF_DATA to the folder holding "
                    "coco-union/, intel-sample-videos/, traces/ and voc2007-trainval-roboflow/")


def resolve(path: str | Path) -> Path:
    """A path as given if it exists, else relative to the shared data folder."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    return data_root() / path


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """An OpenCV BGR uint8 frame [H, W, 3] → an RGB uint8 array [3, H, W]."""
    return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))


def hwc(image: Any) -> np.ndarray:
    """An RGB image [3, H, W] (array or CPU tensor) → a contiguous [H, W, 3] array, as OpenCV takes it."""
    return np.ascontiguousarray(np.asarray(image).transpose(1, 2, 0))


def resize_rgb(image: Any, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB image [3, H, W] to (height, width) with OpenCV's area filter (what a camera would do)."""
    small = cv2.resize(hwc(image), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small.transpose(2, 0, 1))


def jpeg_bytes(image: Any, quality: int) -> bytes:
    """JPEG-encode an RGB image [3, H, W] with OpenCV at ``quality``."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(hwc(image), cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError("JPEG encoding failed")
    return buffer.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    """Decode JPEG (or PNG, …) bytes into an RGB uint8 array [3, H, W]."""
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise DataError(f"{len(data)} bytes are not a decodable image")
    return bgr_to_rgb(frame)
