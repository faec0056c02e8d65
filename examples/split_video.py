"""Run a detector split at a chosen point on a real video, on this machine, and print what each stage costs.

    python examples/split_video.py --model ssdlite_mobilenet_v2 --split s8 --frames 60

Per frame: decode (OpenCV), head (preprocess + layers up to the split), tail (rest + postprocess). Sizes:
the features at the split as float32 and int8, next to a JPEG (q90) of the same frame — what would cross
the link in split mode versus plain offloading. Random-init weights unless ``--weights`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
from splitinf.head import Head
from splitinf.tail import Tail
from tqdm import tqdm

from splitinf.data import PERSON_VIDEO, jpeg_bytes, video_frames
from splitinf.models import build_detector, detector_names
from splitinf.report import format_table, print_json_line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ssdlite_mobilenet_v2", choices=detector_names())
    parser.add_argument("--split", default="s8", help="split point key (see `splitinf models`; default s8)")
    parser.add_argument("--weights", default=None, help="local state-dict file (default: random init)")
    parser.add_argument("--source", default=PERSON_VIDEO, help="video file (default: the shared person video)")
    parser.add_argument("--frames", type=int, default=60, help="frames to process (default 60)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line last")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    detector = build_detector(args.model, weights=args.weights)
    head, tail = Head(detector, args.split), Tail(detector, args.split)
    times: dict[str, list[float]] = {"decode": [], "head": [], "tail": []}
    sizes: dict[str, list[int]] = {"float32": [], "int8": [], "jpeg_q90": []}
    detections = 0
    frames = video_frames(args.source, max_frames=args.frames)
    with torch.inference_mode():
        for _ in tqdm(range(args.frames), desc=f"{args.model}@{args.split}", unit="frame"):
            start = time.perf_counter_ns()
            frame = next(frames, None)
            if frame is None:
                break
            decoded = time.perf_counter_ns()
            features, geometries = head([frame])
            headed = time.perf_counter_ns()
            result = tail(features, geometries)
            done = time.perf_counter_ns()
            times["decode"].append((decoded - start) / 1e6)
            times["head"].append((headed - decoded) / 1e6)
            times["tail"].append((done - headed) / 1e6)
            sizes["float32"].append(features.numel() * 4)
            sizes["int8"].append(features.numel())
            sizes["jpeg_q90"].append(len(jpeg_bytes(frame, 90)))
            detections += int((result[0]["scores"] >= 0.5).sum())

    count = len(times["head"])
    if count == 0:
        print(f"no frames could be read from {args.source}", file=sys.stderr)
        return 1
    stage_rows = [(s, np.percentile(v, 50), np.percentile(v, 95)) for s, v in times.items()]
    print(f"\n{args.model} split at {args.split} ({head.point.description}), {count} frames")
    print(format_table(["stage", "p50 ms", "p95 ms"], stage_rows))
    size_rows = [(k, np.mean(v) / 1024) for k, v in sizes.items()]
    print(format_table(["payload", "KB/frame"], size_rows))
    if args.json:
        print_json_line({
            "model": args.model,
            "split": args.split,
            "frames": count,
            "p50_ms": {s: float(np.percentile(v, 50)) for s, v in times.items()},
            "bytes_per_frame": {k: float(np.mean(v)) for k, v in sizes.items()},
            "detections_at_0.5": detections,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
