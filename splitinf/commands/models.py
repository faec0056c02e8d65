"""``splitinf models``: the zoo, its split points, and (``--sizes``) why a learned bottleneck is needed;
``--checkpoints``: the trained bottlenecks and prefilters found by name (shipped, or in $SPLITINF_HOME),
each with the command that trained it."""

from __future__ import annotations

import argparse

import torch

from splitinf.data import PERSON_VIDEO, jpeg_bytes, resize_rgb, video_frames
from splitinf.models import build_detector, detector_names, detector_spec
from splitinf.models.compute import default_input_macs, parameter_count, profile_splits
from splitinf.report import format_table, print_json_line
from splitinf.weights.checkpoints import DEFAULT_BOTTLENECK, DEFAULT_PREFILTER, checkpoint_folders


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", action="store_true",
                        help="per split point: feature shape, float32/int8 bytes, head share of the compute, "
                             "next to the JPEG (q90) of the same frame")
    parser.add_argument("--model", action="append", help="only this detector (repeatable; default: all)")
    parser.add_argument("--source", default=PERSON_VIDEO,
                        help="video whose first frame is measured by --sizes (default %(default)s)")
    parser.add_argument("--checkpoints", action="store_true",
                        help="list the checkpoints usable by name (shipped with the package or in "
                             "$SPLITINF_HOME/checkpoints) with their configuration and training command")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line last")


def list_checkpoints(as_json: bool) -> int:
    entries = []
    for folder in checkpoint_folders():
        for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
            try:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                kind = {"splitinf-prefilter": "prefilter"}.get(saved["format"], "bottleneck")
                config, command = saved["config"], saved.get("metadata", {}).get("command", "")
            except Exception as error:  # any unreadable file: a listing names it and goes on
                entries.append({"name": path.name, "folder": str(folder), "error": f"unreadable: {error}"})
                continue
            entries.append({"name": path.name, "folder": str(folder), "kind": kind,
                            "default": path.name in (DEFAULT_BOTTLENECK, DEFAULT_PREFILTER), "config": config,
                            "command": command})
    print(format_table(["name", "kind", "default", "configuration", "folder"],
                       [(e["name"], e.get("kind", "?"), "yes" if e.get("default") else "", e.get("error") or " ".join(
                           f"{k}={v}" for k, v in e["config"].items() if k != "model"), e["folder"])
                        for e in entries]))
    if as_json:
        print_json_line({"checkpoints": entries})
    return 0


def resized_jpeg_bytes(image: torch.Tensor, size: tuple[int, int], quality: int) -> int:
    """JPEG size of ``image`` resized (area filter) to ``size`` = (height, width)."""
    return len(jpeg_bytes(resize_rgb(image, size), quality))


def main(args: argparse.Namespace) -> int:
    if args.checkpoints:
        return list_checkpoints(args.json)
    names = args.model or detector_names()
    listing = []
    rows = []
    frame = next(video_frames(args.source, max_frames=1)) if args.sizes else None
    for name in names:
        detector = build_detector(name)
        entry = {
            "name": name,
            "description": detector_spec(name).description,
            "input_size": list(detector.input_size),
            "params": parameter_count(detector),
            "macs": default_input_macs(detector),
            "split_points": [{"key": p.key, "stride": p.stride, "description": p.description}
                             for p in detector.split_points],
        }
        if frame is not None:
            _, geometries = detector.preprocess([frame])
            jpeg_original = len(jpeg_bytes(frame, 90))
            jpeg_input = resized_jpeg_bytes(frame, geometries[0].resized, 90)
            entry["jpeg_q90_bytes"] = {"original": jpeg_original, "input": jpeg_input}
            for profile in profile_splits(detector, frame):
                entry_split = next(s for s in entry["split_points"] if s["key"] == profile.key)
                entry_split.update(shape=list(profile.shape), float32_bytes=profile.float32_bytes,
                                   int8_bytes=profile.int8_bytes, head_macs=profile.head_macs,
                                   head_share=round(profile.head_share, 4))
                rows.append((name, profile.key, "x".join(map(str, profile.shape)),
                             f"{profile.float32_bytes / 1024:.1f}", f"{profile.int8_bytes / 1024:.1f}",
                             f"{100 * profile.head_share:.1f}%", f"{jpeg_original / 1024:.1f}",
                             f"{jpeg_input / 1024:.1f}"))
        listing.append(entry)

    if frame is not None:
        h, w = frame.shape[-2:]
        print(f"one {w}x{h} frame of {args.source}")
        print(format_table(["model", "split", "shape", "f32 KB", "int8 KB", "head MACs",
                            "JPEG90 orig KB", "JPEG90 input KB"], rows))
    else:
        print(format_table(
            ["model", "params", "GMACs", "input", "split points"],
            [(e["name"], f"{e['params'] / 1e6:.2f}M", f"{e['macs'] / 1e9:.3f}",
              "x".join(map(str, e["input_size"])), " ".join(s["key"] for s in e["split_points"]))
             for e in listing]))
    if args.json:
        print_json_line({"models": listing})
    return 0
