"""``splitinf-device`` as a board runs it: the exported engine in a process where torch cannot be imported,
against a real ``splitinf-edge`` process running eager torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from splitinf.runtime.processes import EdgeProcess, device_command, device_results

NO_TORCH = [sys.executable, str(Path(__file__).with_name("no_torch.py"))]
VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"


def run_board_device(connect: str, folder: Path, args: list[str]) -> subprocess.CompletedProcess:
    command = device_command(connect, VIDEO, folder, args)
    return subprocess.run(NO_TORCH + command[1:], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def edge():
    with EdgeProcess(["--threads", "1"]) as edge:
        yield edge


def test_a_device_without_torch_offloads_every_frame_to_a_torch_edge(edge, exported, tmp_path):
    folder, manifest = exported
    result = run_board_device(edge.address, tmp_path, ["--exported", str(folder), "--mode", "split", "--frames", "12",
                                                       "--no-realtime", "--deadline-ms", "30000", "--threads", "1"])
    assert result.returncode == 0, result.stderr[-800:]
    summary, frames = device_results(tmp_path)
    assert summary["engine"] == "onnx-int8" and summary["fingerprint"] == manifest.fingerprint
    assert summary["accounted"] == 12 and summary["counts"]["edge"] == 12  # a recording: no frame replaced
    assert sorted(f["frame"] for f in frames) == list(range(12)) and summary["bytes_per_frame"] > 1000


def test_a_device_without_torch_runs_local_and_the_prefilter(exported, tmp_path):
    folder, _ = exported
    result = run_board_device("", tmp_path, ["--exported", str(folder), "--engine", "onnx-fp32", "--mode", "local",
                                             "--prefilter", "prefilter_person_t7.pt", "--frames", "6",
                                             "--start-frame", "300", "--no-realtime", "--threads", "1"])
    assert result.returncode == 0, result.stderr[-800:]
    summary, frames = device_results(tmp_path)
    assert summary["engine"] == "onnx-fp32" and summary["accounted"] == 6
    assert summary["counts"]["local"] + summary["counts"]["filtered"] == 6
    assert any(f["detections"] for f in frames if f["outcome"] == "local")


def test_without_torch_and_without_an_export_the_device_says_what_to_do(tmp_path):
    result = run_board_device("tcp://127.0.0.1:9", tmp_path, ["--exported", str(tmp_path / "none"), "--frames", "1"])
    assert result.returncode != 0
    assert "no exported engine in" in result.stderr and "splitinf export" in result.stderr
    result = run_board_device("tcp://127.0.0.1:9", tmp_path, ["--engine", "torch", "--frames", "1"])
    assert "torch is not installed (a board install)" in result.stderr
