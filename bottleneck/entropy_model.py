"""A learned factorized (per-channel, non-parametric) density of the latent, as in Ballé et al. 2018
("Variational image compression with a scale hyperprior", appendix 6.1) and CompressAI's EntropyBottleneck.

Training (``forward``) adds uniform noise and returns the likelihood of the noisy latent — the rate term.
Deployment is separate: :meth:`update_tables` turns the density into integer categorical tables for the
range coder; :meth:`tables` refuses to hand out tables that were not built after the last training step.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from splitinf.bottleneck.codec import ChannelTables
from torch import Tensor, nn


class TablesNotBuilt(RuntimeError):
    """The deploy codec needs tables built from the trained density (call ``update_tables()`` first)."""


class FactorizedPrior(nn.Module):
    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0,
                 tail_mass: float = 1e-9) -> None:
        super().__init__()
        self.channels, self.tail_mass = channels, tail_mass
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self._tables: ChannelTables | None = None
        self._tables_version = -1
        self._version = 0

    def _logits_cumulative(self, x: Tensor) -> Tensor:
        """x [C, 1, N] → logits of the cumulative distribution at x, [C, 1, N]."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(matrix), x) + bias
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, values: Tensor) -> Tensor:
        """P(value − ½ < y ≤ value + ½) per element of values [N, C, H, W] (or [C, K] for integer grids)."""
        shape = values.shape
        x = values.transpose(0, 1).reshape(self.channels, 1, -1) if values.dim() == 4 else values[:, None, :]
        lower = self._logits_cumulative(x - 0.5)
        upper = self._logits_cumulative(x + 0.5)
        sign = -torch.sign(lower + upper).detach()  # evaluate in the tail where it is numerically stable
        probability = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).clamp_min(1e-9)
        if values.dim() == 4:
            return probability.reshape(self.channels, shape[0], *shape[2:]).transpose(0, 1)
        return probability[:, 0, :]

    def forward(self, latent: Tensor) -> tuple[Tensor, Tensor]:
        """Training: (latent passed to the decoder, bits of the batch).

        The decoder sees the rounded latent with a straight-through gradient (what it will see deployed);
        the rate is the likelihood of the latent plus uniform noise (a differentiable stand-in for rounding).
        """
        if self.training:
            self._version += 1
            noisy = latent + torch.empty_like(latent).uniform_(-0.5, 0.5)
        else:
            noisy = torch.round(latent)
        bits = -torch.log2(self.likelihood(noisy)).sum()
        rounded = latent + (torch.round(latent) - latent).detach()
        return rounded, bits

    @torch.no_grad()
    def update_tables(self, max_support: int = 255) -> ChannelTables:
        """Integer tables per channel: the density on [-max_support, max_support] cut where the tail mass
        on each side is below ``tail_mass`` (those bins fold into the edges), renormalised."""
        grid = torch.arange(-max_support, max_support + 1, dtype=torch.float32)
        probability = self.likelihood(grid.expand(self.channels, -1)).double().cpu().numpy()
        lows, pmfs = [], []
        for row in probability:
            row = row / row.sum()
            cumulative = np.cumsum(row)
            first = int(np.searchsorted(cumulative, self.tail_mass))
            last = int(np.searchsorted(cumulative, 1 - self.tail_mass))
            last = min(max(last, first), len(row) - 1)
            pmf = row[first : last + 1].copy()
            pmf[0] += row[:first].sum()
            pmf[-1] += row[last + 1 :].sum()
            lows.append(first - max_support)
            pmfs.append(pmf / pmf.sum())
        self._tables = ChannelTables(tuple(lows), tuple(pmfs))
        self._tables_version = self._version
        return self._tables

    def tables(self) -> ChannelTables:
        if self._tables is None or self._tables_version != self._version:
            raise TablesNotBuilt("the entropy model's tables were not built after training: run update_tables()")
        return self._tables

    def load_tables(self, tables: ChannelTables) -> None:
        """Install tables saved with a checkpoint (so device and edge share bit-identical tables)."""
        self._tables, self._tables_version = tables, self._version
