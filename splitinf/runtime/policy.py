"""The bandwidth-adaptive policy of ``--mode auto``: per frame, the mode that keeps the *tail* latency
(capture to output, at the ``quantile``, 0.95) lowest, among the modes it is given (give it only those
accurate enough: the device's ``--auto-modes``).

Why the tail and not the mean: what a camera user is promised is a p95, and the two disagree. A 17 KB JPEG
is expected to arrive sooner than a 2.5 KB split on a good LTE stretch, but it suffers every rate dip the
split rides out; ranking by the mean sent JPEGs into those dips (``splitinf bench adaptive``: 40 ms of p95
lost to the fixed split on TMobile-LTE-short). So each mode's latency from when the device starts on a
frame is forecast as a distribution: the device times measured for the mode + uplink bytes ÷ each uplink
rate measured over the last ``window_ms`` (60 s; none before ``MIN_RATE_SAMPLES``) + edge compute + the
base round trip; ``local`` = its device times. An offload's network share of that tail is raised by
``margin`` (10 %) + ``distrust`` × the share of recent offloads that got no answer in time (lost probes
aside): local's tail is known, an offload's is a forecast from the past minute, and every unanswered frame
ends in the tail (it waits for the give-up, then for local compute).

Why look ahead: a device slower than the camera (a 160 ms model at 10 fps) keeps the next frames waiting
for as long as this one occupies it, and that wait is latency too: computed locally, frames start up to a
whole period after their capture, and that age is most of local's p95. So a frame (captured ``age_ms`` ago)
gets the mode that minimises the *slowest* latency among it and the next ``lookahead`` frames (5), each
of those in its own best mode and as old as the device's work before it leaves it
(``next_age_ms``): a p95 is set by the slowest frames. One frame ahead is not enough: staying local looks
cheap for the next frame but makes frames 0, 60, 20, 80 and 40 ms old over a cycle of five (on saved costs
of TMobile-LTE-short, looking one frame ahead cost 16 ms of p95 against the fixed split; see lab/RESULTS.md).
An offload that costs the device a few milliseconds (a JPEG) or less than a period (a split head) leaves
the next frame fresh; on a fast link auto mixes local frames with offloads of the frames that local compute
would have made old, which no fixed mode can do.

When the in-flight window is full, an offload is still chosen (the device waits for a slot, as a fixed mode
does) if the oldest answer is due by now; otherwise the frame is computed locally. Computing locally
whenever the window was full put a 160 ms frame into the tail of a split run that only had to wait a few ms.

The uplink rate is measured from the timing of replies; besides the window of samples, an exponentially
weighted average (forgetting within about a second) is the current rate. A frame that gets no answer
(deadline passed, or three times its expected latency: ``give_up_ms``) sets the current rate to zero, so an
outage falls back to local inference at once — and the device computes the frame it gave up on locally; it
enters the window as the rate it has at most (its bytes over the time waited). While local wins, a copy of
a frame is offloaded every ``probe_ms`` (backing off to ``max_probe_ms``; the frame's own result still comes
from local inference, so probing an outage costs no latency) so that the policy notices when the link comes
back, and the window keeps filling.

The policy keeps one ledger of the offloads it counts on, keyed by the device's sequence number: the device
tells it what it really sent (:meth:`sent`) and how each one ended (:meth:`answered`, :meth:`lost`,
:meth:`gave_up`, :meth:`failed`). Its choices (:meth:`choose`, :meth:`probe`) change nothing: a frame chosen
for an offload that the prefilter then drops never enters the ledger. The policy is pure (times in ms are
passed in), so the device session (:mod:`splitinf.runtime.session`) runs the very same code in the real
client and in the discrete-event simulator.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from splitinf.modes import base_mode

DEVICE_SAMPLES = 64  # recent device times kept per mode: its tail moves with the board's load
# Uplink rates needed in the window before an offload's tail is forecast from them: the 95th percentile of
# a handful is their maximum, and one fast probe on a link that bursts would make the link look good.
MIN_RATE_SAMPLES = 5


def upper_quantile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q, method="higher")`` by a partial sort: it runs for every mode of every frame."""
    k = int(np.ceil(q * (len(values) - 1)))
    return float(np.partition(values, k)[k])


@dataclass
class ModeEstimate:
    """What a frame costs in a mode: device compute (an average, and recent measurements for its spread),
    uplink bytes and edge compute."""

    name: str
    device_ms: float
    uplink_bytes: float = 0.0
    edge_ms: float = 0.0
    device_samples_ms: deque = field(default_factory=lambda: deque(maxlen=DEVICE_SAMPLES))
    _deciles: tuple[tuple, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.device_samples_ms = deque(self.device_samples_ms, maxlen=DEVICE_SAMPLES)

    @property
    def local(self) -> bool:
        return self.uplink_bytes == 0

    def device_quantiles(self) -> np.ndarray:
        """Deciles of the measured device times (the average alone before any measurement): eleven values
        stand for the spread, so that a forecast costs 11 × the rate samples, not 64 ×. Kept until the
        samples change (every frame asks for them, a measurement comes far less often)."""
        samples = tuple(self.device_samples_ms) or (self.device_ms,)
        if self._deciles is None or self._deciles[0] != samples:
            self._deciles = samples, np.quantile(np.asarray(samples, dtype=float), np.linspace(0, 1, 11))
        return self._deciles[1]

    def device_tail_ms(self, q: float) -> float:
        """The ``q`` quantile of the device times, interpolated between their deciles."""
        deciles = self.device_quantiles()
        return float(np.interp(q * (len(deciles) - 1), np.arange(len(deciles)), deciles))


# --mode auto starts from rough costs (a small board, a 1 Mbit/s link); measurements replace them.
ROUGH_COSTS = {"local": (160.0, 0, 0.0), "jpeg": (5.0, 20_000, 60.0), "split": (60.0, 2_500, 30.0)}


def starting_policy(modes: tuple[str, ...]) -> AdaptivePolicy:
    """A policy for a device that has measured nothing yet, over ``modes`` (names of :data:`ROUGH_COSTS`)."""
    return AdaptivePolicy([ModeEstimate(m, *ROUGH_COSTS[base_mode(m)]) for m in modes])


@dataclass
class Offload:
    """An offload awaiting its answer."""

    name: str
    sent_ms: float
    give_up_ms: float  # after this long without an answer, the link is taken for gone
    due_ms: float  # when its answer is expected
    uplink_bytes: float
    waited_on: bool  # a frame waits on it (a probe: no)


class AdaptivePolicy:
    def __init__(self, modes: list[ModeEstimate], *, initial_rate_bps: float = 1e6, half_life_ms: float = 250.0,
                 probe_ms: float = 1000.0, max_probe_ms: float = 1000.0, base_rtt_ms: float = 40.0,
                 frame_period_ms: float = 0.0, margin: float = 0.1, distrust: float = 1.0,
                 distrust_weight: float = 0.3, quantile: float = 0.95, window_ms: float = 60_000.0,
                 lookahead: int = 5) -> None:
        if not 0 < quantile < 1:
            raise ValueError(f"the policy's quantile must be between 0 and 1, got {quantile}")
        if lookahead < 1:
            raise ValueError(f"the policy's lookahead must be at least 1 frame, got {lookahead}")
        if not any(m.local for m in modes):
            raise ValueError("the adaptive policy needs a local mode to fall back to")
        self.modes = {m.name: m for m in modes}
        self.rate_bps = initial_rate_bps
        self.half_life_ms, self.probe_ms, self.base_rtt_ms = half_life_ms, probe_ms, base_rtt_ms
        self.frame_period_ms = frame_period_ms
        self.margin, self.distrust, self.distrust_weight = margin, distrust, distrust_weight
        self.quantile, self.window_ms, self.lookahead = quantile, window_ms, int(lookahead)
        self.rate_samples: deque[tuple[float, float]] = deque()  # (ms, bit/s) over the last window_ms
        self.unanswered_share = 0.0  # moving average over offload outcomes: 1 given up on, 0 answered in time
        self.max_probe_ms = max(max_probe_ms, probe_ms)
        self.probe_interval_ms = probe_ms  # doubles while probes keep finding local faster (to max_probe_ms)
        self.last_update_ms = 0.0
        self.last_offload_ms = -1e18
        self.outstanding: dict[int, Offload] = {}  # by the device's sequence number, oldest first
        self.given_up: dict[int, Offload] = {}  # offloads the device stopped waiting for: an answer still measures
        self.probes = 0  # copies of locally computed frames offloaded to measure the link

    def expected_ms(self, mode: ModeEstimate) -> float:
        """The mean latency of a frame in this mode, from when the device starts on it."""
        if mode.local:
            return mode.device_ms
        if self.rate_bps <= 0:
            return float("inf")
        return mode.device_ms + mode.uplink_bytes * 8 / self.rate_bps * 1000 + mode.edge_ms + self.base_rtt_ms

    def network_ms(self, mode: ModeEstimate) -> float:
        """The mean time from sending an offload to its answer."""
        return self.expected_ms(mode) - mode.device_ms

    def tail_ms(self, mode: ModeEstimate, now_ms: float) -> float:
        """The ``quantile`` of this mode's latency from when the device starts on a frame (its age aside):
        the measured device times, plus for an offload the bytes at each uplink rate of the window."""
        if mode.local:
            return mode.device_tail_ms(self.quantile)
        self._forget(now_ms)
        if self.rate_bps <= 0 or len(self.rate_samples) < MIN_RATE_SAMPLES:
            return float("inf")
        rates = np.array([rate for _, rate in self.rate_samples] + [self.rate_bps])
        with np.errstate(divide="ignore"):
            transfer_ms = mode.uplink_bytes * 8 / rates * 1000  # a rate of zero: never arrives
        latency_ms = np.add.outer(mode.device_quantiles(), transfer_ms).ravel()
        return upper_quantile(latency_ms, self.quantile) + mode.edge_ms + self.base_rtt_ms

    def next_age_ms(self, mode: ModeEstimate, age_ms: float) -> float:
        """How old the next frame will be when the device is done with this one (``age_ms`` old now) in this
        mode: none if the device is done before the next capture, else the time since the latest capture.
        (No lock: it reads two numbers, and the look-ahead calls it a few dozen times per frame.)"""
        busy_ms = age_ms + mode.device_ms  # from this frame's capture
        if self.frame_period_ms <= 0 or busy_ms <= self.frame_period_ms:
            return 0.0
        return busy_ms % self.frame_period_ms

    def slot_due(self, now_ms: float) -> bool:
        """Whether the oldest offload a frame waits on is due to be answered now (late by less than a frame
        period): then a full in-flight window is worth waiting for. Later than that, the link is suspect and
        waiting would make frames miss their turn."""
        waited = next((o for o in self.outstanding.values() if o.waited_on), None)
        return waited is not None and 0 <= now_ms - waited.due_ms <= max(self.frame_period_ms, 50.0)

    def choose(self, now_ms: float, window_full: bool = False, age_ms: float = 0.0) -> str:
        """The mode for a frame captured ``age_ms`` ago that the device starts now; ``window_full``: no
        offload can be sent now (too many frames in flight): an offload is chosen only if an answer is due
        (the device then waits for its slot). Choosing records nothing: the device says what it sent."""
        can_offload = not window_full or self.slot_due(now_ms)
        margin = self.margin + self.distrust * self.unanswered_share
        forecast = {name: self._forecast_ms(mode, now_ms, margin) for name, mode in self.modes.items()}

        @functools.cache
        def slowest_ahead(name: str, age: float, frames: int) -> float:
            """The slowest latency of this frame (``age`` old, in mode ``name``) and of the next ``frames`` ones,
            each in its best mode, as they wait for the device in turn."""
            this = age + forecast[name]
            if frames == 0:
                return this
            next_age = self.next_age_ms(self.modes[name], age)
            return max(this, min(slowest_ahead(other, next_age, frames - 1) for other in self.modes))

        def rank(mode: ModeEstimate) -> tuple[float, float]:  # the slowest frame ahead; on a tie, this frame
            return slowest_ahead(mode.name, age_ms, self.lookahead), age_ms + forecast[mode.name]

        return min((m for m in self.modes.values() if m.local or can_offload), key=rank).name

    def _forecast_ms(self, mode: ModeEstimate, now_ms: float, margin: float) -> float:
        """The mode's tail, an offload's network share of it raised by ``margin``: local's tail is known, an
        offload's is a forecast from the past window."""
        tail = self.tail_ms(mode, now_ms)
        if mode.local:
            return tail
        return tail + margin * (tail - mode.device_tail_ms(self.quantile))

    def probe(self, now_ms: float) -> str | None:
        """While local wins: the offload mode in which to send a *copy* of the frame just computed locally, so
        that the link's rate is measured again without making that frame wait on it — after ``probe_ms`` of
        local frames, then twice as long after each probe that left local ahead (up to ``max_probe_ms``), since
        every probe loads the link and the edge; after every local frame while the window holds too few rates
        to forecast from (at start, or after a minute without answers). The mode with the least device
        compute is picked (the device re-sends that mode's last payload when it has one, so a probe usually
        costs it no compute at all). Asking records nothing: the device says when it sent the probe."""
        offloads = [m for m in self.modes.values() if not m.local]
        self._forget(now_ms)
        learning = len(self.rate_samples) < MIN_RATE_SAMPLES
        if not offloads or (not learning and now_ms - self.last_offload_ms < self.probe_interval_ms):
            return None
        return min(offloads, key=lambda m: m.device_ms).name

    def give_up_ms(self, name: str) -> float:
        """How long after sending an offload of this mode the device stops waiting for it: it then takes the
        link for gone and computes that frame locally (it still has it)."""
        expected = self.expected_ms(self.modes[name])
        return max(3 * expected, 300.0) if expected != float("inf") else 1000.0

    # --- the ledger: what the device sent, and how each offload ended ---------------------------------------

    def sent(self, key: int, name: str, now_ms: float, uplink_bytes: float, waited_on: bool = True) -> None:
        """The device sent offload ``key`` (its sequence number) in mode ``name``; ``waited_on``: a frame waits
        on it (False: a probe, a copy of a frame answered locally)."""
        mode = self.modes[name]
        self.last_offload_ms = now_ms
        self.outstanding[key] = Offload(name, now_ms, self.give_up_ms(name), now_ms + self.network_ms(mode),
                                        uplink_bytes, waited_on)
        if waited_on:
            self.probe_interval_ms = self.probe_ms  # the link is worth using: probe promptly after the next outage
        else:
            self.probes += 1
            self.probe_interval_ms = min(2 * self.probe_interval_ms, self.max_probe_ms)

    def answered(self, key: int, result_ms: float, edge_ms: float) -> None:
        """Offload ``key``'s result came back: its bytes took what the round trip leaves. An answer to an offload
        given up on still measures the link (slowly), without undoing the give-up."""
        offload = self.outstanding.pop(key, None)
        if offload is not None:
            self._settle(offload, answered=True)
        else:
            offload = self.given_up.pop(key, None)
            if offload is None:
                return
        transfer_ms = max(result_ms - offload.sent_ms - edge_ms - self.base_rtt_ms, 1.0)
        self._blend(offload.uplink_bytes * 8 / (transfer_ms / 1000), result_ms)

    def lost(self, key: int, now_ms: float) -> None:
        """Offload ``key`` got no answer in time (or the edge could not take it): the link is (nearly) gone."""
        offload = self.outstanding.pop(key, None)
        if offload is None:
            return
        self._blend(0.0, now_ms, remember=self._settle(offload, answered=False))
        if self.rate_bps < 1e3:
            self.rate_bps = 0.0

    def gave_up(self, key: int, now_ms: float) -> None:
        """The device stopped waiting for offload ``key`` (far later than expected): the link is probably
        gone; its rate was at most its bytes over the time waited."""
        offload = self.outstanding.pop(key, None)
        if offload is None:
            return
        self.given_up[key] = offload
        for old in [k for k, o in self.given_up.items() if o.sent_ms < now_ms - self.window_ms]:
            del self.given_up[old]  # answers that never came
        self.rate_bps = 0.0
        if self._settle(offload, answered=False):
            self._sample(now_ms, offload.uplink_bytes * 8 / max(now_ms - offload.sent_ms, 1.0) * 1000)

    def failed(self, key: int) -> None:
        """Offload ``key`` was refused by the edge for its content (an ERROR reply): the link carried it, so
        it says nothing about the link."""
        self.outstanding.pop(key, None)

    def _settle(self, offload: Offload, answered: bool) -> bool:
        """An offload was answered or not; returns whether it counts against the link. An answer restores
        trust; only an offload a frame waited on costs it when lost, and only such a loss enters the window of
        rates (a lost probe cost no frame anything — probing a dead link is its job — and an outage's probes
        would otherwise keep the link's tail infinite for a minute after it ended)."""
        waited_on = offload.waited_on
        if answered or waited_on:
            w = self.distrust_weight
            self.unanswered_share = (1 - w) * self.unanswered_share + w * (0.0 if answered else 1.0)
        return not answered and waited_on

    def _sample(self, now_ms: float, rate_bps: float) -> None:
        self.rate_samples.append((now_ms, rate_bps))
        self._forget(now_ms)

    def _forget(self, now_ms: float) -> None:
        while self.rate_samples and self.rate_samples[0][0] < now_ms - self.window_ms:
            self.rate_samples.popleft()

    def _blend(self, sample_bps: float, now_ms: float, remember: bool = True) -> None:
        weight = 0.5 ** (max(now_ms - self.last_update_ms, 0.0) / self.half_life_ms)
        weight = min(max(weight, 0.2), 0.8)  # every sample moves the estimate, none replaces it
        if sample_bps < self.rate_bps:
            weight *= 0.6  # a falling rate costs latency now: follow it faster than a rising one
        self.rate_bps = weight * self.rate_bps + (1 - weight) * sample_bps
        self.last_update_ms = now_ms
        if remember:
            self._sample(now_ms, sample_bps)

    def update_mode(self, name: str, *, device_ms: float | None = None, uplink_bytes: float | None = None,
                    edge_ms: float | None = None, weight: float = 0.2) -> None:
        """Fold a measurement of a mode's own costs into its estimate (device times are also kept as samples)."""
        mode = self.modes[name]
        if device_ms is not None:
            mode.device_samples_ms.append(device_ms)
        for attribute, value in (("device_ms", device_ms), ("uplink_bytes", uplink_bytes), ("edge_ms", edge_ms)):
            if value is not None:
                setattr(mode, attribute, (1 - weight) * getattr(mode, attribute) + weight * value)
