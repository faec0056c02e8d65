"""The interface every zoo detector implements so that it can be cut into a head and a tail.

A detector is seen as four stages::

    preprocess ─► trunk[0] ─► trunk[1] ─► … ─► trunk[n-1] ─► neck ─► detect
    (device)      └──────────── a split cuts here, between two trunk blocks ───┘   (edge)

* ``preprocess`` turns uint8 RGB images into the network input batch and records each image's
  :class:`Geometry`;
* ``trunk`` is a chain of blocks whose only consumer is the next block — exactly the places where the
  network can be cut with a single tensor crossing the link;
* ``neck`` turns the trunk's output into the feature maps the detection heads consume (the maps that
  generalized head-network distillation matches);
* ``detect`` runs the heads and the postprocess back to original-image pixel coordinates.

``forward`` is the unsplit reference. For the torchvision models it is torchvision's own forward, so that
"head ∘ tail equals the unsplit model" is checked against code we did not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

Detections = list[dict[str, Tensor]]


class Geometry(NamedTuple):
    """Plain sizes an image went through, in (height, width): all the tail needs besides features."""

    original: tuple[int, int]
    resized: tuple[int, int]
    input: tuple[int, int]  # the network input after batching/padding (anchors are laid out on it)


def scale_boxes(detections: dict[str, Tensor], from_size: tuple[int, int], to_size: tuple[int, int]
                ) -> dict[str, Tensor]:
    """Detections found on an image of ``from_size`` (height, width) → pixels of the same image at ``to_size``
    (a JPEG sent at reduced size → the device's original frame)."""
    if tuple(from_size) == tuple(to_size):
        return detections
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return {**detections, "boxes": detections["boxes"] * detections["boxes"].new_tensor([sx, sy, sx, sy])}


@dataclass(frozen=True)
class SplitPoint:
    """A named place to cut a detector: after ``trunk[index]``, with features at ``stride``."""

    key: str
    index: int
    stride: int
    description: str


class SplittableDetector(nn.Module):
    """Base class of the zoo: a detector that knows how to be cut."""

    name: str = ""
    input_size: tuple[int, int] = (320, 320)  # nominal (height, width) for size/compute tables
    split_points: tuple[SplitPoint, ...] = ()
    trunk: nn.Sequential

    def preprocess(self, images: Sequence[Tensor]) -> tuple[Tensor, list[Geometry]]:
        """uint8 RGB images of shape [3, H, W] → (input batch, per-image geometry)."""
        raise NotImplementedError

    def neck(self, x: Tensor) -> list[Tensor]:
        """Trunk output → the feature maps the detection heads consume."""
        raise NotImplementedError

    def detect(self, maps: list[Tensor], geometries: Sequence[Geometry]) -> Detections:
        """Feature maps → detections in original-image pixels (``boxes`` x1y1x2y2, ``scores``, ``labels``)."""
        raise NotImplementedError

    def anchor_outputs(self, maps: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Feature maps → per-anchor (foreground class logits [N, A, K], scored by a sigmoid each; box
        regression [N, A, 4]) before decoding and NMS: what output distillation compares."""
        raise NotImplementedError(f"{self.name} does not expose per-anchor sigmoid outputs")

    def forward(self, images: Sequence[Tensor]) -> Detections:
        """The unsplit model."""
        raise NotImplementedError

    def trunk_channels(self) -> list[int]:
        """Output channels of every trunk block (at the nominal input size)."""
        height, width = self.input_size
        x = torch.zeros((1, 3, height, width))
        channels = []
        with torch.inference_mode():
            for block in self.trunk:
                x = block(x)
                channels.append(int(x.shape[1]))
        return channels

    def set_score_threshold(self, threshold: float) -> None:
        """Keep detections scoring above ``threshold`` (evaluation wants a low one, applications a high one)."""
        raise NotImplementedError

    def split_point(self, key: str) -> SplitPoint:
        for point in self.split_points:
            if point.key == key:
                return point
        known = ", ".join(p.key for p in self.split_points)
        raise ValueError(f"unknown split point {key!r} for {self.name}; known split points: {known}")


def check_images(images: Sequence[Tensor]) -> None:
    """Refuse anything but a non-empty list of uint8 [3, H, W] tensors, naming what was given."""
    if len(images) == 0:
        raise ValueError("expected at least one image, got an empty batch")
    for i, image in enumerate(images):
        if not isinstance(image, Tensor) or image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
            got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {tuple(getattr(image, 'shape', ()))}"
            raise ValueError(f"image {i}: expected a uint8 RGB tensor of shape [3, H, W], got {got.strip()}")


def common_input_size(geometries: Sequence[Geometry]) -> tuple[int, int]:
    """The one network input size shared by a batch (features of different sizes cannot be stacked)."""
    sizes = {g.input for g in geometries}
    if len(sizes) != 1:
        raise ValueError(f"a batch must share one network input size, got {sorted(sizes)}")
    return next(iter(sizes))
