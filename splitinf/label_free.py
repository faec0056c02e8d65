"""Label-free training images: the VOC2007 trainval photos and frames of the shared videos — never COCO,
which is the evaluation set. Random crops, scales and flips make many varied inputs of a few thousand photos;
mosaics of several crops make the scenes a detector meets at deployment: small objects, sharp detail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from splitinf.data import CAR_VIDEO, PERSON_VIDEO, data_root, resolve, video_frames

VOC = "voc2007-trainval-roboflow"
VOC_LISTS = ("subset_person.txt", "subset_nonperson.txt")


@dataclass(frozen=True)
class Source:
    """One training picture: a file path, or a decoded video frame held in memory."""

    name: str
    path: Path | None = None
    frame: np.ndarray | None = None  # RGB HWC uint8


def voc_photos(limit: int | None = None) -> list[Source]:
    """The VOC2007 trainval photos listed by the shared data's subset files (2,098 with people, 742 without)."""
    folder = data_root() / VOC
    sources = []
    for listing in VOC_LISTS:
        for line in (folder / listing).read_text().splitlines():
            voc_id, relative = line.split(maxsplit=1)
            sources.append(Source(f"voc-{voc_id}", path=folder / relative))
    return sources[:limit] if limit else sources


def video_sources(step: int = 4, videos: tuple[str, ...] = (PERSON_VIDEO, CAR_VIDEO)) -> list[Source]:
    """Every ``step``-th frame of the shared videos, decoded once and kept in memory."""
    sources = []
    for video in videos:
        for i, frame in enumerate(video_frames(resolve(video), step=step)):
            sources.append(Source(f"{Path(video).stem}-{i * step}", frame=frame.permute(1, 2, 0).numpy()))
    return sources


def load_rgb(source: Source) -> np.ndarray:
    if source.frame is not None:
        return source.frame
    bgr = cv2.imread(str(source.path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"training image {source.path} cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def random_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                scale: tuple[float, float] = (0.25, 1.0), ratio: tuple[float, float] = (0.75, 1.333)) -> Tensor:
    """A random-resized crop (area share in ``scale``, aspect in ``ratio``), random flip → uint8 [3, H, W]."""
    height, width = image.shape[:2]
    for _ in range(10):
        area = height * width * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        w, h = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            break
    else:
        top, left, h, w = 0, 0, height, width
    crop = image[top : top + h, left : left + w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    resized = cv2.resize(np.ascontiguousarray(crop), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(resized).permute(2, 0, 1).contiguous()


def random_mosaic(images: Sequence[np.ndarray], size: tuple[int, int], rng: np.random.Generator,
                  grid: int = 2) -> Tensor:
    """``grid``² random crops (one per image, row-major) tiled into one uint8 [3, H, W] picture of ``size``.

    A 500×375 VOC photo cropped and scaled to 300×300 is enlarged or barely shrunk, so its objects are big and
    its detail soft; the COCO images the detector is evaluated on (640×480) are shrunk about 2×. Each tile
    here is a crop shrunk 1.7–3.3× (the same cv2 bilinear as ``random_crop``), which brings small objects and
    fine, aliased detail into training — where a bottleneck trained on single crops loses most.
    """
    if len(images) != grid * grid:
        raise ValueError(f"a {grid}×{grid} mosaic needs {grid * grid} images, got {len(images)}")
    tile = (size[0] // grid, size[1] // grid)
    tiles = [random_crop(image, tile, rng) for image in images]
    rows = [torch.cat(tiles[row * grid : (row + 1) * grid], dim=2) for row in range(grid)]
    return torch.cat(rows, dim=1)
