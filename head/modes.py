"""Each mode's device half, written once (the modes: :mod:`splitinf.modes`): what the camera board does with a
frame. The device runtime, the evaluation, the cost measurement and the load generator all call these.

Each half times its own stages (milliseconds, as the device reports them). ``slowdown`` plays a slower
board: the neural compute of a frame is stretched to that many times its duration (JPEG encoding is not).
"""

from __future__ import annotations

import time

import torch
from splitinf.bottleneck import Codec
from splitinf.head.prefilter import Prefilter
from splitinf.head.split_head import Head
from torch import Tensor

from splitinf.data import jpeg_bytes, resize_rgb
from splitinf.models import SplittableDetector
from splitinf.modes import JPEG, LOCAL, SPLIT
from splitinf.protocol import Payload


def _elapsed_ms(start_ns: int, slowdown: float = 1.0) -> float:
    """Milliseconds since ``start_ns``, after stretching them to ``slowdown`` times (sleeping the difference)."""
    if slowdown > 1:
        time.sleep((time.perf_counter_ns() - start_ns) * (slowdown - 1) / 1e9)
    return (time.perf_counter_ns() - start_ns) / 1e6


class LocalCompute:
    """``local``: the whole detector on the device."""

    name = LOCAL

    def __init__(self, detector: SplittableDetector, slowdown: float = 1.0) -> None:
        self.detector, self.slowdown = detector, slowdown

    def __call__(self, image: Tensor) -> tuple[dict[str, Tensor], dict[str, float]]:
        start = time.perf_counter_ns()
        with torch.inference_mode():
            detections = self.detector([image])[0]
        return detections, {"local": _elapsed_ms(start, self.slowdown)}


class JpegEncoder:
    """``jpeg``: the frame as a JPEG, at its captured size or resized to ``size`` (height, width)."""

    name = JPEG

    def __init__(self, quality: int = 90, size: tuple[int, int] | None = None) -> None:
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
        self.quality, self.size = quality, size
        self.codec = f"jpeg{quality}"

    def __call__(self, image: Tensor) -> tuple[Payload, dict[str, float]]:
        start = time.perf_counter_ns()
        original = (int(image.shape[-2]), int(image.shape[-1]))
        sent = image if self.size is None else resize_rgb(image, self.size)
        data = jpeg_bytes(sent, self.quality)
        size = (int(sent.shape[-2]), int(sent.shape[-1]))
        stages = {"encode": (time.perf_counter_ns() - start) / 1e6}
        return Payload(JPEG, (original, size, size), self.codec, data), stages


class SplitEncoder:
    """``split``: the head (trunk up to the split, or the bottleneck's encoder) and the codec's bitstream.
    With a prefilter, the head stops at the prefilter's block when it finds nothing: ``None`` is sent."""

    name = SPLIT

    def __init__(self, head: Head, codec: Codec, prefilter: Prefilter | None = None, slowdown: float = 1.0) -> None:
        if prefilter is not None:
            head.check_prefilter(prefilter)  # now, not on every frame
        self.head, self.codec, self.prefilter, self.slowdown = head, codec, prefilter, slowdown

    def features(self, image: Tensor) -> tuple[Tensor | None, tuple, dict[str, float]]:
        """The head's features for ``image`` (None when the prefilter filtered it), its geometry, its stages."""
        start = time.perf_counter_ns()
        stages: dict[str, float] = {}
        with torch.inference_mode():
            if self.prefilter is None:
                features, geometries = self.head([image])
            else:
                features, geometries, stages["prefilter"] = self.head.forward_filtered([image], self.prefilter)
        stages["head"] = _elapsed_ms(start, self.slowdown)
        return (None if features is None else features[0]), tuple(geometries[0]), stages

    def __call__(self, image: Tensor) -> tuple[Payload | None, dict[str, float]]:
        features, geometry, stages = self.features(image)
        if features is None:
            return None, stages
        start = time.perf_counter_ns()
        data = self.codec.compress(features)
        stages["encode"] = (time.perf_counter_ns() - start) / 1e6
        return Payload(SPLIT, geometry, self.codec.name, data), stages


def device_halves(detector: SplittableDetector, modes: set[str], *, split: str | None, bottleneck, codec: Codec,
                  jpeg_quality: int = 90, jpeg_size: tuple[int, int] | None = None,
                  prefilter: Prefilter | None = None, slowdown: float = 1.0) -> dict:
    """The device halves of ``modes``, built once (a head only where split is among them)."""
    halves: dict = {}
    if LOCAL in modes:
        halves[LOCAL] = LocalCompute(detector, slowdown)
    if JPEG in modes:
        halves[JPEG] = JpegEncoder(jpeg_quality, jpeg_size)
    if SPLIT in modes:
        halves[SPLIT] = SplitEncoder(Head(detector, split, bottleneck).eval(), codec, prefilter, slowdown)
    return halves


class PrefilterGate:
    """The prefilter on its own, where no head runs (the ``jpeg`` and ``local`` modes): the detector's
    preprocessing and trunk up to the prefilter's block."""

    def __init__(self, detector: SplittableDetector, prefilter: Prefilter, slowdown: float = 1.0) -> None:
        if prefilter.config.model != detector.name:
            raise ValueError(f"the prefilter was trained for {prefilter.config.model}, not {detector.name}")
        self.detector, self.prefilter, self.slowdown = detector, prefilter, slowdown

    def __call__(self, image: Tensor) -> tuple[bool, dict[str, float]]:
        start = time.perf_counter_ns()
        with torch.inference_mode():
            keep = self.prefilter.keeps(self.detector, [image])
        return keep, {"prefilter": _elapsed_ms(start, self.slowdown)}
