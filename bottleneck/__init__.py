"""Learned bottleneck: encoder/decoder layers, factorized entropy model, deploy codecs, distillation losses."""

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
