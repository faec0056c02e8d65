"""The device client: capture → head → payload → edge, with a real-time policy, and every frame accounted for.

Three threads. The capture thread reads the source at its pace into a one-frame slot: when the pipeline is
busy the newest frame wins and the one it replaces is counted ``stale``. The main thread takes a frame when
the in-flight window has room, runs the head (or the JPEG encoder, or the whole model in ``local`` mode) and
hands the message to the I/O thread, which owns the ZeroMQ socket: it does the handshake, sends, receives
and timestamps replies the moment they arrive, expires frames whose deadline passed, and reconnects with
backoff when the edge is lost. Every captured frame ends as exactly one of: ``edge`` (a result), ``local``
(computed on the device), ``filtered`` (by the prefilter), ``stale`` (deadline passed, or replaced by a newer
frame) or ``failed`` (with a reason).
"""

from __future__ import annotations

import contextlib
import json
import socket as pysocket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np
import torch
from torch import Tensor

from splitinf.data import jpeg_bytes, resize_rgb
from splitinf.head import Head, Prefilter
from splitinf.models import Geometry
from splitinf.protocol import Error, Frame, Hello, ProtocolError, Result, Welcome, decode, encode
from splitinf.runtime import transport
from splitinf.runtime.policy import AdaptivePolicy, ModeEstimate
from splitinf.runtime.setup import ModelSetup
from splitinf.runtime.sources import Captured, FrameSource

OUTCOMES = ("edge", "local", "filtered", "stale", "failed")
STAGES = ("capture", "wait", "prefilter", "head", "encode", "wire", "edge_queue", "decode", "tail", "local", "total")
MODES = ("split", "jpeg", "local", "auto")
AUTO_MODES = ("local", "jpeg", "split")  # what --mode auto may choose from, by default


class EdgeRefused(RuntimeError):
    """The edge answered the handshake with an error that retrying cannot fix (e.g. a different model)."""


@dataclass
class FrameRecord:
    seq: int
    captured: Captured
    stages: dict[str, float] = field(default_factory=dict)
    sent_ns: int = 0
    deadline_ns: int = 0
    uplink_bytes: int = 0
    mode: str = ""
    probe: bool = False  # a copy of a frame already answered locally, sent only to measure the link
    give_up_ms: float = 0.0  # --mode auto: after this long without a result, compute the frame locally


@dataclass
class Outcome:
    seq: int
    outcome: str
    captured_ns: int
    done_ns: int
    detections: dict[str, np.ndarray] | None = None
    reason: str | None = None
    stages: dict[str, float] = field(default_factory=dict)


class LatestFrame:
    """A one-frame slot: putting a frame replaces (and reports) the one not yet taken — newest wins."""

    def __init__(self) -> None:
        self._frame: Captured | None = None
        self._done = False
        self._cond = threading.Condition()

    def put(self, frame: Captured) -> Captured | None:
        with self._cond:
            replaced, self._frame = self._frame, frame
            self._cond.notify_all()
            return replaced

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def take(self, timeout: float) -> tuple[Captured | None, bool]:
        """(frame or None, source finished and nothing left)."""
        with self._cond:
            if self._frame is None and not self._done:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame, frame is None and self._done


def arrays_of(result: Result) -> dict[str, np.ndarray]:
    return {"boxes": np.frombuffer(result.boxes, "<f4").reshape(result.n, 4),
            "scores": np.frombuffer(result.scores, "<f4"), "labels": np.frombuffer(result.labels, "<i4")}


def arrays_from_tensors(detections: dict[str, Tensor], min_score: float) -> dict[str, np.ndarray]:
    keep = detections["scores"] >= min_score
    return {"boxes": detections["boxes"][keep].float().numpy(), "scores": detections["scores"][keep].float().numpy(),
            "labels": detections["labels"][keep].to(torch.int32).numpy()}


class DeviceClient:
    def __init__(self, setup: ModelSetup, connect: str | None, *, mode: str = "split", jpeg_quality: int = 90,
                 jpeg_size: tuple[int, int] | None = None,
                 window: int = 2, deadline_ms: float = 2000.0, fallback_local: bool = False,
                 min_score: float = 0.05, name: str | None = None, key: str | None = None,
                 server_key: str | None = None, connect_timeout_s: float = 15.0, reply_timeout_s: float = 3.0,
                 on_outcome: Callable[[Outcome, FrameRecord | None], None] | None = None,
                 slowdown: float = 1.0, prefilter: Prefilter | None = None,
                 auto_modes: tuple[str, ...] = AUTO_MODES) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != "local" and not connect:
            raise ValueError(f"mode {mode!r} needs --connect tcp://HOST:PORT of an edge (or a relay)")
        if slowdown < 1:
            raise ValueError(f"slowdown emulates a slower board and must be >= 1, got {slowdown}")
        if window < 1 or deadline_ms <= 0:
            raise ValueError(f"window must be >= 1 and deadline > 0, got {window} and {deadline_ms}")
        self.setup, self.connect, self.mode = setup, connect, mode
        self.jpeg_quality, self.window, self.deadline_ns = jpeg_quality, window, int(deadline_ms * 1e6)
        self.jpeg_size = jpeg_size
        self.fallback_local, self.min_score = fallback_local, min_score
        self.name = name or f"device@{pysocket.gethostname()}"
        self.key, self.server_key = key, server_key
        self.connect_timeout_s, self.reply_timeout_ns = connect_timeout_s, int(reply_timeout_s * 1e9)
        self.on_outcome = on_outcome
        self.slowdown = slowdown
        self.prefilter = prefilter
        if prefilter is not None and prefilter.config.model != setup.detector.name:
            raise ValueError(f"the prefilter was trained for {prefilter.config.model}, not {setup.detector.name}")
        if mode == "auto" and ("local" not in auto_modes or not set(auto_modes) <= set(AUTO_MODES)):
            raise ValueError(f"auto modes must include local and be among {AUTO_MODES}, got {','.join(auto_modes)}")
        uses_head = mode == "split" or (mode == "auto" and "split" in auto_modes)
        self.head = Head(setup.detector, setup.split, setup.bottleneck).eval() if uses_head else None
        if self.head is not None and prefilter is not None:
            self.head.check_prefilter(prefilter)  # now, not on every frame
        # --mode auto: start from rough costs (a small board, a 1 Mbit/s link); measurements replace them.
        rough = {"local": ModeEstimate("local", 160.0), "jpeg": ModeEstimate("jpeg", 5.0, 20_000, 60.0),
                 "split": ModeEstimate("split", 60.0, 2_500, 30.0)}
        self.policy = AdaptivePolicy([rough[m] for m in auto_modes]) if mode == "auto" else None
        self.counts: Counter[str] = Counter({o: 0 for o in OUTCOMES})
        self.reasons: Counter[str] = Counter()
        self.stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
        self.uplink: list[int] = []
        self.downlink: list[int] = []
        self.frames = 0
        self.late_results = 0
        self.reconnects = 0
        self.probes: Counter[str] = Counter({"sent": 0, "answered": 0, "uplink_bytes": 0})  # auto's link probes
        self._last_payload: dict[str, tuple[bytes, Geometry, str, str]] = {}  # per mode: what a probe re-sends
        self._rescues: deque[FrameRecord] = deque()  # auto: offloads given up on, to compute locally
        self.rescued = 0
        self.in_flight: dict[int, FrameRecord] = {}
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.fatal: str | None = None
        self.started_ns = 0
        self.finished_ns = 0

    # --- accounting (called with or without the lock; takes it) ---------------------------------------------

    def _finish(self, outcome: Outcome, record: FrameRecord | None) -> None:
        if record is not None and record.probe:  # a probe's frame was answered locally: nothing to account
            return
        with self.lock:
            self.counts[outcome.outcome] += 1
            if outcome.reason:
                self.reasons[outcome.reason] += 1
            if outcome.outcome in ("edge", "local", "filtered"):
                for stage, ms in outcome.stages.items():
                    self.stage_ms[stage].append(ms)
                self.stage_ms["total"].append((outcome.done_ns - outcome.captured_ns) / 1e6)
            self.room.notify_all()
        if self.on_outcome is not None:
            self.on_outcome(outcome, record)

    def _drop(self, record: FrameRecord, outcome: str, reason: str) -> None:
        self._finish(Outcome(record.seq, outcome, record.captured.captured_ns, time.perf_counter_ns(),
                             reason=reason), record)

    # --- the run -------------------------------------------------------------------------------------------

    def run(self, source: FrameSource, max_frames: int | None = None) -> dict:
        self._warm_up()
        self.started_ns = time.perf_counter_ns()
        if self.policy is not None and source.fps > 0:
            self.policy.frame_period_ms = 1000.0 / source.fps  # how long a busy device makes frames wait
        io = None
        if self.mode != "local":
            self._outbox, self._inbox = transport.inproc_pair("device-out")
            io = threading.Thread(target=self._io, name="device-io", daemon=True)
            io.start()
            if not self.connected.wait(self.connect_timeout_s) and not self.fallback_local:
                self.stop.set()
                io.join(timeout=5)
                raise ConnectionError(self.fatal or f"the edge at {self.connect} did not answer within "
                                      f"{self.connect_timeout_s:g} s")
            if self.fatal:
                self.stop.set()
                raise EdgeRefused(self.fatal)
        slot = LatestFrame()
        capture = threading.Thread(target=self._capture, args=(source, max_frames, slot), name="capture",
                                   daemon=True)
        capture.start()
        try:
            self._process(slot)
            while not self.stop.is_set():  # let the frames in flight come back (or expire, or be rescued)
                rescue = self._take_rescue()
                if rescue is not None:
                    self._local(rescue)
                    continue
                with self.lock:
                    if not self.in_flight and not self._rescues:
                        break
                    self.room.wait(0.05)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop.set()
            capture.join(timeout=5)
            if io is not None:
                io.join(timeout=5)
            with self.lock:
                for record in list(self.in_flight.values()):
                    self.in_flight.pop(record.seq)
                    self.counts["failed"] += 1
                    self.reasons["interrupted"] += 1
            self.finished_ns = time.perf_counter_ns()
        if self.fatal and self.mode != "local":
            raise EdgeRefused(self.fatal)
        return self.summary()

    def _warm_up(self) -> None:
        """One untimed pass through every compute path this run may take, before the camera starts: first
        calls allocate kernels and caches and would otherwise make the first frames of each path late."""
        image = torch.zeros(3, 300, 300, dtype=torch.uint8)
        with torch.inference_mode():
            if self.head is not None:
                self.head([image])
            if self.mode in ("local", "auto") or self.fallback_local:
                self.setup.detector([image])
        if self.mode in ("jpeg", "auto"):
            jpeg_bytes(image if self.jpeg_size is None else resize_rgb(image, self.jpeg_size), self.jpeg_quality)

    def _capture(self, source: FrameSource, max_frames: int | None, slot: LatestFrame) -> None:
        try:
            for captured in source.frames(max_frames):
                if self.stop.is_set():
                    break
                with self.lock:
                    self.frames += 1
                replaced = slot.put(captured)
                if replaced is not None:  # the pipeline was busy: newest wins
                    self._drop(FrameRecord(replaced.index, replaced), "stale", "replaced by a newer frame")
        finally:
            slot.finish()

    def _process(self, slot: LatestFrame) -> None:
        while not self.stop.is_set():
            with self.lock:  # auto waits only while an answer is due; otherwise a full window means local
                while (len(self.in_flight) >= self.window and not self.stop.is_set()
                       and (self.policy is None or self.policy.slot_due(time.perf_counter_ns() / 1e6))):
                    self.room.wait(0.05)
            rescue = self._take_rescue()
            if rescue is not None:  # an offload given up on: its frame is answered locally, first
                self._local(rescue)
                continue
            captured, finished = slot.take(0.05)
            if finished:
                return
            if captured is None:
                continue
            record = FrameRecord(captured.index, captured, {"capture": captured.decode_ms})
            record.stages["wait"] = (time.perf_counter_ns() - captured.captured_ns) / 1e6
            mode, probe = self.mode, None
            if self.policy is not None:
                mode, probe = self._choose(record.stages["wait"])
            record.mode = mode
            if self.prefilter is not None and mode != "split" and not self._worth_it(record):
                continue
            if mode == "local" or (not self.connected.is_set() and self.fallback_local):
                self._local(record)
                if probe is not None:
                    self._send(FrameRecord(record.seq, record.captured, mode=probe, probe=True))
            elif not self.connected.is_set():
                self._drop(record, "failed", "edge unreachable")
            else:
                self._send(record)

    def _take_rescue(self) -> FrameRecord | None:
        """An offload --mode auto gave up on (see :meth:`_expire`), whose frame is still ours to answer."""
        with self.lock:
            return self._rescues.popleft() if self._rescues else None

    def _choose(self, age_ms: float) -> tuple[str, str | None]:
        """--mode auto: (the mode of this frame, captured ``age_ms`` ago, and the mode of a copy that probes the
        link while local wins)."""
        if not self.connected.is_set():
            return "local", None
        now = time.perf_counter_ns() / 1e6
        with self.lock:
            window_full = len(self.in_flight) >= self.window
        mode = self.policy.choose(now, window_full, age_ms)
        return mode, (self.policy.probe(now) if mode == "local" and not window_full else None)

    def _worth_it(self, record: FrameRecord) -> bool:
        """The prefilter on its own (jpeg and local modes): False when the frame was filtered."""
        t0 = time.perf_counter_ns()
        with torch.inference_mode():
            keep = self.prefilter.keeps(self.setup.detector, [record.captured.image])
        self._emulate_slower_board(t0)
        record.stages["prefilter"] = (time.perf_counter_ns() - t0) / 1e6
        if not keep:
            self._filtered(record)
        return keep

    def _filtered(self, record: FrameRecord) -> None:
        """Nothing of interest: an empty result at once, nothing sent."""
        empty = {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
                 "labels": np.zeros(0, np.int32)}
        self._finish(Outcome(record.seq, "filtered", record.captured.captured_ns, time.perf_counter_ns(), empty,
                             stages=record.stages), record)

    def _emulate_slower_board(self, started_ns: int) -> None:
        """Stretch the compute that just ran to ``slowdown`` times its duration (a slower device)."""
        if self.slowdown > 1:
            time.sleep((time.perf_counter_ns() - started_ns) * (self.slowdown - 1) / 1e9)

    def _local(self, record: FrameRecord) -> None:
        t0 = time.perf_counter_ns()
        with torch.inference_mode():
            detections = self.setup.detector([record.captured.image])[0]
        self._emulate_slower_board(t0)
        done = time.perf_counter_ns()
        record.stages["local"] = (done - t0) / 1e6
        if self.policy is not None:
            self.policy.update_mode("local", device_ms=record.stages["local"])
        self._finish(Outcome(record.seq, "local", record.captured.captured_ns, done,
                             arrays_from_tensors(detections, self.min_score), stages=record.stages), record)

    def _payload(self, record: FrameRecord) -> tuple[bytes, Geometry, str, str] | None:
        image = record.captured.image
        if record.mode == "jpeg":
            t0 = time.perf_counter_ns()
            original = (int(image.shape[-2]), int(image.shape[-1]))
            sent = image if self.jpeg_size is None else resize_rgb(image, self.jpeg_size)
            payload = jpeg_bytes(sent, self.jpeg_quality)
            record.stages["encode"] = (time.perf_counter_ns() - t0) / 1e6
            size = (int(sent.shape[-2]), int(sent.shape[-1]))
            return payload, Geometry(original, size, size), "jpeg", f"jpeg{self.jpeg_quality}"
        t0 = time.perf_counter_ns()
        with torch.inference_mode():
            if self.prefilter is None:
                features, geometries = self.head([image])
            else:
                features, geometries, record.stages["prefilter"] = self.head.forward_filtered([image], self.prefilter)
        self._emulate_slower_board(t0)
        if features is None:
            record.stages["head"] = (time.perf_counter_ns() - t0) / 1e6
            return None
        t1 = time.perf_counter_ns()
        payload = self.setup.codec.compress(features[0])
        record.stages["head"] = (t1 - t0) / 1e6
        record.stages["encode"] = (time.perf_counter_ns() - t1) / 1e6
        return payload, geometries[0], "split", self.setup.codec.name

    def _send(self, record: FrameRecord) -> None:
        # A probe only measures the link: it re-sends the last payload of its mode when there is one, so that
        # it costs the device no compute (the edge's answer to it is not used).
        reused = self._last_payload.get(record.mode) if record.probe else None
        prepared = reused or self._payload(record)
        if prepared is None:
            self._filtered(record)
            return
        self._last_payload[record.mode] = prepared
        payload, geometry, mode, codec = prepared
        frames = encode(Frame(record.seq, record.captured.captured_ns, mode, tuple(geometry), codec, payload))
        record.uplink_bytes = sum(len(f) for f in frames)
        record.deadline_ns = record.captured.captured_ns + self.deadline_ns
        if self.policy is not None:
            record.give_up_ms = 0.0 if record.probe else self.policy.give_up_ms(mode)
            device_ms = record.stages.get("head", 0.0) + record.stages.get("encode", 0.0)
            self.policy.update_mode(mode, device_ms=None if reused else device_ms, uplink_bytes=record.uplink_bytes)
        with self.lock:
            self.in_flight[record.seq] = record
            if record.probe:
                self.probes["sent"] += 1
                self.probes["uplink_bytes"] += record.uplink_bytes
        self._outbox.send_multipart([record.seq.to_bytes(8, "little"), *frames])

    # --- the I/O thread --------------------------------------------------------------------------------------

    def _new_socket(self):
        return transport.device_socket(self.connect, self.key, self.server_key)

    def _hello(self, sock) -> None:
        hello = Hello(self.name, self.setup.fingerprint, self.setup.config, self.min_score)
        with contextlib.suppress(transport.Again):  # not connected yet: the backoff timer sends it again
            sock.send_multipart(encode(hello), transport.NOBLOCK)

    def _io(self) -> None:
        inbox = self._inbox
        sock = self._new_socket()
        backoff, hello_at = 0.25, time.monotonic()
        self._hello(sock)
        last_heard = time.perf_counter_ns()
        try:
            while not self.stop.is_set():
                poller = transport.poller(sock, inbox)
                events = dict(poller.poll(20))
                now = time.perf_counter_ns()
                if inbox in events:
                    self._forward(inbox, sock)
                if sock in events:
                    last_heard = now
                    self._receive(sock)
                    if self.fatal:
                        self.stop.set()
                        break
                self._expire(now)
                if not self.connected.is_set() and time.monotonic() - hello_at > backoff:
                    self._hello(sock)  # libzmq reconnects the socket by itself; we only repeat the greeting
                    hello_at, backoff = time.monotonic(), min(backoff * 2, 2.0)
                elif self.connected.is_set() and self._silent_since(last_heard, now):
                    # Frames went unanswered: start over on a fresh connection.
                    self._lost()
                    self._fail_in_flight("edge lost (no reply)")
                    sock.close(linger=0)
                    sock = self._new_socket()
                    hello_at, backoff = 0.0, 0.1
        finally:
            sock.close(linger=0)
            inbox.close(linger=0)
            self._outbox.close(linger=0)

    def _lost(self) -> None:
        """The edge is gone (or restarted): greet it again; counted once per loss."""
        if self.connected.is_set():
            self.connected.clear()
            self.reconnects += 1

    def _silent_since(self, last_heard: int, now: int) -> bool:
        with self.lock:
            waiting = [r.sent_ns for r in self.in_flight.values() if r.sent_ns]
        return bool(waiting) and now - max(min(waiting), last_heard) > self.reply_timeout_ns

    def _forward(self, inbox, sock) -> None:
        while True:
            try:
                tagged = inbox.recv_multipart(transport.NOBLOCK)
            except transport.Again:
                return
            seq, frames = int.from_bytes(tagged[0], "little"), tagged[1:]
            with self.lock:
                record = self.in_flight.get(seq)
            if record is None:
                continue
            try:
                sock.send_multipart(frames, transport.NOBLOCK)
                record.sent_ns = time.perf_counter_ns()
            except transport.Again:  # no connected edge to hand it to: reconnect, and account for the frame
                self._lost()
                with self.lock:
                    self.in_flight.pop(seq, None)
                self._drop(record, "failed", "edge unreachable")

    def _receive(self, sock) -> None:
        while True:
            try:
                frames = sock.recv_multipart(transport.NOBLOCK)
            except transport.Again:
                return
            received = time.perf_counter_ns()
            try:
                message = decode(frames)
            except ProtocolError as exc:
                self.reasons[f"bad reply: {exc.code}"] += 1
                continue
            if isinstance(message, Welcome):
                if message.fingerprint != self.setup.fingerprint:
                    self.fatal = (f"edge {message.edge} runs model {message.fingerprint}, "
                                  f"device {self.setup.fingerprint}")
                    return
                self.connected.set()
            elif isinstance(message, Result):
                self._complete(message, received, sum(len(f) for f in frames))
            elif isinstance(message, Error):
                self._error(message)

    def _complete(self, result: Result, received: int, size: int) -> None:
        with self.lock:
            record = self.in_flight.pop(result.seq, None)
        if record is None:
            self.late_results += 1
            return
        edge_ms = sum(result.timing.get(k, 0.0) for k in ("queue", "decode", "tail"))
        if self.policy is not None:
            self.policy.update_mode(record.mode, edge_ms=edge_ms)
            self.policy.observe(record.mode, record.sent_ns / 1e6, received / 1e6, edge_ms)
        if record.probe:  # its frame was answered locally: the probe only measured the link
            with self.lock:
                self.probes["answered"] += 1
            return
        stages = dict(record.stages)
        stages.update(edge_queue=result.timing.get("queue", 0.0), decode=result.timing.get("decode", 0.0),
                      tail=result.timing.get("tail", 0.0), wire=(received - record.sent_ns) / 1e6 - edge_ms)
        with self.lock:
            self.uplink.append(record.uplink_bytes)
            self.downlink.append(size)
        self._finish(Outcome(record.seq, "edge", record.captured.captured_ns, received, arrays_of(result),
                             stages=stages), record)

    def _error(self, error: Error) -> None:
        if error.code in ("fingerprint", "version"):
            self.fatal = f"the edge refused this device: {error.text}"
            return
        if error.code == "no-handshake":  # a restarted edge: introduce ourselves again
            self._lost()
        if error.seq is not None:
            with self.lock:
                record = self.in_flight.pop(error.seq, None)
            if record is not None:
                self._drop(record, "failed", f"edge error {error.code}")

    def _expire(self, now: int) -> None:
        with self.lock:
            expired = [r for r in self.in_flight.values() if r.deadline_ns and now > r.deadline_ns]
            for record in expired:
                self.in_flight.pop(record.seq)
            # --mode auto gives up on an offload long overdue (the link is probably gone) and computes the frame
            # locally; the late result, if any, is then only counted.
            overdue = [r for r in self.in_flight.values()
                       if r.give_up_ms and r.sent_ns and now - r.sent_ns > r.give_up_ms * 1e6]
            for record in overdue:
                self.in_flight.pop(record.seq)
                self._rescues.append(record)
                self.rescued += 1
            if overdue:
                self.room.notify_all()
        for record in expired:
            if self.policy is not None:
                self.policy.observe_loss(now / 1e6)
            self._drop(record, "stale", "deadline passed")

    def _fail_in_flight(self, reason: str) -> None:
        with self.lock:
            records = list(self.in_flight.values())
            self.in_flight.clear()
        for record in records:
            self._drop(record, "failed", reason)

    # --- the summary -----------------------------------------------------------------------------------------

    def summary(self) -> dict:
        with self.lock:
            duration = max((self.finished_ns or time.perf_counter_ns()) - self.started_ns, 1) / 1e9
            latency = {stage: {q: round(float(np.percentile(v, p)), 3) for q, p in (("p50", 50), ("p95", 95),
                                                                                    ("p99", 99))}
                       for stage, v in self.stage_ms.items() if v}
            delivered = self.counts["edge"] + self.counts["local"]
            return {
                "frames": self.frames,
                "counts": dict(self.counts),
                "accounted": sum(self.counts.values()),
                "reasons": dict(self.reasons),
                "latency_ms": latency,
                "bytes_per_frame": round(float(np.mean(self.uplink)), 1) if self.uplink else 0.0,
                "downlink_bytes_per_frame": round(float(np.mean(self.downlink)), 1) if self.downlink else 0.0,
                "fps": round(delivered / duration, 3),
                "duration_s": round(duration, 3),
                "late_results": self.late_results,
                "reconnects": self.reconnects,
                "mode": self.mode,
                "auto_choices": dict(self.policy.choices) if self.policy is not None else None,
                "probes": dict(self.probes) if self.policy is not None else None,
                "rescued": self.rescued,
                "model": self.setup.describe(),
                "fingerprint": self.setup.fingerprint,
            }


class JsonLinesSink:
    """One JSON line per frame: outcome, latency and detections ([x1, y1, x2, y2, score, label] in pixels)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome, record: FrameRecord | None) -> None:
        # captured_s: the device's monotonic clock (CLOCK_MONOTONIC on Linux, the relay's clock too), to line
        # frames up with other logs of the same machine.
        line = {"frame": outcome.seq, "outcome": outcome.outcome, "captured_s": outcome.captured_ns / 1e9,
                "latency_ms": round((outcome.done_ns - outcome.captured_ns) / 1e6, 3)}
        if outcome.reason:
            line["reason"] = outcome.reason
        if outcome.stages:
            line["stages_ms"] = {k: round(v, 3) for k, v in outcome.stages.items()}
        if outcome.detections is not None:
            d = outcome.detections
            # Exact float32 values (no rounding): the output can be compared bit for bit with a local run.
            line["detections"] = [[*(float(v) for v in box), float(s), int(c)]
                                  for box, s, c in zip(d["boxes"], d["scores"], d["labels"])]
        with self.lock:
            self.stream.write(json.dumps(line) + "\n")
            self.stream.flush()


class AnnotatedVideoSink:
    """An MP4 of the frames that got detections, boxes drawn, written as they complete."""

    def __init__(self, path: str, fps: float, min_score: float = 0.5) -> None:
        self.path, self.fps, self.min_score = path, fps, min_score
        self.writer = None
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome, record: FrameRecord | None) -> None:
        if outcome.detections is None or record is None:
            return
        import cv2  # only a device that writes video needs the drawing code

        rgb = record.captured.image.permute(1, 2, 0).numpy()
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for (x1, y1, x2, y2), score in zip(outcome.detections["boxes"], outcome.detections["scores"]):
            if score >= self.min_score:
                cv2.rectangle(bgr, (int(x1), int(y1)), (int(x2), int(y2)), (0, 200, 0), 2)
                cv2.putText(bgr, f"{score:.2f}", (int(x1), max(int(y1) - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (0, 200, 0), 1)
        latency = (outcome.done_ns - outcome.captured_ns) / 1e6
        cv2.putText(bgr, f"frame {outcome.seq} {outcome.outcome} {latency:.0f} ms", (8, 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        with self.lock:
            if self.writer is None:
                height, width = bgr.shape[:2]
                self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            self.writer.write(bgr)

    def close(self) -> None:
        with self.lock:
            if self.writer is not None:
                self.writer.release()
