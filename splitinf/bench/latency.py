"""``splitinf bench latency``: whole-model CPU (or CUDA) latency of zoo detectors, side by side in one run.

Random weights, one real 768×432 video frame per call (preprocessing included), batch 1; the median over
``--repeats`` calls after warm-up, the models interleaved round by round so that machine noise hits all.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.models import build_detector
from splitinf.report import format_table, print_json_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", default=None,
                        help="detector (repeatable; default: ssdlite_mobiledet_cpu and ssdlite320_mobilenet_v3_large)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per model (default 30)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.model or ["ssdlite_mobiledet_cpu", "ssdlite320_mobilenet_v3_large"]
    frame = next(video_frames(PERSON_VIDEO, max_frames=1))
    models = {name: build_detector(name) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for model in models.values():
            for _ in range(3):
                model([frame])
        for _ in range(args.repeats):
            for name, model in models.items():
                start = time.perf_counter_ns()
                model([frame])
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    medians = {name: float(np.median(v)) for name, v in times.items()}
    reference = medians[names[-1]]
    print(format_table(["model", "median ms", "p90 ms", f"÷ {names[-1]}"],
                       [(n, round(medians[n], 2), round(float(np.percentile(times[n], 90)), 2),
                         round(medians[n] / reference, 3)) for n in names]))
    if args.json:
        print_json_line({"median_ms": {n: round(m, 3) for n, m in medians.items()},
                         "ratio_to_last": {n: round(m / reference, 4) for n, m in medians.items()},
                         "threads": torch.get_num_threads(), "repeats": args.repeats})
    return 0
