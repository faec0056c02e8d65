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
    ENTROPY_VR,
    FLOAT32,
    MINMAX8,
    NO_TABLES,
    ChannelTables,
    CodecError,
    EntropyEncoder,
    Header,
    VariableRateEncoder,
    encode_float32,
    encode_minmax8,
    unpack,
)
from torch import Tensor

__all__ = ["ChannelTables", "Codec", "CodecError", "EntropyCodec", "Float32Codec", "MinMax8Codec",
           "VariableRateCodec", "describe"]

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
        return torch.from_numpy(self.planes(payload, header.shape))

    def planes(self, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        """The symbols [C, H, W] (float32) of an entropy payload."""
        channels, height, width = shape
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
        return np.stack(planes).reshape(shape).astype(np.float32)


class VariableRateCodec(Codec):
    """A variable-rate bottleneck's codec (:class:`VariableRateEncoder`): compresses at its ``rate``, decodes
    a stream of any rate (the rate index travels in the stream) back to features on one scale — the
    symbols times that rate's inverse gain — so one decoder and one tail serve every rate."""

    codec_id, name = ENTROPY_VR, "entropy-vr"

    def __init__(self, tables: list[ChannelTables], gains: list[tuple[np.ndarray, np.ndarray]], rate: int = 0,
                 encoder: VariableRateEncoder | None = None, decoders: list[EntropyCodec] | None = None) -> None:
        self.encoder = encoder or VariableRateEncoder(tables, gains)
        if not 0 <= rate < self.encoder.rates:
            raise ValueError(f"rate {rate} is not one of this bottleneck's rates 0..{self.encoder.rates - 1}")
        self.tables, self.gains, self.rate = tables, gains, rate
        self.fingerprint = self.encoder.fingerprint
        self.decoders = decoders or [EntropyCodec(t) for t in tables]

    @property
    def rates(self) -> int:
        return self.encoder.rates

    def at(self, rate: int) -> VariableRateCodec:
        """The same codec compressing at another rate (tables and decoders shared)."""
        return VariableRateCodec(self.tables, self.gains, rate, self.encoder, self.decoders)

    def symbols(self, features: Tensor) -> np.ndarray:
        return self.encoder.symbols(_frame(features), self.rate)

    def compress(self, features: Tensor) -> bytes:
        return self.encoder.encode(_frame(features), self.rate)

    def decompress(self, data: bytes) -> Tensor:
        header, payload = self._check(data)
        if not payload:
            raise CodecError("entropy-vr payload is empty: no rate index (truncated)")
        rate = payload[0]
        if rate >= self.rates:
            raise CodecError(f"bitstream at rate {rate}, this bottleneck has rates 0..{self.rates - 1}")
        planes = self.decoders[rate].planes(payload[1:], header.shape)
        return torch.from_numpy(planes * self.gains[rate][1][:, None, None])


def describe(data: bytes) -> str:
    header, payload = unpack(data)
    return f"{CODEC_NAMES[header.codec]} {header.shape} {len(data)} B (tables {header.fingerprint.hex()})"
