"""``splitinf netsim relay``: put an emulated link between a device and an edge server.

    splitinf netsim relay --listen 127.0.0.1:5600 --connect 127.0.0.1:5555 \\
        --uplink ATT-LTE-driving.up --downlink 10mbit --delay-ms 20

then point the device at tcp://127.0.0.1:5600 instead of the edge. Each direction is a rate (1mbit,
500kbit, 20 = Mbit/s), a Mahimahi trace file (or the name of one in ../shared/data/traces), or 'none'.
--delay-ms, --jitter-ms, --loss, --queue and --outage apply to both directions. Data crosses each direction
as mm-link carries a TCP connection: 1448-byte segments plus 56 bytes of IP/TCP and TUN headers per packet
(--mtu, --ip-tcp-header-bytes, --tun-header-bytes). The relay holds at most --max-held-bytes per direction
before it stops reading from the sender. Ctrl-C (or SIGTERM) stops it and prints the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
from pathlib import Path

from splitinf.netsim.channel import Direction
from splitinf.netsim.impairments import parse_loss
from splitinf.netsim.link import QueueLimit
from splitinf.netsim.packets import Packetization
from splitinf.netsim.relay import DEFAULT_MAX_HELD_BYTES, Relay, parse_address
from splitinf.netsim.schedule import ConstantRate, Schedule, TraceSchedule, WithOutages, parse_rate
from splitinf.netsim.trace import load_trace


def trace_folders() -> list[Path]:
    """Where bare trace names are looked up: $SPLITINF_TRACES, then the traces/ folder of the shared data
    ($SPLITINF_DATA, else ../shared/data next to the working directory)."""
    folders = [Path(os.environ["SPLITINF_TRACES"])] if os.environ.get("SPLITINF_TRACES") else []
    data = Path(os.environ.get("SPLITINF_DATA") or Path.cwd().parent / "shared" / "data")
    return [*folders, data / "traces"]


def find_trace(name: str) -> Path | None:
    path = Path(name)
    if path.is_file():
        return path
    for folder in trace_folders():
        if (folder / name).is_file():
            return folder / name
    return None


def parse_link(text: str) -> Schedule | None:
    """'none' | a rate | a Mahimahi trace path or name → a schedule (None: unshaped)."""
    if text.lower() in ("none", "inf", "unshaped"):
        return None
    trace = find_trace(text)
    if trace is not None:
        return TraceSchedule(load_trace(trace), trace.name)
    try:
        return ConstantRate(parse_rate(text))
    except ValueError:
        raise ValueError(f"link {text!r} is neither a rate (e.g. 1mbit, 20) nor a trace file "
                         f"(looked in {', '.join(str(f) for f in trace_folders())}; set SPLITINF_TRACES or "
                         "SPLITINF_DATA to look elsewhere)") from None


def parse_outage(text: str) -> tuple[float, float]:
    """'START_S:DURATION_S' → (start_ms, end_ms)."""
    try:
        start, duration = (float(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"cannot read outage {text!r}: expected START_S:DURATION_S, e.g. 10:2.5") from None
    return start * 1000, (start + duration) * 1000


def build_direction(link: str, args: argparse.Namespace, seed: int) -> Direction:
    schedule = parse_link(link)
    outages = [parse_outage(o) for o in args.outage or []]
    if outages and schedule is not None:
        schedule = WithOutages(schedule, outages)
    rng = random.Random(seed)
    packets = Packetization(mtu=args.mtu, ip_tcp_header=args.ip_tcp_header_bytes, tun_header=args.tun_header_bytes)
    return Direction(schedule, delay_ms=args.delay_ms, jitter_ms=args.jitter_ms, loss=parse_loss(args.loss, rng),
                     limit=QueueLimit.parse(args.queue), mode="stream", seed=seed + 1, packets=packets)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", required=True, help="HOST:PORT the device connects to (port 0: any free)")
    parser.add_argument("--connect", required=True, help="HOST:PORT of the edge server")
    parser.add_argument("--uplink", default="none", help="device→edge link: RATE | TRACE | none (default none)")
    parser.add_argument("--downlink", default="none", help="edge→device link: RATE | TRACE | none (default none)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way propagation delay, each direction")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="± uniform jitter on the delay (no reordering)")
    parser.add_argument("--loss", default=None, help="0.01 | bernoulli:0.01 | ge:p,r[,loss_bad[,loss_good]]")
    parser.add_argument("--queue", default=None, help="drop-tail limit: bytes=N,packets=M (default unlimited)")
    parser.add_argument("--outage", action="append", metavar="START_S:DURATION_S", help="link down (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of jitter and loss (default 0)")
    defaults = Packetization()
    parser.add_argument("--mtu", type=int, default=defaults.mtu,
                        help=f"IP packet size limit on the link (default {defaults.mtu}, mm-link's)")
    parser.add_argument("--ip-tcp-header-bytes", type=int, default=defaults.ip_tcp_header,
                        help=f"IP + TCP header bytes per packet (default {defaults.ip_tcp_header}: TCP with "
                             "timestamps, as Linux sends; 40 without)")
    parser.add_argument("--tun-header-bytes", type=int, default=defaults.tun_header,
                        help=f"TUN header bytes per packet (default {defaults.tun_header}: mm-link's; 0 = none)")
    parser.add_argument("--max-held-bytes", type=int, default=DEFAULT_MAX_HELD_BYTES,
                        help="bytes the relay holds per direction before it stops reading from the sender, "
                             f"which then feels TCP backpressure (default {DEFAULT_MAX_HELD_BYTES})")
    parser.add_argument("--ready-file", default=None,
                        help="write {port, epoch} as JSON here once listening (epoch: CLOCK_MONOTONIC of t=0)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                        help="how much the relay logs to stderr (default %(default)s)")


def _logger(level: str) -> logging.Logger:
    """``netsim relay: message`` lines on stderr (netsim imports nothing of ours, so it sets up its own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    log = logging.getLogger("netsim relay")
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False
    return log


def main(args: argparse.Namespace) -> int:
    log = _logger(args.log_level)
    relay = Relay(parse_address(args.listen), parse_address(args.connect),
                  build_direction(args.uplink, args, args.seed), build_direction(args.downlink, args, args.seed + 100),
                  max_held_bytes=args.max_held_bytes)
    asyncio.run(_serve(relay, args.ready_file, log))
    summary = relay.summary()
    up, down = summary["uplink"], summary["downlink"]
    log.info("stopped after %s s, %d connections", summary["uptime_s"], summary["relay"]["connections"])
    for name, d in (("uplink", up), ("downlink", down)):
        log.info("  %s: %d B in %d packets, max queue %d B / %d packets, %d drops, %d retransmissions, %d stalls, "
                 "held at most %d B — %s", name, d["bytes"], d["packets"], d["max_queue_bytes"],
                 d["max_queue_packets"], d["drops"], d["retransmissions"], d["stalls"], d["peak_held_bytes"],
                 d["link"])
    print(json.dumps(summary), flush=True)
    return 0


async def _serve(relay: Relay, ready_file: str | None, log: logging.Logger) -> None:
    await relay.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("%s:%d → %s:%d", relay.listen[0], relay.port, *relay.connect)
    log.info("  uplink: %s", relay.uplink.describe())
    log.info("  downlink: %s", relay.downlink.describe())
    if ready_file:
        partial = Path(ready_file + ".partial")
        partial.write_text(json.dumps({"port": relay.port, "epoch": relay.epoch, "pid": os.getpid()}))
        partial.replace(ready_file)
    await stop.wait()
    await relay.close()
