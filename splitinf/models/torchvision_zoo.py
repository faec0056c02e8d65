"""torchvision detectors (SSDLite320-MobileNetV3, Faster R-CNN MobileNetV3-FPN) seen as splittable detectors.

Each adapter owns the torchvision model unchanged (its state dict loads as torchvision's) and re-runs
the same submodules, in the same order, around the cut. ``forward`` calls torchvision's own forward.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection import (
    fasterrcnn_mobilenet_v3_large_320_fpn,
    fasterrcnn_mobilenet_v3_large_fpn,
    ssdlite320_mobilenet_v3_large,
)
from torchvision.models.detection.image_list import ImageList
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from splitinf.models.base import (
    Detections,
    Geometry,
    SplitPoint,
    SplittableDetector,
    check_images,
    common_input_size,
)

# MobileNetV3-Large `features`: [3] is the last stride-4 block (24 ch), [6] the last stride-8 block (40 ch),
# [12] the last stride-16 block before C4's expansion (112 ch).
MOBILENET_V3_SPLITS = (
    SplitPoint("s4", 3, 4, "after MobileNetV3 features[3] (24 ch, stride 4)"),
    SplitPoint("s8", 6, 8, "after MobileNetV3 features[6] (40 ch, stride 8)"),
    SplitPoint("s16", 12, 16, "after MobileNetV3 features[12] (112 ch, stride 16)"),
)


def to_float(image: Tensor) -> Tensor:
    """uint8 [0, 255] → float32 [0, 1], the input convention of torchvision detectors."""
    return image.to(torch.float32).div(255.0)


def shape_only_image_list(geometries: Sequence[Geometry], like: Tensor) -> ImageList:
    """An ImageList carrying sizes only: the anchor generators read just ``tensors.shape[-2:]`` and
    ``image_sizes``, so the tail needs no copy of the input image."""
    height, width = common_input_size(geometries)
    empty = torch.empty((len(geometries), 0, height, width), dtype=like.dtype, device=like.device)
    return ImageList(empty, [g.resized for g in geometries])


class _TorchvisionDetector(SplittableDetector):
    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model.eval()
        self.name = name
        self.split_points = MOBILENET_V3_SPLITS

    def preprocess(self, images: Sequence[Tensor]) -> tuple[Tensor, list[Geometry]]:
        check_images(images)
        batch, _ = self.model.transform([to_float(im) for im in images])
        height, width = batch.tensors.shape[-2:]
        geometries = [
            Geometry((int(im.shape[-2]), int(im.shape[-1])), (int(h), int(w)), (int(height), int(width)))
            for im, (h, w) in zip(images, batch.image_sizes)
        ]
        return batch.tensors, geometries

    def forward(self, images: Sequence[Tensor]) -> Detections:
        check_images(images)
        return self.model([to_float(im) for im in images])

    def set_score_threshold(self, threshold: float) -> None:
        scored = self.model.roi_heads if hasattr(self.model, "roi_heads") else self.model
        scored.score_thresh = threshold


class TorchvisionSSDLite(_TorchvisionDetector):
    """``ssdlite320_mobilenet_v3_large``: the trunk is ``backbone.features[0]`` minus C4's expansion layer."""

    input_size = (320, 320)

    @property
    def trunk(self) -> nn.Sequential:
        return nn.Sequential(*self.model.backbone.features[0][:-1])

    def neck(self, x: Tensor) -> list[Tensor]:
        features = self.model.backbone.features
        x = features[0][-1](x)  # C4 expansion: the first feature map
        maps = [x]
        for block in list(features[1:]) + list(self.model.backbone.extra):
            x = block(x)
            maps.append(x)
        return maps

    def detect(self, maps: list[Tensor], geometries: Sequence[Geometry]) -> Detections:
        model = self.model
        images = shape_only_image_list(geometries, maps[0])
        head_outputs = model.head(maps)
        anchors = model.anchor_generator(images, maps)
        detections = model.postprocess_detections(head_outputs, anchors, images.image_sizes)
        return model.transform.postprocess(detections, images.image_sizes, [g.original for g in geometries])


class TorchvisionFasterRCNN(_TorchvisionDetector):
    """Faster R-CNN MobileNetV3-FPN: the trunk is the backbone body up to its first FPN-returned layer."""

    def __init__(self, model: nn.Module, name: str, input_size: tuple[int, int]) -> None:
        super().__init__(model, name)
        self.input_size = input_size
        body = model.backbone.body
        self._first_returned = min(int(k) for k in body.return_layers)
        fpn_names = list(body.return_layers.values())
        if isinstance(model.backbone.fpn.extra_blocks, LastLevelMaxPool):
            fpn_names.append("pool")
        self._map_names = fpn_names

    @property
    def trunk(self) -> nn.Sequential:
        body = self.model.backbone.body
        return nn.Sequential(*[body[str(i)] for i in range(self._first_returned)])

    def neck(self, x: Tensor) -> list[Tensor]:
        body = self.model.backbone.body
        returned: OrderedDict[str, Tensor] = OrderedDict()
        for name in list(body.keys())[self._first_returned :]:
            x = body[name](x)
            if name in body.return_layers:
                returned[body.return_layers[name]] = x
        return list(self.model.backbone.fpn(returned).values())

    def detect(self, maps: list[Tensor], geometries: Sequence[Geometry]) -> Detections:
        model = self.model
        features = OrderedDict(zip(self._map_names, maps))
        images = shape_only_image_list(geometries, maps[0])
        proposals, _ = model.rpn(images, features)
        detections, _ = model.roi_heads(features, proposals, images.image_sizes)
        return model.transform.postprocess(detections, images.image_sizes, [g.original for g in geometries])


def build_ssdlite320_mobilenet_v3_large(*, num_classes: int) -> SplittableDetector:
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
    return TorchvisionSSDLite(model, "ssdlite320_mobilenet_v3_large")


def build_fasterrcnn_mobilenet_v3_large_320_fpn(*, num_classes: int) -> SplittableDetector:
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=num_classes)
    return TorchvisionFasterRCNN(model, "fasterrcnn_mobilenet_v3_large_320_fpn", (320, 320))


def build_fasterrcnn_mobilenet_v3_large_fpn(*, num_classes: int) -> SplittableDetector:
    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=num_classes)
    return TorchvisionFasterRCNN(model, "fasterrcnn_mobilenet_v3_large_fpn", (800, 800))
