"""``splitinf-edge``: serve the tail of a split detector to many devices over ZeroMQ.

    splitinf-edge --bind tcp://*:5555                 # defaults shared with splitinf-device
    splitinf-edge --bind tcp://*:5555 --auth keys/    # only devices whose public keys are in keys/clients

Ctrl-C or SIGTERM stops it cleanly and prints a summary (per-device counters, errors, batch sizes).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from splitinf.runtime.edge import EdgeServer
from splitinf.runtime.setup import ModelSetup, add_model_arguments, add_threads_argument, use_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default="tcp://*:5555", help="ZeroMQ endpoint to bind (default tcp://*:5555)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--max-batch", type=int, default=8, help="largest micro-batch across devices (default 8)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="longest wait for a batch to fill after its first frame (default 5 ms)")
    parser.add_argument("--auth", default=None, metavar="DIR", help="CurveZMQ: serve only the devices whose public "
                        "keys are in DIR/clients, with the edge key DIR/edge.key_secret (see `splitinf keys`)")
    parser.add_argument("--name", default=None, help="name reported to devices")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="the detector's own score threshold (default: the model's; devices filter further)")
    parser.add_argument("--summary-json", default=None, help="also write the end-of-run summary here")
    add_threads_argument(parser)
    add_model_arguments(parser)


def main(args: argparse.Namespace) -> int:
    threads = use_threads(args.threads)
    setup = ModelSetup.from_args(args)
    if args.score_threshold is not None:
        setup.detector.set_score_threshold(args.score_threshold)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available here (use --device cpu)")
    server = EdgeServer(setup, args.bind, device=args.device, max_batch=args.max_batch,
                        max_wait_ms=args.max_wait_ms, auth_dir=args.auth, name=args.name)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop.set())
    print(f"splitinf-edge: {setup.describe()} on {args.bind} ({args.device}, batches ≤ {args.max_batch}, "
          f"{threads} threads)",
          file=sys.stderr, flush=True)
    server.serve()
    summary = {**server.summary(), "threads": threads}
    print(f"splitinf-edge stopped: {summary['messages']} messages, {summary['batched_frames']} frames in "
          f"{summary['batches']} batches (mean {summary['mean_batch']}), {summary['malformed']} malformed, "
          f"{summary['refused_handshakes']} refused, {summary['rejected_connections']} rejected connections",
          file=sys.stderr)
    for identity, device in summary["devices"].items():
        print(f"  {device['name']} [{identity[:8]}]: {device['frames']} frames, {device['results']} results, "
              f"{device['errors']} errors, {device['bytes_in']} B in", file=sys.stderr)
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(summary, f, indent=1)
    print(json.dumps(summary), flush=True)
    return 0
