"""The exported engine: the device halves of ``splitinf export``'s graphs on ONNX Runtime, with NumPy around
them (preprocessing, the bitstream, the detector's last step). No torch: this is what a board runs
(``splitinf-device --engine onnx-int8``, the default where an export exists).

Graphs (each as fp32 and int8, :mod:`splitinf.commands.export`): ``head_a`` (input → the trunk up to the
prefilter's block, or the whole head), ``head_b`` (the rest of the head: trunk blocks and the bottleneck's
encoder; absent when ``head_a`` is the whole head), ``prefilter`` (head_a's output → a logit) and ``local`` (input
→ per-anchor logits and box codes of the whole detector).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from splitinf.board.halves import JpegEncoder, stretched_ms
from splitinf.board.manifest import PRECISIONS, ExportError, Manifest, read_manifest
from splitinf.board.postprocess import detections, sigmoid
from splitinf.board.preprocess import model_input
from splitinf.bottleneck.bitstream import ChannelTables, EntropyEncoder, encode_float32, encode_minmax8
from splitinf.modes import JPEG, LOCAL, SPLIT
from splitinf.protocol import Payload


def onnxruntime() -> Any:
    """ONNX Runtime, or one clear error naming the package to install."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("the exported engine needs the onnxruntime package, which is not installed: "
                          "pip install onnxruntime (or run with --engine torch)") from None
    return ort


class ExportedEngine:
    """One exported folder at one precision; sessions are built for the graphs the chosen modes use."""

    def __init__(self, folder: str | Path, precision: str = "int8", *, threads: int | None = None,
                 prefilter: bool = False, prefilter_threshold: float | None = None) -> None:
        if precision not in PRECISIONS:
            raise ExportError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.ort = onnxruntime()
        self.folder, self.precision, self.threads = Path(folder), precision, threads
        self.manifest: Manifest = read_manifest(self.folder)
        self.name = f"onnx-{precision}"
        self.fingerprint, self.config = self.manifest.fingerprint, self.manifest.config
        if prefilter and self.manifest.prefilter is None:
            raise ExportError(f"the engine exported in {self.folder} carries no prefilter: export it with "
                              "--prefilter CKPT, or run without --prefilter")
        self.threshold = None
        if prefilter:
            trained = self.manifest.prefilter["threshold"]
            self.threshold = trained if prefilter_threshold is None else prefilter_threshold
            if not 0 < self.threshold < 1:
                raise ExportError(f"prefilter threshold must be in (0, 1), got {self.threshold}")
        self._sessions: dict[str, Any] = {}

    def session(self, graph: str) -> Any:
        """The ONNX Runtime session of ``graph`` at this engine's precision."""
        if graph not in self._sessions:
            files = self.manifest.graphs.get(graph)
            if files is None:
                raise ExportError(f"the engine exported in {self.folder} has no {graph!r} graph "
                                  f"(it has {sorted(self.manifest.graphs)})")
            options = self.ort.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self._sessions[graph] = self.ort.InferenceSession(str(self.folder / files[self.precision]), options,
                                                              providers=["CPUExecutionProvider"])
        return self._sessions[graph]

    def run(self, graph: str, x: np.ndarray) -> list[np.ndarray]:
        session = self.session(graph)
        return session.run(None, {session.get_inputs()[0].name: x})

    def trunk_to_tap(self, image: Any) -> tuple[np.ndarray, tuple[int, int]]:
        """``head_a``'s output for a frame, and the frame's size."""
        return self.run("head_a", model_input(image, self.manifest.input_size))[0], tuple(np.shape(image)[-2:])

    def keeps(self, tap_features: np.ndarray) -> bool:
        """The prefilter's decision on head_a's output: worth sending (True) or filtered (False)."""
        return bool(sigmoid(self.run("prefilter", tap_features)[0]).item() >= self.threshold)

    def halves(self, modes: set[str], *, jpeg_quality: int = 90, jpeg_size: tuple[int, int] | None = None,
               slowdown: float = 1.0) -> dict:
        halves: dict = {}
        if LOCAL in modes:
            halves[LOCAL] = ExportedLocal(self, slowdown)
        if JPEG in modes:
            halves[JPEG] = JpegEncoder(jpeg_quality, jpeg_size)
        if SPLIT in modes:
            halves[SPLIT] = ExportedSplit(self, slowdown)
        return halves

    def gate(self, slowdown: float = 1.0) -> ExportedGate | None:
        return None if self.threshold is None else ExportedGate(self, slowdown)

    def describe(self) -> str:
        return f"{self.manifest.description}, engine {self.name} ({self.folder})"


class ExportedSplit:
    """``split``: the exported head, the prefilter on the way when one is on, and the bitstream."""

    name = SPLIT

    def __init__(self, engine: ExportedEngine, slowdown: float = 1.0) -> None:
        self.engine, self.slowdown = engine, slowdown
        manifest = engine.manifest
        size = manifest.input_size
        self.geometry = (None, size, size)
        if manifest.codec == "entropy":
            with np.load(engine.folder / manifest.tables) as tables:
                low = tuple(int(v) for v in tables["low"])
                pmf = tuple(tables[f"pmf{c}"] for c in range(len(low)))
            self.encode = EntropyEncoder(ChannelTables(low, pmf)).encode
        else:
            self.encode = {"minmax8": encode_minmax8, "float32": encode_float32}[manifest.codec]
        self.codec = manifest.codec
        self.has_tail = "head_b" in manifest.graphs
        engine.session("head_a"), self.has_tail and engine.session("head_b")  # load now, not on the first frame

    def features(self, image: Any) -> tuple[np.ndarray | None, tuple, dict[str, float]]:
        """The head's output for a frame (None when the prefilter filtered it), its geometry, its stages."""
        start = time.perf_counter_ns()
        stages: dict[str, float] = {}
        features, original = self.engine.trunk_to_tap(image)
        if self.engine.threshold is not None:
            mark = time.perf_counter_ns()
            keep = self.engine.keeps(features)
            stages["prefilter"] = (time.perf_counter_ns() - mark) / 1e6
            if not keep:
                stages["head"] = stretched_ms(start, self.slowdown)
                return None, (original, *self.geometry[1:]), stages
        if self.has_tail:
            features = self.engine.run("head_b", features)[0]
        stages["head"] = stretched_ms(start, self.slowdown)
        return features[0], (original, *self.geometry[1:]), stages

    def __call__(self, image: Any) -> tuple[Payload | None, dict[str, float]]:
        features, geometry, stages = self.features(image)
        if features is None:
            return None, stages
        start = time.perf_counter_ns()
        data = self.encode(features)
        stages["encode"] = (time.perf_counter_ns() - start) / 1e6
        return Payload(SPLIT, geometry, self.codec, data), stages


class ExportedLocal:
    """``local``: the whole exported detector, then NMS in NumPy."""

    name = LOCAL

    def __init__(self, engine: ExportedEngine, slowdown: float = 1.0) -> None:
        local = engine.manifest.local
        if local is None:
            raise ExportError(f"the engine exported in {engine.folder} has no whole detector for local mode "
                              f"(its model, {engine.manifest.model}, exports a head only); use --engine torch")
        self.engine, self.slowdown = engine, slowdown
        self.anchors = np.load(engine.folder / local["anchors"])
        self.options = {k: local[k] for k in ("score_threshold", "iou_threshold", "max_detections")}
        engine.session("local")

    def __call__(self, image: Any) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        start = time.perf_counter_ns()
        logits, regression = self.engine.run("local", model_input(image, self.engine.manifest.input_size))
        found = detections(logits[0], regression[0], self.anchors, tuple(np.shape(image)[-2:]), **self.options)
        return found, {"local": stretched_ms(start, self.slowdown)}


class ExportedGate:
    """The prefilter where no head runs (``jpeg``, ``local``): head_a, then the prefilter."""

    def __init__(self, engine: ExportedEngine, slowdown: float = 1.0) -> None:
        self.engine, self.slowdown = engine, slowdown

    def __call__(self, image: Any) -> tuple[bool, dict[str, float]]:
        start = time.perf_counter_ns()
        keep = self.engine.keeps(self.engine.trunk_to_tap(image)[0])
        return keep, {"prefilter": stretched_ms(start, self.slowdown)}
