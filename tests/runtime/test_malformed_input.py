"""Bad input at the edge: each malformed class gets the ERROR code it should, a corrupted or truncated
bitstream after a good handshake gets ``payload`` — and the device accounts that frame as failed — and the
edge keeps serving throughout."""

from __future__ import annotations

import threading
import time

import msgpack
import pytest

from splitinf.bench.loadgen import SimulatedDevice, prepare_payloads
from splitinf.data import video_frames
from splitinf.protocol import PROTOCOL_VERSION, Error, Frame, Hello, Payload, Result, Welcome, decode, encode
from splitinf.runtime import transport
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.weights.checkpoints import default_bottleneck

from .conftest import VIDEO


@pytest.fixture(scope="module")
def shipped():
    setup = ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))
    return setup, prepare_payloads(setup, list(video_frames(VIDEO, max_frames=2)))


@pytest.fixture
def edge(edge_factory):
    return edge_factory(["--threads", "1"])


def ask(address: str, *messages: list[bytes]):
    """Send messages on one fresh connection; the decoded answer to the last one."""
    sock = transport.device_socket(address)
    try:
        for frames in messages:
            sock.send_multipart(frames)  # queued until connected: libzmq sends it once the connection is up
            assert sock.poll(10_000), "the edge did not answer"
            answer = decode(sock.recv_multipart())
        return answer
    finally:
        sock.close(linger=0)


def frame(payload: Payload, data: bytes | None = None, codec: str | None = None) -> list[bytes]:
    return encode(Frame(7, 0, payload.mode, payload.geometry, codec or payload.codec,
                        payload.data if data is None else data))


def test_each_malformed_class_gets_its_error_code(edge, shipped):
    setup, payloads = shipped
    hello = encode(Hello("probe", setup.fingerprint, setup.config))
    good = payloads[0]
    cases = {
        "malformed": [[b"\x00\xff not msgpack"], [b"x" * 70_000],
                      [msgpack.packb({"t": "frame", "v": PROTOCOL_VERSION, "seq": "x"})]],
        "version": [[msgpack.packb({"t": "hello", "v": PROTOCOL_VERSION + 1})]],
        "fingerprint": [encode(Hello("other", "0123456789abcdef", {"model": "other"}))],
        "no-handshake": [frame(good)],
    }
    for code, messages in cases.items():
        for message in messages:
            answer = ask(edge.address, message)
            assert isinstance(answer, Error) and answer.code == code, (code, answer)
    assert isinstance(ask(edge.address, hello), Welcome)
    for corrupt in (bytes(b ^ 0x5A for b in good.data), good.data[: len(good.data) // 2], b""):
        answer = ask(edge.address, hello, frame(good, corrupt))  # a good handshake, then a broken bitstream
        assert isinstance(answer, Error) and (answer.code, answer.seq) == ("payload", 7), answer
    answer = ask(edge.address, hello, frame(good, codec="minmax8"))
    assert answer.code == "payload" and "decodes 'entropy'" in answer.text
    assert isinstance(ask(edge.address, hello, frame(good)), Result)  # and it still serves a good frame
    counters = edge.stop()
    assert counters["payload_errors"] == 4 and counters["malformed"] >= 3 and counters["refused_handshakes"] == 1


def test_a_device_whose_bitstreams_break_accounts_every_frame_as_failed_while_others_are_served(edge, shipped):
    setup, payloads = shipped
    broken = [Payload(p.mode, p.geometry, p.codec, p.data[: len(p.data) // 3]) for p in payloads]
    stop = threading.Event()
    bad = SimulatedDevice(edge.address, setup, broken, stop, window=1, name="broken")
    good = SimulatedDevice(edge.address, setup, payloads, stop, window=1, name="good")
    bad.start()
    good.start()
    deadline = time.monotonic() + 60
    while (len(bad.outcomes) < 5 or len(good.completions) < 5) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling both devices' progress, bounded
    stop.set()
    bad.join(timeout=10)
    good.join(timeout=10)
    failed = [o for o in bad.outcomes if o.outcome == "failed"]
    assert len(failed) >= 5 and {o.reason for o in failed} <= {"edge error payload", "interrupted"}
    assert bad.session.counts["edge"] == 0 and len(good.completions) >= 5
    for device in (bad, good):
        summary = device.session.summary()
        assert summary["accounted"] == summary["frames"]
