"""Where bottleneck and prefilter checkpoints are found: a path, or a name in the user's cache or the package.

The checkpoints the product uses ship inside the package (``splitinf/weights/shipped``, package data), so a
regular ``pip install`` finds them exactly as a checkout does. Checkpoints you train or download go in
``$SPLITINF_HOME/checkpoints`` (default ``~/.cache/splitinf/checkpoints``) and are then named by file name
alone, like the shipped ones; a name there takes precedence over a shipped file of the same name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

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
