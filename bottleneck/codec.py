"""Deploy codecs: a feature tensor of one frame [C, H, W] ↔ a self-describing bitstream.

The bitstream and its encoders are :mod:`splitinf.bottleneck.bitstream` (torch-free, what a board runs); these
classes take tensors and decode (the edge decodes entropy-coded streams with ``constriction``).

A truncated, corrupted or foreign bitstream raises :class:`CodecError` naming what is wrong: the CRC catches
damage that would otherwise decode into plausible garbage, the fingerprint catches a decoder whose tables
differ from the encoder's.
"""

from __future__ import annotations

import struct

import numpy as np
import torch
from splitinf.bottleneck.bitstream import (
    CODEC_NAMES,
    ENTROPY,
    FLOAT32,
    MINMAX8,
    NO_TABLES,
    ChannelTables,
    CodecError,
    EntropyEncoder,
    Header,
    encode_float32,
    encode_minmax8,
    unpack,
)
from torch import Tensor

__all__ = ["ChannelTables", "Codec", "CodecError", "EntropyCodec", "Float32Codec", "MinMax8Codec", "describe"]

class Codec:
    codec_id: int
    name: str
    fingerprint: bytes = NO_TABLES

    def compress(self, features: Tensor) -> bytes:
        raise NotImplementedError

    def decompress(self, data: bytes) -> Tensor:
        raise NotImplementedError

    def _check(self, data: bytes) -> tuple[Header, bytes]:
        header, payload = unpack(data)
        if header.codec != self.codec_id:
            raise CodecError(f"bitstream uses codec {CODEC_NAMES[header.codec]!r}, this decoder is {self.name!r}")
        if header.fingerprint != self.fingerprint:
            raise CodecError(f"bitstream was coded with tables {header.fingerprint.hex()}, this decoder has "
                             f"{self.fingerprint.hex()} (device and edge run different bottlenecks)")
        return header, payload


def _frame(features: Tensor) -> np.ndarray:
    if features.dim() != 3:
        raise ValueError(f"a codec takes one frame [C, H, W], got shape {tuple(features.shape)}")
    return features.detach().to("cpu", torch.float32).contiguous().numpy()


class Float32Codec(Codec):
    codec_id, name = FLOAT32, "float32"

    def compress(self, features: Tensor) -> bytes:
        return encode_float32(_frame(features), self.fingerprint)

    def decompress(self, data: bytes) -> Tensor:
        header, payload = self._check(data)
        expected = int(np.prod(header.shape)) * 4
        if len(payload) != expected:
            raise CodecError(f"float32 payload of {len(payload)} bytes, expected {expected} for {header.shape}")
        return torch.from_numpy(np.frombuffer(payload, "<f4").reshape(header.shape).copy())


class MinMax8Codec(Codec):
    """Per-tensor min/max linear quantization to 8 bits, no entropy coding."""

    codec_id, name = MINMAX8, "minmax8"

    def compress(self, features: Tensor) -> bytes:
        return encode_minmax8(_frame(features), self.fingerprint)

    def decompress(self, data: bytes) -> Tensor:
        header, payload = self._check(data)
        expected = 8 + int(np.prod(header.shape))
        if len(payload) != expected:
            raise CodecError(f"minmax8 payload of {len(payload)} bytes, expected {expected} for {header.shape}")
        low, scale = struct.unpack_from("<ff", payload)
        levels = np.frombuffer(payload, np.uint8, offset=8).reshape(header.shape)
        return torch.from_numpy(levels.astype(np.float32) * np.float32(scale) + np.float32(low))


class EntropyCodec(Codec):
    """Range coding of rounded features with per-channel learned tables (:class:`EntropyEncoder`); decoded
    with constriction's queue coder. Values outside a channel's support are clamped to its edge."""

    codec_id, name = ENTROPY, "entropy"

    def __init__(self, tables: ChannelTables) -> None:
        self.tables = tables
        self.encoder = EntropyEncoder(tables)
        self.fingerprint = self.encoder.fingerprint
        self._decoder_models: list | None = None  # built on the first decode: an encoding device needs none

    @property
    def _models(self) -> list:
        if self._decoder_models is None:
            import constriction  # the edge's side only: no aarch64 wheel exists

            self._decoder_models = [constriction.stream.model.Categorical(pmf, perfect=False)
                                    for pmf in self.tables.pmf]
        return self._decoder_models

    def symbols(self, features: Tensor) -> np.ndarray:
        """The integer symbols [C, H, W] a frame is coded as (rounded, clamped to the supports)."""
        return self.encoder.symbols(_frame(features))

    def compress(self, features: Tensor) -> bytes:
        return self.encoder.encode(_frame(features))

    def decompress(self, data: bytes) -> Tensor:
        header, payload = self._check(data)
        channels, height, width = header.shape
        if channels != len(self.tables.pmf):
            raise CodecError(f"bitstream has {channels} channels, the tables {len(self.tables.pmf)}")
        if len(payload) % 4:
            raise CodecError(f"entropy payload of {len(payload)} bytes is not whole 32-bit words (truncated)")
        models = self._models
        import constriction

        try:
            decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, "<u4").copy())
            planes = [decoder.decode(model, height * width) + low for model, low in zip(models, self.tables.low)]
        except Exception as exc:  # constriction reports damaged streams with several exception types
            raise CodecError(f"entropy payload cannot be decoded: {exc}") from None
        return torch.from_numpy(np.stack(planes).reshape(header.shape).astype(np.float32))


def describe(data: bytes) -> str:
    header, payload = unpack(data)
    return f"{CODEC_NAMES[header.codec]} {header.shape} {len(data)} B (tables {header.fingerprint.hex()})"
