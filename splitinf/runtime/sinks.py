"""Where a device's outcomes go: JSON lines per frame, an annotated video. Each is called once per frame,
from whichever thread finished it, with the frame's image when it is still at hand."""

from __future__ import annotations

import json
import threading
from typing import TextIO

import numpy as np

from splitinf.runtime.session import Outcome


class JsonLinesSink:
    """One JSON line per frame: outcome, latency and detections ([x1, y1, x2, y2, score, label] in pixels)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome, image: np.ndarray | None) -> None:
        # captured_s: the device's monotonic clock (CLOCK_MONOTONIC on Linux, the relay's clock too), to line
        # frames up with other logs of the same machine.
        line = {"frame": outcome.seq, "outcome": outcome.outcome, "captured_s": outcome.captured_ms / 1e3,
                "latency_ms": round(outcome.latency_ms, 3)}
        if outcome.mode:
            line["mode"] = outcome.mode
        if outcome.reason:
            line["reason"] = outcome.reason
        if outcome.stages:
            line["stages_ms"] = {k: round(v, 3) for k, v in outcome.stages.items()}
        if outcome.detections is not None:
            d = outcome.detections
            # Exact float32 values (no rounding): the output can be compared bit for bit with a local run.
            line["detections"] = [[*(float(v) for v in box), float(s), int(c)]
                                  for box, s, c in zip(d["boxes"], d["scores"], d["labels"])]
        with self.lock:
            self.stream.write(json.dumps(line) + "\n")
            self.stream.flush()


class AnnotatedVideoSink:
    """An MP4 of the frames that got detections, boxes drawn, written as they complete."""

    def __init__(self, path: str, fps: float, min_score: float = 0.5) -> None:
        self.path, self.fps, self.min_score = path, fps, min_score
        self.writer = None
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome, image: np.ndarray | None) -> None:
        if outcome.detections is None or image is None:
            return
        import cv2  # only a device that writes video needs the drawing code

        bgr = cv2.cvtColor(np.ascontiguousarray(np.asarray(image).transpose(1, 2, 0)), cv2.COLOR_RGB2BGR)
        for (x1, y1, x2, y2), score in zip(outcome.detections["boxes"], outcome.detections["scores"]):
            if score >= self.min_score:
                cv2.rectangle(bgr, (int(x1), int(y1)), (int(x2), int(y2)), (0, 200, 0), 2)
                cv2.putText(bgr, f"{score:.2f}", (int(x1), max(int(y1) - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (0, 200, 0), 1)
        cv2.putText(bgr, f"frame {outcome.seq} {outcome.outcome} {outcome.latency_ms:.0f} ms", (8, 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        with self.lock:
            if self.writer is None:
                height, width = bgr.shape[:2]
                self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            self.writer.write(bgr)

    def close(self) -> None:
        with self.lock:
            if self.writer is not None:
                self.writer.release()
