"""Loss models and delay jitter, driven by a seeded random generator so runs repeat exactly."""

from __future__ import annotations

import random
from dataclasses import dataclass


class LossModel:
    def lost(self) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class NoLoss(LossModel):
    def lost(self) -> bool:
        return False

    def describe(self) -> str:
        return "no loss"


@dataclass
class Bernoulli(LossModel):
    """Each packet is lost independently with probability ``p``."""

    p: float
    rng: random.Random

    def __post_init__(self) -> None:
        if not 0 <= self.p < 1:
            raise ValueError(f"loss probability must be in [0, 1), got {self.p}")

    def lost(self) -> bool:
        return self.rng.random() < self.p

    def describe(self) -> str:
        return f"Bernoulli loss {self.p:g}"


@dataclass
class GilbertElliott(LossModel):
    """Two-state bursty loss (netem's ``gemodel p r 1-h 1-k``): Good→Bad with ``p``, Bad→Good with ``r``;
    a packet is lost with ``loss_bad`` in Bad and ``loss_good`` in Good."""

    p: float
    r: float
    rng: random.Random
    loss_bad: float = 1.0
    loss_good: float = 0.0
    bad: bool = False

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_bad", "loss_good"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"Gilbert-Elliott {name} must be in [0, 1], got {value}")
        if self.r == 0:
            raise ValueError("Gilbert-Elliott r (Bad→Good) must be > 0, or the link never recovers")

    def lost(self) -> bool:
        self.bad = (self.rng.random() >= self.r) if self.bad else (self.rng.random() < self.p)
        return self.rng.random() < (self.loss_bad if self.bad else self.loss_good)

    def stationary_loss(self) -> float:
        share_bad = self.p / (self.p + self.r)
        return share_bad * self.loss_bad + (1 - share_bad) * self.loss_good

    def describe(self) -> str:
        return f"Gilbert-Elliott loss p={self.p:g} r={self.r:g} (mean {self.stationary_loss():.3g})"


def parse_loss(text: str | None, rng: random.Random) -> LossModel:
    """'0.01' or 'bernoulli:0.01'; 'ge:p,r[,loss_bad[,loss_good]]'; None/'0' for none."""
    if not text or text in ("0", "none"):
        return NoLoss()
    kind, _, args = text.partition(":") if ":" in text else ("bernoulli", "", text)
    try:
        values = [float(v) for v in args.split(",")]
    except ValueError:
        raise ValueError(f"cannot read loss {text!r}: expected 0.01, bernoulli:0.01 or ge:p,r[,h,k]") from None
    if kind == "bernoulli" and len(values) == 1:
        return Bernoulli(values[0], rng)
    if kind in ("ge", "gilbert-elliott") and 2 <= len(values) <= 4:
        return GilbertElliott(*values[:2], rng, *values[2:])
    raise ValueError(f"cannot read loss {text!r}: expected 0.01, bernoulli:0.01 or ge:p,r[,loss_bad[,loss_good]]")


@dataclass
class Jitter:
    """Extra one-way delay uniform in [-jitter, +jitter] ms around the base delay, never below zero and never
    reordering: a packet is not delivered before the one sent ahead of it (a TCP stream stays in order)."""

    jitter_ms: float
    rng: random.Random

    def __post_init__(self) -> None:
        if self.jitter_ms < 0:
            raise ValueError(f"jitter must be >= 0 ms, got {self.jitter_ms}")

    def sample(self) -> float:
        return self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
