"""The device client: threads and a ZeroMQ socket around the device session, which holds every rule.

Three threads drive one :class:`~splitinf.runtime.session.DeviceSession`, each only under one lock: the
capture thread reads the source at its pace; the main thread asks the session for the next job and runs it
with the mode's device half from the engine (eager PyTorch, :mod:`splitinf.head.modes`, or an exported graph,
:mod:`splitinf.board.engine`); the I/O thread owns the socket: it sends, receives and ticks the session's clock
(greetings, heartbeats, deadlines, give-ups, reconnects). Nothing here needs torch.
"""

from __future__ import annotations

import contextlib
import socket as pysocket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from splitinf.detections import kept
from splitinf.modes import AUTO, AUTO_MODES, LOCAL, SPLIT, check_device_modes
from splitinf.runtime import transport
from splitinf.runtime.policy import starting_policy
from splitinf.runtime.session import Action, DeviceSession, EdgeRefused, Job, Outcome, Reconnect, Send
from splitinf.runtime.sources import FrameSource

Half = Callable[[Any], tuple[Any, dict[str, float]]]  # a frame → (detections or payload, its stages)


class DeviceEngine(Protocol):
    """What runs a device's halves: :class:`splitinf.head.modes.TorchEngine` (``ModelSetup.engine()``) or
    :class:`splitinf.board.engine.ExportedEngine`."""

    name: str
    fingerprint: str
    config: dict

    def halves(self, modes: set[str], *, jpeg_quality: int, jpeg_size: tuple[int, int] | None,
               slowdown: float) -> dict[str, Half]: ...

    def gate(self, slowdown: float) -> Callable[[Any], tuple[bool, dict[str, float]]] | None: ...

    def describe(self) -> str: ...


def _now() -> float:  # the session's clock: the monotonic clock, in ms
    return time.perf_counter_ns() / 1e6


def endpoints_of(connect: str | None) -> list[str]:
    """``--connect tcp://A:5555,tcp://B:5555``: the fronts to fail over between, in order."""
    return [e.strip() for e in (connect or "").split(",") if e.strip()] or [""]


class DeviceClient:
    def __init__(self, engine: DeviceEngine, connect: str | None, *, mode: str = SPLIT, jpeg_quality: int = 90,
                 jpeg_size: tuple[int, int] | None = None, window: int = 2, deadline_ms: float = 2000.0,
                 fallback_local: bool = False, min_score: float = 0.05, name: str | None = None,
                 key: str | None = None, server_key: str | None = None, connect_timeout_s: float = 15.0,
                 on_outcome: Callable[[Outcome, np.ndarray | None], None] | None = None, slowdown: float = 1.0,
                 auto_modes: tuple[str, ...] = AUTO_MODES) -> None:
        check_device_modes(mode, auto_modes, connect, slowdown)
        uses = set(auto_modes) if mode == AUTO else {mode} | ({LOCAL} if fallback_local else set())
        self.halves = engine.halves(uses, jpeg_quality=jpeg_quality, jpeg_size=jpeg_size, slowdown=slowdown)
        self.gate = engine.gate(slowdown)
        self.policy = starting_policy(auto_modes) if mode == AUTO else None
        self.session = DeviceSession(mode=mode, fingerprint=engine.fingerprint, config=engine.config,
                                     name=name or f"device@{pysocket.gethostname()}", min_score=min_score,
                                     window=window, deadline_ms=deadline_ms, fallback_local=fallback_local,
                                     policy=self.policy, endpoints=len(endpoints_of(connect)))
        self.engine, self.connect, self.mode, self.min_score = engine, connect, mode, min_score
        self.endpoints, self.endpoint = endpoints_of(connect), 0  # the front in use, moved on at each Reconnect
        self.key, self.server_key, self.connect_timeout_s = key, server_key, connect_timeout_s
        self.on_outcome = on_outcome
        self.images: dict[int, np.ndarray] = {}
        self.last_payload: dict = {}  # per mode: what a probe re-sends, so that probing costs no compute
        self.changed = threading.Condition()  # the lock around the session; notified when anything happened
        self.stop = threading.Event()

    def run(self, source: FrameSource, max_frames: int | None = None) -> dict:
        for half in self.halves.values():  # first calls allocate kernels: not on the first frames' time
            half(np.zeros((3, 300, 300), np.uint8))
        with self.changed:
            greeting = self.session.start(_now())
        if self.policy is not None and source.fps > 0:
            self.policy.frame_period_ms = 1000.0 / source.fps  # how long a busy device makes frames wait
        capture = threading.Thread(target=self._capture, args=(source, max_frames), daemon=True)
        threads = []
        try:
            if self.mode != LOCAL:
                self.outbox, inbox = transport.inproc_pair("device-out")
                threads.append(threading.Thread(target=self._io, args=(inbox, greeting), daemon=True))
                threads[0].start()
                self._await_edge()  # a refusal raises here: the I/O thread still closes its socket below
            threads.append(capture)
            capture.start()
            with contextlib.suppress(KeyboardInterrupt):
                self._compute_loop()
        finally:
            self.stop.set()
            for thread in threads:  # none left running into the interpreter's exit (libzmq aborts then)
                thread.join(timeout=5)
            with self.changed:
                self._record(self.session.interrupt(_now()))
        if self.session.fatal:
            raise EdgeRefused(self.session.fatal)
        return self.session.summary(model=self.engine.describe(), engine=self.engine.name)

    def _await_edge(self) -> None:
        deadline = time.monotonic() + self.connect_timeout_s
        with self.changed:
            while not (self.session.connected or self.session.fatal) and time.monotonic() < deadline:
                self.changed.wait(0.05)
        if self.session.fatal:
            self.stop.set()
            raise EdgeRefused(self.session.fatal)
        if not self.session.connected and not self.session.fallback_local:
            self.stop.set()
            raise ConnectionError(
                f"the edge at {self.connect} did not answer within {self.connect_timeout_s:g} s: is it running and "
                "reachable? An edge started with --auth answers only a device whose --key it lists (keys/clients) "
                "and whose --server-key is its own public key")

    def _capture(self, source: FrameSource, max_frames: int | None) -> None:
        try:
            for captured in source.frames(max_frames):
                if self.stop.is_set():
                    break
                if not source.realtime:  # a recording waits for the device: none of its frames is replaced
                    with self.changed:
                        while self.session.holds_waiting_frame() and not self.stop.is_set():
                            self.changed.wait(0.05)
                self.images[captured.index] = captured.image
                self._record(self._locked(self.session.captured, captured.index, captured.captured_ns / 1e6,
                                          captured.decode_ms))
        finally:
            self._locked(self.session.source_finished)

    def _compute_loop(self) -> None:
        while not self.stop.is_set():
            with self.changed:
                job, actions = self.session.next_job(_now())
                if job is None and not actions:
                    if self.session.done() or self.session.fatal:
                        return
                    self.changed.wait(0.05)
            self._record(actions)
            if job is not None:
                self._act(self._compute(job))

    def _compute(self, job: Job) -> list[Action]:
        image = self.images[job.seq]
        stages: dict[str, float] = {}
        if self.gate is not None and job.mode != SPLIT and not job.rescue:
            keep, stages = self.gate(image)
            if not keep:
                return self._locked(self.session.filtered, job, _now(), stages)
        if job.mode == LOCAL:
            detections, more = self.halves[LOCAL](image)
            actions = self._locked(self.session.computed_local, job, _now(), kept(detections, self.min_score),
                                   {**stages, **more})
            payload = job.probe and (self.last_payload.get(job.probe) or self.halves[job.probe](image)[0])
            return actions + (self._locked(self.session.probe_ready, job.probe, _now(), payload) if payload else [])
        payload, more = self.halves[job.mode](image)
        if payload is None:
            return self._locked(self.session.filtered, job, _now(), {**stages, **more})
        self.last_payload[job.mode] = payload
        return self._locked(self.session.offloaded, job, _now(), payload, {**stages, **more})

    def _locked(self, event: Callable[..., list[Action]], *args) -> list[Action]:
        with self.changed:
            actions = event(*args)
            self.changed.notify_all()
            return actions

    def _act(self, actions: list[Action]) -> None:
        """From the compute thread: messages go to the I/O thread, outcomes to the sinks."""
        for action in actions:
            if isinstance(action, Send):
                tag = (-1 if action.seq is None else action.seq).to_bytes(8, "little", signed=True)
                self.outbox.send_multipart([tag, *action.frames])
        self._record(actions)

    def _record(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Outcome):
                image = self.images.pop(action.seq, None)
                if self.on_outcome is not None:
                    self.on_outcome(action, image)

    def _io(self, inbox, greeting: list[Action]) -> None:
        sock = transport.device_socket(self.endpoints[self.endpoint], self.key, self.server_key)
        pending = list(greeting)
        try:
            while not self.stop.is_set():
                while pending:
                    action = pending.pop(0)
                    if isinstance(action, Reconnect):
                        sock.close(linger=0)
                        self.endpoint = (self.endpoint + 1) % len(self.endpoints)
                        sock = transport.device_socket(self.endpoints[self.endpoint], self.key, self.server_key)
                    elif isinstance(action, Send):
                        pending += self._send(sock, action.frames, action.seq)
                    else:
                        self._record([action])
                events = dict(transport.poller(sock, inbox).poll(10))
                pending = []
                while inbox in events and (tagged := transport.receive(inbox)) is not None:
                    seq = int.from_bytes(tagged[0], "little", signed=True)
                    pending += self._send(sock, tagged[1:], None if seq < 0 else seq)
                with self.changed:
                    while sock in events and (frames := transport.receive(sock)) is not None:
                        pending += self.session.received(frames, _now())
                    pending += self.session.tick(_now())
                    self.changed.notify_all()
        finally:
            sock.close(linger=0)
            inbox.close(linger=0)
            self.outbox.close(linger=0)

    def _send(self, sock, frames: list[bytes], seq: int | None) -> list[Action]:
        if transport.send(sock, frames) or seq is None:  # a greeting or heartbeat that found no edge is repeated
            return []
        return self._locked(self.session.send_failed, seq, _now())
