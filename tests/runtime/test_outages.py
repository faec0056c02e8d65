"""A device through an outage: what is stuck is answered locally, offloading resumes after it, and every
captured frame is accounted for exactly once — in process against a scripted edge (fast), and with real
processes through ``splitinf netsim relay --outage`` and an edge that is killed (slow)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter

import pytest
from splitinf.head.modes import torch_engine
from splitinf.netsim.process import RelayProcess

from splitinf.runtime.device import DeviceClient
from splitinf.runtime.processes import device_command, device_results, half_the_cores
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.weights.checkpoints import default_bottleneck

from .conftest import VIDEO
from .scripted_edge import ScriptedEdge


def exactly_once(indices: list[int], frames: int) -> bool:
    counts = Counter(indices)
    return len(counts) == frames and set(counts.values()) == {1}


def test_auto_answers_what_an_outage_strands_locally_and_offloads_again_after_it():
    setup = ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))
    outcomes, unmuted_ms = [], []

    with ScriptedEdge(setup.fingerprint) as edge:
        def unmute() -> None:
            unmuted_ms.append(time.perf_counter_ns() / 1e6)  # the session's clock
            edge.muted.clear()

        def record(outcome, _) -> None:
            # The outage starts once the device offloads (however long this machine took to get there): from
            # 0.5 s after the first answer, for 1.5 s (shorter than the liveness limit).
            if outcome.outcome == "edge" and not any(o.outcome == "edge" for o in outcomes):
                threading.Timer(0.5, edge.muted.set).start()
                threading.Timer(2.0, unmute).start()
            outcomes.append(outcome)

        client = DeviceClient(torch_engine(setup), edge.address, mode="auto", auto_modes=("local", "split"), slowdown=3,
                              on_outcome=record)  # a board slower than this CPU
        now_ms = time.perf_counter_ns() / 1e6
        client.policy.rate_samples.extend((now_ms, 20e6) for _ in range(200))  # a link fine for a while
        client.policy.rate_bps = 20e6
        summary = client.run(FrameSource(VIDEO, fps=10, start=700), 90)
    assert summary["rescued"] >= 1  # offloads stranded in the outage were answered locally …
    assert unmuted_ms and any(o.outcome == "edge" and o.captured_ms > unmuted_ms[0] for o in outcomes)  # … and
    assert exactly_once([o.seq for o in outcomes], 90) and summary["accounted"] == 90  # it offloads again after


@pytest.mark.slow
def test_a_real_auto_device_through_a_relay_outage(edge_factory, tmp_path):
    share = half_the_cores()
    edge = edge_factory(share)
    relay_args = ["--uplink", "20mbit", "--downlink", "20mbit", "--delay-ms", "10", "--outage", "20:2"]
    with RelayProcess(edge.address.removeprefix("tcp://"), relay_args) as relay:
        result = subprocess.run(device_command(f"tcp://{relay.address}", VIDEO, tmp_path,
                                               [*share, "--engine", "torch", "--mode", "auto", "--auto-modes",
                                                "local,jpeg",
                                                "--jpeg-size", "300x300", "--device-slowdown", "3", "--frames",
                                                "330", "--fps", "10", "--start-frame", "300"]),
                                capture_output=True, text=True, timeout=300)
        outage_end = relay.epoch + 22.0  # after 20 s of history: a loss stays in auto's tail until outnumbered
    assert result.returncode == 0, result.stderr[-500:]
    summary, frames = device_results(tmp_path)
    assert exactly_once([f["frame"] for f in frames], 330) and summary["accounted"] == 330
    assert summary["counts"]["edge"] >= 1 and summary["rescued"] >= 1
    assert any(f["outcome"] == "edge" and f["captured_s"] > outage_end for f in frames)


@pytest.mark.slow
def test_fallback_local_answers_every_frame_while_the_edge_is_killed(edge_factory, tmp_path):
    edge = edge_factory(half_the_cores())
    device = subprocess.Popen(device_command(edge.address, VIDEO, tmp_path,
                                             [*half_the_cores(), "--fallback", "local", "--frames", "60",
                                              "--fps", "8", "--deadline-ms", "1000"]),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while (not (tmp_path / "frames.jsonl").exists()
               or (tmp_path / "frames.jsonl").read_text().count('"edge"') < 5) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the device's own output until it streams
        edge.stop(signal.SIGKILL)
        _, err = device.communicate(timeout=300)
    finally:
        if device.poll() is None:
            device.kill()
    assert device.returncode == 0, err[-500:]
    summary, frames = device_results(tmp_path)
    assert exactly_once([f["frame"] for f in frames], 60) and summary["accounted"] == 60
    assert summary["counts"]["edge"] >= 5 and summary["counts"]["local"] >= 10 and summary["counts"]["failed"] == 0
