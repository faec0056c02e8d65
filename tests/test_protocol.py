"""The wire protocol: exact bytes in both directions, and bounded, typed decoding of hostile input."""

import struct

import msgpack
import pytest

from splitinf.protocol import (
    HEARTBEAT_MS,
    MAX_HEADER_BYTES,
    Error,
    Frame,
    Heartbeat,
    Hello,
    ProtocolError,
    Result,
    Welcome,
    config_differences,
    decode,
    encode,
)

FRAME = Frame(7, 123456789, "split", ((432, 768), (300, 300), (300, 300)), "entropy", b"\x01\x02\x03")
FRAME_BYTES = [
    b"\x87\xa1t\xa5frame\xa1v\x02\xa3seq\x07\xa9t_capture\xce\x07[\xcd\x15\xa4mode\xa5split\xa8geometry\x93\x92"
    b"\xcd\x01\xb0\xcd\x03\x00\x92\xcd\x01,\xcd\x01,\x92\xcd\x01,\xcd\x01,\xa5codec\xa7entropy",
    b"\x01\x02\x03",
]
RESULT = Result(7, 1, struct.pack("<4f", 1, 2, 3, 4), struct.pack("<f", 0.5), struct.pack("<i", 1),
                {"queue": 1.5, "decode": 0.25, "tail": 10.0}, 2)
RESULT_BYTES = [
    b"\x86\xa1t\xa6result\xa1v\x02\xa3seq\x07\xa1n\x01\xa6timing\x83\xa5queue\xcb?\xf8\x00\x00\x00\x00\x00\x00"
    b"\xa6decode\xcb?\xd0\x00\x00\x00\x00\x00\x00\xa4tail\xcb@$\x00\x00\x00\x00\x00\x00\xa5batch\x02",
    b"\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@", b"\x00\x00\x00?", b"\x01\x00\x00\x00",
]
HELLO = Hello("cam1", "abcd", {"model": "m", "split": "s8"}, 0.05)
HELLO_BYTES = [b"\x86\xa1t\xa5hello\xa1v\x02\xa6device\xa4cam1\xabfingerprint\xa4abcd\xa6config\x82\xa5model\xa1m"
               b"\xa5split\xa2s8\xa9min_score\xcb?\xa9\x99\x99\x99\x99\x99\x9a"]
HEARTBEAT_BYTES = [b"\x82\xa1t\xa9heartbeat\xa1v\x02"]
BUDGETED = Frame(7, 5, "jpeg", ((4, 4), (4, 4), (4, 4)), "jpeg90", b"x", 250.0)
BUDGETED_BYTES = [b"\x88\xa1t\xa5frame\xa1v\x02\xa3seq\x07\xa9t_capture\x05\xa4mode\xa4jpeg\xa8geometry\x93\x92\x04"
                  b"\x04\x92\x04\x04\x92\x04\x04\xa5codec\xa6jpeg90\xa9budget_ms\xcb@o@\x00\x00\x00\x00\x00", b"x"]
ERROR_BYTES = [b"\x84\xa1t\xa5error\xa1v\x02\xa4code\xabfingerprint\xa4text\xa7differs"]


@pytest.mark.parametrize(("message", "frames"), [(FRAME, FRAME_BYTES), (RESULT, RESULT_BYTES), (HELLO, HELLO_BYTES),
                                                 (Error("fingerprint", "differs"), ERROR_BYTES),
                                                 (Heartbeat(), HEARTBEAT_BYTES), (BUDGETED, BUDGETED_BYTES)])
def test_golden_bytes_both_directions(message, frames):
    assert encode(message) == frames
    assert decode(frames) == message


def test_welcome_round_trip():
    welcome = Welcome("edge-1", "abcd", 8, 250)
    assert decode(encode(welcome)) == welcome and Welcome("e", "f", 1).heartbeat_ms == HEARTBEAT_MS


def header(**fields):
    return msgpack.packb({"t": "frame", "v": 2, **fields}, use_bin_type=True)


GOOD = {"seq": 1, "t_capture": 5, "mode": "split", "geometry": [[4, 4], [4, 4], [4, 4]], "codec": "float32"}


@pytest.mark.parametrize(("frames", "code", "text"), [
    ([], "malformed", "empty message"),
    ([b"\xc1garbage"], "malformed", "not valid msgpack"),
    ([msgpack.packb([1, 2])], "malformed", "must be a map"),
    ([msgpack.packb({"t": "frame", "v": 9})], "version", "protocol version 9"),
    ([header(**{**GOOD, "seq": "one"}), b""], "malformed", "field 'seq' is str, expected a sequence number"),
    ([header(**{**GOOD, "seq": True}), b""], "malformed", "field 'seq' is bool"),
    ([header(**{**GOOD, "mode": "teleport"}), b""], "malformed", "mode 'teleport'"),
    ([header(**{**GOOD, "geometry": [[4, 4], [4, 4], [0, 4]]}), b""], "malformed", "geometry input"),
    ([header(**GOOD)], "malformed", "0 data frames, expected 1"),
    ([header(**{k: v for k, v in GOOD.items() if k != "codec"}), b""], "malformed", "lacks field 'codec'"),
    ([b"\x81" + b"\xa1t" + b"\xdb" + struct.pack(">I", 2**31) + b"x"], "malformed", "not valid msgpack"),
    ([b"\x00" * (MAX_HEADER_BYTES + 1)], "malformed", "exceeds"),
    ([msgpack.packb({"t": "result", "v": 2, "seq": 1, "n": 2, "timing": {}, "batch": 1}), b"", b"", b""],
     "malformed", "boxes frame has 0 bytes, expected 32"),
    ([msgpack.packb({"t": "launch", "v": 2})], "malformed", "unknown message type 'launch'"),
    ([header(**{**GOOD, "budget_ms": -1}), b""], "malformed", "budget_ms must be a number of ms >= 0"),
    ([header(**{**GOOD, "budget_ms": "soon"}), b""], "malformed", "budget_ms must be a number"),
    ([msgpack.packb({"t": "welcome", "v": 2, "edge": "e", "fingerprint": "f", "max_batch": 1, "heartbeat_ms": 0})],
     "malformed", "heartbeat_ms must be within 10..60000"),
    ([msgpack.packb({"t": "heartbeat", "v": 2}), b"x"], "malformed", "1 data frames, expected 0"),
])
def test_malformed_input_is_refused_with_a_precise_error(frames, code, text):
    with pytest.raises(ProtocolError) as caught:
        decode(frames)
    assert caught.value.code == code and text in caught.value.text


def test_config_differences_name_what_differs():
    assert config_differences({"model": "a", "split": "s8"}, {"model": "a", "split": "s16"}) == [
        "split: edge has 's8', device has 's16'"]
