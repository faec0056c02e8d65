"""The device, replayed without real time over netsim's link models: the very device session the real client
runs (:class:`~splitinf.runtime.session.DeviceSession`), driven by a discrete-event loop.

A camera captures frames at ``fps``. The session decides what the device computes and when (newest frame
wins, the in-flight window, deadlines, give-ups and rescues, probes, ``--mode auto``'s policy); each
computation takes the device time of its mode, drawn from the measured ones. Every message the session
sends crosses the uplink (a :class:`~splitinf.netsim.channel.Direction`): a FRAME waits for the edge, which
serves one at a time in arrival order for the mode's edge time, and its RESULT crosses the downlink;
greetings and heartbeats are answered at once. The handshake is done before the first capture, as the real
client waits for it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from splitinf.modes import JPEG, SPLIT
from splitinf.netsim.channel import Direction
from splitinf.protocol import Error, Frame, Heartbeat, Hello, Payload, Result, Welcome, decode, encode
from splitinf.runtime.policy import AdaptivePolicy
from splitinf.runtime.session import REPLACED, DeviceSession, Job, Outcome, Send

AUTO = "auto"


@dataclass(frozen=True)
class ModeCost:
    """What one frame costs in a mode: device milliseconds, bytes each way, edge milliseconds. With
    ``device_samples_ms`` (measured times), each simulated frame draws its device time from them."""

    name: str
    device_ms: float
    uplink_bytes: int = 0
    edge_ms: float = 0.0
    downlink_bytes: int = 0
    device_samples_ms: tuple[float, ...] = ()

    @property
    def local(self) -> bool:
        return self.uplink_bytes == 0

    @property
    def wire_mode(self) -> str:
        return JPEG if self.name == JPEG else SPLIT  # "split" or "split:CHECKPOINT"


@dataclass
class SimResult:
    mode: str
    frames: int
    latencies_ms: list[float] = field(default_factory=list)
    delivered_at_ms: list[float] = field(default_factory=list)
    stale: int = 0  # replaced by a newer frame, or past the deadline
    expired: int = 0  # of which: lost to the network (late, or skipped while the device waited on the link)
    rescued: int = 0  # offloads given up on and computed locally instead
    deadline_ms: float = 2000.0
    choices: list[str] = field(default_factory=list)
    probes: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Latency percentile over the delivered frames plus those lost to the network, which count as the
        deadline: a frame whose result missed it, or one skipped while the in-flight window was full of
        unanswered frames. Frames skipped because the device's own compute was busy do not count."""
        values = self.latencies_ms + [self.deadline_ms] * self.expired
        return float(np.percentile(values, q)) if values else math.inf

    def fps(self, duration_ms: float) -> float:
        return len(self.latencies_ms) / (duration_ms / 1000)

    def kb_per_frame(self, costs: dict[str, ModeCost]) -> float:
        sent = [costs[c].uplink_bytes for c in self.choices]
        return float(np.mean(sent)) / 1024 if sent else 0.0

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.outcome in ("edge", "local") and outcome.latency_ms <= self.deadline_ms:
            self.latencies_ms.append(outcome.latency_ms)
            self.delivered_at_ms.append(outcome.captured_ms)
            return
        self.stale += 1
        if outcome.reason != REPLACED:  # lost to the link, not to the device's own compute
            self.expired += 1


class _Run:
    """One simulated run: the event loop around a session."""

    def __init__(self, session: DeviceSession, costs: dict[str, ModeCost], uplink: Direction, downlink: Direction,
                 result: SimResult, quantiles: np.ndarray, edge: Callable[[int], str]) -> None:
        self.session, self.costs, self.uplink, self.downlink, self.result = session, costs, uplink, downlink, result
        self.edge = edge
        self.quantiles = quantiles
        self.events: list[tuple[float, int, str, object]] = []
        self.order = itertools.count()
        self.edge_free = -math.inf
        self.device_free = -math.inf  # when the device's compute is free
        self.tick_at = math.inf
        self.started = 0.0  # when the device started its current job
        self.sent_cost: dict[int, ModeCost] = {}  # FRAME sequence number → its mode's cost
        self.encoded: set[str] = set()  # modes with a payload the device could re-send as a probe
        self.samples = {name: sorted(c.device_samples_ms) for name, c in costs.items()}
        header = encode(Frame(10**6, 10**15, SPLIT, ((1, 1), (1, 1), (1, 1)), "x" * 24, b"", 1000.0))
        self.header_bytes = sum(len(f) for f in header)

    def push(self, at: float, kind: str, data: object = None) -> None:
        heapq.heappush(self.events, (at, next(self.order), kind, data))

    def device_ms(self, cost: ModeCost, frame: int) -> float:
        samples = self.samples[cost.name]
        return samples[int(self.quantiles[frame] * len(samples))] if samples else cost.device_ms

    def payload(self, cost: ModeCost) -> Payload:
        return Payload(cost.wire_mode, ((1, 1), (1, 1), (1, 1)), cost.name,
                       b"\0" * max(cost.uplink_bytes - self.header_bytes, 1))

    def act(self, actions: list, now: float) -> None:
        for action in actions:
            if isinstance(action, Outcome):
                self.result.add(action)
            elif isinstance(action, Send):
                self.transmit(action, now)  # a Reconnect needs nothing here: the link is the same

    def transmit(self, send: Send, now: float) -> None:
        """A message crosses the uplink; the edge answers it, and its answer crosses the downlink."""
        arrival = self.uplink.send_message(sum(len(f) for f in send.frames), now)
        if arrival is None:  # a datagram of it was lost
            return
        if send.seq is None:  # a greeting or a heartbeat: answered at once
            message = decode(send.frames)
            reply = Welcome("sim", message.fingerprint, 1) if isinstance(message, Hello) else Heartbeat()
            self.reply(encode(reply), arrival, 0)
            return
        cost = self.sent_cost.pop(send.seq)
        answer = self.edge(send.seq)
        if answer != "result":
            if answer != "silence":
                self.reply(encode(Error(answer, "scripted", send.seq)), arrival, 0)
            return
        start = max(arrival, self.edge_free)
        self.edge_free = start + cost.edge_ms
        timing = {"queue": start - arrival, "decode": 0.0, "tail": cost.edge_ms}
        self.reply(encode(Result(send.seq, 0, b"", b"", b"", timing, 1)), self.edge_free, cost.downlink_bytes)

    def reply(self, frames: list[bytes], at: float, size: int) -> None:
        arrival = self.downlink.send_message(max(size, sum(len(f) for f in frames)), at)
        if arrival is not None:
            self.push(arrival, "message", frames)

    def computed(self, job: Job, now: float) -> None:
        session = self.session
        cost = self.costs[job.mode]
        if cost.local:
            self.act(session.computed_local(job, now, None, {"local": now - self.started}), now)
            if job.probe is not None:
                probe = self.costs[job.probe]
                extra = 0.0 if probe.name in self.encoded else self.device_ms(probe, job.seq)
                self.encoded.add(probe.name)
                self.device_free = now + extra
                self.push(now + extra, "probe", probe)
            return
        self.encoded.add(cost.name)
        self.sent_cost[job.seq] = cost
        actions = session.offloaded(job, now, self.payload(cost), {"head": now - self.started})
        if not any(isinstance(a, Send) for a in actions):
            self.sent_cost.pop(job.seq)
        self.act(actions, now)

    def run(self, frames: int, period: float, start_ms: float) -> None:
        session = self.session
        for i in range(frames):
            self.push(start_ms + i * period, "capture", i)
        while self.events:
            now, _, kind, data = heapq.heappop(self.events)
            if kind == "capture":
                self.act(session.captured(data, now), now)
                if data == frames - 1:
                    session.source_finished()
            elif kind == "computed":
                self.computed(data, now)
            elif kind == "probe":
                self.sent_cost[session.next_probe_seq] = data
                actions = session.probe_ready(data.name, now, self.payload(data))
                if not actions:
                    self.sent_cost.pop(session.next_probe_seq)
                self.act(actions, now)
            elif kind == "message":
                self.act(session.received(data, now), now)
            elif kind == "tick":
                self.tick_at = math.inf
                self.act(session.tick(now), now)
            if now >= self.device_free:  # the device is free: what now?
                job, actions = session.next_job(now)
                self.act(actions, now)
                if job is not None:
                    cost = self.costs[job.mode]
                    if not job.rescue:
                        self.result.choices.append(job.mode)
                    self.started = now
                    self.device_free = now + self.device_ms(cost, job.seq)
                    self.push(self.device_free, "computed", job)
            if session.done():
                return
            at = session.next_timer_ms()
            if at < self.tick_at:
                self.tick_at = at
                self.push(at, "tick")


def simulate(costs: dict[str, ModeCost], mode: str, frames: int, fps: float, uplink: Direction,
             downlink: Direction, *, window: int = 2, deadline_ms: float = 2000.0,
             policy: AdaptivePolicy | None = None, fallback_local: bool = False, start_ms: float = 0.0,
             seed: int = 0, name: str = "", edge: Callable[[int], str] = lambda seq: "result") -> SimResult:
    """Replay ``frames`` captures at ``fps`` in ``mode`` (the name of one of ``costs``, or ``auto`` with a
    ``policy`` over them). The first capture happens at ``start_ms`` of link time (to replay a trace from where
    a real run met it). Device times are drawn from a cost's measured samples, frame ``i`` always at the same
    (seeded) quantile whatever its mode, so that runs of different modes differ only by their modes (common
    random numbers). ``edge`` says how the edge answers each FRAME (by sequence number): ``result`` (after
    its edge time), ``silence`` (never), or the code of an ERROR it replies at once."""
    if mode != AUTO and mode not in costs:
        raise ValueError(f"mode {mode!r} has no cost (known: {', '.join(costs)})")
    session = DeviceSession(mode=mode, fingerprint="simulated", config={}, window=window, deadline_ms=deadline_ms,
                            fallback_local=fallback_local, policy=policy)
    result = SimResult(name or mode, frames, deadline_ms=deadline_ms)
    run = _Run(session, costs, uplink, downlink, result, np.random.default_rng(seed).random(frames), edge)
    session.start(start_ms - 1.0)
    session.received(encode(Welcome("sim", "simulated", 1)), start_ms - 1.0)
    run.run(frames, 1000.0 / fps, start_ms)
    result.rescued, result.probes = session.rescued, session.probes["sent"]
    return result
