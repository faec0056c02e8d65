"""The head: what the camera board runs — preprocessing, then the trunk blocks up to the split point."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from splitinf.models import Geometry, SplittableDetector


class Head(nn.Module):
    """``Head(detector, "s8")([image])`` → (features at the split, per-image geometry)."""

    def __init__(self, detector: SplittableDetector, split: str) -> None:
        super().__init__()
        self.point = detector.split_point(split)
        self.model_name = detector.name
        self.layers = nn.Sequential(*detector.trunk[: self.point.index + 1])
        # A bound method, not a submodule: preprocessing has no weights of its own to carry.
        self._preprocess = detector.preprocess

    def forward(self, images: Sequence[Tensor]) -> tuple[Tensor, list[Geometry]]:
        x, geometries = self._preprocess(images)
        return self.layers(x), geometries
