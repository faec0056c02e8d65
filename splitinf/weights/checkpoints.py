"""Where bottleneck and prefilter checkpoints are found: a path, or a name in the user's cache or the package.

The checkpoints the product uses ship inside the package (``splitinf/weights/shipped``, package data), so a
regular ``pip install`` finds them exactly as a checkout does. Checkpoints you train or download go in
``$SPLITINF_HOME/checkpoints`` (default ``~/.cache/splitinf/checkpoints``) and are then named by file name
alone, like the shipped ones; a name there takes precedence over a shipped file of the same name.
"""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

from splitinf.weights.assets import home

DEFAULT_BOTTLENECK = "person_s16t7_c32_k27_gpu.pt"  # tap after block 7, 32 channels: AP 0.1848 at 2.66 KB/frame
DEFAULT_PREFILTER = "prefilter_person_t7.pt"  # reads the default bottleneck's block-7 features


class CheckpointNotFound(FileNotFoundError):
    """A checkpoint named on the command line that is neither a file nor a known name."""


def shipped_folder() -> Path:
    return Path(str(resources.files("splitinf.weights") / "shipped"))


def checkpoint_folders() -> list[Path]:
    """Where a bare checkpoint name is looked up, in order: the user's cache, then the package."""
    return [home() / "checkpoints", shipped_folder()]


def find_checkpoint(name: str | Path) -> Path:
    """An existing file as given, else the file of that name in :func:`checkpoint_folders`."""
    path = Path(name)
    if path.is_file():
        return path
    if path.name == str(name):  # a bare name: look it up
        for folder in checkpoint_folders():
            if (folder / path.name).is_file():
                return folder / path.name
    folders = ", ".join(str(f) for f in checkpoint_folders())
    raise CheckpointNotFound(f"checkpoint {str(name)!r} not found: expected a file, or a name in {folders} "
                             "(set SPLITINF_HOME to use another cache)")


def default_bottleneck() -> Path:
    """The bottleneck device and edge use unless told otherwise."""
    return find_checkpoint(DEFAULT_BOTTLENECK)


def shipped_checkpoints() -> list[Path]:
    return sorted(shipped_folder().glob("*.pt"))


def update_digest(digest, state: dict[str, Any]) -> None:
    """Feed a state dict (names and exact weight bytes) into a hashlib digest: the weights part of every
    fingerprint, so that two sides agree on a model only if every weight matches."""
    for key, value in state.items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())


def write_checkpoint(path: str | Path, kind: str, version: int, config: dict, state: dict[str, Any],
                     metadata: dict | None = None, **extra: Any) -> None:
    """One file: ``{format: kind, version, config, state, metadata, …}``, written whole (weights_only loads it)."""
    import torch  # only where checkpoints are written or read: finding one needs no torch
    checkpoint = {"format": kind, "version": version, "config": config,
                  "state": {k: v.detach().cpu() for k, v in state.items()},
                  "metadata": json.loads(json.dumps(metadata or {}, default=str)), **extra}  # plain types only
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buffer.getvalue())


def read_checkpoint_file(path: str | Path, kind: str, version: int, what: str, error: type[Exception]) -> dict:
    """Load a checkpoint written by :func:`write_checkpoint` and check its kind and version; anything else
    raises ``error`` naming the file and what was expected."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        # TorchVersion (a str) is allowed because early checkpoints recorded torch.__version__ as is.
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: one clear line
        raise error(f"{what} {path} cannot be read: {exc}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != kind:
        raise error(f"{path} is not a {what} (expected format {kind!r})")
    if checkpoint.get("version") != version:
        raise error(f"{path} has {what} version {checkpoint.get('version')}, this splitinf reads version {version}")
    return checkpoint


def record_metadata(path: str | Path, **fields: Any) -> None:
    """Add ``fields`` to a checkpoint's metadata in place (an evaluation's numbers, say). The metadata is not
    part of a checkpoint's fingerprint, so device and edge that loaded it before still agree."""
    import torch

    with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    checkpoint["metadata"] = {**checkpoint.get("metadata", {}), **json.loads(json.dumps(fields, default=str))}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    Path(path).write_bytes(buffer.getvalue())
