"""Device halves that need no model runtime at all, shared by every engine: the JPEG encoder, and the timing
helper that plays a slower board."""

from __future__ import annotations

import time
from typing import Any

from splitinf.images import jpeg_bytes, resize_rgb
from splitinf.modes import JPEG
from splitinf.protocol import Payload


def stretched_ms(start_ns: int, slowdown: float = 1.0) -> float:
    """Milliseconds since ``start_ns``, after stretching them to ``slowdown`` times (sleeping the difference):
    how a faster machine plays a slower board's compute."""
    if slowdown > 1:
        time.sleep((time.perf_counter_ns() - start_ns) * (slowdown - 1) / 1e9)
    return (time.perf_counter_ns() - start_ns) / 1e6


class JpegEncoder:
    """``jpeg``: the frame as a JPEG, at its captured size or resized to ``size`` (height, width)."""

    name = JPEG

    def __init__(self, quality: int = 90, size: tuple[int, int] | None = None) -> None:
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be within 1..100, got {quality}")
        self.quality, self.size = quality, size
        self.codec = f"jpeg{quality}"

    def __call__(self, image: Any) -> tuple[Payload, dict[str, float]]:
        start = time.perf_counter_ns()
        original = (int(image.shape[-2]), int(image.shape[-1]))
        sent = image if self.size is None else resize_rgb(image, self.size)
        data = jpeg_bytes(sent, self.quality)
        size = (int(sent.shape[-2]), int(sent.shape[-1]))
        stages = {"encode": (time.perf_counter_ns() - start) / 1e6}
        return Payload(JPEG, (original, size, size), self.codec, data), stages
