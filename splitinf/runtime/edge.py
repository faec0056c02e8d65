"""The edge server: many devices on one ROUTER socket, the tail run in micro-batches across them.

One thread, one event loop, owning the socket: it checks every message (a malformed one gets an ERROR reply
and a counter, never a crash), keeps each device's handshake, answers heartbeats, forgets devices that went
silent, timestamps frames on arrival and queues them (a full queue answers ``overloaded`` at once). When
frames wait, it takes a batch (up to ``max_batch``, waiting at most ``max_wait_ms`` after the first while
several devices stream and reading the socket meanwhile), skips the ones whose device stopped waiting while
they queued (``overloaded``), and has a :class:`~splitinf.runtime.tail_runner.TailRunner` decode and run
them, replying with the detections and its own queue/decode/tail times. Messages that arrive during a batch
wait in the socket and are read right after it: nothing crosses a thread between a frame's arrival and its
reply.

With a remote tail (``--engine ray``, :mod:`splitinf.runtime.ray_engine`) the loop hands each queued frame
over at once instead (the replicas batch), and replies when its answer wakes the loop; ``max_queue`` then
bounds the frames queued and in flight together. ``metrics`` (:mod:`splitinf.runtime.metrics`) mirror the
counters for Prometheus.
"""

from __future__ import annotations

import socket as pysocket
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import asdict, dataclass, field, fields
from queue import SimpleQueue

import torch

from splitinf.detections import to_result
from splitinf.protocol import (
    EDGE_LIVENESS,
    HEARTBEAT_MS,
    Error,
    Frame,
    Heartbeat,
    Hello,
    ProtocolError,
    Welcome,
    config_differences,
    decode,
    encode,
)
from splitinf.runtime import transport
from splitinf.runtime.metrics import EdgeMetrics
from splitinf.runtime.ray_engine import RayTail
from splitinf.runtime.setup import ModelSetup
from splitinf.runtime.tail_runner import TailJob, TailOutcome, TailRunner

RECENTLY_EXPIRED = 1024  # forgotten devices whose handshake is still honoured if they come back (a slow link)


@dataclass
class DeviceCounters:
    name: str = "?"
    frames: int = 0
    results: int = 0
    errors: int = 0
    overloaded: int = 0
    bytes_in: int = 0

    def add(self, other: DeviceCounters) -> None:
        for f in fields(self):
            if f.name != "name":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Peer:
    hello: Hello
    counters: DeviceCounters
    last_heard_ns: int
    last_frame_ns: int = 0


@dataclass
class EdgeCounters:
    messages: int = 0
    malformed: int = 0
    refused_handshakes: int = 0
    no_handshake: int = 0
    payload_errors: int = 0
    internal_errors: int = 0
    unavailable: int = 0  # frames its remote tail (Ray) could not compute, even on a second try
    overloaded: int = 0  # frames refused by a full queue, or past their device's budget when their turn came
    unroutable_replies: int = 0
    rejected_connections: int = 0  # handshakes that never succeeded: no or wrong CurveZMQ key, not ZeroMQ
    heartbeats: int = 0
    expired_peers: int = 0
    batches: int = 0
    batched_frames: int = 0
    departed: DeviceCounters = field(default_factory=lambda: DeviceCounters("departed devices"))


@dataclass
class Work:
    identity: bytes
    frame: Frame
    received_ns: int
    min_score: float


def job_of(frame: Frame) -> TailJob:
    return TailJob(frame.mode, frame.codec, frame.payload, tuple(frame.geometry))


class EdgeServer:
    def __init__(self, setup: ModelSetup, bind: str, *, device: str = "cpu", max_batch: int = 8,
                 max_wait_ms: float = 5.0, max_queue: int = 32, heartbeat_ms: int = HEARTBEAT_MS,
                 auth_dir: str | None = None, name: str | None = None, metrics: EdgeMetrics | None = None,
                 remote: RayTail | None = None) -> None:
        if max_batch < 1 or max_wait_ms < 0 or max_queue < 1:
            raise ValueError(f"max batch and queue must be >= 1 and max wait >= 0, got {max_batch}, {max_queue} "
                             f"and {max_wait_ms}")
        self.setup = setup
        self.remote = remote  # the tail elsewhere (Ray Serve), or None: run it here, batch by batch
        self.runner = TailRunner(setup, device) if remote is None else None
        self._remote_batches = 0.0
        self.in_flight = 0  # frames handed to the remote tail and not answered yet
        self.completions: SimpleQueue[tuple[Work, TailOutcome, int]] = SimpleQueue()
        self.wake_lock = threading.Lock()
        self.wake_in, self.wake_out = transport.wake_pair()  # a remote answer wakes the event loop
        self.max_batch, self.max_wait_ns = max_batch, int(max_wait_ms * 1e6)
        self.heartbeat_ms = int(heartbeat_ms)
        self.name = name or f"edge@{pysocket.gethostname()}"
        self.endpoint = transport.edge_socket(bind, auth_dir)
        self.handshakes = transport.HandshakeMonitor(self.endpoint.socket)
        self.counters = EdgeCounters()
        self.peers: dict[bytes, Peer] = {}
        self.expired: OrderedDict[bytes, Hello] = OrderedDict()
        self.queue: deque[Work] = deque()  # frames waiting for the tail, at most max_queue
        self.max_queue = max_queue
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.batch_sizes: Counter[int] = Counter()
        self.metrics = metrics

    # --- the event loop ------------------------------------------------------------------------------------

    def serve(self) -> EdgeCounters:
        torch.set_grad_enabled(False)
        router = self.endpoint.socket
        poller = transport.poller(router, self.handshakes.socket, self.wake_out)
        if self.metrics:
            self.metrics.set_ready(True)
        try:
            while not self.stop.is_set():
                events = dict(poller.poll(0 if self.queue else min(100, self.heartbeat_ms // 4)))
                if router in events:
                    self._drain(router)
                if self.handshakes.socket in events:
                    self.handshakes.read()
                    self.counters.rejected_connections = self.handshakes.rejected
                self._expire(time.perf_counter_ns())
                if self.wake_out in events:
                    self._answer_completed(router)
                if self.queue and self.remote is not None:
                    self._dispatch(router)
                elif self.queue:
                    self._run_batch(router, self._batch(router, poller))
                if self.metrics:
                    self.metrics.queue_depth.set(len(self.queue))
                    self.metrics.devices.set(len(self.peers))
        finally:
            if self.metrics:
                self.metrics.set_ready(False)
            self.endpoint.socket.disable_monitor()
            self.handshakes.socket.close(linger=0)
            self.wake_in.close(linger=0)
            self.wake_out.close(linger=0)
            self.endpoint.close()
        return self.counters

    def _drain(self, router) -> None:
        for _ in range(256):  # bounded, so batches keep running under a flood
            frames = transport.receive(router)
            if frames is None:
                return
            self.counters.messages += 1
            if len(frames) < 2:
                self.counters.malformed += 1
                continue
            self._handle(frames[0], frames[1:], time.perf_counter_ns())

    def _batch(self, router, poller) -> list[Work]:
        """The next batch: what waits, and — while several devices stream — what arrives within max_wait_ms
        of the first frame (a lone device never waits)."""
        first = self.queue[0]
        recent = first.received_ns - 1_000_000_000
        target = min(self.max_batch, max(sum(1 for p in self.peers.values() if p.last_frame_ns > recent), 1))
        deadline = first.received_ns + self.max_wait_ns
        while len(self.queue) < target and (remaining := deadline - time.perf_counter_ns()) > 0:
            if router in dict(poller.poll(remaining / 1e6)):
                self._drain(router)
        return [self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))]

    def _reply(self, router, identity: bytes, message) -> None:
        if self.metrics and isinstance(message, Error):
            self.metrics.errors.labels(self._label(identity), message.code).inc()
        try:
            router.send_multipart([identity, *encode(message)], transport.NOBLOCK)
        except transport.ZMQError:
            self.counters.unroutable_replies += 1

    def _label(self, identity: bytes) -> str:
        """The device's name as a metrics label ("unknown" before a handshake)."""
        peer = self.peers.get(identity)
        return self.metrics.device(peer.hello.device if peer else "unknown")

    def _peer(self, identity: bytes, now: int) -> Peer | None:
        """The device behind ``identity`` if it shook hands (lately: a forgotten one comes back)."""
        peer = self.peers.get(identity)
        if peer is None and identity in self.expired:
            hello = self.expired.pop(identity)
            peer = self.peers[identity] = Peer(hello, DeviceCounters(hello.device), now)
        if peer is not None:
            peer.last_heard_ns = now
        return peer

    def _expire(self, now: int) -> None:
        """Forget the devices silent for EDGE_LIVENESS heartbeat periods: a live one beats every period."""
        limit = now - EDGE_LIVENESS * self.heartbeat_ms * 1_000_000
        for identity in [i for i, p in self.peers.items() if p.last_heard_ns < limit]:
            peer = self.peers.pop(identity)
            self.counters.departed.add(peer.counters)
            self.counters.expired_peers += 1
            self.expired[identity] = peer.hello
            while len(self.expired) > RECENTLY_EXPIRED:
                self.expired.popitem(last=False)

    def _handle(self, identity: bytes, frames: list[bytes], received: int) -> None:
        router = self.endpoint.socket
        try:
            message = decode(frames)
        except ProtocolError as exc:
            self.counters.malformed += 1
            self._reply(router, identity, Error(exc.code, exc.text))
            return
        if isinstance(message, Hello):
            if message.fingerprint != self.setup.fingerprint:
                self.counters.refused_handshakes += 1
                differences = config_differences(self.setup.config, message.config) or ["weights or code"]
                self._reply(router, identity, Error("fingerprint", "device and edge run different models: "
                                                                   + "; ".join(differences)))
                return
            old = self.peers.get(identity)
            self.peers[identity] = Peer(message, old.counters if old else DeviceCounters(message.device), received)
            self._reply(router, identity, Welcome(self.name, self.setup.fingerprint, self.max_batch, self.heartbeat_ms))
            return
        peer = self._peer(identity, received) if isinstance(message, (Frame, Heartbeat)) else None
        if isinstance(message, Heartbeat):
            if peer is None:
                self.counters.no_handshake += 1
                self._reply(router, identity, Error("no-handshake", "send HELLO before heartbeats"))
                return
            self.counters.heartbeats += 1
            self._reply(router, identity, Heartbeat())
        elif isinstance(message, Frame):
            if peer is None:
                self.counters.no_handshake += 1
                self._reply(router, identity, Error("no-handshake", "send HELLO before frames", message.seq))
                return
            peer.counters.frames += 1
            peer.counters.bytes_in += sum(len(f) for f in frames)
            if self.metrics:
                label = self._label(identity)
                self.metrics.frames.labels(label, message.mode).inc()
                self.metrics.bytes_in.labels(label).inc(sum(len(f) for f in frames))
            peer.last_frame_ns = received
            if len(self.queue) + self.in_flight >= self.max_queue:
                self._overloaded(peer.counters)
                self._reply(router, identity, Error("overloaded", f"the edge's queue is full ({self.max_queue} "
                                                                  "frames waiting)", message.seq))
            else:
                self.queue.append(Work(identity, message, received, peer.hello.min_score))
        else:
            self.counters.malformed += 1
            self._reply(router, identity, Error("malformed", f"a device may not send {type(message).__name__}"))

    def _overloaded(self, counters: DeviceCounters) -> None:
        self.counters.overloaded += 1
        counters.overloaded += 1

    def _counters(self, identity: bytes) -> DeviceCounters:
        peer = self.peers.get(identity)
        return peer.counters if peer is not None else self.counters.departed

    def _run_batch(self, router, batch: list[Work]) -> None:
        start = time.perf_counter_ns()
        live = [work for work in batch if self._in_budget(router, work, start)]
        outcomes, sizes = self.runner([job_of(work.frame) for work in live])
        self._count_batches(sizes)
        for work, outcome in zip(live, outcomes):
            self._answer(router, work, outcome, (start - work.received_ns) / 1e6)

    def _dispatch(self, router) -> None:
        """Hand every queued frame still in its budget to the remote tail; answers come back through
        :meth:`_answer_completed` (the replicas batch them)."""
        start = time.perf_counter_ns()
        while self.queue:
            work = self.queue.popleft()
            if not self._in_budget(router, work, start):
                continue
            self.in_flight += 1
            self.remote.submit(job_of(work.frame), lambda outcome, work=work: self._completed(work, outcome, start))

    def _completed(self, work: Work, outcome: TailOutcome, dispatched: int) -> None:
        """Called on the remote tail's threads: queue the answer and wake the event loop, which replies."""
        self.completions.put((work, outcome, dispatched))
        with self.wake_lock:
            self.wake_in.send(b"", transport.NOBLOCK)

    def _answer_completed(self, router) -> None:
        while transport.receive(self.wake_out) is not None:
            pass
        while not self.completions.empty():
            work, outcome, dispatched = self.completions.get()
            self.in_flight -= 1
            if outcome.batch:
                self._count_remote_batch(outcome.batch)
            self._answer(router, work, outcome, (dispatched - work.received_ns) / 1e6)

    def _count_remote_batch(self, size: int) -> None:
        """A remote batch is seen frame by frame: each frame of a batch of n counts 1/n of it."""
        self.counters.batched_frames += 1
        self._remote_batches += 1 / size
        self.counters.batches = round(self._remote_batches)
        if self.metrics:
            self.metrics.batch_size.observe(size)

    def _in_budget(self, router, work: Work, now: int) -> bool:
        """Whether ``work``'s device still waits for it; if not, it is answered overloaded (nothing spent)."""
        waited_ms = (now - work.received_ns) / 1e6
        if work.frame.budget_ms is None or waited_ms <= work.frame.budget_ms:
            return True
        self._overloaded(self._counters(work.identity))
        why = f"waited {waited_ms:.0f} ms in the edge's queue, past the device's {work.frame.budget_ms:.0f} ms"
        self._reply(router, work.identity, Error("overloaded", why, work.frame.seq))
        return False

    def _count_batches(self, sizes: list[int]) -> None:
        for size in sizes:
            self.counters.batches += 1
            self.counters.batched_frames += size
            self.batch_sizes[size] += 1
            if self.metrics:
                self.metrics.batch_size.observe(size)

    def _answer(self, router, work: Work, outcome: TailOutcome, queue_ms: float) -> None:
        """The reply to one computed frame: its detections, or the error it met."""
        if outcome.error is not None:
            code, text = outcome.error
            if code == "payload":
                self.counters.payload_errors += 1
                self._counters(work.identity).errors += 1
            elif code == "unavailable":
                self.counters.unavailable += 1
            else:
                self.counters.internal_errors += 1
            self._reply(router, work.identity, Error(code, text, work.frame.seq))
            return
        timing = {"queue": queue_ms, "decode": outcome.decode_ms, "tail": outcome.tail_ms}
        answer = to_result(work.frame.seq, outcome.detections, work.min_score, timing, outcome.batch)
        self._reply(router, work.identity, answer)
        self._counters(work.identity).results += 1
        if self.metrics:
            self.metrics.results.labels(self._label(work.identity), work.frame.mode).inc()
            for stage, ms in timing.items():
                self.metrics.stage.labels(stage).observe(ms / 1e3)

    def summary(self) -> dict:
        counters = asdict(self.counters)
        counters["devices"] = {identity.hex(): asdict(peer.counters) for identity, peer in list(self.peers.items())}
        counters["peers"] = len(counters["devices"])
        batches = self.counters.batches
        counters["mean_batch"] = round(self.counters.batched_frames / batches, 3) if batches else 0.0
        counters["uptime_s"] = round(time.monotonic() - self.started, 3)
        counters["fingerprint"] = self.setup.fingerprint
        counters["engine"] = "inprocess" if self.remote is None else \
            {"name": "ray", "replicas": self.remote.options.replicas, "retried": self.remote.retried}
        return counters
