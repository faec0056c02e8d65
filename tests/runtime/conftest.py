"""Real splitinf-edge / splitinf-device processes on loopback."""

from __future__ import annotations

import signal

import pytest

from splitinf.runtime.processes import EdgeProcess

VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"
FAST_MODEL = ["--bottleneck", "none", "--split", "s16", "--codec", "minmax8"]


@pytest.fixture
def edge_factory():
    edges: list[EdgeProcess] = []

    def make(args: list[str], port: int | None = None) -> EdgeProcess:
        edge = EdgeProcess(args, port).start()
        edges.append(edge)
        return edge

    yield make
    for edge in edges:
        if edge.process is not None:
            edge.stop(signal.SIGKILL)
