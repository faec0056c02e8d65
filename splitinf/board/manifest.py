"""An exported engine's folder: ``manifest.json`` and the files it names (ONNX graphs, the entropy tables, the
anchors), each with its SHA-256. Written by ``splitinf export`` (with torch), read by a board (without).

The manifest carries the model fingerprint and configuration the edge checks, so a head exported from other
weights or another bottleneck is refused by the edge exactly as a torch device's would be; and the device
refuses, before it starts, a folder made for another model, split or bottleneck than the one it was asked for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from splitinf.weights.assets import home

FORMAT = "splitinf-exported"
VERSION = 1
PRECISIONS = ("int8", "fp32")
MANIFEST = "manifest.json"


class ExportError(ValueError):
    """An exported engine that is missing, damaged, or made for something else."""


@dataclass
class Manifest:
    model: str
    fingerprint: str
    config: dict  # what the device tells the edge (ModelSetup.config)
    description: str
    input_size: tuple[int, int]
    codec: str  # the payload codec: entropy (with tables), minmax8 or float32
    graphs: dict[str, dict[str, str]]  # graph name → precision → file name
    files: dict[str, str]  # file name → SHA-256 of its bytes
    tables: str | None = None  # .npz of the entropy coder's per-channel tables (low, pmf)
    prefilter: dict | None = None  # {"name", "tap", "threshold"}: the gate reads head_a's output
    local: dict | None = None  # {"anchors", "score_threshold", "iou_threshold", "max_detections"}
    calibration: dict = field(default_factory=dict)  # what the int8 graphs were calibrated on
    versions: dict = field(default_factory=dict)  # torch / onnx / onnxruntime at export

    def save(self, folder: Path) -> None:
        data = {"format": FORMAT, "version": VERSION, **asdict(self)}
        (folder / MANIFEST).write_text(json.dumps(data, indent=1) + "\n")

    @property
    def head_name(self) -> str:
        """The head this engine runs, in the device's words: 'bottleneck X' or 'split sN'."""
        return head_of(self.config)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def head_of(config: dict) -> str:
    """A head in the device's words, from a configuration naming a ``bottleneck`` (file) or a ``split``."""
    return f"bottleneck {config['bottleneck']}" if "bottleneck" in config else f"split {config['split']}"


def default_folder(config: dict) -> Path:
    """Where ``splitinf export`` writes by default and ``splitinf-device`` looks: one folder per model and head,
    e.g. ``$SPLITINF_HOME/exported/ssdlite_mobilenet_v2_person--person_s16t7_c32_k27_gpu``."""
    head = Path(config["bottleneck"]).stem if "bottleneck" in config else f"split-{config['split']}"
    return home() / "exported" / f"{config['model']}--{head}"


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of ``folder``, every file it names checked against its digest; one clear error otherwise."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ExportError(f"no exported engine in {folder} (no {MANIFEST}): run `splitinf export --out {folder}` "
                          "on a machine with the full install, and copy the folder here")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path} is not a readable manifest ({exc}); export again") from None
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ExportError(f"{path} is not a {FORMAT} manifest of version {VERSION} (format "
                          f"{data.get('format')!r}, version {data.get('version')!r}); export again")
    data.pop("format"), data.pop("version")
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise ExportError(f"{path} lacks or has unknown fields ({exc}); export again") from None
    manifest.input_size = tuple(manifest.input_size)
    for name, digest in manifest.files.items():
        file = folder / name
        if not file.is_file():
            raise ExportError(f"exported engine {folder} lacks {name}, which its manifest names; export again")
        if file_digest(file) != digest:
            raise ExportError(f"{file} does not match its manifest's SHA-256 (truncated, damaged or replaced); "
                              "export again")
    return manifest


def check_made_for(manifest: Manifest, folder: Path, asked: dict) -> None:
    """Refuse a folder exported for another model or head than the device was asked to run (``asked``: the
    ``model`` and its ``bottleneck`` file name or ``split``)."""
    if manifest.model != asked["model"] or manifest.head_name != head_of(asked):
        raise ExportError(f"the engine exported in {folder} runs {manifest.model}, {manifest.head_name}; this "
                          f"device was asked for {asked['model']}, {head_of(asked)}: export that (splitinf export "
                          "--model … --bottleneck …) or pass the matching --model/--bottleneck/--split")
