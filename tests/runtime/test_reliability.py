"""zguide reliability: heartbeats both ways, a hung edge noticed and left, an edge that forgets silent devices,
and ``overloaded``: a bounded queue at the edge, a device that backs off and, where it may, answers locally."""

from __future__ import annotations

import json
import signal
import threading
import time

import zmq
from splitinf.head.modes import torch_engine

from splitinf.bench.loadgen import SimulatedDevice, prepare_payloads
from splitinf.data import video_frames
from splitinf.protocol import Heartbeat, Hello, Welcome, decode, encode
from splitinf.runtime.device import DeviceClient
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.weights.checkpoints import default_bottleneck

from .conftest import FAST_MODEL, VIDEO
from .scripted_edge import ScriptedEdge

FRAMES = 9


def shipped() -> ModelSetup:
    return ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))


def run(client: DeviceClient, frames: int = FRAMES, fps: float = 5.0) -> tuple[dict, dict]:
    outcomes = {}
    client.on_outcome = lambda outcome, _: outcomes.setdefault(outcome.seq, outcome)
    return client.run(FrameSource(VIDEO, fps=fps, start=700), frames), outcomes


def test_an_overloaded_edge_makes_the_device_back_off_and_answer_locally_where_it_may():
    def script(seq: int) -> str:
        return "overloaded" if seq % 3 == 1 else "result"

    setup = shipped()
    with ScriptedEdge(setup.fingerprint, script) as edge:
        summary, outcomes = run(DeviceClient(torch_engine(setup), edge.address, mode="split", fallback_local=True))
    refused = [s for s in outcomes if script(s) == "overloaded"]
    assert summary["overloaded"] == len(refused) == 3
    assert all(outcomes[s].outcome == "local" for s in refused)  # it still had the frame: answered locally
    assert summary["rescued"] == 3 and summary["accounted"] == FRAMES
    with ScriptedEdge(setup.fingerprint, script) as edge:
        summary, outcomes = run(DeviceClient(torch_engine(setup), edge.address, mode="split"))
    assert {outcomes[s].reason for s in refused} == {"edge overloaded"} and summary["counts"]["failed"] == 3


def test_a_device_leaves_a_hung_edge_after_three_silent_heartbeat_periods_and_greets_it_again():
    setup = shipped()
    with ScriptedEdge(setup.fingerprint, heartbeat_ms=100) as edge:
        client = DeviceClient(torch_engine(setup), edge.address, mode="split", fallback_local=True)
        threading.Timer(0.6, edge.muted.set).start()  # hung from 0.6 s: it hears, and never answers …
        threading.Timer(1.6, edge.muted.clear).start()  # … until 1.6 s
        summary, outcomes = run(client, frames=15)
    assert summary["reconnects"] >= 1 and edge.hellos >= 2  # it noticed, left, and greeted the edge again
    assert summary["heartbeats"] >= 1 and summary["accounted"] == 15
    assert summary["counts"]["failed"] == 0  # what was in flight when it left was answered locally
    assert any(o.outcome == "edge" for s, o in outcomes.items() if o.captured_ms - client.session.started_ms > 2000)


def dealer(address: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def summary_of(edge, path) -> dict:
    """The edge's counters as it serves: SIGUSR1 makes it write them (atomically) to --summary-json."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    edge.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime_ns != before:
            return json.loads(path.read_text())
        time.sleep(0.02)
    raise AssertionError("the edge did not write its summary on SIGUSR1")


def test_the_edge_answers_heartbeats_and_forgets_a_silent_device(edge_factory, tmp_path):
    path = tmp_path / "edge.json"
    edge = edge_factory([*FAST_MODEL, "--heartbeat-ms", "100", "--summary-json", str(path)])
    setup = ModelSetup.build(DEFAULT_MODEL, None, "s16", None)
    sock = dealer(edge.address)
    sock.send_multipart(encode(Hello("short-lived", setup.fingerprint, setup.config)))
    assert sock.poll(10_000)
    welcome = decode(sock.recv_multipart())
    assert isinstance(welcome, Welcome) and welcome.heartbeat_ms == 100  # the device adopts the edge's period
    sock.send_multipart(encode(Heartbeat()))
    assert sock.poll(10_000) and decode(sock.recv_multipart()) == Heartbeat()
    assert summary_of(edge, path)["peers"] == 1
    sock.close()  # it vanishes without a word
    deadline = time.monotonic() + 5
    while (counters := summary_of(edge, path))["peers"] and time.monotonic() < deadline:
        pass
    assert counters["peers"] == 0 and counters["expired_peers"] == 1 and counters["heartbeats"] == 1
    unknown = dealer(edge.address)
    unknown.send_multipart(encode(Heartbeat()))
    assert unknown.poll(10_000) and decode(unknown.recv_multipart()).code == "no-handshake"
    unknown.close()


def test_a_full_queue_answers_overloaded_and_every_device_accounts_for_every_frame(edge_factory):
    edge = edge_factory([*FAST_MODEL, "--max-queue", "1", "--max-batch", "1"])
    setup = ModelSetup.build(DEFAULT_MODEL, None, "s16", None)
    payloads = prepare_payloads(setup, list(video_frames(VIDEO, max_frames=2)))
    stop = threading.Event()
    devices = [SimulatedDevice(edge.address, setup, payloads, stop, window=3, name=f"flood-{i}") for i in range(6)]
    for device in devices:
        device.start()
    deadline = time.monotonic() + 60
    while (sum(d.session.overloaded for d in devices) < 5 or not any(d.completions for d in devices)) \
            and time.monotonic() < deadline:  # refused frames, and served ones
        time.sleep(0.05)
    stop.set()
    for device in devices:
        device.join(timeout=10)
    summaries = [d.session.summary() for d in devices]
    assert sum(s["overloaded"] for s in summaries) >= 5  # a queue of one frame for six devices
    assert all(s["accounted"] == s["frames"] for s in summaries)
    assert sum(s["counts"]["edge"] for s in summaries) > 0
    counters = edge.stop()
    assert counters["overloaded"] >= 5
