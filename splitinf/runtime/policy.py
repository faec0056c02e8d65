"""The bandwidth-adaptive policy of ``--mode auto``: per frame, the mode with the lowest expected
capture-to-output latency, among the modes it is given (give it only those accurate enough: the device's
``--auto-modes``).

Expected latency of an offload = the frame's age when the device gets to it + device compute + uplink bytes
÷ estimated uplink rate + edge compute + the base round trip; of ``local`` = age + the device's compute for
the whole model. The age term matters: a mode that keeps the device busy longer than the camera's frame
period makes every frame wait. An offload is chosen only when it is expected to be faster than local by
``margin`` (20 %): it carries the link's variance (a dip, an outage onset), local does not — plus
``distrust`` × the share of recent offloads that got no answer in time (lost probes aside). Every such
frame ends in the latency tail (it waits for the give-up, then for local compute), so on a link that keeps
dipping between good moments (AT&T LTE 2016) only offloads expected to be much faster are worth that risk,
while a steady fast link keeps the plain margin.

The uplink rate is estimated from the timing of replies (an exponentially weighted average that forgets
within about a second); a frame that gets no answer (deadline passed, or three times its expected latency:
``give_up_ms``) counts as a rate of zero, so an outage falls back to local inference at once — and the device
computes the frame it gave up on locally. While local wins, a copy of a frame is offloaded now and then (the
frame's own result still comes from local inference, so probing an outage costs no latency) so that the
policy notices when the link comes back. The policy is pure (times in ms are passed in), so the device
runtime and the discrete-event simulator run the very same code. Its public methods hold a lock: the
device calls them from its compute thread (choose, probe, local costs) and its I/O thread (answers, losses).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

Method = TypeVar("Method", bound=Callable)


def locked(method: Method) -> Method:
    """Run ``method`` holding the policy's lock (re-entrant: public methods call each other)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass
class ModeEstimate:
    name: str
    device_ms: float
    uplink_bytes: float = 0.0
    edge_ms: float = 0.0

    @property
    def local(self) -> bool:
        return self.uplink_bytes == 0


class AdaptivePolicy:
    def __init__(self, modes: list[ModeEstimate], *, initial_rate_bps: float = 1e6, half_life_ms: float = 250.0,
                 probe_ms: float = 1000.0, max_probe_ms: float = 8000.0, base_rtt_ms: float = 40.0,
                 frame_period_ms: float = 0.0, margin: float = 0.2, distrust: float = 1.0,
                 distrust_weight: float = 0.3) -> None:
        if not any(m.local for m in modes):
            raise ValueError("the adaptive policy needs a local mode to fall back to")
        self._lock = threading.RLock()
        self.modes = {m.name: m for m in modes}
        self.rate_bps = initial_rate_bps
        self.half_life_ms, self.probe_ms, self.base_rtt_ms = half_life_ms, probe_ms, base_rtt_ms
        self.frame_period_ms = frame_period_ms
        self.margin, self.distrust, self.distrust_weight = margin, distrust, distrust_weight
        self.unanswered_share = 0.0  # moving average over offload outcomes: 1 given up on, 0 answered in time
        self.max_probe_ms = max(max_probe_ms, probe_ms)
        self.probe_interval_ms = probe_ms  # doubles while probes keep finding local faster
        self.last_update_ms = 0.0
        self.last_offload_ms = -1e18
        # (sent ms, give-up delay ms, whether a frame waits on it, i.e. not a probe) of unanswered offloads
        self.outstanding: list[tuple[float, float, bool]] = []
        self.choices: dict[str, int] = {name: 0 for name in self.modes}
        self.probes = 0  # copies of locally computed frames offloaded to measure the link

    @locked
    def age_ms(self, mode: ModeEstimate) -> float:
        """How old a frame is, on average, when the device gets to it in this mode: a device that computes
        longer than the camera's frame period is always busy, and takes the newest frame half a period after
        its capture on average; a faster one is idle when each frame arrives."""
        return self.frame_period_ms / 2 if mode.device_ms > self.frame_period_ms else 0.0

    @locked
    def expected_ms(self, mode: ModeEstimate) -> float:
        if mode.local:
            return mode.device_ms + self.age_ms(mode)
        if self.rate_bps <= 0:
            return float("inf")
        return (mode.device_ms + self.age_ms(mode) + mode.uplink_bytes * 8 / self.rate_bps * 1000 + mode.edge_ms
                + self.base_rtt_ms)

    @locked
    def choose(self, now_ms: float, window_full: bool = False) -> str:
        """The mode for a frame starting now; ``window_full``: no offload can be sent now (too many frames
        in flight), so only local is possible — and no offload is promised that will never be sent."""
        if self.outstanding:  # an answer far later than expected: the link is probably gone
            sent, give_up, _ = self.outstanding[0]
            if now_ms - sent > give_up and self.rate_bps > 0:
                self.rate_bps = 0.0
                self._settle(answered=False)
        candidates = [m for m in self.modes.values() if m.local or not window_full]
        margin = self.margin + self.distrust * self.unanswered_share
        best = min(candidates, key=lambda m: self.expected_ms(m) * (1.0 if m.local else 1.0 + margin))
        if not best.local:
            self._sent(now_ms, best, waited_on=True)
            self.probe_interval_ms = self.probe_ms  # the link is worth using: probe promptly after the next outage
        self.choices[best.name] += 1
        return best.name

    @locked
    def probe(self, now_ms: float) -> str | None:
        """While local wins: the offload mode in which to send a *copy* of the frame just computed locally, so
        that the link's rate is measured again without making that frame wait on it — after ``probe_ms`` of
        local frames, then twice as long after each probe that left local ahead (up to ``max_probe_ms``), since
        every probe loads the link and the edge. The mode with the least device compute is picked (the device
        re-sends that mode's last payload when it has one, so a probe usually costs it no compute at all)."""
        offloads = [m for m in self.modes.values() if not m.local]
        if not offloads or now_ms - self.last_offload_ms < self.probe_interval_ms:
            return None
        mode = min(offloads, key=lambda m: m.device_ms)
        self._sent(now_ms, mode, waited_on=False)
        self.probes += 1
        self.probe_interval_ms = min(2 * self.probe_interval_ms, self.max_probe_ms)
        return mode.name

    @locked
    def give_up_ms(self, name: str) -> float:
        """How long after sending an offload of this mode the device stops waiting for it: it then takes the
        link for gone and computes that frame locally (it still has it)."""
        expected = self.expected_ms(self.modes[name]) - self.age_ms(self.modes[name])
        return max(3 * expected, 300.0) if expected != float("inf") else 1000.0

    def _sent(self, now_ms: float, mode: ModeEstimate, waited_on: bool) -> None:
        self.last_offload_ms = now_ms
        self.outstanding.append((now_ms, self.give_up_ms(mode.name), waited_on))

    def _settle(self, answered: bool) -> None:
        """The oldest offload was answered or given up on. An answer restores trust; only an offload a frame
        waited on costs it when lost (a lost probe cost no frame anything, and probing a dead link is its job)."""
        if not self.outstanding:
            return
        _, _, waited_on = self.outstanding.pop(0)
        if answered or waited_on:
            w = self.distrust_weight
            self.unanswered_share = (1 - w) * self.unanswered_share + w * (0.0 if answered else 1.0)

    def _blend(self, sample_bps: float, now_ms: float) -> None:
        weight = 0.5 ** (max(now_ms - self.last_update_ms, 0.0) / self.half_life_ms)
        weight = min(max(weight, 0.2), 0.8)  # every sample moves the estimate, none replaces it
        if sample_bps < self.rate_bps:
            weight *= 0.6  # a falling rate costs latency now: follow it faster than a rising one
        self.rate_bps = weight * self.rate_bps + (1 - weight) * sample_bps
        self.last_update_ms = now_ms

    @locked
    def observe(self, name: str, sent_ms: float, result_ms: float, edge_ms: float) -> None:
        """An offloaded frame's result came back: its uplink bytes took what the round trip leaves."""
        mode = self.modes[name]
        self._settle(answered=True)
        transfer_ms = max(result_ms - sent_ms - edge_ms - self.base_rtt_ms, 1.0)
        self._blend(mode.uplink_bytes * 8 / (transfer_ms / 1000), result_ms)

    @locked
    def observe_loss(self, now_ms: float) -> None:
        """An offloaded frame got no answer in time: the link is (nearly) gone."""
        self._settle(answered=False)
        self._blend(0.0, now_ms)
        if self.rate_bps < 1e3:
            self.rate_bps = 0.0

    @locked
    def update_mode(self, name: str, *, device_ms: float | None = None, uplink_bytes: float | None = None,
                    edge_ms: float | None = None, weight: float = 0.2) -> None:
        """Fold a measurement of a mode's own costs into its estimate."""
        mode = self.modes[name]
        for attribute, value in (("device_ms", device_ms), ("uplink_bytes", uplink_bytes), ("edge_ms", edge_ms)):
            if value is not None:
                setattr(mode, attribute, (1 - weight) * getattr(mode, attribute) + weight * value)
