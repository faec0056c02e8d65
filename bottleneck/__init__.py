"""Learned bottleneck: encoder/decoder layers, factorized entropy model, deploy codecs, distillation losses.

Names are loaded on first use (PEP 562), so that a board without torch can import the torch-free
:mod:`splitinf.bottleneck.bitstream` and :mod:`splitinf.bottleneck.range_coder` from this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from splitinf.bottleneck.codec import (
        ChannelTables,
        Codec,
        CodecError,
        EntropyCodec,
        Float32Codec,
        MinMax8Codec,
    )
    from splitinf.bottleneck.entropy_model import FactorizedPrior, TablesNotBuilt
    from splitinf.bottleneck.layers import (
        Bottleneck,
        BottleneckConfig,
        CheckpointError,
        load_bottleneck,
        load_for,
        read_checkpoint,
    )

__all__ = [
    "Bottleneck",
    "BottleneckConfig",
    "ChannelTables",
    "CheckpointError",
    "Codec",
    "CodecError",
    "EntropyCodec",
    "FactorizedPrior",
    "Float32Codec",
    "MinMax8Codec",
    "TablesNotBuilt",
    "load_bottleneck",
    "load_for",
    "read_checkpoint",
]

_HOMES = {"codec": ("ChannelTables", "Codec", "CodecError", "EntropyCodec", "Float32Codec", "MinMax8Codec"),
          "entropy_model": ("FactorizedPrior", "TablesNotBuilt"),
          "layers": ("Bottleneck", "BottleneckConfig", "CheckpointError", "load_bottleneck", "load_for",
                     "read_checkpoint")}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'splitinf.bottleneck' has no attribute {name!r}")
    return getattr(importlib.import_module(f"splitinf.bottleneck.{_MODULE_OF[name]}"), name)
