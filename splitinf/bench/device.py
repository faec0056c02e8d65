"""``splitinf bench device``: what a board's device half costs and loses, exported against eager torch.

Same process, same frames, one thread for every engine: eager fp32 torch, the exported graphs on ONNX Runtime
at fp32 and int8 (:mod:`splitinf.board.engine`). Times are the device half of ``split`` per frame
(preprocessing, head, bottleneck encoder, entropy coding; the engines called in turn on each frame so that
machine noise hits all), and of ``local``. Accuracy is person AP on the 482 COCO images of the all-union set,
each frame's real bitstream decoded and finished by the edge's tail (``local``: the exported whole detector).

    splitinf bench device --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from splitinf.board.engine import ExportedEngine
from splitinf.board.manifest import MANIFEST, ExportError, default_folder
from splitinf.commands.export import export_with_defaults
from splitinf.data import ALL_UNION, PERSON_VIDEO, coco_images, resolve, video_frames
from splitinf.evaluation.harness import evaluate_coco
from splitinf.evaluation.pipelines import local, split
from splitinf.head.modes import torch_engine
from splitinf.modes import LOCAL, SPLIT
from splitinf.report import format_table, print_json_line
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.weights.checkpoints import default_bottleneck

ENGINES = ("torch", "fp32", "int8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exported", default=None, metavar="DIR",
                        help="an exported engine of the shipped bottleneck (default: the one splitinf-device uses; "
                             "exported into a scratch folder if there is none)")
    parser.add_argument("--frames", type=int, default=60, metavar="N", help="video frames timed (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the timed frames (default 3)")
    parser.add_argument("--images", type=int, default=None, metavar="N",
                        help="score AP on the first N COCO images only (default: all 482)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def time_halves(halves: dict[str, object], frames: list[np.ndarray], rounds: int) -> dict[str, float]:
    """Median ms per frame of each half; on every frame the halves run in a rotating order."""
    times: dict[str, list[float]] = {name: [] for name in halves}
    names = list(halves)
    for half in halves.values():
        half(frames[0])  # first calls allocate
    for r in range(rounds):
        for i, frame in enumerate(frames):
            for name in names[(r + i) % len(names):] + names[: (r + i) % len(names)]:
                start = time.perf_counter_ns()
                halves[name](frame)
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    return {name: float(np.median(v)) for name, v in times.items()}


def exported_folder(args: argparse.Namespace, setup: ModelSetup, scratch: Path) -> Path:
    folder = Path(args.exported) if args.exported else default_folder(setup.config)
    if not (folder / MANIFEST).is_file():
        if args.exported:
            raise ExportError(f"no exported engine in {folder}: run splitinf export --out {folder}")
        folder = scratch
        export_with_defaults(setup, folder)
    return folder


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    setup = ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))
    with tempfile.TemporaryDirectory() as scratch:
        folder = exported_folder(args, setup, Path(scratch))
        engines = {"torch": torch_engine(setup)} | {p: ExportedEngine(folder, p, threads=1) for p in ("fp32", "int8")}
        if engines["int8"].fingerprint != setup.fingerprint:
            raise ExportError(f"the engine exported in {folder} has fingerprint {engines['int8'].fingerprint}, the "
                              f"shipped setup {setup.fingerprint}: export it again")
        halves = {name: engine.halves({SPLIT, LOCAL}) for name, engine in engines.items()}
        frames = [f.numpy() for f in video_frames(PERSON_VIDEO, max_frames=args.frames, step=5)]
        split_ms = time_halves({name: h[SPLIT] for name, h in halves.items()}, frames, args.rounds)
        local_ms = time_halves({name: h[LOCAL] for name, h in halves.items()}, frames, args.rounds)

        detector = setup.detector
        pipelines = [split(detector, setup.codec, bottleneck=setup.bottleneck, name=f"split {name}",
                           encoder=halves[name][SPLIT]) for name in ENGINES]
        pipelines += [local(halves[name][LOCAL], f"local {name}") for name in ENGINES]
        ground_truth = json.loads(resolve(ALL_UNION).read_text())
        scores = {s.pipeline.name: s for s in evaluate_coco(pipelines, ground_truth,
                                                              coco_images(ALL_UNION, limit=args.images), [1])}
    ap = {name: 100 * scores[f"split {name}"].ap for name in ENGINES}
    local_ap = {name: 100 * scores[f"local {name}"].ap for name in ENGINES}
    size = {name: scores[f"split {name}"].bytes_per_frame for name in ENGINES}
    result = {
        "torch_fp32_ms": round(split_ms["torch"], 3), "exported_fp32_ms": round(split_ms["fp32"], 3),
        "exported_int8_ms": round(split_ms["int8"], 3), "speedup_int8": round(split_ms["torch"] / split_ms["int8"], 3),
        "speedup_fp32": round(split_ms["torch"] / split_ms["fp32"], 3),
        "ap_torch_head": round(ap["torch"], 2), "ap_fp32_head": round(ap["fp32"], 2),
        "ap_int8_head": round(ap["int8"], 2), "ap_drop_int8": round(ap["fp32"] - ap["int8"], 2),
        "bytes_torch": round(size["torch"], 1), "bytes_fp32": round(size["fp32"], 1),
        "bytes_int8": round(size["int8"], 1), "bytes_int8_vs_fp32": round(size["int8"] / size["fp32"] - 1, 4),
        "local_ms": {name: round(v, 3) for name, v in local_ms.items()},
        "local_ap": {name: round(v, 2) for name, v in local_ap.items()},
        "images": len(scores["split torch"].sizes), "frames_timed": len(frames) * args.rounds, "threads": 1,
        "exported": str(folder) if args.exported or folder != Path(scratch) else "scratch export",
    }
    print(format_table(["engine", "split ms/frame", "÷ torch", "person AP", "bytes/frame", "local ms", "local AP"],
                       [(n, round(split_ms[n], 2), round(split_ms[n] / split_ms["torch"], 3), round(ap[n], 2),
                         round(size[n], 1), round(local_ms[n], 2), round(local_ap[n], 2)) for n in ENGINES]))
    if args.json:
        print_json_line(result)
    return 0
