"""The edge server: many devices on one ROUTER socket, the tail run in micro-batches across devices.

Two threads. The I/O thread owns the ROUTER socket: it checks every message (a malformed one gets an ERROR
reply and a counter, never a crash), keeps the per-device handshake state, timestamps frames on arrival and
hands them to the worker; it also forwards the worker's replies. The worker gathers frames into a batch
(up to ``max_batch``, waiting at most ``max_wait_ms`` after the first), decodes the payloads, runs the tail
once per batch of equal shapes and replies with the detections and its own queue/decode/tail times.
"""

from __future__ import annotations

import queue
import socket as pysocket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from splitinf.bottleneck import CodecError
from splitinf.data import DataError, decode_jpeg
from splitinf.models import Detections, Geometry
from splitinf.protocol import (
    Error,
    Frame,
    Hello,
    ProtocolError,
    Result,
    Welcome,
    config_differences,
    decode,
    encode,
)
from splitinf.runtime import transport
from splitinf.runtime.setup import ModelSetup
from splitinf.tail import Tail


@dataclass
class DeviceCounters:
    name: str = "?"
    frames: int = 0
    results: int = 0
    errors: int = 0
    bytes_in: int = 0


@dataclass
class EdgeCounters:
    messages: int = 0
    malformed: int = 0
    refused_handshakes: int = 0
    no_handshake: int = 0
    payload_errors: int = 0
    internal_errors: int = 0
    unroutable_replies: int = 0
    rejected_connections: int = 0  # handshakes that never succeeded: no or wrong CurveZMQ key, not ZeroMQ
    batches: int = 0
    batched_frames: int = 0
    devices: dict[str, DeviceCounters] = field(default_factory=dict)


@dataclass
class Work:
    identity: bytes
    frame: Frame
    received_ns: int
    min_score: float


def detections_to_result(seq: int, detections: dict[str, Tensor], min_score: float, timing: dict[str, float],
                         batch: int) -> Result:
    keep = detections["scores"] >= min_score
    boxes = detections["boxes"][keep].detach().to("cpu", torch.float32).numpy()
    scores = detections["scores"][keep].detach().to("cpu", torch.float32).numpy()
    labels = detections["labels"][keep].detach().to("cpu", torch.int32).numpy()
    return Result(seq, len(scores), boxes.astype("<f4").tobytes(), scores.astype("<f4").tobytes(),
                  labels.astype("<i4").tobytes(), timing, batch)


def scale_to_original(detections: dict[str, Tensor], geometry: Geometry) -> dict[str, Tensor]:
    """Boxes found on a JPEG sent at reduced size → pixels of the device's original frame."""
    (oh, ow), (sh, sw) = geometry.original, geometry.resized
    if (oh, ow) == (sh, sw):
        return detections
    scale = detections["boxes"].new_tensor([ow / sw, oh / sh, ow / sw, oh / sh])
    return {**detections, "boxes": detections["boxes"] * scale}


class EdgeServer:
    def __init__(self, setup: ModelSetup, bind: str, *, device: str = "cpu", max_batch: int = 8,
                 max_wait_ms: float = 5.0, auth_dir: str | None = None, name: str | None = None) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max batch must be >= 1 and max wait >= 0, got {max_batch} and {max_wait_ms}")
        self.setup = setup
        self.device = torch.device(device)
        self.detector = setup.detector.to(self.device)
        self.tail = Tail(setup.detector, setup.split, setup.bottleneck).to(self.device).eval()
        self.max_batch, self.max_wait_ns = max_batch, int(max_wait_ms * 1e6)
        self.name = name or f"edge@{pysocket.gethostname()}"
        self.endpoint = transport.edge_socket(bind, auth_dir)
        self.handshakes = transport.HandshakeMonitor(self.endpoint.socket)
        self.replies_in, self.replies_out = transport.inproc_pair("edge-replies")
        self.counters = EdgeCounters()
        self.sessions: dict[bytes, Hello] = {}
        self.active: dict[bytes, int] = {}  # device identity → when its last frame arrived (ns)
        self.work: queue.Queue[Work] = queue.Queue()
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.batch_sizes: Counter[int] = Counter()

    # --- I/O thread ----------------------------------------------------------------------------------------

    def serve(self) -> EdgeCounters:
        worker = threading.Thread(target=self._work, name="edge-worker", daemon=True)
        worker.start()
        router = self.endpoint.socket
        poller = transport.poller(router, self.replies_out, self.handshakes.socket)
        try:
            while not self.stop.is_set():
                events = dict(poller.poll(100))
                if router in events:
                    self._drain(router)
                if self.replies_out in events:
                    self._forward(router)
                if self.handshakes.socket in events:
                    self.handshakes.read()
                    self.counters.rejected_connections = self.handshakes.rejected
        finally:
            self.stop.set()
            worker.join(timeout=10)
            self.endpoint.socket.disable_monitor()
            for sock in (self.handshakes.socket, self.replies_in, self.replies_out):
                sock.close(linger=0)
            self.endpoint.close()
        return self.counters

    def _drain(self, router) -> None:
        for _ in range(256):  # bounded, so replies keep flowing under a flood
            try:
                frames = router.recv_multipart(transport.NOBLOCK, copy=True)
            except transport.Again:
                return
            received = time.perf_counter_ns()
            self.counters.messages += 1
            if len(frames) < 2:
                self.counters.malformed += 1
                continue
            self._handle(frames[0], frames[1:], received)

    def _reply(self, router, identity: bytes, message) -> None:
        try:
            router.send_multipart([identity, *encode(message)], transport.NOBLOCK)
        except transport.ZMQError:
            self.counters.unroutable_replies += 1

    def _forward(self, router) -> None:
        while True:
            try:
                frames = self.replies_out.recv_multipart(transport.NOBLOCK)
            except transport.Again:
                return
            try:
                router.send_multipart(frames, transport.NOBLOCK)
            except transport.ZMQError:
                self.counters.unroutable_replies += 1

    def _device(self, identity: bytes) -> DeviceCounters:
        key = identity.hex()
        if key not in self.counters.devices:
            self.counters.devices[key] = DeviceCounters()
        return self.counters.devices[key]

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
            self.sessions[identity] = message
            self._device(identity).name = message.device
            self._reply(router, identity, Welcome(self.name, self.setup.fingerprint, self.max_batch))
        elif isinstance(message, Frame):
            session = self.sessions.get(identity)
            if session is None:
                self.counters.no_handshake += 1
                self._reply(router, identity, Error("no-handshake", "send HELLO before frames", message.seq))
                return
            counters = self._device(identity)
            counters.frames += 1
            counters.bytes_in += sum(len(f) for f in frames)
            self.active[identity] = received
            self.work.put(Work(identity, message, received, session.min_score))
        else:
            self.counters.malformed += 1
            self._reply(router, identity, Error("malformed", f"a device may not send {type(message).__name__}"))

    # --- worker thread -------------------------------------------------------------------------------------

    def _work(self) -> None:
        torch.set_grad_enabled(False)
        while not self.stop.is_set():
            try:
                first = self.work.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            deadline = first.received_ns + self.max_wait_ns
            # Waiting for a batch to fill only pays when several devices stream: a lone device never waits.
            recent = first.received_ns - 1_000_000_000
            target = min(self.max_batch, max(sum(1 for t in list(self.active.values()) if t > recent), 1))
            while len(batch) < target:
                remaining = (deadline - time.perf_counter_ns()) / 1e9
                try:
                    batch.append(self.work.get(timeout=max(remaining, 0)) if remaining > 0 else self.work.get_nowait())
                except queue.Empty:
                    break
            while len(batch) < self.max_batch:  # and whatever else is already waiting
                try:
                    batch.append(self.work.get_nowait())
                except queue.Empty:
                    break
            self._run_batch(batch)

    def _send(self, work: Work, message) -> None:
        """Worker → I/O thread (the only user of ``replies_in``), which forwards to the device."""
        self.replies_in.send_multipart([work.identity, *encode(message)])

    def _decode(self, work: Work) -> Tensor:
        frame = work.frame
        if frame.mode == "jpeg":
            return decode_jpeg(frame.payload)
        if frame.codec != self.setup.codec.name:
            raise CodecError(f"frame coded with {frame.codec!r}, this edge decodes {self.setup.codec.name!r}")
        return self.setup.codec.decompress(frame.payload)

    def _run_batch(self, batch: list[Work]) -> None:
        start = time.perf_counter_ns()
        groups: dict[tuple, list[tuple[Work, Tensor, float]]] = defaultdict(list)
        for work in batch:
            t0 = time.perf_counter_ns()
            try:
                tensor = self._decode(work)
            except (CodecError, DataError) as exc:
                self.counters.payload_errors += 1
                self._device(work.identity).errors += 1
                self._send(work, Error("payload", str(exc), work.frame.seq))
                continue
            key = (work.frame.mode, tuple(tensor.shape)) if work.frame.mode == "split" else ("jpeg",)
            groups[key].append((work, tensor, (time.perf_counter_ns() - t0) / 1e6))
        for key, items in groups.items():
            t0 = time.perf_counter_ns()
            try:
                detections = self._infer(key[0], items)
            except Exception as exc:  # a bad batch must not take the server down; every frame gets an answer
                self.counters.internal_errors += 1
                for work, _, _ in items:
                    self._send(work, Error("internal", f"{type(exc).__name__}: {exc}", work.frame.seq))
                continue
            tail_ms = (time.perf_counter_ns() - t0) / 1e6
            self.counters.batches += 1
            self.counters.batched_frames += len(items)
            self.batch_sizes[len(items)] += 1
            for (work, _, decode_ms), result in zip(items, detections):
                timing = {"queue": (start - work.received_ns) / 1e6, "decode": decode_ms, "tail": tail_ms}
                self._send(work, detections_to_result(work.frame.seq, result, work.min_score, timing, len(items)))
                self._device(work.identity).results += 1

    def _infer(self, mode: str, items: list) -> Detections:
        if mode == "jpeg":
            images = [tensor.to(self.device) for _, tensor, _ in items]
            detections = [scale_to_original(d, Geometry(*work.frame.geometry))
                          for d, (work, _, _) in zip(self.detector(images), items)]
        else:
            features = torch.stack([tensor for _, tensor, _ in items]).to(self.device)
            geometries = [Geometry(*work.frame.geometry) for work, _, _ in items]
            detections = self.tail(features, geometries)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return detections

    def summary(self) -> dict:
        counters = asdict(self.counters)
        batches = self.counters.batches
        counters["mean_batch"] = round(self.counters.batched_frames / batches, 3) if batches else 0.0
        counters["uptime_s"] = round(time.monotonic() - self.started, 3)
        counters["fingerprint"] = self.setup.fingerprint
        return counters

