"""What each mode costs per frame on this machine: device and edge milliseconds, and the bytes of the real
FRAME and RESULT messages (headers included) — the inputs of the discrete-event sweep.

Device-side times can be scaled by a slowdown factor to model a slower board. The default ("auto") makes
the whole model take 160 ms on the emulated device: the middle of published Raspberry Pi 4 latencies of
SSDLite-MobileNetV2 at 300×300 (about 110–210 ms with TFLite / PyTorch on 4 Cortex-A72 cores).

Which device half is timed is ``engine``'s choice: eager fp32 torch, or the exported graphs a board runs
(``onnx-int8``, ``onnx-fp32``; :mod:`splitinf.board.engine`). For an exported engine the board model anchors
the *optimised fp32 runtime* at those published 160 ms (the published figures are TFLite / PyTorch fp32, and
eager torch is slower than either): the factor is 160 ms over the exported fp32 whole model here, and that same
factor scales the int8 graphs, i.e. a board is assumed to gain from int8 what this CPU gains.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from splitinf.board.engine import ExportedEngine
from splitinf.board.manifest import ExportError, default_folder
from splitinf.bottleneck import load_for
from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.detections import to_result
from splitinf.experiments.pipeline_sim import ModeCost
from splitinf.head import Head
from splitinf.head.modes import JpegEncoder, LocalCompute, SplitEncoder
from splitinf.models import Geometry, SplittableDetector
from splitinf.modes import LOCAL, SPLIT
from splitinf.protocol import Frame, Payload, encode
from splitinf.tail import Tail
from splitinf.tail.modes import JpegDecoder, SplitDecoder

RPI4_SSDLITE_MS = 160.0  # middle of the published 110–210 ms for SSDLite-MobileNetV2 on a Raspberry Pi 4


def interleaved_times_ms(fns: dict, items, repeats: int = 1) -> dict[str, list[float]]:
    """Milliseconds of each ``fns[name](item)``, ``repeats`` times each, the functions taking turns on each
    item (after one warm-up call each: the first call pays for allocations and lazy initialisation). On a
    shared machine the CPU's speed drifts, and timing one function after the other put that drift into their
    ratios (in a throwaway timing, the split head came out at 49–57 % of the whole model between runs)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode():
        for fn in fns.values():
            fn(items[0])
        for item in items:
            for name, fn in fns.items():
                for _ in range(repeats):
                    start = time.perf_counter_ns()
                    fn(item)
                    times[name].append((time.perf_counter_ns() - start) / 1e6)
    return times


def median_ms(fn, items, repeats: int = 1) -> float:
    return float(np.median(interleaved_times_ms({"fn": fn}, items, repeats)["fn"]))


def _device_cost(name: str, samples_ms: list[float], factor: float, *rest) -> ModeCost:
    """A mode's cost with its measured device times (scaled), which the simulator draws from frame by frame."""
    scaled = tuple(t * factor for t in samples_ms)
    return ModeCost(name, float(np.median(scaled)), *rest, device_samples_ms=scaled)


def _result_bytes(detections: dict, min_score: float = 0.05) -> int:
    return sum(len(f) for f in encode(to_result(0, detections, min_score, {"queue": 1.0, "decode": 1.0, "tail": 1.0},
                                                1)))


def _frame_bytes(payload: Payload) -> int:
    return sum(len(f) for f in encode(Frame(1_000_000, 10**15, payload.mode, payload.geometry, payload.codec,
                                            payload.data, budget_ms=1000.0)))


def measure_costs(detector: SplittableDetector, checkpoints: list[str], *, jpeg_quality: int = 90,
                  jpeg_size: tuple[int, int] = (300, 300), frames: int = 16, slowdown: float | str = "auto",
                  engine: str = "torch", exported: Path | None = None) -> tuple[dict[str, ModeCost], float]:
    """Per-mode costs (device-side scaled) and the slowdown factor used, measured with each mode's own
    device and edge halves. Device times keep their spread over ``frames`` real frames: a real device's
    compute varies from frame to frame, and a simulator with constant times phase-locks frames to the camera
    in ways no real device does. ``engine`` ``onnx-int8``/``onnx-fp32`` times the exported graphs in
    ``exported`` (which must hold the one checkpoint asked for) instead of eager torch."""
    images = list(video_frames(PERSON_VIDEO, max_frames=frames, step=47))
    decoders = edge_halves(detector, checkpoints)
    device_fns, inputs, anchor = device_halves(detector, checkpoints, engine, exported, jpeg_quality, jpeg_size)
    local = LocalCompute(detector)
    with torch.inference_mode():
        result_bytes = int(np.mean([_result_bytes(local(im)[0]) for im in images]))
    made: dict[str, list] = {name: [] for name in decoders}
    timed = {name: (fn if name not in made else (lambda im, fn=fn, out=made[name]: out.append(fn(im)[0])))
             for name, fn in device_fns.items()}
    device_times = interleaved_times_ms(timed, [inputs(im) for im in images])
    reference = float(np.median(device_times[anchor]))
    factor = RPI4_SSDLITE_MS / reference if slowdown == "auto" else float(slowdown)
    costs = {"local": _device_cost("local", device_times["local"], factor)}
    payloads = {name: made[name][-len(images):] for name in decoders}
    edge_ms = edge_times_ms(decoders, payloads)
    for name in decoders:
        size = int(np.mean([_frame_bytes(p) for p in payloads[name]]))
        costs[name] = _device_cost(name, device_times[name], factor, size, edge_ms[name], result_bytes)
    return costs, factor


def split_modes(path: str, bottleneck) -> dict[str, object]:
    """The split modes of a checkpoint and their codecs: ``split:<name>`` for a single-rate one, one
    ``split:<name>@<rate>`` per rate for a variable-rate one (each rate is an operating point of its own)."""
    stem = Path(path).stem
    if bottleneck.config.rates == 1:
        return {f"split:{stem}": bottleneck.codec()}
    return {f"split:{stem}@{r}": bottleneck.codec(r) for r in range(bottleneck.config.rates)}


def edge_halves(detector: SplittableDetector, checkpoints: list[str], device: str = "cpu") -> dict:
    """The edge half of each offloading mode (``jpeg``, ``split:<checkpoint>[@rate]``) on ``device``: one
    decoder serves every rate of a variable-rate checkpoint."""
    halves = {"jpeg": JpegDecoder(detector, device)}
    for path in checkpoints:
        bottleneck = load_for(path, detector)
        tail = Tail(detector, bottleneck=bottleneck).to(device).eval()
        for name, codec in split_modes(path, bottleneck).items():
            halves[name] = SplitDecoder(tail, codec, device)
    return halves


def edge_times_ms(halves: dict, payloads: dict[str, list[Payload]], device: str = "cpu") -> dict[str, float]:
    """Median milliseconds of each mode's edge half (decode + tail, on ``device``) on one frame at a time —
    what a frame costs the edge at low load — on its own payloads."""
    def run(half, payload: Payload) -> None:
        half([half.decode(payload.data, payload.codec)], [Geometry(*payload.geometry)])
        if device == "cuda":
            torch.cuda.synchronize()  # a GPU's work is done when it is synchronised, not when it is queued
    return {name: median_ms(lambda p, half=half: run(half, p), payloads[name]) for name, half in halves.items()}


def measure_edge_costs(detector: SplittableDetector, checkpoints: list[str], device: str,
                       frames: int = 16) -> dict[str, float]:
    """Edge milliseconds per mode on ``device`` (e.g. a GPU), on payloads made by the torch device halves."""
    images = list(video_frames(PERSON_VIDEO, max_frames=frames, step=47))
    makers, _, _ = device_halves(detector, checkpoints, "torch", None, 90, (300, 300))
    with torch.inference_mode():
        payloads = {name: [makers[name](im)[0] for im in images] for name in makers if name != "local"}
    return edge_times_ms(edge_halves(detector, checkpoints, device), payloads, device)


def save_edge_costs(path: Path, edge_ms: dict[str, float], where: str) -> None:
    path.write_text(json.dumps({"edge": where, "edge_ms": {k: round(v, 3) for k, v in edge_ms.items()}},
                               indent=1) + "\n")


def with_edge_costs(costs: dict[str, ModeCost], path: Path) -> tuple[dict[str, ModeCost], str]:
    """``costs`` with each offloading mode's edge milliseconds taken from an edge-cost file (written by
    ``splitinf bench edge --save-edge-costs``, e.g. on a GPU), and the edge that file describes."""
    try:
        saved = json.loads(path.read_text())
        edge_ms, where = {k: float(v) for k, v in saved["edge_ms"].items()}, str(saved["edge"])
    except FileNotFoundError:
        raise ValueError(f"--edge-costs {path}: no such file (write one with splitinf bench edge "
                         "--save-edge-costs FILE)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"--edge-costs {path} is not a file written by --save-edge-costs: {error!r}") from None
    missing = [name for name in costs if name != "local" and name not in edge_ms]
    if missing:
        raise ValueError(f"--edge-costs {path} has no edge time for {', '.join(missing)} (it has "
                         f"{', '.join(edge_ms)}): measure it with the same --bottleneck")
    return {name: replace(cost, edge_ms=edge_ms.get(name, cost.edge_ms)) for name, cost in costs.items()}, where


def device_halves(detector: SplittableDetector, checkpoints: list[str], engine: str, exported: Path | None,
                  jpeg_quality: int, jpeg_size: tuple[int, int]) -> tuple[dict, object, str]:
    """(device half per mode, the input conversion they take, the half the board's 160 ms anchors)."""
    jpeg = JpegEncoder(jpeg_quality, jpeg_size)
    if engine == "torch":
        halves = {"local": LocalCompute(detector), "jpeg": jpeg}
        for path in checkpoints:
            bottleneck = load_for(path, detector)
            head = Head(detector, bottleneck=bottleneck).eval()
            for name, codec in split_modes(path, bottleneck).items():
                halves[name] = SplitEncoder(head, codec)
        return halves, (lambda im: im), "local"
    if engine not in ("onnx-int8", "onnx-fp32"):
        raise ValueError(f"--engine must be torch, onnx-int8 or onnx-fp32, got {engine!r}")
    if exported is None:
        raise ExportError(f"--engine {engine} needs the exported folder (--exported DIR)")
    board = ExportedEngine(exported, engine.removeprefix("onnx-"), threads=1)
    fp32 = ExportedEngine(exported, "fp32", threads=1)
    bottleneck = board.manifest.config.get("bottleneck")
    if [Path(c).name for c in checkpoints] != [bottleneck]:
        raise ExportError(f"the engine exported in {exported} carries the bottleneck {bottleneck}; costs were "
                          f"asked for {[Path(c).name for c in checkpoints]}: export each one, or ask for it alone")
    split = board.halves({SPLIT})[SPLIT]
    halves = {"local": board.halves({LOCAL})[LOCAL], "jpeg": jpeg, f"split:{Path(bottleneck).stem}": split,
              "local-fp32": fp32.halves({LOCAL})[LOCAL]}  # the anchor, timed beside the others
    return halves, (lambda im: im.numpy()), "local-fp32"


ENGINES = ("torch", "onnx-int8", "onnx-fp32")


def board_slowdown(detector: SplittableDetector, engine: str, exported: Path | None, threads: int = 1,
                   frames: int = 8) -> float:
    """The factor that makes this machine's device half take as long as a Raspberry Pi 4's under the board
    model above: 160 ms over the fp32 whole model of ``engine`` here (the exported fp32 graphs for an exported
    engine, eager torch for torch), timed on ``threads`` threads."""
    images = list(video_frames(PERSON_VIDEO, max_frames=frames, step=47))
    if engine == "torch":
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return RPI4_SSDLITE_MS / median_ms(LocalCompute(detector), images)
        finally:
            torch.set_num_threads(before)
    fp32 = ExportedEngine(exported, "fp32", threads=threads).halves({LOCAL})[LOCAL]
    return RPI4_SSDLITE_MS / median_ms(fp32, [im.numpy() for im in images])


def add_engine_arguments(parser) -> None:
    """--engine/--exported of the commands that measure costs (sweep, bench adaptive)."""
    parser.add_argument("--engine", choices=ENGINES, default="torch",
                        help="the device half timed: eager fp32 torch (default), or the exported graphs a board "
                             "runs (splitinf export), scaled so that their fp32 whole model takes 160 ms")
    parser.add_argument("--exported", metavar="DIR", default=None,
                        help="the exported engine's folder for --engine onnx-* (default: where splitinf export "
                             "writes the asked bottleneck)")
    parser.add_argument("--edge-costs", metavar="FILE", default=None,
                        help="the edge's per-frame times measured elsewhere (splitinf bench edge "
                             "--save-edge-costs FILE, e.g. on a GPU) instead of this machine's")


def exported_for(engine: str, exported: str | None, model: str, checkpoints: list[str]) -> Path | None:
    """The exported folder ``--engine`` needs (None for torch): ``exported``, else the default one of the
    (single) checkpoint; a clear error when there is none."""
    if engine == "torch":
        return None
    if exported:
        return Path(exported)
    if len(checkpoints) != 1:
        raise ExportError(f"--engine {engine} times one exported bottleneck; got {len(checkpoints)} "
                          "(--bottleneck once, or --exported DIR)")
    folder = default_folder({"model": model, "bottleneck": Path(checkpoints[0]).name})
    if not folder.is_dir():
        raise ExportError(f"--engine {engine}: no exported engine in {folder}; run `splitinf export --bottleneck "
                          f"{Path(checkpoints[0]).name}` first, or pass --exported DIR")
    return folder


def save_costs(path: Path, costs: dict[str, ModeCost], factor: float) -> None:
    path.write_text(json.dumps({"device_slowdown": factor, "costs": [asdict(c) for c in costs.values()]}, indent=1))


def load_costs(path: Path) -> tuple[dict[str, ModeCost], float]:
    """Costs written by :func:`save_costs`; a file that is not one is named with what it lacks."""
    try:
        saved = json.loads(path.read_text())
        costs = {c["name"]: ModeCost(**{**c, "device_samples_ms": tuple(c["device_samples_ms"])})
                 for c in saved["costs"]}
        factor = float(saved["device_slowdown"])
    except FileNotFoundError:
        raise ValueError(f"--costs {path}: no such file (write one with splitinf bench adaptive --save-costs)") \
            from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"--costs {path} is not a file written by --save-costs: {error!r}") from None
    if "local" not in costs:
        raise ValueError(f"--costs {path} has no local mode (modes: {', '.join(costs)})")
    return costs, factor


def within_budget(costs: dict[str, ModeCost], drops: dict[str, float] | None, max_ap_drop: float | None
                  ) -> tuple[dict[str, ModeCost], list[str]]:
    """The operating points whose recorded AP is within ``max_ap_drop`` points of the teacher's, and the
    names of those left out (over the budget, or with no recorded AP). No budget or no record: all of them."""
    if max_ap_drop is None or drops is None:
        return costs, []
    kept = {n: c for n, c in costs.items() if n in drops and drops[n] <= max_ap_drop}
    return kept, [n for n in costs if n not in kept]
