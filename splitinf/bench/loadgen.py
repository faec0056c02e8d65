"""Simulated devices: threads that speak the real protocol to an edge, sending prepared payloads as fast as
the edge answers (each with its own in-flight window) — to measure what the edge alone can serve."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from splitinf.head import Head
from splitinf.protocol import Frame, Hello, Result, Welcome, decode, encode
from splitinf.runtime import transport
from splitinf.runtime.setup import ModelSetup


@dataclass(frozen=True)
class Prepared:
    payload: bytes
    geometry: tuple
    codec: str


def prepare_payloads(setup: ModelSetup, images: Sequence[Tensor]) -> list[Prepared]:
    """What a real device would send for these frames (head, codec, geometry)."""
    head = Head(setup.detector, setup.split, setup.bottleneck).eval()
    prepared = []
    with torch.inference_mode():
        for image in images:
            features, geometries = head([image])
            prepared.append(Prepared(setup.codec.compress(features[0].cpu()), tuple(geometries[0]), setup.codec.name))
    return prepared


class SimulatedDevice(threading.Thread):
    def __init__(self, address: str, setup: ModelSetup, payloads: list[Prepared], stop: threading.Event,
                 window: int = 1, name: str = "sim") -> None:
        super().__init__(daemon=True, name=name)
        self.address, self.setup, self.payloads, self.stop, self.window = address, setup, payloads, stop, window
        self.completions: list[int] = []  # perf_counter_ns of every result
        self.errors = 0
        self.error: str | None = None

    def run(self) -> None:
        sock = transport.device_socket(self.address)
        try:
            hello = Hello(self.name, self.setup.fingerprint, self.setup.config, 0.3)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(transport.Again):
                    sock.send_multipart(encode(hello), transport.NOBLOCK)
                if sock.poll(500) and isinstance(decode(sock.recv_multipart()), Welcome):
                    break
            else:
                self.error = "no WELCOME from the edge"
                return
            seq, in_flight = 0, 0
            while not self.stop.is_set():
                while in_flight < self.window:
                    item = self.payloads[seq % len(self.payloads)]
                    sock.send_multipart(encode(Frame(seq, time.perf_counter_ns(), "split", item.geometry,
                                                     item.codec, item.payload)))
                    seq, in_flight = seq + 1, in_flight + 1
                if sock.poll(200):
                    message = decode(sock.recv_multipart())
                    in_flight -= 1
                    if isinstance(message, Result):
                        self.completions.append(time.perf_counter_ns())
                    else:
                        self.errors += 1
        finally:
            sock.close(linger=0)


def edge_throughput(address: str, setup: ModelSetup, payloads: list[Prepared], devices: int,
                    seconds: float = 8.0, warmup: float = 2.0, window: int = 1) -> float:
    """Results per second the edge returns to ``devices`` simulated devices (after a warm-up)."""
    stop = threading.Event()
    threads = [SimulatedDevice(address, setup, payloads, stop, window, f"sim-{i}") for i in range(devices)]
    for thread in threads:
        thread.start()
    start = time.perf_counter_ns() + int(warmup * 1e9)
    time.sleep(warmup + seconds)
    end = time.perf_counter_ns()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    failed = [t.error for t in threads if t.error]
    if failed:
        raise RuntimeError(f"simulated devices failed: {failed[0]}")
    done = sum(1 for t in threads for c in t.completions if start <= c <= end)
    return done / ((end - start) / 1e9)
