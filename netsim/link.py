"""The bottleneck queue of one link direction, with mm-link's exact semantics.

Every delivery opportunity carries up to 1504 bytes. A packet that arrives at time t can use only
opportunities after t; it may span several opportunities, and several small packets may share one; the
bytes of an opportunity nobody is queued for are lost. Packets leave in FIFO order, so each packet's
departure is known when it is enqueued: the queue keeps a cursor (the first opportunity not yet used up)
instead of replaying time. A packet is "in the queue" until its first byte leaves (mm-link dequeues it
then); drop-tail limits in bytes and packets apply to that occupancy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from splitinf.netsim.schedule import PACKET_SIZE, Schedule


@dataclass(frozen=True)
class QueueLimit:
    bytes: int | None = None
    packets: int | None = None

    def admits(self, queued_bytes: int, queued_packets: int, size: int) -> bool:
        return (self.bytes is None or queued_bytes + size <= self.bytes) and (
            self.packets is None or queued_packets + 1 <= self.packets
        )

    @classmethod
    def parse(cls, text: str | None) -> QueueLimit:
        """'bytes=150000', 'packets=100', 'bytes=1e6,packets=500' or None (unlimited, like mm-link)."""
        if not text:
            return cls()
        values: dict[str, int] = {}
        for part in text.split(","):
            key, _, value = part.partition("=")
            key = key.strip()
            if key not in ("bytes", "packets") or not value:
                raise ValueError(f"cannot read queue limit {text!r}: expected bytes=N and/or packets=M")
            values[key] = int(float(value))
            if values[key] <= 0:
                raise ValueError(f"queue limit {key} must be positive, got {value}")
        return cls(**values)


@dataclass
class LinkCounters:
    packets: int = 0
    bytes: int = 0
    drops: int = 0
    dropped_bytes: int = 0
    max_queue_bytes: int = 0
    max_queue_packets: int = 0


class LinkQueue:
    """FIFO drop-tail queue in front of a delivery schedule (``None``: an unshaped link)."""

    def __init__(self, schedule: Schedule | None, limit: QueueLimit | None = None) -> None:
        self.schedule = schedule
        self.limit = limit or QueueLimit()
        self.cursor = 0  # index of the first opportunity with bytes left
        self.cursor_used = 0  # bytes of that opportunity already taken
        self.waiting: deque[tuple[float, int]] = deque()  # (start time, size) of packets not yet started
        self.waiting_bytes = 0
        self.counters = LinkCounters()

    def _expire(self, now: float) -> None:
        while self.waiting and self.waiting[0][0] <= now:
            self.waiting_bytes -= self.waiting.popleft()[1]

    def occupancy(self, now: float) -> tuple[int, int]:
        """(bytes, packets) queued at ``now`` and not yet started."""
        self._expire(now)
        return self.waiting_bytes, len(self.waiting)

    def room_at(self, size: int, now: float) -> float:
        """The earliest time ≥ now at which a packet of ``size`` bytes fits under the limit."""
        self._expire(now)
        queued_bytes, queued_packets = self.waiting_bytes, len(self.waiting)
        if self.limit.admits(queued_bytes, queued_packets, size):
            return now
        for start, packet in self.waiting:
            queued_bytes -= packet
            queued_packets -= 1
            if self.limit.admits(queued_bytes, queued_packets, size):
                return start
        return now  # cannot happen for size <= the byte limit; an empty queue admits any packet it can

    def enqueue(self, size: int, now: float) -> float | None:
        """Accept a packet arriving at ``now``: its departure time (last byte out), or None if dropped."""
        if not 0 < size <= PACKET_SIZE:
            raise ValueError(f"packet size must be 1..{PACKET_SIZE} bytes, got {size}")
        self._expire(now)
        if not self.limit.admits(self.waiting_bytes, len(self.waiting), size):
            self.counters.drops += 1
            self.counters.dropped_bytes += size
            return None
        self.counters.packets += 1
        self.counters.bytes += size
        if self.schedule is None:
            return now
        schedule = self.schedule
        index, used = self.cursor, self.cursor_used
        if schedule.time(index) <= now:  # opportunities up to now went by unused (or were used up)
            index, used = schedule.index_after(now), 0
        start = schedule.time(index)
        remaining = size
        while True:
            take = min(PACKET_SIZE - used, remaining)
            remaining -= take
            used += take
            if remaining == 0:
                break
            index, used = schedule.next_index(index), 0
        departure = schedule.time(index)
        if used == PACKET_SIZE:
            index, used = schedule.next_index(index), 0
        self.cursor, self.cursor_used = index, used
        if start > now:
            self.waiting.append((start, size))
            self.waiting_bytes += size
        self.counters.max_queue_bytes = max(self.counters.max_queue_bytes, self.waiting_bytes)
        self.counters.max_queue_packets = max(self.counters.max_queue_packets, len(self.waiting))
        return departure
