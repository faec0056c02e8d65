"""``splitinf-device``: run the head on a camera (or a video) and get detections from an edge.

    splitinf-device --connect tcp://EDGE:5555 --source video.mp4          # split mode, shared defaults
    splitinf-device --mode jpeg --jpeg-quality 90 --connect ... --source 0
    splitinf-device --mode local --source frames/                         # the whole model on the device

The device runs the exported int8 graphs (``splitinf export``; no torch needed) where an export of the asked
model and head exists, else eager torch; ``--engine`` chooses.

Writes one JSON line per frame (``--output``), an optional annotated video, and an end-of-run summary whose
five counts (edge, local, filtered, stale, failed) add up to the frames captured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
from pathlib import Path

from splitinf.board.manifest import MANIFEST, ExportError, check_made_for, default_folder
from splitinf.modes import AUTO, AUTO_MODES, DEVICE_MODES, SPLIT
from splitinf.options import deprecated_alias
from splitinf.runtime.device import DeviceClient, DeviceEngine
from splitinf.runtime.setup import add_model_arguments, add_threads_argument, bottleneck_for
from splitinf.runtime.sinks import AnnotatedVideoSink, JsonLinesSink
from splitinf.runtime.sources import FrameSource
from splitinf.weights.checkpoints import find_checkpoint

ENGINES = ("torch", "onnx-int8", "onnx-fp32")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", default=None,
                        help="edge (or relay) endpoint, e.g. tcp://127.0.0.1:5555; several, comma-separated: the "
                             "device fails over to the next when one stops answering")
    parser.add_argument("--source", required=True, help="video file, camera index, image folder or stream URL")
    parser.add_argument("--rate", type=int, default=None, metavar="R",
                        help="send at rate R of a variable-rate bottleneck (0 = fewest bytes; default: its default "
                             "rate); the edge decodes any rate")
    parser.add_argument("--mode", default="split", choices=DEVICE_MODES,
                        help="split (default), jpeg, local, or auto: per frame the mode that keeps the 95th-percentile "
                             "latency of this frame and the next five lowest, from the measured uplink rates and "
                             "compute, falling back to local in an outage")
    parser.add_argument("--auto-modes", default=",".join(AUTO_MODES), metavar="LIST",
                        help="the modes --mode auto chooses from (default local,jpeg,split; local is required). "
                             "Keep only those accurate enough for you: the README gives each one's AP. With a "
                             "variable-rate bottleneck, split stands for its rates within --max-ap-drop")
    parser.add_argument("--max-ap-drop", type=float, default=1.0, metavar="POINTS",
                        help="--mode auto with a variable-rate bottleneck: only its rates (and JPEG) whose AP, as "
                             "recorded in its metadata by splitinf bench rate --record, is within POINTS of the "
                             "unsplit model's (default 1.0; no record: every rate)")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality in jpeg mode (default 90)")
    parser.add_argument("--jpeg-size", default=None, metavar="HxW",
                        help="resize before JPEG encoding, e.g. 300x300 (default: send the frame as captured)")
    frames = parser.add_argument("--frames", type=int, default=None, metavar="N",
                                 help="stop after N frames (default: at the end of the source)")
    deprecated_alias(parser, frames, "--max-frames")
    parser.add_argument("--start-frame", type=int, default=0, help="skip the first N frames of the source")
    slowdown = parser.add_argument("--device-slowdown", type=float, default=1.0, metavar="X",
                                   help="emulate a slower board: device compute takes X times longer (default 1)")
    deprecated_alias(parser, slowdown, "--slowdown")
    parser.add_argument("--fps", type=float, default=None, help="pace the source at this rate (default: its own)")
    parser.add_argument("--no-realtime", action="store_true", help="read a video file as fast as it decodes")
    parser.add_argument("--window", type=int, default=2, help="frames in flight at most (default 2)")
    parser.add_argument("--deadline-ms", type=float, default=2000.0,
                        help="a frame without a result this long after capture is dropped as stale (default 2000)")
    parser.add_argument("--fallback", default="none", choices=("none", "local"),
                        help="run the whole model locally while the edge is unreachable (default none)")
    parser.add_argument("--min-score", type=float, default=0.05,
                        help="detections scored below this are dropped from the output (default 0.05)")
    parser.add_argument("--prefilter", default="off", metavar="off|CKPT",
                        help="drop frames with nothing of interest before they cost bytes (default off)")
    parser.add_argument("--prefilter-threshold", type=float, default=None,
                        help="override the prefilter's trained decision threshold")
    parser.add_argument("--engine", default=None, choices=ENGINES,
                        help="what runs the device half: the exported graphs at int8 or fp32 on ONNX Runtime "
                             "(splitinf export; what a board runs) or eager torch (default: onnx-int8 where an "
                             "export of this model and head exists, else torch)")
    parser.add_argument("--exported", default=None, metavar="DIR",
                        help="the exported engine's folder (default: $SPLITINF_HOME/exported/MODEL--HEAD, where "
                             "splitinf export writes)")
    parser.add_argument("--key", default=None, help="CurveZMQ: this device's secret key file")
    parser.add_argument("--server-key", default=None, help="CurveZMQ: the edge's public key file")
    parser.add_argument("--name", default=None, help="name reported to the edge")
    parser.add_argument("--output", default=None, help="JSON lines of detections per frame ('-': stdout)")
    parser.add_argument("--summary-json", default=None, help="write the end-of-run summary here")
    parser.add_argument("--video-out", default=None, help="write an annotated MP4 of the frames with results")
    add_threads_argument(parser)
    add_model_arguments(parser)


def parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    height, sep, width = text.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit() or not int(height) or not int(width):
        raise ValueError(f"cannot read size {text!r}: expected HEIGHTxWIDTH, e.g. 300x300")
    return int(height), int(width)


def asked_for(args: argparse.Namespace) -> dict:
    """The model and head the options name, without loading anything: ``model`` and ``bottleneck`` or ``split``."""
    bottleneck = bottleneck_for(args.model, args.bottleneck)
    return {"model": args.model, **({"bottleneck": Path(bottleneck).name} if bottleneck else {"split": args.split})}


def build_engine(args: argparse.Namespace) -> tuple[DeviceEngine, int]:
    """The engine ``--engine`` names (or the default one) and the threads it computes with."""
    asked = asked_for(args)
    folder = Path(args.exported) if args.exported else default_folder(asked)
    exported = (folder / MANIFEST).is_file() or args.exported
    choice = args.engine or ("onnx-int8" if exported and args.rate is None else "torch")
    if choice == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ExportError(f"torch is not installed (a board install) and there is no exported engine in {folder}: "
                              "run `splitinf export` where the full install is, copy its folder here and pass "
                              "--exported DIR") from None
        from splitinf.head import load_prefilter
        from splitinf.head.modes import torch_engine
        from splitinf.runtime.setup import ModelSetup, use_threads

        threads = use_threads(args.threads)
        setup = ModelSetup.from_args(args).at_rate(args.rate)
        prefilter = None
        if args.prefilter != "off":
            prefilter = load_prefilter(find_checkpoint(args.prefilter), setup.detector.name, args.prefilter_threshold)
        return torch_engine(setup, prefilter), threads
    if args.rate is not None:
        raise ExportError(f"--rate {args.rate}: the exported engines send at one rate; run a variable-rate "
                          "bottleneck with --engine torch")
    from splitinf.board.engine import ExportedEngine

    engine = ExportedEngine(folder, choice.removeprefix("onnx-"), threads=args.threads,
                            prefilter=args.prefilter != "off", prefilter_threshold=args.prefilter_threshold)
    check_made_for(engine.manifest, folder, asked)
    exported_prefilter = (engine.manifest.prefilter or {}).get("name")
    if args.prefilter != "off" and Path(find_checkpoint(args.prefilter)).name != exported_prefilter:
        raise ExportError(f"the engine exported in {folder} carries the prefilter {exported_prefilter}, not "
                          f"{args.prefilter}: export it with --prefilter {args.prefilter}")
    return engine, args.threads or os.cpu_count() or 1


def auto_modes(args: argparse.Namespace, engine: DeviceEngine) -> tuple[str, ...]:
    """``--auto-modes``, with ``split`` standing for every rate of a variable-rate bottleneck that (like
    JPEG) keeps within ``--max-ap-drop`` of the unsplit model by its recorded evaluation."""
    modes = tuple(args.auto_modes.split(","))
    bottleneck = getattr(engine, "bottleneck", None)
    if args.mode != AUTO or SPLIT not in modes or bottleneck is None or bottleneck.config.rates == 1:
        return modes
    from splitinf.bottleneck.layers import accuracy_drops  # a variable-rate bottleneck runs on torch

    path = str(find_checkpoint(bottleneck_for(args.model, args.bottleneck)))
    drops = accuracy_drops([path], args.jpeg_quality, "input" if args.jpeg_size else "original") or {}
    names = {name: name for name in modes if name != SPLIT}  # operating point → its name in the record
    names |= {f"{SPLIT}@{r}": f"split:{Path(path).stem}@{r}" for r in range(bottleneck.config.rates)}
    # as in splitinf bench adaptive: with a record, a point it has no AP for is left out
    kept = tuple(m for m, key in names.items() if not drops or drops.get(key, math.inf) <= args.max_ap_drop)
    print(f"splitinf-device: auto chooses among {', '.join(kept)}" + (
        f" (within {args.max_ap_drop} AP points by {Path(path).name}'s evaluation)" if drops else
        " (no evaluation recorded: every rate)"),
        file=sys.stderr, flush=True)
    return kept


def main(args: argparse.Namespace) -> int:
    engine, threads = build_engine(args)
    source = FrameSource(args.source, realtime=not args.no_realtime, fps=args.fps, start=args.start_frame)
    with contextlib.ExitStack() as stack:
        sinks = []
        if args.output:
            stream = sys.stdout if args.output == "-" else stack.enter_context(open(args.output, "w"))
            sinks.append(JsonLinesSink(stream))
        if args.video_out:
            video = AnnotatedVideoSink(args.video_out, source.fps)
            stack.callback(video.close)
            sinks.append(video)
        sink = (lambda outcome, record: [s(outcome, record) for s in sinks]) if sinks else None
        client = DeviceClient(engine, args.connect, mode=args.mode, jpeg_quality=args.jpeg_quality,
                              jpeg_size=parse_size(args.jpeg_size),
                              window=args.window, deadline_ms=args.deadline_ms,
                              fallback_local=args.fallback == "local", min_score=args.min_score, name=args.name,
                              key=args.key, server_key=args.server_key, on_outcome=sink, slowdown=args.device_slowdown,
                              auto_modes=auto_modes(args, engine))
        print(f"splitinf-device: {engine.describe()}, mode {args.mode}, source {args.source}, {threads} threads",
              file=sys.stderr, flush=True)
        try:
            summary = client.run(source, args.frames)
        finally:
            source.close()
    summary["threads"] = threads
    summary["machine"] = platform.machine()  # what ran the device half: x86_64, aarch64 (a board, or emulated)
    counts = summary["counts"]
    total = summary["latency_ms"].get("total", {})
    print(f"splitinf-device: {summary['frames']} frames: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f"; latency p50 {total.get('p50', '-')} ms, p95 {total.get('p95', '-')} ms; "
          f"{summary['bytes_per_frame'] / 1024:.2f} KB/frame up; {summary['fps']} fps", file=sys.stderr)
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=1)
    if args.output != "-":
        print(json.dumps(summary), flush=True)
    return 0
