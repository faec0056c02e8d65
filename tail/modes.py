"""Each offload mode's edge half, written once (the modes: :mod:`splitinf.modes`): what the edge does with a
payload. The edge runtime, the evaluation and the cost measurement all call these.

A half decodes one payload (raising :class:`~splitinf.bottleneck.CodecError` or
:class:`~splitinf.data.DataError` for one it cannot read) and runs a batch of decoded payloads, returning
torchvision-style detections in pixels of each device's original frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from splitinf.bottleneck import Codec, CodecError
from splitinf.tail.split_tail import Tail
from torch import Tensor

from splitinf.data import decode_jpeg
from splitinf.models import Detections, Geometry, SplittableDetector, scale_boxes
from splitinf.modes import JPEG, SPLIT


class JpegDecoder:
    """``jpeg``: decode the JPEG, run the whole detector, boxes back to the original frame's pixels."""

    name = JPEG

    def __init__(self, detector: SplittableDetector, device: torch.device | str = "cpu") -> None:
        self.detector, self.device = detector, torch.device(device)

    def decode(self, data: bytes, codec: str) -> Tensor:
        return decode_jpeg(data)

    def batch_key(self, decoded: Tensor) -> tuple:
        return (JPEG,)  # the detector takes images of any size in one batch

    def __call__(self, decoded: Sequence[Tensor], geometries: Sequence[Geometry]) -> Detections:
        detections = self.detector([image.to(self.device) for image in decoded])
        return [scale_boxes(d, g.resized, g.original) for d, g in zip(detections, geometries)]


class SplitDecoder:
    """``split``: decode the codec's bitstream, run the tail (the bottleneck's decoder and the rest)."""

    name = SPLIT

    def __init__(self, tail: Tail, codec: Codec, device: torch.device | str = "cpu") -> None:
        self.tail, self.codec, self.device = tail, codec, torch.device(device)

    def decode(self, data: bytes, codec: str) -> Tensor:
        if codec != self.codec.name:
            raise CodecError(f"frame coded with {codec!r}, this edge decodes {self.codec.name!r}")
        return self.codec.decompress(data)

    def batch_key(self, decoded: Tensor) -> tuple:
        return (SPLIT, tuple(decoded.shape))  # features are stacked: one shape per batch

    def __call__(self, decoded: Sequence[Tensor], geometries: Sequence[Geometry]) -> Detections:
        return self.tail(torch.stack(list(decoded)).to(self.device), list(geometries))
