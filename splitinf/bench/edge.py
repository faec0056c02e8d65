"""``splitinf bench edge``: how many frames/s the edge's tail serves, next to torchvision's own batched
``model(list_of_images)`` at the same batch size — same run, same device (meant for a GPU; runs on a CPU).

A real ``splitinf-edge`` process is fed by 8 simulated devices at full speed (each keeping ``batch / 8``
frames in flight). The reference runs the unsplit torchvision model on batches of the same real frames.
Random weights, 640×480 inputs (the shared person video, resized), score threshold 0.5 on both sides.
"""

from __future__ import annotations

import argparse
import time

import torch

from splitinf.bench.loadgen import edge_throughput, prepare_payloads
from splitinf.data import PERSON_VIDEO, resize_rgb, video_frames
from splitinf.models import build_detector
from splitinf.options import deprecated_alias
from splitinf.report import format_table, print_json_line
from splitinf.runtime.processes import EdgeProcess
from splitinf.runtime.setup import ModelSetup


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


def main(args: argparse.Namespace) -> int:
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
    if args.json:
        print_json_line(result)
    return 0
