"""``splitinf bench netsim``: does the real relay deliver what its link model allows, when it allows it?

For each link (constant 1, 5, 20 Mbit/s and three shared Mahimahi traces: a low-rate 3G uplink, an LTE uplink
with an outage in the window, a faster LTE uplink; ``--trace FILE`` adds more), a real
``splitinf netsim relay`` process is started and measured from this process over loopback TCP:

* ``throughput_ratio``: bytes a saturating sender gets through the relay in the window (1 s … 1 s + W) ÷ the
  bytes the model's delivery opportunities allow in the same window of link time;
* ``delay_error_ms``: for small messages on an idle link with ``--delay-ms`` configured, the measured one-way
  time minus the model's (the configured delay plus the wait for the next delivery opportunity), median.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import threading
import time
from dataclasses import dataclass

from splitinf.netsim.channel import Direction
from splitinf.netsim.cli import parse_link
from splitinf.netsim.process import RelayProcess
from splitinf.report import format_table, print_json_line

CONSTANT = ("1mbit", "5mbit", "20mbit")
TRACES = ("TMobile-UMTS-driving.up", "ATT-LTE-driving-2016.up", "Verizon-LTE-short.up")


class Sink:
    """A TCP server that timestamps every byte it receives (monotonic clock)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.arrivals: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            while data := connection.recv(1 << 16):
                self.arrivals.append((time.monotonic(), len(data)))

    def close(self) -> None:
        self.server.close()
        self._thread.join(timeout=5)


@dataclass
class LinkResult:
    link: str
    throughput_ratio: float
    delivered_bytes: int
    model_bytes: int
    delay_error_ms: float
    delay_error_max_ms: float


def measure_throughput(link: str, window_s: float) -> tuple[float, int, int]:
    sink = Sink()
    # A bounded queue keeps the link saturated without the relay buffering everything loopback can push.
    with RelayProcess(f"127.0.0.1:{sink.port}", ["--uplink", link, "--queue", "bytes=300000"]) as relay:
        sender = socket.create_connection(("127.0.0.1", relay.port))
        sender.settimeout(0.2)
        chunk = b"\0" * 65536
        start = time.monotonic()
        end = start + 1.0 + window_s
        while time.monotonic() < end:
            with contextlib.suppress(TimeoutError):
                sender.send(chunk)
        time.sleep(0.2)
        sender.close()
        first, last = relay.link_ms(start) + 1000.0, relay.link_ms(end)
        delivered = sum(n for t, n in sink.arrivals if first < relay.link_ms(t) <= last)
    sink.close()
    allowed = parse_link(link).capacity_bytes(first, last)
    return (delivered / allowed if allowed else float("nan")), delivered, allowed


def measure_delay(link: str, delay_ms: float, messages: int, size: int = 100) -> list[float]:
    sink = Sink()
    with RelayProcess(f"127.0.0.1:{sink.port}", ["--uplink", link, "--delay-ms", str(delay_ms)]) as relay:
        sender = socket.create_connection(("127.0.0.1", relay.port))
        sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.2)  # the relay connects to the edge when the device connects: let that finish first
        sent = []
        for _ in range(messages):
            sent.append(time.monotonic())
            sender.sendall(b"m" * size)
            time.sleep(0.15)
        time.sleep(max(1.0, 3 * delay_ms / 1000))
        sender.close()
        model = Direction(parse_link(link), delay_ms=delay_ms)
        predicted = [model.send_message(size, relay.link_ms(t)) - relay.link_ms(t) for t in sent]
    sink.close()
    received, arrivals = 0, []
    for t, n in sink.arrivals:  # the time each message's last byte arrived
        received += n
        while len(arrivals) < received // size:
            arrivals.append(t)
    return [(a - s) * 1000.0 - p for a, s, p in zip(arrivals, sent, predicted)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", action="append", default=[], help="also measure this Mahimahi trace (repeatable)")
    parser.add_argument("--window-s", type=float, default=8.0, help="throughput window in seconds (default 8)")
    parser.add_argument("--delay-ms", type=float, default=40.0, help="configured one-way delay (default 40)")
    parser.add_argument("--messages", type=int, default=15, help="small messages for the delay check")
    parser.add_argument("--quick", action="store_true", help="only 1 Mbit/s and one trace, short windows")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def main(args: argparse.Namespace) -> int:
    links = [CONSTANT[0], TRACES[1]] if args.quick else [*CONSTANT, *TRACES]
    links += args.trace
    window = 3.0 if args.quick else args.window_s
    results = []
    for link in links:
        parse_link(link)  # refuse a bad trace before starting processes
        ratio, delivered, allowed = measure_throughput(link, window)
        errors = measure_delay(link, args.delay_ms, 6 if args.quick else args.messages)
        results.append(LinkResult(link, ratio, delivered, allowed, statistics.median(errors),
                                  max(errors, key=abs)))
        print(f"{link}: throughput ratio {ratio:.4f}, delay error {statistics.median(errors):+.2f} ms", flush=True)
    print(format_table(["link", "throughput_ratio", "delivered KB", "model KB", "delay_error_ms", "max |err| ms"],
                       [(r.link, round(r.throughput_ratio, 4), r.delivered_bytes // 1024, r.model_bytes // 1024,
                         round(r.delay_error_ms, 2), round(r.delay_error_max_ms, 2)) for r in results]))
    ok = all(0.97 <= r.throughput_ratio <= 1.03 and abs(r.delay_error_ms) <= 2 for r in results)
    if args.json:
        print_json_line({"links": {r.link: {"throughput_ratio": round(r.throughput_ratio, 4),
                                            "delay_error_ms": round(r.delay_error_ms, 3),
                                            "delay_error_max_ms": round(r.delay_error_max_ms, 3),
                                            "delivered_bytes": r.delivered_bytes, "model_bytes": r.model_bytes}
                                   for r in results},
                         "window_s": window, "configured_delay_ms": args.delay_ms, "within_targets": ok})
    return 0
