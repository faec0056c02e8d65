"""Ways a frame can reach the detector, each reporting the bytes it would put on the link.

A pipeline maps one uint8 RGB image to (detections in original-image pixels, bytes on the wire or None when
nothing is sent). The JPEG baseline encodes the frame at quality q, either at its original resolution or
first resized to the model's input resolution, decodes it and runs the unsplit model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from splitinf.bottleneck import Bottleneck, Codec
from splitinf.head import Head
from splitinf.head.modes import JpegEncoder, LocalCompute, SplitEncoder
from splitinf.models import Geometry, SplittableDetector
from splitinf.tail import Tail
from splitinf.tail.modes import JpegDecoder, SplitDecoder

Output = tuple[dict[str, Tensor], int | None]


@dataclass(frozen=True)
class Pipeline:
    name: str
    run: Callable[[Tensor], Output]
    kind: str  # "local", "jpeg", "split"
    quality: int | None = None
    resolution: str | None = None


def unsplit(detector: SplittableDetector) -> Pipeline:
    local = LocalCompute(detector)
    return Pipeline("unsplit", lambda image: (local(image)[0], None), "local")


def _offload(encoder, decoder) -> Callable[[Tensor], Output]:
    """A frame through a mode's device half and edge half, as deployed: its real bytes, boxes in its pixels."""

    def run(image: Tensor) -> Output:
        payload, _ = encoder(image)
        decoded = decoder.decode(payload.data, payload.codec)
        return decoder([decoded], [Geometry(*payload.geometry)])[0], len(payload.data)

    return run


def jpeg(detector: SplittableDetector, quality: int, resolution: str) -> Pipeline:
    """JPEG offload at ``resolution`` "original" or "input" (the model's input size, boxes scaled back)."""
    if resolution not in ("original", "input"):
        raise ValueError(f"JPEG resolution must be 'original' or 'input', got {resolution!r}")
    encoders: dict[tuple[int, int] | None, JpegEncoder] = {}

    def run(image: Tensor) -> Output:
        size = detector.preprocess([image])[1][0].resized if resolution == "input" else None
        encoder = encoders.setdefault(size, JpegEncoder(quality, size))
        return _offload(encoder, decoder)(image)

    decoder = JpegDecoder(detector)
    return Pipeline(f"jpeg q{quality} {resolution}", run, "jpeg", quality, resolution)


def split(detector: SplittableDetector, codec: Codec, *, split_point: str | None = None,
          bottleneck: Bottleneck | None = None, name: str | None = None, encoder: Callable | None = None) -> Pipeline:
    """Split inference as deployed: head → codec bitstream (its real bytes, header included) → tail. ``encoder``:
    another device half to run instead of the eager head (an exported engine's, :mod:`splitinf.board.engine`)."""
    encoder = encoder or SplitEncoder(Head(detector, split_point, bottleneck), codec)
    decoder = SplitDecoder(Tail(detector, split_point, bottleneck), codec)
    label = name or f"split {split_point or 'bottleneck'} {codec.name}"
    return Pipeline(label, _offload(encoder, decoder), "split")


def local(detector_half: Callable, name: str) -> Pipeline:
    """A ``local`` device half (the eager detector or an exported one) as a pipeline."""
    return Pipeline(name, lambda image: (detector_half(image)[0], None), "local")
