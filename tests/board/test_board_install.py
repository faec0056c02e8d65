"""The board install, for real: ``pip install splitinf`` into a fresh venv (its requirements from the package
index), no torch in it, and its ``splitinf-device`` served by a torch edge in split mode and running local."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from splitinf.images import data_root
from splitinf.runtime.processes import EdgeProcess, run_device
from tests.board.test_board_device import VIDEO

ROOT = Path(__file__).resolve().parents[2]
EDGE_ONLY = {"torch", "torchvision", "constriction", "matplotlib", "faster-coco-eval", "tqdm", "onnx"}


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("board") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", str(ROOT)], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-1500:]
    return venv


@pytest.mark.slow
def test_the_board_install_has_no_torch_and_its_device_is_served_and_runs_local(board, exported, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setenv("SPLITINF_DATA", str(data_root().resolve()))  # the device runs outside the checkout
    listed = subprocess.run([str(board / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True).stdout
    names = {p["name"].lower() for p in json.loads(listed)}
    assert not names & EDGE_ONLY, names & EDGE_ONLY
    assert {"splitinf", "onnxruntime", "numba", "pyzmq", "numpy"} <= names
    folder, manifest = exported
    flags = ["--exported", str(folder), "--no-realtime", "--threads", "1", "--deadline-ms", "30000"]
    with EdgeProcess(["--threads", "1"]) as edge:
        summary, frames = run_device(edge.address, VIDEO, tmp_path, ["--frames", "8", *flags], timeout=300,
                                     bin_dir=board / "bin", cwd=tmp_path)
    assert summary["engine"] == "onnx-int8" and summary["fingerprint"] == manifest.fingerprint
    assert summary["counts"]["edge"] == 8 and sorted(f["frame"] for f in frames) == list(range(8))
    local = tmp_path / "local"
    local.mkdir()
    summary, _ = run_device("", VIDEO, local, ["--mode", "local", "--frames", "4", *flags], timeout=300,
                            bin_dir=board / "bin", cwd=tmp_path)
    assert summary["counts"]["local"] == 4
