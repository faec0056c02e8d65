"""The learned bottleneck injected into a detector's trunk, head-network-distillation style.

The device runs the teacher's trunk up to block ``tap``, then a small **encoder** down to ``channels``
channels (optionally halving the resolution, taking over the stride of block ``tap + 1``). The edge runs a
**decoder** that rebuilds the output of block ``restore`` — a small stem followed by copies of the teacher's
own blocks (teacher-initialised, then fine-tuned) — and continues with the teacher's trunk after ``restore``.
The blocks between ``tap`` and ``restore`` therefore move from the device to the edge: the device runs
*less* than the unsplit prefix.

This module knows nothing of the detector zoo: the caller passes the trunk (a sequence of modules) and the
channels of each trunk block's output.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from splitinf.bottleneck.codec import ChannelTables, Codec, EntropyCodec, MinMax8Codec, VariableRateCodec
from splitinf.bottleneck.entropy_model import FactorizedPrior
from torch import Tensor, nn

from splitinf.weights.checkpoints import read_checkpoint_file, update_digest, write_checkpoint

CHECKPOINT_FORMAT = "splitinf-bottleneck"
CHECKPOINT_VERSION = 1
CODECS = ("entropy", "minmax8")


class CheckpointError(ValueError):
    """A bottleneck checkpoint that is missing, damaged or made for another model."""


@dataclass(frozen=True)
class BottleneckConfig:
    model: str  # zoo detector the bottleneck was trained for
    tap: int  # the device runs trunk[: tap + 1], then the encoder
    restore: int  # the decoder rebuilds the output of trunk[restore]; the edge continues with trunk[restore + 1:]
    #               (restore == tap: a pure autoencoder at the tap that moves no block to the edge)
    channels: int = 16  # bottleneck channels (what is quantized and sent)
    width: int = 64  # hidden channels of the encoder and the decoder stem
    stride: int = 2  # 2: the encoder halves the resolution (taking over block tap + 1's stride)
    codec: str = "entropy"  # "entropy" (learned tables + range coding) or "minmax8" (the HND baseline)
    rates: int = 1  # operating points of one checkpoint (> 1: gain vectors and a density per rate, entropy only)
    default_rate: int = 0  # the rate a device sends at unless told otherwise

    def validate(self, trunk_length: int) -> None:
        if not 0 <= self.tap <= self.restore < trunk_length:
            raise ValueError(f"bottleneck needs 0 <= tap <= restore < {trunk_length} (trunk blocks), "
                             f"got tap={self.tap}, restore={self.restore}")
        if self.stride not in (1, 2):
            raise ValueError(f"bottleneck stride must be 1 or 2, got {self.stride}")
        if self.stride == 2 and self.restore < self.tap + 1:
            raise ValueError("a stride-2 encoder replaces block tap + 1, so restore must be >= tap + 1")
        if self.codec not in CODECS:
            raise ValueError(f"bottleneck codec must be one of {CODECS}, got {self.codec!r}")
        if not 1 <= self.channels < 256:
            raise ValueError(f"bottleneck channels must be in 1..255, got {self.channels}")
        if not 1 <= self.rates <= 16 or not 0 <= self.default_rate < self.rates:
            raise ValueError(f"bottleneck rates must be in 1..16 and default_rate in 0..rates-1, got rates="
                             f"{self.rates}, default_rate={self.default_rate}")
        if self.rates > 1 and self.codec != "entropy":
            raise ValueError("a variable-rate bottleneck needs the entropy codec")

    def digest_items(self) -> list:
        """The fields a fingerprint covers: a single-rate config hashes as it did before rates existed."""
        items = asdict(self)
        if self.rates == 1:
            del items["rates"], items["default_rate"]
        return sorted(items.items())

    @property
    def first_copied(self) -> int:
        """The first teacher block the decoder copies (the stem rebuilds the input of that block)."""
        return self.tap + 1 + (1 if self.stride == 2 else 0)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, config: BottleneckConfig, trunk: Sequence[nn.Module], trunk_channels: Sequence[int]) -> None:
        super().__init__()
        config.validate(len(trunk))
        self.config = config
        tap_channels = trunk_channels[config.tap]
        rebuilt_channels = trunk_channels[config.first_copied - 1]
        self.encoder = nn.Sequential(
            _conv(tap_channels, config.width, 3, config.stride),
            nn.Conv2d(config.width, config.channels, 1),
        )
        self.decoder = nn.Sequential(
            _conv(config.channels, config.width, 1),
            _conv(config.width, config.width, 3),
            _conv(config.width, rebuilt_channels, 1, act=False),  # MobileNet block outputs are linear
            *copy.deepcopy(list(trunk[config.first_copied : config.restore + 1])),
        )
        if config.rates == 1:
            self.prior = FactorizedPrior(config.channels)
        else:
            # Variable rate after Cui et al. (CVPR 2021, "asymmetric gained" compression): rate r multiplies the
            # latent by a learned per-channel gain before rounding (a per-channel quantisation step of 1/gain)
            # and by a learned inverse gain after; each rate has its own factorised density. One encoder, one
            # decoder, one tail for every rate. Log-parameterised: gains stay positive.
            self.log_gain = nn.Parameter(torch.zeros(config.rates, config.channels))
            self.log_inverse_gain = nn.Parameter(torch.zeros(config.rates, config.channels))
            self.priors = nn.ModuleList(FactorizedPrior(config.channels) for _ in range(config.rates))
        self.rate = config.default_rate

    def density(self, rate: int | None = None) -> FactorizedPrior:
        """The entropy model of ``rate`` (default: the current one)."""
        return self.prior if self.config.rates == 1 else self.priors[self.rate if rate is None else rate]

    def densities(self) -> list[FactorizedPrior]:
        return [self.prior] if self.config.rates == 1 else list(self.priors)

    def gains(self, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """(gain, inverse gain) of ``rate``, per channel."""
        return (self.log_gain[rate].detach().exp().cpu().numpy().astype(np.float32),
                self.log_inverse_gain[rate].detach().exp().cpu().numpy().astype(np.float32))

    def update_tables(self) -> None:
        for density in self.densities():
            density.update_tables()

    def codec(self, rate: int | None = None) -> Codec:
        """The deploy codec (at ``rate``, default the current one, for a variable-rate bottleneck): entropy
        coding needs the tables built after training."""
        if self.config.codec == "minmax8":
            return MinMax8Codec()
        if self.config.rates == 1:
            return EntropyCodec(self.prior.tables())
        return VariableRateCodec([d.tables() for d in self.priors], [self.gains(r) for r in range(self.config.rates)],
                                 self.rate if rate is None else rate)

    def forward(self, tap_features: Tensor, rate: int | None = None) -> tuple[Tensor, Tensor]:
        """Training path: features at the tap → (rebuilt features at ``restore``, bits of the batch), at
        ``rate`` (default the current one) for a variable-rate bottleneck."""
        latent = self.encoder(tap_features)
        if self.config.codec == "minmax8":
            return self.decoder(latent), latent.new_zeros(())
        if self.config.rates == 1:
            quantized, bits = self.prior(latent)
            return self.decoder(quantized), bits
        rate = self.rate if rate is None else rate
        quantized, bits = self.priors[rate](latent * self.log_gain[rate].exp()[None, :, None, None])
        return self.decoder(quantized * self.log_inverse_gain[rate].exp()[None, :, None, None]), bits

    # --- checkpoints: only the new parts, the config, the tables and a fingerprint ----------------------

    def fingerprint(self) -> str:
        """sha256 (hex, 16 chars) of the config, the weights and the tables."""
        digest = hashlib.sha256(repr(self.config.digest_items()).encode())
        update_digest(digest, self.state_dict())
        if self.config.codec == "entropy":
            for density in self.densities():
                digest.update(density.tables().fingerprint())
        return digest.hexdigest()[:16]

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        def saved(tables: ChannelTables) -> dict:
            return {"low": list(tables.low), "pmf": [torch.from_numpy(p) for p in tables.pmf]}

        tables = None
        if self.config.codec == "entropy":
            tables = saved(self.prior.tables()) if self.config.rates == 1 else \
                {"rates": [saved(d.tables()) for d in self.priors]}
        write_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, asdict(self.config), self.state_dict(), metadata,
                         tables=tables, fingerprint=self.fingerprint())


class Trunked(Protocol):
    """What a bottleneck needs of a detector (any zoo detector is one)."""

    name: str

    @property
    def trunk(self) -> nn.Sequential: ...

    def trunk_channels(self) -> list[int]: ...


def load_for(path: str | Path, detector: Trunked) -> Bottleneck:
    """Read a checkpoint and build its bottleneck into ``detector``'s trunk; refuses one made for another model."""
    checkpoint = read_checkpoint(path)
    model = checkpoint["config"].get("model")
    if model != detector.name:
        raise CheckpointError(f"bottleneck checkpoint {path} was trained for {model}, not {detector.name}")
    return load_bottleneck(checkpoint, detector.trunk, detector.trunk_channels(), source=str(path))


def read_checkpoint(path: str | Path) -> dict:
    """Load and check a checkpoint file (format, version, fields) without building anything."""
    return read_checkpoint_file(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "splitinf bottleneck checkpoint",
                                CheckpointError)


def load_bottleneck(checkpoint: dict, trunk: Sequence[nn.Module], trunk_channels: Sequence[int],
                    source: str = "checkpoint") -> Bottleneck:
    """Rebuild a trained bottleneck from a checkpoint read by :func:`read_checkpoint`."""
    config = BottleneckConfig(**checkpoint["config"])
    bottleneck = Bottleneck(config, trunk, trunk_channels)
    state = checkpoint["state"]
    own = bottleneck.state_dict()
    mismatched = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    if mismatched or set(state) - set(own):
        raise CheckpointError(f"{source} does not fit a {config.model} bottleneck {config}: "
                              f"first mismatched key {(mismatched or sorted(set(state) - set(own)))[0]}")
    bottleneck.load_state_dict(state)
    if checkpoint["tables"] is not None:
        saved = checkpoint["tables"]
        for density, tables in zip(bottleneck.densities(), saved.get("rates", [saved])):
            density.load_tables(ChannelTables(tuple(int(v) for v in tables["low"]),
                                              tuple(np.asarray(p, dtype=np.float64) for p in tables["pmf"])))
    if bottleneck.fingerprint() != checkpoint["fingerprint"]:
        raise CheckpointError(f"{source}: its weights do not match its recorded fingerprint (damaged file?)")
    return bottleneck.eval()


def accuracy_drops(checkpoints: list[str], jpeg_quality: int = 90, jpeg_resolution: str = "input"
                   ) -> dict[str, float] | None:
    """AP points each operating point loses against the unsplit teacher (local: 0; JPEG at ``jpeg_quality``
    and ``jpeg_resolution``, "input" = 300×300 or "original"; every split rate), from the evaluations recorded
    in the checkpoints' metadata
    (``splitinf bench rate --record``); None when no checkpoint has one. A mode absent from the result has
    no recorded accuracy."""
    evaluations = {path: read_checkpoint(path)["metadata"].get("evaluation") for path in checkpoints}
    recorded = [e for e in evaluations.values() if e]
    if not recorded:
        return None
    teacher = recorded[0]["teacher_ap"]
    drops = {"local": 0.0}
    jpeg = [j for j in recorded[0]["jpeg"] if j["quality"] == jpeg_quality and j["resolution"] == jpeg_resolution]
    if jpeg:
        drops["jpeg"] = round(100 * (teacher - jpeg[0]["ap"]), 3)
    for path, evaluation in evaluations.items():
        if evaluation:
            stem, points = Path(path).stem, evaluation["points"]
            for point in points:
                name = f"split:{stem}@{point['rate']}" if len(points) > 1 else f"split:{stem}"
                drops[name] = round(100 * (teacher - point["ap"]), 3)
    return drops
