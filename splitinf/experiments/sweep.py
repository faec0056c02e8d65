"""``splitinf sweep``: capture-to-output latency against uplink bandwidth, for local, JPEG and split, on
constant-rate links and on every Mahimahi trace in ``../shared/data/traces`` — the reference paper's
delay-vs-data-rate figure.

Two engines. The discrete-event engine replays the device's real-time policy over netsim's link models for
every point in seconds, from per-frame costs measured here (device-side times scaled by
``--device-slowdown``). The relay engine runs real ``splitinf-edge``, ``splitinf netsim relay`` and
``splitinf-device`` processes at a few points and checks that the simulator, fed the compute times that run
measured, predicts its p50 latency within 10 %. Output: CSV, PNG (one line per mode, crossovers marked)
and a markdown table in ``--out``. ``--costs FILE`` replays saved per-frame costs (``splitinf bench adaptive
--save-costs``) instead of measuring them: the discrete-event points are then exact on any machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

from splitinf.data import PERSON_VIDEO
from splitinf.experiments.costs import add_engine_arguments, exported_for, load_costs, measure_costs, with_edge_costs
from splitinf.experiments.pipeline_sim import ModeCost, SimResult, simulate
from splitinf.models import build_detector
from splitinf.netsim.channel import Direction
from splitinf.netsim.cli import parse_link, trace_folders
from splitinf.netsim.process import RelayProcess
from splitinf.options import deprecated_alias
from splitinf.report import format_table, markdown_table, print_json_line
from splitinf.runtime.processes import EdgeProcess, half_the_cores, run_device
from splitinf.runtime.setup import DEFAULT_MODEL
from splitinf.weights.checkpoints import default_bottleneck, find_checkpoint

RATES_MBIT = (0.25, 0.5, 1, 2, 5, 10, 20, 50)
DOWNLINK = "20mbit"


def shared_traces() -> list[str]:
    for folder in trace_folders():
        if folder.is_dir():
            return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".up", ".down"))
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/sweep", help="output folder (default out/sweep)")
    bottleneck = parser.add_argument("--bottleneck", action="append", default=None, metavar="CKPT",
                                     help="bottleneck(s) for split mode, a file or a name (repeatable; default: "
                                          "the shipped one)")
    deprecated_alias(parser, bottleneck, "--checkpoint")
    parser.add_argument("--frames", type=int, default=600, help="simulated frames per point (default 600 = 60 s)")
    parser.add_argument("--fps", type=float, default=10.0, help="camera rate (default 10, the shared video)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="one-way propagation delay (default 20)")
    parser.add_argument("--device-slowdown", default="auto", metavar="X|auto",
                        help="scale device compute by X (default auto: the whole model takes 160 ms, a Raspberry "
                             "Pi 4)")
    parser.add_argument("--costs", metavar="FILE",
                        help="replay per-frame costs saved by 'splitinf bench adaptive --save-costs' instead of "
                             "measuring them (default: measure on this machine)")
    parser.add_argument("--relay-points", type=int, default=3,
                        help="real edge + relay + device runs that check the simulator (default 3; 0: none)")
    parser.add_argument("--relay-frames", type=int, default=80, help="frames per real run (default 80)")
    add_engine_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def link(spec: str, delay_ms: float) -> Direction:
    return Direction(parse_link(spec), delay_ms=delay_ms)


def run_point(cost: ModeCost, uplink: str, args: argparse.Namespace) -> SimResult:
    return simulate({cost.name: cost}, cost.name, args.frames, args.fps, link(uplink, args.delay_ms),
                    link(DOWNLINK, args.delay_ms), name=cost.name)


def crossovers(rows: list[dict], modes: list[str]) -> dict[str, float | None]:
    """Highest constant rate where split beats JPEG, highest where local beats every offload, and lowest
    where JPEG beats local (p50)."""
    constant = [r for r in rows if r["link_kind"] == "constant"]
    by_rate: dict[float, dict[str, float]] = {}
    for r in constant:
        by_rate.setdefault(r["mbit"], {})[r["mode"]] = r["p50_ms"]
    splits = [m for m in modes if m.startswith("split")]
    split_beats_jpeg = [rate for rate, p in sorted(by_rate.items())
                        if splits and min(p[s] for s in splits) < p["jpeg"]]
    local_best = [rate for rate, p in sorted(by_rate.items())
                  if p["local"] < min(v for k, v in p.items() if k != "local")]
    jpeg_beats_local = [rate for rate, p in sorted(by_rate.items()) if p["jpeg"] < p["local"]]
    return {"split_beats_jpeg_up_to_mbit": max(split_beats_jpeg) if split_beats_jpeg else None,
            "local_beats_offload_below_mbit": max(local_best) if local_best else None,
            "jpeg_beats_local_from_mbit": min(jpeg_beats_local) if jpeg_beats_local else None}


def validate_with_relay(args: argparse.Namespace, checkpoint: str | None, points: list[tuple[str, str]]) -> list[dict]:
    """Real processes at a few (mode, uplink) points against the simulator fed the run's own stage times.
    Edge and device get half the cores each: at torch's default, on two cores, the edge's full model took the
    whole frame period, where the simulator (one frame at a time, no batching) queues or not by a hair
    (lab/RESULTS.md, relay check)."""
    flags = ["--model", DEFAULT_MODEL, "--bottleneck", checkpoint or "none", *half_the_cores()]
    device_flags = ["--engine", args.engine] + (["--exported", str(args.exported)] if args.exported else [])
    out = []
    with EdgeProcess(flags) as edge:
        for mode, uplink in points:
            relay_args = ["--uplink", uplink, "--downlink", DOWNLINK, "--delay-ms", str(args.delay_ms)]
            with RelayProcess(edge.address.removeprefix("tcp://"), relay_args) as relay, \
                    tempfile.TemporaryDirectory() as folder:
                summary, frames = run_device(f"tcp://{relay.address}", PERSON_VIDEO, Path(folder),
                                             [*flags, *device_flags, "--mode", mode, "--jpeg-size", "300x300",
                                              "--frames", str(args.relay_frames), "--fps", str(args.fps),
                                              "--deadline-ms", "5000"])
                first_capture_ms = relay.link_ms(min(f["captured_s"] for f in frames))  # where the run met the trace
            stage = {k: v["p50"] for k, v in summary["latency_ms"].items()}
            device = tuple(sum(f["stages_ms"].get(k, 0.0) for k in ("head", "encode", "local"))
                           for f in frames if f["outcome"] in ("edge", "local"))  # this run's own spread
            cost = ModeCost(mode, stage.get("head", 0) + stage.get("encode", 0) + stage.get("local", 0),
                            int(summary["bytes_per_frame"]) if mode != "local" else 0,
                            stage.get("decode", 0) + stage.get("tail", 0), int(summary["downlink_bytes_per_frame"]),
                            device_samples_ms=device)
            sim = simulate({mode: cost}, mode, args.relay_frames, args.fps, link(uplink, args.delay_ms),
                           link(DOWNLINK, args.delay_ms), deadline_ms=5000, start_ms=first_capture_ms)
            real = stage.get("total", float("nan"))
            out.append({"mode": mode, "uplink": uplink, "real_p50_ms": round(real, 1),
                        "sim_p50_ms": round(sim.percentile(50), 1),
                        "error": round(abs(sim.percentile(50) - real) / real, 4)})
            print(f"relay check {mode} @ {uplink}: real p50 {real:.0f} ms, simulated {sim.percentile(50):.0f} ms",
                  flush=True)
    return out


def plot(rows: list[dict], modes: list[str], marks: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for mode in modes:
        points = sorted((r["mbit"], r["p50_ms"]) for r in rows if r["mode"] == mode and r["link_kind"] == "constant")
        ax.plot(*zip(*points), marker="o", label=f"{mode} (p50)")
    at_rate: dict[float, list[str]] = {}  # crossovers at the same rate share one line and one label
    for label, rate in marks.items():
        if rate is not None:
            at_rate.setdefault(rate, []).append(label.replace("_", " "))
    for rate, labels in at_rate.items():
        ax.axvline(rate, color="gray", linestyle=":")
        ax.text(rate, ax.get_ylim()[1] * 0.8, "\n".join(labels), rotation=90, fontsize=7, va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("uplink bandwidth (Mbit/s, constant)")
    ax.set_ylabel("capture-to-output latency, p50 (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = [str(find_checkpoint(c)) for c in args.bottleneck] if args.bottleneck is not None \
        else [str(default_bottleneck())]
    if args.costs:
        costs, factor = load_costs(Path(args.costs))
    else:
        detector = build_detector(DEFAULT_MODEL, weights="pretrained")
        costs, factor = measure_costs(detector, checkpoints, slowdown=args.device_slowdown, engine=args.engine,
                                      exported=exported_for(args.engine, args.exported, DEFAULT_MODEL, checkpoints))
    edge = "this machine"
    if args.edge_costs:
        costs, edge = with_edge_costs(costs, Path(args.edge_costs))
    modes = list(costs)
    print(f"edge: {edge}; per-frame costs (device ×{factor:.2f}): " + "; ".join(
        f"{c.name}: device {c.device_ms:.0f} ms, {c.uplink_bytes} B up, edge {c.edge_ms:.0f} ms"
        for c in costs.values()))
    links = [(f"{r}mbit", "constant", r) for r in RATES_MBIT] + [(t, "trace", None) for t in shared_traces()]
    rows = []
    for spec, kind, mbit in links:
        for cost in costs.values():
            sim = run_point(cost, spec, args)
            rows.append({"link": spec, "link_kind": kind, "mbit": mbit, "mode": cost.name,
                         "p50_ms": round(sim.percentile(50), 1), "p95_ms": round(sim.percentile(95), 1),
                         "fps": round(sim.fps(args.frames * 1000 / args.fps), 2),
                         "kb_per_frame": round(cost.uplink_bytes / 1024, 2)})
    marks = crossovers(rows, modes)
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    headers = ["link", "mode", "p50_ms", "p95_ms", "fps", "kb_per_frame"]
    (out / "sweep.md").write_text(markdown_table(headers, [[r[h] for h in headers] for r in rows]) + "\n")
    plot(rows, modes, marks, out / "latency_vs_bandwidth.png")
    relay = []
    if args.relay_points:
        split_mode = "split" if checkpoints else None
        points = [(split_mode or "jpeg", "1mbit"), ("jpeg", "5mbit"),
                  (split_mode or "local", "ATT-LTE-driving-2016.up")]
        relay = validate_with_relay(args, checkpoints[0] if checkpoints else None, points[: args.relay_points])
    (out / "relay_check.json").write_text(json.dumps(relay, indent=1) + "\n")
    print(format_table(headers, [[r[h] for h in headers] for r in rows if r["link_kind"] == "constant"]))
    print(f"crossovers: {marks}; device slowdown ×{factor:.2f}; wrote {out}/sweep.csv, sweep.md, "
          "latency_vs_bandwidth.png, relay_check.json")
    if args.json:
        print_json_line({"out": str(out), "slowdown": round(factor, 3), "crossovers": marks, "relay_check": relay,
                         "points": len(rows), "edge": edge, "edge_ms": {m: round(c.edge_ms, 2)
                                                                         for m, c in costs.items() if not c.local}})
    return 0
