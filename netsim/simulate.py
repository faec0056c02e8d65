"""Discrete-event mode: the same link models, no real time — for sweeps of many operating points.

An *exchange* is one request/response: the device hands ``request_bytes`` to the uplink at ``send_ms``,
the edge computes for ``compute_ms`` after the request's last byte arrives, and hands ``response_bytes``
to the downlink. The edge serves one request at a time, in arrival order (``edge_workers`` to change that).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from splitinf.netsim.channel import Direction


@dataclass(frozen=True)
class Exchange:
    send_ms: float
    request_bytes: int
    compute_ms: float = 0.0
    response_bytes: int = 0


@dataclass(frozen=True)
class ExchangeTimes:
    request_arrival_ms: float | None  # at the edge; None if the request was lost (datagram mode)
    response_arrival_ms: float | None  # back at the device

    def latency_ms(self, send_ms: float) -> float | None:
        return None if self.response_arrival_ms is None else self.response_arrival_ms - send_ms


def deliver(direction: Direction, messages: Sequence[tuple[float, int]]) -> list[float | None]:
    """Delivery time of each (send_ms, size) message over one direction; sends must be in time order."""
    times = []
    last = float("-inf")
    for send, size in messages:
        if send < last:
            raise ValueError(f"messages must be given in send order: {send} ms after {last} ms")
        last = send
        times.append(direction.send_message(size, send))
    return times


def simulate_exchanges(uplink: Direction, downlink: Direction, exchanges: Sequence[Exchange],
                       edge_workers: int = 1) -> list[ExchangeTimes]:
    """Request/response round trips over both directions with a FIFO edge of ``edge_workers`` servers."""
    arrivals = deliver(uplink, [(e.send_ms, e.request_bytes) for e in exchanges])
    order = sorted((t, i) for i, t in enumerate(arrivals) if t is not None)
    free = [0.0] * edge_workers  # when each edge worker is next free
    heapq.heapify(free)
    ready: list[tuple[float, int]] = []
    for arrival, i in order:
        start = max(arrival, heapq.heappop(free))
        done = start + exchanges[i].compute_ms
        heapq.heappush(free, done)
        ready.append((done, i))
    ready.sort()
    responses: dict[int, float | None] = {}
    for done, i in ready:
        size = exchanges[i].response_bytes
        responses[i] = downlink.send_message(size, done) if size > 0 else done
    return [ExchangeTimes(arrivals[i], responses.get(i)) for i in range(len(exchanges))]
