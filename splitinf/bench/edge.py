"""``splitinf bench edge``: how many frames/s the edge's tail serves.

``--engine inprocess`` (default): next to torchvision's own batched ``model(list_of_images)`` at the same
batch size — same run, same device (meant for a GPU; runs on a CPU). A real ``splitinf-edge`` process is fed by
8 simulated devices at full speed (each keeping ``batch / 8`` frames in flight). The reference runs the unsplit
torchvision model on batches of the same real frames. Random weights, 640×480 inputs (the shared person video,
resized), score threshold 0.5 on both sides.

``--engine ray --replicas 1,2``: the shipped person detector and bottleneck (payloads precomputed by the load
generator), one torch thread per replica, against the in-process edge on one thread, same run: frames/s with
8 devices flat out, and the p50 latency one camera-paced device (5 fps) sees at low load, whose difference is
what Ray adds to a frame. ``cores_used`` says where this machine's cores went during each throughput run (the
front, the replicas, Ray's daemons, the load generator): on a machine of two cores, what the replicas get of
them bounds what a second replica can add.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from splitinf.bench.loadgen import SimulatedDevice, edge_throughput, prepare_payloads
from splitinf.data import PERSON_VIDEO, resize_rgb, video_frames
from splitinf.experiments.costs import measure_edge_costs, save_edge_costs
from splitinf.models import build_detector
from splitinf.options import deprecated_alias
from splitinf.report import format_table, print_json_line
from splitinf.runtime.processes import EdgeProcess, command_line, cpu_seconds, descendants
from splitinf.runtime.ray_engine import REPLICA_TITLE
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.weights.checkpoints import default_bottleneck


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="ssdlite320_mobilenet_v3_large", help="zoo detector (default %(default)s)")
    parser.add_argument("--split", default="s16", help="split point whose tail is served (default %(default)s)")
    parser.add_argument("--codec", default="float32", choices=("float32", "minmax8"),
                        help="payload codec of the simulated devices (default %(default)s)")
    torch_device = parser.add_argument("--torch-device", default="cuda", choices=("cuda", "cpu"),
                                       help="where both run (default %(default)s)")
    deprecated_alias(parser, torch_device, "--device")
    parser.add_argument("--batch", type=int, default=32, help="batch size of both (default 32)")
    parser.add_argument("--devices", type=int, default=8, help="simulated devices (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time of each (default %(default)s)")
    parser.add_argument("--engine", choices=("inprocess", "ray"), default="inprocess",
                        help="inprocess: the edge against torchvision (default); ray: Ray Serve replicas against "
                             "the in-process edge, on the shipped model")
    parser.add_argument("--replicas", default="1,2", help="--engine ray: replica counts to measure (default 1,2)")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0,
                        help="--engine ray: GPUs per replica (default 0: the replicas and the in-process edge run "
                             "on the CPU; > 0: both on CUDA)")
    parser.add_argument("--save-edge-costs", metavar="FILE", default=None,
                        help="also time each mode's edge half (decode + tail, one frame at a time; the shipped "
                             "person detector and bottleneck) on --torch-device and write them to FILE, which "
                             "splitinf sweep and splitinf bench adaptive take as --edge-costs")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def frames_640x480(count: int) -> list[torch.Tensor]:
    return [resize_rgb(f, (480, 640)) for f in video_frames(PERSON_VIDEO, max_frames=count, step=25)]


def torchvision_reference(model_name: str, images: list[torch.Tensor], batch: int, device: str,
                          seconds: float) -> float:
    detector = build_detector(model_name)
    detector.set_score_threshold(0.5)
    model = detector.model.to(device).eval()
    inputs = [(images[i % len(images)].float() / 255).to(device) for i in range(batch)]
    with torch.inference_mode():
        model(inputs)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(inputs)
            if device == "cuda":
                torch.cuda.synchronize()
            done += batch
    return done / (time.perf_counter() - start)


def paced_latency_ms(address: str, setup: ModelSetup, payloads: list, seconds: float, fps: float = 5.0
                     ) -> tuple[float, float]:
    """p50 capture-to-result latency of one camera-paced device (the edge's per-frame cost at low load), and
    the p50 of the edge's own decode + tail time within it."""
    stop = threading.Event()
    device = SimulatedDevice(address, setup, payloads, stop, 1, "paced", fps=fps)
    device.start()
    time.sleep(seconds)
    stop.set()
    device.join(timeout=10)
    answered = [o for o in device.outcomes if o.outcome == "edge"][3:]  # after the first answers
    if device.error or not answered:
        raise RuntimeError(f"the paced device got no answers: {device.error}")
    compute = [o.stages.get("decode", 0) + o.stages.get("tail", 0) for o in answered]
    return float(np.median([o.latency_ms for o in answered])), float(np.median(compute))


class CpuUse:
    """Cores used, on average between :meth:`start` and :meth:`stop`, by the edge's front (its own process),
    its tail replicas, the rest of its process tree (Ray's daemons) and this load generator: on a small machine
    they share, and what the replicas get bounds what more replicas can add."""

    def __init__(self, edge_pid: int) -> None:
        self.edge_pid = edge_pid

    def _sample(self) -> dict[str, float]:
        totals = {"front": cpu_seconds(self.edge_pid), "replicas": 0.0, "ray_daemons": 0.0,
                  "load_generator": cpu_seconds(os.getpid())}
        for pid in descendants(self.edge_pid):
            totals["replicas" if command_line(pid).startswith(REPLICA_TITLE) else "ray_daemons"] += cpu_seconds(pid)
        return totals

    def start(self) -> None:
        self.began, self.before = time.perf_counter(), self._sample()

    def stop(self) -> dict[str, float]:
        after, wall = self._sample(), time.perf_counter() - self.began
        return {k: round((after[k] - self.before[k]) / wall, 2) for k in after}


def ray_main(args: argparse.Namespace) -> dict:
    """The Ray engine at each replica count against the in-process edge, same payloads, same run."""
    replicas = [int(r) for r in args.replicas.split(",")]
    setup = ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))
    payloads = prepare_payloads(setup, [f for f in video_frames(PERSON_VIDEO, max_frames=16, step=25)])
    flags = ["--threads", "1", "--max-batch", str(min(args.batch, 8))]
    if args.gpus_per_replica > 0:
        flags += ["--torch-device", "cuda"]
    fps, latency, compute, cores = {}, {}, {}, {}
    for engine, count in [("inprocess", 1)] + [("ray", r) for r in replicas]:
        extra = [] if engine == "inprocess" else ["--engine", "ray", "--replicas", str(count),
                                                  "--gpus-per-replica", str(args.gpus_per_replica)]
        with EdgeProcess([*flags, *extra]) as edge:
            key = engine if engine == "inprocess" else str(count)
            cpu = CpuUse(edge.process.pid)
            cpu.start()
            fps[key] = edge_throughput(edge.address, setup, payloads, args.devices, args.seconds)
            cores[key] = cpu.stop()
            if count == 1:
                latency[engine], compute[engine] = paced_latency_ms(edge.address, setup, payloads, args.seconds)
        print(f"{engine} ×{count}: {fps[key]:.1f} frames/s", flush=True)
    result = {"model": DEFAULT_MODEL, "bottleneck": default_bottleneck().name, "devices": args.devices,
              "inprocess_fps": round(fps["inprocess"], 2),
              "ray_fps": {str(r): round(fps[str(r)], 2) for r in replicas},
              "ray_overhead_ms": round(latency["ray"] - latency["inprocess"], 2),
              "p50_ms": {k: round(v, 2) for k, v in latency.items()},
              "p50_compute_ms": {k: round(v, 2) for k, v in compute.items()},
              "cores_used": cores, "cores": os.cpu_count(),
              "tail_cpu_ms_per_frame": {k: round(1000 * c["replicas" if k != "inprocess" else "front"] / fps[k], 2)
                                        for k, c in cores.items()}}
    if len(replicas) > 1:
        result["scaling"] = round(fps[str(replicas[-1])] / fps[str(replicas[0])], 3)
    print(format_table(["engine", "frames/s"], [("in process", result["inprocess_fps"])]
                       + [(f"ray, {r} replica(s)", v) for r, v in result["ray_fps"].items()]))
    print(f"p50 at 5 fps: in process {latency['inprocess']:.1f} ms, ray {latency['ray']:.1f} ms")
    return result


def edge_costs_main(args: argparse.Namespace) -> dict[str, float]:
    """Each mode's edge milliseconds on ``--torch-device``, written where --save-edge-costs says."""
    detector = build_detector(DEFAULT_MODEL, weights="pretrained")
    edge_ms = measure_edge_costs(detector, [str(default_bottleneck())], args.torch_device)
    where = torch.cuda.get_device_name() if args.torch_device == "cuda" else f"cpu ({os.cpu_count()} cores)"
    save_edge_costs(Path(args.save_edge_costs), edge_ms, where)
    print(f"edge costs on {where}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in edge_ms.items())
          + f" → {args.save_edge_costs}", flush=True)
    return {k: round(v, 3) for k, v in edge_ms.items()}


def main(args: argparse.Namespace) -> int:
    edge_ms = edge_costs_main(args) if args.save_edge_costs else None
    result = ray_main(args) if args.engine == "ray" else inprocess_main(args)
    if edge_ms is not None:
        result["edge_ms"] = edge_ms
    if args.json:
        print_json_line(result)
    return 0


def inprocess_main(args: argparse.Namespace) -> dict:
    """The in-process edge against torchvision's batched forward, same frames, same device."""
    images = frames_640x480(16)
    setup = ModelSetup.build(args.model, None, args.split, None, args.codec)
    payloads = prepare_payloads(setup, images)
    edge_args = ["--model", args.model, "--bottleneck", "none", "--split", args.split, "--codec", args.codec,
                 "--torch-device", args.torch_device, "--max-batch", str(args.batch), "--score-threshold", "0.5"]
    window = max(args.batch // args.devices, 1)
    with EdgeProcess(edge_args) as edge:
        ours = edge_throughput(edge.address, setup, payloads, args.devices, args.seconds, window=window)
        summary = edge.stop()
    reference = torchvision_reference(args.model, images, args.batch, args.torch_device, args.seconds)
    result = {"model": args.model, "torch_device": args.torch_device, "batch": args.batch, "edge_fps": round(ours, 2),
              "torchvision_fps": round(reference, 2), "ratio": round(ours / reference, 3),
              "edge_mean_batch": summary.get("mean_batch") if summary else None}
    print(format_table(["metric", "value"], list(result.items())))
    return result
