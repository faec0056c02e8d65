"""A TCP receiver for the emulator's benchmarks: it timestamps every byte it receives."""

from __future__ import annotations

import socket
import threading
import time


class Sink:
    """Accepts one connection on loopback and records ``(time.monotonic(), bytes)`` for every receive."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.arrivals: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            connection, _ = self.server.accept()
        except OSError:  # closed before anyone connected
            return
        with connection:
            buffer = bytearray(1 << 20)
            while n := connection.recv_into(buffer):
                self.arrivals.append((time.monotonic(), n))

    def received(self) -> int:
        return sum(n for _, n in self.arrivals)

    def close(self) -> None:
        self.server.close()
        self._thread.join(timeout=5)
