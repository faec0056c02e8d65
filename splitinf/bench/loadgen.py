"""Simulated devices: threads that drive the device session over a real socket, sending prepared payloads as
fast as the edge answers (each with its own in-flight window) — to measure what the edge alone can serve,
and to load it beyond that.

Each simulated device is a :class:`~splitinf.runtime.session.DeviceSession` (the device's own rules:
handshake, heartbeats, deadlines, overload backoff, accounting) with no compute: its payloads were prepared
by the real device half. Flat out, a new frame exists whenever its window has room; with ``fps``, a camera
captures one every period whatever the edge does (newest wins), to offer a load beyond what the edge serves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from torch import Tensor

from splitinf.head import Head
from splitinf.head.modes import SplitEncoder
from splitinf.modes import SPLIT
from splitinf.protocol import Payload
from splitinf.runtime import transport
from splitinf.runtime.session import Action, DeviceSession, Job, Outcome, Reconnect, Send
from splitinf.runtime.setup import ModelSetup


def prepare_payloads(setup: ModelSetup, images: Sequence[Tensor]) -> list[Payload]:
    """What a real device would send for these frames (head, codec, geometry)."""
    encoder = SplitEncoder(Head(setup.detector, setup.split, setup.bottleneck).eval(), setup.codec)
    return [encoder(image)[0] for image in images]


def _now() -> float:
    return time.perf_counter_ns() / 1e6


class SimulatedDevice(threading.Thread):
    def __init__(self, address: str, setup: ModelSetup, payloads: list[Payload], stop: threading.Event,
                 window: int = 1, name: str = "sim", deadline_ms: float = 10_000.0, fps: float | None = None,
                 wait_for_edge: bool = False, drain_ms: float = 0.0) -> None:
        """``wait_for_edge``: capture nothing before the first WELCOME (a camera that starts streaming once
        it is connected, rather than counting its first frames failed); ``drain_ms``: once ``stop`` is set,
        capture nothing more and wait up to this long for the frames in flight before giving up on them."""
        super().__init__(daemon=True, name=name)
        self.address, self.payloads, self.stop, self.window = address, payloads, stop, window
        self.wait_for_edge, self.drain_ms = wait_for_edge, drain_ms
        self.period_ms = 1000.0 / fps if fps else None
        self.session = DeviceSession(mode=SPLIT, fingerprint=setup.fingerprint, config=setup.config, name=name,
                                     min_score=0.3, window=window, deadline_ms=deadline_ms)
        self.completions: list[float] = []  # perf_counter ms of every result
        self.outcomes: list[Outcome] = []
        self.error: str | None = None

    def run(self) -> None:
        session = self.session
        sock = transport.device_socket(self.address)
        pending: list[Action] = session.start(_now())
        seq, next_capture, stop_by = 0, _now(), None
        try:
            while not session.fatal:
                if self.stop.is_set():
                    stop_by = stop_by or _now() + self.drain_ms
                    if _now() >= stop_by or not (session.in_flight or session.slot):
                        break
                sock = self._act(sock, pending)
                now = _now()
                pending = []
                capturing = stop_by is None and (session.connected or not self.wait_for_edge or seq > 0)
                if self.period_ms is not None and now >= next_capture:  # a camera: a frame every period
                    if capturing:
                        pending += session.captured(seq, now)
                        seq += 1
                    next_capture += self.period_ms
                elif capturing and self.period_ms is None and session.connected and session.slot is None \
                        and len(session.in_flight) < self.window:  # flat out: a frame whenever there is room
                    pending += session.captured(seq, now)
                    seq += 1
                job, actions = session.next_job(now)
                pending += actions
                if job is not None:
                    pending += self._offload(job, now)
                wake = min(session.next_timer_ms(), next_capture if self.period_ms else now + 100.0, now + 100.0)
                if sock.poll(0 if job is not None else max(wake - _now(), 0.0)):
                    while (frames := transport.receive(sock)) is not None:
                        pending += session.received(frames, _now())
                pending += session.tick(_now())
            if session.fatal:
                self.error = session.fatal
        finally:
            self._act(sock, session.interrupt(_now()))
            sock.close(linger=0)

    def _offload(self, job: Job, now: float) -> list[Action]:
        return self.session.offloaded(job, now, self.payloads[job.seq % len(self.payloads)], {})

    def _act(self, sock, actions: list[Action]):
        for action in actions:
            if isinstance(action, Reconnect):
                sock.close(linger=0)
                sock = transport.device_socket(self.address)
            elif isinstance(action, Send) and not transport.send(sock, action.frames) and action.seq is not None:
                self._act(sock, self.session.send_failed(action.seq, _now()))
            elif isinstance(action, Outcome):
                self.outcomes.append(action)
                if action.outcome == "edge":
                    self.completions.append(action.done_ms)
        return sock


def edge_throughput(address: str, setup: ModelSetup, payloads: list[Payload], devices: int,
                    seconds: float = 8.0, warmup: float = 2.0, window: int = 1) -> float:
    """Results per second the edge returns to ``devices`` simulated devices (after a warm-up)."""
    stop = threading.Event()
    threads = [SimulatedDevice(address, setup, payloads, stop, window, f"sim-{i}") for i in range(devices)]
    for thread in threads:
        thread.start()
    start = _now() + warmup * 1000
    time.sleep(warmup + seconds)
    end = _now()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    failed = [t.error for t in threads if t.error]
    if failed:
        raise RuntimeError(f"simulated devices failed: {failed[0]}")
    done = sum(1 for t in threads for c in t.completions if start <= c <= end)
    return done / ((end - start) / 1000)
