"""SSDLite + MobileNetV2 (1.0) at 300×300, compatible with the TF1 Object Detection API's
``ssdlite_mobilenet_v2`` graphs — the SSDLite of the MobileNetV2 paper.

Module names follow torchvision (``features`` is ``mobilenet_v2().features``, ``head`` is
``SSDLiteHead``) so that converted TF weights load with ``strict=True``; see PRETRAINED.md for every fact
this rebuild depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v2
from torchvision.models.detection.ssdlite import SSDLiteHead
from torchvision.ops.misc import Conv2dNormActivation

from splitinf.models.base import Detections, Geometry, SplitPoint, SplittableDetector, check_images
from splitinf.models.tf_compat import (
    anchors_per_location,
    decode_boxes,
    multiclass_nms,
    resize_bilinear_legacy,
    ssd_anchors,
    use_tf_same_padding,
)

BN_EPS = 1e-3
INPUT_SIZE = (300, 300)
GRID_SIZES = (19, 10, 5, 3, 2, 1)
FEATURE_CHANNELS = (576, 1280, 512, 256, 256, 128)
EXTRA_DEPTHS = ((1280, 256, 512), (512, 128, 256), (256, 128, 256), (256, 64, 128))  # (in, mid, out)

# MobileNetV2 `features`: [3] last stride-4 block (24 ch), [6] last stride-8 block (32 ch),
# [13] last block before feature map 0 (96 ch, stride 16).
MOBILENET_V2_SPLITS = (
    SplitPoint("s4", 3, 4, "after MobileNetV2 features[3] (24 ch, stride 4)"),
    SplitPoint("s8", 6, 8, "after MobileNetV2 features[6] (32 ch, stride 8)"),
    SplitPoint("s16", 13, 16, "after MobileNetV2 features[13] (96 ch, stride 16)"),
)


def _extra_block(in_ch: int, mid: int, out: int, norm: partial) -> nn.Sequential:
    """1×1 in→mid, 3×3 s2 depthwise, 1×1 mid→out; BN + ReLU6 after each (TF ``layer_19_*``)."""
    act = nn.ReLU6
    return nn.Sequential(
        Conv2dNormActivation(in_ch, mid, 1, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, mid, 3, stride=2, groups=mid, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, out, 1, norm_layer=norm, activation_layer=act),
    )


class SSDLiteMobileNetV2(SplittableDetector):
    """TF-compatible SSDLite-MobileNetV2; ``num_classes`` counts the background (person-only = 2)."""

    input_size = INPUT_SIZE

    def __init__(
        self,
        *,
        num_classes: int,
        name: str = "ssdlite_mobilenet_v2",
        score_threshold: float = 1e-8,
        iou_threshold: float = 0.6,
        max_detections: int = 100,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got {num_classes}")
        self.name = name
        self.num_classes = num_classes
        self.split_points = MOBILENET_V2_SPLITS
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        norm = partial(nn.BatchNorm2d, eps=BN_EPS)
        self.features = use_tf_same_padding(mobilenet_v2(weights=None, norm_layer=norm).features)
        self.extras = use_tf_same_padding(nn.ModuleList([_extra_block(*d, norm) for d in EXTRA_DEPTHS]))
        self.head = SSDLiteHead(
            list(FEATURE_CHANNELS),
            anchors_per_location(len(GRID_SIZES)),
            num_classes,
            partial(nn.BatchNorm2d, eps=BN_EPS, momentum=0.03),
        )
        self.register_buffer("anchors", ssd_anchors(GRID_SIZES), persistent=False)

    @property
    def trunk(self) -> nn.Sequential:
        return nn.Sequential(*self.features[:14])

    def preprocess(self, images: Sequence[Tensor]) -> tuple[Tensor, list[Geometry]]:
        check_images(images)
        resized = [resize_bilinear_legacy(im.to(torch.float32)[None], INPUT_SIZE) for im in images]
        batch = torch.cat(resized) * (2.0 / 255.0) - 1.0
        geometries = [Geometry((int(im.shape[-2]), int(im.shape[-1])), INPUT_SIZE, INPUT_SIZE) for im in images]
        return batch, geometries

    def neck(self, x: Tensor) -> list[Tensor]:
        expand = self.features[14].conv[0]  # TF expanded_conv_13/expand: feature map 0
        fm0 = expand(x)
        x = self.features[14].conv[1:](fm0)  # stride 2: no residual
        fm1 = self.features[15:](x)
        maps = [fm0, fm1]
        x = fm1
        for block in self.extras:
            x = block(x)
            maps.append(x)
        return maps

    def detect(self, maps: list[Tensor], geometries: Sequence[Geometry]) -> Detections:
        outputs = self.head(maps)
        boxes = decode_boxes(outputs["bbox_regression"], self.anchors)
        scores = torch.sigmoid(outputs["cls_logits"])[..., 1:]  # sigmoid per class; column 0 is background
        detections = []
        for image_boxes, image_scores, geometry in zip(boxes, scores, geometries):
            kept_boxes, kept_scores, classes = multiclass_nms(
                image_boxes,
                image_scores,
                score_threshold=self.score_threshold,
                iou_threshold=self.iou_threshold,
                max_per_class=self.max_detections,
                max_total=self.max_detections,
            )
            height, width = geometry.original
            scale = kept_boxes.new_tensor([width, height, width, height])
            xyxy = kept_boxes[:, [1, 0, 3, 2]] * scale
            detections.append({"boxes": xyxy, "scores": kept_scores, "labels": classes + 1})
        return detections

    def set_score_threshold(self, threshold: float) -> None:
        self.score_threshold = threshold

    def forward(self, images: Sequence[Tensor]) -> Detections:
        x, geometries = self.preprocess(images)
        return self.detect(self.neck(self.trunk(x)), geometries)
