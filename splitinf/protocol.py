"""The device ↔ edge wire protocol, sans I/O: messages ↔ lists of ZeroMQ frames. No torch, no zmq.

Every message is a list of frames: frame 0 is a msgpack map with ``"t"`` (the type) and ``"v"`` (the
protocol version); large buffers (payloads, detection arrays) travel as their own frames after it, never
inside msgpack. Unpacking is bounded (sizes, counts, types) and never pickles; anything malformed raises
:class:`ProtocolError` with a code and a text naming the field and what was expected.

    HELLO      device → edge  {t, v, device, fingerprint, config, min_score}
    WELCOME    edge → device  {t, v, edge, fingerprint, max_batch, heartbeat_ms}
    FRAME      device → edge  {t, v, seq, t_capture, mode, geometry, codec, budget_ms?}  + [payload]
    RESULT     edge → device  {t, v, seq, n, timing {queue, decode, tail} ms, batch}  + [boxes f32 n×4, scores f32 n,
                              labels i32 n]
    HEARTBEAT  either way     {t, v}
    ERROR      either way     {t, v, code, text, seq?}

Liveness follows the zguide's Paranoid Pirate: a device sends HEARTBEAT every ``heartbeat_ms`` (the edge's,
from WELCOME) and the edge answers each; a device that hears nothing for ``DEVICE_LIVENESS`` periods takes the
edge for gone and starts over, and the edge forgets a device silent for ``EDGE_LIVENESS`` periods. A FRAME's
``budget_ms`` is how long the device will still wait for its result: an edge that could only answer later
(its queue) answers ``overloaded`` instead of spending compute on a result nobody reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from splitinf.modes import OFFLOAD_MODES as MODES

PROTOCOL_VERSION = 2
HEARTBEAT_MS = 1000  # default heartbeat period
DEVICE_LIVENESS = 3  # periods of silence after which a device takes the edge for gone
EDGE_LIVENESS = 2  # periods of silence after which the edge forgets a device (a live one beats every period)
MAX_HEADER_BYTES = 64 * 1024  # a header is a few hundred bytes; anything bigger is hostile or broken
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_DETECTIONS = 10_000
# "unavailable": the edge is up but its compute is not (its Ray tail lost); a device treats it as it treats an
# edge it cannot reach — backs off from offloading and answers the frame locally where it may.
ERROR_CODES = ("malformed", "version", "fingerprint", "no-handshake", "payload", "overloaded", "internal",
               "unavailable")


class ProtocolError(ValueError):
    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code, self.text = code, text


@dataclass(frozen=True)
class Hello:
    device: str
    fingerprint: str
    config: dict[str, Any]
    min_score: float = 0.05


@dataclass(frozen=True)
class Welcome:
    edge: str
    fingerprint: str
    max_batch: int
    heartbeat_ms: int = HEARTBEAT_MS


@dataclass(frozen=True)
class Frame:
    seq: int
    t_capture: int  # device clock, ns (only the device reads it back)
    mode: str
    geometry: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # original, resized, input (h, w)
    codec: str
    payload: bytes = field(repr=False)
    budget_ms: float | None = None  # how long the device still waits for the result (None: no limit)


@dataclass(frozen=True)
class Payload:
    """What a device half makes of a frame for the edge: a FRAME without its sequence number and times."""

    mode: str  # one of MODES
    geometry: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    codec: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Result:
    seq: int
    n: int
    boxes: bytes = field(repr=False)  # float32 little-endian, n × 4 (x1, y1, x2, y2 pixels)
    scores: bytes = field(repr=False)  # float32 n
    labels: bytes = field(repr=False)  # int32 n
    timing: dict[str, float] = field(default_factory=dict)  # edge-side ms: queue, decode, tail
    batch: int = 1


@dataclass(frozen=True)
class Heartbeat:
    pass


@dataclass(frozen=True)
class Error:
    code: str
    text: str
    seq: int | None = None


Message = Hello | Welcome | Frame | Result | Heartbeat | Error


def _header(kind: str, **fields: Any) -> bytes:
    return msgpack.packb({"t": kind, "v": PROTOCOL_VERSION, **fields}, use_bin_type=True)


def encode(message: Message) -> list[bytes]:
    """A message → ZeroMQ frames."""
    if isinstance(message, Hello):
        return [_header("hello", device=message.device, fingerprint=message.fingerprint, config=message.config,
                        min_score=message.min_score)]
    if isinstance(message, Welcome):
        return [_header("welcome", edge=message.edge, fingerprint=message.fingerprint, max_batch=message.max_batch,
                        heartbeat_ms=message.heartbeat_ms)]
    if isinstance(message, Frame):
        geometry = [list(pair) for pair in message.geometry]
        budget = {} if message.budget_ms is None else {"budget_ms": float(message.budget_ms)}
        return [_header("frame", seq=message.seq, t_capture=message.t_capture, mode=message.mode,
                        geometry=geometry, codec=message.codec, **budget), message.payload]
    if isinstance(message, Heartbeat):
        return [_header("heartbeat")]
    if isinstance(message, Result):
        return [_header("result", seq=message.seq, n=message.n, timing=message.timing, batch=message.batch),
                message.boxes, message.scores, message.labels]
    if isinstance(message, Error):
        fields = {"code": message.code, "text": message.text}
        if message.seq is not None:
            fields["seq"] = message.seq
        return [_header("error", **fields)]
    raise TypeError(f"not a protocol message: {type(message).__name__}")


def _get(header: dict, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in header:
        raise ProtocolError("malformed", f"{header.get('t')} message lacks field {name!r} ({what})")
    value = header[name]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ProtocolError("malformed", f"field {name!r} is {type(value).__name__}, expected {what}")
    return value


def _size_pair(value: Any, name: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536 for v in value)):
        raise ProtocolError("malformed", f"geometry {name} must be [height, width] in 1..65535, got {value!r}")
    return value[0], value[1]


def decode(frames: list[bytes]) -> Message:
    """ZeroMQ frames → a message, with every field checked. Raises :class:`ProtocolError`."""
    if not frames:
        raise ProtocolError("malformed", "empty message")
    if len(frames[0]) > MAX_HEADER_BYTES:
        raise ProtocolError("malformed", f"header of {len(frames[0])} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(frames[0], raw=False, strict_map_key=True, max_str_len=4096, max_bin_len=4096,
                                 max_array_len=256, max_map_len=64, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # the types msgpack raises for bad input
        raise ProtocolError("malformed", f"header is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError("malformed", f"header must be a map, got {type(header).__name__}")
    version = _get(header, "v", int, "the protocol version (int)")
    if version != PROTOCOL_VERSION:
        raise ProtocolError("version", f"protocol version {version}, this side speaks {PROTOCOL_VERSION}")
    kind = _get(header, "t", str, "the message type (str)")
    extra = frames[1:]

    def expect_frames(count: int) -> None:
        if len(extra) != count:
            raise ProtocolError("malformed", f"{kind} message has {len(extra)} data frames, expected {count}")

    if kind == "hello":
        expect_frames(0)
        config = _get(header, "config", dict, "the model configuration (map)")
        min_score = header.get("min_score", 0.05)
        if not isinstance(min_score, (int, float)) or isinstance(min_score, bool) or not 0 <= min_score <= 1:
            raise ProtocolError("malformed", f"min_score must be a number in [0, 1], got {min_score!r}")
        return Hello(_get(header, "device", str, "a device name (str)"),
                     _get(header, "fingerprint", str, "the model fingerprint (str)"), config, float(min_score))
    if kind == "welcome":
        expect_frames(0)
        heartbeat_ms = _get(header, "heartbeat_ms", int, "the heartbeat period in ms (int)")
        if not 10 <= heartbeat_ms <= 60_000:
            raise ProtocolError("malformed", f"heartbeat_ms must be within 10..60000, got {heartbeat_ms}")
        return Welcome(_get(header, "edge", str, "an edge name (str)"),
                       _get(header, "fingerprint", str, "the model fingerprint (str)"),
                       _get(header, "max_batch", int, "the edge's batch size (int)"), heartbeat_ms)
    if kind == "frame":
        expect_frames(1)
        mode = _get(header, "mode", str, f"one of {MODES}")
        if mode not in MODES:
            raise ProtocolError("malformed", f"mode {mode!r} is not one of {MODES}")
        geometry = _get(header, "geometry", list, "[original, resized, input] sizes")
        if len(geometry) != 3:
            raise ProtocolError("malformed", f"geometry must hold 3 sizes, got {len(geometry)}")
        if len(extra[0]) > MAX_PAYLOAD_BYTES:
            raise ProtocolError("payload", f"payload of {len(extra[0])} bytes exceeds {MAX_PAYLOAD_BYTES}")
        seq = _get(header, "seq", int, "a sequence number (int)")
        budget = header.get("budget_ms")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
            raise ProtocolError("malformed", f"budget_ms must be a number of ms >= 0, got {budget!r}")
        return Frame(seq, _get(header, "t_capture", int, "a capture time in ns (int)"), mode,
                     tuple(_size_pair(g, n) for g, n in zip(geometry, ("original", "resized", "input"))),
                     _get(header, "codec", str, "the payload codec (str)"), bytes(extra[0]),
                     None if budget is None else float(budget))
    if kind == "result":
        expect_frames(3)
        n = _get(header, "n", int, "the number of detections (int)")
        if not 0 <= n <= MAX_DETECTIONS:
            raise ProtocolError("malformed", f"{n} detections is outside 0..{MAX_DETECTIONS}")
        expected = (("boxes", extra[0], 16 * n), ("scores", extra[1], 4 * n), ("labels", extra[2], 4 * n))
        for name, frame, size in expected:
            if len(frame) != size:
                raise ProtocolError("malformed", f"{name} frame has {len(frame)} bytes, expected {size} for n={n}")
        timing = _get(header, "timing", dict, "edge timings (map)")
        if not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in timing.items()):
            raise ProtocolError("malformed", "timing must map stage names to milliseconds")
        return Result(_get(header, "seq", int, "a sequence number (int)"), n, bytes(extra[0]), bytes(extra[1]),
                      bytes(extra[2]), {k: float(v) for k, v in timing.items()},
                      _get(header, "batch", int, "the batch size (int)"))
    if kind == "heartbeat":
        expect_frames(0)
        return Heartbeat()
    if kind == "error":
        expect_frames(0)
        seq = header.get("seq")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
            raise ProtocolError("malformed", f"error seq must be an int, got {seq!r}")
        return Error(_get(header, "code", str, "an error code (str)"), _get(header, "text", str, "a text (str)"), seq)
    raise ProtocolError("malformed", f"unknown message type {kind!r}")


def config_differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Human-readable differences between two model configurations (for a refused handshake)."""
    keys = sorted(set(ours) | set(theirs))
    return [f"{k}: edge has {ours.get(k)!r}, device has {theirs.get(k)!r}"
            for k in keys if ours.get(k) != theirs.get(k)]
