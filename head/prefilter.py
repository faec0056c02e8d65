"""The prefilter: a tiny CNN on the head's early features that predicts whether anything of interest is in
the frame (Matsubara & Levorato's second idea). A frame it rejects costs zero bytes and the rest of the head
is never computed.

It reads the trunk output at ``tap`` (computed by the head anyway), so its own cost is two small strided
convolutions and a linear layer: about 2 % of the head's multiply-adds at the default tap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from splitinf.models import SplittableDetector
from splitinf.weights.checkpoints import read_checkpoint_file, write_checkpoint

FORMAT = "splitinf-prefilter"
VERSION = 1


class PrefilterError(ValueError):
    """A prefilter checkpoint that is missing, damaged or made for another model."""


@dataclass(frozen=True)
class PrefilterConfig:
    model: str  # zoo detector whose trunk it reads
    tap: int  # it reads the output of trunk[tap]
    in_channels: int
    width: int = 32
    threshold: float = 0.5  # P(object) below which a frame is filtered (chosen for a target recall)
    classes: tuple[int, ...] = (1,)  # labels that count as "of interest"
    score: float = 0.5  # a teacher detection at or above this score makes a frame positive


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class Prefilter(nn.Module):
    def __init__(self, config: PrefilterConfig) -> None:
        super().__init__()
        self.config = config
        self.features = nn.Sequential(_conv(config.in_channels, config.width), _conv(config.width, config.width))
        self.classifier = nn.Linear(2 * config.width, 1)

    def forward(self, features: Tensor) -> Tensor:
        """Trunk features at the tap [N, C, H, W] → logits [N] of "something of interest is here"."""
        x = self.features(features)
        pooled = torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1)  # average: how much; max: anything at all
        return self.classifier(pooled)[:, 0]

    def keep(self, features: Tensor) -> Tensor:
        """Boolean per frame: send it on (True) or filter it (False)."""
        return torch.sigmoid(self(features)) >= self.config.threshold

    def keeps(self, detector: SplittableDetector, images: Sequence[Tensor]) -> bool:
        """On whole frames, where no head runs anyway: the detector's preprocessing and trunk up to the tap,
        then :meth:`keep`. True when every frame is worth sending (a device sends one frame at a time)."""
        x, _ = detector.preprocess(images)
        return bool(self.keep(detector.trunk[: self.config.tap + 1](x)).all())

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        config = asdict(self.config)
        config["classes"] = list(config["classes"])
        write_checkpoint(path, FORMAT, VERSION, config, self.state_dict(), metadata)


def load_prefilter(path: str | Path, model: str, threshold: float | None = None) -> Prefilter:
    """Load a prefilter for ``model``; ``threshold`` overrides the one chosen at training."""
    checkpoint = read_checkpoint_file(path, FORMAT, VERSION, "splitinf prefilter checkpoint", PrefilterError)
    config = dict(checkpoint["config"])
    config["classes"] = tuple(config["classes"])
    if threshold is not None:
        if not 0 < threshold < 1:
            raise PrefilterError(f"prefilter threshold must be in (0, 1), got {threshold}")
        config["threshold"] = threshold
    prefilter = Prefilter(PrefilterConfig(**config))
    if prefilter.config.model != model:
        raise PrefilterError(f"prefilter {path} was trained for {prefilter.config.model}, not {model}")
    prefilter.load_state_dict(checkpoint["state"])
    return prefilter.eval()
