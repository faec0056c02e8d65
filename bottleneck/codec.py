"""Deploy codecs: a feature tensor of one frame [C, H, W] ↔ a self-describing bitstream.

Bitstream (little-endian), 15 header bytes then the payload::

    magic 'S' | version (4 bits) codec id (4 bits) | C (u8) | H (u16) | W (u16) | tables fingerprint (4 B)
    | CRC-32 of the payload (4 B) | payload

* ``float32`` (id 0): the tensor as float32 — lossless, for exact split inference without a bottleneck;
* ``minmax8`` (id 1): per-tensor min/max (2 × float32) then one uint8 per value — the HND/GHND baseline;
* ``entropy`` (id 2): integer symbols range-coded, one categorical table per channel derived from the learned
  factorized density (the fingerprint names those tables). Encoding writes exactly the words
  ``constriction``'s range coder would (:mod:`splitinf.bottleneck.range_coder`, which runs where
  ``constriction`` has no wheel: aarch64 boards); decoding uses ``constriction``.

A truncated, corrupted or foreign bitstream raises :class:`CodecError` naming what is wrong: the CRC catches
damage that would otherwise decode into plausible garbage, the fingerprint catches a decoder whose tables
differ from the encoder's.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from splitinf.bottleneck.range_coder import RangeEncoder
from torch import Tensor

MAGIC = b"S"
VERSION = 1
HEADER = struct.Struct("<cBBHH4sI")  # magic, version<<4|codec, C, H, W, fingerprint, crc32
FLOAT32, MINMAX8, ENTROPY = 0, 1, 2
CODEC_NAMES = {FLOAT32: "float32", MINMAX8: "minmax8", ENTROPY: "entropy"}
NO_TABLES = b"\0\0\0\0"


class CodecError(ValueError):
    """A bitstream that cannot be decoded as claimed."""


@dataclass(frozen=True)
class Header:
    codec: int
    shape: tuple[int, int, int]
    fingerprint: bytes
    crc: int


def pack(codec: int, shape: Sequence[int], fingerprint: bytes, payload: bytes) -> bytes:
    channels, height, width = shape
    if not (channels < 256 and height < 65536 and width < 65536):
        raise ValueError(f"tensor shape {tuple(shape)} does not fit the bitstream header (C < 256, H, W < 65536)")
    header = HEADER.pack(MAGIC, VERSION << 4 | codec, channels, height, width, fingerprint, zlib.crc32(payload))
    return header + payload


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Split and check a bitstream: magic, version, CRC. Raises :class:`CodecError`."""
    if len(data) < HEADER.size:
        raise CodecError(f"bitstream of {len(data)} bytes is shorter than its {HEADER.size}-byte header (truncated)")
    magic, version_codec, channels, height, width, fingerprint, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CodecError(f"not a splitinf bitstream (first byte {magic!r}, expected {MAGIC!r})")
    version, codec = version_codec >> 4, version_codec & 0xF
    if version != VERSION:
        raise CodecError(f"bitstream version {version}, this decoder reads version {VERSION}")
    if codec not in CODEC_NAMES:
        raise CodecError(f"unknown codec id {codec} (known: {CODEC_NAMES})")
    payload = bytes(data[HEADER.size :])
    if zlib.crc32(payload) != crc:
        raise CodecError(f"bitstream payload ({len(payload)} bytes) fails its CRC-32: truncated or corrupted")
    return Header(codec, (channels, height, width), fingerprint, crc), payload


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
        array = _frame(features)
        return pack(FLOAT32, array.shape, self.fingerprint, array.astype("<f4").tobytes())

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
        array = _frame(features)
        low, high = float(array.min()), float(array.max())
        scale = (high - low) / 255.0 if high > low else 1.0
        levels = np.clip(np.rint((array - low) / scale), 0, 255).astype(np.uint8)
        return pack(MINMAX8, array.shape, self.fingerprint, struct.pack("<ff", low, scale) + levels.tobytes())

    def decompress(self, data: bytes) -> Tensor:
        header, payload = self._check(data)
        expected = 8 + int(np.prod(header.shape))
        if len(payload) != expected:
            raise CodecError(f"minmax8 payload of {len(payload)} bytes, expected {expected} for {header.shape}")
        low, scale = struct.unpack_from("<ff", payload)
        levels = np.frombuffer(payload, np.uint8, offset=8).reshape(header.shape)
        return torch.from_numpy(levels.astype(np.float32) * np.float32(scale) + np.float32(low))


@dataclass(frozen=True)
class ChannelTables:
    """Per-channel categorical distributions over the integers ``low[c] … low[c] + len(pmf[c]) - 1``."""

    low: tuple[int, ...]
    pmf: tuple[np.ndarray, ...]

    def fingerprint(self) -> bytes:
        digest = hashlib.sha256()
        for low, pmf in zip(self.low, self.pmf):
            digest.update(struct.pack("<iI", low, len(pmf)))
            digest.update(np.ascontiguousarray(pmf, dtype="<f8").tobytes())
        return digest.digest()[:4]

    def cross_entropy_bits(self, symbols: np.ndarray) -> float:
        """Bits the tables assign to integer symbols [C, H, W] (after clamping to each channel's support)."""
        bits = 0.0
        for c, (low, pmf) in enumerate(zip(self.low, self.pmf)):
            index = np.clip(symbols[c].ravel() - low, 0, len(pmf) - 1)
            bits -= float(np.log2(pmf[index]).sum())
        return bits


class EntropyCodec(Codec):
    """Range coding of rounded features with per-channel learned tables (constriction's queue coder and its
    ``Categorical(pmf, perfect=False)`` models, bit for bit).

    Values outside a channel's support (probability below the tail mass) are clamped to its edge.
    """

    codec_id, name = ENTROPY, "entropy"

    def __init__(self, tables: ChannelTables) -> None:
        self.tables = tables
        self.fingerprint = tables.fingerprint()
        self._encoder = RangeEncoder(tables.pmf)
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
        array = np.rint(_frame(features)).astype(np.int32)
        if array.shape[0] != len(self.tables.pmf):
            raise ValueError(f"features have {array.shape[0]} channels, the tables {len(self.tables.pmf)}")
        lows = np.array(self.tables.low, dtype=np.int32)[:, None, None]
        highs = lows + np.array([len(p) - 1 for p in self.tables.pmf], dtype=np.int32)[:, None, None]
        return np.clip(array, lows, highs)

    def compress(self, features: Tensor) -> bytes:
        symbols = self.symbols(features)
        words = self._encoder.encode([symbols[c] - low for c, low in enumerate(self.tables.low)])
        return pack(ENTROPY, symbols.shape, self.fingerprint, words.astype("<u4").tobytes())

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
