"""Real images and video frames from the shared offline data, decoded with OpenCV into uint8 RGB tensors.

The data lives outside the repository (per-image licences): ``$SPLITINF_DATA`` if set, else
``../shared/data`` next to the working directory (a checkout beside the shared data, as in this project).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

VAL_UNION = "coco-union/instances_val2017_union.json"
ALL_UNION = "coco-union/instances_all_union.json"
PERSON_VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"
CAR_VIDEO = "intel-sample-videos/car-detection.mp4"


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


def bgr_to_tensor(frame: np.ndarray) -> Tensor:
    """An OpenCV BGR uint8 frame [H, W, 3] → an RGB uint8 tensor [3, H, W]."""
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


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
    array = image.permute(1, 2, 0).contiguous().numpy()
    small = cv2.resize(array, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(small).permute(2, 0, 1).contiguous()


def jpeg_bytes(image: Tensor, quality: int) -> bytes:
    """JPEG-encode a uint8 RGB tensor [3, H, W] with OpenCV at ``quality``."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    bgr = cv2.cvtColor(image.permute(1, 2, 0).contiguous().numpy(), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError("JPEG encoding failed")
    return buffer.tobytes()


def decode_jpeg(data: bytes) -> Tensor:
    """Decode JPEG bytes into a uint8 RGB tensor [3, H, W]."""
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise DataError(f"{len(data)} bytes are not a decodable image")
    return bgr_to_tensor(frame)
