"""``splitinf-edge --engine ray``: a real edge whose tail runs on a Ray Serve replica it started, serving a real
device; Ray is stopped with the edge and leaves no process behind; an unreachable Ray is one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from splitinf.runtime.processes import EdgeProcess, descendants, device_command, device_results, run_device, script

pytest.importorskip("ray")

VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"


def ray_processes() -> list[str]:
    """Ray's processes on this machine (raylet, GCS, workers), from /proc."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if any(mark in command for mark in ("/raylet", "gcs_server", "ray/_private/workers", "ray::")):
            found.append(command[:80])
    return found


@pytest.mark.slow
def test_the_ray_engine_serves_every_frame_and_stops_ray_with_the_edge(tmp_path):
    assert ray_processes() == [], "a Ray from elsewhere is running: this test starts and stops its own"
    with EdgeProcess(["--engine", "ray", "--replicas", "1", "--threads", "1"]) as edge:
        summary, frames = run_device(edge.address, VIDEO, tmp_path, ["--frames", "12", "--no-realtime",
                                                                      "--threads", "1", "--engine", "torch"])
        stopped = edge.stop()
    assert summary["counts"]["edge"] == 12 and sorted(f["frame"] for f in frames) == list(range(12))
    assert stopped["engine"] == {"name": "ray", "replicas": 1, "retried": 0}
    assert stopped["batched_frames"] == 12
    assert ray_processes() == []  # Ray went with the edge


def test_an_unreachable_ray_is_one_clear_line():
    result = subprocess.run([script("splitinf-edge"), "--engine", "ray", "--ray-address", "127.0.0.1:9",
                             "--bind", "tcp://127.0.0.1:*", "--threads", "1"], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "--engine ray: cannot start or reach 127.0.0.1:9" in last, result.stderr[-800:]


@pytest.mark.slow
def test_replicas_killed_while_devices_stream_lose_no_frame_and_the_front_serves_on():
    """``splitinf bench chaos --engine ray``, shortened: a replica SIGKILLed every 5 s of 20."""
    result = subprocess.run([script("splitinf"), "bench", "chaos", "--engine", "ray", "--seconds", "20",
                             "--kill-every", "5", "--json"], capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-800:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replica_kills"] == 3 and report["replicas_alive_at_kills"] == [2, 2, 2]
    assert report["front_alive"] and report["reconnects"] == 0
    assert report["frames"] == report["accounted"] > 200 and report["every_frame_accounted"]
    assert report["failed"] <= 0.02 * report["frames"], report["reasons"]
    assert len(report["replica_respawn_s"]) >= 2  # Serve replaced the killed replicas
    assert ray_processes() == []


@pytest.mark.slow
def test_a_lost_ray_is_said_once_counted_and_devices_fall_back_to_local(tmp_path):
    """Every Ray process of the edge SIGKILLed mid-stream: the front keeps serving its socket, answers the
    frames 'unavailable' and says so once; the device answers them locally; every frame is accounted."""
    with EdgeProcess(["--engine", "ray", "--replicas", "1", "--threads", "1"]) as edge:
        device = subprocess.Popen(device_command(edge.address, VIDEO, tmp_path, [
            "--frames", "50", "--fps", "5", "--threads", "1", "--engine", "torch", "--fallback", "local"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        records = tmp_path / "frames.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not records.exists() or len(records.read_text().splitlines()) < 10):
            time.sleep(0.1)
        for pid in descendants(edge.process.pid):
            os.kill(pid, signal.SIGKILL)
        assert device.wait(timeout=180) == 0, device.stderr.read()[-800:]
        stopped = edge.stop()
    summary, frames = device_results(tmp_path)
    assert summary["accounted"] == summary["frames"] == 50 and sorted(f["frame"] for f in frames) == list(range(50))
    assert summary["counts"]["edge"] >= 10 and summary["counts"]["local"] >= 10, summary["counts"]
    assert stopped["unavailable"] >= 1 and stopped["engine"]["name"] == "ray"
    said = [line for line in edge.log if "the Ray tail is failing" in line]
    assert len(said) == 1, edge.log[-10:]
    assert ray_processes() == []
