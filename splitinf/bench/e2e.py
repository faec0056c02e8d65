"""``splitinf bench e2e``: real ``splitinf-edge`` and ``splitinf-device`` processes on loopback.

1. A device streams ≥ 200 frames of the person video (paced at ``--fps``, one frame in flight) to an edge.
   ``overhead_ms`` = p50 of capture-to-output latency minus the p50 of each frame's summed stage times
   (waiting on the device, head, encode, edge queue, decode, tail): what serialization, sockets and thread hand-offs
   cost. Every frame must be accounted for.
   ``transport_floor_ms`` is its baseline, measured in the same run: the p50 round trip of a bare ZeroMQ
   message of the payload's size between two Python processes at the same pace, with no model, no protocol and
   no thread hand-off — what the machine charges for waking idle processes and sockets at all.
2. The same edge alone, fed by 1 and by 8 simulated devices at full speed (one frame in flight each):
   results per second — micro-batching across devices should pay off even on a CPU.

Model options are those of ``splitinf-edge`` (default: the shared defaults of edge and device).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from splitinf.bench.loadgen import edge_throughput, prepare_payloads
from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.report import format_table, print_json_line
from splitinf.runtime import transport
from splitinf.runtime.processes import EdgeProcess, half_the_cores, run_device
from splitinf.runtime.setup import ModelSetup, add_model_arguments

# The latency clock starts when the frame exists (after it was decoded), so "capture" is not inside it.
COMPUTE_STAGES = ("wait", "head", "encode", "edge_queue", "decode", "tail")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=200, help="frames the real device streams (default 200)")
    parser.add_argument("--fps", type=float, default=4.0, help="capture rate of the device (default 4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per edge load (default 10)")
    parser.add_argument("--max-batch", type=int, default=8, help="edge micro-batch limit (default 8)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")
    add_model_arguments(parser)


def transport_floor_ms(size: int, fps: float, samples: int = 40) -> float:
    """The p50 round trip of a bare ``size``-byte ZeroMQ message to an echoing process, one every 1/fps s."""
    echo = subprocess.Popen([sys.executable, "-c", "from splitinf.runtime.transport import echo_forever; "
                             "echo_forever()"], stdout=subprocess.PIPE, text=True)
    sock = None
    try:
        sock = transport.device_socket(echo.stdout.readline().strip())
        payload, times = b"\0" * size, []
        for _ in range(samples + 5):
            start = time.perf_counter_ns()
            sock.send(payload)
            if not sock.poll(5000):
                raise RuntimeError("the echo process did not answer")
            sock.recv()
            times.append((time.perf_counter_ns() - start) / 1e6)
            time.sleep(1 / fps)
        return float(np.median(times[5:]))  # the first ones pay for the connection
    finally:
        if sock is not None:
            sock.close(linger=0)
        echo.kill()
        echo.wait()


def model_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--model", args.model, "--bottleneck", args.bottleneck, "--split", args.split, "--codec", args.codec]
    return flags + (["--weights", args.weights] if args.weights else [])


def main(args: argparse.Namespace) -> int:
    flags = model_flags(args)
    shared = [*flags, *half_the_cores()]  # edge and device share this machine: half its cores each
    with EdgeProcess([*shared, "--max-batch", str(args.max_batch)]) as edge, \
            tempfile.TemporaryDirectory(prefix="splitinf-e2e-") as folder:
        summary, frames = run_device(edge.address, PERSON_VIDEO, Path(folder),
                                     [*shared, "--frames", str(args.frames), "--fps", str(args.fps),
                                      "--window", "1"])
    delivered = [f for f in frames if f["outcome"] == "edge"]
    totals = [f["latency_ms"] for f in delivered]
    computes = [sum(f["stages_ms"].get(s, 0.0) for s in COMPUTE_STAGES) for f in delivered]
    p50, p50_compute = float(np.median(totals)), float(np.median(computes))
    print(f"device: {summary['frames']} frames, counts {summary['counts']}, p50 {p50:.2f} ms, "
          f"p50 of summed stages {p50_compute:.2f} ms", flush=True)

    floor = transport_floor_ms(int(summary["bytes_per_frame"]), args.fps)
    print(f"bare ZeroMQ round trip at the same pace: {floor:.3f} ms", flush=True)
    setup = ModelSetup.from_args(args)
    payloads = prepare_payloads(setup, list(video_frames(PERSON_VIDEO, max_frames=16, step=40)))
    rates = {}
    with EdgeProcess([*flags, "--max-batch", str(args.max_batch)]) as edge:
        for devices in (1, 8):
            rates[devices] = edge_throughput(edge.address, setup, payloads, devices, args.seconds)
            print(f"edge with {devices} simulated device(s): {rates[devices]:.2f} results/s", flush=True)
        edge_summary = edge.stop()
    result = {
        "frames": summary["frames"], "accounted": summary["accounted"], "counts": summary["counts"],
        "p50_ms": round(p50, 3), "p50_compute_ms": round(p50_compute, 3), "overhead_ms": round(p50 - p50_compute, 3),
        "transport_floor_ms": round(floor, 3),
        "edge_fps_1dev": round(rates[1], 3), "edge_fps_8dev": round(rates[8], 3),
        "batching_gain": round(rates[8] / rates[1], 3) if rates[1] else None,
        "edge_mean_batch": edge_summary.get("mean_batch") if edge_summary else None,
        "model": summary["model"],
    }
    print(format_table(["metric", "value"], [(k, v) for k, v in result.items() if k not in ("counts", "model")]))
    if args.json:
        print_json_line(result)
    return 0
