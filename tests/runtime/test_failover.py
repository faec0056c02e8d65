"""Several fronts: ``--connect A,B``. A device whose front dies moves to the next one, greets it (a front knows
only the devices that greeted it) and is served there; every frame is accounted once."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from splitinf.runtime.processes import EdgeProcess, device_command, device_results, run_device

VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"
EDGE = ["--threads", "1", "--heartbeat-ms", "200"]


@pytest.mark.slow  # the fast representative: the next test (first front down at start)
def test_a_device_fails_over_to_the_next_front_and_every_frame_is_accounted_once(tmp_path):
    with EdgeProcess(EDGE) as first, EdgeProcess(EDGE) as second:
        command = device_command(f"{first.address},{second.address}", VIDEO, tmp_path,
                                 ["--frames", "60", "--fps", "10", "--threads", "1", "--engine", "torch",
                                  "--name", "cam-failover"])
        device = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            lines = tmp_path / "frames.jsonl"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and device.poll() is None and (
                    not lines.exists() or sum(json.loads(x)["outcome"] == "edge"
                                              for x in lines.read_text().splitlines()) < 8):
                time.sleep(0.05)  # polling the device's own output, not waiting a guessed time
            first.process.send_signal(signal.SIGKILL)  # the first front dies mid-stream
            assert device.wait(timeout=180) == 0, device.stderr.read()[-800:]
        finally:
            if device.poll() is None:
                device.kill()
        served_by_second = second.stop()
    summary, frames = device_results(tmp_path)
    assert sorted(f["frame"] for f in frames) == list(range(60)) and summary["accounted"] == 60
    # The second front served it after the first died (by then the finished device may have been forgotten).
    results = sum(d["results"] for d in served_by_second["devices"].values()) + served_by_second["departed"]["results"]
    assert results >= 10 and summary["reconnects"] >= 1
    edge_frames = [f["frame"] for f in frames if f["outcome"] == "edge"]
    assert min(edge_frames) < 8 < max(edge_frames)  # served before and after the failover


def test_a_device_whose_first_front_is_down_starts_on_the_next(tmp_path):
    with EdgeProcess(EDGE) as edge:
        summary, frames = run_device(f"tcp://127.0.0.1:9,{edge.address}", VIDEO, tmp_path,
                                     ["--frames", "10", "--no-realtime", "--threads", "1", "--engine", "torch"])
    assert summary["counts"]["edge"] == 10 and sorted(f["frame"] for f in frames) == list(range(10))
