"""``splitinf bench codec``: the deploy entropy codec on real frames — bytes against the model's cross-entropy,
and encode/decode time, next to the 8-bit min/max baseline on the same latents (same process, same frames).

``overhead_ratio`` = range-coded payload ÷ the cross-entropy of the symbols under the same tables (the coder's
own inefficiency); ``bytes_per_frame`` is the whole bitstream as sent, 15-byte header included.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from splitinf.bottleneck import MinMax8Codec, load_for, read_checkpoint
from splitinf.bottleneck.bitstream import HEADER
from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.head import Head
from splitinf.models import build_detector, detector_spec
from splitinf.report import format_table, print_json_line
from splitinf.weights.checkpoints import DEFAULT_BOTTLENECK, find_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bottleneck", default=DEFAULT_BOTTLENECK, metavar="CKPT",
                        help="trained bottleneck checkpoint, a file or a name (default %(default)s)")
    parser.add_argument("--source", default=PERSON_VIDEO, help="video of real frames (default %(default)s)")
    parser.add_argument("--frames", type=int, default=100, help="frames (default 100)")
    parser.add_argument("--frame-step", type=int, default=10, help="every N-th frame (default 10)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def _time_ms(fn, repeats: int = 5) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter_ns()
        result = fn()
        best = min(best, (time.perf_counter_ns() - start) / 1e6)
    return best, result


def main(args: argparse.Namespace) -> int:
    path = find_checkpoint(args.bottleneck)  # a name or a file
    model = read_checkpoint(path)["config"]["model"]
    detector = build_detector(model, weights=detector_spec(model).default_weights)
    bottleneck = load_for(path, detector)
    codec, baseline = bottleneck.codec(), MinMax8Codec()
    head = Head(detector, bottleneck=bottleneck)
    rows = {"entropy": [], "minmax8": []}
    cross_entropy, payload = [], []
    with torch.inference_mode():
        for frame in video_frames(args.source, max_frames=args.frames, step=args.frame_step):
            latent = head([frame])[0][0]
            for name, c in (("entropy", codec), ("minmax8", baseline)):
                encode_ms, data = _time_ms(lambda c=c, latent=latent: c.compress(latent))
                decode_ms, _ = _time_ms(lambda c=c, data=data: c.decompress(data))
                rows[name].append((len(data), encode_ms, decode_ms))
            if hasattr(codec, "tables"):
                cross_entropy.append(codec.tables.cross_entropy_bits(codec.symbols(latent)) / 8)
                payload.append(rows["entropy"][-1][0] - HEADER.size)
    summary = {}
    for name, values in rows.items():
        sizes, encodes, decodes = (np.array(v) for v in zip(*values))
        summary[name] = {"bytes_per_frame": float(sizes.mean()), "encode_ms": float(np.median(encodes)),
                         "decode_ms": float(np.median(decodes))}
    result = {
        "checkpoint": args.bottleneck,
        "frames": len(rows["entropy"]),
        "bytes_per_frame": round(summary["entropy"]["bytes_per_frame"], 1),
        "cross_entropy_bytes": round(float(np.mean(cross_entropy)), 1) if cross_entropy else None,
        "overhead_ratio": round(float(np.sum(payload) / np.sum(cross_entropy)), 5) if cross_entropy else None,
        "header_bytes": HEADER.size,
        "encode_ms": round(summary["entropy"]["encode_ms"], 3),
        "decode_ms": round(summary["entropy"]["decode_ms"], 3),
        "baseline_minmax8": {k: round(v, 3) for k, v in summary["minmax8"].items()},
    }
    print(format_table(["codec", "bytes/frame", "encode ms", "decode ms"],
                       [(n, round(s["bytes_per_frame"], 1), round(s["encode_ms"], 3), round(s["decode_ms"], 3))
                        for n, s in summary.items()]))
    print(f"cross-entropy {result['cross_entropy_bytes']} B/frame, coder overhead ratio {result['overhead_ratio']}")
    if args.json:
        print_json_line(result)
    return 0
