"""Detector zoo and split points (see :mod:`splitinf.models.base` for the splitting interface)."""

from splitinf.models.base import Detections, Geometry, SplitPoint, SplittableDetector, scale_boxes
from splitinf.models.registry import (
    DetectorSpec,
    WeightsError,
    build_detector,
    detector_names,
    detector_spec,
)

__all__ = [
    "Detections",
    "DetectorSpec",
    "Geometry",
    "SplitPoint",
    "SplittableDetector",
    "WeightsError",
    "build_detector",
    "detector_names",
    "detector_spec",
    "scale_boxes",
]
