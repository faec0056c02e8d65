"""The bitstream a device writes, without torch: header, CRC, and each codec's encoder on a NumPy array of one
frame [C, H, W]. A board imports this module alone; :mod:`splitinf.bottleneck.codec` wraps it for tensors and
adds the decoders (the edge's side).

Bitstream (little-endian), 15 header bytes then the payload::

    magic 'S' | version (4 bits) codec id (4 bits) | C (u8) | H (u16) | W (u16) | tables fingerprint (4 B)
    | CRC-32 of the payload (4 B) | payload

* ``float32`` (id 0): the tensor as float32 — lossless, for exact split inference without a bottleneck;
* ``minmax8`` (id 1): per-tensor min/max (2 × float32) then one uint8 per value — the HND/GHND baseline;
* ``entropy`` (id 2): integer symbols range-coded, one categorical table per channel derived from the learned
  factorized density (the fingerprint names those tables). Encoding writes exactly the words
  ``constriction``'s range coder would (:mod:`splitinf.bottleneck.range_coder`, which runs where
  ``constriction`` has no wheel: aarch64 boards); decoding uses ``constriction``;
* ``entropy-vr`` (id 3): a variable-rate bottleneck's stream — one more header byte, the rate index, then the
  ``entropy`` payload of the features times that rate's gain, coded with that rate's tables (the fingerprint
  names all the rates' tables and gains).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from splitinf.bottleneck.range_coder import RangeEncoder

MAGIC = b"S"
VERSION = 1
HEADER = struct.Struct("<cBBHH4sI")  # magic, version<<4|codec, C, H, W, fingerprint, crc32
FLOAT32, MINMAX8, ENTROPY, ENTROPY_VR = 0, 1, 2, 3
CODEC_NAMES = {FLOAT32: "float32", MINMAX8: "minmax8", ENTROPY: "entropy", ENTROPY_VR: "entropy-vr"}
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


def check_frame(array: np.ndarray) -> np.ndarray:
    """One frame [C, H, W] as float32."""
    if array.ndim != 3:
        raise ValueError(f"a codec takes one frame [C, H, W], got shape {tuple(array.shape)}")
    return np.ascontiguousarray(array, dtype=np.float32)


def encode_float32(array: np.ndarray, fingerprint: bytes = NO_TABLES) -> bytes:
    array = check_frame(array)
    return pack(FLOAT32, array.shape, fingerprint, array.astype("<f4").tobytes())


def encode_minmax8(array: np.ndarray, fingerprint: bytes = NO_TABLES) -> bytes:
    """Per-tensor min/max linear quantization to 8 bits, no entropy coding."""
    array = check_frame(array)
    low, high = float(array.min()), float(array.max())
    scale = (high - low) / 255.0 if high > low else 1.0
    levels = np.clip(np.rint((array - low) / scale), 0, 255).astype(np.uint8)
    return pack(MINMAX8, array.shape, fingerprint, struct.pack("<ff", low, scale) + levels.tobytes())


class EntropyEncoder:
    """Range coding of rounded features with per-channel tables (constriction's queue coder and its
    ``Categorical(pmf, perfect=False)`` models, bit for bit).

    Values outside a channel's support (probability below the tail mass) are clamped to its edge.
    """

    def __init__(self, tables: ChannelTables) -> None:
        self.tables = tables
        self.fingerprint = tables.fingerprint()
        self._coder = RangeEncoder(tables.pmf)
        self._lows = np.array(tables.low, dtype=np.int32)[:, None, None]
        self._highs = self._lows + np.array([len(p) - 1 for p in tables.pmf], dtype=np.int32)[:, None, None]

    def symbols(self, array: np.ndarray) -> np.ndarray:
        """The integer symbols [C, H, W] a frame is coded as (rounded, clamped to the supports)."""
        rounded = np.rint(check_frame(array)).astype(np.int32)
        if rounded.shape[0] != len(self.tables.pmf):
            raise ValueError(f"features have {rounded.shape[0]} channels, the tables {len(self.tables.pmf)}")
        return np.clip(rounded, self._lows, self._highs)

    def words(self, symbols: np.ndarray) -> bytes:
        """The range coder's 32-bit words for symbols made by :meth:`symbols`, as bytes."""
        return self._coder.encode(list(symbols - self._lows)).astype("<u4").tobytes()

    def encode(self, array: np.ndarray) -> bytes:
        symbols = self.symbols(array)
        return pack(ENTROPY, symbols.shape, self.fingerprint, self.words(symbols))


def rates_fingerprint(tables: Sequence[ChannelTables], gains: Sequence[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """4 bytes naming every rate's tables, gain and inverse gain (device and edge must share all of them)."""
    digest = hashlib.sha256()
    for table, (gain, inverse) in zip(tables, gains):
        digest.update(table.fingerprint())
        digest.update(np.ascontiguousarray(gain, "<f4").tobytes() + np.ascontiguousarray(inverse, "<f4").tobytes())
    return digest.digest()[:4]


class VariableRateEncoder:
    """A variable-rate bottleneck's encoder: at rate ``r`` the features are multiplied by that rate's gain
    (per channel), rounded and range-coded with its tables; the rate index leads the payload."""

    def __init__(self, tables: Sequence[ChannelTables], gains: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        if len(tables) != len(gains) or not 1 <= len(tables) < 256:
            raise ValueError(f"{len(tables)} rates of tables and {len(gains)} of gains: one of each per rate, < 256")
        self.encoders = [EntropyEncoder(t) for t in tables]
        self.gains = [np.asarray(g, np.float32)[:, None, None] for g, _ in gains]
        self.fingerprint = rates_fingerprint(tables, gains)

    @property
    def rates(self) -> int:
        return len(self.encoders)

    def symbols(self, array: np.ndarray, rate: int) -> np.ndarray:
        return self.encoders[rate].symbols(check_frame(array) * self.gains[rate])

    def encode(self, array: np.ndarray, rate: int) -> bytes:
        if not 0 <= rate < self.rates:
            raise ValueError(f"rate {rate} is not one of this bottleneck's rates 0..{self.rates - 1}")
        symbols = self.symbols(array, rate)
        return pack(ENTROPY_VR, symbols.shape, self.fingerprint, bytes([rate]) + self.encoders[rate].words(symbols))
