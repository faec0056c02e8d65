"""Device and edge as real processes: exactness, accounting, robustness to hostile peers, recovery, auth."""

import os
import socket
import subprocess
import threading
import time

import msgpack
import numpy as np
import pytest
import torch
import zmq
from splitinf.head.modes import torch_engine

from splitinf.data import resolve, video_frames
from splitinf.models import build_detector
from splitinf.protocol import PROTOCOL_VERSION, Hello, encode
from splitinf.runtime.device import DeviceClient
from splitinf.runtime.policy import MIN_RATE_SAMPLES
from splitinf.runtime.processes import device_command as _device_command
from splitinf.runtime.processes import device_results, half_the_cores
from splitinf.runtime.processes import run_device as _run_device
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource

from .conftest import FAST_MODEL, VIDEO
from .scripted_edge import ScriptedEdge


def device_command(address, args, folder):
    return _device_command(address, VIDEO, folder, args)


def run_device(address, args, folder):
    return _run_device(address, VIDEO, folder, args)


@pytest.mark.slow  # in one process: tests/test_models.py (bitwise, every split point)
def test_split_without_bottleneck_equals_the_unsplit_model_across_processes(edge_factory, tmp_path):
    exact = ["--bottleneck", "none", "--split", "s8", "--codec", "float32"]
    edge = edge_factory(exact)
    summary, frames = run_device(edge.address, [*exact, "--frames", "12", "--fps", "2", "--window", "1",
                                                "--min-score", "0.0"], tmp_path)
    assert summary["frames"] == 12 and summary["accounted"] == 12
    delivered = {f["frame"]: f for f in frames if f["outcome"] == "edge"}
    assert len(delivered) >= 6
    detector = build_detector("ssdlite_mobilenet_v2_person", weights="pretrained")
    with torch.inference_mode():
        for index, image in enumerate(video_frames(resolve(VIDEO), max_frames=12)):
            if index not in delivered:
                continue
            local = detector([image])[0]
            expected = [[*(float(v) for v in box.numpy().astype(np.float32)), float(np.float32(score)), int(label)]
                        for box, score, label in zip(local["boxes"], local["scores"], local["labels"])]
            assert delivered[index]["detections"] == expected  # tolerance 0
    edge_summary = edge.stop()
    # every delivered frame was computed by the edge; more only where an answer came after its frame's deadline
    late = summary["late_results"] + summary["counts"]["stale"]
    assert edge_summary["malformed"] == 0 and len(delivered) <= edge_summary["batched_frames"] <= len(delivered) + late


def hostile_client(address: str, stop: threading.Event) -> None:
    """Everything a broken or malicious peer might send, in a loop, while a real device streams."""
    context = zmq.Context.instance()
    host, port = address.removeprefix("tcp://").split(":")
    payloads = [
        [b"\x00\xff random bytes"],
        [b"\x93\x01"],  # truncated msgpack array
        [msgpack.packb({"t": "frame", "v": PROTOCOL_VERSION, "seq": "x"})],  # wrong types
        [b"\xdb\xff\xff\xff\xff"],  # a str claiming 4 GB
        [msgpack.packb({"t": "frame", "v": PROTOCOL_VERSION, "seq": 1, "t_capture": 0, "mode": "split",
                        "geometry": [[1, 1], [1, 1], [1, 1]], "codec": "minmax8"}), b"payload"],  # no handshake
        encode(Hello("intruder", "0123456789abcdef", {"model": "other"})),  # wrong fingerprint
        [b"x" * 70_000],  # header too big
    ]
    while not stop.is_set():
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(address)
        for frames in payloads:
            dealer.send_multipart(frames)
        time.sleep(0.05)
        while dealer.poll(10):
            dealer.recv_multipart()
        dealer.close()
        with socket.create_connection((host, int(port)), timeout=1) as raw:  # not even ZMTP
            raw.sendall(os.urandom(512))
        time.sleep(0.1)


@pytest.mark.slow
def test_hostile_peers_do_not_disturb_a_streaming_device(edge_factory, tmp_path):
    """The fast representative: tests/runtime/test_malformed_input.py (each class and its ERROR code)."""
    edge = edge_factory(FAST_MODEL)
    stop = threading.Event()
    attacker = threading.Thread(target=hostile_client, args=(edge.address, stop), daemon=True)
    attacker.start()
    try:
        summary, frames = run_device(edge.address, [*FAST_MODEL, "--frames", "20", "--fps", "3"], tmp_path)
    finally:
        stop.set()
        attacker.join(timeout=10)
    assert summary["accounted"] == summary["frames"] == 20
    # the hostile traffic causes no failure; "stale" only means this (possibly loaded) CPU fell behind 3 fps
    assert summary["counts"]["failed"] == 0 and summary["counts"]["edge"] >= 8, summary
    edge_summary = edge.stop()  # still up: it answers SIGINT with its summary
    assert edge_summary["malformed"] >= 5 and edge_summary["refused_handshakes"] >= 1
    assert edge_summary["no_handshake"] >= 1
    assert edge_summary["rejected_connections"] >= 1  # the raw TCP garbage never became a ZeroMQ peer


def edge_results_so_far(folder) -> int:
    path = folder / "frames.jsonl"
    return path.read_text().count('"outcome": "edge"') if path.exists() else 0


@pytest.mark.slow
def test_device_recovers_when_the_edge_is_killed_and_restarted(edge_factory, tmp_path):
    """The fast representative: tests/runtime/test_reliability.py (a hung edge left and greeted again)."""
    edge = edge_factory(FAST_MODEL)
    device = subprocess.Popen(device_command(edge.address, [*FAST_MODEL, "--frames", "200", "--fps", "8",
                                                            "--deadline-ms", "1000"], tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while edge_results_so_far(tmp_path) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the device's own output, bounded
        edge.kill()
        before = edge_results_so_far(tmp_path)
        edge_factory(FAST_MODEL, port=edge.port)  # returns once the new edge is serving
        out, err = device.communicate(timeout=300)
    finally:
        if device.poll() is None:
            device.kill()
    assert device.returncode == 0, err
    summary, frames = device_results(tmp_path)
    assert summary["accounted"] == summary["frames"] == 200 == len({f["frame"] for f in frames})
    assert summary["reconnects"] >= 1
    assert summary["counts"]["edge"] > before + 10  # it kept streaming after the restart


def test_edge_refuses_a_device_with_another_model_and_says_why(edge_factory, tmp_path):
    edge = edge_factory(FAST_MODEL)
    other = ["--bottleneck", "none", "--split", "s8", "--frames", "2"]
    result = subprocess.run(device_command(edge.address, other, tmp_path), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "split: edge has 's16', device has 's8'" in result.stderr
    assert edge.stop()["refused_handshakes"] >= 1



@pytest.mark.slow
def test_auto_probes_the_link_with_copies_then_offloads(edge_factory, tmp_path):
    """--mode auto starts local (no link measured yet); JPEG copies of local frames measure the loopback link
    (a few answers before it trusts them), after which offloading wins on this slowed-down device. Probes are
    not frames: the five counts still add up to the frames captured.

    Half the cores each, as the demo does: with torch's default both processes use every core of the machine
    they share, and on two cores the edge's full model then took the whole frame period — its queue grew and
    auto rightly stayed local (a CI run: 4 frames offloaded of 80)."""
    share = half_the_cores()
    edge = edge_factory([*FAST_MODEL, *share])
    summary, frames = run_device(edge.address, [*FAST_MODEL, *share, "--mode", "auto", "--auto-modes",
                                                "local,jpeg", "--jpeg-size", "300x300", "--device-slowdown", "3",
                                                "--frames", "80", "--fps", "10"], tmp_path)
    assert summary["threads"] == edge.stop()["threads"] == int(share[1])  # both took the option
    assert summary["accounted"] == summary["frames"] == 80 == len(frames)
    assert summary["probes"]["sent"] >= MIN_RATE_SAMPLES and summary["probes"]["answered"] >= MIN_RATE_SAMPLES
    assert summary["auto_choices"]["local"] >= 1 and summary["counts"]["edge"] >= 5
    assert all(isinstance(f["captured_s"], float) for f in frames)


def test_auto_probes_a_scripted_edge_with_copies_then_offloads():
    """The fast representative of the test above, in process against an edge that answers at once: what it
    asserts does not depend on how fast this machine runs the model."""
    setup = ModelSetup.build(DEFAULT_MODEL, None, "s16", None)
    outcomes = []
    with ScriptedEdge(setup.fingerprint) as edge:
        client = DeviceClient(torch_engine(setup), edge.address, mode="auto", auto_modes=("local", "jpeg"),
                              jpeg_size=(300, 300), slowdown=3, on_outcome=lambda outcome, _: outcomes.append(outcome))
        summary = client.run(FrameSource(VIDEO, fps=10, start=700), 40)
    assert summary["probes"]["sent"] >= MIN_RATE_SAMPLES and summary["probes"]["answered"] >= MIN_RATE_SAMPLES
    first_offload = min(o.seq for o in outcomes if o.outcome == "edge")
    assert all(o.outcome != "edge" for o in outcomes if o.seq < first_offload)  # local (and probing) first …
    assert summary["auto_choices"]["jpeg"] >= 10  # … then offloading wins on this slowed-down device
    assert sorted(o.seq for o in outcomes) == list(range(40)) and summary["accounted"] == 40  # each once
