"""``splitinf bench chaos``: a real ``splitinf-edge`` process under what breaks edges, with simulated devices
(real sockets, the device's own session, payloads made by the real head) that must account for every frame.

1. **restarts**: ``--devices`` devices stream at a camera's pace (half the edge's measured capacity in all)
   while the edge is killed (SIGKILL) and started again on the same port, ``--restarts`` times;
2. **connections**: ``--connections`` short-lived devices each shake hands and vanish without a word; the
   edge's memory (VmRSS) before and after, and the devices it still counts two heartbeat periods later
   (``peers_after``: it should be back to the live devices);
3. **overload**: devices offering ``--overload`` times the frames per second the edge served flat out: its
   bounded queue answers ``overloaded``, the devices back off, and no frame is answered after its deadline.

The last line (``--json``) carries ``frames`` and ``accounted`` (every simulated device's, summed),
``overloaded``, ``edge_rss_growth_mb``, ``peers_after`` and the live devices, and per-phase details.

``--engine ray``: the edge's tail on ``--replicas`` Ray Serve replicas instead; ``--devices`` devices stream
(half the measured capacity in all) for ``--seconds`` while one replica process is killed (SIGKILL) every
``--kill-every`` seconds, in turn. The front must never restart and every frame must be accounted; its last
line carries ``frames``, ``accounted``, ``failed``, ``replica_kills`` and the front's retries.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from splitinf.bench.loadgen import SimulatedDevice, edge_throughput, prepare_payloads
from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.protocol import EDGE_LIVENESS, Hello, Welcome, decode, encode
from splitinf.report import format_table, print_json_line
from splitinf.runtime import transport
from splitinf.runtime.processes import EdgeProcess, command_line, descendants, memory_kb
from splitinf.runtime.ray_engine import REPLICA_TITLE
from splitinf.runtime.setup import ModelSetup, add_model_arguments

DEADLINE_MS = 1000.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=4, help="devices streaming throughout (default %(default)s)")
    parser.add_argument("--restarts", type=int, default=3, help="times the edge is killed and restarted "
                        "(default %(default)s)")
    parser.add_argument("--connections", type=int, default=10_000,
                        help="short-lived devices that shake hands and vanish (default %(default)s)")
    parser.add_argument("--overload", type=float, default=3.0,
                        help="offered load in the overload phase, times the edge's capacity (default %(default)s)")
    parser.add_argument("--phase-s", type=float, default=6.0, help="seconds of streaming between restarts, and "
                        "of overload (default %(default)s)")
    parser.add_argument("--heartbeat-ms", type=int, default=250, help="the edge's heartbeat period (default "
                        "%(default)s)")
    parser.add_argument("--engine", choices=("inprocess", "ray"), default="inprocess",
                        help="inprocess: restarts, connection storm and overload (default); ray: replicas of the "
                             "tail killed while devices stream")
    parser.add_argument("--replicas", type=int, default=2, help="--engine ray: tail replicas (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="--engine ray: seconds the devices stream (default %(default)s)")
    parser.add_argument("--kill-every", type=float, default=10.0,
                        help="--engine ray: seconds between replica kills (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")
    add_model_arguments(parser)


class Edge:
    """The edge process, restartable on its port, and its counters while it serves (SIGUSR1)."""

    def __init__(self, args: argparse.Namespace, folder: Path, engine: tuple[str, ...] = ()) -> None:
        self.path = folder / "edge.json"
        model = ["--model", args.model, "--bottleneck", args.bottleneck, "--split", args.split, "--codec", args.codec]
        self.flags = [*model, "--heartbeat-ms", str(args.heartbeat_ms), "--max-queue", "4", "--threads", "1",
                      "--summary-json", str(self.path), *engine]
        self.process = EdgeProcess(self.flags).start()

    def restart(self) -> None:
        self.process.kill()
        self.process = EdgeProcess(self.flags, port=self.process.port).start()

    def counters(self) -> dict:
        before = self.path.stat().st_mtime_ns if self.path.exists() else 0
        self.process.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.path.exists() and self.path.stat().st_mtime_ns != before:
                return json.loads(self.path.read_text())
            time.sleep(0.01)
        raise RuntimeError("the edge did not report its counters on SIGUSR1")

    def capacity(self, setup: ModelSetup, payloads) -> float:
        """Frames/s it serves two devices flat out, over a few seconds: the scale of every phase's load."""
        return edge_throughput(self.process.address, setup, payloads, devices=2, seconds=3, warmup=1, window=2)

    def rss_kb(self) -> int:
        return memory_kb(self.process.process.pid)


def handshake_and_vanish(address: str, setup: ModelSetup, count: int) -> int:
    """``count`` devices, one after the other: HELLO, wait for WELCOME, close. Returns how many were welcomed."""
    welcomed, hello = 0, encode(Hello("short-lived", setup.fingerprint, setup.config))
    for _ in range(count):
        sock = transport.device_socket(address)
        if transport.send(sock, hello) and sock.poll(5000) and isinstance(decode(sock.recv_multipart()), Welcome):
            welcomed += 1
        sock.close(linger=0)
    return welcomed


def stream(address: str, setup: ModelSetup, payloads, count: int, fps: float, stop: threading.Event,
           name: str, **options) -> list[SimulatedDevice]:
    devices = [SimulatedDevice(address, setup, payloads, stop, window=2, name=f"{name}-{i}", deadline_ms=DEADLINE_MS,
                               fps=fps, **options) for i in range(count)]
    for device in devices:
        device.start()
    return devices


def replica_pids(edge_pid: int) -> list[int]:
    """The processes of the edge's live tail replicas (a restarting one counts once it has its title)."""
    return sorted(pid for pid in descendants(edge_pid) if command_line(pid).startswith(REPLICA_TITLE))


def ray_main(args: argparse.Namespace, setup: ModelSetup, payloads) -> int:
    """Replicas killed in turn while devices stream; the front must serve on and account every frame."""
    with tempfile.TemporaryDirectory(prefix="splitinf-chaos-") as folder:
        # The edge's default queue (32), not the overload phase's 4: while a replica restarts, the others
        # serve its share and the queue absorbs the dip instead of turning frames away.
        edge = Edge(args, Path(folder), ("--engine", "ray", "--replicas", str(args.replicas), "--max-queue", "32"))
        front_pid = edge.process.process.pid
        try:
            capacity = edge.capacity(setup, payloads)
            print(f"edge capacity on {args.replicas} replica(s): {capacity:.1f} frames/s", flush=True)
            stop = threading.Event()
            # Cameras that stream once connected and let their last frames finish: a failure is the kills'.
            live = stream(edge.process.address, setup, payloads, args.devices, capacity / 2 / args.devices, stop,
                          "live", wait_for_edge=True, drain_ms=2 * DEADLINE_MS)
            kills, alive_at_kill, respawn_s = [], [], []
            started = next_kill = time.monotonic()
            down_since = None  # when the deployment last lost a replica it has not replaced yet
            while (now := time.monotonic()) - started < args.seconds:
                replicas = replica_pids(front_pid)
                if down_since is not None and len(replicas) >= args.replicas:
                    respawn_s.append(round(now - down_since, 2))
                    down_since = None
                if now >= next_kill + args.kill_every:
                    next_kill += args.kill_every
                    alive_at_kill.append(len(replicas))
                    if replicas:
                        victim = replicas[len(kills) % len(replicas)]
                        os.kill(victim, signal.SIGKILL)
                        kills.append(victim)
                        down_since = down_since or now
                        print(f"replica {victim} killed ({len(kills)}), {len(replicas)} were alive", flush=True)
                time.sleep(0.1)
            stop.set()
            for device in live:
                device.join(timeout=30)
            front_alive = edge.process.process.poll() is None and edge.process.process.pid == front_pid
            edge_counters = edge.counters()
            replicas_after = len(replica_pids(front_pid))
        finally:
            edge.process.stop()  # not killed: the edge stops the Ray it started
    summaries = [d.session.summary() for d in live]
    frames, failed = sum(s["frames"] for s in summaries), sum(s["counts"]["failed"] for s in summaries)
    result = {
        "engine": "ray", "replicas": args.replicas, "devices": args.devices, "seconds": args.seconds,
        "frames": frames, "accounted": sum(s["accounted"] for s in summaries), "failed": failed,
        "failed_fraction": round(failed / max(frames, 1), 4),
        "counts": {k: sum(s["counts"][k] for s in summaries) for k in summaries[0]["counts"]},
        "reasons": dict(sum((Counter(s["reasons"]) for s in summaries), Counter())),
        "replica_kills": len(kills), "replicas_alive_at_kills": alive_at_kill, "replicas_after": replicas_after,
        "replica_respawn_s": respawn_s,
        "retried": edge_counters.get("engine", {}).get("retried"), "front_alive": front_alive,
        "reconnects": sum(s["reconnects"] for s in summaries), "heartbeat_ms": args.heartbeat_ms,
        "capacity_fps": round(capacity, 2),
        "every_frame_accounted": all(s["accounted"] == s["frames"] for s in summaries),
    }
    print(format_table(["metric", "value"], [(k, v) for k, v in result.items() if k not in ("counts", "reasons")]))
    if args.json:
        print_json_line(result)
    return 0


def main(args: argparse.Namespace) -> int:
    setup = ModelSetup.from_args(args)
    payloads = prepare_payloads(setup, list(video_frames(PERSON_VIDEO, max_frames=8, step=40)))
    if args.engine == "ray":
        return ray_main(args, setup, payloads)
    with tempfile.TemporaryDirectory(prefix="splitinf-chaos-") as folder:
        edge = Edge(args, Path(folder))
        try:
            capacity = edge.capacity(setup, payloads)
            print(f"edge capacity: {capacity:.1f} frames/s", flush=True)
            stop = threading.Event()
            live = stream(edge.process.address, setup, payloads, args.devices, capacity / 2 / args.devices, stop,
                          "live")
            for restart in range(args.restarts):
                time.sleep(args.phase_s)
                edge.restart()
                print(f"edge killed and restarted ({restart + 1}/{args.restarts})", flush=True)
            time.sleep(args.phase_s)
            rss_before, started = edge.rss_kb(), time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                share = [args.connections // 8 + (i < args.connections % 8) for i in range(8)]
                welcomed = sum(pool.map(lambda n: handshake_and_vanish(edge.process.address, setup, n), share))
            rss_after = edge.rss_kb()
            storm_s = time.monotonic() - started
            time.sleep(EDGE_LIVENESS * args.heartbeat_ms / 1000 + 0.1)  # two periods: long enough to be forgotten
            peers_after = edge.counters()["peers"]
            print(f"{welcomed} short-lived devices in {storm_s:.1f} s; edge RSS {rss_before / 1024:.1f} → "
                  f"{rss_after / 1024:.1f} MB; {peers_after} devices counted two heartbeats later", flush=True)
            flood_stop = threading.Event()
            flood = stream(edge.process.address, setup, payloads, args.devices,
                           args.overload * capacity / args.devices, flood_stop, "flood")
            time.sleep(args.phase_s)
            flood_stop.set()
            stop.set()
            for device in live + flood:
                device.join(timeout=15)
            edge_counters = edge.counters()
        finally:
            edge.process.kill()
    summaries = [d.session.summary() for d in live + flood]
    late = sum(1 for d in live + flood for o in d.outcomes if o.outcome == "edge" and o.latency_ms > DEADLINE_MS)
    result = {
        "frames": sum(s["frames"] for s in summaries), "accounted": sum(s["accounted"] for s in summaries),
        "counts": {k: sum(s["counts"][k] for s in summaries) for k in summaries[0]["counts"]},
        "overloaded": sum(s["overloaded"] for s in summaries), "answered_after_deadline": late,
        "late_results_dropped": sum(s["late_results"] for s in summaries),
        "edge_overloaded": edge_counters["overloaded"], "restarts": args.restarts,
        "reconnects": sum(s["reconnects"] for s in summaries[: args.devices]),
        "connections": args.connections, "welcomed": welcomed, "storm_s": round(storm_s, 1),
        "edge_rss_growth_mb": round((rss_after - rss_before) / 1024, 2), "peers_after": peers_after,
        "live_devices": args.devices, "heartbeat_ms": args.heartbeat_ms, "capacity_fps": round(capacity, 2),
        "every_frame_accounted": all(s["accounted"] == s["frames"] for s in summaries),
    }
    print(format_table(["metric", "value"], [(k, v) for k, v in result.items() if k != "counts"]))
    if args.json:
        print_json_line(result)
    return 0
