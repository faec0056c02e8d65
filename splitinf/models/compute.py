"""Compute and size accounting of detectors and their split points (multiply-adds via PyTorch's FLOP counter)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from splitinf.models.base import SplittableDetector


def count_macs(fn: Callable[[], object]) -> int:
    """Multiply-accumulates of the convolutions and matrix products ``fn`` runs (FLOPs / 2)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def parameter_count(detector: SplittableDetector) -> int:
    return sum(p.numel() for p in detector.parameters())


@dataclass(frozen=True)
class SplitProfile:
    key: str
    stride: int
    shape: tuple[int, ...]
    float32_bytes: int
    int8_bytes: int
    head_macs: int
    total_macs: int

    @property
    def head_share(self) -> float:
        return self.head_macs / self.total_macs if self.total_macs else 0.0


def profile_splits(detector: SplittableDetector, image: Tensor) -> list[SplitProfile]:
    """Feature shape, raw sizes and head compute share of every split point, for one uint8 RGB image.

    Preprocessing (resize, normalise) is excluded from both counts: it has no multiply-adds of note.
    """
    with torch.inference_mode():
        x, geometries = detector.preprocess([image])
    total = count_macs(lambda: detector.detect(detector.neck(detector.trunk(x)), geometries))
    profiles = []
    for point in detector.split_points:
        head_layers = detector.trunk[: point.index + 1]
        with torch.inference_mode():
            features = head_layers(x)
        profiles.append(
            SplitProfile(
                key=point.key,
                stride=point.stride,
                shape=tuple(features.shape[1:]),
                float32_bytes=features.numel() * 4,
                int8_bytes=features.numel(),
                head_macs=count_macs(lambda layers=head_layers: layers(x)),
                total_macs=total,
            )
        )
    return profiles


def default_input_macs(detector: SplittableDetector) -> int:
    """Multiply-adds of the whole model on one image of its nominal input size."""
    height, width = detector.input_size
    image = torch.zeros((3, height, width), dtype=torch.uint8)
    with torch.inference_mode():
        x, geometries = detector.preprocess([image])
    return count_macs(lambda: detector.detect(detector.neck(detector.trunk(x)), geometries))
