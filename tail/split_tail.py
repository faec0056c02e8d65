"""The tail: what the edge server runs — the rest of the trunk, the neck, the heads and the postprocess."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from splitinf.models import Detections, Geometry, SplittableDetector


class Tail(nn.Module):
    """``Tail(detector, "s8")(features, geometries)`` → torchvision-style detections per image."""

    def __init__(self, detector: SplittableDetector, split: str) -> None:
        super().__init__()
        self.point = detector.split_point(split)
        self.model_name = detector.name
        self.layers = nn.Sequential(*detector.trunk[self.point.index + 1 :])
        self.detector = detector

    def maps(self, features: Tensor) -> list[Tensor]:
        """Features at the split → the feature maps the detection heads consume."""
        return self.detector.neck(self.layers(features))

    def forward(self, features: Tensor, geometries: Sequence[Geometry]) -> Detections:
        if features.shape[0] != len(geometries):
            raise ValueError(f"{features.shape[0]} feature tensors but {len(geometries)} geometries")
        return self.detector.detect(self.maps(features), geometries)
