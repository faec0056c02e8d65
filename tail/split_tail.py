"""The tail: what the edge server runs — (the bottleneck's decoder,) the rest of the trunk, the neck, the
detection heads and the postprocess."""

from __future__ import annotations

from collections.abc import Sequence

from splitinf.bottleneck import Bottleneck
from torch import Tensor, nn

from splitinf.models import Detections, Geometry, SplittableDetector


class Tail(nn.Module):
    """``Tail(detector, split="s8")`` or ``Tail(detector, bottleneck=b)``; ``tail(features, geometries)`` →
    torchvision-style detections per image. With a bottleneck the features are its decoded latent."""

    def __init__(self, detector: SplittableDetector, split: str | None = None,
                 bottleneck: Bottleneck | None = None) -> None:
        super().__init__()
        if (split is None) == (bottleneck is None):
            raise ValueError("a tail needs exactly one of a split point or a bottleneck")
        if bottleneck is not None and bottleneck.config.model != detector.name:
            raise ValueError(f"the bottleneck was trained for {bottleneck.config.model}, not {detector.name}")
        self.model_name = detector.name
        if bottleneck is None:
            self.point = detector.split_point(split)
            self.layers = nn.Sequential(*detector.trunk[self.point.index + 1 :])
        else:
            self.layers = nn.Sequential(bottleneck.decoder, *detector.trunk[bottleneck.config.restore + 1 :])
        self.detector = detector

    def maps(self, features: Tensor) -> list[Tensor]:
        """Features received → the feature maps the detection heads consume."""
        return self.detector.neck(self.layers(features))

    def forward(self, features: Tensor, geometries: Sequence[Geometry]) -> Detections:
        if features.shape[0] != len(geometries):
            raise ValueError(f"{features.shape[0]} feature tensors but {len(geometries)} geometries")
        return self.detector.detect(self.maps(features), geometries)
