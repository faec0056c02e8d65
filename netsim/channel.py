"""One direction of an emulated link: bottleneck queue, propagation delay, jitter, loss, outages.

Data crosses it as packets: a message is cut into segments of at most one MSS, and each segment takes its
payload plus the IP/TCP and TUN headers of the link (:mod:`splitinf.netsim.packets`), as in ``mm-link``.
Two ways to carry data, both pure functions of arrival times (no clock of their own):

* ``stream`` (a TCP byte stream, what the relay carries): nothing is ever dropped. A full queue holds the
  sender back until there is room; a lost packet is sent again right behind itself (the retransmission uses
  link capacity) and arrives one round trip later (fast retransmit), holding back the bytes behind it.
* ``datagram``: a full queue drops the arriving packet (drop-tail) and a lost packet is gone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from splitinf.netsim.impairments import Jitter, LossModel, NoLoss
from splitinf.netsim.link import LinkCounters, LinkQueue, QueueLimit
from splitinf.netsim.packets import Packetization
from splitinf.netsim.schedule import Schedule

MODES = ("stream", "datagram")


@dataclass
class DirectionCounters:
    link: LinkCounters
    retransmissions: int = 0
    lost: int = 0
    stalls: int = 0  # stream packets that had to wait for room in the queue
    delivered_bytes: int = 0  # payload (application) bytes; the link counters count packets with headers


@dataclass
class Direction:
    schedule: Schedule | None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: LossModel = field(default_factory=NoLoss)
    limit: QueueLimit = field(default_factory=QueueLimit)
    mode: str = "stream"
    seed: int = 0
    recovery_ms: float | None = None  # extra delay of a retransmitted packet (default: one RTT = 2 × delay)
    packets: Packetization = field(default_factory=Packetization)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.delay_ms < 0:
            raise ValueError(f"delay must be >= 0 ms, got {self.delay_ms}")
        self.queue = LinkQueue(self.schedule, self.limit)
        self.jitter = Jitter(self.jitter_ms, random.Random(self.seed))
        self.counters = DirectionCounters(self.queue.counters)
        self._last_delivery = 0.0

    @property
    def recovery(self) -> float:
        return 2 * self.delay_ms if self.recovery_ms is None else self.recovery_ms

    def room_at(self, size: int, now: float) -> float:
        return self.queue.room_at(size, now)

    def send_segment(self, payload: int, now: float) -> float | None:
        """A segment of ``payload`` bytes (at most one MSS) handed to the link at ``now`` (ms) → when it reaches
        the far end. It takes ``payload`` + headers of the link's capacity."""
        size = self.packets.wire_size(payload)
        if self.mode == "stream":
            ready = self.queue.room_at(size, now)
            if ready > now:
                self.counters.stalls += 1
                now = ready
        departure = self.queue.enqueue(size, now)
        if departure is None:
            return None
        extra = 0.0
        while self.loss.lost():
            self.counters.lost += 1
            if self.mode == "datagram":
                return None
            self.counters.retransmissions += 1
            departure = self.queue.enqueue(size, max(now, self.queue.room_at(size, now)))
            extra = self.recovery
        delivery = max(departure + max(self.delay_ms + self.jitter.sample(), 0.0) + extra, self._last_delivery)
        self._last_delivery = delivery
        self.counters.delivered_bytes += payload
        return delivery

    def send_message(self, size: int, now: float) -> float | None:
        """A message cut into segments of at most one MSS, all handed over at ``now`` → when its last byte
        arrives (None if a datagram of it was lost)."""
        arrival: float | None = now
        for payload in self.packets.segments(size):
            delivered = self.send_segment(payload, now)
            if delivered is None:
                arrival = None
            elif arrival is not None:
                arrival = max(arrival, delivered)
        return arrival

    def payload_capacity_bytes(self, start: float, end: float) -> float:
        """Application bytes a saturating sender gets across in (start, end] ms: full segments only."""
        if self.schedule is None:
            return float("inf")
        return self.schedule.capacity_bytes(start, end) * self.packets.payload_share()

    def describe(self) -> str:
        parts = [self.schedule.describe() if self.schedule else "unshaped"]
        if self.delay_ms:
            parts.append(f"delay {self.delay_ms:g} ms")
        if self.jitter_ms:
            parts.append(f"jitter ±{self.jitter_ms:g} ms")
        if not isinstance(self.loss, NoLoss):
            parts.append(self.loss.describe())
        if self.limit.bytes or self.limit.packets:
            limits = [f"{self.limit.bytes} B" if self.limit.bytes else "", f"{self.limit.packets} packets"
                      if self.limit.packets else ""]
            parts.append("drop-tail queue " + " / ".join(x for x in limits if x))
        if self.packets != Packetization():
            parts.append(self.packets.describe())
        return ", ".join(parts)
