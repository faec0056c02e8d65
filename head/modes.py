"""Each mode's device half as eager PyTorch, written once (the modes: :mod:`splitinf.modes`): what the camera
board does with a frame. The device runtime, the evaluation, the cost measurement and the load generator all
call these; :mod:`splitinf.board` holds the same halves exported for a board (and the JPEG half both share).

A half takes a uint8 RGB frame [3, H, W] as an array or a tensor. Each times its own stages (milliseconds, as
the device reports them). ``slowdown`` plays a slower board: the neural compute of a frame is stretched to
that many times its duration (JPEG encoding is not).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from splitinf.bottleneck import Codec
from splitinf.head.prefilter import Prefilter
from splitinf.head.split_head import Head
from torch import Tensor

from splitinf.board.halves import JpegEncoder, stretched_ms
from splitinf.models import SplittableDetector
from splitinf.modes import JPEG, LOCAL, SPLIT, base_mode, rate_of
from splitinf.protocol import Payload

__all__ = [
    "JpegEncoder", "LocalCompute", "PrefilterGate", "SplitEncoder", "TorchEngine", "device_halves", "torch_engine",
]


class LocalCompute:
    """``local``: the whole detector on the device."""

    name = LOCAL

    def __init__(self, detector: SplittableDetector, slowdown: float = 1.0) -> None:
        self.detector, self.slowdown = detector, slowdown

    def __call__(self, image: Any) -> tuple[dict[str, Tensor], dict[str, float]]:
        start = time.perf_counter_ns()
        with torch.inference_mode():
            detections = self.detector([torch.as_tensor(image)])[0]
        return detections, {"local": stretched_ms(start, self.slowdown)}


class SplitEncoder:
    """``split``: the head (trunk up to the split, or the bottleneck's encoder) and the codec's bitstream.
    With a prefilter, the head stops at the prefilter's block when it finds nothing: ``None`` is sent."""

    name = SPLIT

    def __init__(self, head: Head, codec: Codec, prefilter: Prefilter | None = None, slowdown: float = 1.0) -> None:
        if prefilter is not None:
            head.check_prefilter(prefilter)  # now, not on every frame
        self.head, self.codec, self.prefilter, self.slowdown = head, codec, prefilter, slowdown

    def features(self, image: Any) -> tuple[Tensor | None, tuple, dict[str, float]]:
        """The head's features for ``image`` (None when the prefilter filtered it), its geometry, its stages."""
        image = torch.as_tensor(image)
        start = time.perf_counter_ns()
        stages: dict[str, float] = {}
        with torch.inference_mode():
            if self.prefilter is None:
                features, geometries = self.head([image])
            else:
                features, geometries, stages["prefilter"] = self.head.forward_filtered([image], self.prefilter)
        stages["head"] = stretched_ms(start, self.slowdown)
        return (None if features is None else features[0]), tuple(geometries[0]), stages

    def __call__(self, image: Any) -> tuple[Payload | None, dict[str, float]]:
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
    splits = sorted(m for m in modes if base_mode(m) == SPLIT)  # split, or split@R: rates of one head
    if splits:
        head = Head(detector, split, bottleneck).eval()
        for name in splits:
            rate = rate_of(name)
            halves[name] = SplitEncoder(head, codec if rate is None else codec.at(rate), prefilter, slowdown)
    return halves


class PrefilterGate:
    """The prefilter on its own, where no head runs (the ``jpeg`` and ``local`` modes): the detector's
    preprocessing and trunk up to the prefilter's block."""

    def __init__(self, detector: SplittableDetector, prefilter: Prefilter, slowdown: float = 1.0) -> None:
        if prefilter.config.model != detector.name:
            raise ValueError(f"the prefilter was trained for {prefilter.config.model}, not {detector.name}")
        self.detector, self.prefilter, self.slowdown = detector, prefilter, slowdown

    def __call__(self, image: Any) -> tuple[bool, dict[str, float]]:
        start = time.perf_counter_ns()
        with torch.inference_mode():
            keep = self.prefilter.keeps(self.detector, [torch.as_tensor(image)])
        return keep, {"prefilter": stretched_ms(start, self.slowdown)}


class TorchEngine:
    """The device halves of one model setup as eager PyTorch: ``splitinf-device --engine torch``.

    An engine gives the device client its halves, its prefilter gate and what it tells the edge (the
    fingerprint and the configuration); :class:`splitinf.board.engine.ExportedEngine` is the other one."""

    name = "torch"

    def __init__(self, detector: SplittableDetector, *, split: str | None, bottleneck, codec: Codec,
                 fingerprint: str, config: dict, description: str, prefilter: Prefilter | None = None) -> None:
        self.detector, self.split, self.bottleneck, self.codec = detector, split, bottleneck, codec
        self.fingerprint, self.config, self.description, self.prefilter = fingerprint, config, description, prefilter

    def halves(self, modes: set[str], *, jpeg_quality: int = 90, jpeg_size: tuple[int, int] | None = None,
               slowdown: float = 1.0) -> dict:
        return device_halves(self.detector, modes, split=self.split, bottleneck=self.bottleneck, codec=self.codec,
                             jpeg_quality=jpeg_quality, jpeg_size=jpeg_size, prefilter=self.prefilter,
                             slowdown=slowdown)

    def gate(self, slowdown: float = 1.0) -> PrefilterGate | None:
        return None if self.prefilter is None else PrefilterGate(self.detector, self.prefilter, slowdown)

    def describe(self) -> str:
        return f"{self.description}, engine torch"


def torch_engine(setup, prefilter: Prefilter | None = None) -> TorchEngine:
    """A :class:`~splitinf.runtime.setup.ModelSetup`'s device halves as eager PyTorch (with ``prefilter``)."""
    return TorchEngine(setup.detector, split=setup.split, bottleneck=setup.bottleneck, codec=setup.codec,
                       fingerprint=setup.fingerprint, config=setup.config, description=setup.describe(),
                       prefilter=prefilter)
