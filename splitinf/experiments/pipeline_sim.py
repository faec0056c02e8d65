"""The device runtime's real-time policy, replayed without real time over netsim's link models.

A camera captures frames at ``fps``. The device computes one frame at a time, keeps at most ``window``
frames in flight, always takes the newest frame when it becomes free (older ones are stale) and drops a
frame whose result is not back ``deadline_ms`` after capture. In ``split``/``jpeg`` mode the payload crosses
the uplink (a :class:`~splitinf.netsim.channel.Direction`), the edge serves requests in arrival order, and
the result crosses the downlink; ``local`` mode computes everything on the device.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from splitinf.netsim.channel import Direction


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


@dataclass
class SimResult:
    mode: str
    frames: int
    latencies_ms: list[float] = field(default_factory=list)
    delivered_at_ms: list[float] = field(default_factory=list)
    stale: int = 0  # replaced by a newer frame, or past the deadline
    expired: int = 0  # of which: lost to the network (missed the deadline, or skipped behind unanswered frames)
    rescued: int = 0  # offloads given up on and computed locally instead
    deadline_ms: float = 2000.0
    choices: list[str] = field(default_factory=list)

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


Chooser = Callable[[float, bool, float], ModeCost]  # (start ms, in-flight window full, frame age ms) -> its mode
# observe(cost, capture_ms, sent_ms, result_ms): every offloaded frame's outcome, for adaptive policies
Observer = Callable[[ModeCost, float, float, float], None]
Prober = Callable[[float], "ModeCost | None"]  # after a local frame: the mode of a copy sent to probe the link


def fixed(cost: ModeCost) -> Chooser:
    """Always the same mode (waiting for a free in-flight slot when the window is full)."""
    return lambda _now, _full, _age: cost


def simulate(choose: Chooser, frames: int, fps: float, uplink: Direction, downlink: Direction, *,
             window: int = 2, deadline_ms: float = 2000.0, observe: Observer | None = None,
             probe: Prober | None = None, rescue_after: Callable[[ModeCost], float] | None = None,
             rescue_with: ModeCost | None = None, start_ms: float = 0.0, seed: int = 0, name: str = ""
             ) -> SimResult:
    """Replay ``frames`` captures at ``fps`` through the policy: ``choose`` picks each frame's mode (told
    whether the in-flight window is full; a chooser that still offloads waits for a slot), ``observe`` hears
    about every offload when its result (or its deadline) comes, and ``probe`` may send a copy of a locally
    computed frame once it is done (its result only feeds ``observe``). The first capture happens at
    ``start_ms`` of link time (to replay a trace from where a real run met it). Device times are drawn from a
    cost's measured samples, frame ``i`` always at the same (seeded) quantile whatever its mode, so that runs
    of different modes differ only by their modes (common random numbers). A probe re-sends the last payload
    of its mode (the device keeps it), so only the first probe of a mode never offloaded costs compute.
    With ``rescue_after`` (ms after sending) the device gives up waiting for an offload's result and computes
    that frame with ``rescue_with`` (local) as soon as it is free; the frame gets whichever result is first."""
    period = 1000.0 / fps
    result = SimResult(name, frames, deadline_ms=deadline_ms)
    # What the device learns (a result, or a deadline passing) reaches the policy only when it happens.
    news: list[tuple[float, int, ModeCost, float, float, float]] = []
    device_free, edge_free = 0.0, 0.0
    slots = [0.0] * window  # when each in-flight slot frees up
    next_frame = 0
    quantiles = np.random.default_rng(seed).random(frames)
    encoded: set[str] = set()  # modes with a payload the device could re-send as a probe
    rescues: list[tuple[float, int, float, float]] = []  # (give-up time, frame, capture, network result)

    def record(capture: float, output: float) -> None:
        if output - capture > deadline_ms:
            result.stale += 1
            result.expired += 1
        else:
            result.latencies_ms.append(output - capture)
            result.delivered_at_ms.append(capture)

    sorted_samples: dict[tuple[float, ...], list[float]] = {}  # sorted once per cost, not once per frame

    def device_ms(cost: ModeCost, frame: int) -> float:
        if not cost.device_samples_ms:
            return cost.device_ms
        samples = sorted_samples.get(cost.device_samples_ms)
        if samples is None:
            samples = sorted_samples[cost.device_samples_ms] = sorted(cost.device_samples_ms)
        return samples[int(quantiles[frame] * len(samples))]

    def newest_at(t: float) -> int:
        """The newest frame captured by ``t`` (the next one to come, before its capture)."""
        return min(frames - 1, max(next_frame, int(math.floor((t - start_ms) / period + 1e-9))))

    def offload(cost: ModeCost, sent: float) -> float:
        nonlocal edge_free
        arrival = uplink.send_message(cost.uplink_bytes, sent)
        edge_start = max(arrival, edge_free)
        edge_free = edge_start + cost.edge_ms
        return downlink.send_message(max(cost.downlink_bytes, 1), edge_free)

    while next_frame < frames or rescues:
        # The policy decides when the device is free; only an offload needs a free in-flight slot.
        ready = max(device_free, start_ms + next_frame * period) if next_frame < frames else math.inf
        if rescues and max(device_free, rescues[0][0]) <= ready:  # a frame given up on comes first
            at, frame, capture, output = heapq.heappop(rescues)
            device_free = max(device_free, at) + device_ms(rescue_with, frame)
            result.rescued += 1
            record(capture, min(output, device_free))
            continue
        while news and news[0][0] <= ready:
            _, _, cost, capture_ms, sent_ms, result_ms = heapq.heappop(news)
            observe(cost, capture_ms, sent_ms, result_ms)
        cost = choose(ready, slots[0] > ready, ready - (start_ms + newest_at(ready) * period))
        start = ready if cost.local else max(ready, slots[0])
        network_bound = start > ready  # waiting for unanswered frames, not for the device's own compute
        newest = newest_at(start)
        capture = start_ms + newest * period
        start = max(start, capture)
        skipped = newest - next_frame  # replaced by a newer frame while the pipeline was busy
        result.stale += skipped
        if network_bound:
            result.expired += skipped  # lost to the link: the window was full of unanswered frames
        result.choices.append(cost.name)
        done_compute = start + device_ms(cost, newest)
        if cost.local:
            output = device_free = done_compute
            copy = probe(done_compute) if probe is not None else None
            if copy is not None:
                device_free = done_compute + (0.0 if copy.name in encoded else device_ms(copy, newest))
                encoded.add(copy.name)
                probed = offload(copy, device_free)
                if observe is not None:
                    heapq.heappush(news, (min(probed, capture + deadline_ms), newest, copy, capture, device_free,
                                          probed))
        else:
            encoded.add(cost.name)
            output = offload(cost, done_compute)
            device_free = done_compute
            if observe is not None:
                heapq.heappush(news, (min(output, capture + deadline_ms), newest, cost, capture, done_compute, output))
            give_up = done_compute + rescue_after(cost) if rescue_after is not None else math.inf
            if output > give_up and give_up < capture + deadline_ms:
                heapq.heapreplace(slots, give_up)  # the device stops waiting for it: its slot is free again
                heapq.heappush(rescues, (give_up, newest, capture, output))
                next_frame = newest + 1
                continue
            heapq.heapreplace(slots, min(output, capture + deadline_ms))
        record(capture, output)
        next_frame = newest + 1
    return result
