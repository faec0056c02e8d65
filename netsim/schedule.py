"""Delivery-opportunity schedules: when the link may send the next 1504 bytes.

Times are milliseconds (floats) since the link started. A schedule numbers its opportunities with integer
indices; :meth:`index_after` finds the first opportunity strictly after a time (a packet that arrives in a
millisecond cannot use that millisecond's opportunity) and :meth:`next_index` the one after an index.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence

PACKET_SIZE = 1504  # bytes one delivery opportunity carries (mm-link's maximum TUN payload)


class Schedule:
    def time(self, index: int) -> float:
        raise NotImplementedError

    def index_after(self, t: float) -> int:
        """The first opportunity with time > t."""
        raise NotImplementedError

    def index_at_or_after(self, t: float) -> int:
        """The first opportunity with time >= t."""
        raise NotImplementedError

    def next_index(self, index: int) -> int:
        return index + 1

    def capacity_bytes(self, start: float, end: float) -> int:
        """Bytes the link may carry in the interval (start, end]."""
        first, last = self.index_after(start), self.index_after(end)
        count = 0
        index = first
        while index < last:
            count += 1
            index = self.next_index(index)
        return count * PACKET_SIZE

    def describe(self) -> str:
        raise NotImplementedError


class TraceSchedule(Schedule):
    """Mahimahi trace replay; the trace loops with period = its last timestamp."""

    def __init__(self, times: Sequence[int], name: str = "trace") -> None:
        self.times = list(times)
        self.period = float(self.times[-1])
        self.name = name

    def time(self, index: int) -> float:
        cycle, k = divmod(index, len(self.times))
        return self.times[k] + cycle * self.period

    def _search(self, t: float, strict: bool) -> int:
        find = bisect.bisect_right if strict else bisect.bisect_left
        n = len(self.times)
        cycle = max(int(math.floor(t / self.period)) - 1, 0)
        while True:  # at most three cycles: the op sought is in cycle floor(t/P) - 1, floor(t/P) or the next
            k = find(self.times, t - cycle * self.period)
            if k < n:
                return cycle * n + k
            cycle += 1

    def index_after(self, t: float) -> int:
        return self._search(t, strict=True)

    def index_at_or_after(self, t: float) -> int:
        return self._search(t, strict=False)

    def mean_rate_bps(self) -> float:
        return len(self.times) * PACKET_SIZE * 8 / (self.period / 1000)

    def describe(self) -> str:
        return f"trace {self.name} ({len(self.times)} opportunities / {self.period / 1000:.1f} s, " \
               f"mean {self.mean_rate_bps() / 1e6:.2f} Mbit/s)"


class ConstantRate(Schedule):
    """One opportunity every ``1504·8 / rate`` seconds, the first one interval after the start."""

    def __init__(self, rate_bps: float) -> None:
        if not rate_bps > 0:
            raise ValueError(f"rate must be positive, got {rate_bps} bit/s")
        self.rate_bps = float(rate_bps)
        self.interval = PACKET_SIZE * 8 / self.rate_bps * 1000.0

    def time(self, index: int) -> float:
        return (index + 1) * self.interval

    def index_after(self, t: float) -> int:
        index = max(int(math.floor(t / self.interval)) - 1, 0)
        while self.time(index) <= t:
            index += 1
        return index

    def index_at_or_after(self, t: float) -> int:
        index = max(int(math.floor(t / self.interval)) - 1, 0)
        while self.time(index) < t:
            index += 1
        return index

    def describe(self) -> str:
        return f"constant {self.rate_bps / 1e6:g} Mbit/s"


class WithOutages(Schedule):
    """A schedule with no opportunities inside the given (start_ms, end_ms) windows: the link is down."""

    def __init__(self, base: Schedule, outages: Sequence[tuple[float, float]]) -> None:
        for start, end in outages:
            if not end > start >= 0:
                raise ValueError(f"an outage needs 0 <= start < end, got ({start}, {end}) ms")
        self.base = base
        self.outages = sorted(outages)

    def _skip(self, index: int) -> int:
        moved = True
        while moved:
            moved = False
            t = self.base.time(index)
            for start, end in self.outages:
                if start <= t < end:
                    index = self.base.index_at_or_after(end)
                    moved = True
                    break
        return index

    def time(self, index: int) -> float:
        return self.base.time(index)

    def index_after(self, t: float) -> int:
        return self._skip(self.base.index_after(t))

    def index_at_or_after(self, t: float) -> int:
        return self._skip(self.base.index_at_or_after(t))

    def next_index(self, index: int) -> int:
        return self._skip(self.base.next_index(index))

    def describe(self) -> str:
        windows = ", ".join(f"{s / 1000:g}-{e / 1000:g} s" for s, e in self.outages)
        return f"{self.base.describe()} with outages {windows}"


_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmg]?)(bit|bps|b)?(/s)?\s*$", re.IGNORECASE)


def parse_rate(text: str) -> float:
    """'1mbit', '500kbps', '2.5M', '20' (Mbit/s when bare) → bit/s."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"cannot read rate {text!r}: expected e.g. 1mbit, 500kbit, 2.5M or 20 (Mbit/s)")
    value, prefix = float(match.group(1)), match.group(2).lower()
    scale = {"": 1e6 if not match.group(3) else 1.0, "k": 1e3, "m": 1e6, "g": 1e9}[prefix]
    if value <= 0:
        raise ValueError(f"rate must be positive, got {text!r}")
    return value * scale
