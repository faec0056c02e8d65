"""The rules of the device, sans I/O: one object that the threaded ZeroMQ client, the discrete-event
simulator and the load generator all drive, so that what the simulator measures is what the device does.

It owns:

* the connection: HELLO until WELCOME (with backoff; a refused model is fatal), heartbeats, and the edge's
  liveness (the zguide's Paranoid Pirate: ``DEVICE_LIVENESS`` heartbeat periods of silence and the device
  starts over on a fresh connection);
* the frames: a one-frame slot where the newest capture wins, the in-flight table by sequence number with
  each frame's deadline and (``--mode auto``) give-up time, the rescues (offloads given up on, or stranded by
  a lost or overloaded edge, computed locally — whichever answer comes first wins), the probes (copies of
  locally answered frames sent to measure the link) and the backoff after ``overloaded``;
* the policy's ledger (``--mode auto``): it tells the policy what was really sent and how each offload ended;
* the accounting: every captured frame ends exactly once as ``edge``, ``local``, ``filtered``, ``stale`` or
  ``failed``, with its stage times.

It takes events — a frame captured, compute done, a message received, time passed — and returns actions:
messages to send, a fresh connection to make, outcomes to record. It reads no clock (every call gets
``now_ms``, on the device's monotonic clock) and imports neither torch nor ZeroMQ.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splitinf.detections import empty, from_result
from splitinf.modes import LOCAL
from splitinf.protocol import (
    DEVICE_LIVENESS,
    HEARTBEAT_MS,
    Error,
    Frame,
    Heartbeat,
    Hello,
    Payload,
    ProtocolError,
    Result,
    Welcome,
    decode,
    encode,
)
from splitinf.runtime.policy import AdaptivePolicy

OUTCOMES = ("edge", "local", "filtered", "stale", "failed")
# Errors meaning the edge could not take a frame (its queue, or its compute gone), not that the frame was bad:
# the device backs off and answers the frame as if the edge were unreachable.
COULD_NOT_TAKE = ("overloaded", "unavailable")
STAGES = ("capture", "wait", "prefilter", "head", "encode", "wire", "edge_queue", "decode", "tail", "local", "total")
PROBE_SEQ = 1 << 48  # probes' sequence numbers start here, far above any frame's
REPLACED = "replaced by a newer frame"  # the device was busy computing
REPLACED_WAITING = "replaced while waiting for the link"  # the device waited on the in-flight window
HELLO_BACKOFF_MS = (250.0, 2000.0)  # first and longest wait between greetings of an edge that does not answer
OVERLOAD_BACKOFF_MS = (100.0, 2000.0)  # first and longest pause of offloads after an ``overloaded`` reply


class EdgeRefused(RuntimeError):
    """The edge answered the handshake with an error that retrying cannot fix (e.g. a different model)."""


@dataclass
class Outcome:
    """How a frame ended: one per captured frame."""

    seq: int
    outcome: str
    captured_ms: float
    done_ms: float
    detections: dict[str, np.ndarray] | None = None
    reason: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    mode: str = ""  # the operating point it was given (split@R for a rate of a variable-rate bottleneck)

    @property
    def latency_ms(self) -> float:
        return self.done_ms - self.captured_ms


@dataclass(frozen=True)
class Send:
    """Hand this message to the edge."""

    frames: list[bytes]
    seq: int | None = None  # the sequence number of a FRAME (None: a greeting or a heartbeat)


@dataclass(frozen=True)
class Reconnect:
    """The edge is gone: drop the connection, open a fresh one — to the next endpoint where there are several —
    and greet it (the session sends HELLO: a front knows only the devices that greeted it)."""


Action = Send | Reconnect | Outcome


@dataclass(frozen=True)
class Job:
    """Compute frame ``seq`` in ``mode``; ``rescue``: an offload given up on, to answer locally; ``probe``:
    after answering it locally, send a copy in that mode."""

    seq: int
    mode: str
    probe: str | None = None
    rescue: bool = False


@dataclass
class _Frame:
    seq: int
    captured_ms: float
    stages: dict[str, float]
    mode: str = ""
    state: str = "waiting"  # waiting → computing → in flight → done; or rescue → rescuing → done
    sent_ms: float = 0.0
    deadline_ms: float = math.inf
    give_up_ms: float = math.inf  # when --mode auto stops waiting and answers it locally
    uplink_bytes: int = 0


@dataclass
class _Probe:
    mode: str
    sent_ms: float
    deadline_ms: float


class DeviceSession:
    def __init__(self, *, mode: str, fingerprint: str, config: dict, name: str = "device", min_score: float = 0.05,
                 window: int = 2, deadline_ms: float = 2000.0, fallback_local: bool = False,
                 policy: AdaptivePolicy | None = None, endpoints: int = 1) -> None:
        if window < 1 or deadline_ms <= 0:
            raise ValueError(f"window must be >= 1 and deadline > 0, got {window} and {deadline_ms}")
        if (mode == "auto") != (policy is not None):
            raise ValueError("mode auto needs a policy, and only mode auto takes one")
        self.mode, self.policy = mode, policy
        self.hello = Hello(name, fingerprint, config, min_score)
        self.window, self.deadline_ms, self.fallback_local = window, deadline_ms, fallback_local
        self.endpoints = endpoints  # edges (fronts) the driver can fail over between
        self.unanswered_greetings = 0
        # connection
        self.connected, self.fatal = False, None
        self.heartbeat_ms = float(HEARTBEAT_MS)
        self.hello_at, self.hello_backoff_ms = -math.inf, HELLO_BACKOFF_MS[0]
        self.last_heard_ms = self.last_sent_ms = 0.0
        self.pause_until_ms, self.pause_ms = -math.inf, OVERLOAD_BACKOFF_MS[0]
        # frames
        self.frames: dict[int, _Frame] = {}  # every frame not yet accounted for
        self.slot: _Frame | None = None  # the newest captured frame not yet started
        self.in_flight: dict[int, _Frame] = {}
        self.rescues: deque[int] = deque()
        self.probes_in_flight: dict[int, _Probe] = {}
        self.computing: int | None = None
        self.source_done = False
        self.next_probe_seq = PROBE_SEQ
        # accounting
        self.captured_frames = 0
        self.counts: Counter[str] = Counter({o: 0 for o in OUTCOMES})
        self.reasons: Counter[str] = Counter()
        self.stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
        self.uplink: list[int] = []
        self.downlink: list[int] = []
        self.choices: Counter[str] = Counter({m: 0 for m in (policy.modes if policy else ())})
        self.probes: Counter[str] = Counter({"sent": 0, "answered": 0, "uplink_bytes": 0})
        self.late_results = self.reconnects = self.rescued = self.overloaded = self.heartbeats = 0
        self.started_ms = self.finished_ms = 0.0

    # --- the connection ----------------------------------------------------------------------------------------

    def start(self, now_ms: float) -> list[Action]:
        self.started_ms = self.last_heard_ms = now_ms
        return self._greet(now_ms)

    def _send(self, message, now_ms: float, seq: int | None = None) -> Send:
        self.last_sent_ms = now_ms
        return Send(encode(message), seq)

    def _greet(self, now_ms: float) -> list[Action]:
        self.hello_at = now_ms
        return [self._send(self.hello, now_ms)]

    def received(self, frames: list[bytes], now_ms: float) -> list[Action]:
        """A message from the edge (as ZeroMQ frames)."""
        self.last_heard_ms = now_ms
        try:
            message = decode(frames)
        except ProtocolError as exc:
            self.reasons[f"bad reply: {exc.code}"] += 1
            return []
        if isinstance(message, Welcome):
            if message.fingerprint != self.hello.fingerprint:
                self.fatal = f"edge {message.edge} runs model {message.fingerprint}, device {self.hello.fingerprint}"
                return []
            self.connected, self.heartbeat_ms = True, float(message.heartbeat_ms)
            self.hello_backoff_ms, self.unanswered_greetings = HELLO_BACKOFF_MS[0], 0
            return []
        if isinstance(message, Result):
            return self._result(message, now_ms, sum(len(f) for f in frames))
        if isinstance(message, Error):
            return self._error(message, now_ms)
        return []  # a heartbeat: the edge is alive, which last_heard_ms now says

    def tick(self, now_ms: float) -> list[Action]:
        """Time passed: greetings, heartbeats, the edge's liveness, deadlines and give-ups."""
        if self.fatal:
            return []
        actions: list[Action] = []
        if not self.connected and now_ms >= self.hello_at + self.hello_backoff_ms:
            self.unanswered_greetings += 1
            # Another front after two greetings this one ignored: the first one, sent as a fresh socket connects,
            # may have been dropped (the socket queues nothing for a peer not yet there), the second was not.
            if self.endpoints > 1 and self.unanswered_greetings >= 2:
                actions.append(Reconnect())
                self.unanswered_greetings = 0
            actions += self._greet(now_ms)  # one endpoint: libzmq reconnects the socket itself
            self.hello_backoff_ms = min(2 * self.hello_backoff_ms, HELLO_BACKOFF_MS[1])
        if self.connected and now_ms >= self.last_heard_ms + DEVICE_LIVENESS * self.heartbeat_ms:
            actions += self._lost(now_ms, "edge lost (no reply)")
        elif self.connected and now_ms >= self.last_sent_ms + self.heartbeat_ms:
            actions.append(self._send(Heartbeat(), now_ms))
            self.heartbeats += 1
        for seq in [s for s, f in self.in_flight.items() if now_ms >= f.deadline_ms]:
            if self.policy is not None:
                self.policy.lost(seq, now_ms)
            actions.append(self._finish(self.in_flight.pop(seq), "stale", now_ms, reason="deadline passed"))
        for seq in [s for s, p in self.probes_in_flight.items() if now_ms >= p.deadline_ms]:
            del self.probes_in_flight[seq]
            self.policy.lost(seq, now_ms)
        for seq in [s for s, f in self.in_flight.items() if now_ms >= f.give_up_ms]:
            self.policy.gave_up(seq, now_ms)  # far later than expected: the link is probably gone
            self._rescue(self.in_flight.pop(seq))
        return actions

    def next_timer_ms(self) -> float:
        """The next time :meth:`tick` has something to do (for a driver without a clock of its own): a tick at
        that time does it."""
        times = [f.deadline_ms for f in self.in_flight.values()] + [f.give_up_ms for f in self.in_flight.values()]
        times += [p.deadline_ms for p in self.probes_in_flight.values()]
        if self.connected:
            times += [self.last_sent_ms + self.heartbeat_ms, self.last_heard_ms + DEVICE_LIVENESS * self.heartbeat_ms]
        elif not self.fatal:
            times.append(self.hello_at + self.hello_backoff_ms)
        return min(times, default=math.inf)

    def _lost(self, now_ms: float, reason: str) -> list[Action]:
        """The edge went silent: start over on a fresh connection; what was in flight is answered locally
        where the device may (auto, --fallback local), else failed."""
        self.connected = False
        self.reconnects += 1
        actions: list[Action] = [Reconnect()]
        for seq in list(self.probes_in_flight):
            del self.probes_in_flight[seq]
            self.policy.lost(seq, now_ms)
        for seq in list(self.in_flight):
            if self.policy is not None:
                self.policy.lost(seq, now_ms)
            actions += self._strand(self.in_flight.pop(seq), now_ms, reason)
        self.hello_backoff_ms = HELLO_BACKOFF_MS[0]
        return actions + self._greet(now_ms)

    def send_failed(self, seq: int, now_ms: float) -> list[Action]:
        """The transport could not hand FRAME ``seq`` to any edge (none connected)."""
        if seq in self.probes_in_flight:
            del self.probes_in_flight[seq]
            self.policy.lost(seq, now_ms)
            return []
        frame = self.in_flight.pop(seq, None)
        if frame is None:
            return []
        if self.policy is not None:
            self.policy.lost(seq, now_ms)
        actions = self._strand(frame, now_ms, "edge unreachable")
        if self.connected:  # it thought it was: greet whatever edge comes next
            self.connected = False
            self.reconnects += 1
            actions += self._greet(now_ms)
        return actions

    # --- frames --------------------------------------------------------------------------------------------------

    def captured(self, seq: int, now_ms: float, capture_ms: float = 0.0) -> list[Action]:
        """Frame ``seq`` exists (``capture_ms``: what reading it took). The newest frame wins the slot."""
        self.captured_frames += 1
        frame = _Frame(seq, now_ms, {"capture": capture_ms})
        self.frames[seq] = frame
        actions: list[Action] = []
        if self.slot is not None:
            busy = self.computing is not None
            actions.append(self._finish(self.slot, "stale", now_ms, reason=REPLACED if busy else REPLACED_WAITING))
        self.slot = frame
        return actions

    def holds_waiting_frame(self) -> bool:
        """A captured frame waits for the device (and a newer one would replace it)."""
        return self.slot is not None

    def source_finished(self) -> list[Action]:
        self.source_done = True
        return []

    def done(self) -> bool:
        """Every frame of a finished source is accounted for."""
        return self.source_done and not self.frames

    def next_job(self, now_ms: float) -> tuple[Job | None, list[Action]]:
        """What the device computes next, if anything now: a rescue first, then the newest frame — unless its
        mode must wait for an in-flight slot (a fixed offload mode; auto while an answer is due)."""
        if self.fatal:
            return None, []
        if self.rescues:
            frame = self.frames[self.rescues.popleft()]
            frame.state, self.computing = "rescuing", frame.seq
            return Job(frame.seq, LOCAL, rescue=True), []
        if self.slot is None:
            return None, []
        window_full = len(self.in_flight) >= self.window
        can_offload = self.connected and now_ms >= self.pause_until_ms
        probe = None
        if self.policy is None:
            mode = self.mode
            if mode != LOCAL and not can_offload and self.fallback_local:
                mode = LOCAL
            elif mode != LOCAL and not self.connected:
                frame, self.slot = self.slot, None
                return None, [self._finish(frame, "failed", now_ms, reason="edge unreachable")]
            elif mode != LOCAL and (window_full or not can_offload):
                return None, []  # wait for a slot (or the end of the overload pause)
        else:
            if window_full and can_offload and self.policy.slot_due(now_ms):
                return None, []  # an answer is due: its slot is worth waiting for
            age_ms = now_ms - self.slot.captured_ms
            mode = self.policy.choose(now_ms, window_full, age_ms) if can_offload else LOCAL
            if mode == LOCAL and can_offload and not window_full:
                probe = self.policy.probe(now_ms)
            self.choices[mode] += 1
        frame, self.slot = self.slot, None
        frame.state, frame.mode, self.computing = "computing", mode, frame.seq
        frame.stages["wait"] = now_ms - frame.captured_ms
        return Job(frame.seq, mode, probe), []

    def computed_local(self, job: Job, now_ms: float, detections: dict[str, np.ndarray], stages: dict[str, float]
                       ) -> list[Action]:
        """The device answered frame ``job.seq`` itself."""
        self.computing = None
        frame = self.frames.get(job.seq)
        if self.policy is not None and "local" in stages:
            self.policy.update_mode(LOCAL, device_ms=stages["local"])
        if frame is None:  # a rescue the edge answered first
            return []
        frame.stages.update(stages)
        if job.rescue:
            self.rescued += 1
        return [self._finish(frame, "local", now_ms, detections)]

    def filtered(self, job: Job, now_ms: float, stages: dict[str, float]) -> list[Action]:
        """The prefilter found nothing of interest in frame ``job.seq``: an empty result, nothing sent (and
        nothing in the policy's ledger)."""
        self.computing = None
        frame = self.frames[job.seq]
        frame.stages.update(stages)
        return [self._finish(frame, "filtered", now_ms, empty())]

    def offloaded(self, job: Job, now_ms: float, payload: Payload, stages: dict[str, float]) -> list[Action]:
        """The device half made frame ``job.seq``'s payload: send it, and wait for its answer."""
        self.computing = None
        frame = self.frames[job.seq]
        frame.stages.update(stages)
        if not self.connected:  # lost while computing
            return self._strand(frame, now_ms, "edge unreachable")
        frame.deadline_ms = frame.captured_ms + self.deadline_ms
        message = Frame(frame.seq, int(frame.captured_ms * 1e6), payload.mode, payload.geometry, payload.codec,
                        payload.data, budget_ms=max(frame.deadline_ms - now_ms, 0.0))
        send = self._send(message, now_ms, frame.seq)
        frame.uplink_bytes = sum(len(f) for f in send.frames)
        frame.state, frame.sent_ms = "in flight", now_ms
        if self.policy is not None:
            device_ms = stages.get("head", 0.0) + stages.get("encode", 0.0)
            self.policy.update_mode(job.mode, device_ms=device_ms, uplink_bytes=frame.uplink_bytes)
            frame.give_up_ms = now_ms + self.policy.give_up_ms(job.mode)
            self.policy.sent(frame.seq, job.mode, now_ms, frame.uplink_bytes)
        self.in_flight[frame.seq] = frame
        return [send]

    def probe_ready(self, mode: str, now_ms: float, payload: Payload) -> list[Action]:
        """Send a copy of a locally answered frame in ``mode``, only to measure the link."""
        if not self.connected:
            return []
        seq, self.next_probe_seq = self.next_probe_seq, self.next_probe_seq + 1
        message = Frame(seq, int(now_ms * 1e6), payload.mode, payload.geometry, payload.codec, payload.data,
                        budget_ms=self.deadline_ms)
        send = self._send(message, now_ms, seq)
        size = sum(len(f) for f in send.frames)
        self.probes_in_flight[seq] = _Probe(mode, now_ms, now_ms + self.deadline_ms)
        self.policy.sent(seq, mode, now_ms, size, waited_on=False)
        self.probes["sent"] += 1
        self.probes["uplink_bytes"] += size
        return [send]

    def _rescue(self, frame: _Frame) -> None:
        frame.state = "rescue"
        self.rescues.append(frame.seq)

    def _strand(self, frame: _Frame, now_ms: float, reason: str) -> list[Action]:
        """An offload that will get no answer: answered locally where the device may, else failed."""
        if self.policy is not None or self.fallback_local:
            self._rescue(frame)
            return []
        return [self._finish(frame, "failed", now_ms, reason=reason)]

    def _result(self, result: Result, now_ms: float, size: int) -> list[Action]:
        edge_ms = sum(result.timing.get(k, 0.0) for k in ("queue", "decode", "tail"))
        self.pause_ms = OVERLOAD_BACKOFF_MS[0]
        probe = self.probes_in_flight.pop(result.seq, None)
        if probe is not None:  # its frame was answered locally: the probe only measured the link
            self.policy.update_mode(probe.mode, edge_ms=edge_ms)
            self.policy.answered(result.seq, now_ms, edge_ms)
            self.probes["answered"] += 1
            return []
        frame = self.in_flight.get(result.seq) or self.frames.get(result.seq)
        if frame is None or frame.state not in ("in flight", "rescue", "rescuing") or now_ms > frame.deadline_ms:
            self.late_results += 1  # its frame was answered otherwise, or its deadline passed (between two ticks)
            return []
        self.in_flight.pop(result.seq, None)
        if frame.state == "rescue":  # given up on, not yet computed: the edge's answer came first
            self.rescues.remove(frame.seq)
        if self.policy is not None:
            self.policy.update_mode(frame.mode, edge_ms=edge_ms)
            self.policy.answered(result.seq, now_ms, edge_ms)
        frame.stages.update(edge_queue=result.timing.get("queue", 0.0), decode=result.timing.get("decode", 0.0),
                            tail=result.timing.get("tail", 0.0), wire=now_ms - frame.sent_ms - edge_ms)
        self.uplink.append(frame.uplink_bytes)
        self.downlink.append(size)
        return [self._finish(frame, "edge", now_ms, from_result(result))]

    def _error(self, error: Error, now_ms: float) -> list[Action]:
        if error.code in ("fingerprint", "version"):
            self.fatal = f"the edge refused this device: {error.text}"
            return []
        actions: list[Action] = []
        if error.code == "no-handshake":  # a restarted edge that never met us: introduce ourselves again
            self.connected = False
            self.reconnects += 1
            actions += self._greet(now_ms)
        could_not_take = error.code in COULD_NOT_TAKE
        if could_not_take:  # back off from offloading, longer while it lasts
            self.overloaded += error.code == "overloaded"
            self.pause_until_ms = now_ms + self.pause_ms
            self.pause_ms = min(2 * self.pause_ms, OVERLOAD_BACKOFF_MS[1])
        if error.seq is None:
            return actions
        if error.seq in self.probes_in_flight:
            del self.probes_in_flight[error.seq]
            self.policy.failed(error.seq)
            return actions
        frame = self.in_flight.pop(error.seq, None)
        if frame is None:
            return actions
        if self.policy is not None:  # the edge could not take it: as if lost; its content refused: no news
            self.policy.lost(error.seq, now_ms) if could_not_take else self.policy.failed(error.seq)
        if could_not_take:
            return actions + self._strand(frame, now_ms, f"edge {error.code}")
        return actions + [self._finish(frame, "failed", now_ms, reason=f"edge error {error.code}")]

    def interrupt(self, now_ms: float) -> list[Action]:
        """The run is stopped: what is not accounted for yet fails."""
        self.slot, self.in_flight, self.rescues = None, {}, deque()
        return [self._finish(f, "failed", now_ms, reason="interrupted") for f in list(self.frames.values())]

    def _finish(self, frame: _Frame, outcome: str, now_ms: float, detections: dict[str, np.ndarray] | None = None,
                reason: str | None = None) -> Outcome:
        del self.frames[frame.seq]
        frame.state = "done"
        self.counts[outcome] += 1
        if reason:
            self.reasons[reason] += 1
        if outcome in ("edge", "local", "filtered"):
            for stage, ms in frame.stages.items():
                self.stage_ms[stage].append(ms)
            self.stage_ms["total"].append(now_ms - frame.captured_ms)
        self.finished_ms = now_ms
        return Outcome(frame.seq, outcome, frame.captured_ms, now_ms, detections, reason, dict(frame.stages),
                       LOCAL if outcome == "local" else frame.mode)

    # --- the summary -------------------------------------------------------------------------------------------

    def summary(self, now_ms: float | None = None, **extra: Any) -> dict:
        end_ms = now_ms if now_ms is not None else self.finished_ms
        duration = max(end_ms - self.started_ms, 1.0) / 1000
        latency = {stage: {q: round(float(np.percentile(v, p)), 3) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))}
                   for stage, v in self.stage_ms.items() if v}
        delivered = self.counts["edge"] + self.counts["local"]
        return {
            "frames": self.captured_frames, "counts": dict(self.counts), "accounted": sum(self.counts.values()),
            "reasons": dict(self.reasons), "latency_ms": latency,
            "bytes_per_frame": round(float(np.mean(self.uplink)), 1) if self.uplink else 0.0,
            "downlink_bytes_per_frame": round(float(np.mean(self.downlink)), 1) if self.downlink else 0.0,
            "fps": round(delivered / duration, 3), "duration_s": round(duration, 3),
            "late_results": self.late_results, "reconnects": self.reconnects, "overloaded": self.overloaded,
            "heartbeats": self.heartbeats, "mode": self.mode,
            "auto_choices": dict(self.choices) if self.policy is not None else None,
            "probes": dict(self.probes) if self.policy is not None else None, "rescued": self.rescued,
            "fingerprint": self.hello.fingerprint, **extra,
        }
