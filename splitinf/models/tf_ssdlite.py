"""The TF Object Detection API's SSDLite meta-architecture, shared by every TF-compatible backbone here.

[-1, 1] preprocessing after TF1's legacy resize, a depthwise SSDLite box predictor (torchvision's
``SSDLiteHead``, whose output order matches TF's NHWC reshape), the ``ssd_anchor_generator`` grid, the
``faster_rcnn_box_coder`` and TF's multiclass NMS, with sigmoid scores. A subclass provides the trunk, the
neck (trunk output → feature maps) and the extra layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torchvision.models.detection.ssdlite import SSDLiteHead
from torchvision.ops.misc import Conv2dNormActivation

from splitinf.models.base import Detections, Geometry, SplittableDetector, check_images
from splitinf.models.tf_compat import (
    anchors_per_location,
    decode_boxes,
    multiclass_nms,
    resize_bilinear_legacy,
    ssd_anchors,
)

HEAD_NORM = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)


def extra_block(in_ch: int, out: int, norm=HEAD_NORM) -> nn.Sequential:
    """TF ``multi_resolution_feature_maps`` with depthwise layers: 1×1 in→out/2, 3×3 s2 depthwise,
    1×1 →out; BatchNorm + ReLU6 after each."""
    mid, act = out // 2, nn.ReLU6
    return nn.Sequential(
        Conv2dNormActivation(in_ch, mid, 1, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, mid, 3, stride=2, groups=mid, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, out, 1, norm_layer=norm, activation_layer=act),
    )


class TFSSDLite(SplittableDetector):
    """``num_classes`` counts the background (person-only = 2)."""

    def __init__(self, *, name: str, num_classes: int, input_size: tuple[int, int],
                 feature_channels: Sequence[int], score_threshold: float = 1e-8, iou_threshold: float = 0.6,
                 max_detections: int = 100) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts the background and must be >= 2, got {num_classes}")
        self.name, self.num_classes, self.input_size = name, num_classes, input_size
        self.score_threshold, self.iou_threshold, self.max_detections = score_threshold, iou_threshold, max_detections
        grids = [math.ceil(input_size[0] / 2 ** (4 + i)) for i in range(len(feature_channels))]
        self.head = SSDLiteHead(list(feature_channels), anchors_per_location(len(grids)), num_classes, HEAD_NORM)
        self.register_buffer("anchors", ssd_anchors(grids), persistent=False)

    def preprocess(self, images: Sequence[Tensor]) -> tuple[Tensor, list[Geometry]]:
        check_images(images)
        resized = [resize_bilinear_legacy(im.to(torch.float32)[None], self.input_size) for im in images]
        batch = torch.cat(resized) * (2.0 / 255.0) - 1.0
        size = tuple(self.input_size)
        return batch, [Geometry((int(im.shape[-2]), int(im.shape[-1])), size, size) for im in images]

    def anchor_outputs(self, maps: list[Tensor]) -> tuple[Tensor, Tensor]:
        outputs = self.head(maps)
        return outputs["cls_logits"][..., 1:], outputs["bbox_regression"]  # column 0 is the unused background

    def detect(self, maps: list[Tensor], geometries: Sequence[Geometry]) -> Detections:
        logits, regression = self.anchor_outputs(maps)
        boxes = decode_boxes(regression, self.anchors)
        scores = torch.sigmoid(logits)  # a sigmoid per class, as TF's SSD
        detections = []
        for image_boxes, image_scores, geometry in zip(boxes, scores, geometries):
            kept_boxes, kept_scores, classes = multiclass_nms(
                image_boxes, image_scores, score_threshold=self.score_threshold, iou_threshold=self.iou_threshold,
                max_per_class=self.max_detections, max_total=self.max_detections)
            height, width = geometry.original
            xyxy = kept_boxes[:, [1, 0, 3, 2]] * kept_boxes.new_tensor([width, height, width, height])
            detections.append({"boxes": xyxy, "scores": kept_scores, "labels": classes + 1})
        return detections

    def set_score_threshold(self, threshold: float) -> None:
        self.score_threshold = threshold

    def forward(self, images: Sequence[Tensor]) -> Detections:
        x, geometries = self.preprocess(images)
        return self.detect(self.neck(self.trunk(x)), geometries)
