"""``splitinf export``: the device half as files for a board — ONNX graphs at fp32 and int8, the entropy coder's
tables, the anchors, and a manifest with the model fingerprint the edge checks (:mod:`splitinf.board`).

    splitinf export                                  # shipped bottleneck + prefilter, into $SPLITINF_HOME/exported/
    splitinf export --out board/ --prefilter off     # then copy board/ to the camera: splitinf-device --exported board/

Why ONNX Runtime: it has aarch64 wheels with 5 dependencies (executorch pulls about 43), runs the int8 graphs
with its Arm kernels, and quantizes statically from a calibration set in one call. int8 is post-training static
quantization (QDQ, per-channel weights, activations calibrated at the 99.999th percentile, the bottleneck's
encoder kept fp32; :func:`quantize_int8` says why) on label-free frames: VOC photos and frames of the shared
videos, never the COCO images the evaluation uses.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from splitinf.board.engine import onnxruntime
from splitinf.board.manifest import ExportError, Manifest, default_folder, file_digest
from splitinf.board.preprocess import model_input
from splitinf.head import Head, Prefilter, load_prefilter
from splitinf.label_free import load_rgb, video_sources, voc_photos
from splitinf.report import print_json_line
from splitinf.runtime.setup import ModelSetup, add_model_arguments
from splitinf.weights.checkpoints import DEFAULT_PREFILTER, find_checkpoint

DEFAULT_CALIBRATION = 128  # label-free frames the int8 graphs are calibrated on
CALIBRATION_PERCENTILE = 99.999  # activation ranges cover this share of calibration values (see quantize_int8)

OPSET = 17


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder to write (default: $SPLITINF_HOME/exported/MODEL--HEAD, where splitinf-device "
                             "looks)")
    parser.add_argument("--prefilter", default=DEFAULT_PREFILTER, metavar="off|CKPT",
                        help=f"prefilter exported with the head (default {DEFAULT_PREFILTER}, which reads the shipped "
                             "bottleneck's block 7; 'off' for none)")
    parser.add_argument("--calibration-frames", type=int, default=DEFAULT_CALIBRATION, metavar="N",
                        help="label-free frames calibrating the int8 graphs, half VOC photos, half video frames "
                             "(default 128)")
    parser.add_argument("--no-local", action="store_true", help="skip the whole detector (local mode)")
    parser.add_argument("--json", action="store_true", help="print the manifest as one JSON line last")
    add_model_arguments(parser)


def calibration_frames(count: int) -> list[np.ndarray]:
    """``count`` label-free RGB frames [3, H, W]: evenly spaced VOC photos and shared-video frames."""
    photos, frames = voc_photos(), video_sources(step=25)
    chosen = [photos[i] for i in np.linspace(0, len(photos) - 1, count - count // 2).astype(int)]
    chosen += [frames[i] for i in np.linspace(0, len(frames) - 1, count // 2).astype(int)]
    return [np.ascontiguousarray(load_rgb(source).transpose(2, 0, 1)) for source in chosen]


class _AnchorOutputs(nn.Module):
    """The whole detector from its input to the per-anchor outputs (foreground logits, box codes)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.detector.anchor_outputs(self.detector.neck(self.detector.trunk(x)))


class _PrefilterLogit(nn.Module):
    def __init__(self, prefilter: Prefilter) -> None:
        super().__init__()
        self.prefilter = prefilter

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.prefilter(features)


def graphs_of(setup: ModelSetup, prefilter: Prefilter | None, local: bool) -> dict[str, nn.Module]:
    """The modules to export: the head cut at the prefilter's block (head_a, head_b), the prefilter, the whole
    detector. Without a prefilter, head_a is the whole head."""
    layers = Head(setup.detector, setup.split, setup.bottleneck).layers
    cut = prefilter.config.tap if prefilter is not None else len(layers) - 1
    graphs: dict[str, nn.Module] = {"head_a": layers[: cut + 1]}
    if cut + 1 < len(layers):
        graphs["head_b"] = layers[cut + 1 :]
    if prefilter is not None:
        graphs["prefilter"] = _PrefilterLogit(prefilter)
    if local:
        graphs["local"] = _AnchorOutputs(setup.detector)
    return {name: module.eval() for name, module in graphs.items()}


def export_fp32(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    outputs = ["logits", "box_codes"] if isinstance(module, _AnchorOutputs) else ["output"]
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on constant folding, not for a user
        torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=outputs,
                          opset_version=OPSET, dynamo=False)


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a list of inputs."""

    def __init__(self, name: str, inputs: list[np.ndarray]) -> None:
        self.name, self.inputs = name, iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.inputs, None)
        return None if x is None else {self.name: x}


def quantize_int8(fp32: Path, int8: Path, inputs: list[np.ndarray], keep_fp32: str | None = None,
                  percentile: bool = True) -> None:
    """Static int8 quantization of ``fp32`` calibrated on ``inputs``; nodes whose name starts with ``keep_fp32``
    stay fp32; activation ranges at the :data:`CALIBRATION_PERCENTILE` (else min/max).

    The bottleneck's encoder stays fp32 (its output is rounded into the symbols sent, and on two small
    convolutions the QDQ pairs cost more time than int8 saves); the whole detector keeps min/max (the
    percentile bought it no AP and took minutes). How each choice was measured: lab/RESULTS.md, "int8 export".
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        excluded = [] if keep_fp32 is None else \
            [n.name for n in onnx.load(str(prepared)).graph.node if n.name.startswith(keep_fp32)]
        quantize_static(str(prepared), str(int8), _Calibration("input", inputs), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax,
                        nodes_to_exclude=excluded, extra_options={"CalibPercentile": CALIBRATION_PERCENTILE})


def run_graph(path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime().InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, {"input": x})[0] for x in inputs]


def export(setup: ModelSetup, prefilter: Prefilter | None, prefilter_name: str | None, out: Path,
           calibration: int, local: bool, progress: bool = True) -> Manifest:
    """Write the exported engine of ``setup`` (with ``prefilter``) into ``out``; returns its manifest."""
    out.mkdir(parents=True, exist_ok=True)
    detector = setup.detector
    frames = calibration_frames(calibration)
    inputs = [model_input(frame, detector.input_size) for frame in frames]
    graphs = graphs_of(setup, prefilter, local and hasattr(detector, "anchors"))
    # The bottleneck's encoder, the head's last layer: its ONNX nodes are named after its index in the head.
    encoder = f"/{len(Head(detector, setup.split, setup.bottleneck).layers) - 1}/" if setup.bottleneck else None
    tap_inputs: list[np.ndarray] = []
    files: dict[str, dict[str, str]] = {}
    bar = tqdm(total=2 * len(graphs), desc="export", unit="graph", disable=not progress)
    for name, module in graphs.items():
        feed = tap_inputs if name in ("head_b", "prefilter") else inputs
        fp32, int8 = out / f"{name}.fp32.onnx", out / f"{name}.int8.onnx"
        export_fp32(module, torch.from_numpy(feed[0]), fp32)
        bar.update()
        quantize_int8(fp32, int8, feed, keep_fp32=encoder if name in ("head_a", "head_b") else None,
                      percentile=name != "local")
        bar.update()
        files[name] = {"fp32": fp32.name, "int8": int8.name}
        if name == "head_a":
            tap_inputs = run_graph(fp32, inputs)  # what head_b and the prefilter are calibrated on
    bar.close()
    extra = {}
    if setup.bottleneck is not None:
        tables = setup.codec.tables
        np.savez(out / "tables.npz", low=np.array(tables.low), **{f"pmf{c}": p for c, p in enumerate(tables.pmf)})
        extra["tables"] = "tables.npz"
    if "local" in graphs:
        np.save(out / "anchors.npy", detector.anchors.numpy().astype(np.float32))
        extra["local"] = {"anchors": "anchors.npy", "score_threshold": detector.score_threshold,
                          "iou_threshold": detector.iou_threshold, "max_detections": detector.max_detections}
    if prefilter is not None:
        extra["prefilter"] = {"name": prefilter_name, "tap": prefilter.config.tap,
                              "threshold": prefilter.config.threshold}
    names = [f for pair in files.values() for f in pair.values()] + \
        [extra["tables"]] * ("tables" in extra) + ["anchors.npy"] * ("local" in extra)
    import onnx

    manifest = Manifest(
        model=setup.config["model"], fingerprint=setup.fingerprint, config=setup.config,
        description=setup.describe(), input_size=tuple(detector.input_size), codec=setup.codec.name, graphs=files,
        files={name: file_digest(out / name) for name in names},
        calibration={"frames": len(frames), "sources": "VOC2007 trainval photos + shared-video frames (label-free)",
                     "method": "static QDQ, per-channel int8 weights, uint8 activations at the "
                               f"{CALIBRATION_PERCENTILE}th percentile (local: min/max), bottleneck encoder fp32"},
        versions={"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime().__version__},
        **extra)
    manifest.save(out)
    return manifest


def export_with_defaults(setup: ModelSetup, out: Path) -> Manifest:
    """What a plain ``splitinf export`` writes for ``setup``: the shipped prefilter, 128 calibration frames, the
    whole detector for local (the demo and the benchmarks export so where no export exists yet)."""
    path = find_checkpoint(DEFAULT_PREFILTER)
    return export(setup, load_prefilter(path, setup.detector.name), path.name, out, DEFAULT_CALIBRATION, local=True)


def main(args: argparse.Namespace) -> int:
    setup = ModelSetup.from_args(args)
    if setup.bottleneck is not None and setup.bottleneck.config.rates > 1:
        raise ExportError(f"{setup.config['bottleneck']} is a variable-rate bottleneck: the board's encoder writes "
                          "one rate's stream only so far; run it with splitinf-device --engine torch --rate R")
    prefilter, prefilter_name = None, None
    if args.prefilter != "off":
        path = find_checkpoint(args.prefilter)
        prefilter, prefilter_name = load_prefilter(path, setup.detector.name), path.name
    if args.calibration_frames < 2:
        raise ValueError(f"--calibration-frames must be at least 2, got {args.calibration_frames}")
    out = Path(args.out) if args.out else default_folder(setup.config)
    manifest = export(setup, prefilter, prefilter_name, out, args.calibration_frames, not args.no_local)
    total = sum((out / name).stat().st_size for name in manifest.files)
    print(f"splitinf export: {manifest.description} → {out} ({len(manifest.files)} files, {total / 1e6:.1f} MB; "
          f"graphs {', '.join(manifest.graphs)} at fp32 and int8)")
    if args.json:
        print_json_line({"out": str(out), **json.loads((out / "manifest.json").read_text())})
    return 0
