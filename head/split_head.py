"""The head: what the camera board runs — preprocessing, the trunk blocks up to the split point, and (with a
learned bottleneck) the bottleneck's encoder."""

from __future__ import annotations

import time
from collections.abc import Sequence

from splitinf.bottleneck import Bottleneck
from splitinf.head.prefilter import Prefilter
from torch import Tensor, nn

from splitinf.models import Geometry, SplittableDetector


class Head(nn.Module):
    """``Head(detector, split="s8")`` or ``Head(detector, bottleneck=b)``; ``head([image])`` → (features to
    send, per-image geometry). With a bottleneck the features are its (unquantized) latent."""

    def __init__(self, detector: SplittableDetector, split: str | None = None,
                 bottleneck: Bottleneck | None = None) -> None:
        super().__init__()
        if (split is None) == (bottleneck is None):
            raise ValueError("a head needs exactly one of a split point or a bottleneck")
        if bottleneck is not None and bottleneck.config.model != detector.name:
            raise ValueError(f"the bottleneck was trained for {bottleneck.config.model}, not {detector.name}")
        self.model_name = detector.name
        if bottleneck is None:
            self.point = detector.split_point(split)
            self.layers = nn.Sequential(*detector.trunk[: self.point.index + 1])
        else:
            self.layers = nn.Sequential(*detector.trunk[: bottleneck.config.tap + 1], bottleneck.encoder)
        self._trunk = list(detector.trunk)  # a plain list (not submodules): which blocks a prefilter may read
        # A bound method, not a submodule: preprocessing has no weights of its own to carry.
        self._preprocess = detector.preprocess

    def forward(self, images: Sequence[Tensor]) -> tuple[Tensor, list[Geometry]]:
        x, geometries = self._preprocess(images)
        return self.layers(x), geometries

    def check_prefilter(self, prefilter: Prefilter) -> None:
        """Refuse a prefilter that reads a trunk block this head does not run (a bottleneck's encoder may
        follow an earlier block, e.g. a tap-7 head cannot feed a prefilter trained on block 12)."""
        tap = prefilter.config.tap
        if tap >= len(self.layers) or self.layers[tap] is not self._trunk[tap]:
            raise ValueError(f"the prefilter reads trunk block {tap}, which this head does not run "
                             f"(it runs blocks 0–{self._last_trunk_block()}); use a prefilter trained on one of "
                             f"those (splitinf train-prefilter --tap) or a split that runs block {tap}")

    def _last_trunk_block(self) -> int:
        return max(i for i, layer in enumerate(self.layers) if i < len(self._trunk) and layer is self._trunk[i])

    def forward_filtered(self, images: Sequence[Tensor], prefilter: Prefilter
                         ) -> tuple[Tensor | None, list[Geometry], float]:
        """Run the prefilter on the way: (features, or None when it filters the frame; geometry; its ms).
        The head stops at the prefilter's tap when the frame is filtered, so a rejected frame is cheap."""
        self.check_prefilter(prefilter)
        tap = prefilter.config.tap
        x, geometries = self._preprocess(images)
        early = self.layers[: tap + 1](x)
        start = time.perf_counter_ns()
        keep = bool(prefilter.keep(early).all())
        prefilter_ms = (time.perf_counter_ns() - start) / 1e6
        return (self.layers[tap + 1 :](early) if keep else None), geometries, prefilter_ms
