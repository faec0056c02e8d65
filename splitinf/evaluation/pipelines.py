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
from splitinf.data import decode_jpeg, jpeg_bytes, resize_rgb
from splitinf.head import Head
from splitinf.models import SplittableDetector
from splitinf.tail import Tail

Output = tuple[dict[str, Tensor], int | None]


@dataclass(frozen=True)
class Pipeline:
    name: str
    run: Callable[[Tensor], Output]
    kind: str  # "local", "jpeg", "split"
    quality: int | None = None
    resolution: str | None = None


def unsplit(detector: SplittableDetector) -> Pipeline:
    return Pipeline("unsplit", lambda image: (detector([image])[0], None), "local")


def scale_boxes(detections: dict[str, Tensor], from_size: tuple[int, int], to_size: tuple[int, int]) -> dict:
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    scaled = dict(detections)
    scaled["boxes"] = detections["boxes"] * detections["boxes"].new_tensor([sx, sy, sx, sy])
    return scaled


def jpeg(detector: SplittableDetector, quality: int, resolution: str) -> Pipeline:
    """JPEG offload at ``resolution`` "original" or "input" (the model's input size, boxes scaled back)."""
    if resolution not in ("original", "input"):
        raise ValueError(f"JPEG resolution must be 'original' or 'input', got {resolution!r}")

    def run(image: Tensor) -> Output:
        original = tuple(image.shape[-2:])
        sent = image
        if resolution == "input":
            _, geometries = detector.preprocess([image])
            sent = resize_rgb(image, geometries[0].resized)
        payload = jpeg_bytes(sent, quality)
        detections = detector([decode_jpeg(payload)])[0]
        if resolution == "input":
            detections = scale_boxes(detections, tuple(sent.shape[-2:]), original)
        return detections, len(payload)

    return Pipeline(f"jpeg q{quality} {resolution}", run, "jpeg", quality, resolution)


def split(detector: SplittableDetector, codec: Codec, *, split_point: str | None = None,
          bottleneck: Bottleneck | None = None, name: str | None = None) -> Pipeline:
    """Split inference as deployed: head → codec bitstream (its real bytes, header included) → tail."""
    head = Head(detector, split_point, bottleneck)
    tail = Tail(detector, split_point, bottleneck)

    def run(image: Tensor) -> Output:
        features, geometries = head([image])
        payload = codec.compress(features[0])
        return tail(codec.decompress(payload)[None], geometries)[0], len(payload)

    label = name or f"split {split_point or 'bottleneck'} {codec.name}"
    return Pipeline(label, run, "split")
