"""Frame sources of the device, all through OpenCV: a video file, a camera index, an image folder, a stream URL.

Each yields uint8 RGB arrays [3, H, W] (NumPy: a board has no torch) with the time decoding took. A video file
can be played at its own frame rate (``realtime``), as a camera would deliver it, or frame after frame as the
device takes them (the device client then holds each frame back until the previous one left the slot, so that
no frame of a file is replaced by a newer one: what an evaluation on a recording wants).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from splitinf.images import DataError, bgr_to_rgb, resolve

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class Captured:
    index: int
    image: np.ndarray
    decode_ms: float
    captured_ns: int  # perf_counter_ns when the frame existed on the device


class FrameSource:
    def __init__(self, spec: str, realtime: bool = True, fps: float | None = None, start: int = 0) -> None:
        self.spec = spec
        self.realtime = realtime
        self._folder: list[Path] | None = None
        self._capture = None
        path = resolve(spec) if not spec.isdigit() and "://" not in spec else None
        if path is not None and path.is_dir():
            self._folder = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[start:]
            if not self._folder:
                raise DataError(f"image folder {path} holds no {sorted(IMAGE_SUFFIXES)} files")
            self.fps = fps or 10.0
        else:
            target = int(spec) if spec.isdigit() else str(path if path is not None else spec)
            self._capture = cv2.VideoCapture(target)
            if not self._capture.isOpened():
                raise DataError(f"source {spec!r} cannot be opened (expected a video file, a camera index, "
                                "an image folder or a stream URL OpenCV can read)")
            if start:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, start)
            native = self._capture.get(cv2.CAP_PROP_FPS)
            self.fps = fps or (native if native and native > 0 else 10.0)
            self.realtime = realtime and not spec.isdigit()  # a camera paces itself

    def frames(self, max_frames: int | None = None) -> Iterator[Captured]:
        period_ns = int(1e9 / self.fps)
        start = time.perf_counter_ns()
        index = 0
        while max_frames is None or index < max_frames:
            if self.realtime:  # deliver frame i at start + i / fps, as the camera would
                wait = start + index * period_ns - time.perf_counter_ns()
                if wait > 0:
                    time.sleep(wait / 1e9)
            t0 = time.perf_counter_ns()
            image = self._read(index)
            if image is None:
                return
            captured = time.perf_counter_ns()
            yield Captured(index, image, (captured - t0) / 1e6, captured)
            index += 1

    def _read(self, index: int) -> np.ndarray | None:
        if self._folder is not None:
            if index >= len(self._folder):
                return None
            bgr = cv2.imread(str(self._folder[index]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DataError(f"image {self._folder[index]} cannot be decoded")
            return bgr_to_rgb(bgr)
        ok, bgr = self._capture.read()
        return bgr_to_rgb(bgr) if ok else None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
