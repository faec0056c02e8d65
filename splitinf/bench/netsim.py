"""``splitinf bench netsim``: does the real relay deliver what its link model allows, when it allows it?

For each link (constant 1, 5, 20 Mbit/s and three shared Mahimahi traces: a low-rate 3G uplink, an LTE uplink
with an outage in the window, a faster LTE uplink; ``--trace FILE`` adds more), a real
``splitinf netsim relay`` process is started and measured from this process over loopback TCP:

* ``throughput_ratio``: bytes a saturating sender gets through the relay in the window (1 s … 1 s + W) ÷ the
  bytes the model's delivery opportunities allow in the same window of link time;
* ``delay_error_ms``: for small messages on an idle link with ``--delay-ms`` configured, the measured one-way
  time minus the model's (the configured delay plus the wait for the next delivery opportunity), median;
* ``backpressure``: a sender offering 5 MB/s for 20 s into a 1 Mbit/s link is held back by TCP (what the
  relay's socket accepted ≤ what it delivered + its bound + the kernel's socket buffers), and the relay's
  memory grows by at most 16 MB.

The model is the packet-level one: a saturated link carries one 1448-byte segment per 1504-byte opportunity.

``--mahimahi DIR`` instead replays recorded runs of the real ``mm-link`` (a run's folder, or a folder of
runs such as shared/data/mahimahi-reference) and compares the application bytes delivered per second, once
with the relay as it is and once with the stream-level relay it replaced (1504 payload bytes per
opportunity): see :mod:`splitinf.bench.mahimahi`.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from splitinf.bench import mahimahi
from splitinf.bench.sink import Sink
from splitinf.netsim.channel import Direction
from splitinf.netsim.cli import parse_link
from splitinf.netsim.process import RelayProcess
from splitinf.netsim.relay import DEFAULT_MAX_HELD_BYTES
from splitinf.report import format_table, print_json_line
from splitinf.runtime.processes import memory_kb

CONSTANT = ("1mbit", "5mbit", "20mbit")
TRACES = ("TMobile-UMTS-driving.up", "ATT-LTE-driving-2016.up", "Verizon-LTE-short.up")


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
    allowed = round(Direction(parse_link(link)).payload_capacity_bytes(first, last))
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


def measure_backpressure(link: str = "1mbit", offered_bytes_per_s: float = 5e6, seconds: float = 20.0,
                         max_held_bytes: int = DEFAULT_MAX_HELD_BYTES) -> dict:
    """A sender offering far more than the link carries: how much the relay accepts, holds and grows."""
    sink = Sink()
    with RelayProcess(f"127.0.0.1:{sink.port}",
                      ["--uplink", link, "--max-held-bytes", str(max_held_bytes)]) as relay:
        rss_before = memory_kb(relay.pid, "VmRSS")
        sender = socket.create_connection(("127.0.0.1", relay.port))
        sender.settimeout(0.05)
        chunk = b"\0" * 65536
        accepted = 0
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            if accepted >= offered_bytes_per_s * elapsed:
                time.sleep(0.002)
                continue
            with contextlib.suppress(TimeoutError):
                accepted += sender.send(chunk)
        peak_kb = memory_kb(relay.pid, "VmHWM")
        delivered = sink.received()
        send_buffer = sender.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        sender.close()
    sink.close()
    summary = relay.summary or {}
    receive_buffer = summary.get("relay", {}).get("max_receive_buffer_bytes", 0)
    kernel = send_buffer + receive_buffer
    growth_mb = (peak_kb - rss_before) / 1024
    return {"link": link, "seconds": seconds, "offered_bytes": round(offered_bytes_per_s * seconds),
            "accepted_bytes": accepted, "delivered_bytes": delivered, "max_held_bytes": max_held_bytes,
            "peak_held_bytes": summary.get("uplink", {}).get("peak_held_bytes"), "kernel_buffer_bytes": kernel,
            "relay_rss_growth_mb": round(growth_mb, 2),
            "held_back": accepted <= delivered + max_held_bytes + kernel, "within_targets":
                accepted <= delivered + max_held_bytes + kernel and growth_mb <= 16}


def run_replays(folders: list[str]) -> dict:
    """Every recorded run under the given folders, replayed packet-level and stream-level."""
    runs = []
    for folder in folders:
        path = Path(folder)
        runs += [path] if (path / "uplink.log").is_file() else sorted(p.parent for p in path.glob("*/uplink.log"))
        if not runs:
            raise ValueError(f"{folder}: no recorded mm-link run (a folder with uplink.log, or folders of them)")
    loaded = [mahimahi.load_run(p) for p in runs]  # refuse a bad run before replaying any
    results = {}
    for run in loaded:
        packets = mahimahi.compare(run.transfer, mahimahi.replay(run))
        stream = mahimahi.compare(run.transfer, mahimahi.replay(run, relay_args=mahimahi.STREAM_LEVEL))
        results[run.name] = {"trace": run.log.trace, "congestion_control": run.congestion_control or "default",
                             **packets.as_dict(), "stream_level": stream.as_dict(),
                             "within_targets": abs(packets.ratio - 1) <= 0.01 and packets.windows_within(0.03) >= 0.9}
        print(f"{run.name}: relay/mm-link {packets.ratio:.4f} ({packets.windows_within(0.03):.0%} of "
              f"{len(packets.window_ratios)} 1-s windows within ±3 %); stream-level relay {stream.ratio:.4f}",
              flush=True)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trace", action="append", default=[], help="also measure this Mahimahi trace (repeatable)")
    parser.add_argument("--window-s", type=float, default=8.0, help="throughput window in seconds (default 8)")
    parser.add_argument("--delay-ms", type=float, default=40.0, help="configured one-way delay (default 40)")
    parser.add_argument("--messages", type=int, default=15,
                        help="small messages for the delay check (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="only 1 Mbit/s and one trace, short windows")
    parser.add_argument("--mahimahi", action="append", default=[], metavar="DIR",
                        help="replay recorded mm-link runs instead (a run's folder, or a folder of runs; repeatable)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def main(args: argparse.Namespace) -> int:
    if args.mahimahi:
        results = run_replays(args.mahimahi)
        print(format_table(["run", "cc", "relay/mm-link", "1-s windows ±3 %", "stream-level relay/mm-link"],
                           [(name, r["congestion_control"], r["ratio"], r["windows_within_3pct"],
                             r["stream_level"]["ratio"]) for name, r in results.items()]))
        if args.json:
            print_json_line({"mahimahi": results})
        return 0
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
    pressure = measure_backpressure(seconds=5.0 if args.quick else 20.0)
    print(f"backpressure: the relay accepted {pressure['accepted_bytes']} B of {pressure['offered_bytes']} offered, "
          f"delivered {pressure['delivered_bytes']}, held at most {pressure['peak_held_bytes']}; "
          f"its memory grew {pressure['relay_rss_growth_mb']} MB", flush=True)
    print(format_table(["link", "throughput_ratio", "delivered KB", "model KB", "delay_error_ms", "max |err| ms"],
                       [(r.link, round(r.throughput_ratio, 4), r.delivered_bytes // 1024, r.model_bytes // 1024,
                         round(r.delay_error_ms, 2), round(r.delay_error_max_ms, 2)) for r in results]))
    ok = all(0.97 <= r.throughput_ratio <= 1.03 and abs(r.delay_error_ms) <= 2 for r in results) \
        and pressure["within_targets"]
    if args.json:
        print_json_line({"links": {r.link: {"throughput_ratio": round(r.throughput_ratio, 4),
                                            "delay_error_ms": round(r.delay_error_ms, 3),
                                            "delay_error_max_ms": round(r.delay_error_max_ms, 3),
                                            "delivered_bytes": r.delivered_bytes, "model_bytes": r.model_bytes}
                                   for r in results},
                         "window_s": window, "configured_delay_ms": args.delay_ms, "backpressure": pressure,
                         "within_targets": ok})
    return 0
