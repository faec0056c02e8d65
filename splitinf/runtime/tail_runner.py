"""The edge's compute, once for every engine: payloads in, detections (NumPy) or a per-frame error out.

The in-process edge calls a :class:`TailRunner` on each batch it takes; the Ray engine
(:mod:`splitinf.runtime.ray_engine`) runs one in each replica. It decodes each payload (a payload it cannot
read fails alone, with the ``payload`` code), runs each mode's edge half once per group of equal batch keys,
and times both; an exception in a group fails that group's frames (``internal``), never the others.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import torch

from splitinf.bottleneck import CodecError
from splitinf.data import DataError
from splitinf.detections import Arrays, as_numpy
from splitinf.models import Geometry
from splitinf.modes import JPEG, SPLIT
from splitinf.runtime.setup import ModelSetup
from splitinf.tail import Tail
from splitinf.tail.modes import JpegDecoder, SplitDecoder


@dataclass(frozen=True)
class TailJob:
    mode: str
    codec: str
    payload: bytes
    geometry: tuple


@dataclass
class TailOutcome:
    detections: Arrays | None = None  # None when the frame failed
    error: tuple[str, str] | None = None  # (code, text): "payload" or "internal"
    decode_ms: float = 0.0
    tail_ms: float = 0.0
    batch: int = 0  # frames in the tail call this one was part of


class TailRunner:
    def __init__(self, setup: ModelSetup, device: str = "cpu") -> None:
        self.device = torch.device(device)
        detector = setup.detector.to(self.device)
        tail = Tail(detector, setup.split, setup.bottleneck).to(self.device).eval()
        self.halves = {JPEG: JpegDecoder(detector, self.device), SPLIT: SplitDecoder(tail, setup.codec, self.device)}

    def __call__(self, jobs: list[TailJob]) -> tuple[list[TailOutcome], list[int]]:
        """One outcome per job, in order, and the size of each tail call made."""
        outcomes = [TailOutcome() for _ in jobs]
        groups: dict[tuple, list[tuple[int, object]]] = defaultdict(list)
        with torch.inference_mode():
            for i, job in enumerate(jobs):
                t0 = time.perf_counter_ns()
                half = self.halves[job.mode]  # the protocol admits only the modes that have a half
                try:
                    decoded = half.decode(job.payload, job.codec)
                except (CodecError, DataError) as exc:
                    outcomes[i].error = ("payload", str(exc))
                    continue
                outcomes[i].decode_ms = (time.perf_counter_ns() - t0) / 1e6
                groups[half.batch_key(decoded)].append((i, decoded))
            sizes = []
            for key, items in groups.items():
                t0 = time.perf_counter_ns()
                try:
                    detections = self.halves[key[0]]([d for _, d in items],
                                                      [Geometry(*jobs[i].geometry) for i, _ in items])
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                except Exception as exc:  # a bad batch must not take the server down; every frame gets an answer
                    for i, _ in items:
                        outcomes[i].error = ("internal", f"{type(exc).__name__}: {exc}")
                    continue
                tail_ms = (time.perf_counter_ns() - t0) / 1e6
                sizes.append(len(items))
                for (i, _), result in zip(items, detections):
                    outcomes[i].detections = {k: as_numpy(result[k]) for k in ("boxes", "scores", "labels")}
                    outcomes[i].tail_ms, outcomes[i].batch = tail_ms, len(items)
        return outcomes, sizes
