"""A TCP relay that shapes each direction with a link model — transparent to ZeroMQ or any TCP protocol.

    device ──TCP──► relay (listen) ══[uplink model]══► relay ──TCP──► edge (connect)
           ◄──TCP── relay         ◄═[downlink model]══ relay ◄──TCP──

Bytes read from one side at time t are cut into segments of at most one MSS (each costs its payload plus
the link's packet headers: :mod:`splitinf.netsim.packets`), handed to that direction's model at t, and
written to the other side at the delivery time the model gives. All connections share the link (one queue
per direction, as on a real access link). The link clock starts when the relay starts; ``epoch`` is that
moment on the system-wide monotonic clock, so other processes can line their measurements up with it.

Backpressure: each direction holds at most ``max_held_bytes`` read from its senders and not yet written
out; at the bound the relay stops reading, so the sender's socket buffers and TCP window fill as they would
in front of a real bottleneck (``mm-link``'s queue is held in check by the sender's own window), and the
relay's memory stays bounded whatever the sender does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from dataclasses import asdict, dataclass

from splitinf.netsim.channel import Direction
from splitinf.netsim.schedule import PACKET_SIZE

READ_SIZE = 64 * 1024
DEFAULT_MAX_HELD_BYTES = 1 << 20
# The event loop's timers round sleeps up to the next millisecond: wake this much early and send what is
# due within half of it, so deliveries land on time on average instead of ~1 ms late.
EARLY_MS = 1.0


def parse_address(text: str) -> tuple[str, int]:
    """'HOST:PORT' or 'tcp://HOST:PORT' → (host, port); '*' means all interfaces."""
    address = text.removeprefix("tcp://")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"cannot read address {text!r}: expected HOST:PORT or tcp://HOST:PORT")
    return ("0.0.0.0" if host in ("*", "") else host.strip("[]")), int(port)


@dataclass
class RelayCounters:
    connections: int = 0
    connect_failures: int = 0
    open_connections: int = 0
    max_receive_buffer_bytes: int = 0  # the kernel's receive buffer of the senders' sockets (autotuned), at most


class Held:
    """Bytes one direction holds (read from its senders, not yet written out) under a bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self.peak = 0
        self._room = asyncio.Event()

    def room(self) -> int:
        return self.limit - self.bytes

    async def wait_for_room(self, size: int) -> None:
        while self.room() < size:
            self._room.clear()
            await self._room.wait()

    def take(self, size: int) -> None:
        self.bytes += size
        self.peak = max(self.peak, self.bytes)

    def release(self, size: int) -> None:
        self.bytes -= size
        self._room.set()


class Relay:
    def __init__(self, listen: tuple[str, int], connect: tuple[str, int], uplink: Direction,
                 downlink: Direction, max_held_bytes: int = DEFAULT_MAX_HELD_BYTES) -> None:
        if max_held_bytes < READ_SIZE:
            raise ValueError(f"the relay must be allowed to hold at least {READ_SIZE} bytes per direction "
                             f"(one read), got {max_held_bytes}")
        self.listen, self.connect = listen, connect
        self.uplink, self.downlink = uplink, downlink
        self.held = {id(uplink): Held(max_held_bytes), id(downlink): Held(max_held_bytes)}
        self.counters = RelayCounters()
        self.epoch = time.monotonic()
        self.port = listen[1]
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    def now_ms(self) -> float:
        return (time.monotonic() - self.epoch) * 1000.0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, *self.listen)
        self.port = self._server.sockets[0].getsockname()[1]
        self.epoch = time.monotonic()  # the link starts now

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self.counters.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.connect)
        except OSError:
            self.counters.connect_failures += 1
            client_writer.close()
            self._tasks.discard(task)
            return
        self.counters.open_connections += 1
        client_socket = client_writer.get_extra_info("socket")
        pumps = [asyncio.create_task(self._pump(client_reader, upstream_writer, self.uplink)),
                 asyncio.create_task(self._pump(upstream_reader, client_writer, self.downlink))]
        try:
            # When either side is done, the connection is over for both (ZeroMQ never half-closes).
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            if client_socket is not None:
                with contextlib.suppress(OSError):
                    self.counters.max_receive_buffer_bytes = max(
                        self.counters.max_receive_buffer_bytes,
                        client_socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
            for writer in (client_writer, upstream_writer):
                writer.close()
            self.counters.open_connections -= 1
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction) -> None:
        pending: deque[tuple[float, bytes]] = deque()
        arrived = asyncio.Event()
        held = self.held[id(direction)]
        mss = direction.packets.mss
        sender = asyncio.create_task(self._deliver(writer, pending, arrived, held))
        try:
            while True:
                # Hold the sender back while the link queue is full (TCP flow control, not loss) or while the
                # relay holds its bound; read whole segments, so that a backlog crosses the link in full ones.
                now = self.now_ms()
                room = direction.room_at(PACKET_SIZE, now)
                if room > now:
                    await asyncio.sleep((room - now) / 1000.0)
                await held.wait_for_room(mss)
                data = await reader.read(min(READ_SIZE, held.room()) // mss * mss)
                if not data:
                    break
                held.take(len(data))
                now = self.now_ms()
                for offset in range(0, len(data), mss):
                    segment = data[offset : offset + mss]
                    pending.append((direction.send_segment(len(segment), now), segment))
                arrived.set()
            pending.append((float("inf"), b""))  # end of stream: deliver what is in flight, then stop
            arrived.set()
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender
            held.release(sum(len(segment) for _, segment in pending))  # the connection's undelivered bytes

    async def _deliver(self, writer: asyncio.StreamWriter, pending: deque, arrived: asyncio.Event,
                       held: Held) -> None:
        while True:
            if not pending:
                arrived.clear()
                await arrived.wait()
                continue
            due = pending[0][0]
            if due == float("inf"):
                await writer.drain()
                return
            wait = (due - EARLY_MS - self.now_ms()) / 1000.0
            if wait > 0:
                await asyncio.sleep(wait)
            horizon = self.now_ms() + EARLY_MS / 2
            while pending and pending[0][0] <= horizon:
                segment = pending.popleft()[1]
                held.release(len(segment))  # before writing: a write that fails must not keep the bytes held
                writer.write(segment)
            await writer.drain()

    def summary(self) -> dict:
        def direction(d: Direction) -> dict:
            counters = asdict(d.counters)
            link = counters.pop("link")
            held = self.held[id(d)]
            return {"link": d.describe(), **link, **counters, "max_held_bytes": held.limit,
                    "peak_held_bytes": held.peak}

        return {"relay": asdict(self.counters), "uplink": direction(self.uplink),
                "downlink": direction(self.downlink), "uptime_s": round(self.now_ms() / 1000, 3)}
