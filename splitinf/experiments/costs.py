"""What each mode costs per frame on this machine: device and edge milliseconds, and the bytes of the real
FRAME and RESULT messages (headers included) — the inputs of the discrete-event sweep.

Device-side times can be scaled by a slowdown factor to model a slower board. The default ("auto") makes
the whole model take 160 ms on the emulated device: the middle of published Raspberry Pi 4 latencies of
SSDLite-MobileNetV2 at 300×300 (about 110–210 ms with TFLite / PyTorch on 4 Cortex-A72 cores).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from splitinf.bottleneck import load_for
from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.detections import to_result
from splitinf.experiments.pipeline_sim import ModeCost
from splitinf.head import Head
from splitinf.head.modes import JpegEncoder, LocalCompute, SplitEncoder
from splitinf.models import Geometry, SplittableDetector
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
                  jpeg_size: tuple[int, int] = (300, 300), frames: int = 16, slowdown: float | str = "auto"
                  ) -> tuple[dict[str, ModeCost], float]:
    """Per-mode costs (device-side scaled) and the slowdown factor used, measured with each mode's own
    device and edge halves. Device times keep their spread over ``frames`` real frames: a real device's
    compute varies from frame to frame, and a simulator with constant times phase-locks frames to the camera
    in ways no real device does."""
    images = list(video_frames(PERSON_VIDEO, max_frames=frames, step=47))
    local = LocalCompute(detector)
    with torch.inference_mode():
        result_bytes = int(np.mean([_result_bytes(local(im)[0]) for im in images]))
    halves: dict[str, tuple] = {"jpeg": (JpegEncoder(jpeg_quality, jpeg_size), JpegDecoder(detector), [])}
    for path in checkpoints:
        bottleneck = load_for(path, detector)
        encoder = SplitEncoder(Head(detector, bottleneck=bottleneck).eval(), bottleneck.codec())
        decoder = SplitDecoder(Tail(detector, bottleneck=bottleneck).eval(), bottleneck.codec())
        halves[f"split:{Path(path).stem}"] = (encoder, decoder, [])

    def device(encoder, made):
        return lambda im: made.append(encoder(im)[0])  # keep what it made: the edge's inputs

    device_fns = {"local": local, **{name: device(enc, made) for name, (enc, _, made) in halves.items()}}
    device_times = interleaved_times_ms(device_fns, images)
    local_times = device_times["local"]
    factor = RPI4_SSDLITE_MS / float(np.median(local_times)) if slowdown == "auto" else float(slowdown)
    costs = {"local": _device_cost("local", local_times, factor)}
    for name, (_, decoder, made) in halves.items():
        payloads = made[-len(images):]
        edge_ms = median_ms(lambda p, decoder=decoder: decoder([decoder.decode(p.data, p.codec)],
                                                               [Geometry(*p.geometry)]), payloads)
        size = int(np.mean([_frame_bytes(p) for p in payloads]))
        costs[name] = _device_cost(name, device_times[name], factor, size, edge_ms, result_bytes)
    return costs, factor


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
