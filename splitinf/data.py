"""Real images and video frames from the shared offline data, decoded with OpenCV into uint8 RGB tensors: the
torch side of :mod:`splitinf.images` (which finds the data folder and holds the torch-free frame functions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from splitinf import images
from splitinf.images import DataError, data_root, jpeg_bytes, resolve

__all__ = ["DataError", "data_root", "jpeg_bytes", "resolve"]  # with the torch functions below

VAL_UNION = "coco-union/instances_val2017_union.json"
ALL_UNION = "coco-union/instances_all_union.json"
PERSON_VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"
CAR_VIDEO = "intel-sample-videos/car-detection.mp4"


def bgr_to_tensor(frame: np.ndarray) -> Tensor:
    """An OpenCV BGR uint8 frame [H, W, 3] → an RGB uint8 tensor [3, H, W]."""
    return torch.from_numpy(images.bgr_to_rgb(frame))


def read_image(path: str | Path) -> Tensor:
    """Decode an image file into a uint8 RGB tensor [3, H, W]; one clear error if it cannot be."""
    path = resolve(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist")
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise DataError(f"image {path} cannot be decoded (expected a JPEG/PNG/BMP/... file OpenCV can read)")
    return bgr_to_tensor(frame)


@dataclass(frozen=True)
class CocoImage:
    id: int
    path: Path
    height: int
    width: int


def coco_images(annotation_file: str | Path, limit: int | None = None) -> list[CocoImage]:
    """The images of a COCO JSON, in file order; ``file_name`` is relative to the shared data folder."""
    path = resolve(annotation_file)
    with open(path) as f:
        data = json.load(f)
    root = data_root()
    images = [
        CocoImage(int(im["id"]), root / im["file_name"], int(im["height"]), int(im["width"]))
        for im in data["images"]
    ]
    return images[:limit] if limit is not None else images


def video_frames(path: str | Path, max_frames: int | None = None, step: int = 1) -> Iterator[Tensor]:
    """Decode frames of a video file (every ``step``-th) as uint8 RGB tensors."""
    path = resolve(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"video {path} cannot be opened (expected a file OpenCV can decode)")
    try:
        index = produced = 0
        while max_frames is None or produced < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0:
                produced += 1
                yield bgr_to_tensor(frame)
            index += 1
    finally:
        capture.release()


def resize_rgb(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a uint8 RGB tensor to (height, width) with OpenCV's area filter (what a camera would do)."""
    return torch.from_numpy(images.resize_rgb(image, size))


def decode_jpeg(data: bytes) -> Tensor:
    """Decode JPEG bytes into a uint8 RGB tensor [3, H, W]."""
    return torch.from_numpy(images.decode_image(data))
