"""``splitinf-edge``: serve the tail of a split detector to many devices over ZeroMQ.

    splitinf-edge --bind tcp://*:5555                 # defaults shared with splitinf-device
    splitinf-edge --bind tcp://*:5555 --auth keys/    # only devices whose public keys are in keys/clients

Ctrl-C or SIGTERM stops it cleanly, logs a summary (per-device counters, errors, batch sizes) and prints
it as one JSON line last; SIGUSR1 logs it (and writes --summary-json) while it keeps serving.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from splitinf.options import add_log_level_argument, deprecated_alias, setup_logging
from splitinf.protocol import EDGE_LIVENESS, HEARTBEAT_MS
from splitinf.runtime import transport
from splitinf.runtime.edge import EdgeServer
from splitinf.runtime.metrics import EdgeMetrics, MetricsServer
from splitinf.runtime.ray_engine import RayOptions, RayTail
from splitinf.runtime.setup import ModelSetup, add_model_arguments, add_threads_argument, bottleneck_for, use_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default="tcp://*:5555", help="ZeroMQ endpoint to bind (default tcp://*:5555)")
    torch_device = parser.add_argument("--torch-device", default="cpu", choices=("cpu", "cuda"),
                                       help="where the tail runs (default %(default)s)")
    deprecated_alias(parser, torch_device, "--device")
    parser.add_argument("--max-batch", type=int, default=8, help="largest micro-batch across devices (default 8)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0,
                        help="longest wait for a batch to fill after its first frame (default 5 ms)")
    parser.add_argument("--max-queue", type=int, default=32, metavar="N",
                        help="frames waiting for the tail at most; more are answered 'overloaded' at once, so that "
                             "devices back off or compute locally (default %(default)s)")
    parser.add_argument("--heartbeat-ms", type=int, default=HEARTBEAT_MS,
                        help=f"heartbeat period devices adopt; a device silent for {EDGE_LIVENESS} periods is "
                             "forgotten (default %(default)s)")
    parser.add_argument("--auth", default=None, metavar="DIR", help="CurveZMQ: serve only the devices whose public "
                        "keys are in DIR/clients, with the edge key DIR/edge.key_secret (see `splitinf keys`)")
    parser.add_argument("--name", default=None, help="name reported to devices")
    parser.add_argument("--score-threshold", type=float, default=None,
                        help="the detector's own score threshold (default: the model's; devices filter further)")
    parser.add_argument("--summary-json", default=None, help="also write the end-of-run summary here")
    parser.add_argument("--ready-file", default=None, metavar="FILE",
                        help="once serving, write {address, pid} here as JSON (a --bind port of * becomes the one "
                             "bound)")
    parser.add_argument("--engine", choices=("inprocess", "ray"), default="inprocess",
                        help="where the tail runs: in this process (default inprocess), or on Ray Serve replicas "
                             "behind this front (pip install 'splitinf[ray]')")
    parser.add_argument("--replicas", type=int, default=1, help="--engine ray: tail replicas (default 1)")
    parser.add_argument("--cpus-per-replica", type=float, default=1.0,
                        help="--engine ray: CPUs Ray reserves per replica (default 1)")
    parser.add_argument("--gpus-per-replica", type=float, default=0.0,
                        help="--engine ray: GPUs per replica, fractions allowed (default 0; > 0 runs it on CUDA)")
    parser.add_argument("--ray-address", default=None,
                        help="--engine ray: the Ray cluster to join ('auto' or an address; default: start a local "
                             "one, stopped with the edge)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics and a health check at /healthz "
                             "(200 once the tail is loaded); 0 picks a free port (in --ready-file). Default: off")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="interface of --metrics-port (default 127.0.0.1; 0.0.0.0 for a scraper elsewhere)")
    add_log_level_argument(parser)
    add_threads_argument(parser)
    add_model_arguments(parser)


def main(args: argparse.Namespace) -> int:
    log = setup_logging("splitinf-edge", args.log_level)
    threads = use_threads(args.threads)
    metrics = metrics_server = None
    if args.metrics_port is not None:  # up before the model loads: /healthz says 503 until the tail serves
        metrics = EdgeMetrics()
        metrics_server = MetricsServer(metrics, args.metrics_host, args.metrics_port)
        log.info("metrics on %s/metrics, health on %s/healthz", metrics_server.address, metrics_server.address)
    try:
        return serve(args, log, threads, metrics, metrics_server)
    finally:
        if metrics_server:
            metrics_server.close()


def serve(args: argparse.Namespace, log, threads: int, metrics: EdgeMetrics | None,
          metrics_server: MetricsServer | None) -> int:
    setup = ModelSetup.from_args(args)
    if args.score_threshold is not None:
        setup.detector.set_score_threshold(args.score_threshold)
    if args.torch_device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--torch-device cuda: no CUDA device is available here (use --torch-device cpu)")
    remote = ray_tail(args, threads) if args.engine == "ray" else None
    try:
        server = EdgeServer(setup, args.bind, device=args.torch_device, max_batch=args.max_batch,
                            max_wait_ms=args.max_wait_ms, max_queue=args.max_queue, heartbeat_ms=args.heartbeat_ms,
                            auth_dir=args.auth, name=args.name, metrics=metrics, remote=remote)
        summary = run_server(server, setup, args, log, threads, metrics_server)
    finally:
        if remote is not None:
            remote.close()
    print(json.dumps(summary), flush=True)  # last, after whatever Ray printed while stopping
    return 0


def ray_tail(args: argparse.Namespace, threads: int) -> RayTail:
    """The Ray Serve deployment of the tail, with this edge's model and batching."""
    options = RayOptions(args.replicas, args.cpus_per_replica, args.gpus_per_replica, threads, args.ray_address)
    model = {"model": args.model, "weights": args.weights, "split": args.split,
             "bottleneck": bottleneck_for(args.model, args.bottleneck), "codec": args.codec}
    device = "cuda" if args.gpus_per_replica > 0 else "cpu"
    return RayTail(model, options, max_batch=args.max_batch, device=device, workers=args.max_queue)


def run_server(server: EdgeServer, setup: ModelSetup, args: argparse.Namespace, log, threads: int,
               metrics_server: MetricsServer | None) -> dict:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: report(server, threads, log, args.summary_json))
    address = transport.bound_address(server.endpoint.socket)
    log.info("%s on %s (%s, batches ≤ %d, %d threads)", setup.describe(), address, args.torch_device,
             args.max_batch, threads)
    if args.ready_file:
        partial = Path(args.ready_file + ".partial")
        ready = {"address": address, "pid": os.getpid()}
        if metrics_server:
            ready["metrics"] = metrics_server.address
        partial.write_text(json.dumps(ready))
        partial.replace(args.ready_file)
    server.serve()
    return report(server, threads, log, args.summary_json, "stopped")


def report(server: EdgeServer, threads: int, log, path: str | None, what: str = "serving") -> dict:
    """Log the counters (and write them to ``path``): at the end, or on SIGUSR1 while serving."""
    summary = {**server.summary(), "threads": threads}
    log.info("%s: %d messages, %d frames in %d batches (mean %s), %d malformed, %d refused, %d rejected "
             "connections, %d overloaded; %d devices live, %d forgotten", what, summary["messages"],
             summary["batched_frames"], summary["batches"], summary["mean_batch"], summary["malformed"],
             summary["refused_handshakes"], summary["rejected_connections"], summary["overloaded"],
             summary["peers"], summary["expired_peers"])
    for identity, device in summary["devices"].items():
        log.info("  %s [%s]: %d frames, %d results, %d errors, %d overloaded, %d B in", device["name"],
                 identity[:8], device["frames"], device["results"], device["errors"], device["overloaded"],
                 device["bytes_in"])
    if path:
        partial = Path(path + ".partial")
        partial.write_text(json.dumps(summary, indent=1))
        partial.replace(path)  # whole or not at all, for a reader polling it
    return summary
