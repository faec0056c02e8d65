"""Detections ↔ arrays ↔ the RESULT message, once for both sides. NumPy only (no torch): a device without
torch reads results with it, and tensors are taken by what they share with arrays.

A detection set is ``{"boxes": float32 n×4 (x1, y1, x2, y2 pixels), "scores": float32 n, "labels": int32 n}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from splitinf.protocol import Result

Arrays = dict[str, np.ndarray]


def as_numpy(values: Any) -> np.ndarray:
    """A tensor (on any device) or an array → a NumPy array."""
    if hasattr(values, "detach"):  # a torch tensor: off the autograd graph and the GPU first
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def empty() -> Arrays:
    return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32), "labels": np.zeros(0, np.int32)}


def kept(detections: dict[str, Any], min_score: float) -> Arrays:
    """The detections scored at least ``min_score``, as little-endian float32/int32 arrays."""
    scores = as_numpy(detections["scores"]).astype("<f4")
    keep = scores >= min_score
    return {"boxes": as_numpy(detections["boxes"]).astype("<f4")[keep].reshape(-1, 4), "scores": scores[keep],
            "labels": as_numpy(detections["labels"]).astype("<i4")[keep]}


def to_result(seq: int, detections: dict[str, Any], min_score: float, timing: dict[str, float], batch: int
              ) -> Result:
    arrays = kept(detections, min_score)
    return Result(seq, len(arrays["scores"]), arrays["boxes"].tobytes(), arrays["scores"].tobytes(),
                  arrays["labels"].tobytes(), timing, batch)


def from_result(result: Result) -> Arrays:
    return {"boxes": np.frombuffer(result.boxes, "<f4").reshape(result.n, 4),
            "scores": np.frombuffer(result.scores, "<f4"), "labels": np.frombuffer(result.labels, "<i4")}
