"""Real splitinf-edge / splitinf-device processes on loopback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"
FAST_MODEL = ["--bottleneck", "none", "--split", "s16", "--codec", "minmax8"]


def script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Edge:
    def __init__(self, port: int, args: list[str]) -> None:
        self.port, self.args = port, args
        self.process: subprocess.Popen | None = None
        self.summary: dict | None = None

    def start(self) -> Edge:
        self.process = subprocess.Popen([script("splitinf-edge"), "--bind", f"tcp://127.0.0.1:{self.port}",
                                         *self.args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        ready = threading.Event()

        def drain() -> None:  # keep reading stderr so the edge never blocks on a full pipe
            for line in self.process.stderr:
                self.log.append(line)
                if "splitinf-edge:" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        ready.wait(120)
        assert self.process.poll() is None, "".join(self.log)
        return self

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGINT) -> dict | None:
        if self.process is None:
            return self.summary
        self.process.send_signal(sig)
        out = self.process.stdout.read()
        self.process.wait(timeout=60)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        self.summary = json.loads(lines[-1]) if lines else None
        self.process = None
        return self.summary


@pytest.fixture
def edge_factory():
    edges: list[Edge] = []

    def make(args: list[str], port: int | None = None) -> Edge:
        edge = Edge(port or free_port(), args).start()
        edges.append(edge)
        return edge

    yield make
    for edge in edges:
        if edge.process is not None:
            edge.stop(signal.SIGKILL)


def device_command(edge_address: str, args: list[str], folder: Path) -> list[str]:
    return [script("splitinf-device"), "--connect", edge_address, "--source", VIDEO, "--output",
            str(folder / "frames.jsonl"), "--summary-json", str(folder / "summary.json"), *args]


def device_results(folder: Path) -> tuple[dict, list[dict]]:
    frames = [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]
    return json.loads((folder / "summary.json").read_text()), frames


def run_device(edge_address: str, args: list[str], folder: Path, timeout: float = 300) -> tuple[dict, list[dict]]:
    """Run splitinf-device to completion: (summary, one JSON record per frame)."""
    result = subprocess.run(device_command(edge_address, args, folder), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr
    return device_results(folder)
